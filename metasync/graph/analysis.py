"""Questions users ask of the lineage graph: what feeds this, what breaks if it changes, how are two assets linked.

Every function takes the graph from `build_lineage_graph` (or `metasync.lineage`). Traversals follow data-flow
edges; with `relationships=True` they also follow relationship edges, taking an association's target as
upstream of the asset that holds the association. Tables come back as polars frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import networkx as nx
import polars as pl

from metasync.errors import ConfigError
from metasync.graph.lineage import dependency_graph, is_data_flow, require_asset, require_count
from metasync.models import RELATIONSHIP_EDGE_KINDS

NEIGHBOUR_SCHEMA = {
    "asset": pl.Utf8,
    "space": pl.Utf8,
    "name": pl.Utf8,
    "kind": pl.Utf8,
    "distance": pl.Int32,
}


def _neighbours(graph: nx.DiGraph, distances: dict[str, int]) -> pl.DataFrame:
    rows = [
        (node, graph.nodes[node]["space"], graph.nodes[node]["name"], graph.nodes[node]["kind"], distance)
        for node, distance in distances.items()
    ]
    return pl.DataFrame(rows, schema=NEIGHBOUR_SCHEMA, orient="row").sort("distance", "asset")


def _step(graph: nx.DiGraph, *, reverse: bool, relationships: bool) -> Callable[[str], Iterator[str]]:
    """The neighbours one dependency step upstream (`reverse`) or downstream of a node."""
    pred, succ = graph.pred, graph.succ
    flow_next, rel_next = (pred, succ) if reverse else (succ, pred)

    def neighbours(node: str) -> Iterator[str]:
        for other, data in flow_next[node].items():
            if other != node and is_data_flow(data["kind"]):
                yield other
        if relationships:
            for other, data in rel_next[node].items():
                if other != node and data["kind"] in RELATIONSHIP_EDGE_KINDS:
                    yield other

    return neighbours


def _reach(
    graph: nx.DiGraph, asset: str, *, reverse: bool, depth: int | None, relationships: bool
) -> dict[str, int]:
    distances = {require_asset(graph, asset): 0}
    step = _step(graph, reverse=reverse, relationships=relationships)
    for u, v in nx.generic_bfs_edges(graph, asset, neighbors=step, depth_limit=require_count(depth)):
        distances[v] = distances[u] + 1
    distances.pop(asset)
    return distances


def upstream(
    graph: nx.DiGraph, asset: str, *, depth: int | None = None, relationships: bool = False
) -> pl.DataFrame:
    """Assets `asset` is built from, up to `depth` steps (None: all), with their distance (1 = direct)."""
    return _neighbours(graph, _reach(graph, asset, reverse=True, depth=depth, relationships=relationships))


def downstream(
    graph: nx.DiGraph, asset: str, *, depth: int | None = None, relationships: bool = False
) -> pl.DataFrame:
    """Assets built from `asset`, up to `depth` steps (None: all), with their distance (1 = direct)."""
    return _neighbours(graph, _reach(graph, asset, reverse=False, depth=depth, relationships=relationships))


def impact(graph: nx.DiGraph, asset: str) -> pl.DataFrame:
    """What may break if `asset` changes: everything reached from it, step by step, over data-flow edges (its
    dependents) and over associations followed back to the asset holding them (an asset whose association
    points at a reached asset), so also the dependents of such an asset and what associates to them. The
    closure errs on the side of listing too much: an association chain may break at any link. Column `via` is
    `data_flow` for the assets reached by data flow alone, `association` for the others."""
    flow = _reach(graph, asset, reverse=False, depth=None, relationships=False)
    related = _reach(graph, asset, reverse=False, depth=None, relationships=True)
    frame = _neighbours(graph, related)
    return frame.with_columns(
        via=pl.when(pl.col("asset").is_in(list(flow)))
        .then(pl.lit("data_flow"))
        .otherwise(pl.lit("association"))
    )


def paths(
    graph: nx.DiGraph, source: str, target: str, *, cutoff: int | None = None, relationships: bool = False
) -> list[list[str]]:
    """Every simple dependency path from `source` (upstream) to `target` (downstream), shortest first."""
    deps = dependency_graph(graph, relationships=relationships)
    found = nx.all_simple_paths(
        deps, require_asset(graph, source), require_asset(graph, target), cutoff=cutoff
    )
    return sorted(found, key=lambda path: (len(path), path))


def roots(graph: nx.DiGraph) -> list[str]:
    """Assets that feed others but are fed by none (the sources of the data flow)."""
    deps = dependency_graph(graph)
    return sorted(n for n in deps if deps.in_degree(n) == 0 and deps.out_degree(n) > 0)


def leaves(graph: nx.DiGraph) -> list[str]:
    """Assets fed by others that feed none (the ends of the data flow, e.g. analytic models)."""
    deps = dependency_graph(graph)
    return sorted(n for n in deps if deps.out_degree(n) == 0 and deps.in_degree(n) > 0)


def orphans(graph: nx.DiGraph) -> list[str]:
    """Assets with no edge of any kind to another asset."""
    return sorted(n for n in graph if all(other == n for other in nx.all_neighbors(graph, n)))


def most_depended_on(graph: nx.DiGraph, *, top: int = 10, relationships: bool = False) -> pl.DataFrame:
    """The assets the most others depend on: `direct` dependents and all (`transitive`) dependents."""
    require_count(top, "top")
    deps = dependency_graph(graph, relationships=relationships)
    counts = [
        (node, deps.nodes[node]["kind"], deps.out_degree(node), len(nx.descendants(deps, node)))
        for node in deps
        if deps.out_degree(node)
    ]
    schema = {"asset": pl.Utf8, "kind": pl.Utf8, "direct": pl.Int32, "transitive": pl.Int32}
    return (
        pl.DataFrame(counts, schema=schema, orient="row")
        .sort(["transitive", "direct", "asset"], descending=[True, True, False])
        .head(top)
    )


def subgraph_by_space(graph: nx.DiGraph, *spaces: str, neighbours: bool = False) -> nx.DiGraph:
    """A copy of the part of `graph` whose assets belong to `spaces`; with `neighbours=True` also the assets
    directly linked to them (of any space)."""
    wanted = {n for n, space in graph.nodes(data="space") if space in spaces}
    if neighbours:
        wanted |= {other for n in list(wanted) for other in nx.all_neighbors(graph, n)}
    return graph.subgraph(wanted).copy()


def neighbourhood(
    graph: nx.DiGraph,
    asset: str,
    *,
    direction: str = "both",
    depth: int | None = None,
    relationships: bool = True,
) -> nx.DiGraph:
    """The subgraph of `asset` and what lies upstream, downstream or both of it, up to `depth` steps."""
    if direction not in ("upstream", "downstream", "both"):
        raise ConfigError(f"unknown direction {direction!r}.", hint="Use upstream, downstream or both.")
    keep = {require_asset(graph, asset)}
    if direction in ("upstream", "both"):
        keep |= set(_reach(graph, asset, reverse=True, depth=depth, relationships=relationships))
    if direction in ("downstream", "both"):
        keep |= set(_reach(graph, asset, reverse=False, depth=depth, relationships=relationships))
    return graph.subgraph(keep).copy()
