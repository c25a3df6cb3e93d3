"""Compare the desired tables with the target's current state: create, update, unchanged, conflict, stale."""

from __future__ import annotations

import hashlib

import orjson
import polars as pl

from metasync.targets.base import TargetState


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
    )


def diff_tables(desired: pl.DataFrame, state: TargetState) -> pl.DataFrame:
    """Add `action`, `reason`, `version_id` and `current_definition` to the desired rows.

    * no table of that name → `create`;
    * a table without `metasync:managed` → `conflict` (never changed by metasync);
    * a managed table written for another asset → `conflict`;
    * same hash → `unchanged`; else `update`.
    """
    current = current_tables(state).with_columns(_exists=pl.lit(True))
    joined = desired.join(current, on=["glue_database", "glue_table"], how="left", maintain_order="left")
    exists = pl.col("_exists").fill_null(False)
    other_owner = (pl.col("_owner_space") != pl.col("space")) | (pl.col("_owner_name") != pl.col("name"))
    action = (
        pl.when(~exists)
        .then(pl.lit("create"))
        .when(~pl.col("_managed"))
        .then(pl.lit("conflict"))
        .when(other_owner)
        .then(pl.lit("conflict"))
        .when(pl.col("_hash") == pl.col("hash"))
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
    )
    return joined.with_columns(
        action=action,
        reason=reason,
        conflict_type=pl.when(exists & ~pl.col("_managed").fill_null(False))
        .then(pl.lit("ownership"))
        .when(exists & other_owner.fill_null(False))
        .then(pl.lit("naming")),
    ).drop("_managed", "_owner_space", "_owner_name", "_hash", "_exists")


def stale_tables(desired: pl.DataFrame, state: TargetState, source_spaces: list[str]) -> pl.DataFrame:
    """Managed tables in the databases read whose asset is gone from a space the source read completely."""
    return (
        state.tables.filter(pl.col("managed") & pl.col("space").is_in(source_spaces))
        .join(desired.select("glue_database", "glue_table"), on=["glue_database", "glue_table"], how="anti")
        .join(desired.select("space", "name"), on=["space", "name"], how="anti")
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
