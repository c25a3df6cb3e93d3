"""Reading a large CSN source in child processes, one per core, each over a group of space folders.

Parsing a whole tenant builds millions of short-lived Python objects. Once freed, that memory stays with the
process (fragmented small-object arenas), and the stages after the read would allocate on top of it. Children
that read, write their frames as Arrow IPC files and exit return all of it to the system, and they parse on
every core at once. The caller finishes the parts together (`csn.finish`: text edges, type inference along the
column lineage, validation), so the result is the one reading in-process gives. When the parts depend on each
other (a type defined in another part, an object defined in two parts), the source is read again by one child.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from metasync.config import CsnSourceConfig
from metasync.errors import MetasyncError, SourceError
from metasync.models import SourceFrames
from metasync.sources.csn import CsnFile, CsnSource, LoadedFiles, PartFrames, finish

# Below this much CSN, starting processes costs more than the memory it gives back.
AUTO_THRESHOLD_BYTES = 64 * 2**20
MAX_PARTS = 8


def wants_subprocess(config: CsnSourceConfig, total_bytes: int) -> bool:
    """Whether to read in child processes: as configured, or for `auto` when the files are large."""
    if config.read_in_subprocess == "auto":
        # Without a known interpreter (an embedded Python) there is nothing to start.
        return total_bytes > AUTO_THRESHOLD_BYTES and bool(sys.executable)
    return bool(config.read_in_subprocess)


def partition(files: list[CsnFile], root: Path, parts: int) -> list[list[CsnFile]]:
    """Split the files, in order, into at most `parts` groups of about equal size; the files of one top-level
    folder (one space) always stay together."""
    folders: dict[str, list[CsnFile]] = {}
    for file in files:
        relative = file.path.relative_to(root).parts if file.path != root else ()
        folders.setdefault(relative[0] if len(relative) > 1 else "", []).append(file)
    sizes = {key: sum(f.path.stat().st_size for f in group) for key, group in folders.items()}
    target = sum(sizes.values()) / max(1, parts)
    groups: list[list[CsnFile]] = [[]]
    filled = 0.0
    for key, group in folders.items():
        if groups[-1] and filled >= target * len(groups) and len(groups) < parts:
            groups.append([])
        groups[-1].extend(group)
        filled += sizes[key]
    return groups


def _child(folder: Path) -> LoadedFiles | None:
    """Read the files listed in `folder` and leave the part's frames and a pickled outcome there (the child).
    Returns the parsed files, for the caller to keep until it exits."""
    outcome: dict[str, Any]
    loaded = None
    try:
        config = CsnSourceConfig.model_validate_json((folder / "source.json").read_bytes())
        files = [
            CsnFile(Path(path), space) for path, space in json.loads((folder / "files.json").read_text())
        ]
        source = CsnSource(config)
        loaded = source.load(files)
        part = source.read_loaded(loaded)
        for name in PartFrames.FRAMES:
            getattr(part, name).write_ipc(folder / f"{name}.arrow", compression="lz4")
        outcome = {
            "events": part.events,
            "file_events": part.file_events,
            "incomplete": part.incomplete,
            "unresolved_types": part.unresolved_types,
        }
    except MetasyncError as exc:
        outcome = {"error": (type(exc), exc.message, exc.hint)}
    except Exception:  # a defect: carried to the caller with its traceback
        outcome = {"crash": traceback.format_exc()}
    (folder / "outcome.pickle").write_bytes(pickle.dumps(outcome))
    return loaded


_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _stops_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends, then take effect as they would have: an interrupt inside
    `Popen`, after the child exists but before the caller knows it, would leave that child running unseen. (A
    signal mask would not do: any thread of the process may take the signal, and Python raises it in the main
    thread all the same.) A signal the process ignores stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread sets handlers, and only it gets KeyboardInterrupt
        return
    caught: list[int] = []
    previous = {
        number: signal.signal(number, lambda got, _frame: caught.append(got)) for number in _HELD_SIGNALS
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:
            first = signal.Signals(caught[0])
            handler = previous[first]
            if callable(handler):
                handler(first, None)  # Python's KeyboardInterrupt, or the CLI's Terminated
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), first)  # the system's own default, now that it is back


def _start_children(
    config: CsnSourceConfig,
    groups: list[list[CsnFile]],
    workdir: Path,
    children: list[tuple[Path, subprocess.Popen[bytes]]],
) -> None:
    """Start one child per group, each in a folder of its own, adding it to `children` as it starts.

    Each gets a session of its own: Ctrl-C in a terminal reaches the whole foreground process group, and every
    child (even one still starting its interpreter) would print a KeyboardInterrupt traceback. The caller
    stops them instead."""
    for index, group in enumerate(groups):
        folder = workdir / f"part-{index}"
        folder.mkdir(parents=True)
        (folder / "source.json").write_text(config.model_dump_json())
        (folder / "files.json").write_text(json.dumps([[str(f.path), f.space] for f in group]))
        command = [sys.executable, "-m", __name__, str(folder)]
        children.append((folder, subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)))


def _read_parts(config: CsnSourceConfig, groups: list[list[CsnFile]], workdir: Path) -> list[PartFrames]:
    """Read each group in its own child process, all at once; the first group's error (in file order) is
    raised as the in-process read would raise it."""
    children: list[tuple[Path, subprocess.Popen[bytes]]] = []
    try:
        with _stops_held():
            _start_children(config, groups, workdir, children)
        codes = [child.wait() for _, child in children]
    except BaseException:  # Ctrl-C or another stop: the children go too, before their folder does
        for _, child in children:
            child.kill()
            child.wait()
        raise
    parts = []
    for (folder, _), code in zip(children, codes, strict=True):
        result = folder / "outcome.pickle"
        if code != 0 or not result.exists():
            raise SourceError(
                f"reading the CSN files under {config.path} in a child process failed "
                f"(exit code {code}; a negative code is the signal that ended it).",
                hint="If the system ran out of memory, free some or read a part of the tenant at a time; "
                "source.read_in_subprocess: false reads in the main process.",
            )
        outcome = pickle.loads(result.read_bytes())
        if "error" in outcome:
            kind, message, hint = outcome["error"]
            raise kind(message, hint=hint)
        if "crash" in outcome:
            raise RuntimeError(f"the CSN reader failed in its child process:\n{outcome['crash']}")
        parts.append(_load_part(folder, outcome))
    return parts


def _load_part(folder: Path, outcome: dict[str, Any]) -> PartFrames:
    """The part a child left in `folder`. Its files are compressed, so they are read into memory, not mapped:
    the folder can be removed afterwards."""
    frames: dict[str, Any] = {name: pl.read_ipc(folder / f"{name}.arrow") for name in PartFrames.FRAMES}
    return PartFrames(**frames, **outcome)


def _independent(parts: list[PartFrames]) -> bool:
    """Whether the parts can be finished together: no type left to another part, no object in two parts."""
    if len(parts) < 2:
        return True
    if any(part.unresolved_types for part in parts):
        return False
    ids = pl.concat([part.assets.select("space", "name") for part in parts])
    return not ids.is_duplicated().any()


def read_in_subprocess(
    config: CsnSourceConfig, files: list[CsnFile] | None = None, *, parts: int | None = None
) -> SourceFrames:
    """The CSN `files` (default: all of the source) read in child processes (`parts` of them, default one per
    core); errors are raised here as they would be in-process.

    The children are fresh interpreters running this module (not `multiprocessing`, which would import the
    caller's main script again and fails for scripts without a `__main__` guard).
    """
    if files is None:
        files = CsnSource(config).files()
    count = min(parts or os.cpu_count() or 1, MAX_PARTS)
    groups = partition(files, config.path, count) if files else [files]
    with tempfile.TemporaryDirectory(prefix="metasync-read-", ignore_cleanup_errors=True) as name:
        workdir = Path(name)
        read = _read_parts(config, groups, workdir / "parts")
        if not _independent(read):
            read = _read_parts(config, [files], workdir / "whole")
    return finish(read)


def _main(folder: Path) -> None:
    """The child's whole life. It holds nothing that needs the cyclic collector (everything it builds is freed
    by reference counting or by its exit), and a collector switched back on after the read would first scan all
    the millions of parsed objects still alive (about a second at 100,000 objects). It leaves without tearing
    its heap down object by object (the parsed documents stay alive until then): its outcome is written and
    flushed, and the system takes the memory back."""
    gc.disable()
    try:
        loaded = _child(folder)  # noqa: F841 (alive until the exit)
    except OSError:
        if not folder.exists():  # the caller gave up and took the folder away (Ctrl-C): nothing to report
            os._exit(1)
        raise
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    _main(Path(sys.argv[1]))
