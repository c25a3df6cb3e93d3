"""`metasync export`: snapshot a tenant's design-time objects as CSN files, for offline syncs and comparisons.

The folder gets one subfolder per space and, below it, one subfolder per object type holding one CSN file per
object (`<folder>/<SPACE>/<type>/<technical name>.json`), which is the layout the `csn` source reads: files
below a space folder belong to that space. Technical names are percent-encoded where they hold characters
unsafe in file names, so no name can reach outside the folder. A hidden manifest (`.metasync-export.json`)
lists the files written, so that a later export into the same folder removes the files of objects that no
longer exist; a non-empty folder without that manifest is refused.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from metasync.config import Config, DatasphereSourceConfig
from metasync.errors import ConfigError
from metasync.sources.datasphere.source import DatasphereSource, TenantObject

log = logging.getLogger(__name__)

MANIFEST = ".metasync-export.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def safe_file_name(name: str) -> str:
    """A file name for a technical name: unsafe characters and leading dots percent-encoded.

    The encoding is one-to-one (`%` itself is encoded), so two objects never share a file.
    """
    encoded = _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), name)
    stripped = encoded.lstrip(".")
    return "%2E" * (len(encoded) - len(stripped)) + stripped


def _relative_path(obj: TenantObject) -> Path:
    return Path(safe_file_name(obj.space)) / obj.object_type / (safe_file_name(obj.technical_name) + ".json")


def _previous_files(folder: Path) -> list[str]:
    """The files of an earlier export into `folder`; raises when the folder holds anything else."""
    if not folder.exists():
        return []
    if not folder.is_dir():
        raise ConfigError(f"--to {folder} is a file; choose a folder for the export.")
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            files = orjson.loads(manifest.read_bytes()).get("files", [])
        except (OSError, orjson.JSONDecodeError, AttributeError) as exc:
            raise ConfigError(
                f"{manifest} is not a readable export manifest; remove it or choose another folder."
            ) from exc
        return [f for f in files if isinstance(f, str)]
    if any(folder.iterdir()):
        raise ConfigError(
            f"--to {folder} is not empty and holds no earlier metasync export.",
            hint="Choose an empty or new folder, or the folder of an earlier export.",
        )
    return []


def _write(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_bytes(data)
    os.replace(partial, path)


def _remove_stale(root: Path, stale: list[str], *, keep_spaces: set[str]) -> int:
    """Delete files of an earlier export whose objects are gone (not those of spaces not read in full this
    time)."""
    removed = 0
    for relative in sorted(stale):
        parts = Path(relative).parts
        if not parts or parts[0] in keep_spaces or ".." in parts or Path(relative).is_absolute():
            continue
        path = root / relative
        if path.is_file():
            path.unlink()
            removed += 1
            parent = path.parent
            while parent != root and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    return removed


def export_tenant(config: Config | DatasphereSourceConfig, folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Write every object the tenant holds in scope as CSN files under `folder`; return a summary."""
    source_config = config.source if isinstance(config, Config) else config
    if not isinstance(source_config, DatasphereSourceConfig):
        raise ConfigError(
            f"metasync export reads a Datasphere tenant, but source.kind is '{source_config.kind}'.",
            hint="Use a configuration whose source.kind is datasphere.",
        )
    root = Path(folder)
    previous = _previous_files(root)
    snapshot = DatasphereSource(source_config).fetch()
    written = [_relative_path(obj).as_posix() for obj in snapshot.objects]
    for obj, relative in zip(snapshot.objects, written, strict=True):
        _write(root / relative, orjson.dumps(obj.payload, option=orjson.OPT_INDENT_2))
    denied_spaces = {e.space for e in snapshot.events if e.event == "space_skipped" and e.space}
    # Spaces read only in part (skipped, or an object type that could not be listed) keep their earlier files.
    partly_read = {e.space for e in snapshot.events if e.severity == "error" and e.space}
    stale = [p for p in previous if p not in set(written)]
    removed = _remove_stale(root, stale, keep_spaces=denied_spaces | partly_read)
    kept = [p for p in stale if (root / p).is_file()]
    by_type = Counter(obj.object_type for obj in snapshot.objects)
    summary: dict[str, Any] = {
        "tenant": source_config.url,
        "folder": str(root),
        "status": "partial" if snapshot.incomplete else "succeeded",
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "spaces": snapshot.spaces,
        "skipped_spaces": sorted(denied_spaces),
        "objects": len(snapshot.objects),
        "by_type": dict(sorted(by_type.items())),
        "removed_files": removed,
        "events": [
            {"event": e.event, "severity": e.severity, "space": e.space, "message": e.message, "hint": e.hint}
            for e in snapshot.events
            if e.severity != "info"
        ],
    }
    manifest = {**summary, "files": sorted(written + kept)}
    _write(root / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    log.info("exported %d objects of %s to %s", len(snapshot.objects), source_config.url, root)
    return summary
