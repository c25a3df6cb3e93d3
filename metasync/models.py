"""The frames that flow between stages, their pandera schemas, and the small records around them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandera.polars as pa
import polars as pl

ASSET_KINDS = (
    "table",
    "remote_table",
    "view",
    "fact",
    "dimension",
    "text",
    "hierarchy",
    "analytic_model",
    "data_flow",
    "external",
)

DATA_FLOW_EDGE_KINDS = ("from", "join", "union", "fact_source", "dimension_source", "flow")
RELATIONSHIP_EDGE_KINDS = ("association", "text", "foreign_key")
EDGE_KINDS = DATA_FLOW_EDGE_KINDS + RELATIONSHIP_EDGE_KINDS

PLAN_ACTIONS = ("create", "update", "unchanged", "delete", "skip", "quarantine", "conflict")

# ------------------------------------------------------------------ source frames
ASSET_SCHEMA = pa.DataFrameSchema(
    {
        "space": pa.Column(pl.Utf8, pa.Check.str_length(min_value=1)),
        "name": pa.Column(pl.Utf8, pa.Check.str_length(min_value=1)),
        "kind": pa.Column(pl.Utf8, pa.Check.isin(ASSET_KINDS)),
        "business_name": pa.Column(pl.Utf8, nullable=True),
        "description": pa.Column(pl.Utf8, nullable=True),
        "modeling_pattern": pa.Column(pl.Utf8, nullable=True),
        "hierarchies": pa.Column(pl.List(pl.Utf8)),
        # JSON text: per hierarchy its name, label and level columns or parent and child columns
        "hierarchy_details": pa.Column(pl.Utf8, nullable=True, required=False),
        "remote_source": pa.Column(pl.Utf8, nullable=True),
        "source_file": pa.Column(pl.Utf8),
        "content_hash": pa.Column(pl.Utf8, pa.Check.str_length(min_value=16)),
    },
    unique=["space", "name"],
    strict=False,
    name="assets",
)

COLUMN_SCHEMA = pa.DataFrameSchema(
    {
        "space": pa.Column(pl.Utf8),
        "name": pa.Column(pl.Utf8),
        "column": pa.Column(pl.Utf8, pa.Check.str_length(min_value=1)),
        "ordinal": pa.Column(pl.Int32, pa.Check.ge(0)),
        "source_type": pa.Column(pl.Utf8),
        "length": pa.Column(pl.Int64, nullable=True),
        "precision": pa.Column(pl.Int64, nullable=True),
        "scale": pa.Column(pl.Int64, nullable=True),
        "is_key": pa.Column(pl.Boolean),
        "not_null": pa.Column(pl.Boolean),
        "business_name": pa.Column(pl.Utf8, nullable=True),
        "description": pa.Column(pl.Utf8, nullable=True),
        "semantic_role": pa.Column(pl.Utf8, pa.Check.isin(["measure", "dimension", "attribute", "text"])),
        "aggregation": pa.Column(pl.Utf8, nullable=True),
        "type_origin": pa.Column(pl.Utf8, pa.Check.isin(["declared", "type", "lineage", "fallback"])),
    },
    unique=["space", "name", "column"],
    strict=False,
    name="columns",
)

EDGE_SCHEMA = pa.DataFrameSchema(
    {
        "source_space": pa.Column(pl.Utf8),
        "source_name": pa.Column(pl.Utf8),
        "target_space": pa.Column(pl.Utf8),
        "target_name": pa.Column(pl.Utf8),
        "kind": pa.Column(pl.Utf8, pa.Check.isin(EDGE_KINDS)),
        "via": pa.Column(pl.Utf8, nullable=True),
    },
    strict=False,
    name="edges",
)

COLUMN_LINEAGE_SCHEMA = pa.DataFrameSchema(
    {
        "space": pa.Column(pl.Utf8),
        "name": pa.Column(pl.Utf8),
        "column": pa.Column(pl.Utf8),
        "upstream_space": pa.Column(pl.Utf8),
        "upstream_name": pa.Column(pl.Utf8),
        "upstream_column": pa.Column(pl.Utf8),
        "transform": pa.Column(pl.Utf8),
    },
    strict=False,
    name="column_lineage",
)

EVENT_COLUMNS: dict[str, Any] = {
    "run_id": pl.Utf8,
    "ts": pl.Datetime("us", "UTC"),
    "event": pl.Utf8,
    "severity": pl.Utf8,
    "space": pl.Utf8,
    "name": pl.Utf8,
    "action": pl.Utf8,
    "status": pl.Utf8,
    "message": pl.Utf8,
    "details": pl.Utf8,
    "hint": pl.Utf8,
}


@dataclass
class Event:
    """One audit row before it gets its run id and timestamp."""

    event: str
    severity: str  # info | warning | error
    message: str
    space: str | None = None
    name: str | None = None
    action: str | None = None
    status: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    hint: str | None = None


@dataclass
class SourceFrames:
    """What a source returns: the frames, plus events and whether any part could not be read."""

    assets: pl.DataFrame
    columns: pl.DataFrame
    edges: pl.DataFrame
    column_lineage: pl.DataFrame
    events: list[Event] = field(default_factory=list)
    incomplete: bool = False

    def validate(self) -> SourceFrames:
        """Check every frame against its schema (raises pandera's SchemaError on a broken source)."""
        ASSET_SCHEMA.validate(self.assets)
        COLUMN_SCHEMA.validate(self.columns)
        EDGE_SCHEMA.validate(self.edges)
        COLUMN_LINEAGE_SCHEMA.validate(self.column_lineage)
        return self


# The events of a read that left a part of the source out (a skipped file or space, a list in doubt).
UNREAD_EVENTS = frozenset({"file_skipped", "space_skipped", "object_type_unavailable", "list_incomplete"})
_NOT_IN_SPACE = re.compile(r"[./\\\x00-\x1f]")


def space_name_problem(space: str) -> str | None:
    """Why `space` cannot name a space, or None: an ASSET_ID is `SPACE.NAME`, split at its first dot, so a
    space name has no dot (nor a path separator or control character, as Datasphere's technical names)."""
    if not space.strip():
        return "is empty"
    if _NOT_IN_SPACE.search(space):
        return "has a dot, slash or control character, which a space name cannot have"
    return None
