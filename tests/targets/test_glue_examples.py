"""The Glue example (config and script) and the CLI with a Glue target, against moto server over HTTP."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from csn_export import tables, write_export
from glue_proxy import GlueProxy
from glue_rows import all_tables, target_settings
from typer.testing import CliRunner

from metasync.cli import app

REPO = Path(__file__).resolve().parents[2]


def test_example_script_syncs_the_example_export_into_glue(
    glue_proxy: GlueProxy, moto: str, tmp_path: Path
) -> None:
    for name in ("glue.yaml", "glue_sync.py"):
        shutil.copy(REPO / "examples" / name, tmp_path / name)
    shutil.copytree(REPO / "examples" / "exports", tmp_path / "exports")
    env = {**os.environ, "GLUE_ENDPOINT": glue_proxy.url, "AWS_REGION": "eu-central-1"}

    done = subprocess.run(
        [sys.executable, str(tmp_path / "glue_sync.py")],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    created = all_tables(moto, "sales")
    assert created and all(t["Parameters"]["metasync:managed"] == "true" for t in created)
    assert all(
        t["StorageDescriptor"]["Location"].startswith("s3://my-datalake/datasphere/sales/") for t in created
    )
    rerun_line = done.stdout.strip().splitlines()[-1]
    assert rerun_line.startswith(f"rerun: {len(created)} unchanged")
    assert "CreateTable" not in rerun_line and "UpdateTable" not in rerun_line
    assert (tmp_path / "metasync-audit").is_dir()


def _config_file(tmp_path: Path, endpoint: str, **target: object) -> Path:
    exports = write_export(tmp_path / "exports", "SALES", tables(3))
    config = {
        "source": {"kind": "csn", "path": str(exports)},
        "target": target_settings(endpoint, **target),
        "audit": {"dir": str(tmp_path / "audit")},
    }
    path = tmp_path / "glue.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_cli_plan_reads_glue_and_writes_nothing(glue_proxy: GlueProxy, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["plan", "-c", str(_config_file(tmp_path, glue_proxy.url))])
    assert result.exit_code == 0, result.output
    assert "create" in result.output and "SALES.T_00002" in result.output
    assert set(glue_proxy.counts) == {"GetDatabase"}


def test_cli_sync_with_unreachable_glue_exits_3_naming_the_endpoint(aws_env: None, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = _config_file(tmp_path, endpoint, max_retry_seconds=2)
    result = CliRunner().invoke(app, ["sync", "-c", str(config)])
    assert result.exit_code == 3
    assert endpoint in result.output
    assert "Traceback" not in result.output
