"""Priority batch planning: which assets are written in which batch, and which are held.

The algorithm (`plan_batches`):

1. Dependencies are the data-flow edges (`from`, `join`, `union`, `fact_source`, `dimension_source`, `flow`)
   between assets of this run, upstream → downstream; relationship edges and self-loops of any kind are no
   dependencies, except a data-flow self-loop, which is a cycle of one.
2. Cycles: every strongly connected component with more than one member (or a data-flow self-loop) is a cycle.
   Its members are held with a reason naming all of them; every data-flow dependent of a member is held with
   "upstream S.X is held: <reason>". Assets in `blocked` are held with their own reason and their dependents
   likewise. Held assets still get a batch (so the frame is complete) but are not to be written.
3. Priority: each asset has a tier, the index of its kind in `priority` (unlisted kinds come after all listed
   ones). Its *effective* tier is the smallest tier among itself and everything downstream of it, so the upstream
   closure of a high-priority asset inherits that priority. Assets are scheduled tier group by tier group: the
   group of effective tier 0 first, then 1, and so on; inside a group, batches are the topological generations
   of the group (each asset as early as its dependencies allow). A group's batches start after the previous
   group's last batch. The upstreams of an asset always sit in the same or an earlier group, so every asset's
   batch is greater than each of its data-flow upstreams' batches, and no lower-priority work is scheduled
   before a higher-priority asset that does not need it.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import polars as pl

from metasync.models import DATA_FLOW_EDGE_KINDS, Event

CYCLE_PREFIX = "dependency cycle: "
CYCLE_HINT = "Break the cycle in the source (one of the views must stop reading another), then sync again."

PLAN_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "space": pl.Utf8,
    "name": pl.Utf8,
    "kind": pl.Utf8,
    "batch": pl.Int32,
    "priority": pl.Int32,
    "held_reason": pl.Utf8,
    "upstreams": pl.List(pl.Utf8),
}


def _ids(space: str = "space", name: str = "name") -> pl.Expr:
    return pl.concat_str([pl.col(space), pl.lit("."), pl.col(name)])


def run_dependencies(assets: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """The distinct data-flow dependencies between assets of this run: `upstream`, `downstream` (ASSET_IDs).

    Data-flow self-loops are kept (they are cycles); everything else that is not data flow is dropped.
    """
    ids = assets.select(_ids().alias("id"))
    deps = (
        edges.lazy()
        .filter(pl.col("kind").is_in(DATA_FLOW_EDGE_KINDS))
        .select(
            _ids("source_space", "source_name").alias("upstream"),
            _ids("target_space", "target_name").alias("downstream"),
        )
        .unique()
        .join(ids.lazy(), left_on="upstream", right_on="id", how="semi")
        .join(ids.lazy(), left_on="downstream", right_on="id", how="semi")
        .sort("upstream", "downstream")
        .collect()
    )
    return deps


def _cycles(graph: nx.DiGraph) -> tuple[list[set[str]], list[str] | None]:
    """The members of every dependency cycle: strongly connected components of two or more assets, and assets
    that read themselves (data-flow self-loops, removed from `graph` here); and, when there is no cycle of two
    or more, a topological order of `graph` (found by the same pass that looks for cycles)."""
    loops = {u for u, _ in nx.selfloop_edges(graph)}
    graph.remove_edges_from([(u, u) for u in loops])
    try:
        return [{u} for u in sorted(loops)], list(nx.topological_sort(graph))
    except nx.NetworkXUnfeasible:
        pass
    components = [c for c in nx.strongly_connected_components(graph) if len(c) > 1]
    in_components = set().union(*components)
    return components + [{u} for u in sorted(loops - in_components)], None


def _cycle_reason(graph: nx.DiGraph, members: set[str]) -> str:
    """'dependency cycle: S.A -> S.B -> S.A', naming every member of the cycle."""
    start = min(members)
    if len(members) == 1:
        return f"{CYCLE_PREFIX}{start} -> {start}"
    cycle = [u for u, _ in nx.find_cycle(graph.subgraph(members), source=start)]
    path = " -> ".join([*cycle, cycle[0]])
    rest = sorted(members - set(cycle))
    return f"{CYCLE_PREFIX}{path}" + (f" (also in the cycle: {', '.join(rest)})" if rest else "")


def _held(graph: nx.DiGraph, cycles: list[set[str]], blocked: dict[str, str]) -> dict[str, str]:
    """Held assets and why: cycle members, blocked assets, and the data-flow dependents of either."""
    held: dict[str, str] = {}
    roots: list[tuple[str, str]] = []  # (asset, reason its dependents inherit)
    for members in cycles:
        reason = _cycle_reason(graph, members)
        for member in sorted(members):
            held[member] = reason
        roots.append((min(members), reason))
    for node, reason in sorted(blocked.items()):
        if node in graph and node not in held:
            held[node] = reason
            roots.append((node, reason))
    # One walk over all dependents: a node reached from an earlier root already holds its dependents.
    reached: set[str] = set()

    def unreached(node: str) -> list[str]:
        return [succ for succ in graph.successors(node) if succ not in reached]

    for root, reason in roots:
        for _, dependent in nx.generic_bfs_edges(graph, root, neighbors=unreached):
            reached.add(dependent)
            held.setdefault(dependent, f"upstream {root} is held: {reason}")
    return held


def _schedule(graph: nx.DiGraph, order: list[str] | None, tiers: dict[str, int]) -> dict[str, int]:
    """Batch per asset: tier groups in order, topological generations inside each group (see module doc).

    `order` is a topological order of `graph`, or None when it has cycles (then the graph of its strongly
    connected components is scheduled). Two passes over that order: effective tiers from the downstream end,
    then each asset's generation inside its group (the longest path to it over edges within the group).
    """
    if order is None:
        dag: nx.DiGraph = nx.condensation(graph)
        component_of: dict[str, Any] = dag.graph["mapping"]
        own: dict[Any, int] = {c: min(tiers[n] for n in dag.nodes[c]["members"]) for c in dag}
        order = list(nx.topological_sort(dag))
    else:
        dag, component_of, own = graph, {n: n for n in graph}, tiers
    # Plain neighbour dicts (`adjacency`): the views behind `succ[node]` cost more than the lookups themselves.
    successors, predecessors = dict(dag.adjacency()), dict(dag.reverse(copy=False).adjacency())
    effective: dict[Any, int] = {}
    for node in reversed(order):
        best = own[node]
        for succ in successors[node]:
            best = min(best, effective[succ])
        effective[node] = best
    layer: dict[Any, int] = {}
    for node in order:
        tier, deepest = effective[node], 0
        for pred in predecessors[node]:
            if effective[pred] == tier:
                deepest = max(deepest, layer[pred] + 1)
        layer[node] = deepest
    height: dict[int, int] = {}
    for node, tier in effective.items():
        height[tier] = max(height.get(tier, 0), layer[node] + 1)
    offset, start = {}, 0
    for tier in sorted(height):
        offset[tier], start = start, start + height[tier]
    return {node: offset[effective[c]] + layer[c] for node, c in component_of.items()}


def plan_batches(
    assets: pl.DataFrame,
    edges: pl.DataFrame,
    *,
    priority: list[str],
    blocked: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The plan of this run's assets: one row per asset of `assets` (`space`, `name`, `kind`).

    Columns (PLAN_SCHEMA): `space`, `name`, `kind`, `batch` (0-based), `priority` (index of the kind in
    `priority`, unlisted kinds after), `held_reason` (null when the asset can be written), `upstreams` (ASSET_IDs
    of its direct data-flow upstreams in this run). `blocked` (`space`, `name`, `reason`) lists assets held for
    other reasons; their data-flow dependents are held too. Rows are sorted by batch, priority, space, name.
    """
    tiers_of = {kind: index for index, kind in enumerate(priority)}
    frame = (
        assets.select("space", "name", "kind")
        .unique(["space", "name"], keep="first", maintain_order=True)
        .with_columns(
            id=_ids(),
            priority=pl.col("kind").replace_strict(tiers_of, default=len(priority), return_dtype=pl.Int32),
        )
    )
    deps = run_dependencies(frame, edges)
    graph: nx.DiGraph = nx.DiGraph()
    graph.add_nodes_from(frame["id"].to_list())
    graph.add_edges_from(deps.iter_rows())
    blocked_reasons: dict[str, str] = {}
    if blocked is not None and blocked.height:
        blocked_reasons = dict(
            blocked.select(_ids().alias("id"), pl.col("reason").cast(pl.Utf8).fill_null("held")).iter_rows()
        )
    cycles, order = _cycles(graph)
    held = _held(graph, cycles, blocked_reasons)
    batches = _schedule(
        graph, order, dict(zip(frame["id"].to_list(), frame["priority"].to_list(), strict=True))
    )
    upstreams = (
        deps.filter(pl.col("upstream") != pl.col("downstream"))
        .group_by("downstream")
        .agg(pl.col("upstream").sort().alias("upstreams"))
    )
    return (
        frame.join(upstreams, left_on="id", right_on="downstream", how="left")
        .with_columns(
            batch=pl.col("id").replace_strict(batches, return_dtype=pl.Int32),
            held_reason=pl.col("id").replace_strict(held, default=None, return_dtype=pl.Utf8),
            upstreams=pl.col("upstreams").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))),
        )
        .select(list(PLAN_SCHEMA))
        .cast(PLAN_SCHEMA)  # type: ignore[arg-type]
        .sort("batch", "priority", "space", "name")
    )


def cycle_events(plan: pl.DataFrame) -> list[Event]:
    """One error event per dependency cycle in a plan from `plan_batches`, naming every member and listing
    the dependents held with it."""
    reason = pl.col("held_reason")
    ids = pl.concat_str([pl.col("space"), pl.lit("."), pl.col("name")])
    members = (
        plan.filter(reason.str.starts_with(CYCLE_PREFIX))
        .group_by("held_reason", maintain_order=True)
        .agg(ids.sort().alias("members"))
    )
    events = []
    for cycle, cycle_members in members.iter_rows():
        dependents = plan.filter(
            reason.str.starts_with("upstream ") & reason.str.ends_with(f"is held: {cycle}")
        )
        held = sorted(dependents.select(ids).to_series().to_list())
        events.append(
            Event(
                event="dependency_cycle",
                severity="error",
                message=f"{cycle}; these {len(cycle_members)} assets and {len(held)} dependent(s) are held, "
                "the rest of the run proceeds.",
                details={"members": cycle_members, "dependents": held},
                hint=CYCLE_HINT,
            )
        )
    return events
