"""Turning the canonical TableInput JSON of the mapping into what a target sends, and back."""

from __future__ import annotations

from typing import Any

import orjson

HASH_KEY = "metasync:hash"


def _pairs_to_object(pairs: Any) -> dict[str, str]:
    if isinstance(pairs, dict):
        return {k: v for k, v in pairs.items() if v is not None}
    return {p["key"]: p["value"] for p in pairs or [] if p.get("value") is not None}


def _without_nulls(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if v is not None}


def finalize_table_input(canonical: str, content_hash: str) -> str:
    """The TableInput a target writes: Parameters as objects, no null fields, `metasync:hash` added."""
    table = _without_nulls(orjson.loads(canonical))
    table["Parameters"] = _pairs_to_object(table.get("Parameters")) | {HASH_KEY: content_hash}
    descriptor = table.get("StorageDescriptor") or {}
    columns = []
    for column in descriptor.get("Columns") or []:
        column = _without_nulls(column)
        params = _pairs_to_object(column.get("Parameters"))
        if params:
            column["Parameters"] = params
        else:
            column.pop("Parameters", None)
        columns.append(column)
    table["StorageDescriptor"] = {**descriptor, "Columns": columns}
    return orjson.dumps(table).decode()


def table_input_from_request(text: str) -> dict[str, Any]:
    """The TableInput of a write request row as a dict."""
    value = orjson.loads(text)
    if not isinstance(value, dict):
        raise ValueError("table_input must be a JSON object")
    return value


def database_input(database: str, space: str) -> str:
    """The DatabaseInput metasync creates for a space."""
    return orjson.dumps(
        {
            "Name": database,
            "Description": f"SAP Datasphere space {space}, synchronised by metasync",
            "Parameters": {"metasync:managed": "true", "metasync:space": space},
        }
    ).decode()
