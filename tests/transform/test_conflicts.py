"""Each conflict type × strategy, end to end: CSN files → local catalog, then a change on either side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

import metasync
from metasync.errors import ConfigError
from metasync.transform.conflicts import (
    TEXT_HASH_KEY,
    _text_of,
    compatible_type_change,
    edited_text,
    text_digests,
)


def element(type_: str = "cds.String", **facets: Any) -> dict[str, Any]:
    return {"type": type_, **facets}


def orders(**changes: Any) -> dict[str, Any]:
    """The ORDERS table; `changes` replace or (with None) remove elements."""
    elements = {
        "ID": element("cds.Integer", key=True, notNull=True),
        "AMOUNT": element("cds.Decimal", precision=15, scale=2),
        "NOTE": element(length=100, **{"@EndUserText.label": "Note"}),
    }
    for name, value in changes.items():
        if value is None:
            elements.pop(name)
        else:
            elements[name] = value
    return {"kind": "entity", "@EndUserText.label": "Orders", "elements": elements}


def tenant(orders_def: dict[str, Any] | None = None, **more: dict[str, Any]) -> dict[str, Any]:
    return {
        "ORDERS": orders_def or orders(),
        "ITEMS": {"kind": "entity", "elements": {"ITEM": element(length=10, key=True)}},
        "V_ORDERS": {
            "kind": "entity",
            "query": {"SELECT": {"from": {"ref": ["ORDERS"]}}},
            "elements": {"ID": element("cds.Integer")},
        },
        **more,
    }


class Workspace:
    """A CSN source folder, a local catalog and an audit folder under one temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.catalog = root / "catalog"

    def write(self, definitions: dict[str, Any]) -> None:
        path = self.root / "src" / "SALES" / "model.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"definitions": definitions}), encoding="utf-8")

    def config(self, **extra: Any) -> dict[str, Any]:
        return {
            "source": {"kind": "csn", "path": str(self.root / "src")},
            "target": {"kind": "local", "path": str(self.catalog)},
            "audit": {"dir": str(self.root / "audit")},
            **extra,
        }

    def table_file(self, table: str) -> Path:
        return self.catalog / "sales" / "tables" / f"{table}.json"

    def table(self, table: str) -> dict[str, Any]:
        return orjson.loads(self.table_file(table).read_bytes())

    def edit(self, table: str, **fields: Any) -> None:
        data = self.table(table)
        data.update(fields)
        self.table_file(table).write_bytes(orjson.dumps(data))

    def sync(self, **extra: Any) -> metasync.SyncResult:
        return metasync.sync(self.config(**extra))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def actions(result: metasync.SyncResult) -> dict[str, str]:
    return dict(result.plan.select("name", "action").iter_rows())


def conflict_events(result: metasync.SyncResult) -> pl.DataFrame:
    return result.events.filter(pl.col("event") == "conflict")


def file_state(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


# ------------------------------------------------------------------ ownership
def put_foreign_table(ws: Workspace, table: str = "orders") -> tuple[bytes, int]:
    path = ws.table_file(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"Name": "orders", "Description": "hand made", "Parameters": {"owner": "bi-team"}}')
    return file_state(path)


def test_ownership_manual_holds_the_asset_skips_dependents_and_leaves_the_table_byte_identical(ws):
    ws.write(tenant())
    before = put_foreign_table(ws)
    result = ws.sync()
    assert file_state(ws.table_file("orders")) == before
    assert actions(result) == {"ORDERS": "conflict", "ITEMS": "create", "V_ORDERS": "skip"}
    event = conflict_events(result).row(0, named=True)
    assert event["name"] == "ORDERS" and event["severity"] == "error" and event["status"] == "held"
    details = json.loads(event["details"])
    assert details["conflict_type"] == "ownership" and details["strategy"] == "manual"
    assert details["conflict"]["glue_table"] == "orders" and event["hint"]
    assert result.exit_code == 1


def test_ownership_target_wins_skips_only_the_asset(ws):
    ws.write(tenant())
    before = put_foreign_table(ws)
    result = ws.sync(conflicts={"ownership": "target_wins"})
    assert file_state(ws.table_file("orders")) == before
    assert actions(result) == {"ORDERS": "skip", "ITEMS": "create", "V_ORDERS": "create"}
    assert conflict_events(result)["status"].to_list() == ["skipped"]


@pytest.mark.parametrize(
    "where", [{"ownership": "source_wins"}, {"by_kind": {"table": {"ownership": "merge"}}}]
)
def test_ownership_cannot_be_overwritten_by_configuration(ws, where):
    ws.write(tenant())
    with pytest.raises(ConfigError, match="never overwrites a table it does not manage"):
        metasync.plan(ws.config(conflicts=where))


def test_by_kind_names_only_known_asset_kinds(ws):
    ws.write(tenant())
    with pytest.raises(
        ConfigError, match=r"conflicts.by_kind: unknown asset kind\(s\) \['analytic_models'\]"
    ):
        metasync.plan(ws.config(conflicts={"by_kind": {"analytic_models": {"schema_drift": "manual"}}}))


def test_merge_is_not_a_naming_strategy(ws):
    ws.write(tenant())
    with pytest.raises(ConfigError, match=r"conflicts.naming: 'merge' is not allowed for naming conflicts"):
        metasync.plan(ws.config(conflicts={"naming": "merge"}))


# ------------------------------------------------------------------ naming
def test_naming_two_assets_one_name_source_wins_writes_both_with_the_suffix_rule(ws):
    ws.write(tenant(Orders={"kind": "entity", "elements": {"X": element(length=5)}}))
    result = ws.sync()
    tables = dict(result.assets.select("name", "glue_table").iter_rows())
    assert (
        tables["ORDERS"] == "orders"
        and tables["Orders"].startswith("orders_")
        and len(tables["Orders"]) == 15
    )
    assert actions(result)["Orders"] == "create" and result.exit_code == 0
    event = conflict_events(result).row(0, named=True)
    assert (event["name"], event["severity"], event["status"]) == ("Orders", "warning", "overwritten")
    assert json.loads(event["details"])["conflict"]["other_name"] == "ORDERS"


def test_naming_two_assets_one_name_manual_holds_the_suffixed_one(ws):
    ws.write(tenant(Orders={"kind": "entity", "elements": {"X": element(length=5)}}))
    result = ws.sync(conflicts={"naming": "manual"})
    assert actions(result)["Orders"] == "conflict" and actions(result)["ORDERS"] == "create"
    assert not any(p.name.startswith("orders_") for p in (ws.catalog / "sales" / "tables").iterdir())


@pytest.mark.parametrize(
    ("strategy", "action", "owner"),
    [("source_wins", "update", "ITEMS"), ("manual", "conflict", "ORDERS"), ("target_wins", "skip", "ORDERS")],
)
def test_naming_table_managed_for_another_asset(ws, strategy, action, owner):
    ws.write(tenant())
    ws.sync()
    # ORDERS now goes elsewhere and ITEMS takes its old table name.
    rules = [
        {"kind": "naming", "template": "orders_v2", "where": {"name_glob": "ORDERS"}},
        {"kind": "naming", "template": "orders", "where": {"name_glob": "ITEMS"}},
    ]
    result = ws.sync(rules=rules, conflicts={"naming": strategy})
    assert actions(result)["ITEMS"] == action
    assert ws.table("orders")["Parameters"]["metasync:name"] == owner
    assert "managed by metasync for another asset (SALES.ORDERS)" in conflict_events(result)["message"][0]


def test_a_table_is_not_taken_from_an_asset_that_lost_its_name_to_a_collision(ws):
    ws.write(tenant())
    rename = {"kind": "naming", "template": "orders", "where": {"name_glob": "ITEMS"}}
    ws.sync(rules=[rename, {"kind": "scope", "exclude": {"name_glob": "ITEMS"}}])
    before = file_state(ws.table_file("orders"))
    # ITEMS now maps to `orders` too and comes first in code-point order: ORDERS would get the suffix and
    # ITEMS its table. Both are held; the table keeps describing ORDERS.
    result = ws.sync(rules=[rename])
    assert actions(result)["ITEMS"] == "conflict" and actions(result)["ORDERS"] == "conflict"
    assert file_state(ws.table_file("orders")) == before
    assert not list(ws.table_file("orders").parent.glob("orders_*.json"))  # no second table for ORDERS
    messages = conflict_events(result)["message"].to_list()
    assert any("lost the name to a collision and keeps it: held" in m for m in messages)
    assert any("but owns that table now: held" in m for m in messages)


def test_a_collision_and_other_conflicts_in_one_run_hold_each_asset(ws):
    # Each kind of conflict comes with its own columns; together in one run they are still one report.
    ws.write(tenant())
    ws.sync()
    customers = {"kind": "entity", "elements": {"ID": element(length=5)}}
    ws.write(
        drifted()
        | {"Orders": {"kind": "entity", "elements": {"X": element(length=5)}}}
        | {"CUSTOMERS": customers}
    )
    ws.table_file("customers").write_text('{"Name": "customers", "Parameters": {"owner": "crm"}}')
    before = file_state(ws.table_file("customers"))
    result = ws.sync(conflicts={"schema_drift": "manual"})
    assert actions(result) == {
        "ORDERS": "conflict",
        "Orders": "create",
        "ITEMS": "unchanged",
        "V_ORDERS": "skip",
        "CUSTOMERS": "conflict",
    }
    assert file_state(ws.table_file("customers")) == before
    conflict_type = pl.col("details").str.json_path_match("$.conflict_type")
    types = dict(conflict_events(result).select("name", conflict_type).iter_rows())
    assert types == {"ORDERS": "schema_drift", "Orders": "naming", "CUSTOMERS": "ownership"}
    assert result.exit_code == 1


# ------------------------------------------------------------------ schema drift
def drifted() -> dict[str, Any]:
    return tenant(orders(NOTE=None, AMOUNT=element("cds.Decimal", precision=10, scale=2)))


def test_schema_drift_is_detected_with_what_changed(ws):
    ws.write(tenant())
    ws.sync()
    ws.write(drifted())
    result = ws.sync(conflicts={"schema_drift": "manual"})
    event = conflict_events(result).row(0, named=True)
    details = json.loads(event["details"])["conflict"]
    assert details["removed"] == ["note"] and details["narrowed"] == [
        "amount: decimal(15,2) -> decimal(10,2)"
    ]
    assert "columns removed: note" in event["message"]


@pytest.mark.parametrize(
    ("strategy", "orders_action", "view_action", "columns_after"),
    [
        ("source_wins", "update", "unchanged", ["id", "amount"]),
        ("merge", "update", "unchanged", ["id", "amount"]),
        ("manual", "conflict", "skip", ["id", "amount", "note"]),
        ("target_wins", "skip", "unchanged", ["id", "amount", "note"]),
    ],
)
def test_schema_drift_strategies(ws, strategy, orders_action, view_action, columns_after):
    ws.write(tenant())
    ws.sync()
    ws.edit("orders", Parameters={**ws.table("orders")["Parameters"], "owner": "bi-team"})
    before = file_state(ws.table_file("orders"))
    ws.write(drifted())
    result = ws.sync(conflicts={"schema_drift": strategy})
    assert actions(result)["ORDERS"] == orders_action and actions(result)["V_ORDERS"] == view_action
    table = ws.table("orders")
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == columns_after
    if strategy in ("manual", "target_wins"):
        assert file_state(ws.table_file("orders")) == before
    # Every strategy keeps the Parameters only the target has (source_wins writes the source's columns).
    assert table["Parameters"]["owner"] == "bi-team"


@pytest.mark.parametrize(
    ("strategy", "status", "hint"),
    [
        ("manual", "held", "set conflicts.schema_drift to source_wins to apply them"),
        ("source_wins", "overwritten", "set conflicts.schema_drift to manual to review"),
        ("merge", "merged", "set conflicts.schema_drift to manual to review"),
        ("target_wins", "skipped", "set conflicts.schema_drift to source_wins or merge to write the source"),
    ],
)
def test_a_conflict_event_says_what_its_strategy_did_and_how_to_change_it(ws, strategy, status, hint):
    ws.write(tenant())
    ws.sync()
    ws.write(drifted())
    planned = metasync.plan(ws.config(conflicts={"schema_drift": strategy}))
    # A dry run writes nothing: what a sync would overwrite or merge is only planned.
    assert conflict_events(planned)["status"].to_list() == [
        "planned" if status in ("overwritten", "merged") else status
    ]
    event = conflict_events(ws.sync(conflicts={"schema_drift": strategy})).row(0, named=True)
    assert event["status"] == status and hint in event["hint"]


def test_a_held_asset_gets_the_hint_of_its_conflict_and_updates_list_changes_as_json(ws):
    ws.write(tenant())
    ws.sync()
    ws.write(drifted())
    held = ws.sync(conflicts={"schema_drift": "manual"})
    row = held.plan.filter(pl.col("name") == "ORDERS").row(0, named=True)
    assert row["action"] == "conflict" and row["conflict_type"] == "schema_drift"
    assert row["hint"].startswith("Check the dropped or narrowed columns")
    applied = ws.sync()
    changes = applied.plan.filter(pl.col("name") == "ORDERS")["column_changes"].item()
    assert json.loads(changes)["removed"] == ["note"]


def test_strategy_by_kind_overrides_the_default(ws):
    ws.write(tenant())
    ws.sync()
    ws.write(drifted())
    result = ws.sync(
        conflicts={"schema_drift": "source_wins", "by_kind": {"table": {"schema_drift": "manual"}}}
    )
    assert actions(result)["ORDERS"] == "conflict"


def test_widening_is_not_drift(ws):
    ws.write(tenant())
    ws.sync()
    ws.write(tenant(orders(AMOUNT=element("cds.Decimal", precision=20, scale=4), NOTE=element(length=200))))
    result = ws.sync(conflicts={"schema_drift": "manual"})
    assert actions(result)["ORDERS"] == "update" and conflict_events(result).is_empty()


# ------------------------------------------------------------------ edited in target
def test_a_column_added_in_the_target_is_drift_not_edited_text(ws):
    ws.write(tenant())
    ws.sync()
    table = ws.table("orders")
    extra = {"Name": "extra", "Type": "string"}
    ws.edit(
        "orders",
        StorageDescriptor={
            **table["StorageDescriptor"],
            "Columns": [*table["StorageDescriptor"]["Columns"], extra],
        },
    )
    result = ws.sync(conflicts={"edited_in_target": "manual"})
    assert actions(result)["ORDERS"] == "update"  # schema_drift: source_wins removes the column again
    messages = conflict_events(result)["message"].to_list()
    assert any("schema_drift" in m for m in messages)
    assert not any("were edited in the target" in m for m in messages)
    assert [c["Name"] for c in ws.table("orders")["StorageDescriptor"]["Columns"]] == [
        c["Name"] for c in table["StorageDescriptor"]["Columns"]
    ]


def test_a_text_fingerprint_stored_in_the_earlier_form_is_not_an_edit(ws):
    ws.write(tenant(orders(NOTE=element(length=5, **{"@EndUserText.label": None}))))
    ws.sync()
    table = ws.table("orders")
    earlier = text_digests(
        pl.select(_text_of(pl.lit(orjson.dumps(table).decode()), commented_only=False)).to_series()
    ).item()
    ws.edit("orders", Parameters={**table["Parameters"], TEXT_HASH_KEY: earlier})
    ws.write(tenant(orders(STATUS=element(length=2))))  # a source change: the text checks run
    result = ws.sync(conflicts={"edited_in_target": "manual"})
    assert actions(result)["ORDERS"] == "update"
    assert conflict_events(result).is_empty()


def edited_then_changed(ws: Workspace) -> tuple[bytes, int]:
    ws.write(tenant())
    ws.sync()
    table = ws.table("orders")
    columns = table["StorageDescriptor"]["Columns"]
    columns[2]["Comment"] = "edited by a steward"
    ws.edit(
        "orders",
        Description="Curated by the BI team",
        Parameters={**table["Parameters"], "owner": "bi-team"},
        StorageDescriptor={**table["StorageDescriptor"], "Columns": columns},
    )
    before = file_state(ws.table_file("orders"))
    ws.write(tenant(orders(STATUS=element(length=2))))  # a source change: one more column
    return before


def test_edited_in_target_default_merge_keeps_the_edits_and_takes_the_new_column(ws):
    edited_then_changed(ws)
    result = ws.sync()
    assert actions(result)["ORDERS"] == "update"
    table = ws.table("orders")
    assert table["Description"] == "Curated by the BI team"
    assert [c.get("Comment") for c in table["StorageDescriptor"]["Columns"]][2] == "edited by a steward"
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "amount", "note", "status"]
    assert table["Parameters"]["owner"] == "bi-team"
    event = conflict_events(result).row(0, named=True)
    assert json.loads(event["details"])["conflict"]["target_description"] == "Curated by the BI team"
    # The edit stays visible: the next source change merges again instead of overwriting it.
    ws.write(tenant(orders(STATUS=element(length=3))))
    again = ws.sync()
    assert ws.table("orders")["Description"] == "Curated by the BI team"
    assert [json.loads(d)["strategy"] for d in conflict_events(again)["details"]] == ["merge"]


def labelled_orders(table: str, amount: str) -> dict[str, Any]:
    definition = orders(
        AMOUNT=element("cds.Decimal", precision=15, scale=2, **{"@EndUserText.label": amount})
    )
    return definition | {"@EndUserText.label": table}


def comments(table: dict[str, Any]) -> dict[str, str | None]:
    return {c["Name"]: c.get("Comment") for c in table["StorageDescriptor"]["Columns"]}


def test_merge_keeps_only_the_edited_text_and_takes_the_source_changes_elsewhere(ws):
    ws.write(tenant(labelled_orders("Orders", "Amount")))
    ws.sync()
    table = ws.table("orders")
    columns = table["StorageDescriptor"]["Columns"]
    columns[2]["Comment"] = "edited by a steward"
    ws.edit("orders", StorageDescriptor={**table["StorageDescriptor"], "Columns": columns})
    # The source relabels the table and a column the steward did not touch.
    ws.write(tenant(labelled_orders("Order headers", "Amount in EUR")))
    result = ws.sync()
    table = ws.table("orders")
    assert table["Description"] == "Order headers"
    assert comments(table) == {"id": None, "amount": "Amount in EUR", "note": "edited by a steward"}
    event = conflict_events(result).row(0, named=True)
    assert json.loads(event["details"])["conflict"]["edited"] == {"description": False, "columns": ["note"]}
    assert "the comment of note of sales.orders was edited in the target" in event["message"]
    # The next source change still keeps the steward's comment and takes the rest.
    ws.write(tenant(labelled_orders("Order headers (all)", "Amount in EUR")))
    ws.sync()
    assert ws.table("orders")["Description"] == "Order headers (all)"
    assert comments(ws.table("orders"))["note"] == "edited by a steward"


def test_a_text_changed_on_both_sides_keeps_all_the_target_text(ws):
    ws.write(tenant(labelled_orders("Orders", "Amount")))
    ws.sync()
    ws.edit("orders", Description="Curated orders")
    ws.write(tenant(labelled_orders("Order headers", "Amount in EUR")))  # the description changed here too
    result = ws.sync()
    table = ws.table("orders")
    assert table["Description"] == "Curated orders" and comments(table)["amount"] == "Amount"
    details = json.loads(conflict_events(result)["details"][0])["conflict"]
    assert details["edited"] is None and details["target_description"] == "Curated orders"


def test_a_column_dropped_in_the_target_is_no_edited_text(ws):
    ws.write(tenant())
    ws.sync()
    table = ws.table("orders")
    kept = [c for c in table["StorageDescriptor"]["Columns"] if c["Name"] != "note"]  # note has a comment
    ws.edit("orders", StorageDescriptor={**table["StorageDescriptor"], "Columns": kept})
    result = ws.sync(conflicts={"edited_in_target": "manual"})
    assert actions(result)["ORDERS"] == "update"
    assert "edited_in_target" not in "".join(conflict_events(result)["details"].to_list())
    assert comments(ws.table("orders"))["note"] == "Note"


@pytest.mark.parametrize(
    ("target", "source", "stored_from", "edited"),
    [
        # (target text, source text now, the text metasync wrote): description, then (column, comment) pairs
        (
            ("D", [("a", "x"), ("b", "edited")]),
            ("D", [("a", "x"), ("b", "y")]),
            ("D", [("a", "x"), ("b", "y")]),
            {"description": False, "columns": ["b"]},
        ),
        (
            ("D", [("a", "x")]),
            ("D2", [("a", "x2")]),
            ("D", [("a", "x")]),
            {"description": False, "columns": []},
        ),
        (("E", [("a", "x")]), ("D2", [("a", "x")]), ("D", [("a", "x")]), None),
        (
            ("E", [("a", "")]),
            ("D", [("a", "x")]),
            ("D", [("a", "x")]),
            {"description": True, "columns": ["a"]},
        ),
        (
            ("D", [("a", "x")]),
            ("D", [("a", "x"), ("b", "y")]),
            ("D", [("a", "x"), ("b", "y")]),
            {"description": False, "columns": []},
        ),
    ],
)
def test_edited_text_tells_the_edited_texts_from_the_fingerprint(target, source, stored_from, edited):
    def table_json(description, pairs):
        columns = [{"Name": n, "Type": "string", "Comment": c or None} for n, c in pairs]
        return orjson.dumps({"Description": description, "StorageDescriptor": {"Columns": columns}}).decode()

    stored = text_digests(
        pl.Series([table_json(*stored_from)]).to_frame("t").select(_text_of(pl.col("t"))).to_series()
    )[0]
    assert edited_text(table_json(*source), table_json(*target), stored) == edited


def _wide_table(description: str, comments: list[str]) -> str:
    columns = [{"Name": f"c{i}", "Type": "string", "Comment": c} for i, c in enumerate(comments)]
    return orjson.dumps({"Description": description, "StorageDescriptor": {"Columns": columns}}).decode()


def _text_digest(table_json: str) -> str:
    return text_digests(pl.DataFrame({"t": [table_json]}).select(_text_of(pl.col("t"))).to_series())[0]


def test_edited_text_finds_one_edit_among_many_source_changes():
    written = [f"old {i}" for i in range(60)]
    stored = _text_digest(_wide_table("D", written))
    # The source relabelled every other column.
    source = _wide_table("D", [f"new {i}" if i != 7 else written[7] for i in range(60)])
    target = _wide_table("D", [*written[:7], "edited by a steward", *written[8:]])
    assert edited_text(source, target, stored) == {"description": False, "columns": ["c7"]}


def test_edited_text_is_not_thrown_by_new_columns_without_comments():
    """New columns without a comment leave the fingerprinted text as it is: however many the source adds, the
    edits are read exactly and the source's other text changes still come through."""
    written = [f"old {i}" for i in range(10)]
    stored = _text_digest(_wide_table("Old", written))
    source = _wide_table("New", [*written, *([""] * 80)])
    target = _wide_table("Old", [*written[:3], "steward", *written[4:7], "steward", *written[8:]])
    assert edited_text(source, target, stored) == {"description": False, "columns": ["c3", "c7"]}


def test_edited_text_reads_fingerprints_of_the_earlier_every_column_form():
    earlier = _wide_table("D", ["x", ""])  # the earlier form listed c1, which has no comment, too
    stored = text_digests(
        pl.DataFrame({"t": [earlier]}).select(_text_of(pl.col("t"), commented_only=False)).to_series()
    )[0]
    target = _wide_table("Edited", ["x", ""])
    assert edited_text(_wide_table("D", ["x", ""]), target, stored) == {"description": True, "columns": []}


def test_edited_text_reads_a_wide_table_fingerprinted_in_the_earlier_form():
    """The current form can never match such a table: it must not spend the search the earlier form needs."""
    written = [f"old {i}" for i in range(69)] + [""]  # the last column has no comment
    stored = text_digests(
        pl.DataFrame({"t": [_wide_table("D", written)]})
        .select(_text_of(pl.col("t"), commented_only=False))
        .to_series()
    )[0]
    source = _wide_table("D", [f"new {i}" if i < 60 else written[i] for i in range(70)])
    target = _wide_table("D", [*written[:65], "steward", *written[66:]])
    assert edited_text(source, target, stored) == {"description": False, "columns": ["c65"]}


def test_edited_text_gives_up_beyond_its_readings():
    source = _wide_table("D", [f"new {i}" for i in range(60)])
    target = _wide_table("D", [f"old {i}" for i in range(60)])
    assert edited_text(source, target, "0" * 16) is None  # no reading fits within the readings it tries


def test_edited_in_target_source_wins_overwrites(ws):
    edited_then_changed(ws)
    ws.sync(conflicts={"edited_in_target": "source_wins"})
    table = ws.table("orders")
    assert table["Description"] != "Curated by the BI team"  # the source's text wins
    assert table["Parameters"]["owner"] == "bi-team"  # a Parameter added in the target is not text: it stays


@pytest.mark.parametrize(("strategy", "action"), [("manual", "conflict"), ("target_wins", "skip")])
def test_edited_in_target_manual_and_target_wins_leave_the_file(ws, strategy, action):
    before = edited_then_changed(ws)
    result = ws.sync(conflicts={"edited_in_target": strategy})
    assert actions(result)["ORDERS"] == action
    assert file_state(ws.table_file("orders")) == before


def test_text_hash_is_written_and_an_untouched_table_is_no_conflict(ws):
    ws.write(tenant())
    ws.sync()
    hashes = [ws.table(t)["Parameters"][TEXT_HASH_KEY] for t in ("orders", "items", "v_orders")]
    # ITEMS and V_ORDERS carry no description and no comment: the same (empty) text, the same fingerprint.
    assert hashes[0] != hashes[1] and hashes[1] == hashes[2]
    ws.write(tenant(orders(STATUS=element(length=2))))
    result = ws.sync(conflicts={"edited_in_target": "manual"})
    assert actions(result)["ORDERS"] == "update" and conflict_events(result).is_empty()


# ------------------------------------------------------------------ type compatibility
@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        ("decimal(15,2)", "decimal(20,2)", True),
        ("decimal(15,2)", "decimal(10,2)", False),
        ("decimal(15,4)", "decimal(15,2)", False),
        ("int", "bigint", True),
        ("bigint", "int", False),
        ("int", "decimal(12,2)", True),
        ("int", "decimal(5,0)", False),
        ("string", "int", False),
        ("varchar(10)", "varchar(20)", True),
        ("varchar(20)", "varchar(10)", False),
        ("string", "varchar(100)", False),
        ("date", "timestamp", True),
        ("timestamp", "date", False),
        ("int", "string", True),
        ("float", "double", True),
    ],
)
def test_compatible_type_change(old, new, ok):
    frame = pl.DataFrame({"old": [old], "new": [new]})
    assert frame.select(compatible_type_change(pl.col("old"), pl.col("new"))).item() is ok


# ------------------------------------------------------------------ the text fingerprint
def test_the_written_text_reads_back_identically(make_frames):
    from metasync.targets.payload import finalize_table_input
    from metasync.transform.conflicts import _text_of, _texts
    from metasync.transform.mapping import table_inputs

    assets, columns = make_frames(
        [
            {"space": "S", "name": "A", "glue_description": 'Line "one"\nzwei – ü € \\ end'},
            {"space": "S", "name": "B"},
        ],
        [
            {"space": "S", "name": "A", "column": "X", "comment": 'say "hi"'},
            {"space": "S", "name": "A", "column": "Y"},
            {"space": "S", "name": "A", "column": "Z", "comment": "ä=b\\x1e"},
        ],
    )
    desired = table_inputs(assets, columns)
    written = [finalize_table_input(t, "h") for t in desired["table_input"].to_list()]
    read_back = pl.DataFrame({"j": written}).select(_text_of(pl.col("j"))).to_series().to_list()
    assert _texts(assets, columns).to_list() == read_back
    assert read_back[1] == "\x1f"
