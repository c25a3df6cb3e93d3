"""Column-level lineage: a graph of columns and traversals over it (type inference along lineage is done by
the CSN reader, `metasync.sources.csn.infer_types_along_lineage`).

Column nodes are the tuples `(ASSET_ID, column)` (no attributes: everything is in the key); edges run from the
upstream column to the downstream column and carry `transform` (`direct`, `renamed`, `measure`, `calculated`).
"""

from __future__ import annotations

import difflib

import networkx as nx
import polars as pl

from metasync.errors import ConfigError
from metasync.graph.lineage import require_count, split_asset_id, unknown_asset_error
from metasync.sources.csn_lineage import TRANSFORM_RANK

ColumnNode = tuple[str, str]


def column_lineage_graph(column_lineage: pl.DataFrame) -> nx.DiGraph:
    """The column graph of a frame shaped like COLUMN_LINEAGE_SCHEMA (one edge per row, upstream → downstream).

    When one pair of columns is linked more than once, the edge keeps the strongest transform.
    """
    rank = pl.col("transform").replace_strict(
        TRANSFORM_RANK, default=len(TRANSFORM_RANK), return_dtype=pl.Int8
    )
    frame = (
        column_lineage.lazy()
        .with_columns(
            asset=pl.concat_str("space", pl.lit("."), "name"),
            upstream_asset=pl.concat_str("upstream_space", pl.lit("."), "upstream_name"),
        )
        .sort(rank, descending=True, maintain_order=True)
        .unique(["asset", "column", "upstream_asset", "upstream_column"], keep="first", maintain_order=True)
        .collect()
    )
    graph: nx.DiGraph = nx.DiGraph()
    graph.add_edges_from(
        ((up_asset, up_column), (asset, column), {"transform": transform})
        for up_asset, up_column, asset, column, transform in frame.select(
            "upstream_asset", "upstream_column", "asset", "column", "transform"
        ).iter_rows()
    )
    return graph


def _frame(graph: nx.DiGraph, distances: dict[ColumnNode, int]) -> pl.DataFrame:
    rows = [(*split_asset_id(asset), column, distance) for (asset, column), distance in distances.items()]
    return pl.DataFrame(
        rows,
        schema={"space": pl.Utf8, "name": pl.Utf8, "column": pl.Utf8, "distance": pl.Int32},
        orient="row",
    ).sort("distance", "space", "name", "column")


def _column_node(graph: nx.DiGraph, asset: str, column: str) -> ColumnNode:
    node = (asset, column)
    if node in graph:
        return node
    assets = {a for a, _ in graph.nodes}
    if asset not in assets:
        raise unknown_asset_error(asset, assets, what="asset with column lineage")
    columns = sorted(c for a, c in graph.nodes if a == asset)
    # Names differing only in case first (asset names are matched that way too), then similar ones.
    close = [c for c in columns if c.lower() == column.lower()] or difflib.get_close_matches(
        column, columns, n=3
    )
    raise ConfigError(
        f"column {column!r} of asset {asset} has no column lineage.",
        hint=f"Did you mean {', '.join(close)}?" if close else None,
    )


def column_upstream(graph: nx.DiGraph, asset: str, column: str, *, depth: int | None = None) -> pl.DataFrame:
    """Every column the given column is computed from, with its distance (1 = read directly)."""
    node = _column_node(graph, asset, column)
    distances = nx.single_source_shortest_path_length(
        graph.reverse(copy=False), node, cutoff=require_count(depth)
    )
    distances.pop(node, None)
    return _frame(graph, distances)


def column_impact(graph: nx.DiGraph, asset: str, column: str, *, depth: int | None = None) -> pl.DataFrame:
    """Every column computed (directly or not) from the given column, with its distance."""
    node = _column_node(graph, asset, column)
    distances = nx.single_source_shortest_path_length(graph, node, cutoff=require_count(depth))
    distances.pop(node, None)
    return _frame(graph, distances)
