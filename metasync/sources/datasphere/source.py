"""The `datasphere` source: a tenant's design-time objects, read over REST into the same frames as CSN files.

Discovery lists the spaces (the configured ones, or every space the catalog shows the technical user), then
each space's objects per configured object type, then reads each object's CSN with bounded concurrency.
Every CSN document goes through the same reader as CSN files (`metasync.sources.csn.read_documents`);
flows add `flow` lineage edges (see `flows.py`). A space that refuses the technical user (HTTP 403), or that
cannot be read once the retries are spent (server errors, timeouts, answers of the wrong shape), is skipped
with an error event and the frames are marked incomplete, so the run ends `partial`. Refused credentials, or a
tenant that no space can be read from, end the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from metasync.config import DatasphereSourceConfig
from metasync.errors import ConnectorAuthError, SourceError
from metasync.models import Event, SourceFrames
from metasync.sources.csn import CsnDocument, read_documents
from metasync.sources.datasphere.client import (
    DatasphereClient,
    ListedObject,
    ObjectNotFound,
    SpaceAccessDenied,
)
from metasync.sources.datasphere.state import CachedObject, ObjectKey, StateStore, state_path

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class TenantObject:
    """One design-time object and its CSN document."""

    space: str
    object_type: str
    technical_name: str
    origin: str
    payload: dict[str, Any]
    changed_at: str | None = None


@dataclass
class TenantSnapshot:
    """What one read of the tenant found: the objects (sorted), the spaces read, events, completeness."""

    objects: list[TenantObject]
    spaces: list[str]
    events: list[Event] = field(default_factory=list)
    incomplete: bool = False

    def frames(self, language: str) -> SourceFrames:
        """The source frames of the snapshot, as the CSN reader builds them from the same documents."""
        documents = [CsnDocument(origin=o.origin, space=o.space, payload=o.payload) for o in self.objects]
        frames = read_documents(documents, language=language)
        frames.events[:0] = self.events
        frames.incomplete = frames.incomplete or self.incomplete
        return frames.validate()


class DatasphereSource:
    """A SAP Datasphere tenant read over its REST APIs with an OAuth client of a technical user."""

    def __init__(
        self,
        config: DatasphereSourceConfig,
        *,
        audit_dir: Path | None = None,
    ) -> None:
        self.config = config
        self._state = (
            StateStore(state_path(audit_dir, config.url), config.url)
            if audit_dir is not None and config.incremental
            else None
        )

    def describe(self) -> str:
        return f"Datasphere tenant {self.config.url}"

    def read(self) -> SourceFrames:
        """Every object in scope as validated frames; spaces the user may not read become error events."""
        return self.fetch().frames(self.config.language)

    def fetch(self) -> TenantSnapshot:
        """Discover and read every object in scope (run-level failures raise `SourceError`)."""
        with DatasphereClient(self.config) as client:
            spaces = list(self.config.spaces) if self.config.spaces else client.list_spaces()
            events: list[Event] = []
            denied: dict[str, SourceError] = {}
            listed = self._list(client, spaces, events, denied)
            cached = self._state.load() if self._state is not None else {}
            objects = self._read(client, listed, cached, events, denied)
        read_spaces = [s for s in spaces if s not in denied]
        failures = [e for e in denied.values() if not isinstance(e, SpaceAccessDenied)]
        if spaces and not read_spaces and failures:
            raise failures[0]  # no space answered: the tenant itself is unavailable
        for space in sorted(denied):
            events.append(_skipped_event(space, denied[space]))
        if self._state is not None:
            self._save_state(cached, objects, read_spaces)
        incomplete = bool(denied) or any(e.severity == "error" for e in events)
        log.info(
            "read %d objects from %d of %d spaces of %s",
            len(objects),
            len(read_spaces),
            len(spaces),
            self.config.url,
        )
        return TenantSnapshot(objects=objects, spaces=read_spaces, events=events, incomplete=incomplete)

    # ------------------------------------------------------------------ discovery
    def _list(
        self,
        client: DatasphereClient,
        spaces: list[str],
        events: list[Event],
        denied: dict[str, SourceError],
    ) -> list[ListedObject]:
        tasks = [(space, object_type) for space in spaces for object_type in self.config.object_types]

        def list_one(task: tuple[str, str]) -> list[ListedObject] | SourceError:
            space, object_type = task
            try:
                return client.list_objects(space, object_type)
            except ConnectorAuthError:
                raise
            except SourceError as exc:
                return exc

        listed: list[ListedObject] = []
        for (space, object_type), result in zip(tasks, self._parallel(list_one, tasks), strict=True):
            if isinstance(result, ObjectNotFound):
                events.append(
                    Event(
                        event="object_type_unavailable",
                        severity="error",
                        space=space,
                        message=f"{result.endpoint} answered HTTP 404: space {space} or its {object_type} "
                        "cannot be listed.",
                        details={"endpoint": result.endpoint, "object_type": object_type},
                        hint=f"Check that space {space} exists, or remove {object_type} from source.object_types "
                        "if the tenant does not offer it.",
                    )
                )
            elif isinstance(result, SourceError):
                denied.setdefault(space, result)
            else:
                listed.extend(result)
        return [o for o in listed if o.space not in denied]

    def _read(
        self,
        client: DatasphereClient,
        listed: list[ListedObject],
        cached: dict[ObjectKey, CachedObject],
        events: list[Event],
        denied: dict[str, SourceError],
    ) -> list[TenantObject]:
        def read_one(item: ListedObject) -> TenantObject | SourceError:
            url = client.object_url(item.space, item.object_type, item.technical_name)
            hit = cached.get((item.space, item.object_type, item.technical_name))
            if hit is not None and item.changed_at is not None and hit.changed_at == item.changed_at:
                return TenantObject(
                    item.space, item.object_type, item.technical_name, url, hit.payload, item.changed_at
                )
            try:
                payload = client.read_object(item.space, item.object_type, item.technical_name)
            except ConnectorAuthError:
                raise
            except SourceError as exc:
                return exc
            return TenantObject(
                item.space, item.object_type, item.technical_name, url, payload, item.changed_at
            )

        objects: list[TenantObject] = []
        for item, result in zip(listed, self._parallel(read_one, listed), strict=True):
            if isinstance(result, ObjectNotFound):
                events.append(
                    Event(
                        event="object_vanished",
                        severity="warning",
                        space=item.space,
                        name=item.technical_name,
                        message=f"{item.space}.{item.technical_name} was listed but {result.endpoint} answered "
                        "HTTP 404; it was deleted while metasync read the tenant and is left out.",
                        details={"endpoint": result.endpoint, "object_type": item.object_type},
                    )
                )
            elif isinstance(result, SourceError):
                denied.setdefault(item.space, result)
            else:
                objects.append(result)
        if cached:
            reused = sum(1 for o in objects if o.payload is getattr(cached.get(_key(o)), "payload", None))
            events.append(
                Event(
                    event="incremental_read",
                    severity="info",
                    message=f"{reused} of {len(objects)} objects were unchanged since the last read and taken "
                    f"from the state; {len(objects) - reused} were read from the tenant.",
                    details={"reused": reused, "read": len(objects) - reused},
                )
            )
        objects = [o for o in objects if o.space not in denied]
        return sorted(objects, key=lambda o: (o.space, o.object_type, o.technical_name))

    def _parallel(self, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`work` over `items` with at most `max_workers` at once, results in input order."""
        items = list(items)
        if self.config.max_workers == 1 or len(items) <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.config.max_workers, thread_name_prefix="datasphere") as pool:
            return list(pool.map(work, items))

    # ------------------------------------------------------------------ state
    def _save_state(
        self, cached: dict[ObjectKey, CachedObject], objects: list[TenantObject], read_spaces: list[str]
    ) -> None:
        assert self._state is not None
        kept = {k: v for k, v in cached.items() if k[0] not in read_spaces}
        for o in objects:
            if o.changed_at is not None:
                kept[_key(o)] = CachedObject(o.changed_at, o.payload)
        try:
            self._state.save(kept)
        except OSError as exc:
            log.warning("cannot write the incremental state %s: %s", self._state.path, exc.strerror)


def _key(obj: TenantObject) -> ObjectKey:
    return obj.space, obj.object_type, obj.technical_name


def _skipped_event(space: str, error: SourceError) -> Event:
    if isinstance(error, SpaceAccessDenied):
        return Event(
            event="space_skipped",
            severity="error",
            space=error.space,
            message=error.message,
            details={"endpoint": error.endpoint},
            hint=error.hint,
        )
    return Event(
        event="space_skipped",
        severity="error",
        space=space,
        message=f"space {space} could not be read and was skipped: {error.message}",
        hint=error.hint or "The run is partial; the space is read again on the next run.",
    )
