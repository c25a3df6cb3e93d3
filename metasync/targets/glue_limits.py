"""AWS Glue's limits on what a table may hold, checked before anything is sent (moto does not check them)."""

from __future__ import annotations

from typing import Any

import polars as pl

NAME_MAX_BYTES = 255
DESCRIPTION_MAX_CHARS = 2048
COMMENT_MAX_CHARS = 255
COLUMN_TYPE_MAX_CHARS = 131_072
PARAMETER_KEY_MAX_CHARS = 255
PARAMETER_VALUE_MAX_CHARS = 512_000

_COLUMN = pl.Struct({"Name": pl.Utf8, "Type": pl.Utf8, "Comment": pl.Utf8})
_TABLE_INPUT = pl.Struct(
    {
        "Name": pl.Utf8,
        "Description": pl.Utf8,
        "StorageDescriptor": pl.Struct({"Columns": pl.List(_COLUMN)}),
        "PartitionKeys": pl.List(_COLUMN),
    }
)
_CONTROL = r"[\x00-\x1f\x7f]"


def _bad_name(name: pl.Expr) -> pl.Expr:
    """True where a database, table or column name breaks Glue's rules: 1-255 bytes, lowercase, one line."""
    return (
        name.is_null()
        | ~name.str.len_bytes().is_between(1, NAME_MAX_BYTES)
        | (name != name.str.to_lowercase())
        | name.str.contains(_CONTROL)
    )


def _bad_column(column: pl.Expr) -> pl.Expr:
    name, kind, comment = (column.struct.field(f) for f in ("Name", "Type", "Comment"))
    return (
        _bad_name(name)
        | kind.is_null()
        | ~kind.str.len_chars().is_between(1, COLUMN_TYPE_MAX_CHARS)
        | (comment.str.len_chars() > COMMENT_MAX_CHARS).fill_null(False)
        | comment.str.contains(r"[\r\n]").fill_null(False)
    )


def _first_bad_column(columns: pl.Expr) -> pl.Expr:
    return columns.list.eval(pl.element().filter(_bad_column(pl.element())).struct.field("Name")).list.first()


def limit_violations(tables: pl.DataFrame) -> pl.Series:
    """One message per table row naming the first Glue limit it breaks, null where the row is fine.

    Reads `glue_database`, `glue_table` and `table_input` (JSON text of a TableInput).
    """
    if tables.is_empty():
        return pl.Series("violation", [], dtype=pl.Utf8)
    decoded = pl.col("table_input").str.json_decode(_TABLE_INPUT)
    columns = decoded.struct.field("StorageDescriptor").struct.field("Columns").fill_null([])
    partitions = decoded.struct.field("PartitionKeys").fill_null([])
    all_columns = pl.concat_list(columns, partitions)
    description = decoded.struct.field("Description")
    name = decoded.struct.field("Name")
    checks: list[tuple[pl.Expr, pl.Expr]] = [
        (
            _bad_name(pl.col("glue_database")),
            pl.format(
                "database name '{}' breaks Glue's name rules (1-255 bytes, lowercase, no control characters)",
                pl.col("glue_database"),
            ),
        ),
        (
            _bad_name(pl.col("glue_table")),
            pl.format(
                "table name '{}' breaks Glue's name rules (1-255 bytes, lowercase, no control characters)",
                pl.col("glue_table"),
            ),
        ),
        (
            name.is_null() | (name != pl.col("glue_table")),
            pl.format("TableInput Name '{}' differs from the table name '{}'", name, pl.col("glue_table")),
        ),
        (
            (description.str.len_chars() > DESCRIPTION_MAX_CHARS).fill_null(False),
            pl.format(
                "the description has {} characters; Glue allows at most {}",
                description.str.len_chars(),
                pl.lit(DESCRIPTION_MAX_CHARS),
            ),
        ),
        (
            _first_bad_column(all_columns).is_not_null(),
            pl.format(
                "column '{}' breaks Glue's limits (name 1-255 bytes and lowercase, type set, "
                "comment at most 255 characters on one line)",
                _first_bad_column(all_columns),
            ),
        ),
        (
            all_columns.list.eval(pl.element().struct.field("Name")).list.n_unique() < all_columns.list.len(),
            pl.lit("two columns share one name; Glue and Athena need unique column names"),
        ),
    ]
    violation = pl.coalesce([pl.when(bad.fill_null(True)).then(message) for bad, message in checks])
    return tables.select(violation.alias("violation")).to_series()


def parameter_violation(parameters: dict[str, Any] | None, where: str = "table") -> str | None:
    """A message naming the first parameter that breaks Glue's key/value limits, or None."""
    for key, value in (parameters or {}).items():
        if not 1 <= len(key) <= PARAMETER_KEY_MAX_CHARS:
            return f"{where} parameter key '{key[:40]}…' has {len(key)} characters; Glue allows 1-255"
        if not isinstance(value, str):
            return f"{where} parameter '{key}' is not a string; Glue parameters are strings"
        if len(value) > PARAMETER_VALUE_MAX_CHARS:
            return (
                f"{where} parameter '{key}' has {len(value)} characters; "
                f"Glue allows at most {PARAMETER_VALUE_MAX_CHARS}"
            )
    return None
