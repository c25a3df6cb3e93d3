"""build_lineage_graph: nodes, external endpoints, one edge per pair with the strongest kind."""

from __future__ import annotations

import networkx as nx
import polars as pl
from graph_frames import asset_frame, edge_frame

from metasync.graph import build_lineage_graph, data_flow_view, dependency_graph


def test_nodes_carry_space_name_kind_and_externals_are_marked() -> None:
    assets = asset_frame({"S.T": "table", "S.V": "view"})
    edges = edge_frame([("S.T", "S.V", "from"), ("OTHER.X", "S.V", "join"), ("S.V", "S.DIM", "association")])
    graph = build_lineage_graph(assets, edges)
    assert set(graph.nodes) == {"S.T", "S.V", "OTHER.X", "S.DIM"}
    assert graph.nodes["S.T"] == {"space": "S", "name": "T", "kind": "table"}
    assert graph.nodes["OTHER.X"] == {"space": "OTHER", "name": "X", "kind": "external"}
    assert graph.nodes["S.DIM"]["kind"] == "external"
    assert all("kind" in data for _, _, data in graph.edges(data=True))


def test_names_with_dots_split_at_the_first_dot() -> None:
    assets = asset_frame({"S.SAP.TIME.DAY": "dimension"})
    graph = build_lineage_graph(assets, edge_frame([("S.SAP.TIME.DAY", "S.SAP.TIME.T", "text")]))
    assert graph.nodes["S.SAP.TIME.DAY"]["name"] == "SAP.TIME.DAY"
    assert graph.nodes["S.SAP.TIME.T"] == {"space": "S", "name": "SAP.TIME.T", "kind": "external"}


def test_parallel_edges_keep_the_strongest_kind_and_list_all() -> None:
    assets = asset_frame({"S.A": "table", "S.B": "view", "S.C": "view"})
    edges = edge_frame(
        [
            ("S.A", "S.B", "association"),
            ("S.A", "S.B", "join"),
            ("S.A", "S.B", "foreign_key"),
            ("S.B", "S.C", "association"),
            ("S.B", "S.C", "text"),
        ]
    )
    graph = build_lineage_graph(assets, edges)
    assert graph.number_of_edges() == 2
    assert graph.edges["S.A", "S.B"]["kind"] == "join"
    assert graph.edges["S.A", "S.B"]["kinds"] == ["association", "foreign_key", "join"]
    assert graph.edges["S.B", "S.C"]["kind"] == "text"


def test_association_self_loop_is_kept_but_is_no_dependency() -> None:
    assets = asset_frame({"S.EMP": "dimension", "S.T": "table"})
    edges = edge_frame([("S.EMP", "S.EMP", "association"), ("S.T", "S.EMP", "from")])
    graph = build_lineage_graph(assets, edges)
    assert graph.has_edge("S.EMP", "S.EMP")
    assert graph.edges["S.EMP", "S.EMP"]["kind"] == "association"
    assert not data_flow_view(graph).has_edge("S.EMP", "S.EMP")
    deps = dependency_graph(graph, relationships=True)
    assert nx.is_directed_acyclic_graph(deps)
    assert list(deps.edges) == [("S.T", "S.EMP")]


def test_dependency_graph_reverses_relationships_only_on_request() -> None:
    assets = asset_frame({"S.FACT": "fact", "S.DIM": "dimension", "S.SRC": "table"})
    edges = edge_frame([("S.SRC", "S.FACT", "from"), ("S.FACT", "S.DIM", "foreign_key")])
    graph = build_lineage_graph(assets, edges)
    assert set(dependency_graph(graph).edges) == {("S.SRC", "S.FACT")}
    assert set(dependency_graph(graph, relationships=True).edges) == {
        ("S.SRC", "S.FACT"),
        ("S.DIM", "S.FACT"),
    }


def test_empty_frames_give_an_empty_graph() -> None:
    graph = build_lineage_graph(asset_frame({}), edge_frame([]))
    assert graph.number_of_nodes() == 0


def test_duplicate_asset_rows_give_one_node() -> None:
    assets = pl.concat([asset_frame({"S.A": "table"}), asset_frame({"S.A": "table"})])
    assert build_lineage_graph(assets, edge_frame([])).number_of_nodes() == 1
