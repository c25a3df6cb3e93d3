"""`metasync export` and full syncs from the fake tenant: export ≡ tenant, exit codes, secrets kept secret."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import metasync
from metasync.config import DatasphereSourceConfig, load_config
from metasync.errors import ConfigError, TargetError
from metasync.sources.datasphere.export import MANIFEST, export_tenant, safe_file_name

from .datasphere_tenant import FakeTenant, load_corpus
from .test_datasphere_source import data_flow, replication_flow, table, transformation_flow, view


def tenant_config(tenant: FakeTenant, tmp_path: Path, **source: Any) -> dict[str, Any]:
    return {
        "source": tenant.source_config(**source),
        "target": {"kind": "local", "path": str(tmp_path / "catalog")},
        "audit": {"dir": str(tmp_path / "audit")},
    }


def csn_config(folder: Path, tmp_path: Path) -> dict[str, Any]:
    return {
        "source": {"kind": "csn", "path": str(folder)},
        "target": {"kind": "local", "path": str(tmp_path / "catalog")},
        "audit": {"dir": str(tmp_path / "audit-csn")},
    }


def plan_rows(result: metasync.SyncResult) -> list[tuple[Any, ...]]:
    return sorted(result.plan.select("space", "name", "batch", "priority", "action").rows(), key=repr)


def small_tenant(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "remotetables", "RT_ORDERS", table("RT_ORDERS", "ID"))
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS", "ID"))
    tenant.add_object("SALES", "localtables", "ORDERS_COPY", table("ORDERS_COPY", "ID"))
    tenant.add_object("SALES", "views", "V_ORDERS", view("V_ORDERS", "ORDERS_COPY"))
    tenant.add_object("SALES", "dataflows", "DF_ORDERS", data_flow("DF_ORDERS", "RT_ORDERS", "ORDERS"))
    tenant.add_object(
        "SALES", "transformationflows", "TF", transformation_flow("TF", "ORDERS", "ORDERS_COPY")
    )
    tenant.add_object("SALES", "replicationflows", "RF_S4", replication_flow("RF_S4"))
    tenant.add_object("FINANCE", "localtables", "a/b ../Größe", table("a/b ../Größe", "ID"))


def test_export_writes_one_csn_file_per_object_below_its_space(tenant: FakeTenant, tmp_path: Path) -> None:
    small_tenant(tenant)
    summary = export_tenant(load_config(tenant_config(tenant, tmp_path)), tmp_path / "export")
    assert summary["status"] == "succeeded" and summary["objects"] == 8
    assert summary["by_type"]["localtables"] == 3
    export = tmp_path / "export"
    files = sorted(p.relative_to(export).as_posix() for p in export.rglob("*.json") if p.name != MANIFEST)
    assert files == [
        "FINANCE/localtables/a%2Fb%20..%2FGr%C3%B6%C3%9Fe.json",
        "SALES/dataflows/DF_ORDERS.json",
        "SALES/localtables/ORDERS.json",
        "SALES/localtables/ORDERS_COPY.json",
        "SALES/remotetables/RT_ORDERS.json",
        "SALES/replicationflows/RF_S4.json",
        "SALES/transformationflows/TF.json",
        "SALES/views/V_ORDERS.json",
    ]
    assert json.loads((export / "SALES/views/V_ORDERS.json").read_text()) == view("V_ORDERS", "ORDERS_COPY")
    assert all(p.resolve().is_relative_to(export.resolve()) for p in export.rglob("*"))


@pytest.mark.parametrize("name", ["../x", ".hidden", "a/b", "50%", "...", "%2E"])
def test_safe_file_names_stay_in_their_folder_and_are_distinct(name: str) -> None:
    safe = safe_file_name(name)
    assert "/" not in safe and not safe.startswith(".") and safe not in ("", "..")
    others = {safe_file_name(n) for n in ["../x", ".hidden", "a/b", "50%", "...", "%2E"] if n != name}
    assert safe not in others


def test_export_then_csn_sync_plans_like_the_tenant(tenant: FakeTenant, tmp_path: Path) -> None:
    small_tenant(tenant)
    direct = metasync.plan(tenant_config(tenant, tmp_path))
    export_tenant(load_config(tenant_config(tenant, tmp_path)), tmp_path / "export")
    offline = metasync.plan(csn_config(tmp_path / "export", tmp_path))
    assert plan_rows(offline) == plan_rows(direct)
    assert direct.summary["counts"]["assets"] == 5
    # the data flow puts ORDERS after RT_ORDERS, the transformation flow ORDERS_COPY after ORDERS
    batches = dict(zip(direct.plan["name"], direct.plan["batch"], strict=True))
    assert batches["RT_ORDERS"] < batches["ORDERS"] < batches["ORDERS_COPY"] < batches["V_ORDERS"]


@pytest.mark.corpus
def test_export_of_the_corpus_plans_like_the_tenant(
    tenant: FakeTenant, corpus_path: Path, tmp_path: Path
) -> None:
    load_corpus(tenant, corpus_path, tmp_path / "files")
    direct = metasync.plan(tenant_config(tenant, tmp_path))
    export_tenant(load_config(tenant_config(tenant, tmp_path)), tmp_path / "export")
    offline = metasync.plan(csn_config(tmp_path / "export", tmp_path))
    files = metasync.plan(csn_config(tmp_path / "files", tmp_path))
    assert plan_rows(offline) == plan_rows(direct) == plan_rows(files)
    assert direct.summary["counts"]["assets"] > 150


def test_export_again_removes_deleted_objects_and_keeps_unread_spaces(
    tenant: FakeTenant, tmp_path: Path
) -> None:
    small_tenant(tenant)
    config = load_config(tenant_config(tenant, tmp_path))
    export_tenant(config, tmp_path / "export")
    del tenant.spaces["SALES"]["views"]["V_ORDERS"]
    tenant.forbidden.add("FINANCE")
    summary = export_tenant(config, tmp_path / "export")
    assert summary["status"] == "partial" and summary["skipped_spaces"] == ["FINANCE"]
    assert summary["removed_files"] == 1
    assert not (tmp_path / "export/SALES/views").exists()
    assert (tmp_path / "export/FINANCE/localtables").is_dir()


def test_export_keeps_the_files_of_a_space_read_only_in_part(tenant: FakeTenant, tmp_path: Path) -> None:
    small_tenant(tenant)
    config = load_config(tenant_config(tenant, tmp_path))
    export_tenant(config, tmp_path / "export")
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "export").rglob("*.json"))
    tenant.fail(r"/spaces/SALES/views$", 404, times=100)  # one object type of SALES cannot be listed
    summary = export_tenant(config, tmp_path / "export")
    assert summary["status"] == "partial" and summary["removed_files"] == 0
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "export").rglob("*.json")) == before


def test_export_refuses_a_folder_it_did_not_write(tenant: FakeTenant, tmp_path: Path) -> None:
    small_tenant(tenant)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        export_tenant(load_config(tenant_config(tenant, tmp_path)), tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert tenant.requests == []


def test_export_needs_a_datasphere_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source.kind is 'csn'"):
        export_tenant(load_config(csn_config(tmp_path, tmp_path)), tmp_path / "export")


# ------------------------------------------------------------------ the command line, end to end
def run_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metasync.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": "200", "HOME": str(cwd), **env},
    )


def write_config(tenant: FakeTenant, tmp_path: Path, **source: Any) -> Path:
    config = tenant_config(tenant, tmp_path, **source)
    config["source"]["client_secret"] = "${DS_CLIENT_SECRET}"
    config["target"]["path"] = "catalog"
    config["audit"]["dir"] = "audit"
    path = tmp_path / "metasync.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def test_cli_export_exit_codes(tenant: FakeTenant, tmp_path: Path) -> None:
    small_tenant(tenant)
    env = {"DS_CLIENT_SECRET": tenant.client_secret}
    config = write_config(tenant, tmp_path)
    done = run_cli("export", "-c", str(config), "--to", "snapshot", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "exported 8 objects of 2 spaces" in done.stdout
    assert (tmp_path / "snapshot/SALES/views/V_ORDERS.json").is_file()

    tenant.forbidden.add("FINANCE")
    partial = run_cli("export", "-c", str(config), "--to", "snapshot", cwd=tmp_path, env=env)
    assert partial.returncode == 1
    assert "the technical user is not a member of space FINANCE" in partial.stderr

    tenant.fail(r"/catalog/spaces", 503, times=100)
    down = run_cli(
        "export", "-c", str(write_config(tenant, tmp_path, max_retries=1)), "--to", "x", cwd=tmp_path, env=env
    )
    assert down.returncode == 3
    assert "catalog/spaces" in down.stderr and "Traceback" not in down.stderr

    usage = run_cli("export", "-c", str(config), "--to", "x", cwd=tmp_path, env={})
    assert usage.returncode == 2 and "DS_CLIENT_SECRET" in usage.stderr


def test_the_secret_appears_in_no_output_log_or_file(tenant: FakeTenant, tmp_path: Path) -> None:
    small_tenant(tenant)
    tenant.forbidden.add("HR")
    tenant.fail(r"/views/V_ORDERS$", 429, headers={"Retry-After": "0"})
    tenant.token_max_uses = 5  # tokens expire during every run
    secret = tenant.client_secret
    env = {"DS_CLIENT_SECRET": secret}
    config = write_config(tenant, tmp_path, max_workers=1)
    outputs = [
        run_cli("sync", "-c", str(config), "--debug", cwd=tmp_path, env=env),
        run_cli("plan", "-c", str(config), cwd=tmp_path, env=env),
        run_cli("lineage", "-c", str(config), "--format", "json", cwd=tmp_path, env=env),
        run_cli("export", "-c", str(config), "--to", "snapshot", "--debug", cwd=tmp_path, env=env),
    ]
    assert [o.returncode for o in outputs] == [1, 1, 1, 1]  # lineage too: space HR could not be read
    tenant.fail(r"/oauth/token", 500, times=100, method="POST")
    failed = run_cli(
        "sync", "-c", str(write_config(tenant, tmp_path, max_retries=0)), "--debug", cwd=tmp_path, env=env
    )
    assert failed.returncode == 3
    outputs.append(failed)
    tenant.faults.clear()
    (tmp_path / "metasync.yaml").write_text(
        (tmp_path / "metasync.yaml").read_text().replace("${DS_CLIENT_SECRET}", "${DS_CLIENT_SECRET}x")
    )
    refused = run_cli("sync", "-c", str(tmp_path / "metasync.yaml"), "--debug", cwd=tmp_path, env=env)
    assert refused.returncode == 3 and "refused OAuth client" in refused.stderr
    outputs.append(refused)

    for output in outputs:
        assert secret not in output.stdout and secret not in output.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "metasync.yaml"]
    assert any(p.suffix == ".parquet" for p in written) and any("state" in str(p) for p in written)
    for path in written:
        assert secret.encode() not in path.read_bytes(), path


def test_the_secret_is_not_logged_in_process(
    tenant: FakeTenant, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    small_tenant(tenant)
    tenant.fail(r"/localtables/ORDERS$", 500)
    tenant.token_max_uses = 50
    caplog.set_level(logging.DEBUG)
    first = metasync.sync(tenant_config(tenant, tmp_path))
    second = metasync.sync(tenant_config(tenant, tmp_path))
    config = DatasphereSourceConfig.model_validate(tenant.source_config())
    texts = [caplog.text, repr(config), str(config), config.model_dump_json()]
    texts += [r.events.write_json() + json.dumps(r.summary) for r in (first, second)]
    assert all(tenant.client_secret not in text for text in texts)
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert second.summary["counts"]["unchanged"] == second.summary["counts"]["assets"] == 5
    reuse = second.events.filter(pl.col("event") == "incremental_read")["details"].to_list()
    assert [json.loads(d) for d in reuse] == [{"reused": 8, "read": 0}]


# ------------------------------------------------------------------ space folders, and writes that fail
def spaced_tenant(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS", "ID"))
    tenant.add_object("FIN ANZ", "localtables", "LEDGER", table("LEDGER", "ID"))
    tenant.add_object("VERTRIEB_Ä", "localtables", "KUNDE", table("KUNDE", "ID"))


def exported(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json") if p.name != MANIFEST)


def test_a_space_folder_is_named_like_the_space_and_read_back_as_it(
    tenant: FakeTenant, tmp_path: Path
) -> None:
    spaced_tenant(tenant)
    config = tenant_config(tenant, tmp_path, object_types=["localtables"])
    export_tenant(load_config(config), tmp_path / "export")
    assert exported(tmp_path / "export") == [
        "FIN ANZ/localtables/LEDGER.json",
        "SALES/localtables/ORDERS.json",
        "VERTRIEB_Ä/localtables/KUNDE.json",
    ]
    offline = metasync.plan(csn_config(tmp_path / "export", tmp_path))
    direct = metasync.plan(config)
    assert plan_rows(offline) == plan_rows(direct)
    assert sorted(offline.assets["space"].to_list()) == ["FIN ANZ", "SALES", "VERTRIEB_Ä"]


def test_a_skipped_space_keeps_its_files_whatever_its_name(tenant: FakeTenant, tmp_path: Path) -> None:
    spaced_tenant(tenant)
    config = load_config(tenant_config(tenant, tmp_path, object_types=["localtables"]))
    export_tenant(config, tmp_path / "export")
    before = exported(tmp_path / "export")
    tenant.forbidden |= {"FIN ANZ", "VERTRIEB_Ä"}
    summary = export_tenant(config, tmp_path / "export")
    assert summary["status"] == "partial" and summary["removed_files"] == 0
    assert exported(tmp_path / "export") == before


def test_files_of_an_earlier_export_in_encoded_space_folders_are_kept_or_replaced(
    tenant: FakeTenant, tmp_path: Path
) -> None:
    """Earlier versions percent-encoded space folders (`FIN%20ANZ`); a skipped space keeps those files, a space
    read in full gets them replaced by its folder under its own name."""
    spaced_tenant(tenant)
    export = tmp_path / "export"
    old = ["FIN%20ANZ/localtables/LEDGER.json", "VERTRIEB_%C3%84/localtables/KUNDE.json"]
    for relative in old:
        (export / relative).parent.mkdir(parents=True)
        (export / relative).write_text("{}")
    (export / MANIFEST).write_text(json.dumps({"files": old}))
    tenant.forbidden.add("FIN ANZ")
    summary = export_tenant(
        load_config(tenant_config(tenant, tmp_path, object_types=["localtables"])), export
    )
    assert summary["removed_files"] == 1
    assert exported(export) == [
        "FIN%20ANZ/localtables/LEDGER.json",
        "SALES/localtables/ORDERS.json",
        "VERTRIEB_Ä/localtables/KUNDE.json",
    ]


def test_a_list_in_doubt_keeps_the_files_of_its_space(tenant: FakeTenant, tmp_path: Path) -> None:
    for i in range(12):
        tenant.add_object("SALES", "localtables", f"T{i:02d}", table(f"T{i:02d}"))
    config = load_config(tenant_config(tenant, tmp_path, object_types=["localtables"]))
    export_tenant(config, tmp_path / "export")
    tenant.list_max_top, tenant.broken_paging = 5, True
    summary = export_tenant(config, tmp_path / "export")
    assert summary["status"] == "partial" and summary["removed_files"] == 0
    assert len(exported(tmp_path / "export")) == 12


def test_a_name_too_long_for_the_file_system_is_one_clear_error(tenant: FakeTenant, tmp_path: Path) -> None:
    long = "L" * 300
    tenant.add_object("SALES", "localtables", long, table(long))
    tenant.add_object("SALES", "localtables", "OK", table("OK"))
    env = {"DS_CLIENT_SECRET": tenant.client_secret}
    config = write_config(tenant, tmp_path, object_types=["localtables"])
    failed = run_cli("export", "-c", str(config), "--to", "snapshot", cwd=tmp_path, env=env)
    assert failed.returncode == 3
    assert (
        failed.stderr.startswith("error: cannot write SALES.LLLL") and "internal error" not in failed.stderr
    )
    assert "(localtables) to " in failed.stderr and "File name too long" in failed.stderr
    assert not [p for p in (tmp_path / "snapshot").rglob("*.tmp")]

    del tenant.spaces["SALES"]["localtables"][
        long
    ]  # renamed in the tenant: the same folder is taken up again
    done = run_cli("export", "-c", str(config), "--to", "snapshot", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert exported(tmp_path / "snapshot") == ["SALES/localtables/OK.json"]


def test_a_full_disk_stops_the_export_naming_the_object(
    tenant: FakeTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_tenant(tenant)
    config = load_config(tenant_config(tenant, tmp_path))
    export_tenant(config, tmp_path / "export")
    tenant.add_object("SALES", "views", "V_ORDERS", view("V_ORDERS", "ORDERS"))  # changed: written again
    del tenant.spaces["SALES"]["localtables"]["ORDERS_COPY"]

    real_write_bytes = Path.write_bytes

    def full_disk(path: Path, data: bytes) -> int:
        if path.parent.name == "views":
            raise OSError(28, "No space left on device")
        return real_write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(
        TargetError, match=r"cannot write SALES\.V_ORDERS \(views\) to .*V_ORDERS\.json: No space"
    ):
        export_tenant(config, tmp_path / "export")
    monkeypatch.undo()
    assert (tmp_path / "export/SALES/localtables/ORDERS_COPY.json").is_file()  # nothing removed yet
    assert not list((tmp_path / "export").rglob("*.tmp"))
    summary = export_tenant(config, tmp_path / "export")  # the folder is taken up again, and tidied
    assert summary["status"] == "succeeded" and summary["removed_files"] == 1
    assert json.loads((tmp_path / "export/SALES/views/V_ORDERS.json").read_text()) == view(
        "V_ORDERS", "ORDERS"
    )


def test_lineage_names_a_space_skipped_for_a_document_that_is_no_csn(
    tenant: FakeTenant, tmp_path: Path
) -> None:
    tenant.add_object("SALES", "localtables", "ORDERS", table("ORDERS", "ID"))
    tenant.add_object("SALES", "localtables", "BAD", {"error": {"code": "500", "message": "proxy says no"}})
    tenant.add_object("HR", "localtables", "EMP", table("EMP", "ID"))
    config = write_config(tenant, tmp_path, spaces=["SALES", "HR"], object_types=["localtables"])
    done = run_cli("lineage", "-c", str(config), cwd=tmp_path, env={"DS_CLIENT_SECRET": tenant.client_secret})
    assert done.returncode == 1 and "HR.EMP" in done.stdout
    assert "space SALES" in done.stderr and "BAD" in done.stderr
