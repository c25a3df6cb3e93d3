"""Small generated CSN exports for end-to-end runs into Glue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def table(extra_columns: int = 0, label: str | None = None) -> dict[str, Any]:
    """A local-table definition with a key, a decimal and a string column (plus `extra_columns`)."""
    elements: dict[str, Any] = {
        "ID": {"type": "cds.Integer", "key": True, "notNull": True},
        "AMOUNT": {"type": "cds.Decimal", "precision": 15, "scale": 2},
        "NOTE": {"type": "cds.String", "length": 100},
    }
    elements.update({f"EXTRA_{i}": {"type": "cds.String", "length": 10} for i in range(extra_columns)})
    definition: dict[str, Any] = {"kind": "entity", "elements": elements}
    if label:
        definition["@EndUserText.label"] = label
    return definition


def view(upstream: str) -> dict[str, Any]:
    """A view selecting the key of `upstream`."""
    return {
        "kind": "entity",
        "query": {"SELECT": {"from": {"ref": [upstream]}, "columns": [{"ref": ["ID"]}]}},
        "elements": {"ID": {"type": "cds.Integer", "key": True}},
    }


def write_export(root: Path, space: str, definitions: dict[str, Any], file: str = "export.json") -> Path:
    """Write one CSN file under `root/<space>/` and return `root`."""
    folder = root / space
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_text(json.dumps({"definitions": definitions}), encoding="utf-8")
    return root


def tables(n: int, prefix: str = "T") -> dict[str, Any]:
    """`n` table definitions named `<prefix>_00000`, `<prefix>_00001`, ..."""
    return {f"{prefix}_{i:05d}": table(label=f"Table {i}") for i in range(n)}
