"""Sync the example SALES export into AWS Glue from Python, then show that a rerun writes nothing.

    python examples/glue_sync.py                      # the Glue of your AWS credentials (examples/glue.yaml)
    GLUE_ENDPOINT=http://127.0.0.1:5000 python examples/glue_sync.py   # a moto server instead

Prints what the plan would change, the sync's counts and Glue calls, and the rerun's calls.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

import metasync

CONFIG = Path(__file__).resolve().parent / "glue.yaml"


def main() -> None:
    planned = metasync.plan(CONFIG)
    changes = planned.plan.filter(pl.col("action") != "unchanged")
    print(f"plan: {changes.height} change(s) read against Glue")
    print(changes.select("batch", "action", "space", "name", "glue_database", "glue_table"))

    first = metasync.sync(CONFIG)
    print(f"sync: {first.summary['status']}, counts {first.summary['counts']}")
    print(f"      Glue calls {first.summary['api_calls']}, retries {first.summary['api_retries']}")

    rerun = metasync.sync(CONFIG)
    print(f"rerun: {rerun.summary['counts']['unchanged']} unchanged, Glue calls {rerun.summary['api_calls']}")


if __name__ == "__main__":
    main()
