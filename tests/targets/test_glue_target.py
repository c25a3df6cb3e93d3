"""The Glue target against moto server over HTTP, with an AWS-like proxy (paging, limits, throttling)."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time

import boto3
import orjson
import polars as pl
import pytest
from glue_proxy import GlueProxy
from glue_rows import all_tables, config, direct_client, request, row

from metasync.config import load_config
from metasync.errors import ConfigError, TargetError
from metasync.targets.base import OUTCOME_COLUMNS, TABLE_STATE_COLUMNS
from metasync.targets.glue import GlueTarget


def _outcomes_by_name(outcomes: pl.DataFrame) -> dict[str, dict[str, str | None]]:
    return {r["name"]: r for r in outcomes.iter_rows(named=True)}


def test_initial_write_creates_each_table_once_and_reads_back_in_pages(
    glue_proxy: GlueProxy, moto: str
) -> None:
    n = 257
    target = GlueTarget(config(glue_proxy.url))
    outcomes = target.write(request([row("SALES", f"T{i:04d}") for i in range(n)]))

    assert outcomes.schema == pl.Schema(OUTCOME_COLUMNS)
    assert outcomes["status"].to_list() == ["ok"] * n
    assert target.calls.counts["CreateTable"] == n
    assert target.calls.counts["CreateDatabase"] == 1
    assert len(all_tables(moto, "sales")) == n

    glue_proxy.reset_counts()
    reader = GlueTarget(config(glue_proxy.url))
    state = reader.read_state(["sales", "absent_db"])
    assert state.tables.schema == pl.Schema(TABLE_STATE_COLUMNS)
    assert state.tables.height == n
    assert state.tables["glue_table"].n_unique() == n
    assert state.tables["managed"].all()
    assert state.databases.to_dicts() == [{"glue_database": "sales", "managed": True}]
    assert reader.calls.counts["GetTables"] == math.ceil(n / 100)
    assert reader.calls.as_dict() == dict(sorted(glue_proxy.counts.items()))
    assert all(body.get("MaxResults") == 100 for op, body in glue_proxy.requests if op == "GetTables")
    assert glue_proxy.violations == []


def test_state_definition_is_sorted_table_input_json(glue_proxy: GlueProxy) -> None:
    target = GlueTarget(config(glue_proxy.url, location_template="s3://lake/{space}/{name}/"))
    target.write(request([row("SALES", "Orders", description="orders")]))
    state = target.read_state(["sales"]).tables.row(0, named=True)

    definition = json.loads(state["definition"])
    assert state["definition"] == orjson.dumps(definition, option=orjson.OPT_SORT_KEYS).decode()
    assert (
        "VersionId" not in definition and "CreateTime" not in definition and "DatabaseName" not in definition
    )
    assert (state["space"], state["name"], state["description"]) == ("SALES", "Orders", "orders")
    assert state["hash"] == definition["Parameters"]["metasync:hash"]
    descriptor = definition["StorageDescriptor"]
    assert descriptor["Location"] == "s3://lake/SALES/Orders/"
    assert descriptor["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert definition["Parameters"]["classification"] == "parquet"


def test_throttling_converges_without_duplicates_and_counts_every_call(
    glue_proxy: GlueProxy, moto: str
) -> None:
    glue_proxy.throttle_rate = 0.2
    n = 150
    target = GlueTarget(config(glue_proxy.url, max_workers=6))
    rows = [row("SALES", f"T{i:03d}", batch=i % 3) for i in range(n)]
    outcomes = target.write(request(rows))
    state = target.read_state(["sales"])

    assert outcomes["status"].to_list() == ["ok"] * n
    names = [t["Name"] for t in all_tables(moto, "sales")]
    assert sorted(names) == sorted(r["glue_table"] for r in rows)
    assert state.tables.height == n
    assert sum(target.calls.retries.values()) == sum(glue_proxy.throttled.values()) > 0
    assert target.calls.as_dict() == dict(sorted(glue_proxy.counts.items()))


def test_rows_breaking_glue_limits_fail_and_are_never_sent(glue_proxy: GlueProxy) -> None:
    long_comment = [{"Name": "id", "Type": "int", "Comment": "x" * 256}]
    broken_comment = [{"Name": "id", "Type": "int", "Comment": "two\nlines"}]
    rows = [
        row("SALES", "FINE"),
        row("SALES", "UPPER", table="Upper"),
        row("SALES", "LONG", table="l" * 256),
        row("SALES", "COMMENT", columns=long_comment),
        row("SALES", "NEWLINE", columns=broken_comment),
        row("SALES", "DESCRIPTION", description="d" * 2049),
        row("SALES", "PARAMETER", parameters={"note": "p" * 512_001}),
        row("SALES", "COLUMNCASE", columns=[{"Name": "Id", "Type": "int"}]),
    ]
    target = GlueTarget(config(glue_proxy.url))
    outcomes = _outcomes_by_name(target.write(request(rows)))

    assert outcomes["FINE"]["status"] == "ok"
    for name in ("UPPER", "LONG", "COMMENT", "NEWLINE", "DESCRIPTION", "PARAMETER", "COLUMNCASE"):
        assert outcomes[name]["status"] == "failed", name
        assert outcomes[name]["error_code"] == "GlueLimit"
        assert outcomes[name]["message"].startswith("not sent to Glue")
    assert target.calls.counts["CreateTable"] == 1
    assert glue_proxy.violations == []
    assert "description has 2049 characters" in outcomes["DESCRIPTION"]["message"]


def test_partial_failure_skips_data_flow_dependents(glue_proxy: GlueProxy, moto: str) -> None:
    glue_proxy.fail_tables = {"b": (400, "AccessDeniedException")}
    rows = [
        row("S", "A", batch=0),
        row("S", "B", batch=0),
        row("S", "C", batch=1, upstreams=["S.B"]),
        row("S", "D", batch=2, upstreams=["S.C", "S.A"]),
        row("S", "E", batch=1, upstreams=["S.A", "OTHER.X"]),
    ]
    target = GlueTarget(config(glue_proxy.url))
    ticks: list[int] = []
    outcomes = _outcomes_by_name(target.write(request(rows), ticks.append))

    assert sum(ticks) == len(rows)
    assert {k: v["status"] for k, v in outcomes.items()} == {
        "A": "ok",
        "B": "failed",
        "C": "skipped",
        "D": "skipped",
        "E": "ok",
    }
    assert outcomes["B"]["error_code"] == "AccessDeniedException"
    assert "IAM" in outcomes["B"]["hint"]
    assert outcomes["C"]["error_code"] == "UpstreamFailed"
    assert outcomes["C"]["message"] == "skipped because upstream S.B was not written"
    assert outcomes["D"]["message"] == "skipped because upstream S.C was not written"
    assert sorted(t["Name"] for t in all_tables(moto, "s")) == ["a", "e"]


def test_update_sends_version_and_skip_archive(glue_proxy: GlueProxy, moto: str) -> None:
    target = GlueTarget(config(glue_proxy.url))
    target.write(request([row("SALES", "T")]))
    version = target.read_state(["sales"]).tables["version_id"][0]

    glue_proxy.reset_counts()
    outcomes = target.write(request([row("SALES", "T", action="update", version_id=version, revision=1)], []))
    assert outcomes["status"].to_list() == ["ok"]
    updates = [body for op, body in glue_proxy.requests if op == "UpdateTable"]
    assert len(updates) == 1
    assert updates[0]["VersionId"] == version and updates[0]["SkipArchive"] is True
    stored = direct_client(moto).get_table(DatabaseName="sales", Name="t")["Table"]
    assert [c["Name"] for c in stored["StorageDescriptor"]["Columns"]] == ["id", "v1"]


def test_stale_version_of_an_unchanged_table_is_refreshed(glue_proxy: GlueProxy) -> None:
    target = GlueTarget(config(glue_proxy.url))
    target.write(request([row("SALES", "T")]))
    target.read_state(["sales"])
    outcomes = target.write(request([row("SALES", "T", action="update", version_id="0", revision=1)], []))

    assert outcomes["status"].to_list() == ["ok"]
    assert target.calls.retries["UpdateTable"] == 1
    assert target.calls.counts["GetTable"] == 1


def test_table_edited_in_glue_during_the_run_is_not_overwritten(glue_proxy: GlueProxy, moto: str) -> None:
    target = GlueTarget(config(glue_proxy.url))
    target.write(request([row("SALES", "T")]))
    version = target.read_state(["sales"]).tables["version_id"][0]
    client = direct_client(moto)
    current = client.get_table(DatabaseName="sales", Name="t")["Table"]
    edited = {k: current[k] for k in ("Name", "TableType", "Parameters", "StorageDescriptor")}
    client.update_table(DatabaseName="sales", TableInput={**edited, "Description": "edited in the console"})

    outcomes = target.write(request([row("SALES", "T", action="update", version_id=version, revision=1)], []))
    assert outcomes["status"].to_list() == ["failed"]
    assert outcomes["error_code"].to_list() == ["ConcurrentModificationException"]
    assert client.get_table(DatabaseName="sales", Name="t")["Table"]["Description"] == "edited in the console"


def test_unmanaged_table_is_never_written_and_stays_byte_identical(glue_proxy: GlueProxy, moto: str) -> None:
    client = direct_client(moto)
    client.create_database(DatabaseInput={"Name": "sales", "Description": "owned by someone else"})
    client.create_table(
        DatabaseName="sales",
        TableInput={
            "Name": "theirs",
            "Description": "hand-made",
            "Parameters": {"owner": "bi-team"},
            "StorageDescriptor": {"Columns": [{"Name": "x", "Type": "string"}]},
        },
    )
    before_table = json.dumps(client.get_table(DatabaseName="sales", Name="theirs")["Table"], default=str)
    before_db = json.dumps(client.get_database(Name="sales")["Database"], default=str)

    target = GlueTarget(config(glue_proxy.url))
    state = target.read_state(["sales"])
    assert state.tables.select("glue_table", "managed", "space", "hash").to_dicts() == [
        {"glue_table": "theirs", "managed": False, "space": None, "hash": None}
    ]
    assert state.databases["managed"].to_list() == [False]
    rows = [
        row("SALES", "THEIRS", action="update", version_id="1"),
        row("SALES", "THEIRS", action="delete"),
        row("SALES", "THEIRS", action="create"),
    ]
    outcomes = target.write(request(rows))
    assert outcomes["status"].to_list() == ["failed"] * 3
    assert outcomes["error_code"].to_list() == ["Unmanaged"] * 3
    assert "UpdateTable" not in target.calls.counts and "BatchDeleteTable" not in target.calls.counts
    assert (
        json.dumps(client.get_table(DatabaseName="sales", Name="theirs")["Table"], default=str)
        == before_table
    )
    assert json.dumps(client.get_database(Name="sales")["Database"], default=str) == before_db


def test_deletes_go_in_batches_of_at_most_100(glue_proxy: GlueProxy, moto: str) -> None:
    target = GlueTarget(config(glue_proxy.url))
    target.write(request([row("SALES", f"T{i:03d}") for i in range(150)] + [row("SALES", "KEEP")]))
    target.read_state(["sales"])
    deletes = [row("SALES", f"T{i:03d}", action="delete") for i in range(150)]
    outcomes = target.write(request(deletes, []))

    assert outcomes["status"].to_list() == ["ok"] * 150
    assert target.calls.counts["BatchDeleteTable"] == 2
    assert [t["Name"] for t in all_tables(moto, "sales")] == ["keep"]
    assert glue_proxy.violations == []


def test_catalog_id_goes_into_every_call(glue_proxy: GlueProxy) -> None:
    target = GlueTarget(config(glue_proxy.url, catalog_id="123456789012"))
    target.write(request([row("SALES", "T")]))
    target.read_state(["sales"])
    stale_update = row("SALES", "T", action="update", version_id="0", revision=1)
    assert target.write(request([stale_update], []))["status"].to_list() == ["ok"]
    assert target.calls.retries["UpdateTable"] == 1
    assert glue_proxy.requests
    assert all(body.get("CatalogId") == "123456789012" for _, body in glue_proxy.requests)
    assert "123456789012" in target.describe()


def test_database_created_with_managed_parameter(glue_proxy: GlueProxy, moto: str) -> None:
    GlueTarget(config(glue_proxy.url)).write(request([row("SALES", "T")]))
    database = direct_client(moto).get_database(Name="sales")["Database"]
    assert database["Parameters"]["metasync:managed"] == "true"


def test_unreachable_endpoint_raises_target_error_naming_it(aws_env: None) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    target = GlueTarget(config(endpoint))
    target._caller.base_backoff = 0.01
    started = time.monotonic()
    with pytest.raises(TargetError) as caught:
        target.read_state(["sales"])
    assert endpoint in str(caught.value) and "eu-central-1" in str(caught.value)
    assert time.monotonic() - started < 10


def test_missing_credentials_raise_target_error(
    glue_proxy: GlueProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    target = GlueTarget(config(glue_proxy.url), session=boto3.Session())
    with pytest.raises(TargetError, match="credentials"):
        target.read_state(["sales"])


def test_role_arn_assumes_the_role_through_sts(moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto)
    target = GlueTarget(config(moto, role_arn="arn:aws:iam::123456789012:role/metasync-writer"))
    target.write(request([row("SALES", "T")]))
    assert target.calls.counts["AssumeRole"] == 1
    assert target.read_state(["sales"]).tables.height == 1


def test_bad_location_template_is_a_config_error() -> None:
    config = {
        "source": {"kind": "csn", "path": "x"},
        "target": {"kind": "glue", "location_template": "s3://b/{schema}/"},
    }
    with pytest.raises(ConfigError, match="target.location_template"):
        load_config(config)


def test_transient_5xx_and_lost_answers_are_retried_without_duplicates(
    glue_proxy: GlueProxy, moto: str
) -> None:
    glue_proxy.flaky_tables.update({"a": 2})
    glue_proxy.lost_answers.update({"b": 1})
    target = GlueTarget(config(glue_proxy.url))
    outcomes = _outcomes_by_name(target.write(request([row("S", "A"), row("S", "B"), row("S", "C")])))

    assert {name: o["status"] for name, o in outcomes.items()} == {"A": "ok", "B": "ok", "C": "ok"}
    assert "same content" in str(outcomes["B"]["message"])
    assert target.calls.retries["CreateTable"] == 3
    assert sorted(t["Name"] for t in all_tables(moto, "s")) == ["a", "b", "c"]


def test_assumed_role_credentials_are_renewed_before_they_expire() -> None:
    from datetime import UTC, datetime, timedelta

    from metasync.targets.glue import AssumedRoleProvider

    fetched: list[datetime] = []

    def fetch() -> dict[str, str]:
        fetched.append(datetime.now(UTC))
        expiry = datetime.now(UTC) + timedelta(minutes=5 if len(fetched) == 1 else 60)
        key = f"key-{len(fetched)}"
        return {"access_key": key, "secret_key": "s", "token": "t", "expiry_time": expiry.isoformat()}

    credentials = AssumedRoleProvider(fetch).load()
    assert credentials.get_frozen_credentials().access_key == "key-2"
    assert credentials.get_frozen_credentials().access_key == "key-2"
    assert len(fetched) == 2


def test_a_write_stopped_part_way_counts_every_table_it_wrote(glue_proxy: GlueProxy, moto: str) -> None:
    """Ctrl-C (or SIGTERM) while writes are under way: no queued write starts, and the audit's record of what
    was written (`calls.outcomes`) holds every table really created, also those done behind a slow one."""
    target = GlueTarget(config(glue_proxy.url, max_workers=4))
    write_table = target._write_table

    def slow_first(table_row: dict) -> dict:
        if (
            table_row["name"] == "T000"
        ):  # the stop comes while the writes are under way, however slow the machine
            threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        time.sleep(1.0 if table_row["name"] == "T000" else 0.05)
        return write_table(table_row)

    target._write_table = slow_first  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        target.write(request([row("S", f"T{i:03d}") for i in range(400)]))
    created = {t["Name"] for t in all_tables(moto, "s")}
    recorded = {o["glue_table"] for o in target.calls.outcomes if o["status"] == "ok"}
    assert created == recorded and 0 < len(created) < 400
