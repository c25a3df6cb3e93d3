"""The benchmark's programs on a small generated tenant: what they measure must be the same work.

The speed figures in benchmarks/README.md compare metasync with the per-object baseline and with the orjson
floor; they mean something only while the baseline gives metasync's result and the floors walk the same files.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_plan  # noqa: E402
from generate_tenant import generate  # noqa: E402


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("bench") / "tenant"
    return folder, generate(600, folder, per_space=200)


@pytest.fixture()
def config(tenant: tuple[Path, dict[str, int]], tmp_path: Path) -> Path:
    folder, _ = tenant
    path = tmp_path / "bench.yaml"
    settings: dict[str, Any] = {
        "source": {"kind": "csn", "path": str(folder)},
        "target": {"kind": "local", "path": str(tmp_path / "catalog")},
        "audit": {"dir": str(tmp_path / "audit")},
        "environments": {"dev": {}, bench_plan.ENV: {}},
        "rules": bench_plan.BENCH_RULES,
    }
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def test_floors_walk_every_definition_and_element(tenant: tuple[Path, dict[str, int]]) -> None:
    folder, counts = tenant
    floor = bench_plan.floor(folder)
    frame = bench_plan.columns_frame(folder)
    assert counts["spaces"] == 3
    assert floor["bytes"] == counts["bytes"]
    # Every definition the generator wrote is an entity of the tenant; associations are elements, not columns.
    assert floor["definitions"] == frame["definitions"] == counts["assets"]
    assert floor["elements"] == frame["columns"] > counts["columns"]


def test_baseline_gives_metasyncs_result(config: Path, tenant: tuple[Path, dict[str, int]]) -> None:
    _, counts = tenant
    result = bench_plan.stage(config)
    assert result["assets_agree"] == 1.0
    assert result["columns_agree"] == 1.0
    assert result["quarantined"] == result["quarantined_baseline"] == 0
    # Every generated object is in scope (none is named `*_TMP`) and none is quarantined.
    assert result["assets"] == counts["assets"]
    assert result["columns"] == counts["columns"]
