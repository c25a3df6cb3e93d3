"""The audit folder's three event files hold the same rows, whatever the text in them."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from metasync.audit.writer import AuditLog
from metasync.models import Event


def test_events_json_holds_every_event_exactly_as_parquet_does(tmp_path: Path) -> None:
    log = AuditLog("20261126T000000Z-abcdef")
    tricky = 'Straße "Ærø" \\ back\nslash\ttab \u2028 {i18n>KEY} 中文'
    log.extend(
        [
            Event(event="run_started", severity="info", message="started"),
            Event(
                event="create", severity="info", message=tricky, space="S", name=tricky, details={"k": [1]}
            ),
            Event(event="quarantined", severity="error", message="", hint=tricky),
        ]
    )
    log.add_frame(pl.DataFrame({"event": ["conflict"], "severity": ["warning"], "message": ["m"]}))
    folder = log.write(tmp_path, {"status": "succeeded"}, None)

    records = json.loads((folder / "events.json").read_text(encoding="utf-8"))
    parquet = pl.read_parquet(folder / "events.parquet")
    as_text = parquet.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
    assert records == as_text.to_dicts()
    assert [r["event"] for r in records] == ["run_started", "create", "quarantined", "conflict"]
    assert records[1]["message"] == records[1]["name"] == records[2]["hint"] == tricky
    assert json.loads(records[1]["details"]) == {"k": [1]}


def test_an_audit_without_events_is_an_empty_json_array(tmp_path: Path) -> None:
    folder = AuditLog("20261126T000000Z-000000").write(tmp_path, {"status": "failed"}, None)
    assert json.loads((folder / "events.json").read_text(encoding="utf-8")) == []
    assert pl.read_parquet(folder / "events.parquet").is_empty()
