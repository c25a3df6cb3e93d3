"""metasync: SAP Datasphere catalog metadata into the AWS Glue Data Catalog, in bulk, with lineage."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metasync.api import lineage, plan, sync
    from metasync.config import Config, load_config
    from metasync.errors import MetasyncError
    from metasync.pipeline import SyncResult

__all__ = ["Config", "MetasyncError", "SyncResult", "lineage", "load_config", "plan", "sync"]
__version__ = "0.1.0"

# The public names are imported on first use, so a process that needs one part (the CSN reader's child
# processes, the CLI's --help) does not load every stage and its libraries.
_HOMES = {
    "lineage": "metasync.api",
    "plan": "metasync.api",
    "sync": "metasync.api",
    "Config": "metasync.config",
    "load_config": "metasync.config",
    "MetasyncError": "metasync.errors",
    "SyncResult": "metasync.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'metasync' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
