"""The `datasphere` source against the fake tenant: same frames as files, spaces, flows, incremental reads."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import metasync
from metasync.config import CsnSourceConfig, DatasphereSourceConfig, load_config
from metasync.errors import ConfigError, ConnectorAuthError, SourceError
from metasync.models import SourceFrames
from metasync.sources.csn import CsnSource
from metasync.sources.datasphere.client import derive_token_url
from metasync.sources.datasphere.source import DatasphereSource

from .datasphere_tenant import FakeTenant, load_corpus


def source(tenant: FakeTenant, audit_dir: Path | None = None, **overrides: Any) -> DatasphereSource:
    return DatasphereSource(
        DatasphereSourceConfig.model_validate(tenant.source_config(**overrides)), audit_dir=audit_dir
    )


def rows(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    """The rows of a frame as a sorted list, `source_file` left out (it names a file or an endpoint)."""
    frame = frame.drop("source_file", strict=False)
    return sorted(frame.rows(), key=repr)


def assert_same_frames(left: SourceFrames, right: SourceFrames) -> None:
    for name in ("assets", "columns", "edges", "column_lineage"):
        a, b = getattr(left, name), getattr(right, name)
        assert a.columns == b.columns, name
        assert rows(a) == rows(b), name


def table(name: str, *elements: str) -> dict[str, Any]:
    return {
        "definitions": {
            name: {
                "kind": "entity",
                "@EndUserText.label": f"{name} label",
                "elements": {e: {"type": "cds.String", "length": 10} for e in elements or ("ID",)},
            }
        }
    }


def view(name: str, upstream: str) -> dict[str, Any]:
    return {
        "definitions": {
            name: {
                "kind": "entity",
                "query": {"SELECT": {"from": {"ref": [upstream]}, "columns": [{"ref": ["ID"]}]}},
                "elements": {"ID": {"type": "cds.String", "length": 10}},
            }
        }
    }


@pytest.mark.corpus
def test_rest_source_gives_the_same_frames_as_the_files(
    tenant: FakeTenant, corpus_path: Path, tmp_path: Path
) -> None:
    spaces = load_corpus(tenant, corpus_path, tmp_path / "files")
    rest = source(tenant, max_workers=4).read()
    files = CsnSource(CsnSourceConfig(path=tmp_path / "files")).read()
    assert_same_frames(rest, files)
    assert rest.assets.height > 150 and rest.columns.height > 3000 and rest.edges.height > 200
    assert set(spaces) <= set(rest.assets["space"])
    assert not rest.incomplete
    # every object came from its own design-time read, named by its endpoint
    assert rest.assets["source_file"].str.contains("/dwaas-core/api/v1/spaces/").all()


@pytest.mark.corpus
def test_corpus_objects_are_read_once_each_with_one_token(
    tenant: FakeTenant, corpus_path: Path, tmp_path: Path
) -> None:
    load_corpus(tenant, corpus_path, tmp_path / "files")
    stored = sum(len(objects) for types in tenant.spaces.values() for objects in types.values())
    source(tenant).read()
    reads = [r for r in tenant.calls("GET", "/dwaas-core/") if r.path.count("/") == 7]
    assert len(reads) == stored
    assert len(tenant.calls("POST", "/oauth/token")) == 1


@pytest.mark.corpus
def test_failures_during_a_read_do_not_change_the_frames(
    tenant: FakeTenant, corpus_path: Path, tmp_path: Path
) -> None:
    load_corpus(tenant, corpus_path, tmp_path / "files")
    clean = source(tenant).read()
    tenant.fail(r"/catalog/spaces$", 503)
    tenant.fail(r"/views/", 429, times=3, headers={"Retry-After": "0"})
    tenant.fail(r"/localtables/", 500, times=2)
    tenant.fail(r"/analyticmodels$", 502)
    tenant.token_max_uses = 100
    tenant.requests.clear()
    troubled = source(tenant).read()
    assert_same_frames(troubled, clean)
    assert {r.status for r in tenant.requests} >= {401, 429, 500, 502, 503}
    assert len(tenant.calls("POST", "/oauth/token")) >= 3


def test_a_space_refusing_the_user_is_skipped_and_the_read_is_partial(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"))
    tenant.forbidden.add("HR")
    frames = source(tenant).read()
    assert frames.incomplete
    assert frames.assets.select("space", "name").rows() == [("SALES", "ORDERS")]
    (event,) = [e for e in frames.events if e.event == "space_skipped"]
    assert (event.severity, event.space) == ("error", "HR")
    assert event.message == "the technical user is not a member of space HR"
    assert event.hint and "HR" in event.hint
    assert len(tenant.calls("GET", "/spaces/HR/")) >= 1


@pytest.mark.parametrize("fault", ["views$", "objects"])
def test_a_space_the_tenant_fails_on_is_skipped_and_the_read_is_partial(
    tenant: FakeTenant, fault: str
) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"))
    tenant.add_object("HR", "localtables", "STAFF", table("STAFF"))
    tenant.add_object("HR", "views", "V_STAFF", view("V_STAFF", "STAFF"))
    # Server errors that outlast the retries: on a list, or on reading one object of the space.
    tenant.fail(r"/spaces/HR/views$" if fault == "views$" else r"/spaces/HR/views/V_STAFF$", 500, times=100)
    frames = source(tenant).read()
    assert frames.incomplete
    assert frames.assets.select("space", "name").rows() == [("SALES", "ORDERS")]  # none of HR, not a part
    (event,) = [e for e in frames.events if e.event == "space_skipped"]
    assert (event.severity, event.space) == ("error", "HR")
    assert (
        event.message.startswith("space HR could not be read and was skipped:")
        and "HTTP 500" in event.message
    )


def test_a_tenant_no_space_answers_for_fails_the_run(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"))
    tenant.fail(r"/spaces/SALES/", 500, times=100)
    with pytest.raises(SourceError, match="HTTP 500"):
        source(tenant, spaces=["SALES"]).read()


def test_configured_spaces_skip_the_catalog(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"))
    tenant.add_object("FINANCE", "localtables", "LEDGER", table("LEDGER"))
    frames = source(tenant, spaces=["FINANCE"], object_types=["localtables", "views"]).read()
    assert frames.assets.select("space", "name").rows() == [("FINANCE", "LEDGER")]
    assert tenant.calls("GET", "/catalog/") == []
    listed_types = {r.path.rsplit("/", 1)[1] for r in tenant.calls("GET", r"/spaces/FINANCE/[a-z]+$")}
    assert listed_types == {"localtables", "views"}


def test_every_space_of_the_catalog_is_read_by_default(tenant: FakeTenant) -> None:
    for space in ("A", "B", "C", "D", "E"):
        tenant.add_object(space, "localtables", f"T_{space}", table(f"T_{space}"))
    frames = source(tenant).read()
    assert sorted(frames.assets["space"].to_list()) == ["A", "B", "C", "D", "E"]


def test_a_missing_space_is_an_error_event(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"))
    frames = source(tenant, spaces=["SALES", "NOPE"], object_types=["localtables"]).read()
    assert frames.incomplete
    (event,) = [e for e in frames.events if e.event == "object_type_unavailable"]
    assert event.space == "NOPE" and "/spaces/NOPE/localtables" in event.message


def test_bounded_concurrency(tenant: FakeTenant) -> None:
    for i in range(12):
        tenant.add_object("SALES", "localtables", f"T{i}", table(f"T{i}"))
    # every read first gets a slow 429, so that reads overlap
    tenant.fail(r"/localtables/T\d+$", 429, times=12, delay=0.05, headers={"Retry-After": "0"})
    frames = source(tenant, max_workers=3, object_types=["localtables"]).read()
    assert frames.assets.height == 12
    assert 2 <= tenant.max_in_flight <= 3


def test_run_level_failures_raise(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"))
    tenant.fail(r"/localtables/ORDERS$", 500, times=50)
    with pytest.raises(SourceError, match="/localtables/ORDERS"):
        source(tenant, max_retries=1).read()
    with pytest.raises(ConnectorAuthError):
        source(tenant, client_secret="not-the-secret").read()


def test_data_and_replication_flows_become_flow_edges(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "remotetables", "RT_ORDERS", table("RT_ORDERS"))
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"))
    tenant.add_object("SALES", "localtables", "ORDERS_COPY", table("ORDERS_COPY"))
    tenant.add_object("SALES", "dataflows", "DF_ORDERS", data_flow("DF_ORDERS", "RT_ORDERS", "ORDERS"))
    tenant.add_object("SALES", "replicationflows", "RF_S4", replication_flow("RF_S4"))
    tenant.add_object(
        "SALES", "transformationflows", "TF_COPY", transformation_flow("TF_COPY", "ORDERS", "ORDERS_COPY")
    )
    frames = source(tenant).read()
    flows = frames.edges.filter(pl.col("kind") == "flow")
    assert sorted(
        flows.select("source_space", "source_name", "target_space", "target_name", "via").rows()
    ) == [
        ("SALES", "CURRENCY_RATES", "SALES", "ORDERS_COPY", "TF_COPY"),
        ("SALES", "ORDERS", "SALES", "ORDERS_COPY", "TF_COPY"),
        ("SALES", "RT_ORDERS", "SALES", "ORDERS", "DF_ORDERS"),
        ("SALES", "S4H/I_PRODUCT", "SALES", "PRODUCT", "RF_S4"),
        ("SALES", "S4H/I_SALESORDER", "SALES", "SALESORDER", "RF_S4"),
    ]
    # flows are not assets, and the tables their documents carry are not read from them
    assert sorted(frames.assets["name"].to_list()) == ["ORDERS", "ORDERS_COPY", "RT_ORDERS"]


def data_flow(name: str, source_table: str, target_table: str) -> dict[str, Any]:
    def process(component: str, entity: str) -> dict[str, Any]:
        return {
            "component": component,
            "metadata": {
                "label": entity,
                "config": {
                    "service": "HANA",
                    "hanaConnection": {"connectionID": "$DWC"},
                    "dwcEntity": entity,
                },
            },
        }

    return {
        "dataflows": {
            name: {
                "kind": "sap.dis.dataflow",
                "@EndUserText.label": name,
                "contents": {
                    "processes": {
                        "source1": process("com.sap.database.table.consumer", source_table),
                        "projection1": {"component": "com.sap.dataflow.projection", "metadata": {}},
                        "target1": process("com.sap.database.table.producer", target_table),
                    }
                },
                "sources": {source_table: {"elements": {"ID": {}}}},
                "targets": {target_table: {"elements": {"ID": {}}}},
            }
        },
        "definitions": table(target_table)["definitions"],
    }


def replication_flow(name: str) -> dict[str, Any]:
    tasks = [
        {"name": f"task{i}", "sourceObject": {"name": src}, "targetObject": {"name": dst}}
        for i, (src, dst) in enumerate((("I_PRODUCT", "PRODUCT"), ("I_SALESORDER", "SALESORDER")))
    ]
    return {
        "replicationflows": {
            name: {
                "kind": "sap.dis.replicationflow",
                "contents": {
                    "sourceSystem": [{"connectionId": "S4H", "container": "/CDS_EXTRACTION"}],
                    "targetSystem": [{"connectionId": "$DWC", "container": ""}],
                    "replicationTasks": tasks,
                },
                "targets": {"PRODUCT": {"elements": {}}, "SALESORDER": {"elements": {}}},
            }
        }
    }


def transformation_flow(name: str, source_table: str, target_table: str) -> dict[str, Any]:
    """A transformation flow as the design-time API stores it: a view transform feeding a target table."""
    transform = {
        "kind": "entity",
        "elements": {"ID": {"type": "cds.String", "length": 10}},
        "query": {
            "SELECT": {
                "from": {
                    "join": "left",
                    "args": [
                        {"ref": [source_table], "as": "s"},
                        {"ref": [{"id": "CURRENCY_RATES", "args": {}}]},
                    ],
                    "on": [{"ref": ["s", "ID"]}, "=", {"ref": ["CURRENCY_RATES", "ID"]}],
                },
                "columns": [{"ref": ["s", "ID"]}],
            }
        },
    }
    return {
        "transformationflows": {
            name: {
                "kind": "sap.dis.transformationflow",
                "contents": {
                    "metadata": {"loadType": "INITIAL_ONLY"},
                    "processes": {
                        "viewtransform1": {
                            "component": "com.sap.dwc.viewtransform",
                            "metadata": {
                                "config": {"definition": transform, "name": f"{name}$TRF_TV_viewtransform1"}
                            },
                        },
                        "target1": {
                            "component": "com.sap.dwc.target",
                            "metadata": {"config": {"name": target_table, "truncate": True}},
                        },
                    },
                    "connections": [
                        {
                            "src": {"port": "outTable", "process": "viewtransform1"},
                            "tgt": {"port": "inTable", "process": "target1"},
                        }
                    ],
                },
            }
        }
    }


def test_incremental_reads_only_changed_objects(tenant: FakeTenant, tmp_path: Path) -> None:
    audit = tmp_path / "metasync-audit"
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"), changed_on="2025-01-01T00:00:00Z")
    tenant.add_object("SALES", "localtables", "ITEMS", table("ITEMS"), changed_on="2025-01-01T00:00:00Z")
    tenant.add_object(
        "SALES", "views", "V_ORDERS", view("V_ORDERS", "ORDERS"), changed_on="2025-01-01T00:00:00Z"
    )
    first = source(tenant, audit).read()
    state_files = list((tmp_path / "metasync-audit.state").glob("datasphere-*.json"))
    assert len(state_files) == 1
    assert tenant.client_secret not in state_files[0].read_text()

    tenant.requests.clear()
    second = source(tenant, audit).read()
    assert_same_frames(second, first)
    assert [r for r in tenant.requests if r.path.count("/") == 7] == []  # listed, nothing read
    assert any(e.event == "incremental_read" and e.details == {"reused": 3, "read": 0} for e in second.events)

    tenant.add_object(
        "SALES", "localtables", "ORDERS", table("ORDERS", "ID", "AMOUNT"), changed_on="2025-02-01T00:00:00Z"
    )
    del tenant.spaces["SALES"]["localtables"]["ITEMS"]
    tenant.requests.clear()
    third = source(tenant, audit).read()
    reads = [r.path for r in tenant.requests if r.path.count("/") == 7]
    assert reads == ["/dwaas-core/api/v1/spaces/SALES/localtables/ORDERS"]
    assert sorted(third.assets["name"].to_list()) == ["ORDERS", "V_ORDERS"]
    assert third.columns.filter(pl.col("name") == "ORDERS")["column"].to_list() == ["ID", "AMOUNT"]


def test_without_incremental_every_object_is_read(tenant: FakeTenant, tmp_path: Path) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"))
    source(tenant, tmp_path / "audit", incremental=False).read()
    source(tenant, tmp_path / "audit", incremental=False).read()
    assert len(tenant.calls("GET", "/localtables/ORDERS$")) == 2
    assert not (tmp_path / "audit.state").exists()


def test_a_corrupt_state_file_is_ignored(tenant: FakeTenant, tmp_path: Path) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"))
    state = tmp_path / "audit.state"
    state.mkdir()
    source(tenant, tmp_path / "audit").read()
    (path,) = state.iterdir()
    path.write_text("{not json")
    frames = source(tenant, tmp_path / "audit").read()
    assert frames.assets["name"].to_list() == ["ORDERS"]
    assert len(tenant.calls("GET", "/localtables/ORDERS$")) == 2


def test_the_example_configuration_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSP_CLIENT_ID", "sb-example")
    monkeypatch.setenv("DSP_CLIENT_SECRET", "example-secret")
    example = Path(__file__).resolve().parents[3] / "examples" / "datasphere.yaml"
    config = load_config(example)
    assert isinstance(config.source, DatasphereSourceConfig)
    assert config.source.client_secret.get_secret_value() == "example-secret"
    assert "example-secret" not in repr(config)
    assert derive_token_url(config.source.url).endswith(".authentication.eu10.hana.ondemand.com/oauth/token")
    assert load_config(example, env="prod").target.kind == "glue"


def test_credentials_left_out_of_the_file_come_from_the_environment(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"))
    config = tenant.source_config()
    del config["client_id"], config["client_secret"]
    monkeypatch.delenv("METASYNC_DATASPHERE_CLIENT_ID", raising=False)
    monkeypatch.delenv("METASYNC_DATASPHERE_CLIENT_SECRET", raising=False)
    with pytest.raises(ConfigError, match="source.client_id.*METASYNC_DATASPHERE_CLIENT_ID") as caught:
        load_config({"source": config})
    assert "client_secret" in str(caught.value)
    monkeypatch.setenv("METASYNC_DATASPHERE_CLIENT_ID", tenant.client_id)
    monkeypatch.setenv("METASYNC_DATASPHERE_CLIENT_SECRET", tenant.client_secret)
    loaded = load_config({"source": config})
    assert DatasphereSource(loaded.source).read().assets["name"].to_list() == ["ORDERS"]
    assert tenant.client_secret not in repr(loaded)


# ------------------------------------------------------------------ answers that are not the object's CSN
NOT_THE_CSN = {
    "an error envelope": ({"error": {"code": "500", "message": "Internal error"}}, "an error, not CSN"),
    "empty definitions": ({"definitions": {}}, "do not define 'T3' (they hold nothing)"),
    "definitions a list": ({"definitions": ["x"]}, "'definitions' is a list, not an object"),
    "another object": (table("OTHER"), "do not define 'T3' (they hold 'OTHER')"),
    "a JSON array": ([1, 2], "the answer is a list, not a JSON object"),
    "a bad definition": (
        {"definitions": {"T3": {"kind": "entity", "elements": ["ID"]}}},
        "definition 'T3' is not valid CSN: its elements are not an object",
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_THE_CSN))
def test_a_read_that_is_not_the_objects_csn_skips_its_space(tenant: FakeTenant, case: str) -> None:
    body, problem = NOT_THE_CSN[case]
    for name in ("T1", "T3"):
        tenant.add_object("SALES", "localtables", name, table(name))
    tenant.add_object("HR", "localtables", "STAFF", table("STAFF"))
    tenant.spaces["SALES"]["localtables"]["T3"] = body  # served as it is, with HTTP 200
    frames = source(tenant, object_types=["localtables"]).read()
    assert frames.incomplete
    assert frames.assets.select("space", "name").rows() == [("HR", "STAFF")]  # none of SALES, not a part
    (event,) = [e for e in frames.events if e.event == "space_skipped"]
    assert (event.severity, event.space, event.name) == ("error", "SALES", "T3")
    assert event.message.startswith("space SALES could not be read and was skipped: ")
    assert "/dwaas-core/api/v1/spaces/SALES/localtables/T3 answered, but not with the CSN of SALES.T3" in (
        event.message
    )
    assert problem in event.message
    assert "skip_invalid" not in f"{event.message} {event.hint}"


def test_a_flow_read_must_hold_the_flow(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS"))
    tenant.add_object("SALES", "dataflows", "DF", {"definitions": {}})
    frames = source(tenant, object_types=["localtables", "dataflows"]).read()
    assert frames.incomplete and frames.assets.is_empty()
    (event,) = [e for e in frames.events if e.event == "space_skipped"]
    assert "has no 'dataflows'" in event.message and event.name == "DF"


def test_a_document_in_a_context_of_its_space_is_its_csn(tenant: FakeTenant) -> None:
    """An object placed in a space by a context's `@DataWarehouse.space.name` is stored as `CONTEXT.NAME`."""
    context = {"kind": "context", "@DataWarehouse.space.name": "SHARED"}
    entity = table("X")["definitions"]["X"]
    tenant.add_object("SHARED", "localtables", "T", {"definitions": {"CTX": context, "CTX.T": entity}})
    frames = source(tenant, object_types=["localtables"]).read()
    assert not frames.incomplete
    assert frames.assets.select("space", "name").rows() == [("SHARED", "T")]


def sync_config(tenant: FakeTenant, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "source": tenant.source_config(**overrides),
        "target": {"kind": "local", "path": str(tmp_path / "catalog")},
        "audit": {"dir": str(tmp_path / "audit")},
        "sync": {"delete_stale": True, "max_delete_fraction": 1.0},
    }


@pytest.mark.parametrize("body", [{"error": {"message": "internal"}}, {"definitions": ["x"]}])
def test_a_bad_answer_is_a_partial_run_that_deletes_nothing(
    tenant: FakeTenant, tmp_path: Path, body: dict[str, Any]
) -> None:
    for i in range(4):
        tenant.add_object("SALES", "localtables", f"T{i}", table(f"T{i}"))
    tenant.add_object("HR", "localtables", "STAFF", table("STAFF"))
    config = sync_config(tenant, tmp_path, object_types=["localtables"], incremental=False)
    assert metasync.sync(config).status == "succeeded"
    tables = sorted(p.name for p in (tmp_path / "catalog").rglob("*.json"))
    tenant.spaces["SALES"]["localtables"]["T3"] = body
    tenant.add_object("HR", "localtables", "STAFF", table("STAFF", "ID", "NAME"))
    result = metasync.sync(config)
    assert (result.status, result.exit_code) == ("partial", 1)
    assert result.summary["counts"]["deleted"] == 0 and result.summary["counts"]["updated"] == 1  # HR synced
    assert sorted(p.name for p in (tmp_path / "catalog").rglob("*.json")) == tables


# ------------------------------------------------------------------ the incremental state holds accepted CSN only
def state_entries(tmp_path: Path) -> dict[str, Any]:
    (path,) = (tmp_path / "audit.state").iterdir()
    return {o["name"]: o["payload"] for o in json.loads(path.read_text())["objects"]}


def test_a_bad_answer_is_not_kept_in_the_state(tenant: FakeTenant, tmp_path: Path) -> None:
    for i in range(3):
        tenant.add_object("SALES", "localtables", f"T{i}", table(f"T{i}"))
    source(tenant, tmp_path / "audit").read()
    tenant.add_object(
        "SALES", "localtables", "T1", {"error": {"code": "503"}}, changed_on="2025-02-01T00:00:00Z"
    )
    assert source(tenant, tmp_path / "audit").read().incomplete
    assert state_entries(tmp_path)["T1"] == table("T1")  # the last accepted CSN, not the error
    tenant.add_object(
        "SALES", "localtables", "T1", table("T1", "ID", "NEW"), changed_on="2025-02-01T00:00:00Z"
    )
    tenant.requests.clear()
    healed = source(tenant, tmp_path / "audit").read()
    assert not healed.incomplete
    assert [r.path.rsplit("/", 1)[1] for r in tenant.requests if r.path.count("/") == 7] == ["T1"]
    assert healed.columns.filter(pl.col("name") == "T1")["column"].to_list() == ["ID", "NEW"]
    assert state_entries(tmp_path)["T1"] == table("T1", "ID", "NEW")


def test_a_refused_document_is_dropped_from_the_state(tenant: FakeTenant, tmp_path: Path) -> None:
    """An entry an earlier version stored that is not the object's CSN is read again, and not kept."""
    tenant.add_object("SALES", "localtables", "T1", table("T1"))
    tenant.add_object("SALES", "localtables", "T2", table("T2"))
    source(tenant, tmp_path / "audit").read()
    (path,) = (tmp_path / "audit.state").iterdir()
    state = json.loads(path.read_text())
    for entry in state["objects"]:
        if entry["name"] == "T1":
            entry["payload"] = {"error": {"code": "503", "message": "Service temporarily unavailable"}}
        else:
            entry["payload"] = {"definitions": {"T2": {"kind": "entity", "elements": ["ID"]}}}
    path.write_text(json.dumps(state))
    tenant.requests.clear()
    frames = source(tenant, tmp_path / "audit").read()
    assert [r.path.rsplit("/", 1)[1] for r in tenant.requests if r.path.count("/") == 7] == ["T1"]
    # T2's stored CSN passes the first check but not the reader: its space fails, and the entry goes
    assert frames.incomplete
    assert "T2" not in state_entries(tmp_path)
    assert source(tenant, tmp_path / "audit").read().assets["name"].sort().to_list() == ["T1", "T2"]


# ------------------------------------------------------------------ scope and paging
def test_spaces_and_object_types_given_twice_are_read_once(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "localtables", "T1", table("T1"))
    frames = source(tenant, spaces=["SALES", "SALES"], object_types=["localtables", "localtables"]).read()
    assert frames.assets.select("space", "name").rows() == [("SALES", "T1")]
    assert len(tenant.calls("GET", "/SALES/localtables$")) == 2  # one list (and its empty last page)
    assert len(tenant.calls("GET", "/SALES/localtables/T1$")) == 1


def test_unstable_paging_reads_each_object_once(tenant: FakeTenant) -> None:
    tenant.list_ignores_paging, tenant.list_unstable_order = True, True
    for i in range(150):
        tenant.add_object("S", "localtables", f"T{i:03d}", table(f"T{i:03d}"))
    frames = source(tenant, object_types=["localtables"], incremental=False, max_workers=8).read()
    assert frames.assets.height == 150 and not frames.incomplete
    assert len(tenant.calls("GET", "/S/localtables$")) == 3
    assert len(tenant.calls("GET", "/S/localtables/T")) == 150


def test_a_list_in_doubt_is_a_warning_and_a_partial_run_that_deletes_nothing(
    tenant: FakeTenant, tmp_path: Path
) -> None:
    for i in range(120):
        tenant.add_object("SALES", "localtables", f"T{i:03d}", table(f"T{i:03d}"))
    config = sync_config(tenant, tmp_path, object_types=["localtables"], incremental=False)
    assert metasync.sync(config).summary["counts"]["created"] == 120
    tenant.list_max_top, tenant.broken_paging = 50, True  # pages capped at 50, $skip ignored
    result = metasync.sync(config)
    assert (result.status, result.exit_code) == ("partial", 1)
    assert result.summary["counts"]["deleted"] == 0
    assert len(list((tmp_path / "catalog").rglob("*.json"))) >= 120
    warning = result.events.filter(pl.col("event") == "list_incomplete").to_dicts()
    assert [(w["severity"], w["space"]) for w in warning] == [("warning", "SALES")]
    assert "localtables of space SALES" in warning[0]["message"] and "ignores $skip" in warning[0]["message"]


def test_a_space_name_that_cannot_be_a_space_is_skipped(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "localtables", "T1", table("T1"))
    tenant.add_object("A.B", "localtables", "T2", table("T2"))
    frames = source(tenant, object_types=["localtables"]).read()
    assert frames.incomplete and frames.assets["space"].to_list() == ["SALES"]
    (event,) = [e for e in frames.events if e.event == "space_skipped"]
    assert event.space == "A.B" and "has a dot" in event.message
    assert tenant.calls("GET", "/spaces/A.B/") == []


def test_an_empty_tenant_is_described_by_its_url_and_spaces(tenant: FakeTenant, tmp_path: Path) -> None:
    tenant.add_space("SALES")
    result = metasync.plan(sync_config(tenant, tmp_path, spaces=["SALES"]))
    (message,) = result.events.filter(pl.col("event") == "source_empty")["message"].to_list()
    assert f"Datasphere tenant {tenant.url}, spaces: SALES" in message


# ------------------------------------------------------------------ a failed space gets no more requests
def test_a_failed_space_gets_no_more_reads(tenant: FakeTenant) -> None:
    for i in range(40):
        tenant.add_object("SALES", "localtables", f"T{i:02d}", table(f"T{i:02d}"))
    tenant.add_object("HR", "localtables", "H1", table("H1"))
    tenant.fail(r"/SALES/localtables/T", 503, times=1000)
    started = time.monotonic()
    frames = source(
        tenant,
        object_types=["localtables"],
        max_retries=3,
        retry_backoff=0.1,
        max_workers=4,
        incremental=False,
    ).read()
    assert frames.assets["name"].to_list() == ["H1"] and frames.incomplete
    assert len(tenant.calls("GET", "/SALES/localtables/T")) <= 4 * 4  # the reads under way when it failed
    assert time.monotonic() - started < 3


def test_a_failed_space_gets_no_more_lists(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "localtables", "T1", table("T1"))
    tenant.add_object("HR", "localtables", "H1", table("H1"))
    tenant.fail(r"/SALES/", 429, times=1000, headers={"Retry-After": "0"})
    frames = source(tenant, max_retries=3, max_workers=1).read()  # seven object types
    assert frames.assets["name"].to_list() == ["H1"] and frames.incomplete
    assert len(tenant.calls("GET", "/SALES/")) == 4  # one list and its three retries, no other list


def test_a_failure_ends_the_waits_of_its_space(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "localtables", "SLOW", table("SLOW"))
    tenant.add_object("SALES", "localtables", "BAD", table("BAD"))
    tenant.add_object("HR", "localtables", "H1", table("H1"))
    tenant.fail(r"/SALES/localtables/SLOW$", 429, times=100, headers={"Retry-After": "30"})
    tenant.fail(r"/SALES/localtables/BAD$", 400, times=100, delay=0.3)
    started = time.monotonic()
    frames = source(tenant, object_types=["localtables"], max_backoff=60, max_workers=2).read()
    assert time.monotonic() - started < 5  # not the 30 s SLOW was asked to wait
    assert frames.assets["name"].to_list() == ["H1"]
    (event,) = [e for e in frames.events if e.event == "space_skipped"]
    assert "HTTP 400" in event.message
