"""Glue's limits as pandera schemas over Polars expressions: rows that break one are quarantined, not sent.

Each check is `(name, ok_expression, message, hint)`; the pandera schemas `GLUE_TABLE_SCHEMA` /
`GLUE_COLUMN_SCHEMA` run them, and their failure cases (check and row) are the quarantine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from metasync.transform.mapping import (
    MAX_COMMENT,
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_PARAMETER_VALUE,
    duplicated_names,
    glue_type_problem,
    table_keys,
)

NAME_PATTERN = r"^[a-z0-9_]+$"


def _valid_type(frame: pl.LazyFrame) -> pl.Expr:
    """True where `glue_type` is a valid Glue type (`glue_type_problem`), decided once per distinct type (a
    tenant has a few dozen on millions of columns)."""
    distinct = frame.select(pl.col("glue_type").unique().drop_nulls()).collect().to_series().to_list()
    valid = [t for t in distinct if glue_type_problem(t) is None]  # row-python-ok: once per distinct type
    return pl.col("glue_type").is_in(pl.Series(valid, dtype=pl.Utf8).implode())


@dataclass(frozen=True)
class LimitCheck:
    name: str
    ok: pl.Expr | Callable[[pl.LazyFrame], pl.Expr]  # an expression, or one made for the frame checked
    message: str
    hint: str

    def expr(self, frame: pl.LazyFrame) -> pl.Expr:
        return self.ok if isinstance(self.ok, pl.Expr) else self.ok(frame)


def _unique_in_table(frame: pl.LazyFrame) -> pl.Expr:
    """No other column of the same table has the same Glue name (found by `duplicated_names`, computed here
    once for the frame checked)."""
    keys = table_keys(frame)
    names = frame.select(*keys, "glue_column").collect()
    return pl.lit(~duplicated_names(names, keys, "glue_column"))


def _params_ok(column: str) -> pl.Expr:
    """Every set Parameters value within Glue's limit (keys are checked when the rules are loaded)."""
    values = pl.col(column).struct.unnest().str.len_chars().fill_null(0)
    return pl.all_horizontal(values <= MAX_PARAMETER_VALUE)


def _glue_name(column: str) -> pl.Expr:
    """A name Glue and Athena both take: a-z, 0-9 and _ only, at most 255 bytes."""
    return pl.col(column).str.contains(NAME_PATTERN) & (pl.col(column).str.len_bytes() <= MAX_NAME)


TABLE_CHECKS = (
    LimitCheck(
        "database_name",
        _glue_name("glue_database"),
        "database name is not a valid Glue name",
        "Add a naming rule that gives the space a name of a-z, 0-9 and _ only, at most 255 bytes.",
    ),
    LimitCheck(
        "table_name",
        _glue_name("glue_table"),
        "table name is not a valid Glue name",
        "Add a naming rule that gives the asset a name of a-z, 0-9 and _ only, at most 255 bytes.",
    ),
    LimitCheck(
        "description_length",
        pl.col("glue_description").is_null()
        | (pl.col("glue_description").str.len_chars() <= MAX_DESCRIPTION),
        f"table description is longer than {MAX_DESCRIPTION} characters",
        "Shorten the description template of the business-context rule.",
    ),
    LimitCheck(
        "table_parameters",
        _params_ok("parameters"),
        "a table Parameter value exceeds 512,000 characters",
        "Shorten the text in the source (often a very long description, kept whole in metasync:description) or "
        "the Parameters a rule sets for this asset.",
    ),
    LimitCheck(
        "unique_table",
        ~pl.struct("glue_database", "glue_table").is_duplicated(),
        "another asset maps to the same Glue table",
        "Give one of the assets another name with a naming rule.",
    ),
)

COLUMN_CHECKS = (
    LimitCheck(
        "column_name",
        _glue_name("glue_column"),
        "column name is not a valid Glue name",
        "Rename the column with a naming rule (a-z, 0-9 and _ only, at most 255 bytes).",
    ),
    LimitCheck(
        "column_type",
        _valid_type,
        "column type is not a valid Glue/Hive type",
        "Fix the `type` rule for this source type (lowercase Hive types such as decimal(p,s) or varchar(n)).",
    ),
    LimitCheck(
        "column_comment",
        pl.col("comment").is_null()
        | ((pl.col("comment").str.len_chars() <= MAX_COMMENT) & ~pl.col("comment").str.contains(r"[\r\n]")),
        "column comment is longer than 255 characters or has a line break",
        "Shorten the comment template of the business-context rule.",
    ),
    LimitCheck(
        "column_parameters",
        _params_ok("parameters"),
        "a column Parameter value exceeds 512,000 characters",
        "Shorten the text in the source (often a very long description, kept whole in metasync:description) or "
        "the Parameters a rule sets for this column.",
    ),
    LimitCheck(
        "unique_column",
        _unique_in_table,
        "two columns of the table have the same Glue name",
        "Rename one of the columns with a naming rule.",
    ),
)


_VIOLATION_SCHEMA = {"space": pl.Utf8, "name": pl.Utf8, "check": pl.Utf8, "subject": pl.Utf8}


def _violations(
    frame: pl.DataFrame, schema: pa.DataFrameSchema, checks: tuple[LimitCheck, ...], keys: list[str]
) -> pl.DataFrame:
    """Validate `frame` with the pandera `schema` (every check, one pass each) and turn its failure cases into
    one row per broken check and row."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        if cases["index"].null_count() or cases["check_number"].null_count():
            raise  # not a limit check (a missing column or a wrong type): a defect, not data to quarantine
        names = pl.Series([c.name for c in checks], dtype=pl.Utf8)
        rows = cases.select(pl.col("index").cast(pl.UInt32), pl.col("check_number").cast(pl.UInt32))
        subject = pl.col("column") if "column" in keys else pl.lit(None, dtype=pl.Utf8)
        if "glue_type" in frame.columns:  # a bad type is named with the column it was given to
            subject = (
                pl.when(pl.col("check") == "column_type")
                .then(pl.format("{}: {}", subject, "glue_type"))
                .otherwise(subject)
            )
        shown = [*keys, "glue_type"] if "glue_type" in frame.columns else keys
        return (
            frame.select(*shown)[rows["index"]]
            .with_columns(check=names.gather(rows["check_number"]))
            .select("space", "name", subject.alias("subject"), "check")
            .select(list(_VIOLATION_SCHEMA))
        )
    return pl.DataFrame(schema=_VIOLATION_SCHEMA)


def find_violations(assets: pl.DataFrame, columns: pl.DataFrame) -> pl.DataFrame:
    """Validate the mapped frames against Glue's limits with the pandera schemas.

    One row per broken limit: `space`, `name`, `check`, `subject` (column name or null), `message`, `hint`.
    """
    both = pl.concat(
        [
            _violations(assets, GLUE_TABLE_SCHEMA, TABLE_CHECKS, ["space", "name"]),
            _violations(columns, GLUE_COLUMN_SCHEMA, COLUMN_CHECKS, ["space", "name", "column"]),
        ]
    )
    catalog = pl.DataFrame(
        {
            "check": [c.name for c in TABLE_CHECKS + COLUMN_CHECKS],
            "message": [c.message for c in TABLE_CHECKS + COLUMN_CHECKS],
            "hint": [c.hint for c in TABLE_CHECKS + COLUMN_CHECKS],
        }
    )
    return both.join(catalog, on="check", how="left", maintain_order="left")


def _schema(checks: tuple[LimitCheck, ...], name: str) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        checks=[
            pa.Check(
                lambda data, check=c: data.lazyframe.select(check.expr(data.lazyframe).fill_null(False)),
                name=c.name,
                error=c.message,
            )
            for c in checks
        ],
        name=name,
        strict=False,
    )


GLUE_TABLE_SCHEMA = _schema(TABLE_CHECKS, "glue_tables")
GLUE_COLUMN_SCHEMA = _schema(COLUMN_CHECKS, "glue_columns")
