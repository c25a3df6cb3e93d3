"""metasync: SAP Datasphere catalog metadata into the AWS Glue Data Catalog, in bulk, with lineage."""

from metasync.api import lineage, plan, sync
from metasync.config import Config, load_config
from metasync.errors import MetasyncError
from metasync.pipeline import SyncResult

__all__ = ["Config", "MetasyncError", "SyncResult", "lineage", "load_config", "plan", "sync"]
__version__ = "0.1.0"
