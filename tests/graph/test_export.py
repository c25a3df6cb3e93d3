"""Exports: GraphML and node-link round trips, Mermaid, DOT, OpenLineage, and the CLI's render()."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import networkx as nx
import polars as pl
import pytest
from graph_frames import asset_frame, edge_frame

import metasync.graph as mg
from metasync.errors import ConfigError


@pytest.fixture
def graph() -> nx.DiGraph:
    assets = asset_frame({"S.T": "table", "S.V": "view", 'S.we"ird<name>': "view"})
    edges = edge_frame(
        [
            ("S.T", "S.V", "from"),
            ("S.T", "S.V", "association"),
            ("S.V", "EXT.D", "association"),
            ("S.T", 'S.we"ird<name>', "join"),
        ]
    )
    return mg.build_lineage_graph(assets, edges)


def test_graphml_round_trip(graph: nx.DiGraph) -> None:
    back = nx.parse_graphml(mg.to_graphml(graph))
    assert set(back.nodes) == set(graph.nodes)
    assert back.nodes["EXT.D"]["kind"] == "external"
    assert back.edges["S.T", "S.V"]["kind"] == "from"
    assert back.edges["S.T", "S.V"]["kinds"] == "association,from"


def test_node_link_json_round_trip(graph: nx.DiGraph) -> None:
    back = nx.node_link_graph(json.loads(mg.to_json(graph)), edges="edges")
    assert nx.utils.graphs_equal(back, graph)


def test_mermaid_and_dot_escape_names(graph: nx.DiGraph) -> None:
    mermaid = mg.to_mermaid(graph)
    assert mermaid.startswith("flowchart LR\n")
    assert "#quot;" in mermaid and '"S.we"' not in mermaid
    assert mermaid.count("-->") == 2 and mermaid.count("-.->") == 1
    dot = mg.to_dot(graph)
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert '"S.we\\"ird<name>"' in dot
    assert '"S.V" -> "EXT.D" [label="association", style=dashed];' in dot


def test_control_characters_in_names_leave_every_export_readable() -> None:
    """Source names may hold them (NUL too); XML cannot carry them even escaped, and DOT stops at NUL."""
    hostile = "S.bell\x07nul\x00esc\x1b"
    graph = mg.build_lineage_graph(
        asset_frame({"S.T": "table", hostile: "view"}), edge_frame([("S.T", hostile, "from")])
    )
    back = nx.parse_graphml(mg.to_graphml(graph))
    assert set(back.nodes) == {"S.T", "S.bell\\x07nul\\x00esc\\x1b"}
    assert back.edges["S.T", "S.bell\\x07nul\\x00esc\\x1b"]["kind"] == "from"
    dot = mg.to_dot(graph)
    assert not [c for c in dot if ord(c) < 32 and c != "\n"] and "bell\\x07nul\\x00esc\\x1b" in dot


def test_mermaid_labels_keep_names_that_look_like_its_entity_codes_apart() -> None:
    graph = mg.build_lineage_graph(asset_frame({'S.A"B': "table", "S.A#quot;B": "table"}), edge_frame([]))
    labels = [
        line.split('["', 1)[1].split("<br/>")[0] for line in mg.to_mermaid(graph).splitlines() if "[" in line
    ]
    assert sorted(labels) == ["S.A#35;quot;B", "S.A#quot;B"]


def test_openlineage_job_events_with_column_facets(graph: nx.DiGraph) -> None:
    lineage = pl.DataFrame(
        {
            "space": ["S"],
            "name": ["V"],
            "column": ["AMT"],
            "upstream_space": ["S"],
            "upstream_name": ["T"],
            "upstream_column": ["AMOUNT"],
            "transform": ["renamed"],
        }
    )
    when = datetime(2026, 1, 2, tzinfo=UTC)
    events = mg.to_openlineage(graph, lineage, event_time=when)
    by_job = {e["job"]["name"]: e for e in events}
    assert set(by_job) == {"S.V", 'S.we"ird<name>'}
    event = by_job["S.V"]
    assert event["eventTime"] == when.isoformat() and event["schemaURL"].endswith("#/$defs/JobEvent")
    assert event["inputs"] == [{"namespace": "datasphere", "name": "S.T"}]
    fields = event["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert fields["AMT"]["inputFields"][0]["field"] == "AMOUNT"
    assert fields["AMT"]["inputFields"][0]["transformations"] == [{"type": "DIRECT", "subtype": "IDENTITY"}]


def test_render_table_limited_to_an_asset(graph: nx.DiGraph) -> None:
    lines = [
        line.split() for line in mg.render(graph, "table", asset="S.V", direction="upstream").splitlines()
    ]
    assert lines == [["EXT.D", "association", "S.V"], ["S.T", "from", "S.V"]]
    whole = mg.render(graph, "table").splitlines()
    assert len(whole) == graph.number_of_edges()


def test_render_table_shows_every_edge_even_against_a_data_flow_or_onto_itself() -> None:
    assets = asset_frame({"S.T": "table", "S.V": "view"})
    edges = edge_frame([("S.T", "S.V", "join"), ("S.V", "S.T", "association"), ("S.T", "S.T", "association")])
    graph = mg.build_lineage_graph(assets, edges)
    lines = [line.split() for line in mg.render(graph, "table").splitlines()]
    assert lines == [["S.T", "association", "S.T"], ["S.T", "association", "S.V"], ["S.T", "join", "S.V"]]


@pytest.mark.parametrize("fmt", ["json", "graphml", "mermaid", "dot", "openlineage"])
def test_render_every_format(graph: nx.DiGraph, fmt: str) -> None:
    text = mg.render(graph, fmt, asset="S.T", direction="downstream", depth=1)
    assert "S.V" in text and text.endswith("\n")


def test_render_rejects_bad_input(graph: nx.DiGraph) -> None:
    with pytest.raises(ConfigError, match="format"):
        mg.render(graph, "png")
    with pytest.raises(ConfigError, match="S.X"):
        mg.render(graph, "table", asset="S.X")
    with pytest.raises(ConfigError, match="depth"):
        mg.render(graph, "table", asset="S.T", depth=-1)
