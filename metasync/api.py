"""The Python API: `sync`, `plan` and `lineage`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metasync.config import load_config
from metasync.graph.lineage import build_lineage_graph
from metasync.models import UNREAD_EVENTS, Event
from metasync.pipeline import ConfigInput, SyncResult, read_source, run

if TYPE_CHECKING:
    import networkx as nx  # only metasync.graph imports networkx at run time


def sync(
    config: ConfigInput, *, env: str | None = None, dry_run: bool = False, delete_stale: bool | None = None
) -> SyncResult:
    """Synchronise the source into the target once (or only plan, with `dry_run`).

    `config` is a path to a YAML file, a dict, or a `metasync.config.Config`. Raises `MetasyncError`
    subclasses for run-level problems (bad configuration, unreadable source or target); per-asset problems
    are rows of the result. `delete_stale` overrides `sync.delete_stale` of the configuration.
    """
    return run(config, env=env, dry_run=dry_run, delete_stale=delete_stale)


def plan(config: ConfigInput, *, env: str | None = None, delete_stale: bool | None = None) -> SyncResult:
    """What `sync` would do, against the target's current state; nothing is written to the target."""
    return run(config, env=env, dry_run=True, delete_stale=delete_stale)


def lineage(config: ConfigInput, *, env: str | None = None) -> nx.DiGraph:
    """The asset-level lineage graph of the source: nodes keyed by ASSET_ID (`SPACE.NAME`), edges with a `kind`.

    `graph.graph["incomplete"]` is True when a part of the source could not be read (a file skipped by
    `source.skip_invalid`, a space that refused the user): the graph then shows only what was read, and
    `graph.graph["problems"]` holds the messages saying what was not.
    """
    graph, incomplete, unread = lineage_and_unread(config, env=env)
    graph.graph["incomplete"] = incomplete
    graph.graph["problems"] = [event.message for event in unread]
    return graph


def lineage_and_unread(
    config: ConfigInput, *, env: str | None = None
) -> tuple[nx.DiGraph, bool, list[Event]]:
    """The lineage graph, whether a part of the source could not be read, and the events saying which."""
    frames = read_source(load_config(config, env=env))
    unread = [event for event in frames.events if event.event in UNREAD_EVENTS]
    return build_lineage_graph(frames.assets, frames.edges), frames.incomplete, unread
