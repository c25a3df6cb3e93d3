"""Reading a large CSN source in a child process.

Parsing a whole tenant builds millions of short-lived Python objects. Once freed, that memory stays with the
process (fragmented small-object arenas), and the stages after the read allocate on top of it. Reading in a
child process that writes the frames as Arrow IPC files and exits returns all of it to the system: the run then
holds only the frames, which it maps from those files.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import polars as pl

from metasync.config import CsnSourceConfig
from metasync.errors import MetasyncError, SourceError
from metasync.models import SourceFrames

FRAMES = ("assets", "columns", "edges", "column_lineage")
# Below this much CSN, starting a process costs more than the memory it gives back.
AUTO_THRESHOLD_BYTES = 64 * 2**20


def wants_subprocess(config: CsnSourceConfig, total_bytes: int) -> bool:
    """Whether to read in a child process: as configured, or for `auto` when the files are large."""
    if config.read_in_subprocess == "auto":
        return total_bytes > AUTO_THRESHOLD_BYTES
    return bool(config.read_in_subprocess)


def _child(folder: Path) -> None:
    """Read the source configured in `folder` and leave the frames and a pickled outcome there (the child)."""
    from metasync.sources.csn import CsnSource

    outcome: dict[str, Any]
    try:
        config = CsnSourceConfig.model_validate_json((folder / "source.json").read_bytes())
        frames = CsnSource(config).read()
        for name in FRAMES:
            getattr(frames, name).write_ipc(folder / f"{name}.arrow", compression="lz4")
        outcome = {"events": frames.events, "incomplete": frames.incomplete}
    except MetasyncError as exc:
        outcome = {"error": (type(exc), exc.message, exc.hint)}
    except Exception:  # a defect: carried to the parent with its traceback
        outcome = {"crash": traceback.format_exc()}
    (folder / "outcome.pickle").write_bytes(pickle.dumps(outcome))


def read_in_subprocess(config: CsnSourceConfig) -> SourceFrames:
    """`CsnSource(config).read()` in a child process; its errors are raised here as they would be in-process.

    The child is a fresh interpreter running this module (not `multiprocessing`, which would import the
    caller's main script again and fails for scripts without a `__main__` guard).
    """
    with tempfile.TemporaryDirectory(prefix="metasync-read-", ignore_cleanup_errors=True) as name:
        folder = Path(name)
        (folder / "source.json").write_text(config.model_dump_json())
        child = subprocess.run(
            [sys.executable, "-m", __name__, str(folder)], stdin=subprocess.DEVNULL, check=False
        )
        result = folder / "outcome.pickle"
        if child.returncode != 0 or not result.exists():
            raise SourceError(
                f"reading the CSN files under {config.path} in a child process failed "
                f"(exit code {child.returncode}; a negative code is the signal that ended it).",
                hint="If the system ran out of memory, free some or read a part of the tenant at a time; "
                "source.read_in_subprocess: false reads in the main process.",
            )
        outcome = pickle.loads(result.read_bytes())
        if "error" in outcome:
            kind, message, hint = outcome["error"]
            raise kind(message, hint=hint)
        if "crash" in outcome:
            raise RuntimeError(f"the CSN reader failed in its child process:\n{outcome['crash']}")
        # Compressed files are read into memory (not mapped), so removing the folder afterwards is safe.
        frames = {name: pl.read_ipc(folder / f"{name}.arrow") for name in FRAMES}
    return SourceFrames(**frames, events=outcome["events"], incomplete=outcome["incomplete"])


if __name__ == "__main__":
    _child(Path(sys.argv[1]))
