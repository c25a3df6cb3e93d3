"""The embedded default target: a folder holding a Glue-shaped catalog.

Layout: `<path>/<database>/database.json` (a Glue DatabaseInput) and `<path>/<database>/tables/<table>.json`
(names over 200 characters are cut and given a hash in the file name; the file keeps the full `Name`)
(a Glue TableInput). Files are written atomically and only when their content changes, so an unchanged
rerun leaves every file, modification time included, as it was. Calls are counted under the Glue operation
they stand for (`GetDatabase`, `GetTables`, `CreateDatabase`, `CreateTable`, `UpdateTable`, `BatchDeleteTable`).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from metasync.config import LocalTargetConfig
from metasync.errors import TargetError
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
from metasync.targets.payload import table_input_from_request

SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
MAX_STEM = 200  # file names are limited to 255 bytes; Glue names may use all of them


def _file_stem(name: str) -> str:
    """The file name of a table: its name, or for long names a cut plus a hash (the file keeps the full Name)."""
    if len(name) <= MAX_STEM:
        return name
    return f"{name[: MAX_STEM - 17]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def _dumps(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _shape_problem(data: dict[str, Any]) -> str | None:
    """What makes a catalog file's JSON unusable as a table or database definition (None when usable)."""
    parameters = data.get("Parameters")
    if parameters is not None and not (
        isinstance(parameters, dict) and all(map(isinstance, parameters.values(), itertools.repeat(str)))
    ):
        return "Parameters is not an object of texts"
    for key in ("Name", "Description"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"{key} is not a text"
    descriptor = data.get("StorageDescriptor")
    if descriptor is None:
        return None
    if not isinstance(descriptor, dict):
        return "StorageDescriptor is not an object"
    columns = descriptor.get("Columns")
    if columns is not None and not (
        isinstance(columns, list) and all(map(isinstance, columns, itertools.repeat(dict)))
    ):
        return "StorageDescriptor.Columns is not a list of objects"
    return None


STATE_CHUNK_TABLES = 5_000  # tables read into Python objects before they move to Polars


# Temporary files: `.tmp-` (what a sweep of the catalog skips), this process and a random part, a number.
_TMP_PREFIX = f".tmp-{os.getpid()}-{secrets.token_hex(4)}-"
_TMP_NUMBERS = itertools.count()
_WRITE_HINT = "Check that the catalog folder is writable and the disk has space."


class LocalTarget:
    """A Glue-shaped catalog in a folder."""

    def __init__(self, config: LocalTargetConfig) -> None:
        self.root = Path(config.path)
        self.calls = CallCounter()
        self._resolved: dict[Path, Path] = {}  # folders of the catalog with their links resolved, once a run

    def describe(self) -> str:
        return f"local catalog {self.root}"

    # ------------------------------------------------------------------ paths
    def _inside(self, database: str, table: str | None = None) -> Path:
        """The file of a database (or of one of its tables); only Glue-safe names are accepted."""
        for part in (database, table):
            if part is not None and (not part or not set(part) <= SAFE):
                raise TargetError(f"refusing to use {part!r} as a catalog file name under {self.root}.")
        path = (
            self.root / database / ("database.json" if table is None else f"tables/{_file_stem(table)}.json")
        )
        # Where the path really leads, links followed: its folder is resolved once (resolving every file's
        # whole path took half of a sync's write time), the file itself only when it is a link.
        resolved = path.resolve() if path.is_symlink() else self._resolve_folder(path.parent) / path.name
        root = self._resolve_folder(self.root)
        if resolved == root or not resolved.is_relative_to(root):
            raise TargetError(f"refusing to write outside the local catalog {self.root}: {path}.")
        return path

    def _resolve_folder(self, folder: Path) -> Path:
        found = self._resolved.get(folder)
        if found is None:
            found = self._resolved[folder] = folder.resolve()
        return found

    def _database_file(self, database: str) -> Path:
        return self._inside(database)

    def _table_file(self, database: str, table: str) -> Path:
        return self._inside(database, table)

    def _read_json(self, path: Path) -> dict[str, Any]:
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise TargetError(
                f"local catalog file {path} is not valid JSON ({exc.msg} at line {exc.lineno}).",
                hint="Repair or remove the file; metasync never overwrites a file it cannot read.",
            ) from exc
        except OSError as exc:
            raise TargetError(f"local catalog file {path} cannot be read: {exc.strerror}.") from exc
        if not isinstance(data, dict):
            raise TargetError(f"local catalog file {path} does not hold a JSON object.")
        problem = _shape_problem(data)
        if problem is not None:
            raise TargetError(
                f"local catalog file {path} is not a Glue table or database definition: {problem}.",
                hint="Repair or remove the file; metasync never overwrites a file it cannot read.",
            )
        return data

    # ------------------------------------------------------------------ state
    def read_state(self, databases: list[str]) -> TargetState:
        if self.root.exists() and not self.root.is_dir():
            raise TargetError(f"target.path {self.root} exists and is not a folder.")
        existing = next(p for p in (self.root, *self.root.parents) if p.exists())
        if not existing.is_dir():
            raise TargetError(
                f"target.path {self.root} cannot be created: {existing} is a file, not a folder."
            )
        db_rows: list[dict[str, Any]] = []
        tables: dict[str, list[Any]] = {name: [] for name in TABLE_STATE_COLUMNS}
        chunks: list[pl.DataFrame] = []

        def flush() -> None:
            """Move the gathered rows into a frame: the texts of a whole catalog (656 MB at 100,000 tables)
            never exist twice, as Python objects and in Polars, and the process does not keep the first copy."""
            # Definitions as bytes: Polars takes them faster from bytes than from str.
            schema = TABLE_STATE_COLUMNS | {"definition": pl.Binary}
            chunks.append(
                pl.DataFrame(tables, schema=schema).with_columns(pl.col("definition").cast(pl.Utf8))
            )
            for values in tables.values():
                values.clear()

        for database in sorted(set(databases)):
            self.calls.add("GetDatabase")
            db_file = self._database_file(database)
            if db_file.exists():
                db_params = self._read_json(db_file).get("Parameters") or {}
                db_rows.append(
                    {"glue_database": database, "managed": db_params.get("metasync:managed") == "true"}
                )
            folder = db_file.parent / "tables"
            for path in (db_file.parent, folder):
                if path.exists() and not path.is_dir():
                    raise TargetError(
                        f"{path} in target.path is a file where the catalog keeps a folder.",
                        hint="Move the file away; metasync writes nothing while it is there.",
                    )
            if not folder.is_dir():
                continue
            self.calls.add("GetTables")
            # Names sorted as texts: sorting 100,000 Path objects costs half a second of comparisons.
            try:
                names = os.listdir(folder)
            except OSError as exc:
                raise TargetError(
                    f"the table folder {folder} of the local catalog cannot be listed: {exc.strerror}.",
                    hint="Give this user read access to the folder; metasync writes nothing until it can see "
                    "every table there.",
                ) from exc
            for file_name in sorted(name for name in names if name.endswith(".json")):
                path = folder / file_name
                table = self._read_json(path)
                params = table.get("Parameters") or {}
                managed = params.get("metasync:managed") == "true"
                name = table.get("Name")
                tables["glue_database"].append(database)
                tables["glue_table"].append(name if isinstance(name, str) else path.stem)
                tables["managed"].append(managed)
                tables["space"].append(params.get("metasync:space") if managed else None)
                tables["name"].append(params.get("metasync:name") if managed else None)
                tables["hash"].append(params.get("metasync:hash") if managed else None)
                tables["description"].append(table.get("Description"))
                tables["version_id"].append(None)
                tables["definition"].append(orjson.dumps(table, option=orjson.OPT_SORT_KEYS))
                tables["schema"].append(column_signature(table))
                if len(tables["definition"]) == STATE_CHUNK_TABLES:
                    flush()
        flush()
        return TargetState(
            databases=pl.DataFrame(db_rows, schema=DATABASE_STATE_COLUMNS),
            tables=pl.concat(chunks).rechunk(),  # one chunk: joins of chunked text columns copy them
        )

    # ------------------------------------------------------------------ writes
    def _write_file(self, path: Path, content: bytes) -> None:
        """Write `content` to a temporary file beside `path`, then move it there: a reader never sees half a
        file. The temporary name is chosen before the file exists, so a run stopped at any point (Ctrl-C even
        inside the call that creates it) removes it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            tmp = path.parent / f"{_TMP_PREFIX}{next(_TMP_NUMBERS)}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                break
            except FileExistsError:  # left by a process that had this number and prefix: take the next
                continue
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _is_managed_file(self, path: Path) -> bool:
        return (
            path.exists()
            and (self._read_json(path).get("Parameters") or {}).get("metasync:managed") == "true"
        )

    def _check_writable(self, databases: list[str]) -> None:
        """Stop before the first write when a folder the writes need cannot take a file: the nearest existing
        folder of each database's tables (its tables folder, the database folder or the catalog root). The test
        file has no name (`O_TMPFILE` where the system has it), so nothing shows in the catalog."""
        checked: set[Path] = set()
        for database in sorted(set(databases)):
            folder = self._database_file(database).parent / "tables"
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
            if folder in checked:
                continue
            checked.add(folder)
            try:
                with tempfile.TemporaryFile(dir=folder):
                    pass
            except OSError as exc:
                raise TargetError(
                    f"the local catalog folder {folder} is not writable ({exc.strerror}); nothing was written.",
                    hint="Give this user write access to target.path and the folders under it, then sync again.",
                ) from exc

    def write(self, request: WriteRequest, progress: ProgressCallback | None = None) -> pl.DataFrame:
        self._check_writable(
            request.databases["glue_database"].to_list()
            + request.tables.filter(pl.col("action") != "delete")["glue_database"].unique().to_list()
        )
        failed_databases: dict[str, str] = {}
        for row in request.databases.iter_rows(named=True):
            path = self._database_file(row["glue_database"])
            if path.exists():
                continue  # an existing database is used as it is, managed or not
            self.calls.add("CreateDatabase")
            try:
                self._write_file(path, _dumps(orjson.loads(row["database_input"])))
            # After the check above: the disk filled up, or the folder changed meanwhile.
            except OSError as exc:
                failed_databases[row["glue_database"]] = f"cannot write {path}: {exc.strerror}"

        outcomes: list[dict[str, Any]] = self.calls.outcomes  # filled as rows are written
        outcomes.clear()
        failed: set[str] = set()
        for row in request.tables.sort("batch", maintain_order=True).iter_rows(named=True):
            asset_id = f"{row['space']}.{row['name']}"
            base = {k: row[k] for k in ("space", "name", "glue_database", "glue_table", "action")}
            blocked = [u for u in (row.get("upstreams") or []) if u in failed]
            if row["action"] != "delete" and row["glue_database"] in failed_databases:
                failed.add(asset_id)
                outcomes.append(
                    base
                    | {
                        "status": "failed",
                        "error_code": "DatabaseNotCreated",
                        "message": f"database '{row['glue_database']}' could not be created: "
                        + failed_databases[row["glue_database"]],
                        "hint": _WRITE_HINT,
                    }
                )
            elif blocked:
                failed.add(asset_id)
                outcomes.append(
                    base
                    | {
                        "status": "skipped",
                        "error_code": "UpstreamFailed",
                        "message": f"skipped because upstream {blocked[0]} was not written",
                        "hint": "Fix the upstream asset first; this one follows on the next run.",
                    }
                )
            else:
                outcome = self._write_table(row)
                if outcome["status"] != "ok":
                    failed.add(asset_id)
                outcomes.append(base | outcome)
            if progress is not None:
                progress(1)
        return outcome_frame(outcomes)

    def _write_table(self, row: dict[str, Any]) -> dict[str, Any]:
        path = self._table_file(row["glue_database"], row["glue_table"])
        action = row["action"]
        try:
            if action in ("update", "delete") and path.exists() and not self._is_managed_file(path):
                return {
                    "status": "failed",
                    "error_code": "Unmanaged",
                    "message": f"{path} is not managed by metasync and was left as it is",
                    "hint": "Rename the asset with a naming rule or remove the foreign table yourself.",
                }
            if action == "delete":
                self.calls.add("BatchDeleteTable")
                path.unlink(missing_ok=True)
            else:
                if action == "create" and path.exists():
                    return {
                        "status": "failed",
                        "error_code": "AlreadyExistsException",
                        "message": f"{path} appeared after the target was read",
                        "hint": "Run the sync again; it will plan an update.",
                    }
                self.calls.add("CreateTable" if action == "create" else "UpdateTable")
                self._write_file(path, _dumps(table_input_from_request(row["table_input"])))
        except OSError as exc:
            return {
                "status": "failed",
                "error_code": type(exc).__name__,
                "message": f"cannot write {path}: {exc.strerror}",
                "hint": _WRITE_HINT,
            }
        return {"status": "ok", "error_code": None, "message": None, "hint": None}
