"""The incremental-read state of a tenant: each object's change timestamp and CSN from the last read.

The state lives beside the audit folder (`<audit.dir>.state/datasphere-<tenant>.json`), so that a run reads
only the objects whose listed `changedOn` differs from the stored one, and takes the others' CSN from the
state: the source still returns every object, and content hashes decide what the target needs. It only ever
holds CSN the source accepted; an entry that is not its object's CSN (written by an earlier version, or edited)
is dropped on loading, so that object is read again.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from metasync.sources.datasphere.documents import document_problem

log = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass(frozen=True)
class CachedObject:
    changed_at: str
    payload: dict[str, Any]


ObjectKey = tuple[str, str, str]  # space, object type, technical name


def state_path(audit_dir: Path, tenant_url: str) -> Path:
    """Where the state of one tenant is kept for a given audit folder."""
    parts = urlsplit(tenant_url)
    tenant = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{parts.hostname or 'tenant'}_{parts.port or ''}").strip("_")
    return audit_dir.with_name(audit_dir.name + ".state") / f"datasphere-{tenant}.json"


class StateStore:
    """Read and write one tenant's state file; an unreadable file counts as no state."""

    def __init__(self, path: Path, tenant_url: str) -> None:
        self.path = path
        self._tenant = tenant_url.rstrip("/")

    def load(self) -> dict[ObjectKey, CachedObject]:
        """The stored objects, or nothing when the file is missing, unreadable or of another tenant; entries that
        are not their object's CSN are left out."""
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("ignoring the incremental state %s (%s); every object is read again", self.path, exc)
            return {}
        if (
            not isinstance(data, dict)
            or data.get("version") != STATE_VERSION
            or data.get("tenant") != self._tenant
        ):
            return {}
        objects = {}
        for entry in data.get("objects") or []:
            try:
                key = (str(entry["space"]), str(entry["type"]), str(entry["name"]))
                cached = CachedObject(str(entry["changed_at"]), entry["payload"])
            except (KeyError, TypeError):
                continue
            if document_problem(cached.payload, key[1], key[2]) is None:
                objects[key] = cached
        return objects

    def save(self, objects: dict[ObjectKey, CachedObject]) -> None:
        """Replace the file atomically with `objects`."""
        entries = [
            {"space": k[0], "type": k[1], "name": k[2], "changed_at": v.changed_at, "payload": v.payload}
            for k, v in sorted(objects.items())
        ]
        data = {"version": STATE_VERSION, "tenant": self._tenant, "objects": entries}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_bytes(orjson.dumps(data))
        os.replace(partial, self.path)
