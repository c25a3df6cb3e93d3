"""`metasync export`: snapshot a tenant's design-time objects as CSN files, for offline syncs and comparisons.

The folder gets one subfolder per space and, below it, one subfolder per object type holding one CSN file per
object (`<folder>/<SPACE>/<type>/<technical name>.json`), which is the layout the `csn` source reads: files
below a space folder belong to that space. A space folder is named exactly like the space, as the `csn` source
takes the folder name for the space's name (the `datasphere` source has refused names that cannot be a space:
dots, slashes, control characters). Technical names are percent-encoded where they hold characters unsafe in
file names, so no name can reach outside the folder. A hidden manifest (`.metasync-export.json`) lists the files
written, so that a later export into the same folder removes the files of objects that no longer exist; a
non-empty folder without that manifest is refused. The manifest is written before the objects, listing every
file the export may leave, so that an export stopped half-way (a full disk, a name too long for the file
system) leaves a folder the next export takes up and tidies.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from metasync.config import Config, DatasphereSourceConfig
from metasync.errors import ConfigError, TargetError
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
    return Path(obj.space) / obj.object_type / (safe_file_name(obj.technical_name) + ".json")


def _space_folders(spaces: Iterable[str]) -> set[str]:
    """The folders that may hold files of `spaces`: their names, and the percent-encoded names earlier versions
    of metasync gave them (so that an old export's files of a space not read in full are kept too)."""
    return {folder for space in spaces for folder in (space, safe_file_name(space))}


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


def _is_file(path: Path) -> bool:
    """Whether `path` is a file; a path too long for the file system is none (an export that stopped on it
    listed it in its manifest)."""
    try:
        return path.is_file()
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return False
        raise


def _write(path: Path, data: bytes) -> None:
    """Replace `path` by `data` through a hidden temporary file, unless it holds them already (so that unchanged
    files keep their modification times). The temporary file's name is short, as the final one may be as long
    as the file system allows, and it is removed when the write fails."""
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".metasync-{os.getpid()}.tmp")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise


_WRITE_HINTS = {
    errno.ENAMETOOLONG: "The object's technical name, percent-encoded, is longer than the file system allows for a "
    "file name; rename the object in the tenant, or export to a file system that allows longer names.",
    errno.ENOSPC: "Free space on the disk and export into this folder again; the export goes on from where this "
    "one stopped.",
}


def _write_object(root: Path, relative: str, obj: TenantObject) -> None:
    path = root / relative
    try:
        _write(path, orjson.dumps(obj.payload, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        name = obj.technical_name if len(obj.technical_name) <= 80 else obj.technical_name[:80] + "…"
        raise TargetError(
            f"cannot write {obj.space}.{name} ({obj.object_type}) to {path}: {exc.strerror or exc}.",
            hint=_WRITE_HINTS.get(
                exc.errno or 0,
                "Check that the folder may be written, or export to another folder; an export into this folder "
                "again goes on from where this one stopped.",
            ),
        ) from exc


def _write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    path = root / MANIFEST
    try:
        _write(path, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        raise TargetError(f"cannot write the export manifest {path}: {exc.strerror or exc}.") from exc


def _remove_stale(root: Path, stale: list[str], *, keep_spaces: set[str]) -> int:
    """Delete files of an earlier export whose objects are gone (not those of spaces not read in full this
    time)."""
    keep_folders = _space_folders(keep_spaces)
    removed = 0
    for relative in sorted(stale):
        parts = Path(relative).parts
        if not parts or parts[0] in keep_folders or ".." in parts or Path(relative).is_absolute():
            continue
        path = root / relative
        try:
            if not _is_file(path):
                continue
            path.unlink()
            removed += 1
            parent = path.parent
            while parent != root and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        except OSError as exc:
            raise TargetError(
                f"cannot remove {path}, the file of an object no longer in the tenant: {exc.strerror or exc}."
            ) from exc
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
    # Listed before anything is written: a stopped export leaves a folder the next one recognises and tidies.
    _write_manifest(root, {"status": "in progress", "files": sorted(set(previous) | set(written))})
    for obj, relative in zip(snapshot.objects, written, strict=True):
        _write_object(root, relative, obj)
    # Spaces read only in part (skipped, an object type not listed, a list in doubt) keep their earlier files.
    stale = [p for p in previous if p not in set(written)]
    removed = _remove_stale(root, stale, keep_spaces=snapshot.partial_spaces)
    kept = [p for p in stale if _is_file(root / p)]
    by_type = Counter(obj.object_type for obj in snapshot.objects)
    denied_spaces = {e.space for e in snapshot.events if e.event == "space_skipped" and e.space}
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
    _write_manifest(root, {**summary, "files": sorted(written + kept)})
    log.info("exported %d objects of %s to %s", len(snapshot.objects), source_config.url, root)
    return summary
