"""Benchmark: sync N generated tables into moto server over HTTP, then rerun.

Starts moto server on a free loopback port with the AWS-like proxy of the test suite in front (paging
GetTables at 100, optional injected throttling), runs `metasync.sync` for a generated CSN export, and prints
one Markdown table row per run: calls, the write phase's calls per second against the configured rate, and the
rerun's calls.

    python benchmarks/glue_sync.py --tables 5000 --rate 200 --rate 1000 [--throttle 0.2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WRITES = ("CreateDatabase", "CreateTable", "UpdateTable", "BatchDeleteTable")


def _load(name: str) -> ModuleType:
    """A helper module of tests/targets (the moto fixture, the proxy, the CSN generator)."""
    folder = REPO / "tests" / "targets"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_once(tables: int, rate: float, workers: int, throttle: float, moto_url: str) -> dict[str, Any]:
    """One initial sync and one rerun into an empty moto; the measured numbers."""
    import metasync

    proxy_module, csn = _load("glue_proxy"), _load("csn_export")
    conftest = _load("conftest")
    conftest.reset_moto(moto_url)
    proxy = proxy_module.GlueProxy(moto_url).start()
    proxy.throttle_rate = throttle
    try:
        with tempfile.TemporaryDirectory() as tmp:
            exports = csn.write_export(Path(tmp) / "exports", "BENCH", csn.tables(tables))
            config = {
                "source": {"kind": "csn", "path": str(exports)},
                "target": {
                    "kind": "glue",
                    "region": "eu-central-1",
                    "endpoint_url": proxy.url,
                    "max_requests_per_second": rate,
                    "max_workers": workers,
                    "max_retry_seconds": 120,
                },
                "audit": {"dir": str(Path(tmp) / "audit")},
            }
            started = time.perf_counter()
            first = metasync.sync(config)
            first_seconds = time.perf_counter() - started
            write_window = proxy.window(WRITES)
            proxy.reset_counts()
            started = time.perf_counter()
            rerun = metasync.sync(config)
            rerun_seconds = time.perf_counter() - started
    finally:
        proxy.stop()
    calls = first.summary["api_calls"]
    writes = sum(calls.get(op, 0) for op in WRITES)
    return {
        "tables": tables,
        "rate": rate,
        "workers": workers,
        "throttle": throttle,
        "created": first.summary["counts"]["created"],
        "calls": sum(calls.values()),
        "retries": sum(first.summary["api_retries"].values()),
        "write_calls_per_second": writes / write_window if write_window else float("nan"),
        "sync_seconds": first_seconds,
        "rerun_calls": rerun.summary["api_calls"],
        "rerun_writes": sum(rerun.summary["api_calls"].get(op, 0) for op in WRITES),
        "rerun_seconds": rerun_seconds,
        "unchanged": rerun.summary["counts"]["unchanged"],
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    header = (
        "| tables | rate limit (calls/s) | workers | throttled | created | calls | retries "
        "| write calls/s achieved | sync s | rerun calls | rerun writes | rerun s |"
    )
    lines = [header, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        rerun = ", ".join(f"{k} {v}" for k, v in sorted(r["rerun_calls"].items()))
        lines.append(
            f"| {r['tables']} | {r['rate']:g} | {r['workers']} | {r['throttle']:.0%} | {r['created']} "
            f"| {r['calls']} | {r['retries']} | {r['write_calls_per_second']:.0f} | {r['sync_seconds']:.1f} "
            f"| {rerun} | {r['rerun_writes']} | {r['rerun_seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tables", type=int, default=5000)
    parser.add_argument("--rate", type=float, action="append", help="max_requests_per_second (repeatable)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--throttle", type=float, action="append", help="share of calls throttled (repeatable)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="eu-central-1"
    )
    conftest = _load("conftest")
    process, moto_url = conftest.start_moto()
    rows = []
    try:
        for rate in args.rate or [200.0]:
            for throttle in args.throttle or [0.0]:
                rows.append(run_once(args.tables, rate, args.workers, throttle, moto_url))
                print(markdown(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
