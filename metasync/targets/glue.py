"""The AWS Glue Data Catalog as a target, through boto3.

Reads the databases in scope with paged calls into the shared `TargetState` shape, and writes a plan batch by
batch: databases first, then tables on a bounded thread pool under a token-bucket rate limit, with retries
(see `glue_calls`). A table that lacks `metasync:managed` in Glue is never changed or deleted.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
import orjson
import polars as pl
from botocore.config import Config as BotocoreConfig
from botocore.credentials import CredentialProvider, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError, ProfileNotFound

from metasync.config import GlueTargetConfig
from metasync.errors import ConfigError, TargetError
from metasync.targets.base import (
    DATABASE_STATE_COLUMNS,
    TABLE_STATE_COLUMNS,
    CallCounter,
    ProgressCallback,
    TargetState,
    WriteRequest,
    column_signature,
    outcome_frame,
)
from metasync.targets.glue_calls import CONCURRENT_MODIFICATION, GlueCaller, GlueCallError, error_of
from metasync.targets.glue_limits import limit_violations, parameter_violation

log = logging.getLogger(__name__)

MANAGED = "metasync:managed"
HASH = "metasync:hash"
SPACE = "metasync:space"
NAME = "metasync:name"
PAGE_SIZE = 100
DELETE_CHUNK = 100

# The keys of a Glue `Table` that also belong to a `TableInput`; the rest (VersionId, CreateTime, ...) is state.
TABLE_INPUT_KEYS = (
    "Name",
    "Description",
    "Owner",
    "LastAccessTime",
    "LastAnalyzedTime",
    "Retention",
    "StorageDescriptor",
    "PartitionKeys",
    "ViewOriginalText",
    "ViewExpandedText",
    "TableType",
    "Parameters",
    "TargetTable",
    "ViewDefinition",
)

STORAGE_FORMATS: dict[str, dict[str, Any]] = {
    "parquet": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
    },
    "orc": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.orc.OrcSerde"},
    },
    "csv": {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.OpenCSVSerde"},
    },
    "json": {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"},
    },
    "avro": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.avro.AvroSerDe"},
    },
}

HINTS: dict[str, str] = {
    "AccessDeniedException": "Grant the IAM permission for this Glue action (see the README's AWS setup).",
    "AlreadyExistsException": "The table appeared in Glue during the run; rerun to compare against it.",
    "EntityNotFoundException": "The database or table was removed in Glue during the run; rerun.",
    CONCURRENT_MODIFICATION: "The table was changed in Glue while metasync wrote it; rerun to merge the edit.",
    "ThrottlingException": "Lower target.max_requests_per_second or raise target.max_retry_seconds.",
    "ResourceNumberLimitExceededException": "A Glue quota was reached (tables or table versions); "
    "raise it in Service Quotas or delete old table versions.",
    "InvalidInputException": "Glue rejected the table definition; fix the asset or add a rule.",
    "ConnectionError": "Check the network path to the Glue endpoint, then rerun.",
    "InternalServiceException": "Glue had an internal error; rerun.",
    "Unmanaged": "The Glue table has no metasync:managed parameter, so metasync never changes it; "
    "map the asset to another name with a rule, or remove the table in Glue yourself.",
    "GlueLimit": "Shorten or rename it with a rule; it was not sent to Glue.",
    "UpstreamFailed": "Fix the upstream asset's error; this one follows on the next run.",
}


def hint_for(code: str) -> str:
    """The remediation hint for an AWS (or metasync) error code."""
    return HINTS.get(code, "See the message; rerun once the cause is fixed.")


def table_definition(table: dict[str, Any]) -> str:
    """A Glue `Table` as TableInput-shaped JSON text with sorted keys (the shared `definition` column).

    Serialised like the local target's (compact, keys sorted at every level), so both compare alike.
    """
    table_input = {key: table[key] for key in TABLE_INPUT_KEYS if key in table}
    return orjson.dumps(table_input, option=orjson.OPT_SORT_KEYS).decode()


class AssumedRoleProvider(CredentialProvider):  # type: ignore[misc]  # botocore ships no type hints
    """Credentials of an assumed role, refreshed through `fetch` when they near expiry."""

    METHOD = "metasync-assume-role"
    CANONICAL_NAME = "metasync-assume-role"

    def __init__(self, fetch: Callable[[], dict[str, str]]) -> None:
        super().__init__()
        self._fetch = fetch

    def load(self) -> RefreshableCredentials:
        return RefreshableCredentials.create_from_metadata(self._fetch(), self._fetch, self.METHOD)


@dataclass
class _Known:
    """What the target last read about one Glue table."""

    managed: bool
    hash: str | None
    version_id: str | None
    definition: str


class GlueTarget:
    """AWS Glue Data Catalog reached through boto3 (`target.kind: glue`)."""

    def __init__(self, config: GlueTargetConfig, *, session: boto3.Session | None = None) -> None:
        self.config = config
        self.calls = CallCounter()
        self._known: dict[tuple[str, str], _Known] = {}
        self._known_lock = threading.Lock()
        self._outcomes_lock = threading.Lock()
        try:
            session = session or self._session()
            client = session.client(
                "glue",
                region_name=config.region,
                endpoint_url=config.endpoint_url,
                config=BotocoreConfig(
                    retries={"total_max_attempts": 1, "mode": "standard"},
                    connect_timeout=10,
                    read_timeout=60,
                    max_pool_connections=config.max_workers + 2,
                ),
            )
        except NoRegionError as exc:
            raise ConfigError(
                "target.region is not set and no AWS default region is configured.",
                hint="Set target.region (e.g. eu-central-1) or AWS_DEFAULT_REGION.",
            ) from exc
        except ProfileNotFound as exc:
            raise ConfigError(
                f"target.profile '{config.profile}' is not an AWS profile on this machine."
            ) from exc
        except (ValueError, BotoCoreError) as exc:  # an endpoint or region botocore cannot use
            raise ConfigError(
                f"target: boto3 cannot make a Glue client for region {config.region!r} and endpoint_url "
                f"{config.endpoint_url!r}: {exc}.",
                hint="Check target.region and target.endpoint_url.",
            ) from exc
        self.region = client.meta.region_name
        self.endpoint = client.meta.endpoint_url
        self._caller = GlueCaller(
            client,
            calls=self.calls,
            rate=config.max_requests_per_second,
            burst=max(1.0, min(config.max_requests_per_second, float(config.max_workers))),
            max_retry_seconds=config.max_retry_seconds,
        )

    # ------------------------------------------------------------------ session
    def _session(self) -> boto3.Session:
        """A boto3 session for the configured profile; with `role_arn`, one whose credentials come from
        STS AssumeRole and are renewed by botocore before they expire."""
        base = boto3.Session(profile_name=self.config.profile, region_name=self.config.region)
        if not self.config.role_arn:
            return base
        sts = base.client("sts", region_name=self.config.region)
        core = botocore.session.Session()
        core.get_component("credential_provider").insert_before(
            "env", AssumedRoleProvider(lambda: self._assume_role(sts))
        )
        return boto3.Session(botocore_session=core, region_name=self.config.region)

    def _assume_role(self, sts: Any) -> dict[str, str]:
        """Fresh credentials for `role_arn`, in the shape botocore's refreshable credentials take."""
        self.calls.add("AssumeRole")
        try:
            credentials = sts.assume_role(RoleArn=self.config.role_arn, RoleSessionName="metasync")[
                "Credentials"
            ]
        except (ClientError, BotoCoreError) as exc:
            code, message, _ = error_of(exc)
            raise TargetError(
                f"cannot assume role {self.config.role_arn} through STS in region {self.config.region}: "
                f"{code}: {message}",
                hint="Check that the role trusts this identity and that target.role_arn is right.",
            ) from exc
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    def describe(self) -> str:
        catalog = f", catalog {self.config.catalog_id}" if self.config.catalog_id else ""
        return f"Glue {self.region} at {self.endpoint}{catalog}"

    def _call(self, operation: str, method: str, **kwargs: Any) -> dict[str, Any]:
        """One Glue call through the rate limit and retries, with `CatalogId` when one is configured."""
        arguments: dict[str, Any] = {"CatalogId": self.config.catalog_id} if self.config.catalog_id else {}
        return self._caller.call(operation, method, **arguments, **kwargs)

    def _unreachable(self, exc: Exception, doing: str) -> TargetError:
        code, message, _ = error_of(exc)
        return TargetError(
            f"cannot {doing} in Glue at {self.endpoint} (region {self.region}): {code}: {message}",
            hint="Check target.endpoint_url/region, the AWS credentials and the IAM permissions "
            "(README, AWS setup).",
        )

    # ------------------------------------------------------------------ read
    def read_state(self, databases: list[str]) -> TargetState:
        """Databases and tables of the given database names, read with paged GetTables (100 a page)."""
        db_rows: list[dict[str, Any]] = []
        table_rows: list[dict[str, Any]] = []
        for database in sorted(set(databases)):
            found = self._get_database(database)
            if found is None:
                continue
            db_rows.append({"glue_database": database, "managed": _is_managed(found.get("Parameters"))})
            for table in self._tables(database):
                table_rows.append(self._remember(database, table))
        return TargetState(
            databases=pl.DataFrame(db_rows, schema=DATABASE_STATE_COLUMNS),
            tables=pl.DataFrame(table_rows, schema=TABLE_STATE_COLUMNS),
        )

    def _get_database(self, database: str) -> dict[str, Any] | None:
        try:
            return dict(self._call("GetDatabase", "get_database", Name=database)["Database"])
        except GlueCallError as exc:
            if exc.code == "EntityNotFoundException":
                return None
            raise self._unreachable(exc, f"read database '{database}'") from exc
        except BotoCoreError as exc:
            raise self._unreachable(exc, f"read database '{database}'") from exc

    def _tables(self, database: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            paging = {"NextToken": token} if token else {}
            try:
                page = self._call(
                    "GetTables", "get_tables", DatabaseName=database, MaxResults=PAGE_SIZE, **paging
                )
            except (GlueCallError, BotoCoreError) as exc:
                raise self._unreachable(exc, f"list the tables of database '{database}'") from exc
            yield from page.get("TableList", [])
            token = page.get("NextToken")
            if not token:
                return

    def _remember(self, database: str, table: dict[str, Any]) -> dict[str, Any]:
        parameters = table.get("Parameters") or {}
        managed = _is_managed(parameters)
        definition = table_definition(table)
        known = _Known(managed, parameters.get(HASH) if managed else None, table.get("VersionId"), definition)
        with self._known_lock:
            self._known[(database, table["Name"])] = known
        return {
            "glue_database": database,
            "glue_table": table["Name"],
            "managed": managed,
            "space": parameters.get(SPACE) if managed else None,
            "name": parameters.get(NAME) if managed else None,
            "hash": known.hash,
            "description": table.get("Description"),
            "version_id": known.version_id,
            "definition": definition,
            "schema": column_signature(table),
        }

    def _fetch(self, database: str, table: str) -> _Known | None:
        """Read one table again (None when it does not exist); updates what the target knows about it."""
        try:
            found = self._call("GetTable", "get_table", DatabaseName=database, Name=table)["Table"]
        except GlueCallError as exc:
            if exc.code == "EntityNotFoundException":
                return None
            raise
        self._remember(database, found)
        with self._known_lock:
            return self._known[(database, table)]

    def _lookup(self, database: str, table: str) -> _Known | None:
        with self._known_lock:
            known = self._known.get((database, table))
        return known if known is not None else self._fetch(database, table)

    # ------------------------------------------------------------------ write
    def write(self, request: WriteRequest, progress: ProgressCallback | None = None) -> pl.DataFrame:
        """Create the databases, then apply the table rows batch by batch; one outcome row per table row."""
        try:
            failed_databases = self._create_databases(request.databases)
        except BotoCoreError as exc:
            raise self._unreachable(exc, "create databases") from exc
        tables = request.tables
        if tables.is_empty():
            return outcome_frame([])
        tables = tables.with_columns(limit_violations(tables))
        outcomes = self.calls.outcomes  # filled by `_write_batch` as rows are written
        outcomes.clear()
        stopped: set[str] = set()
        tick = progress or _no_progress
        with ThreadPoolExecutor(max_workers=self.config.max_workers, thread_name_prefix="glue") as pool:
            try:
                for _, batch in tables.sort("batch", maintain_order=True).group_by(
                    "batch", maintain_order=True
                ):
                    batch_outcomes = self._write_batch(batch, stopped, failed_databases, pool, tick)
                    stopped.update(f"{o['space']}.{o['name']}" for o in batch_outcomes if o["status"] != "ok")
            except BaseException:  # Ctrl-C, SIGTERM: no queued write starts; those under way finish and count
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return outcome_frame(outcomes)

    def _record(self, outcome: dict[str, str | None]) -> dict[str, str | None]:
        """Add an outcome to `calls.outcomes` the moment it is known (from any thread): a run stopped while
        writes are under way still counts every table written."""
        with self._outcomes_lock:
            self.calls.outcomes.append(outcome)
        return outcome

    def _write_table_counted(self, row: dict[str, Any]) -> dict[str, str | None]:
        """`_write_table`, its outcome recorded in the worker that wrote it."""
        return self._record(self._write_table(row))

    def _create_databases(self, databases: pl.DataFrame) -> dict[str, GlueCallError]:
        failed: dict[str, GlueCallError] = {}
        for row in databases.iter_rows(named=True):
            name = row["glue_database"]
            database_input = json.loads(row.get("database_input") or "{}")
            database_input["Name"] = name
            database_input["Parameters"] = {**(database_input.get("Parameters") or {}), MANAGED: "true"}
            try:
                self._call("CreateDatabase", "create_database", DatabaseInput=database_input)
            except GlueCallError as exc:
                if exc.code != "AlreadyExistsException":
                    log.warning("database %s could not be created: %s", name, exc)
                    failed[name] = exc
        return failed

    def _write_batch(
        self,
        batch: pl.DataFrame,
        stopped: set[str],
        failed_databases: dict[str, GlueCallError],
        pool: ThreadPoolExecutor,
        tick: ProgressCallback,
    ) -> list[dict[str, str | None]]:
        """Outcomes of one batch: rows held back first, then the rows sent to Glue; `tick` per row done. Each
        is also added to `calls.outcomes` as soon as it is known."""
        has_upstreams = "upstreams" in batch.columns
        blocked = (
            pl.col("upstreams").list.filter(pl.element().is_in(list(stopped))).list.first()
            if has_upstreams and stopped
            else pl.lit(None, dtype=pl.Utf8)
        )
        batch = batch.with_columns(
            _db_failed=pl.col("glue_database").is_in(list(failed_databases)),
            _blocked=blocked,
        )
        outcomes: list[dict[str, str | None]] = []

        def done(found: Iterable[dict[str, str | None]]) -> None:
            outcomes.extend(self._record(outcome) for outcome in found)

        sendable: list[dict[str, Any]] = []
        for row in batch.iter_rows(named=True):
            held = self._held_back(row, failed_databases)
            if held is not None:
                done([held])
            else:
                sendable.append(row)
        writes = [row for row in sendable if row["action"] in ("create", "update")]
        deletes = [row for row in sendable if row["action"] == "delete"]
        unknown = [row for row in sendable if row["action"] not in ("create", "update", "delete")]
        done(
            _outcome(row, "failed", "UnknownAction", f"action '{row['action']}' is not a write action")
            for row in unknown
        )
        tick(len(outcomes))
        for outcome in pool.map(self._write_table_counted, writes):
            outcomes.append(outcome)
            tick(1)
        for chunk in _delete_chunks(deletes):
            done(self._delete_chunk(chunk))
            tick(len(chunk))
        return outcomes

    def _held_back(
        self, row: dict[str, Any], failed_databases: dict[str, GlueCallError]
    ) -> dict[str, str | None] | None:
        """The outcome of a row that must not be sent (failed database, failed upstream, Glue limit)."""
        if row["_db_failed"]:
            cause = failed_databases[row["glue_database"]]
            return _outcome(
                row,
                "failed",
                cause.code,
                f"database '{row['glue_database']}' could not be created: {cause.message}",
            )
        if row["_blocked"] is not None:
            return _outcome(
                row,
                "skipped",
                "UpstreamFailed",
                f"skipped because upstream {row['_blocked']} was not written",
            )
        if row["violation"] is not None and row["action"] != "delete":
            return _outcome(row, "failed", "GlueLimit", f"not sent to Glue: {row['violation']}")
        return None

    def _write_table(self, row: dict[str, Any]) -> dict[str, str | None]:
        """Create or update one table; never raises for an AWS error."""
        try:
            table_input = self._complete(row)
            problem = parameter_violation(table_input.get("Parameters")) or _column_parameter_problem(
                table_input
            )
            if problem:
                return _outcome(row, "failed", "GlueLimit", f"not sent to Glue: {problem}")
            if row["action"] == "create":
                return self._create_table(row, table_input)
            return self._update_table(row, table_input)
        except GlueCallError as exc:
            return _outcome(row, "failed", exc.code, f"{exc.operation}: {exc.message}")
        except BotoCoreError as exc:
            code, message, _ = error_of(exc)
            return _outcome(row, "failed", code, message)

    def _complete(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row's TableInput with storage format, location and metasync parameters filled in."""
        table_input: dict[str, Any] = json.loads(row["table_input"])
        table_input.setdefault("TableType", "EXTERNAL_TABLE")
        parameters = table_input.setdefault("Parameters", {})
        parameters[MANAGED] = "true"
        parameters.setdefault(SPACE, row["space"])
        parameters.setdefault(NAME, row["name"])
        if row.get("hash") is not None:
            parameters[HASH] = row["hash"]
        parameters.setdefault("classification", self.config.storage_format)
        descriptor = table_input.setdefault("StorageDescriptor", {})
        for key, value in STORAGE_FORMATS[self.config.storage_format].items():
            descriptor.setdefault(key, json.loads(json.dumps(value)))
        if "Location" not in descriptor and self.config.location_template:
            descriptor["Location"] = self.config.location_template.format(
                space=row["space"], name=row["name"], database=row["glue_database"], table=row["glue_table"]
            )
        return table_input

    def _create_table(self, row: dict[str, Any], table_input: dict[str, Any]) -> dict[str, str | None]:
        database, table = row["glue_database"], row["glue_table"]
        try:
            self._call("CreateTable", "create_table", DatabaseName=database, TableInput=table_input)
        except GlueCallError as exc:
            if exc.code != "AlreadyExistsException":
                raise
            existing = self._fetch(database, table)
            if (
                existing is not None
                and existing.managed
                and existing.hash == table_input["Parameters"].get(HASH)
            ):
                return _outcome(row, "ok", None, "already in Glue with the same content")
            if existing is not None and not existing.managed:
                return _outcome(
                    row, "failed", "Unmanaged", f"table {database}.{table} exists in Glue unmanaged"
                )
            raise
        return _outcome(row, "ok", None, "created")

    def _update_table(self, row: dict[str, Any], table_input: dict[str, Any]) -> dict[str, str | None]:
        database, table = row["glue_database"], row["glue_table"]
        known = self._lookup(database, table)
        if known is None:
            return _outcome(
                row, "failed", "EntityNotFoundException", f"table {database}.{table} is not in Glue"
            )
        if not known.managed:
            return _outcome(
                row, "failed", "Unmanaged", f"table {database}.{table} is not managed by metasync"
            )
        version = row.get("version_id") or known.version_id
        arguments: dict[str, Any] = {
            "DatabaseName": database,
            "TableInput": table_input,
            "SkipArchive": self.config.skip_archive,
        }
        if version:
            arguments["VersionId"] = version
        desired_hash = table_input["Parameters"].get(HASH)
        outcome: dict[str, str | None] = {}

        def on_conflict(sent: dict[str, Any]) -> dict[str, Any] | None:
            """Retry with the fresh VersionId only when the table did not change in between."""
            current = self._fetch(database, table)
            if current is None or not current.managed:
                outcome.update(
                    _outcome(
                        row,
                        "failed",
                        "Unmanaged" if current else "EntityNotFoundException",
                        f"table {database}.{table} changed in Glue during the run",
                    )
                )
                return None
            if current.hash == desired_hash:
                outcome.update(_outcome(row, "ok", None, "already in Glue with the same content"))
                return None
            if current.definition != known.definition:
                return None
            return {**sent, "VersionId": current.version_id}

        try:
            self._call("UpdateTable", "update_table", on_conflict=on_conflict, **arguments)
        except GlueCallError:
            if outcome:
                return outcome
            raise
        return _outcome(row, "ok", None, "updated")

    def _delete_chunk(self, rows: list[dict[str, Any]]) -> list[dict[str, str | None]]:
        """Delete up to 100 tables of one database in one BatchDeleteTable call, managed ones only."""
        database = rows[0]["glue_database"]
        outcomes: list[dict[str, str | None]] = []
        deletable: list[dict[str, Any]] = []
        for row in rows:
            try:
                known = self._lookup(database, row["glue_table"])
            except GlueCallError as exc:
                outcomes.append(_outcome(row, "failed", exc.code, f"{exc.operation}: {exc.message}"))
                continue
            if known is None:
                outcomes.append(_outcome(row, "ok", None, "already gone from Glue"))
            elif not known.managed:
                outcomes.append(
                    _outcome(
                        row, "failed", "Unmanaged", f"table {database}.{row['glue_table']} is not managed"
                    )
                )
            else:
                deletable.append(row)
        if not deletable:
            return outcomes
        try:
            response = self._call(
                "BatchDeleteTable",
                "batch_delete_table",
                DatabaseName=database,
                TablesToDelete=[row["glue_table"] for row in deletable],
            )
        except GlueCallError as exc:
            return outcomes + [
                _outcome(row, "failed", exc.code, f"{exc.operation}: {exc.message}") for row in deletable
            ]
        errors = {e["TableName"]: e.get("ErrorDetail", {}) for e in response.get("Errors", [])}
        for row in deletable:
            detail = errors.get(row["glue_table"])
            if detail is None or detail.get("ErrorCode") == "EntityNotFoundException":
                outcomes.append(_outcome(row, "ok", None, "deleted"))
            else:
                code = str(detail.get("ErrorCode") or "Unknown")
                outcomes.append(
                    _outcome(row, "failed", code, f"BatchDeleteTable: {detail.get('ErrorMessage')}")
                )
        return outcomes


def _no_progress(done: int) -> None:
    """The progress callback used when the caller gives none."""


def _is_managed(parameters: dict[str, Any] | None) -> bool:
    return str((parameters or {}).get(MANAGED, "")).lower() == "true"


def _column_parameter_problem(table_input: dict[str, Any]) -> str | None:
    descriptor = table_input.get("StorageDescriptor") or {}
    for column in [*(descriptor.get("Columns") or []), *(table_input.get("PartitionKeys") or [])]:
        problem = parameter_violation(column.get("Parameters"), where=f"column '{column.get('Name')}'")
        if problem:
            return problem
    return None


def _delete_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Delete rows grouped by database, at most 100 to a group (BatchDeleteTable's limit)."""
    by_database: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_database.setdefault(row["glue_database"], []).append(row)
    for database_rows in by_database.values():
        for start in range(0, len(database_rows), DELETE_CHUNK):
            yield database_rows[start : start + DELETE_CHUNK]


def _outcome(row: dict[str, Any], status: str, code: str | None, message: str) -> dict[str, str | None]:
    return {
        "space": row["space"],
        "name": row["name"],
        "glue_database": row["glue_database"],
        "glue_table": row["glue_table"],
        "action": row["action"],
        "status": status,
        "error_code": code,
        "message": message,
        "hint": hint_for(code) if code else None,
    }
