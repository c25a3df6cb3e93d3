"""Lineage through the public API and CLI: a cycle is reported with all members while the rest syncs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import metasync
from metasync.cli import app


def _table(*columns: str) -> dict:
    return {"kind": "entity", "elements": {c: {"type": "cds.String", "length": 10} for c in columns}}


def _view(source: str, *columns: str) -> dict:
    return {
        **_table(*columns),
        "query": {"SELECT": {"from": {"ref": [source]}, "columns": [{"ref": [source, c]} for c in columns]}},
    }


@pytest.fixture
def cyclic_export(tmp_path: Path) -> dict:
    definitions = {
        "ORDERS": _table("ID", "AMOUNT"),
        "ORDERS_V": _view("ORDERS", "ID", "AMOUNT"),
        "LOOP_A": _view("LOOP_B", "ID"),
        "LOOP_B": _view("LOOP_C", "ID"),
        "LOOP_C": _view("LOOP_A", "ID"),
        "AFTER_LOOP": _view("LOOP_C", "ID"),
    }
    folder = tmp_path / "exports" / "SALES"
    folder.mkdir(parents=True)
    (folder / "export.json").write_text(json.dumps({"definitions": definitions}), encoding="utf-8")
    return {
        "source": {"kind": "csn", "path": str(tmp_path / "exports")},
        "target": {"kind": "local", "path": str(tmp_path / "catalog")},
        "audit": {"dir": str(tmp_path / "audit")},
    }


def test_cycle_is_one_error_event_naming_all_members_and_the_rest_syncs(
    cyclic_export: dict, tmp_path: Path
) -> None:
    result = metasync.sync(cyclic_export)
    cycles = result.events.filter(pl.col("event") == "dependency_cycle")
    assert cycles.height == 1
    assert cycles["severity"][0] == "error"
    details = json.loads(cycles["details"][0])
    assert details["members"] == ["SALES.LOOP_A", "SALES.LOOP_B", "SALES.LOOP_C"]
    assert details["dependents"] == ["SALES.AFTER_LOOP"]
    for member in ("SALES.LOOP_A", "SALES.LOOP_B", "SALES.LOOP_C"):
        assert member in cycles["message"][0]

    actions = dict(zip(result.plan["name"], result.plan["action"], strict=True))
    assert actions == {
        "ORDERS": "create",
        "ORDERS_V": "create",
        "LOOP_A": "skip",
        "LOOP_B": "skip",
        "LOOP_C": "skip",
        "AFTER_LOOP": "skip",
    }
    batches = dict(zip(result.plan["name"], result.plan["batch"], strict=True))
    assert batches["ORDERS_V"] > batches["ORDERS"]
    written = {p.stem.lower() for p in (tmp_path / "catalog").rglob("*.json")}
    assert {"orders", "orders_v"} <= written
    assert not {"loop_a", "loop_b", "loop_c", "after_loop"} & written
    assert result.summary["status"] == "partial"


def test_lineage_api_returns_the_contract_graph(cyclic_export: dict) -> None:
    graph = metasync.lineage(cyclic_export)
    assert set(graph.nodes) == {
        f"SALES.{n}" for n in ("ORDERS", "ORDERS_V", "LOOP_A", "LOOP_B", "LOOP_C", "AFTER_LOOP")
    }
    assert graph.edges["SALES.ORDERS", "SALES.ORDERS_V"]["kind"] == "from"
    assert all({"space", "name", "kind"} <= set(data) for _, data in graph.nodes(data=True))


def test_cli_lineage_table_and_unknown_asset(cyclic_export: dict, tmp_path: Path) -> None:
    config = tmp_path / "metasync.yaml"
    config.write_text(json.dumps(cyclic_export), encoding="utf-8")  # JSON is valid YAML
    runner = CliRunner()
    out = runner.invoke(
        app, ["lineage", "-c", str(config), "--asset", "SALES.ORDERS_V", "--direction", "upstream"]
    )
    assert out.exit_code == 0, out.output
    assert out.stdout.split() == ["SALES.ORDERS", "from", "SALES.ORDERS_V"]

    out = runner.invoke(app, ["lineage", "-c", str(config), "--asset", "SALES.orders_v"])
    assert out.exit_code == 2
    assert "SALES.orders_v" in out.output and "SALES.ORDERS_V" in out.output

    out = runner.invoke(app, ["lineage", "-c", str(config), "--format", "mermaid"])
    assert out.exit_code == 0 and out.stdout.startswith("flowchart LR")


def test_the_lineage_of_a_source_read_in_part_says_so(cyclic_export: dict, tmp_path: Path) -> None:
    assert metasync.lineage(cyclic_export).graph["incomplete"] is False
    (tmp_path / "exports" / "SALES" / "broken.json").write_text("{", encoding="utf-8")
    cyclic_export["source"]["skip_invalid"] = True
    graph = metasync.lineage(cyclic_export)
    assert graph.graph["incomplete"] is True and "SALES.ORDERS" in graph
    assert any("broken.json" in problem for problem in graph.graph["problems"])


def test_every_skipped_asset_gets_a_hint_that_fits_why(cyclic_export: dict) -> None:
    plan = metasync.plan(cyclic_export).plan.filter(pl.col("action") == "skip")
    hints = dict(plan.select("name", "hint").iter_rows())
    assert hints["LOOP_A"].startswith("Break the cycle") and hints["LOOP_C"].startswith("Break the cycle")
    assert hints["AFTER_LOOP"].startswith("Fix the upstream asset")
