"""Compare the desired tables with the target's current state: create, update, unchanged, conflict, stale."""

from __future__ import annotations

import hashlib

import orjson
import polars as pl

from metasync.targets.base import SIGNATURE_COLUMN_SEP, TargetState, signature_entry


def content_hashes(table_inputs: pl.Series) -> pl.Series:
    """SHA-256 of each canonical TableInput JSON text: the `metasync:hash` written with the table."""
    # In slices: the texts of 100,000 tables as Python objects at once would be as large as the column itself.
    # As bytes straight from Polars' UTF-8 buffers: making Python strings and encoding them again costs more
    # than the hashing.
    step = 10_000
    digests = [
        hashlib.sha256(data).hexdigest()
        for start in range(0, table_inputs.len(), step)
        for data in table_inputs.slice(start, step).cast(pl.Binary).to_list()
    ]
    return pl.Series("hash", digests, dtype=pl.Utf8)


def current_tables(state: TargetState) -> pl.DataFrame:
    """The target's tables keyed by Glue name, with the owner and hash metasync wrote (prefixed `_`)."""
    return state.tables.select(
        "glue_database",
        "glue_table",
        pl.col("managed").alias("_managed"),
        pl.col("space").alias("_owner_space"),
        pl.col("name").alias("_owner_name"),
        pl.col("hash").alias("_hash"),
        "version_id",
        pl.col("definition").alias("current_definition"),
        pl.col("schema").alias("_schema"),
    )


_SCHEMA_DTYPE = pl.List(pl.Struct({"Name": pl.Utf8, "Type": pl.Utf8}))


def _schema_of_json(table_json: pl.Expr) -> pl.Expr:
    """`column_signature` of a TableInput given as JSON text (slow: parses the text; for frames without their
    columns at hand)."""
    columns = table_json.str.json_path_match("$.StorageDescriptor.Columns").str.json_decode(_SCHEMA_DTYPE)
    column = pl.element().struct
    return (
        columns.list.eval(signature_entry(column.field("Name"), column.field("Type")))
        .list.join(SIGNATURE_COLUMN_SEP)
        .fill_null("")
    )


def schema_edited_in_target(desired: pl.DataFrame, state: TargetState) -> pl.DataFrame:
    """The managed tables (`glue_database`, `glue_table`) whose stored hash matches the desired one, so the
    source did not change, but whose columns in the target differ from what metasync wrote: the target was
    edited there (a column dropped, added, renamed or retyped in the console).

    The target's columns come from the state (`schema`); the desired ones from the `column_signature` that
    `table_inputs` makes, else (desired rows built by hand) from the TableInput texts."""
    keys = ["glue_database", "glue_table"]
    # Only the columns compared: the TableInput texts (desired and current) are as large as the catalog.
    signature = "column_signature" if "column_signature" in desired.columns else "table_input"
    current = current_tables(state).select(
        *keys, "_managed", "_hash", "_owner_space", "_owner_name", "_schema"
    )
    same = (
        desired.select("space", "name", *keys, "hash", signature)
        .join(current, on=keys, how="inner")
        .filter(
            pl.col("_managed")
            & (pl.col("_hash") == pl.col("hash"))
            & (pl.col("_owner_space") == pl.col("space"))
            & (pl.col("_owner_name") == pl.col("name"))
        )
    )
    if same.is_empty():
        return same.select(keys)
    desired_schema = (
        pl.col("column_signature").fill_null("")
        if signature == "column_signature"
        else _schema_of_json(pl.col("table_input"))
    )
    return same.filter(desired_schema.ne_missing(pl.col("_schema"))).select(keys)


def diff_tables(
    desired: pl.DataFrame, state: TargetState, schema_edited: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Add `action`, `reason`, `version_id` and `current_definition` to the desired rows.

    * no table of that name → `create`;
    * a table without `metasync:managed` → `conflict` (never changed by metasync);
    * a managed table written for another asset → `conflict`;
    * same hash and the columns as written → `unchanged`; else `update` (columns edited in the target are
      written again from the source). `schema_edited` is `schema_edited_in_target` (computed when not given).
    """
    keys = ["glue_database", "glue_table"]
    if schema_edited is None:
        schema_edited = schema_edited_in_target(desired, state)
    current = (
        current_tables(state)
        .join(schema_edited.with_columns(_edited=pl.lit(True)), on=keys, how="left")
        .with_columns(_exists=pl.lit(True), _edited=pl.col("_edited").fill_null(False))
    )
    joined = desired.join(current, on=keys, how="left", maintain_order="left")
    exists = pl.col("_exists").fill_null(False)
    other_owner = (pl.col("_owner_space") != pl.col("space")) | (pl.col("_owner_name") != pl.col("name"))
    action = (
        pl.when(~exists)
        .then(pl.lit("create"))
        .when(~pl.col("_managed"))
        .then(pl.lit("conflict"))
        .when(other_owner)
        .then(pl.lit("conflict"))
        .when((pl.col("_hash") == pl.col("hash")) & ~pl.col("_edited"))
        .then(pl.lit("unchanged"))
        .otherwise(pl.lit("update"))
    )
    reason = (
        pl.when(exists & ~pl.col("_managed").fill_null(False))
        .then(pl.format("table {}.{} exists and is not managed by metasync", "glue_database", "glue_table"))
        .when(exists & other_owner.fill_null(False))
        .then(
            pl.format(
                "table {}.{} is managed by metasync for another asset ({}.{})",
                "glue_database",
                "glue_table",
                "_owner_space",
                "_owner_name",
            )
        )
        .when(pl.col("_edited").fill_null(False))
        .then(
            pl.format(
                "the columns of {}.{} were changed in the target since metasync wrote them; the source's "
                "columns and types are written again",
                "glue_database",
                "glue_table",
            )
        )
    )
    return joined.with_columns(
        action=action,
        reason=reason,
        conflict_type=pl.when(exists & ~pl.col("_managed").fill_null(False))
        .then(pl.lit("ownership"))
        .when(exists & other_owner.fill_null(False))
        .then(pl.lit("naming")),
    ).drop("_managed", "_owner_space", "_owner_name", "_hash", "_exists", "_edited", "_schema")


def stale_tables(
    assets: pl.DataFrame, state: TargetState, source_spaces: list[str], source: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Managed tables in the databases read whose asset is gone from a space the source read completely.

    `assets` are the mapped assets (`space`, `name`, `glue_database`, `glue_table`), quarantined ones included:
    a table that one of them maps to is kept. `source` (`space`, `name`), when given, is every asset the
    source holds, in scope or not: a table written for one of them is kept too (its asset still exists).
    """
    kept = (source if source is not None else assets).select("space", "name")  # mapped assets are source ones
    return (
        state.tables.filter(pl.col("managed") & pl.col("space").is_in(source_spaces))
        .join(assets.select("glue_database", "glue_table"), on=["glue_database", "glue_table"], how="anti")
        .join(kept, on=["space", "name"], how="anti")
        .select("space", "name", "glue_database", "glue_table", "version_id")
    )


def column_changes(desired_json: str | None, current_json: str | None) -> dict[str, list[str]]:
    """Column-level difference between two TableInputs (for update events and dry runs)."""

    def columns(text: str | None) -> dict[str, str]:
        if not text:
            return {}
        table = orjson.loads(text)
        return {
            c["Name"]: c.get("Type", "") for c in (table.get("StorageDescriptor") or {}).get("Columns") or []
        }

    new, old = columns(desired_json), columns(current_json)
    return {
        "added": [c for c in new if c not in old],
        "removed": [c for c in old if c not in new],
        "retyped": [f"{c}: {old[c]} -> {new[c]}" for c in new if c in old and old[c] != new[c]],
    }
