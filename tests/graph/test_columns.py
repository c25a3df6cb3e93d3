"""Column lineage graph and its traversals."""

from __future__ import annotations

import polars as pl
import pytest

import metasync.graph as mg
from metasync.errors import ConfigError


@pytest.fixture
def lineage() -> pl.DataFrame:
    rows = [
        ("S", "V", "NET", "S", "T", "NET_AMOUNT", "renamed"),
        ("S", "V", "GROSS", "S", "T", "NET_AMOUNT", "calculated"),
        ("S", "V", "GROSS", "S", "T", "TAX", "calculated"),
        ("S", "AM", "Net", "S", "V", "NET", "measure"),
        ("S", "AM", "Net", "S", "V", "NET", "direct"),
    ]
    columns = ["space", "name", "column", "upstream_space", "upstream_name", "upstream_column", "transform"]
    return pl.DataFrame(rows, schema=columns, orient="row")


def test_graph_keys_and_strongest_transform(lineage: pl.DataFrame) -> None:
    graph = mg.column_lineage_graph(lineage)
    assert ("S.T", "TAX") in graph and graph.number_of_nodes() == 5
    assert graph.edges[("S.V", "NET"), ("S.AM", "Net")]["transform"] == "measure"
    assert graph.number_of_edges() == 4


def test_column_upstream_and_impact(lineage: pl.DataFrame) -> None:
    graph = mg.column_lineage_graph(lineage)
    up = mg.column_upstream(graph, "S.AM", "Net")
    assert up.select("name", "column", "distance").rows() == [("V", "NET", 1), ("T", "NET_AMOUNT", 2)]
    impact = mg.column_impact(graph, "S.T", "NET_AMOUNT")
    assert set(impact.select("name", "column").rows()) == {("V", "NET"), ("V", "GROSS"), ("AM", "Net")}
    assert mg.column_impact(graph, "S.T", "TAX", depth=1).select("column").to_series().to_list() == ["GROSS"]


def test_unknown_column_or_asset(lineage: pl.DataFrame) -> None:
    graph = mg.column_lineage_graph(lineage)
    with pytest.raises(ConfigError, match="GROS'.*Did you mean GROSS"):
        mg.column_upstream(graph, "S.V", "GROS")
    with pytest.raises(ConfigError, match="S.W"):
        mg.column_upstream(graph, "S.W", "GROSS")


def test_a_column_named_in_another_case_is_suggested(lineage: pl.DataFrame) -> None:
    graph = mg.column_lineage_graph(lineage)
    with pytest.raises(ConfigError, match="'net'.*Did you mean NET\\?"):
        mg.column_upstream(graph, "S.V", "net")


@pytest.mark.parametrize("lookup", [mg.column_upstream, mg.column_impact])
def test_a_negative_depth_is_refused(lineage: pl.DataFrame, lookup) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="depth must be 0 or more, not -1"):
        lookup(mg.column_lineage_graph(lineage), "S.V", "NET", depth=-1)
