"""Small mapped frames (source fields plus the default Glue mapping) for rule and conflict tests."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from param_cells import parameters_series

from metasync.transform.rules import ASSET_FIELDS, COLUMN_FIELDS


def _frame(rows: list[dict[str, Any]], fields: dict[str, pl.DataType]) -> pl.DataFrame:
    schema = {f: t for f, t in fields.items() if f != "parameters"}
    frame = pl.DataFrame([{f: row.get(f) for f in schema} for row in rows], schema=schema)
    return frame.with_columns(parameters_series([row.get("parameters") for row in rows]))


def asset_rows(*rows: dict[str, Any]) -> pl.DataFrame:
    """An assets frame: each row needs `space` and `name`; the Glue fields default to the plain mapping."""
    full = []
    for row in rows:
        row = dict(row)
        row.setdefault("kind", "table")
        row.setdefault("hierarchies", [])
        row.setdefault("source_file", "f.json")
        row.setdefault("content_hash", "0" * 16)
        row.setdefault("glue_database", row["space"].lower())
        row.setdefault("glue_table", row["name"].lower())
        full.append(row)
    return _frame(full, ASSET_FIELDS)


def column_rows(*rows: dict[str, Any]) -> pl.DataFrame:
    """A columns frame: each row needs `space`, `name`, `column`; ordinals follow row order per asset."""
    full = []
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        row = dict(row)
        key = (row["space"], row["name"])
        row.setdefault("ordinal", seen.get(key, 0))
        seen[key] = row["ordinal"] + 1
        row.setdefault("source_type", "cds.String")
        row.setdefault("is_key", False)
        row.setdefault("not_null", False)
        row.setdefault("semantic_role", "attribute")
        row.setdefault("type_origin", "declared")
        row.setdefault("glue_column", row["column"].lower())
        row.setdefault("glue_type", "string")
        full.append(row)
    return _frame(full, COLUMN_FIELDS)


@pytest.fixture
def sales_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two spaces, four assets of different kinds, nine columns."""
    assets = asset_rows(
        {"space": "SALES", "name": "Orders", "business_name": "Sales Orders", "description": "All orders"},
        {"space": "SALES", "name": "V_Orders", "kind": "view", "business_name": "Orders View"},
        {
            "space": "SALES",
            "name": "AM_Revenue",
            "kind": "analytic_model",
            "modeling_pattern": "ANALYTICAL_CUBE",
            "hierarchies": ["H_Region", "H_Time"],
        },
        {
            "space": "HR",
            "name": "SAP.TIME.DIM_DAY",
            "kind": "dimension",
            "modeling_pattern": "ANALYTICAL_DIMENSION",
        },
    )
    columns = column_rows(
        {
            "space": "SALES",
            "name": "Orders",
            "column": "ID",
            "is_key": True,
            "source_type": "cds.Integer",
            "glue_type": "int",
            "business_name": "Order ID",
        },
        {
            "space": "SALES",
            "name": "Orders",
            "column": "Note",
            "length": 100,
            "business_name": "Note",
            "description": "Free text",
        },
        {"space": "SALES", "name": "Orders", "column": "LongText", "length": 5000},
        {
            "space": "SALES",
            "name": "V_Orders",
            "column": "ID",
            "source_type": "cds.Integer",
            "glue_type": "int",
        },
        {
            "space": "SALES",
            "name": "V_Orders",
            "column": "Amount",
            "source_type": "cds.Decimal",
            "precision": 15,
            "scale": 2,
            "glue_type": "decimal(15,2)",
            "semantic_role": "measure",
        },
        {
            "space": "SALES",
            "name": "AM_Revenue",
            "column": "Region",
            "length": 10,
            "semantic_role": "dimension",
        },
        {
            "space": "SALES",
            "name": "AM_Revenue",
            "column": "Revenue",
            "source_type": "cds.Decimal",
            "precision": 20,
            "scale": 4,
            "glue_type": "decimal(20,4)",
            "semantic_role": "measure",
            "aggregation": "SUM",
        },
        {
            "space": "SALES",
            "name": "AM_Revenue",
            "column": "Quantity",
            "source_type": "cds.Integer",
            "glue_type": "int",
            "semantic_role": "measure",
            "aggregation": "SUM",
        },
        {
            "space": "HR",
            "name": "SAP.TIME.DIM_DAY",
            "column": "DATE_SQL",
            "source_type": "cds.Date",
            "glue_type": "date",
            "is_key": True,
        },
    )
    return assets, columns


@pytest.fixture
def make_frames():
    """The frame builders, as a fixture: `make_frames(asset_dicts, column_dicts) -> (assets, columns)`."""

    def build(
        assets: list[dict[str, Any]], columns: list[dict[str, Any]]
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        return asset_rows(*assets), column_rows(*columns)

    return build
