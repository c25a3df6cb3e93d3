"""Runs of `metasync sync` on generated benchmark tenants, for the tests that stop a run part-way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def start_sync_of_generated_tenant(
    tmp_path: Path, assets: int, *, new_session: bool = False, source: str = ""
) -> subprocess.Popen[str]:
    """`metasync sync` started on a benchmark tenant of about `assets` assets (generated under `tmp_path`, into
    `tmp_path/catalog`, audit in `tmp_path/audit`); `source` adds keys to the source mapping."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from generate_tenant import generate

    generate(assets, tmp_path / "tenant")
    config = tmp_path / "metasync.yaml"
    config.write_text(
        f"source: {{kind: csn, path: {tmp_path / 'tenant'}{', ' + source if source else ''}}}\n"
        f"target: {{kind: local, path: {tmp_path / 'catalog'}}}\naudit: {{dir: {tmp_path / 'audit'}}}\n"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "metasync.cli", "sync", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )
