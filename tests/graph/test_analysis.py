"""Analysis API over hand-built graphs: up/downstream, impact, paths, roots, leaves, orphans, rankings, spaces."""

from __future__ import annotations

import networkx as nx
import pytest
from graph_frames import asset_frame, edge_frame

import metasync.graph as mg
from metasync.errors import ConfigError


@pytest.fixture
def graph() -> nx.DiGraph:
    #   RAW -> CLEAN -> FACT -> MODEL <- DIM (dimension_source);  FACT -assoc-> DIM;  DIM -text-> DIM_T
    #   LONELY has no edges;  OTHER.SRC -> OTHER.V (another space)
    assets = asset_frame(
        {
            "S.RAW": "table",
            "S.CLEAN": "view",
            "S.FACT": "fact",
            "S.DIM": "dimension",
            "S.DIM_T": "text",
            "S.MODEL": "analytic_model",
            "S.LONELY": "table",
            "O.SRC": "table",
            "O.V": "view",
        }
    )
    edges = edge_frame(
        [
            ("S.RAW", "S.CLEAN", "from"),
            ("S.CLEAN", "S.FACT", "from"),
            ("S.FACT", "S.MODEL", "fact_source"),
            ("S.DIM", "S.MODEL", "dimension_source"),
            ("S.FACT", "S.DIM", "foreign_key"),
            ("S.DIM", "S.DIM_T", "text"),
            ("O.SRC", "O.V", "from"),
            ("O.V", "S.CLEAN", "join"),
        ]
    )
    return mg.build_lineage_graph(assets, edges)


def test_upstream_with_depth(graph: nx.DiGraph) -> None:
    full = mg.upstream(graph, "S.MODEL")
    assert dict(zip(full["asset"], full["distance"], strict=True)) == {
        "S.FACT": 1,
        "S.DIM": 1,
        "S.CLEAN": 2,
        "S.RAW": 3,
        "O.V": 3,
        "O.SRC": 4,
    }
    assert set(mg.upstream(graph, "S.MODEL", depth=1)["asset"]) == {"S.FACT", "S.DIM"}
    with_rel = mg.upstream(graph, "S.MODEL", depth=2, relationships=True)
    assert "S.DIM_T" in set(with_rel["asset"])


def test_downstream_and_impact(graph: nx.DiGraph) -> None:
    assert set(mg.downstream(graph, "S.RAW")["asset"]) == {"S.CLEAN", "S.FACT", "S.MODEL"}
    impact = mg.impact(graph, "S.DIM_T")
    assert dict(zip(impact["asset"], impact["via"], strict=True)) == {
        "S.DIM": "association",
        "S.FACT": "association",
        "S.MODEL": "association",
    }
    impact = mg.impact(graph, "S.CLEAN")
    assert set(impact.filter(impact["via"] == "data_flow")["asset"]) == {"S.FACT", "S.MODEL"}
    assert set(impact.filter(impact["via"] == "association")["asset"]) == set()


def test_paths_roots_leaves_orphans(graph: nx.DiGraph) -> None:
    assert mg.paths(graph, "S.RAW", "S.MODEL") == [["S.RAW", "S.CLEAN", "S.FACT", "S.MODEL"]]
    assert mg.paths(graph, "S.MODEL", "S.RAW") == []
    assert mg.roots(graph) == ["O.SRC", "S.DIM", "S.RAW"]
    assert mg.leaves(graph) == ["S.MODEL"]
    assert mg.orphans(graph) == ["S.LONELY"]


def test_most_depended_on(graph: nx.DiGraph) -> None:
    top = mg.most_depended_on(graph, top=2)
    assert top["asset"].to_list() == ["O.SRC", "O.V"]
    assert top["transitive"].to_list() == [4, 3]


def test_subgraph_by_space(graph: nx.DiGraph) -> None:
    other = mg.subgraph_by_space(graph, "O")
    assert set(other.nodes) == {"O.SRC", "O.V"} and list(other.edges) == [("O.SRC", "O.V")]
    assert "S.CLEAN" in mg.subgraph_by_space(graph, "O", neighbours=True)


def test_neighbourhood_directions(graph: nx.DiGraph) -> None:
    up = mg.neighbourhood(graph, "S.FACT", direction="upstream", relationships=False)
    assert set(up.nodes) == {"S.FACT", "S.CLEAN", "S.RAW", "O.V", "O.SRC"}
    down = mg.neighbourhood(graph, "S.FACT", direction="downstream", depth=1, relationships=False)
    assert set(down.nodes) == {"S.FACT", "S.MODEL"}
    with pytest.raises(ConfigError, match="direction"):
        mg.neighbourhood(graph, "S.FACT", direction="sideways")


def test_unknown_asset_names_it_and_suggests(graph: nx.DiGraph) -> None:
    with pytest.raises(ConfigError) as info:
        mg.upstream(graph, "s.modle")
    assert "'s.modle'" in str(info.value) and "S.MODEL" in str(info.value)


def test_negative_counts_are_refused(graph: nx.DiGraph) -> None:
    """They would silently give an empty or cut result."""
    for call in (
        lambda: mg.upstream(graph, "S.MODEL", depth=-1),
        lambda: mg.downstream(graph, "S.RAW", depth=-2),
        lambda: mg.neighbourhood(graph, "S.MODEL", depth=-1),
    ):
        with pytest.raises(ConfigError, match="depth must be 0 or more"):
            call()
    with pytest.raises(ConfigError, match="top must be 0 or more, not -1"):
        mg.most_depended_on(graph, top=-1)
