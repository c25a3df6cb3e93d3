"""Reading the CSN source in a child process gives what the in-process read gives, errors included."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tenant_runs import start_sync_of_generated_tenant

from metasync.config import CsnSourceConfig
from metasync.errors import ConfigError, SourceError, Terminated
from metasync.sources.csn import CsnSource
from metasync.sources.subprocess_read import (
    AUTO_THRESHOLD_BYTES,
    _stops_held,
    partition,
    read_in_subprocess,
    wants_subprocess,
)

EXPORTS = Path(__file__).resolve().parents[2] / "examples" / "exports"


def both_ways(config: CsnSourceConfig, parts: int | None = None) -> tuple:
    return CsnSource(config).read(), read_in_subprocess(config, parts=parts)


def write_csn(path: Path, definitions: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"definitions": definitions}))


def assert_same(here, there) -> None:
    for name in ("assets", "columns", "edges", "column_lineage"):
        mine, theirs = getattr(here, name), getattr(there, name)
        assert mine.schema == theirs.schema, name
        assert mine.equals(theirs, null_equal=True), name
    assert here.events == there.events
    assert here.incomplete == there.incomplete


def test_the_example_export_reads_the_same_in_a_child_process() -> None:
    here, there = both_ways(CsnSourceConfig(path=EXPORTS))
    assert here.assets.height > 0 and here.columns.height > 0
    assert_same(here, there)


def test_the_corpus_reads_the_same_in_a_child_process(corpus_path: Path) -> None:
    here, there = both_ways(CsnSourceConfig(path=corpus_path, space="CORPUS"))
    assert here.events, "the corpus yields events (i18n bundles, space definitions)"
    assert_same(here, there)


def test_two_spaces_read_in_two_processes_give_the_in_process_result(tmp_path: Path) -> None:
    for space in ("SALES", "MARKETING"):
        shutil.copytree(EXPORTS / "SALES", tmp_path / space)
    config = CsnSourceConfig(path=tmp_path)
    assert [len(group) for group in partition(CsnSource(config).files(), tmp_path, 2)] == [3, 3]
    here, there = both_ways(config, parts=2)
    assert set(there.assets["space"]) == {"SALES", "MARKETING"}
    assert_same(here, there)


def test_a_type_defined_in_another_part_is_resolved_by_reading_the_whole_source(tmp_path: Path) -> None:
    write_csn(
        tmp_path / "A" / "types.json",
        {"Amount": {"kind": "type", "type": "cds.Decimal", "precision": 15, "scale": 2}},
    )
    write_csn(tmp_path / "B" / "t.json", {"T": {"kind": "entity", "elements": {"x": {"type": "Amount"}}}})
    here, there = both_ways(CsnSourceConfig(path=tmp_path), parts=2)
    column = here.columns.row(0, named=True)
    assert (column["source_type"], column["precision"], column["scale"]) == ("cds.Decimal", 15, 2)
    assert_same(here, there)


def test_an_object_defined_in_two_parts_is_a_conflict_as_in_process(tmp_path: Path) -> None:
    table = {"kind": "entity", "elements": {"ID": {"type": "cds.Integer", "key": True}}}
    write_csn(
        tmp_path / "A" / "a.json",
        {"B": {"kind": "context", "@DataWarehouse.space.name": "B"}, "B.X": table},
    )
    write_csn(tmp_path / "B" / "b.json", {"X": {**table, "@EndUserText.label": "another X"}})
    here, there = both_ways(CsnSourceConfig(path=tmp_path), parts=2)
    assert [e.event for e in here.events if e.event == "duplicate_conflict"] == ["duplicate_conflict"]
    assert_same(here, there)


def test_partition_keeps_file_order_and_space_folders_together(tmp_path: Path) -> None:
    for space, size in (("A", 100), ("B", 10), ("C", 10), ("D", 100)):
        for i in range(2):
            (tmp_path / space).mkdir(exist_ok=True)
            (tmp_path / space / f"{i}.json").write_text("x" * size)
    files = CsnSource(CsnSourceConfig(path=tmp_path)).files()
    groups = partition(files, tmp_path, 2)
    assert [f for group in groups for f in group] == files
    assert [sorted({f.space for f in group}) for group in groups] == [
        ["A", "B"],
        ["C", "D"],
    ]  # 220 bytes each
    assert partition(files, tmp_path, 8)[-1][-1] == files[-1] and len(partition(files, tmp_path, 8)) == 4


def test_skipped_files_and_their_events_come_back_from_the_child(tmp_path: Path) -> None:
    source = tmp_path / "src" / "SALES"
    shutil.copytree(EXPORTS / "SALES", source)
    (source / "broken.json").write_text('{"definitions": {')
    here, there = both_ways(CsnSourceConfig(path=tmp_path / "src", skip_invalid=True))
    assert there.incomplete and any(e.event == "file_skipped" for e in there.events)
    assert_same(here, there)


def test_malformed_csn_is_skipped_in_the_child_as_in_process(tmp_path: Path) -> None:
    source = tmp_path / "src" / "SALES"
    shutil.copytree(EXPORTS / "SALES", source)
    write_csn(source / "malformed.json", {"T": {"kind": "entity", "elements": ["ID"]}})
    here, there = both_ways(CsnSourceConfig(path=tmp_path / "src", skip_invalid=True))
    assert there.incomplete and "T" not in there.assets["name"].to_list()
    assert any(e.event == "file_skipped" and e.details["definition"] == "T" for e in there.events)
    assert_same(here, there)
    with pytest.raises(SourceError, match=r"malformed\.json: definition 'T' is not valid CSN"):
        read_in_subprocess(CsnSourceConfig(path=tmp_path / "src"))


def test_the_childs_source_error_is_raised_in_the_caller(tmp_path: Path) -> None:
    (tmp_path / "SALES").mkdir()
    (tmp_path / "SALES" / "broken.json").write_text('{"definitions": {')
    with pytest.raises(
        SourceError, match=r"broken\.json is not valid JSON: .* at line 1, column \d+"
    ) as info:
        read_in_subprocess(CsnSourceConfig(path=tmp_path))
    assert "skip_invalid" in (info.value.hint or "")


def test_the_childs_config_error_keeps_its_type(tmp_path: Path) -> None:
    shutil.copy(EXPORTS / "SALES" / "sales_tables.json", tmp_path / "loose.json")
    with pytest.raises(ConfigError, match="source.space is required"):
        read_in_subprocess(CsnSourceConfig(path=tmp_path))


def test_a_child_that_dies_is_a_source_error_naming_its_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", shutil.which("false") or "/bin/false")
    with pytest.raises(SourceError, match=r"in a child process failed \(exit code 1"):
        read_in_subprocess(CsnSourceConfig(path=EXPORTS))


def test_auto_reads_in_a_child_only_above_the_threshold() -> None:
    auto = CsnSourceConfig(path=EXPORTS)
    assert not wants_subprocess(auto, AUTO_THRESHOLD_BYTES)
    assert wants_subprocess(auto, AUTO_THRESHOLD_BYTES + 1)
    assert wants_subprocess(CsnSourceConfig(path=EXPORTS, read_in_subprocess=True), 0)
    assert not wants_subprocess(
        CsnSourceConfig(path=EXPORTS, read_in_subprocess=False), 10 * AUTO_THRESHOLD_BYTES
    )


def test_auto_reads_in_process_when_no_interpreter_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "")
    assert not wants_subprocess(CsnSourceConfig(path=EXPORTS), AUTO_THRESHOLD_BYTES + 1)


def test_a_script_without_a_main_guard_can_read_in_a_child_process(tmp_path: Path) -> None:
    """The child is a fresh interpreter, so the caller's script is not imported again."""
    shutil.copytree(EXPORTS, tmp_path / "exports")
    script = tmp_path / "plan_it.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import metasync
            result = metasync.plan({{
                "source": {{"kind": "csn", "path": {str(tmp_path / "exports")!r}, "read_in_subprocess": True}},
                "target": {{"kind": "local", "path": {str(tmp_path / "catalog")!r}}},
                "audit": {{"dir": {str(tmp_path / "audit")!r}}},
            }})
            print("assets", result.summary["counts"]["assets"])
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    expected = CsnSource(CsnSourceConfig(path=EXPORTS)).read().assets.height
    assert done.stdout.split() == ["assets", str(expected)]


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: field 4 of each stat, after the command in brackets)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_ctrl_c_during_the_read_stops_the_readers_without_tracebacks(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the whole process group: the readers stop with the run, quietly."""
    # Its own process group, as a terminal gives it.
    run = start_sync_of_generated_tenant(tmp_path, 3000, new_session=True, source="read_in_subprocess: true")
    # Once every reader has started (one per core, at most one per space folder: two here).
    expected, deadline = min(os.cpu_count() or 1, 2), time.monotonic() + 60
    while len(_children(run.pid)) < expected and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    readers = _children(run.pid)
    assert len(readers) == expected, "the readers never started"
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert not [pid for pid in readers if Path(f"/proc/{pid}").exists()]
    assert not (tmp_path / "catalog").exists()


@pytest.fixture
def own_stop_handlers() -> Iterator[None]:
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def test_stops_while_readers_start_take_effect_after_as_they_would_have(own_stop_handlers: None) -> None:
    """Held while the children start (so none is left unseen), then raised as before; ignored stays ignored."""

    def terminate(_number: int, _frame: object) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for stop, raised in ((signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)):
        reached_end = False
        with pytest.raises(raised):
            with _stops_held():
                os.kill(os.getpid(), stop)
                time.sleep(0.05)  # a signal would be raised here, were it not held
                reached_end = True
        assert reached_end
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup
    with _stops_held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
