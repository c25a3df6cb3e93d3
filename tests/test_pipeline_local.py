"""End to end on the embedded default: CSN files → local catalog, with the audit trail."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tenant_runs import start_sync_of_generated_tenant

import metasync
from metasync.errors import SourceError, TargetError
from metasync.models import PLAN_ACTIONS
from metasync.pipeline import PLAN_FILE_SCHEMA
from metasync.targets.local import LocalTarget

CONTRACT_COUNTS = {
    "assets",
    "created",
    "updated",
    "unchanged",
    "deleted",
    "failed",
    "skipped",
    "quarantined",
    "conflicts",
}


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def config(tmp: Path, src: Path, **extra: Any) -> dict[str, Any]:
    return {
        "source": {"kind": "csn", "path": str(src), **extra.pop("source", {})},
        "target": {"kind": "local", "path": str(tmp / "catalog")},
        "audit": {"dir": str(tmp / "audit")},
        **extra,
    }


def write_csn(path: Path, definitions: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"definitions": definitions}), encoding="utf-8")


def entity(*columns: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "entity", "elements": {c: {"type": "cds.String", "length": 10} for c in columns}, **extra}


def test_quickstart_creates_every_table_then_rerun_changes_nothing(example_workspace: Path) -> None:
    yaml_path = example_workspace / "quickstart.yaml"
    first = metasync.sync(yaml_path)
    assert first.summary["status"] == "succeeded"
    n = first.assets.height
    assert n >= 10
    assert first.summary["counts"]["created"] == n
    assert first.summary["api_calls"]["CreateTable"] == n
    catalog = example_workspace / "catalog"
    tables = sorted(p.stem for p in (catalog / "sales" / "tables").glob("*.json"))
    assert tables == sorted(first.assets["glue_table"].to_list())

    before = snapshot(catalog)
    second = metasync.sync(yaml_path)
    assert second.summary["counts"]["unchanged"] == n
    assert set(second.plan["action"]) == {"unchanged"}
    assert not {"CreateTable", "UpdateTable", "CreateDatabase", "BatchDeleteTable"} & set(
        second.summary["api_calls"]
    )
    assert snapshot(catalog) == before


def test_written_tables_carry_the_contract_parameters_and_limits(example_workspace: Path) -> None:
    result = metasync.sync(example_workspace / "quickstart.yaml")
    catalog = example_workspace / "catalog" / "sales"
    database = json.loads((catalog / "database.json").read_text())
    assert database["Parameters"]["metasync:managed"] == "true"
    for row in result.assets.iter_rows(named=True):
        table = json.loads((catalog / "tables" / f"{row['glue_table']}.json").read_text())
        params = table["Parameters"]
        assert params["metasync:managed"] == "true"
        assert (params["metasync:space"], params["metasync:name"]) == (row["space"], row["name"])
        assert len(params["metasync:hash"]) == 64
        assert len(table.get("Description", "")) <= 2048
        for column in table["StorageDescriptor"]["Columns"]:
            assert column["Type"] == column["Type"].lower()
            assert len(column.get("Comment", "")) <= 255 and "\n" not in column.get("Comment", "")
    # the long description and the label with a line break keep their full text in Parameters
    orders = json.loads((catalog / "tables" / "sales_orders.json").read_text())
    cols = {c["Name"]: c for c in orders["StorageDescriptor"]["Columns"]}
    long_text = cols["order_status"]["Parameters"]["metasync:description"]
    assert len(long_text) > 255
    assert "\n" in cols["requested_delivery_date"]["Parameters"]["metasync:business_name"]
    assert cols["requested_delivery_date"]["Comment"] == "Requested Delivery Date"


def test_a_changed_source_updates_only_that_table(example_workspace: Path) -> None:
    yaml_path = example_workspace / "quickstart.yaml"
    metasync.sync(yaml_path)
    export = example_workspace / "exports" / "SALES" / "sales_tables.json"
    doc = json.loads(export.read_text())
    doc["definitions"]["CUSTOMERS"]["elements"]["LOYALTY_TIER"] = {"type": "cds.String", "length": 2}
    export.write_text(json.dumps(doc))
    result = metasync.sync(yaml_path)
    changed = result.plan.filter(pl.col("action") != "unchanged")
    assert changed.select("name", "action").rows() == [("CUSTOMERS", "update")]
    assert result.summary["api_calls"].get("UpdateTable") == 1
    event = result.events.filter((pl.col("name") == "CUSTOMERS") & (pl.col("event") == "asset"))
    assert "loyalty_tier" in event["details"].item()


def test_events_in_three_formats_hold_the_same_rows_and_summary_matches(example_workspace: Path) -> None:
    result = metasync.sync(example_workspace / "quickstart.yaml")
    folder = result.audit_dir
    assert folder is not None and folder.parent == example_workspace / "metasync-audit"
    parquet = pl.read_parquet(folder / "events.parquet")
    csv = pl.read_csv(folder / "events.csv", infer_schema=False)
    records = json.loads((folder / "events.json").read_text())
    required = [
        "run_id",
        "ts",
        "event",
        "severity",
        "space",
        "name",
        "action",
        "status",
        "message",
        "details",
    ]
    assert set(required) <= set(parquet.columns)
    as_text = parquet.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).cast(pl.Utf8)
    assert as_text.rows() == csv.select(as_text.columns).rows()
    assert as_text.rows() == pl.DataFrame(records, schema=dict.fromkeys(as_text.columns, pl.Utf8)).rows()
    assert parquet["ts"].dtype == pl.Datetime("us", "UTC")
    for details in parquet["details"]:
        json.loads(details)

    summary = json.loads((folder / "summary.json").read_text())
    assert summary == result.summary
    assert {"run_id", "status", "dry_run", "started_at", "finished_at", "counts", "api_calls"} <= set(summary)
    assert set(summary["counts"]) == CONTRACT_COUNTS
    assert summary["run_id"] == folder.name == parquet["run_id"].unique().item()


def test_plan_is_a_dry_run_that_writes_nothing(example_workspace: Path) -> None:
    result = metasync.plan(example_workspace / "quickstart.yaml")
    assert result.summary["dry_run"] is True
    assert set(result.plan["action"]) == {"create"}
    assert not (example_workspace / "catalog").exists()
    assert (result.audit_dir / "summary.json").exists()
    assert set(result.plan.columns) >= {"space", "name", "batch", "priority", "action"}
    assert not [c for c in result.plan.columns if c.endswith("_right") or c.startswith("_")]
    written = pl.read_csv(result.audit_dir / "plan.csv")
    assert "kind" in written.columns and not [c for c in written.columns if c.endswith("_right")]
    assert set(result.plan["action"]) <= set(PLAN_ACTIONS)
    # batches respect data flow: the analytic model comes after its fact view
    batch = dict(result.plan.select("name", "batch").iter_rows())
    assert (
        batch["SALES_ANALYSIS_AM"]
        > batch["SALES_FACT"]
        > batch["SALES_ORDER_ITEMS_ENRICHED"]
        > batch["SALES_ORDERS"]
    )


def test_hostile_names_never_leave_the_catalog(tmp_path: Path) -> None:
    names = ["../escape", "a/b", "x\u0000y", "N" * 300, "..", "/etc/passwd", "Sales Ördér 2024"]
    write_csn(tmp_path / "src" / "S" / "hostile.json", {n: entity("../col", "A/B", "a b") for n in names})
    result = metasync.sync(config(tmp_path, tmp_path / "src"))
    assert result.summary["counts"]["created"] == len(names)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    allowed = (tmp_path / "src", tmp_path / "catalog", tmp_path / "audit")
    assert all(any(root in p.parents for root in allowed) for p in written)
    tables = result.assets["glue_table"].to_list()
    assert all(len(t.encode()) <= 255 and t.replace("_", "").isalnum() and t == t.lower() for t in tables)
    assert len(set(tables)) == len(names)
    assert "sales_order_2024" in tables
    cols = result.columns.filter(pl.col("name") == "../escape")["glue_column"].to_list()
    assert cols == ["col", "a_b", "a_b_" + cols[2][4:]] and len(cols[2]) == len("a_b_") + 8


def test_case_collisions_get_a_deterministic_suffix(tmp_path: Path) -> None:
    write_csn(tmp_path / "src" / "S" / "c.json", {"SALES_ORDER": entity("A"), "Sales_Order": entity("A")})
    first = metasync.plan(config(tmp_path, tmp_path / "src"))
    names = dict(first.assets.select("name", "glue_table").iter_rows())
    assert names["SALES_ORDER"] == "sales_order"  # lowest in code-point order keeps the plain name
    assert (
        names["Sales_Order"].startswith("sales_order_")
        and len(names["Sales_Order"]) == len("sales_order_") + 8
    )
    again = metasync.plan(config(tmp_path, tmp_path / "src"))
    assert dict(again.assets.select("name", "glue_table").iter_rows()) == names


def test_an_unmanaged_table_is_never_touched_and_is_a_conflict(tmp_path: Path) -> None:
    write_csn(
        tmp_path / "src" / "S" / "t.json",
        {
            "ORDERS": entity("A"),
            "ITEMS": entity("B"),
            "V": entity("C", query={"SELECT": {"from": {"ref": ["ORDERS"]}}}),
        },
    )
    foreign = tmp_path / "catalog" / "s" / "tables" / "orders.json"
    foreign.parent.mkdir(parents=True)
    foreign.write_text('{"Name": "orders", "Parameters": {"owner": "someone else"}}')
    before = (foreign.read_bytes(), foreign.stat().st_mtime_ns)
    result = metasync.sync(config(tmp_path, tmp_path / "src"))
    assert (foreign.read_bytes(), foreign.stat().st_mtime_ns) == before
    actions = dict(result.plan.select("name", "action").iter_rows())
    assert actions == {"ORDERS": "conflict", "ITEMS": "create", "V": "skip"}
    assert set(actions.values()) <= set(PLAN_ACTIONS)
    assert result.summary["status"] == "partial"
    assert result.summary["counts"]["conflicts"] == 1 and result.summary["counts"]["skipped"] == 1
    conflict = result.events.filter((pl.col("name") == "ORDERS") & (pl.col("event") == "asset")).row(
        0, named=True
    )
    assert "not managed by metasync" in conflict["message"] and conflict["hint"]


def test_columns_edited_in_the_target_are_written_again_from_the_source(tmp_path: Path) -> None:
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A", "B", "C"), "U": entity("X")})
    metasync.sync(config(tmp_path, tmp_path / "src"))
    path = tmp_path / "catalog" / "s" / "tables" / "t.json"
    written = json.loads(path.read_text())

    def edit(change: Any) -> None:
        table = json.loads(path.read_text())
        table["StorageDescriptor"]["Columns"] = change(table["StorageDescriptor"]["Columns"])
        path.write_text(json.dumps(table))

    # Dropped and retyped in the console: the stored hash still matches the source, the columns do not.
    edit(lambda columns: [dict(columns[1], Type="int")])
    result = metasync.sync(config(tmp_path, tmp_path / "src"))
    actions = dict(result.plan.select("name", "action").iter_rows())
    assert actions == {"T": "update", "U": "unchanged"}
    restored = json.loads(path.read_text())
    assert restored["StorageDescriptor"]["Columns"] == written["StorageDescriptor"]["Columns"]
    again = metasync.sync(config(tmp_path, tmp_path / "src"))
    assert set(again.plan["action"]) == {"unchanged"}

    # A column added in the console would be removed by the update: that is schema drift, held under `manual`.
    edit(lambda columns: [*columns, {"Name": "added", "Type": "string"}])
    before = path.read_bytes()
    held = metasync.sync(config(tmp_path, tmp_path / "src", conflicts={"schema_drift": "manual"}))
    assert dict(held.plan.select("name", "action").iter_rows())["T"] == "conflict"
    conflicts = held.events.filter((pl.col("event") == "conflict") & (pl.col("name") == "T"))["message"]
    assert any("schema_drift" in m and "columns removed: added" in m for m in conflicts)
    assert path.read_bytes() == before


def test_rows_breaking_glue_limits_are_quarantined_and_the_rest_syncs(tmp_path: Path) -> None:
    bad = entity("B")
    bad["elements"]["B"]["@EndUserText.quickInfo"] = (
        "x" * 600_000
    )  # over Glue's 512,000-character Parameter value
    write_csn(tmp_path / "src" / "S" / "t.json", {"GOOD": entity("A"), "BAD": bad})
    result = metasync.sync(config(tmp_path, tmp_path / "src"))
    actions = dict(result.plan.select("name", "action").iter_rows())
    assert actions == {"GOOD": "create", "BAD": "quarantine"}
    assert result.summary["counts"]["quarantined"] == 1 and result.summary["status"] == "partial"
    event = result.events.filter((pl.col("name") == "BAD") & (pl.col("event") == "asset")).row(0, named=True)
    assert "512,000" in event["message"] and "(B)" in event["message"] and event["hint"]
    assert not (tmp_path / "catalog" / "s" / "tables" / "bad.json").exists()


def test_invalid_json_stops_before_anything_is_written(tmp_path: Path) -> None:
    write_csn(tmp_path / "src" / "S" / "good.json", {"T": entity("A")})
    (tmp_path / "src" / "S" / "bad.json").write_text("{not json")
    with pytest.raises(SourceError, match="bad.json is not valid JSON"):
        metasync.sync(config(tmp_path, tmp_path / "src"))
    assert not (tmp_path / "catalog").exists()
    runs = list((tmp_path / "audit").iterdir())
    assert len(runs) == 1 and json.loads((runs[0] / "summary.json").read_text())["status"] == "failed"

    result = metasync.sync(config(tmp_path, tmp_path / "src", source={"skip_invalid": True}))
    assert result.summary["status"] == "partial" and result.summary["counts"]["created"] == 1


def test_a_file_where_the_catalog_needs_a_folder_stops_before_writing(tmp_path: Path) -> None:
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A")})
    (tmp_path / "file").write_text("x")
    settings = config(tmp_path, tmp_path / "src")
    settings["target"]["path"] = str(tmp_path / "file" / "catalog")
    with pytest.raises(TargetError, match=r"cannot be created: .*file is a file"):
        metasync.sync(settings)
    (tmp_path / "catalog" / "s").mkdir(parents=True)
    (tmp_path / "catalog" / "s" / "tables").write_text("x")
    with pytest.raises(TargetError, match=r"tables in target.path is a file"):
        metasync.sync(config(tmp_path, tmp_path / "src"))
    assert sorted(p.name for p in (tmp_path / "catalog").rglob("*")) == ["s", "tables"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"Name": "t", "Parameters": [1]}', "Parameters is not an object of texts"),
        ('{"Name": "t", "StorageDescriptor": {"Columns": "x"}}', "StorageDescriptor.Columns is not a list"),
        ('{"Name": 5}', "Name is not a text"),
    ],
)
def test_a_catalog_file_of_the_wrong_shape_is_named(tmp_path: Path, text: str, problem: str) -> None:
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A")})
    metasync.sync(config(tmp_path, tmp_path / "src"))
    bad = tmp_path / "catalog" / "s" / "tables" / "t.json"
    bad.write_text(text)
    with pytest.raises(TargetError, match=rf"{bad} is not a Glue table or database definition: {problem}"):
        metasync.sync(config(tmp_path, tmp_path / "src"))
    assert bad.read_text() == text


def test_an_empty_source_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    result = metasync.sync(config(tmp_path, tmp_path / "src"))
    assert result.plan.is_empty() and result.summary["status"] == "succeeded"
    (empty,) = result.events.filter(pl.col("event") == "source_empty").iter_rows(named=True)
    assert empty["severity"] == "warning" and str(tmp_path / "src") in empty["message"]
    finished = result.events.filter(pl.col("event") == "run_finished")["message"].item()
    assert finished.endswith("no assets")


def test_a_source_read_in_part_is_not_called_empty(tmp_path: Path) -> None:
    """Its own events say what could not be read; 'holds no objects, check the path' would mislead."""
    (tmp_path / "src" / "S").mkdir(parents=True)
    (tmp_path / "src" / "S" / "bad.json").write_text("{not json")
    result = metasync.plan(config(tmp_path, tmp_path / "src", source={"skip_invalid": True}))
    assert result.summary["status"] == "partial"
    assert result.events.filter(pl.col("event") == "source_empty").is_empty()
    assert result.events.filter(pl.col("event") == "file_skipped").height == 1


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (RuntimeError("planner broke"), "internal error: RuntimeError: planner broke"),
        (KeyboardInterrupt(), "the run was interrupted."),
    ],
)
def test_a_run_ended_by_an_unexpected_error_or_ctrl_c_still_writes_its_whole_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, message: str
) -> None:
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A")})

    def broken(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr("metasync.pipeline.plan_batches", broken)
    with pytest.raises(type(error)):
        metasync.sync(config(tmp_path, tmp_path / "src"))
    (run,) = (tmp_path / "audit").iterdir()
    assert sorted(p.name for p in run.iterdir()) == [
        "events.csv",
        "events.json",
        "events.parquet",
        "plan.csv",
        "plan.parquet",
        "summary.json",
    ]
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    failed = pl.read_parquet(run / "events.parquet").filter(pl.col("event") == "run_failed")
    assert failed["message"].item() == message
    assert not (tmp_path / "catalog").exists()


def test_only_updates_with_parameters_of_their_own_are_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import metasync.transform.conflicts as conflicts

    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A"), "U": entity("B")})
    tags = [{"kind": "tags", "tags": ["pii"]}]
    metasync.sync(config(tmp_path, tmp_path / "src", rules=tags))
    path = tmp_path / "catalog" / "s" / "tables" / "t.json"
    table = json.loads(path.read_text())
    path.write_text(json.dumps(table | {"Parameters": table["Parameters"] | {"owner": "bob"}}))
    merged: list[str] = []
    real = conflicts.merge_table_input
    monkeypatch.setattr(
        conflicts, "merge_table_input", lambda new, *rest, **kw: merged.append(new) or real(new, *rest, **kw)
    )
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A", "NEW"), "U": entity("B", "NEW")})
    result = metasync.sync(config(tmp_path, tmp_path / "src", rules=tags))
    assert dict(result.plan.select("name", "action").iter_rows()) == {"T": "update", "U": "update"}
    # U has only the keys its rules set (tags, listed in metasync:keys): no merge needed; T has an owner.
    assert [json.loads(m)["Name"] for m in merged] == ["t"]
    assert json.loads(path.read_text())["Parameters"]["owner"] == "bob"


def test_an_update_keeps_parameters_added_in_the_target(tmp_path: Path) -> None:
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A"), "U": entity("B")})
    metasync.sync(config(tmp_path, tmp_path / "src"))
    path = tmp_path / "catalog" / "s" / "tables" / "t.json"
    table = json.loads(path.read_text())
    table["Parameters"] |= {"classification": "parquet", "owner": "bob"}
    path.write_text(json.dumps(table))
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A", "NEW"), "U": entity("B", "NEW")})
    result = metasync.sync(config(tmp_path, tmp_path / "src"))
    assert dict(result.plan.select("name", "action").iter_rows()) == {"T": "update", "U": "update"}
    updated = json.loads(path.read_text())
    assert updated["Parameters"]["classification"] == "parquet" and updated["Parameters"]["owner"] == "bob"
    assert [c["Name"] for c in updated["StorageDescriptor"]["Columns"]] == ["a", "new"]
    other = json.loads((tmp_path / "catalog" / "s" / "tables" / "u.json").read_text())
    assert "owner" not in other["Parameters"]
    again = metasync.sync(config(tmp_path, tmp_path / "src"))
    assert set(again.plan["action"]) == {"unchanged"}


def test_a_cut_table_description_keeps_its_full_text_in_parameters(tmp_path: Path) -> None:
    long_text = "Revenue by region. " * 200  # 3,800 characters
    write_csn(
        tmp_path / "src" / "S" / "t.json",
        {"T": entity("A", **{"@EndUserText.quickInfo": long_text}), "U": entity("B")},
    )
    metasync.sync(config(tmp_path, tmp_path / "src"))
    table = json.loads((tmp_path / "catalog" / "s" / "tables" / "t.json").read_text())
    assert len(table["Description"]) == 2048 and table["Description"].endswith("...")
    assert long_text.strip() in table["Parameters"]["metasync:description"]
    short = json.loads((tmp_path / "catalog" / "s" / "tables" / "u.json").read_text())
    assert "metasync:description" not in short["Parameters"]


def test_hierarchy_details_reach_the_table_parameters(tmp_path: Path) -> None:
    levels = [{"element": {"=": "YEAR"}}, {"element": {"=": "DAY"}}]
    dim = entity(
        "YEAR", "DAY", **{"@Hierarchy.leveled": [{"name": "YD", "label": "Year, Day", "levels": levels}]}
    )
    write_csn(tmp_path / "src" / "S" / "t.json", {"TIME": dim})
    metasync.sync(config(tmp_path, tmp_path / "src"))
    parameters = json.loads((tmp_path / "catalog" / "s" / "tables" / "time.json").read_text())["Parameters"]
    assert parameters["metasync:hierarchies"] == "YD"
    assert json.loads(parameters["metasync:hierarchy_details"]) == [
        {"name": "YD", "label": "Year, Day", "levels": ["YEAR", "DAY"]}
    ]


def test_names_that_lose_their_meaning_are_reported(tmp_path: Path) -> None:
    write_csn(tmp_path / "src" / "A" / "t.json", {"名前": entity("Имя", "ID")})
    write_csn(tmp_path / "src" / "B" / "t.json", {"ORDERS": entity("ID"), "X": entity("x")})  # x is a name
    write_csn(tmp_path / "src" / "FIN" / "t.json", {"T": entity("ID")})
    write_csn(tmp_path / "src" / "FIN_20240101" / "t.json", {"T": entity("ID")})  # looks suffixed, is not
    rules = [{"kind": "naming", "target": "database", "template": "lake", "where": {"spaces": ["A", "B"]}}]
    result = metasync.plan(config(tmp_path, tmp_path / "src", rules=rules))
    events = {e["event"]: e for e in result.events.iter_rows(named=True)}
    invented = events["names_invented"]
    assert invented["severity"] == "warning" and "1 table and 1 column name(s)" in invented["message"]
    assert "A.名前 -> x" in invented["message"] and "A.名前.Имя -> x" in invented["message"]
    moved = result.events.filter(pl.col("event") == "database_renamed")
    assert moved["space"].to_list() == ["B"] and "lake_" in moved["message"].item()
    databases = dict(result.assets.select("space", "glue_database").unique().iter_rows())
    assert databases["A"] == "lake" and databases["B"].startswith("lake_")


def test_parameters_a_rule_no_longer_sets_go_while_those_added_in_the_target_stay(tmp_path: Path) -> None:
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A")})
    tags = [{"kind": "tags", "tags": ["pii"]}]
    metasync.sync(config(tmp_path, tmp_path / "src", rules=tags))
    path = tmp_path / "catalog" / "s" / "tables" / "t.json"
    table = json.loads(path.read_text())
    assert table["Parameters"]["tags"] == "pii" and table["Parameters"]["metasync:keys"] == "tags"
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A", "NEW")})
    metasync.sync(config(tmp_path, tmp_path / "src"))  # the tags rule is gone
    assert "tags" not in json.loads(path.read_text())["Parameters"]

    metasync.sync(config(tmp_path, tmp_path / "src", rules=tags))
    table = json.loads(path.read_text())
    table["Parameters"]["owner"] = "bob"  # added in the target
    path.write_text(json.dumps(table))
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A", "NEW", "NEWER")})
    metasync.sync(config(tmp_path, tmp_path / "src"))
    updated = json.loads(path.read_text())["Parameters"]
    assert "tags" not in updated and updated["owner"] == "bob"


def test_fields_rewritten_by_rules_reach_their_parameters(tmp_path: Path) -> None:
    fact = entity("A", "AMOUNT")
    fact["elements"]["AMOUNT"] = {"type": "cds.Decimal", "precision": 15, "scale": 2}
    fact["elements"]["AMOUNT"]["@Aggregation.default"] = {"#": "SUM"}
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": fact})
    rules = [
        {"kind": "value_map", "field": "aggregation", "map": {"SUM": "sum"}},
        {"kind": "value_map", "field": "kind", "on": "assets", "map": {"table": "fact"}},
    ]
    metasync.sync(config(tmp_path, tmp_path / "src", rules=rules))
    table = json.loads((tmp_path / "catalog" / "s" / "tables" / "t.json").read_text())
    assert table["Parameters"]["metasync:kind"] == "fact"
    amount = next(c for c in table["StorageDescriptor"]["Columns"] if c["Name"] == "amount")
    assert amount["Parameters"]["metasync:aggregation"] == "sum"


def test_delete_stale_removes_only_managed_tables_of_gone_assets(tmp_path: Path) -> None:
    defs = {f"T{i}": entity("A") for i in range(10)}
    write_csn(tmp_path / "src" / "S" / "t.json", defs)
    metasync.sync(config(tmp_path, tmp_path / "src"))
    foreign = tmp_path / "catalog" / "s" / "tables" / "mine.json"
    foreign.write_text('{"Name": "mine"}')
    del defs["T9"]
    write_csn(tmp_path / "src" / "S" / "t.json", defs)
    kept = metasync.sync(config(tmp_path, tmp_path / "src"))  # without the flag nothing is deleted
    assert (
        kept.summary["counts"]["deleted"] == 0
        and (tmp_path / "catalog" / "s" / "tables" / "t9.json").exists()
    )
    preview = metasync.plan(config(tmp_path, tmp_path / "src"), delete_stale=True)
    assert preview.plan.filter(pl.col("action") == "delete")["name"].to_list() == ["T9"]
    assert (tmp_path / "catalog" / "s" / "tables" / "t9.json").exists()
    result = metasync.sync(config(tmp_path, tmp_path / "src", sync={"delete_stale": True}))
    assert result.summary["counts"]["deleted"] == 1
    assert not (tmp_path / "catalog" / "s" / "tables" / "t9.json").exists()
    assert foreign.exists()

    for i in range(3):  # 3 of 9 managed tables would go: above the 20% default
        del defs[f"T{i}"]
    write_csn(tmp_path / "src" / "S" / "t.json", defs)
    refused = metasync.sync(config(tmp_path, tmp_path / "src", sync={"delete_stale": True}))
    assert refused.summary["counts"]["deleted"] == 0 and refused.summary["status"] == "partial"
    message = refused.events.filter(pl.col("event") == "delete_refused")["message"].item()
    assert "3 of 9" in message
    assert (tmp_path / "catalog" / "s" / "tables" / "t0.json").exists()


def test_delete_stale_keeps_tables_of_quarantined_and_out_of_scope_assets(tmp_path: Path) -> None:
    defs = {f"T{i}": entity("A") for i in range(10)}
    write_csn(tmp_path / "src" / "S" / "t.json", defs)
    metasync.sync(config(tmp_path, tmp_path / "src"))
    tables = tmp_path / "catalog" / "s" / "tables"
    before = {p.name: p.read_bytes() for p in tables.iterdir()}
    defs["T0"]["elements"]["A"]["@EndUserText.quickInfo"] = "x" * 600_000  # breaks Glue's limits
    write_csn(tmp_path / "src" / "S" / "t.json", defs)
    settings = config(
        tmp_path,
        tmp_path / "src",
        sync={"delete_stale": True, "max_delete_fraction": 1.0},
        rules=[{"kind": "scope", "exclude": {"name_glob": "T1"}}],
    )
    result = metasync.sync(settings)
    actions = dict(result.plan.select("name", "action").iter_rows())
    assert actions["T0"] == "quarantine" and "T1" not in actions
    assert "delete" not in actions.values() and result.summary["counts"]["deleted"] == 0
    assert {p.name: p.read_bytes() for p in tables.iterdir()} == before


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    write_csn(tmp_path / "proj" / "exports" / "S" / "t.json", {"T": entity("A")})
    (tmp_path / "proj" / "c.yaml").write_text(
        "source: {kind: csn, path: exports}\ntarget: {kind: local, path: out}\n"
    )
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        result = metasync.sync(tmp_path / "proj" / "c.yaml")
    finally:
        os.chdir(cwd)
    assert (tmp_path / "proj" / "out" / "s" / "tables" / "t.json").exists()
    assert result.audit_dir is not None and result.audit_dir.parent == tmp_path / "proj" / "metasync-audit"


def test_lineage_graph_follows_the_contract(example_workspace: Path) -> None:
    graph = metasync.lineage(example_workspace / "quickstart.yaml")
    assert all({"space", "name", "kind"} <= set(attrs) for _, attrs in graph.nodes(data=True))
    assert all("kind" in attrs for _, _, attrs in graph.edges(data=True))
    assert graph.edges["SALES.SALES_FACT", "SALES.SALES_ANALYSIS_AM"]["kind"] == "fact_source"
    assert graph.edges["SALES.PRODUCT_DIM", "SALES.PRODUCT_TEXTS"]["kind"] == "text"
    assert graph.nodes["SALES.SALES_ANALYSIS_AM"]["kind"] == "analytic_model"


def test_tables_written_in_small_slices_equal_those_written_at_once(
    example_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TableInputs are made final a slice at a time before writing; the slice size changes no byte."""
    import metasync.pipeline as pipeline

    yaml_path = example_workspace / "quickstart.yaml"
    metasync.sync(yaml_path)
    catalog = example_workspace / "catalog"
    at_once = {name: data for name, (data, _) in snapshot(catalog).items()}
    shutil.rmtree(catalog)
    monkeypatch.setattr(pipeline, "FINALIZE_SLICE", 1)
    tables = [name for name in at_once if Path(name).parent.name == "tables"]
    assert metasync.sync(yaml_path).summary["counts"]["created"] == len(tables) > 1
    assert {name: data for name, (data, _) in snapshot(catalog).items()} == at_once


def test_a_table_folder_that_cannot_be_listed_stops_the_run_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading it as empty would plan its tables as new and never see them as stale: the run stops instead,
    naming the folder."""
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A")})
    settings = config(tmp_path, tmp_path / "src")
    assert metasync.sync(settings).summary["counts"]["created"] == 1
    before = snapshot(tmp_path / "catalog")
    listdir = os.listdir

    def refuse(path: Any) -> list[str]:
        if Path(path).name == "tables":
            raise PermissionError(13, "Permission denied", str(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", refuse)
    with pytest.raises(TargetError, match=r"table folder .*tables of the local catalog cannot be listed"):
        metasync.sync(settings, delete_stale=True)
    assert snapshot(tmp_path / "catalog") == before


@pytest.mark.parametrize("link", ["database", "tables", "table file"])
def test_a_symlink_in_the_catalog_never_leads_a_write_outside_it(tmp_path: Path, link: str) -> None:
    """A catalog folder or table file that is a link to somewhere outside the catalog: metasync refuses to
    write through it, and nothing outside changes."""
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A")})
    settings = config(tmp_path, tmp_path / "src")
    assert metasync.sync(settings).summary["counts"]["created"] == 1
    catalog, outside = tmp_path / "catalog", tmp_path / "outside"
    (table,) = (catalog / "s" / "tables").glob("*.json")
    moved = {"database": catalog / "s", "tables": catalog / "s" / "tables", "table file": table}[link]
    shutil.move(moved, outside)
    moved.symlink_to(outside, target_is_directory=link != "table file")
    before = (
        snapshot(outside) if outside.is_dir() else {"": (outside.read_bytes(), outside.stat().st_mtime_ns)}
    )
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A", "B")})  # the table must be updated

    with pytest.raises(TargetError, match="refusing to write outside the local catalog"):
        metasync.sync(settings)
    after = (
        snapshot(outside) if outside.is_dir() else {"": (outside.read_bytes(), outside.stat().st_mtime_ns)}
    )
    assert after == before


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """`folder` made unable to take new files, for root too (the immutable attribute), or skip the test."""
    folder.mkdir(parents=True, exist_ok=True)
    root = os.geteuid() == 0
    if root:
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode == 0
    else:
        folder.chmod(0o555)
        made = True
    try:
        probe = folder / ".probe"
        try:
            probe.write_bytes(b"")
            probe.unlink()
            made = False
        except OSError:
            pass
        if not made:
            pytest.skip("this system cannot make a folder unwritable here (chattr +i or chmod had no effect)")
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)
        else:
            folder.chmod(0o755)


def test_a_catalog_folder_that_cannot_take_files_stops_the_run_before_anything_is_written(
    tmp_path: Path,
) -> None:
    write_csn(tmp_path / "src" / "A" / "t.json", {"T": entity("X")})
    write_csn(tmp_path / "src" / "B" / "t.json", {"T": entity("X")})
    catalog = tmp_path / "catalog"
    with unwritable(catalog / "b"):
        with pytest.raises(TargetError, match=r"local catalog folder .*catalog/b is not writable"):
            metasync.sync(config(tmp_path, tmp_path / "src"))
        assert [p.name for p in catalog.iterdir()] == ["b"] and not list((catalog / "b").iterdir())


def test_a_database_that_cannot_be_written_fails_its_tables_and_the_rest_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails after the check (the disk filled up): that database's tables fail, named, and the
    other databases are written."""
    write_csn(tmp_path / "src" / "A" / "t.json", {"T": entity("X")})
    write_csn(tmp_path / "src" / "B" / "t.json", {"T": entity("X"), "U": entity("Y")})
    write_file = LocalTarget._write_file

    def full_disk(self: LocalTarget, path: Path, content: bytes) -> None:
        if path.parent.name == "b":
            raise OSError(28, "No space left on device", str(path))
        write_file(self, path, content)

    monkeypatch.setattr(LocalTarget, "_write_file", full_disk)
    result = metasync.sync(config(tmp_path, tmp_path / "src"))
    statuses = dict(result.plan.select(pl.concat_str("space", "name", separator="."), "status").iter_rows())
    assert statuses == {"A.T": "ok", "B.T": "failed", "B.U": "failed"}
    failed = result.plan.filter(pl.col("status") == "failed")
    assert (
        failed["reason"].str.contains("database 'b' could not be created: cannot write .*No space left").all()
    )
    assert result.exit_code == 1 and (tmp_path / "catalog" / "a" / "tables").is_dir()


def test_a_partial_read_leaves_the_tables_whose_upstreams_it_did_not_read(example_workspace: Path) -> None:
    """With a file skipped, the model that reads the views in it would lose its column types (all `string`):
    it is held and its table left as it is; the rest syncs, and the run is partial."""
    settings = config(example_workspace, example_workspace / "exports", source={"skip_invalid": True})
    assert metasync.sync(settings).exit_code == 0
    model_file = next((example_workspace / "catalog").rglob("sales_analysis_am.json"))
    before = (model_file.read_bytes(), model_file.stat().st_mtime_ns)
    (example_workspace / "exports" / "SALES" / "sales_views.json").write_text("{", encoding="utf-8")

    result = metasync.sync(settings)
    row = result.plan.filter(pl.col("name") == "SALES_ANALYSIS_AM").row(0, named=True)
    assert row["action"] == "skip" and row["status"] == "held"
    assert row["reason"].startswith("the source was read in part and upstream SALES.")
    assert "file_skipped" in row["hint"]
    assert (model_file.read_bytes(), model_file.stat().st_mtime_ns) == before
    assert not result.plan.filter(pl.col("action") == "update")["column_changes"].str.contains("string").any()
    assert result.exit_code == 1 and result.summary["status"] == "partial"


def test_a_target_wins_skip_says_how_to_write_the_source(tmp_path: Path) -> None:
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A")})
    table = tmp_path / "catalog" / "s" / "tables" / "t.json"
    table.parent.mkdir(parents=True)
    table.write_text('{"Name": "t", "Parameters": {"owner": "crm"}}')
    result = metasync.sync(config(tmp_path, tmp_path / "src", conflicts={"ownership": "target_wins"}))
    row = result.plan.row(0, named=True)
    assert row["action"] == "skip" and "conflicts.ownership" in row["hint"]


def test_every_run_writes_its_plan_file_with_the_same_columns(tmp_path: Path) -> None:
    """Failed, planned and synced runs: their plan files read together as one table."""
    (tmp_path / "src" / "S").mkdir(parents=True)
    (tmp_path / "src" / "S" / "bad.json").write_text("{not json")
    with pytest.raises(SourceError):
        metasync.sync(config(tmp_path, tmp_path / "src"))
    (tmp_path / "src" / "S" / "bad.json").unlink()
    write_csn(tmp_path / "src" / "S" / "good.json", {"T": entity("A")})
    metasync.plan(config(tmp_path, tmp_path / "src"))
    metasync.sync(config(tmp_path, tmp_path / "src"))
    files = sorted((tmp_path / "audit").glob("*/plan.parquet"))
    assert len(files) == 3
    assert all(pl.read_parquet_schema(f) == PLAN_FILE_SCHEMA for f in files)
    assert pl.scan_parquet(tmp_path / "audit" / "*" / "plan.parquet").collect().height == 2


def test_control_characters_never_reach_a_description_or_comment(tmp_path: Path) -> None:
    """Glue's text patterns refuse them (all in comments, all but line breaks and tabs in descriptions)."""
    label = {"@EndUserText.label": "bell\u0007 nul\u0000 esc\u001b end\ufffe"}
    table = entity("A") | {"@EndUserText.label": "two\nlines\tand a bell\u0007, nul\u0000 \u000b end"}
    table["elements"]["A"] |= label
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": table})
    metasync.sync(config(tmp_path, tmp_path / "src"))
    written = json.loads((tmp_path / "catalog" / "s" / "tables" / "t.json").read_text())
    assert written["Description"] == "two\nlines\tand a bell , nul    end"
    assert written["StorageDescriptor"]["Columns"][0]["Comment"] == "bell  nul  esc  end"
    assert metasync.sync(config(tmp_path, tmp_path / "src")).summary["counts"]["unchanged"] == 1


def test_an_asset_whose_upstream_failed_to_write_is_a_skip_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reported as an asset held before the write is: action skip, a warning naming the upstream, a hint."""
    view = entity("A") | {"query": {"SELECT": {"from": {"ref": ["T"]}}}}
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A"), "V": view})
    write_file = LocalTarget._write_file

    def full_disk(self: LocalTarget, path: Path, content: bytes) -> None:
        if path.name == "t.json":
            raise OSError(28, "No space left on device", str(path))
        write_file(self, path, content)

    monkeypatch.setattr(LocalTarget, "_write_file", full_disk)
    result = metasync.sync(config(tmp_path, tmp_path / "src"))
    row = result.plan.filter(pl.col("name") == "V").row(0, named=True)
    assert (row["action"], row["status"]) == ("skip", "skipped")
    assert row["reason"] == "skipped because upstream S.T was not written" and row["hint"]
    event = result.events.filter((pl.col("event") == "asset") & (pl.col("name") == "V")).row(0, named=True)
    assert event["severity"] == "warning" and event["hint"]
    assert result.summary["counts"]["skipped"] == 1 and result.summary["counts"]["failed"] == 1


def test_decimals_wider_than_glue_holds_are_reported(tmp_path: Path) -> None:
    table = entity("A")
    table["elements"] |= {
        "WIDE": {"type": "cds.Decimal", "precision": 99, "scale": 50},
        "FINE": {"type": "cds.Decimal", "precision": 38, "scale": 10},
    }
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": table})
    result = metasync.plan(config(tmp_path, tmp_path / "src"))
    (event,) = result.events.filter(pl.col("event") == "decimal_narrowed").rows(named=True)
    assert event["severity"] == "warning" and "S.T.WIDE decimal(99,50) -> decimal(38,0)" in event["message"]
    assert json.loads(event["details"])["columns"] == 1 and event["hint"]


def test_tables_an_asset_left_for_another_name_are_reported(tmp_path: Path) -> None:
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A")})
    settings = config(
        tmp_path, tmp_path / "src", rules=[{"kind": "naming", "target": "table", "prefix": "v1_"}]
    )
    metasync.sync(settings)
    settings["rules"] = []
    result = metasync.sync(settings, delete_stale=True)
    (event,) = result.events.filter(pl.col("event") == "tables_left_behind").rows(named=True)
    assert "s.v1_t (now S.T -> s.t)" in event["message"] and event["severity"] == "warning"
    assert (tmp_path / "catalog" / "s" / "tables" / "v1_t.json").exists()
    assert metasync.sync(settings).events.filter(pl.col("event") == "tables_left_behind").height == 1


@pytest.mark.parametrize(
    ("stop", "code", "said"),
    [(signal.SIGTERM, 143, "stopped (SIGTERM)"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_run_stopped_while_writing_audits_what_it_wrote(
    tmp_path: Path, stop: signal.Signals, code: int, said: str
) -> None:
    """A service manager's SIGTERM or Ctrl-C in the middle of the writes: the audit is written and counts the
    tables written before the stop, and no half-written file is left."""
    catalog = tmp_path / "catalog"
    run = start_sync_of_generated_tenant(tmp_path, 3000)
    deadline = time.monotonic() + 120
    while (
        len(list(catalog.glob("*/tables/*.json"))) < 100
        and run.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    run.send_signal(stop)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == code, stderr
    written = len(list(catalog.glob("*/tables/*.json")))
    assert 100 <= written < 3000 and not list(catalog.rglob(".tmp-*"))
    (audit,) = (tmp_path / "audit").iterdir()
    summary = json.loads((audit / "summary.json").read_text())
    assert summary["status"] == "failed" and written - 1 <= summary["counts"]["created"] <= written
    events = pl.read_parquet(audit / "events.parquet")
    failed = events.filter(pl.col("event") == "run_failed")["message"].item()
    assert said in failed and f"{summary['counts']['created']} table write(s) were done" in failed
    # The whole plan, each write with what became of it.
    plan = pl.read_parquet(audit / "plan.parquet")
    assert plan.height == summary["counts"]["assets"] > written and plan["kind"].null_count() == 0
    assert plan.filter(pl.col("status") == "ok").height == summary["counts"]["created"]
    stopped = plan.filter(pl.col("status") == "stopped")
    assert stopped.height == plan.height - summary["counts"]["created"]
    assert set(stopped["reason"]) == {"not written: the run stopped first"}
    assert (
        not plan.filter(pl.col("status") == "ok")["reason"].fill_null("").str.starts_with("not written").any()
    )
    assert events.filter(pl.col("event") == "asset").height == plan.height


def test_the_plan_file_names_each_assets_upstreams(tmp_path: Path) -> None:
    view = entity("A") | {"query": {"SELECT": {"from": {"ref": ["T"]}}}}
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A"), "V": view})
    result = metasync.sync(config(tmp_path, tmp_path / "src"))
    plan = pl.read_parquet(result.audit_dir / "plan.parquet")
    assert dict(plan.select("name", "upstreams").iter_rows()) == {"T": "", "V": "S.T"}
    assert result.plan.filter(pl.col("name") == "V")["upstreams"].to_list() == [["S.T"]]


def test_a_run_that_fails_before_its_first_write_lists_no_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing was written and nothing was cut short: its plan file holds no row that says otherwise."""
    write_csn(tmp_path / "src" / "S" / "t.json", {"T": entity("A")})

    def refuse(_self: LocalTarget, _databases: list[str]) -> None:
        raise TargetError(
            "the local catalog folder is not writable (Read-only file system); nothing was written."
        )

    monkeypatch.setattr(LocalTarget, "_check_writable", refuse)
    with pytest.raises(TargetError) as caught:
        metasync.sync(config(tmp_path, tmp_path / "src"))
    assert caught.value.audit_dir is not None
    assert pl.read_parquet(caught.value.audit_dir / "plan.parquet").is_empty()
    events = pl.read_parquet(caught.value.audit_dir / "events.parquet")
    assert events.filter(pl.col("event") == "asset").is_empty()
