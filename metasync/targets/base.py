"""What every target (local folder, AWS Glue) offers: its current state, and writes that return outcome rows.

Shapes shared by all targets:

* `TableState` frame (what the target holds now), one row per table in the databases asked for:
  `glue_database`, `glue_table`, `managed` (bool: `metasync:managed` = `true`), `space`, `name`
  (from `metasync:space` / `metasync:name`, null when unmanaged), `hash` (`metasync:hash`, null when unmanaged),
  `description` (table Description), `version_id` (Glue VersionId; null on local), `definition` (the table as
  JSON text, in Glue's TableInput shape, for column-level diffs and conflict detection).
* `DatabaseState` frame: `glue_database`, `managed` (bool).
* `WriteRequest`: the database rows and table rows to write, in plan order. Table rows carry `space`, `name`,
  `glue_database`, `glue_table`, `action` (`create` | `update` | `delete`), `batch`, `hash`, `table_input`
  (JSON text of the full TableInput, Parameters as a JSON object, including `metasync:hash`), `version_id`
  (for updates), and `upstreams` (list of ASSET_IDs whose failure means this row must be skipped).
* Outcome frame (what `write` returns): one row per table row of the request with `space`, `name`,
  `glue_database`, `glue_table`, `action`, `status` (`ok` | `failed` | `skipped`), `error_code`, `message`,
  `hint`. A target never raises for one asset: it reports it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl


def column_signature(table: dict[str, Any]) -> str:
    """A table's columns (names and types, in order) as one text, to tell whether they were changed in the
    target; the same text as the `column_signature` that `mapping.table_inputs` makes of the columns metasync
    writes (its entries made by `signature_entry`)."""
    columns = (table.get("StorageDescriptor") or {}).get("Columns") or []
    return SIGNATURE_COLUMN_SEP.join(
        f"{c.get('Name') or ''}{SIGNATURE_FIELD_SEP}{c.get('Type') or ''}" for c in columns
    )


SIGNATURE_FIELD_SEP, SIGNATURE_COLUMN_SEP = "\x1f", "\x1e"  # between name and type; between columns


def signature_entry(name: pl.Expr, type_: pl.Expr) -> pl.Expr:
    """One column's entry in a `column_signature`, as a Polars expression (a missing name or type is empty);
    the entries of a table's columns, in order, are joined with `SIGNATURE_COLUMN_SEP`."""
    return pl.concat_str([name.fill_null(""), type_.fill_null("")], separator=SIGNATURE_FIELD_SEP)


TABLE_STATE_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "glue_database": pl.Utf8,
    "glue_table": pl.Utf8,
    "managed": pl.Boolean,
    "space": pl.Utf8,
    "name": pl.Utf8,
    "hash": pl.Utf8,
    "description": pl.Utf8,
    "version_id": pl.Utf8,
    "definition": pl.Utf8,
    "schema": pl.Utf8,  # `column_signature` of the table's columns as they are in the target
}
DATABASE_STATE_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "glue_database": pl.Utf8,
    "managed": pl.Boolean,
}
OUTCOME_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "space": pl.Utf8,
    "name": pl.Utf8,
    "glue_database": pl.Utf8,
    "glue_table": pl.Utf8,
    "action": pl.Utf8,
    "status": pl.Utf8,
    "error_code": pl.Utf8,
    "message": pl.Utf8,
    "hint": pl.Utf8,
}


@dataclass
class TargetState:
    databases: pl.DataFrame
    tables: pl.DataFrame


@dataclass
class WriteRequest:
    """Databases to create (`glue_database`, `database_input` JSON) and table rows, in plan order."""

    databases: pl.DataFrame
    tables: pl.DataFrame


ProgressCallback = Callable[[int], None]


@dataclass
class CallCounter:
    """Counts the calls made to a target, by operation name (Glue's names, e.g. `GetTables`), and keeps the
    outcome row of every table row written so far (OUTCOME_COLUMNS): a run stopped in the middle of writing
    still tells in its audit what it wrote."""

    counts: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    outcomes: list[dict[str, str | None]] = field(default_factory=list)

    def add(self, operation: str, n: int = 1) -> None:
        self.counts[operation] += n

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


class Target(Protocol):
    """A catalog metasync writes to."""

    calls: CallCounter

    def describe(self) -> str:
        """A short human name of the target, for messages (e.g. `local catalog /x` or `Glue eu-west-1`)."""
        ...

    def read_state(self, databases: list[str]) -> TargetState:
        """Current databases and tables for the given database names (others are not read)."""
        ...

    def write(self, request: WriteRequest, progress: ProgressCallback | None = None) -> pl.DataFrame:
        """Apply the request batch by batch and return one outcome row per table row."""
        ...


def outcome_frame(rows: list[dict[str, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=OUTCOME_COLUMNS)
