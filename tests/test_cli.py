"""The `metasync` command as a user runs it: exit codes, messages on stderr, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def metasync(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metasync.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(cwd or Path.cwd())},
    )


def csn_project(tmp_path: Path, files: dict[str, str], extra: str = "") -> Path:
    for name, text in files.items():
        path = tmp_path / "exports" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    config = tmp_path / "metasync.yaml"
    config.write_text("source: {kind: csn, path: exports}\ntarget: {kind: local, path: catalog}\n" + extra)
    return config


GOOD = json.dumps({"definitions": {"T": {"kind": "entity", "elements": {"A": {"type": "cds.Integer"}}}}})


def test_sync_then_rerun_exit_zero(example_workspace: Path) -> None:
    first = metasync("sync", "-c", str(example_workspace / "quickstart.yaml"))
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout and "succeeded" in first.stdout
    second = metasync("sync", "-c", str(example_workspace / "quickstart.yaml"))
    assert second.returncode == 0
    assert "CreateTable" not in second.stdout


def test_plan_shows_the_batches_and_writes_nothing(example_workspace: Path) -> None:
    result = metasync("plan", "-c", str(example_workspace / "quickstart.yaml"))
    assert result.returncode == 0, result.stderr
    assert "SALES.SALES_ANALYSIS_AM" in result.stdout and "create" in result.stdout
    assert not (example_workspace / "catalog").exists()


def test_invalid_json_exits_3_naming_file_line_and_column(tmp_path: Path) -> None:
    config = csn_project(tmp_path, {"S/good.json": GOOD, "S/bad.json": '{"definitions": {\n  "T": }\n}'})
    result = metasync("sync", "-c", str(config))
    assert result.returncode == 3
    assert "bad.json is not valid JSON" in result.stderr and "line 2, column" in result.stderr
    (run,) = (tmp_path / "metasync-audit").iterdir()
    assert f"audit: {run}" in result.stderr  # where the failed run's audit is
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "catalog").exists()
    assert len(list((tmp_path / "metasync-audit").iterdir())) == 1


def test_malformed_elements_never_overwrite_a_synced_table(tmp_path: Path) -> None:
    config = csn_project(tmp_path, {"S/t.json": GOOD})
    assert metasync("sync", "-c", str(config)).returncode == 0
    table = tmp_path / "catalog" / "s" / "tables" / "t.json"
    before = table.read_bytes()
    malformed = {"definitions": {"T": {"kind": "entity", "elements": [{"A": {"type": "cds.Integer"}}]}}}
    (tmp_path / "exports" / "S" / "t.json").write_text(json.dumps(malformed))
    result = metasync("sync", "-c", str(config))
    assert result.returncode == 3
    assert "t.json: definition 'T' is not valid CSN: its elements are not an object" in result.stderr
    assert "Traceback" not in result.stderr
    assert table.read_bytes() == before


def test_skip_invalid_ends_partial_with_exit_1(tmp_path: Path) -> None:
    config = csn_project(tmp_path, {"S/good.json": GOOD, "S/bad.json": "{"}, extra="audit: {dir: audit}\n")
    config.write_text(config.read_text().replace("path: exports}", "path: exports, skip_invalid: true}"))
    result = metasync("sync", "-c", str(config))
    assert result.returncode == 1, result.stderr
    assert (tmp_path / "catalog" / "s" / "tables" / "t.json").exists()
    (run,) = (tmp_path / "audit").iterdir()
    assert json.loads((run / "summary.json").read_text())["status"] == "partial"


@pytest.mark.parametrize(
    ("config_text", "needle"),
    [
        ("source: {kind: csn, path: exports, colour: red}\n", "unknown key 'source.colour'"),
        ("source: {kind: sftp, path: exports}\n", "source"),
        (
            "source: {kind: csn, path: exports}\nrules: [{kind: business, table_description: '{nosuch}'}]\n",
            "rules[0] (business): key 'table_description': unknown placeholder {nosuch}",
        ),
    ],
)
def test_bad_config_exits_2_with_one_sentence(tmp_path: Path, config_text: str, needle: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(config_text)
    result = metasync("sync", "-c", str(config))
    assert result.returncode == 2
    assert needle in result.stderr and str(config) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "catalog").exists()


def test_unwritable_audit_folder_exits_2_before_the_catalog_is_touched(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    config = csn_project(tmp_path, {"S/good.json": GOOD}, extra="audit: {dir: afile/audit}\n")
    result = metasync("sync", "-c", str(config))
    assert result.returncode == 2, result.stderr
    assert "audit.dir" in result.stderr and "afile" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert not (tmp_path / "catalog").exists()
    assert (tmp_path / "afile").read_text() == "x"


def test_debug_never_prints_a_secret_from_a_misspelled_key(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    secret = "tOp-SeCrEt-9f3a1c77e2"
    config.write_text(
        "source: {kind: datasphere, url: 'https://t.eu10.hcs.cloud.sap', client_id: x, "
        f"client_secrett: {secret}}}\n"
    )
    result = metasync("plan", "-c", str(config), "--debug")
    assert result.returncode == 2
    assert "unknown key 'source.client_secrett'" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_version() -> None:
    result = metasync("--version")
    assert result.returncode == 0 and result.stdout.startswith("metasync ")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert metasync("sync").returncode == 2
    assert metasync("lineage", "-c", "x.yaml", "--format", "pdf").returncode == 2


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    config = csn_project(tmp_path, {"S/bad.json": "{"})
    result = metasync("sync", "-c", str(config), "--debug")
    assert result.returncode == 3
    assert "Traceback" in result.stderr


@pytest.mark.parametrize("fmt", ["table", "json", "graphml", "mermaid"])
def test_lineage_formats(example_workspace: Path, fmt: str) -> None:
    result = metasync(
        "lineage",
        "-c",
        str(example_workspace / "quickstart.yaml"),
        "--asset",
        "SALES.SALES_ANALYSIS_AM",
        "--direction",
        "upstream",
        "--format",
        fmt,
    )
    assert result.returncode == 0, result.stderr
    assert "SALES_FACT" in result.stdout
    if fmt == "json":
        json.loads(result.stdout)


def test_lineage_unknown_asset_exits_2(example_workspace: Path) -> None:
    result = metasync("lineage", "-c", str(example_workspace / "quickstart.yaml"), "--asset", "SALES.NOPE")
    assert result.returncode == 2
    assert "SALES.NOPE" in result.stderr


def skip_invalid_project(tmp_path: Path) -> Path:
    config = csn_project(tmp_path, {"S/good.json": GOOD, "S/bad.json": "{"}, extra="audit: {dir: audit}\n")
    config.write_text(config.read_text().replace("path: exports}", "path: exports, skip_invalid: true}"))
    return config


def test_partial_run_says_why_on_stderr(tmp_path: Path) -> None:
    result = metasync("sync", "-c", str(skip_invalid_project(tmp_path)), "--delete-stale")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    skipped = [line for line in lines if "bad.json is not valid JSON" in line]
    assert len(skipped) == 1 and skipped[0].startswith("error: ")
    assert "the run ends partial while it is skipped" in skipped[0]  # the hint, on the same line
    refused = [line for line in lines if "stale tables were not deleted" in line]
    assert len(refused) == 1 and "deletion runs only after a complete read" in refused[0]
    assert "Traceback" not in result.stderr


def test_run_level_events_on_stderr_are_bounded(tmp_path: Path) -> None:
    files = {f"S/bad{i:02}.json": "{" for i in range(25)}
    config = csn_project(tmp_path, {"S/good.json": GOOD, **files}, extra="audit: {dir: audit}\n")
    config.write_text(config.read_text().replace("path: exports}", "path: exports, skip_invalid: true}"))
    result = metasync("sync", "-c", str(config))
    assert result.returncode == 1, result.stderr
    (run,) = (tmp_path / "audit").iterdir()
    assert sum("is not valid JSON" in line for line in result.stderr.splitlines()) == 20
    assert f"... and 5 more, see {run}" in result.stderr


def test_events_of_listed_assets_are_not_repeated_on_stderr(tmp_path: Path) -> None:
    other = json.dumps({"definitions": {"T": {"kind": "entity", "elements": {"B": {"type": "cds.String"}}}}})
    config = csn_project(tmp_path, {"S/a.json": GOOD, "S/b.json": other})
    result = metasync("sync", "-c", str(config))
    assert result.returncode == 1, result.stderr
    assert "conflict S.T" in result.stdout
    assert "S.T" not in result.stderr


def test_lineage_of_a_partly_read_source_exits_1_naming_the_file(tmp_path: Path) -> None:
    result = metasync("lineage", "-c", str(skip_invalid_project(tmp_path)))
    assert result.returncode == 1, result.stderr
    assert "S.T" in result.stdout  # the graph of what was read is still printed
    assert "bad.json is not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_piped_plan_keeps_long_asset_names_whole(tmp_path: Path) -> None:
    """A scheduler's log is no terminal: Rich would lay the plan table out 80 characters wide and cut names."""
    name = "A_VERY_LONG_TECHNICAL_NAME_AS_SAP_DELIVERS_THEM_FOR_DELTA_TABLES_1_Delta"
    table = {"kind": "entity", "elements": {"A": {"type": "cds.Integer"}}}
    config = csn_project(tmp_path, {"SALES/t.json": json.dumps({"definitions": {name: table}})})
    done = subprocess.run(
        [sys.executable, "-m", "metasync.cli", "plan", "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},  # no COLUMNS: the width of a pipe
    )
    assert done.returncode == 0, done.stderr
    assert f"SALES.{name}" in done.stdout and f"sales.{name.lower()}" in done.stdout
