"""End to end: `metasync.sync` / `metasync.plan` from CSN files into moto server over HTTP, through the proxy."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from csn_export import table, tables, view, write_export
from glue_proxy import GlueProxy
from glue_rows import all_tables, direct_client, target_settings

import metasync

REPO = Path(__file__).resolve().parents[2]
WRITE_OPERATIONS = {"CreateDatabase", "CreateTable", "UpdateTable", "BatchDeleteTable"}


def sync_config(exports: Path, endpoint: str, audit: Path, **sync_options: Any) -> dict[str, Any]:
    return {
        "source": {"kind": "csn", "path": str(exports)},
        "target": target_settings(endpoint),
        "audit": {"dir": str(audit)},
        "sync": sync_options,
    }


def summary_file(result: metasync.SyncResult) -> dict[str, Any]:
    assert result.audit_dir is not None
    return dict(json.loads((Path(result.audit_dir) / "summary.json").read_text()))


def plan_of(result: metasync.SyncResult) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in result.plan.iter_rows(named=True)}


def test_initial_sync_creates_each_table_and_rerun_writes_nothing(
    glue_proxy: GlueProxy, moto: str, tmp_path: Path
) -> None:
    n = 260
    exports = write_export(tmp_path / "exports", "SALES", tables(n))
    config = sync_config(exports, glue_proxy.url, tmp_path / "audit")

    first = metasync.sync(config)
    calls = summary_file(first)["api_calls"]
    assert first.summary["status"] == "succeeded"
    assert first.summary["counts"]["created"] == n
    assert calls["CreateTable"] == n and calls["CreateDatabase"] == 1
    assert sum(calls.values()) <= n + 1 + 1 + math.ceil(n / 100)
    assert len(all_tables(moto, "sales")) == n

    glue_proxy.reset_counts()
    second = metasync.sync(config)
    calls = summary_file(second)["api_calls"]
    assert second.summary["counts"]["unchanged"] == n
    assert not WRITE_OPERATIONS & set(calls)
    assert not WRITE_OPERATIONS & set(glue_proxy.counts)
    assert calls == {"GetDatabase": 1, "GetTables": math.ceil(n / 100)}
    assert glue_proxy.violations == []


def test_sync_converges_under_20_percent_throttling(glue_proxy: GlueProxy, moto: str, tmp_path: Path) -> None:
    n = 120
    glue_proxy.throttle_rate = 0.2
    exports = write_export(tmp_path / "exports", "SALES", tables(n))
    config = sync_config(exports, glue_proxy.url, tmp_path / "audit")

    result = metasync.sync(config)
    summary = summary_file(result)
    assert summary["status"] == "succeeded"
    assert summary["counts"]["created"] == n
    assert sum(summary["api_retries"].values()) == sum(glue_proxy.throttled.values()) > 0
    assert summary["api_calls"]["CreateTable"] == n + summary["api_retries"].get("CreateTable", 0)
    names = [t["Name"] for t in all_tables(moto, "sales")]
    assert len(names) == len(set(names)) == n

    rerun = metasync.sync(config)
    assert rerun.summary["counts"]["unchanged"] == n
    assert not WRITE_OPERATIONS & set(summary_file(rerun)["api_calls"])


def test_failed_table_skips_its_data_flow_dependents(
    glue_proxy: GlueProxy, moto: str, tmp_path: Path
) -> None:
    definitions = {"BASE": table(), "MIDDLE": view("BASE"), "TOP": view("MIDDLE"), "OTHER": table()}
    exports = write_export(tmp_path / "exports", "SALES", definitions)
    glue_proxy.fail_tables = {"base": (400, "AccessDeniedException")}

    result = metasync.sync(sync_config(exports, glue_proxy.url, tmp_path / "audit"))
    plan = plan_of(result)
    assert result.summary["status"] == "partial"
    assert (plan["BASE"]["status"], plan["BASE"]["error_code"]) == ("failed", "AccessDeniedException")
    assert plan["MIDDLE"]["status"] == plan["TOP"]["status"] == "skipped"
    assert plan["OTHER"]["status"] == "ok"
    assert plan["BASE"]["batch"] < plan["MIDDLE"]["batch"] < plan["TOP"]["batch"]
    assert sorted(t["Name"] for t in all_tables(moto, "sales")) == ["other"]
    events = result.events.filter(pl.col("name") == "BASE")
    assert events.filter(pl.col("status") == "failed")["hint"].str.contains("IAM").all()


def test_stale_deletion_is_safe(glue_proxy: GlueProxy, moto: str, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    write_export(exports, "SALES", tables(10))
    audit = tmp_path / "audit"
    metasync.sync(sync_config(exports, glue_proxy.url, audit))
    client = direct_client(moto)
    client.create_table(
        DatabaseName="sales",
        TableInput={"Name": "hand_made", "StorageDescriptor": {"Columns": [{"Name": "x", "Type": "int"}]}},
    )
    hand_made = json.dumps(client.get_table(DatabaseName="sales", Name="hand_made")["Table"], default=str)

    # One of ten managed tables gone (10% <= 20%): deleted, and only with delete_stale.
    write_export(exports, "SALES", {k: v for k, v in tables(10).items() if k != "T_00009"})
    kept = metasync.sync(sync_config(exports, glue_proxy.url, audit))
    assert "BatchDeleteTable" not in kept.summary["api_calls"]
    assert len(all_tables(moto, "sales")) == 11
    deleted = metasync.sync(sync_config(exports, glue_proxy.url, audit, delete_stale=True))
    assert deleted.summary["counts"]["deleted"] == 1
    assert sorted(t["Name"] for t in all_tables(moto, "sales")) == [
        "hand_made",
        *(f"t_{i:05d}" for i in range(9)),
    ]

    # Four of nine would go (44% > 20%): refused with the numbers, nothing deleted.
    write_export(exports, "SALES", {k: v for k, v in tables(5).items()})
    refused = metasync.sync(sync_config(exports, glue_proxy.url, audit, delete_stale=True))
    assert refused.summary["status"] == "partial"
    assert "BatchDeleteTable" not in refused.summary["api_calls"]
    message = refused.events.filter(pl.col("event") == "delete_refused")["message"].to_list()
    assert message and "4 of 9" in message[0]
    assert len(all_tables(moto, "sales")) == 10

    # A partial source read (an unreadable file skipped) never deletes.
    (exports / "SALES" / "broken.json").write_text("{not json", encoding="utf-8")
    config = sync_config(exports, glue_proxy.url, audit, delete_stale=True, max_delete_fraction=1.0)
    config["source"]["skip_invalid"] = True
    partial = metasync.sync(config)
    assert "BatchDeleteTable" not in partial.summary["api_calls"]
    assert len(all_tables(moto, "sales")) == 10
    assert (
        json.dumps(client.get_table(DatabaseName="sales", Name="hand_made")["Table"], default=str)
        == hand_made
    )


def test_unmanaged_tables_stay_byte_identical(glue_proxy: GlueProxy, moto: str, tmp_path: Path) -> None:
    client = direct_client(moto)
    client.create_database(DatabaseInput={"Name": "sales", "Description": "the BI team's database"})
    theirs = {"Name": "t_00001", "Description": "made by hand", "Parameters": {"owner": "bi"}}
    client.create_table(DatabaseName="sales", TableInput=theirs)
    before = {
        "table": json.dumps(client.get_table(DatabaseName="sales", Name="t_00001")["Table"], default=str),
        "database": json.dumps(client.get_database(Name="sales")["Database"], default=str),
    }
    exports = write_export(tmp_path / "exports", "SALES", tables(3))

    result = metasync.sync(sync_config(exports, glue_proxy.url, tmp_path / "audit", delete_stale=True))
    assert plan_of(result)["T_00001"]["action"] == "conflict"
    assert plan_of(result)["T_00000"]["status"] == "ok"
    after = {
        "table": json.dumps(client.get_table(DatabaseName="sales", Name="t_00001")["Table"], default=str),
        "database": json.dumps(client.get_database(Name="sales")["Database"], default=str),
    }
    assert after == before
    assert not any(op in ("UpdateTable", "BatchDeleteTable") for op, _ in glue_proxy.requests)


def test_description_edited_in_glue_is_kept(glue_proxy: GlueProxy, moto: str, tmp_path: Path) -> None:
    exports = write_export(tmp_path / "exports", "SALES", tables(2))
    config = sync_config(exports, glue_proxy.url, tmp_path / "audit")
    metasync.sync(config)
    client = direct_client(moto)
    current = client.get_table(DatabaseName="sales", Name="t_00000")["Table"]
    edited = {k: current[k] for k in ("Name", "TableType", "Parameters", "StorageDescriptor")}
    client.update_table(DatabaseName="sales", TableInput={**edited, "Description": "curated in the console"})

    result = metasync.sync(config)
    assert result.summary["counts"]["unchanged"] == 2
    assert (
        client.get_table(DatabaseName="sales", Name="t_00000")["Table"]["Description"]
        == "curated in the console"
    )


def test_plan_reads_glue_and_shows_creates_updates_with_columns_and_deletes(
    glue_proxy: GlueProxy, tmp_path: Path
) -> None:
    exports = tmp_path / "exports"
    write_export(exports, "SALES", tables(6))
    audit = tmp_path / "audit"
    metasync.sync(sync_config(exports, glue_proxy.url, audit))
    changed = {k: v for k, v in tables(6).items() if k != "T_00005"}
    changed["T_00000"] = table(extra_columns=1, label="Table 0")
    changed["NEW_ONE"] = table()
    write_export(exports, "SALES", changed)

    glue_proxy.reset_counts()
    result = metasync.plan(sync_config(exports, glue_proxy.url, audit, delete_stale=True))
    plan = plan_of(result)
    assert plan["NEW_ONE"]["action"] == "create"
    assert plan["T_00000"]["action"] == "update"
    assert "extra_0" in plan["T_00000"]["column_changes"]
    assert plan["T_00005"]["action"] == "delete"
    assert plan["T_00001"]["action"] == "unchanged"
    assert set(glue_proxy.counts) == {"GetDatabase", "GetTables"}


@pytest.mark.corpus
def test_real_corpus_syncs_into_glue_and_reruns_without_writes(
    glue_proxy: GlueProxy, corpus_path: Path, tmp_path: Path
) -> None:
    config = sync_config(corpus_path, glue_proxy.url, tmp_path / "audit")
    config["source"]["space"] = "CORPUS"
    first = metasync.sync(config)
    created = first.summary["counts"]["created"]
    assert created > 50
    assert first.summary["api_calls"]["CreateTable"] == created
    assert glue_proxy.violations == []
    rerun = metasync.sync(config)
    assert rerun.summary["counts"]["unchanged"] == created
    assert not WRITE_OPERATIONS & set(rerun.summary["api_calls"])


# ---------------------------------------------------------------- IAM permissions in the README
def _readme_glue_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- section:glue -->")
    end = text.find("<!-- section:", start + 1)
    return text[start : end if end != -1 else None]


def _operations_in_code() -> set[str]:
    source = (REPO / "metasync" / "targets" / "glue.py").read_text(encoding="utf-8")
    return set(re.findall(r'self\._call\(\s*"(\w+)"', source))


def test_readme_iam_permissions_match_the_glue_calls_the_code_makes() -> None:
    listed = set(re.findall(r"`glue:(\w+)`", _readme_glue_section()))
    assert listed == _operations_in_code()
    assert {"GetDatabase", "GetTables", "GetTable", "CreateDatabase", "CreateTable", "UpdateTable"} <= listed
    assert "BatchDeleteTable" in listed
    assert "`sts:AssumeRole`" in _readme_glue_section()


def _edit_description_in_glue(moto: str, table: str, text: str) -> None:
    client = direct_client(moto)
    current = client.get_table(DatabaseName="sales", Name=table)["Table"]
    edited = {k: current[k] for k in ("Name", "TableType", "Parameters", "StorageDescriptor")}
    client.update_table(DatabaseName="sales", TableInput={**edited, "Description": text})


@pytest.mark.parametrize(
    ("strategy", "action", "description_kept"),
    [("merge", "update", True), ("source_wins", "update", False), ("manual", "conflict", True)],
)
def test_console_edit_meets_a_source_change_per_strategy(
    glue_proxy: GlueProxy, moto: str, tmp_path: Path, strategy: str, action: str, description_kept: bool
) -> None:
    exports = tmp_path / "exports"
    write_export(exports, "SALES", {"ORDERS": table(label="Orders")})
    config = sync_config(exports, glue_proxy.url, tmp_path / "audit")
    config["conflicts"] = {"edited_in_target": strategy}
    metasync.sync(config)
    _edit_description_in_glue(moto, "orders", "curated in the console")
    write_export(exports, "SALES", {"ORDERS": table(extra_columns=1, label="Orders")})

    result = metasync.sync(config)
    assert plan_of(result)["ORDERS"]["action"] == action
    stored = direct_client(moto).get_table(DatabaseName="sales", Name="orders")["Table"]
    assert (stored["Description"] == "curated in the console") is description_kept
    columns = [c["Name"] for c in stored["StorageDescriptor"]["Columns"]]
    assert ("extra_0" in columns) is (action == "update")
