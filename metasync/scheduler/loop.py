"""Recurring syncs: run on an interval, re-reading the configuration file before every run.

Runs never overlap: a run that takes longer than the interval is followed by the next one right away. A run-level
error (say, a configuration edited into an invalid state) is reported for that run and the schedule goes on, so
the next valid edit is picked up without a restart.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from metasync.errors import ConfigError, ExitCode, MetasyncError

log = logging.getLogger(__name__)

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """Seconds in an interval written as `90`, `30s`, `15m`, `2h` or `1d`."""
    match = _INTERVAL.match(text)
    if not match:
        raise ConfigError(f"--every {text!r} is not an interval; write e.g. 30s, 15m, 2h or 1d.")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ConfigError(f"--every {text!r} is no time at all; runs need an interval, e.g. 30s, 15m or 1h.")
    return seconds


@dataclass
class RunRecord:
    """What one scheduled run gave: its exit code, the audit folder or the error sentence."""

    number: int
    started: float
    exit_code: int
    status: str
    audit_dir: Path | None = None
    error: str | None = None


def run_every(
    config: Path,
    *,
    every: float,
    env: str | None = None,
    dry_run: bool = False,
    max_runs: int | None = None,
    stop: threading.Event | None = None,
    on_run: Callable[[RunRecord], None] | None = None,
) -> list[RunRecord]:
    """Sync `config` every `every` seconds until `stop` is set or `max_runs` runs are done.

    The file is loaded afresh for each run (hot reload). Returns the record of every run.
    """
    from metasync.pipeline import run

    if every < 0:
        raise ConfigError("--every must not be negative.")
    stop = stop or threading.Event()
    records: list[RunRecord] = []
    number = 0
    while not stop.is_set() and (max_runs is None or number < max_runs):
        number += 1
        started = time.monotonic()
        try:
            result = run(config, env=env, dry_run=dry_run)
            record = RunRecord(number, started, result.exit_code, result.status, result.audit_dir)
        except MetasyncError as exc:
            log.error("scheduled run %d failed: %s", number, exc)
            record = RunRecord(number, started, int(exc.exit_code), "failed", exc.audit_dir, error=str(exc))
        except Exception as exc:  # a defect ends this run, not the schedule (its audit says what happened)
            log.error(
                "scheduled run %d failed with an internal error: %s: %s", number, type(exc).__name__, exc
            )
            error = f"internal error: {type(exc).__name__}: {exc}"
            record = RunRecord(number, started, int(ExitCode.UNREACHABLE), "failed", error=error)
        records.append(record)
        if on_run is not None:
            on_run(record)
        if max_runs is not None and number >= max_runs:
            break
        stop.wait(max(0.0, every - (time.monotonic() - started)))
    return records


def last_exit_code(records: list[RunRecord]) -> int:
    """The exit code of the last run, or 0 when none ran."""
    return records[-1].exit_code if records else int(ExitCode.OK)
