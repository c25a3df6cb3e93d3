"""The `datasphere` source: a tenant's design-time objects, read over REST into the same frames as CSN files.

Discovery lists the spaces (the configured ones, or every space the catalog shows the technical user), then
each space's objects per configured object type, then reads each object's CSN with bounded concurrency.
Every CSN document goes through the same reader as CSN files (`metasync.sources.csn.read_part`);
flows add `flow` lineage edges (see `flows.py`). A space that refuses the technical user (HTTP 403), that
cannot be read once the retries are spent (server errors, timeouts), or that answers in a shape metasync cannot
read (a list of the wrong shape, a read whose body is not the object's CSN) is skipped with an error event and
the frames are marked incomplete, so the run ends `partial`; once a space has failed, none of its remaining
requests is sent. Refused credentials, or a tenant that no space can be read from, end the run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from metasync.config import DatasphereSourceConfig
from metasync.errors import ConnectorAuthError, SourceError
from metasync.models import Event, SourceFrames, space_name_problem
from metasync.sources.csn import CsnDocument, PartFrames, finish, read_part
from metasync.sources.datasphere.client import (
    DatasphereClient,
    InvalidObjectDocument,
    ListedObject,
    ObjectListing,
    ObjectNotFound,
    SpaceAbandoned,
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


class InvalidSpaceName(SourceError):
    """A space whose name cannot name a space in metasync (ASSET_IDs are `SPACE.NAME`, split at the first dot)."""

    def __init__(self, space: str, problem: str) -> None:
        super().__init__(
            f"the space name {space!r} {problem}",
            hint="metasync identifies assets as SPACE.NAME; leave the space out of source.spaces.",
        )


@dataclass
class TenantSnapshot:
    """What one read of the tenant found: the objects (sorted), the spaces read, events, completeness.

    `partial_spaces` are the spaces read only in part or not at all (skipped, an object type that could not be
    listed, a list metasync cannot tell is whole): whatever is missing from them may still exist in the tenant.
    `part` is the CSN reader's work on the objects, done once when they were accepted.
    """

    objects: list[TenantObject]
    spaces: list[str]
    events: list[Event] = field(default_factory=list)
    incomplete: bool = False
    partial_spaces: set[str] = field(default_factory=set)
    part: PartFrames | None = None

    def frames(self, language: str) -> SourceFrames:
        """The source frames of the snapshot, as the CSN reader builds them from the same documents."""
        part = self.part if self.part is not None else read_part(_documents(self.objects), language=language)
        frames = finish([part])
        frames.events[:0] = self.events
        frames.incomplete = frames.incomplete or self.incomplete
        return frames


class _SpaceFailures:
    """The first failure of each space, shared by the worker threads.

    Recording a failure gives the space up in the client, so that a space that has failed for good gets no
    further request and its requests waiting for a retry stop: its result cannot change any more.
    """

    def __init__(self, client: DatasphereClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.errors: dict[str, SourceError] = {}

    def record(self, space: str, error: SourceError) -> None:
        if isinstance(error, SpaceAbandoned):
            return  # a consequence of the failure already recorded
        with self._lock:
            self.errors.setdefault(space, error)
        self._client.abandon_space(space)

    def __contains__(self, space: object) -> bool:
        with self._lock:
            return space in self.errors


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
        spaces = ", ".join(dict.fromkeys(self.config.spaces or [])) or "every space the catalog shows"
        return f"Datasphere tenant {self.config.url}, spaces: {spaces}"

    def read(self) -> SourceFrames:
        """Every object in scope as validated frames; spaces the user may not read become error events."""
        return self.fetch().frames(self.config.language)

    def fetch(self) -> TenantSnapshot:
        """Discover, read and accept every object in scope (run-level failures raise `SourceError`)."""
        events: list[Event] = []
        partial: set[str] = set()
        with DatasphereClient(self.config) as client:
            failures = _SpaceFailures(client)
            spaces = self._spaces(client, failures)
            listed = self._list(client, spaces, events, failures, partial)
            cached = self._state.load() if self._state is not None else {}
            objects = self._read(client, listed, cached, events, failures)
        objects, part, rejected = self._accept(objects, failures)
        denied = failures.errors
        read_spaces = [s for s in spaces if s not in denied]
        unavailable = [e for e in denied.values() if not isinstance(e, _ANSWERED)]
        if spaces and not read_spaces and unavailable:
            raise unavailable[0]  # no space answered: the tenant itself is unavailable
        events.extend(_skipped_event(space, denied[space]) for space in sorted(denied))
        if self._state is not None:
            self._save_state(cached, objects, read_spaces, rejected)
        partial |= denied.keys()
        log.info(
            "read %d objects from %d of %d spaces of %s",
            len(objects),
            len(read_spaces),
            len(spaces),
            self.config.url,
        )
        return TenantSnapshot(
            objects=objects,
            spaces=read_spaces,
            events=events,
            incomplete=bool(partial),
            partial_spaces=partial,
            part=part,
        )

    # ------------------------------------------------------------------ discovery
    def _spaces(self, client: DatasphereClient, failures: _SpaceFailures) -> list[str]:
        """The spaces in scope, each once; one whose name cannot be a space's is a failure of that space."""
        spaces = list(dict.fromkeys(self.config.spaces)) if self.config.spaces else client.list_spaces()
        for space in spaces:
            problem = space_name_problem(space)
            if problem:
                failures.record(space, InvalidSpaceName(space, problem))
        return spaces

    def _list(
        self,
        client: DatasphereClient,
        spaces: list[str],
        events: list[Event],
        failures: _SpaceFailures,
        partial: set[str],
    ) -> list[ListedObject]:
        object_types = list(dict.fromkeys(self.config.object_types))
        tasks = [
            (space, object_type) for space in spaces if space not in failures for object_type in object_types
        ]

        def list_one(task: tuple[str, str]) -> ObjectListing | ObjectNotFound | None:
            space, object_type = task
            if space in failures:
                return None
            try:
                return client.list_objects(space, object_type)
            except ConnectorAuthError:
                raise
            except ObjectNotFound as exc:
                return exc
            except SourceError as exc:
                failures.record(space, exc)
                return None

        listed: dict[ObjectKey, ListedObject] = {}
        for (space, object_type), result in zip(tasks, self._parallel(list_one, tasks), strict=True):
            if isinstance(result, ObjectNotFound):
                partial.add(space)
                events.append(_unavailable_type_event(space, object_type, result))
            elif result is not None:
                if result.doubt is not None:
                    partial.add(space)
                    events.append(_doubtful_list_event(client, space, object_type, result))
                for o in result.objects:
                    listed.setdefault((o.space, o.object_type, o.technical_name), o)
        return [o for o in listed.values() if o.space not in failures]

    def _read(
        self,
        client: DatasphereClient,
        listed: list[ListedObject],
        cached: dict[ObjectKey, CachedObject],
        events: list[Event],
        failures: _SpaceFailures,
    ) -> list[TenantObject]:
        def read_one(item: ListedObject) -> TenantObject | ObjectNotFound | None:
            if item.space in failures:
                return None
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
            except ObjectNotFound as exc:
                return exc
            except SourceError as exc:
                failures.record(item.space, exc)
                return None
            return TenantObject(
                item.space, item.object_type, item.technical_name, url, payload, item.changed_at
            )

        objects: list[TenantObject] = []
        for item, result in zip(listed, self._parallel(read_one, listed), strict=True):
            if isinstance(result, ObjectNotFound):
                events.append(_vanished_event(item, result))
            elif result is not None:
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
        objects = [o for o in objects if o.space not in failures]
        return sorted(objects, key=lambda o: (o.space, o.object_type, o.technical_name))

    def _accept(
        self, objects: list[TenantObject], failures: _SpaceFailures
    ) -> tuple[list[TenantObject], PartFrames, set[ObjectKey]]:
        """The objects the CSN reader accepts, its part over them, and the keys of the objects it refused.

        A document the reader refuses (a definition of the wrong shape) is an answer metasync cannot read: its
        space fails like any other, so nothing of it is synced, deleted or kept in the state.
        """
        rejected: set[ObjectKey] = set()
        while True:
            part = read_part(_documents(objects), language=self.config.language, skip_invalid=True)
            if not part.file_events:
                return objects, part, rejected
            by_origin = {o.origin: o for o in objects}
            for event in part.file_events:
                bad = by_origin[event.details["file"]]
                rejected.add(_key(bad))
                problem = event.message.removeprefix(f"{bad.origin}: ").rstrip(".")
                failures.record(
                    bad.space,
                    InvalidObjectDocument(
                        bad.space, bad.object_type, bad.technical_name, bad.origin, problem
                    ),
                )
            objects = [o for o in objects if o.space not in failures]

    def _parallel(self, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`work` over `items` with at most `max_workers` at once, results in input order."""
        items = list(items)
        if self.config.max_workers == 1 or len(items) <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.config.max_workers, thread_name_prefix="datasphere") as pool:
            return list(pool.map(work, items))

    # ------------------------------------------------------------------ state
    def _save_state(
        self,
        cached: dict[ObjectKey, CachedObject],
        objects: list[TenantObject],
        read_spaces: list[str],
        rejected: set[ObjectKey],
    ) -> None:
        """Keep the accepted objects, and the earlier entries of spaces not read this time (but none refused)."""
        assert self._state is not None
        kept = {k: v for k, v in cached.items() if k[0] not in read_spaces and k not in rejected}
        for o in objects:
            if o.changed_at is not None:
                kept[_key(o)] = CachedObject(o.changed_at, o.payload)
        try:
            self._state.save(kept)
        except OSError as exc:
            log.warning("cannot write the incremental state %s: %s", self._state.path, exc.strerror)


# Failures of spaces whose requests were answered: the tenant is reachable even when no space could be read.
_ANSWERED = (SpaceAccessDenied, InvalidObjectDocument, InvalidSpaceName)


def _key(obj: TenantObject) -> ObjectKey:
    return obj.space, obj.object_type, obj.technical_name


def _documents(objects: list[TenantObject]) -> list[CsnDocument]:
    return [CsnDocument(origin=o.origin, space=o.space, payload=o.payload) for o in objects]


def _unavailable_type_event(space: str, object_type: str, error: ObjectNotFound) -> Event:
    return Event(
        event="object_type_unavailable",
        severity="error",
        space=space,
        message=f"{error.endpoint} answered HTTP 404: space {space} or its {object_type} cannot be listed.",
        details={"endpoint": error.endpoint, "object_type": object_type},
        hint=f"Check that space {space} exists, or remove {object_type} from source.object_types "
        "if the tenant does not offer it.",
    )


def _doubtful_list_event(
    client: DatasphereClient, space: str, object_type: str, listing: ObjectListing
) -> Event:
    endpoint = client.object_type_url(space, object_type)
    return Event(
        event="list_incomplete",
        severity="warning",
        space=space,
        message=f"the {object_type} of space {space} may be listed only in part ({len(listing.objects)} listed): "
        f"{endpoint}: {listing.doubt}. The read is partial: nothing of the space is deleted as stale.",
        details={"endpoint": endpoint, "object_type": object_type, "listed": len(listing.objects)},
        hint="The tenant (or a proxy in front of it) does not page its design-time lists as asked ($top/$skip); "
        "ask the tenant's administrator, or check the proxy.",
    )


def _vanished_event(item: ListedObject, error: ObjectNotFound) -> Event:
    return Event(
        event="object_vanished",
        severity="warning",
        space=item.space,
        name=item.technical_name,
        message=f"{item.space}.{item.technical_name} was listed but {error.endpoint} answered "
        "HTTP 404; it was deleted while metasync read the tenant and is left out.",
        details={"endpoint": error.endpoint, "object_type": item.object_type},
    )


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
    invalid = error if isinstance(error, InvalidObjectDocument) else None
    return Event(
        event="space_skipped",
        severity="error",
        space=space,
        name=invalid.technical_name if invalid else None,
        message=f"space {space} could not be read and was skipped: {error.message}",
        details={"endpoint": invalid.endpoint} if invalid else {},
        hint=error.hint or "The run is partial; the space is read again on the next run.",
    )
