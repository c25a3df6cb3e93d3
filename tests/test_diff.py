"""schema_edited_in_target on hand-built desired rows and target states."""

from __future__ import annotations

import orjson
import polars as pl
import pytest

from metasync.diff import schema_edited_in_target
from metasync.targets.base import DATABASE_STATE_COLUMNS, TABLE_STATE_COLUMNS, TargetState, column_signature


def _state(table: dict, digest: str) -> TargetState:
    row = {
        "glue_database": "db",
        "glue_table": "t",
        "managed": True,
        "space": "S",
        "name": "T",
        "hash": digest,
        "description": None,
        "version_id": None,
        "definition": orjson.dumps(table).decode(),
        "schema": column_signature(table),
    }
    return TargetState(
        databases=pl.DataFrame({"glue_database": ["db"], "managed": [True]}, schema=DATABASE_STATE_COLUMNS),
        tables=pl.DataFrame([row], schema=TABLE_STATE_COLUMNS),
    )


def _desired(table: dict, digest: str, **signature: str | None) -> pl.DataFrame:
    row = {"space": "S", "name": "T", "glue_database": "db", "glue_table": "t", "hash": digest}
    return pl.DataFrame([row | {"table_input": orjson.dumps(table).decode()} | signature])


COLUMNS = {"Name": "t", "StorageDescriptor": {"Columns": [{"Name": "a", "Type": "string"}]}}
NONE = {"Name": "t", "StorageDescriptor": {"Columns": []}}


@pytest.mark.parametrize(
    ("written", "in_target", "signature", "edited"),
    [
        (COLUMNS, COLUMNS, {}, False),  # no signature given: read from the TableInput
        (COLUMNS, COLUMNS, {"column_signature": "a\x1fstring"}, False),
        (COLUMNS, NONE, {"column_signature": "a\x1fstring"}, True),  # the column was dropped in the target
        (NONE, NONE, {"column_signature": None}, False),  # no columns: a null signature is an empty one
        (NONE, NONE, {"column_signature": ""}, False),
        (NONE, COLUMNS, {"column_signature": None}, True),  # a column was added in the target
    ],
)
def test_columns_edited_in_the_target_are_found_whatever_gives_the_desired_signature(
    written: dict, in_target: dict, signature: dict, edited: bool
) -> None:
    found = schema_edited_in_target(_desired(written, "h", **signature), _state(in_target, "h"))
    assert (found.height == 1) is edited


def test_a_table_whose_source_changed_is_not_an_edit_in_the_target() -> None:
    """Only tables whose stored hash matches are checked; a changed source is an ordinary update."""
    found = schema_edited_in_target(_desired(COLUMNS, "new"), _state(NONE, "old"))
    assert found.is_empty()
