"""The asset-level lineage graph: one node per asset (ASSET_ID), one edge per related pair, built from frames."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import networkx as nx
import polars as pl

from metasync.errors import ConfigError
from metasync.models import DATA_FLOW_EDGE_KINDS, RELATIONSHIP_EDGE_KINDS

# Strength when several edges join one pair: data flow first, then foreign key / text, then association.
KIND_STRENGTH: dict[str, int] = {
    **{kind: rank for rank, kind in enumerate(DATA_FLOW_EDGE_KINDS)},
    "foreign_key": len(DATA_FLOW_EDGE_KINDS),
    "text": len(DATA_FLOW_EDGE_KINDS) + 1,
    "association": len(DATA_FLOW_EDGE_KINDS) + 2,
}


def asset_id(space: str, name: str) -> str:
    """The ASSET_ID of an asset: `SPACE.NAME`."""
    return f"{space}.{name}"


def split_asset_id(value: str) -> tuple[str, str]:
    """The (space, name) of an ASSET_ID, split at the first dot (space names never contain dots)."""
    space, _, name = value.partition(".")
    return space, name


def unknown_asset_error(asset: str, known: Iterable[str], *, what: str = "asset") -> ConfigError:
    """A ConfigError for an ASSET_ID that is not in the graph, suggesting close matches."""
    by_lower: dict[str, list[str]] = {}
    for name in sorted(known):
        by_lower.setdefault(name.lower(), []).append(name)
    lowered = asset.lower()
    matches = difflib.get_close_matches(lowered, list(by_lower), n=3, cutoff=0.6)
    if not matches:
        matches = [name for name in by_lower if lowered in name][:3]
    close = [original for match in matches for original in by_lower[match]][:3]
    hint = f"Did you mean {', '.join(close)}?" if close else "ASSET_ID is SPACE.NAME, e.g. SALES.ORDERS."
    return ConfigError(f"unknown {what} {asset!r}: it is not in the lineage graph.", hint=hint)


def require_asset(graph: nx.DiGraph, asset: str) -> str:
    """`asset` when it is a node of `graph`; otherwise a ConfigError naming it and suggesting close matches."""
    if asset not in graph:
        raise unknown_asset_error(asset, graph.nodes)
    return asset


def require_count(value: int | None, what: str = "depth") -> int | None:
    """`value` when it is None or 0 or more; otherwise a ConfigError (a negative count of steps or rows would
    silently give an empty or cut result)."""
    if value is not None and value < 0:
        raise ConfigError(f"{what} must be 0 or more, not {value}.")
    return value


def _id_expr(space: str, name: str) -> pl.Expr:
    return pl.concat_str([pl.col(space), pl.lit("."), pl.col(name)])


def collapse_edges(edges: pl.DataFrame) -> pl.DataFrame:
    """One row per (upstream, downstream) pair: `source`, `target` (ASSET_IDs), the strongest `kind`, its `via`,
    the sorted list of all `kinds`, and the endpoints' spaces and names."""
    strength = pl.col("kind").replace_strict(KIND_STRENGTH, default=len(KIND_STRENGTH), return_dtype=pl.Int32)
    return (
        edges.lazy()
        .with_columns(
            source=_id_expr("source_space", "source_name"),
            target=_id_expr("target_space", "target_name"),
            _strength=strength,
        )
        .sort("_strength", "via", nulls_last=True)
        .group_by("source", "target", maintain_order=True)
        .agg(
            pl.col("source_space", "source_name", "target_space", "target_name", "kind", "via").first(),
            pl.col("kind").unique().sort().alias("kinds"),
        )
        .collect()
    )


def build_lineage_graph(assets: pl.DataFrame, edges: pl.DataFrame) -> nx.DiGraph:
    """The lineage graph of `assets` and `edges` (frames shaped like ASSET_SCHEMA and EDGE_SCHEMA).

    Nodes are ASSET_IDs with `space`, `name`, `kind`; endpoints of edges missing from `assets` are added with
    `kind="external"`. Each related pair has one edge carrying the strongest `kind`, its `via`, and `kinds` (all
    kinds seen for the pair). Data-flow edges run upstream → downstream, relationship edges asset → target.
    """
    graph: nx.DiGraph = nx.DiGraph()
    nodes = assets.select(_id_expr("space", "name").alias("id"), "space", "name", "kind").unique(
        "id", keep="first", maintain_order=True
    )
    graph.add_nodes_from(
        (node_id, {"space": space, "name": name, "kind": kind})
        for node_id, space, name, kind in nodes.iter_rows()
    )
    if edges.height == 0:
        return graph
    pairs = collapse_edges(edges)
    endpoints = pl.concat(
        [
            pairs.select(
                pl.col("source").alias("id"),
                pl.col("source_space").alias("space"),
                pl.col("source_name").alias("name"),
            ),
            pairs.select(
                pl.col("target").alias("id"),
                pl.col("target_space").alias("space"),
                pl.col("target_name").alias("name"),
            ),
        ]
    ).unique("id", keep="first", maintain_order=True)
    external = endpoints.join(nodes.select("id"), on="id", how="anti")
    graph.add_nodes_from(
        (node_id, {"space": space, "name": name, "kind": "external"})
        for node_id, space, name in external.iter_rows()
    )
    graph.add_edges_from(
        (source, target, {"kind": kind, "via": via, "kinds": kinds})
        for source, target, kind, via, kinds in pairs.select(
            "source", "target", "kind", "via", "kinds"
        ).iter_rows()
    )
    return graph


def is_data_flow(kind: str | None) -> bool:
    """Whether an edge kind moves data from upstream to downstream (as opposed to a relationship)."""
    return kind in DATA_FLOW_EDGE_KINDS


def data_flow_view(graph: nx.DiGraph) -> nx.DiGraph:
    """A read-only view of `graph` with only its data-flow edges, self-loops excluded."""
    return nx.subgraph_view(
        graph, filter_edge=lambda u, v: u != v and is_data_flow(graph.edges[u, v]["kind"])
    )


def dependency_graph(graph: nx.DiGraph, *, relationships: bool = False) -> nx.DiGraph:
    """A graph whose every edge runs from what an asset depends on to the asset.

    Data-flow edges keep their direction; with `relationships=True` relationship edges (asset → target) are
    added reversed (target → asset), so an association's target counts as upstream of the asset. Self-loops
    never count as dependencies. Edge attributes are kept.
    """
    deps: nx.DiGraph = nx.DiGraph()
    deps.add_nodes_from(graph.nodes(data=True))
    deps.add_edges_from(
        (u, v, data) for u, v, data in graph.edges(data=True) if u != v and is_data_flow(data["kind"])
    )
    if relationships:
        deps.add_edges_from(
            (v, u, data)
            for u, v, data in graph.edges(data=True)
            if u != v and data["kind"] in RELATIONSHIP_EDGE_KINDS and not deps.has_edge(v, u)
        )
    return deps
