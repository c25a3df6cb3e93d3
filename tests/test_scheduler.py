"""Recurring syncs with the configuration re-read before every run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from metasync.errors import ConfigError
from metasync.scheduler.loop import RunRecord, last_exit_code, parse_interval, run_every


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("0.5s", 0.5)]
)
def test_intervals(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "15 minutes", "-5m", "m"])
def test_bad_intervals_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="not an interval"):
        parse_interval(text)


@pytest.mark.parametrize("text", ["0", "0s", "0.0m"])
def test_an_interval_of_no_time_is_refused(text: str) -> None:
    """It would start run after run with no pause."""
    with pytest.raises(ConfigError, match="is no time at all"):
        parse_interval(text)


def project(tmp_path: Path) -> Path:
    table = {"kind": "entity", "elements": {"A": {"type": "cds.Integer"}}}
    (tmp_path / "exports" / "S").mkdir(parents=True)
    (tmp_path / "exports" / "S" / "t.json").write_text(json.dumps({"definitions": {"T": table}}))
    config = tmp_path / "metasync.yaml"
    config.write_text("source: {kind: csn, path: exports}\ntarget: {kind: local, path: catalog-a}\n")
    return config


def test_each_run_reads_the_configuration_again(tmp_path: Path) -> None:
    config = project(tmp_path)
    edits = {
        1: "source: {kind: csn, path: exports}\ntarget: {kind: local, path: catalog-b}\n",
        2: "source: {kind: csn, path: exports, colour: red}\n",  # broken on purpose
        3: "source: {kind: csn, path: exports}\ntarget: {kind: local, path: catalog-c}\n",
    }

    def edit_after(record: RunRecord) -> None:
        if record.number in edits:
            config.write_text(edits[record.number])

    records = run_every(config, every=0, max_runs=4, on_run=edit_after)
    assert [r.exit_code for r in records] == [0, 0, 2, 0]
    assert records[2].status == "failed" and "unknown key 'source.colour'" in (records[2].error or "")
    for folder in ("catalog-a", "catalog-b", "catalog-c"):
        assert (tmp_path / folder / "s" / "tables" / "t.json").exists()
    assert last_exit_code(records) == 0


def test_an_internal_error_ends_its_run_and_the_schedule_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import metasync.pipeline

    config = project(tmp_path)
    real = metasync.pipeline.plan_batches
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("planner broke")
        return real(*args, **kwargs)

    monkeypatch.setattr(metasync.pipeline, "plan_batches", flaky)
    records = run_every(config, every=0, max_runs=2)
    assert [r.exit_code for r in records] == [3, 0]
    assert records[0].error == "internal error: RuntimeError: planner broke"


def test_a_set_stop_event_ends_the_schedule(tmp_path: Path) -> None:
    import threading

    stop = threading.Event()
    records = run_every(project(tmp_path), every=3600, stop=stop, on_run=lambda r: stop.set())
    assert len(records) == 1  # no hour-long wait after the stop


def test_watch_command_runs_and_exits_with_the_last_code(tmp_path: Path) -> None:
    config = project(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "metasync.cli",
            "watch",
            "-c",
            str(config),
            "--every",
            "0.1s",
            "--max-runs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "run 1: succeeded" in result.stdout and "run 2: succeeded" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "metasync.cli", "watch", "-c", str(config), "--every", "soon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not an interval" in bad.stderr


def test_a_failed_run_that_wrote_its_audit_names_the_folder(tmp_path: Path) -> None:
    config = project(tmp_path)
    config.write_text(
        "source: {kind: csn, path: exports}\n"
        "rules: [{kind: naming, replace: [{pattern: '(', with: x}]}]\n"  # a bad regex, found at load
    )
    (record,) = run_every(config, every=0, max_runs=1)
    assert record.exit_code == 2 and "rules[0] (naming)" in (record.error or "")
    assert record.audit_dir is not None and (record.audit_dir / "summary.json").is_file()
