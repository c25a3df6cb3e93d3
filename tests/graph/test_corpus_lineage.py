"""Lineage of the real SAP CSN corpus, read by the CSN reader: analytic model, nested joins, measure columns."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import polars as pl
import pytest

import metasync
import metasync.graph as mg
from metasync.config import load_config
from metasync.pipeline import read_source

pytestmark = pytest.mark.corpus
AM = "CORPUS.SAP_SD_RL_SalesQuotationItm_V2"


@pytest.fixture(scope="module")
def config(corpus_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("corpus")
    return {
        "source": {"kind": "csn", "path": str(corpus_path), "space": "CORPUS"},
        "target": {"kind": "local", "path": str(tmp / "catalog")},
        "audit": {"dir": str(tmp / "audit")},
    }


@pytest.fixture(scope="module")
def graph(config: dict) -> nx.DiGraph:
    return metasync.lineage(config)


def test_analytic_model_reaches_fact_tables_and_dimensions(graph: nx.DiGraph) -> None:
    direct = {u: graph.edges[u, AM]["kind"] for u in graph.predecessors(AM)}
    assert direct == {
        "CORPUS.SAP_SD_HL_SalesQuotationItem_V2": "fact_source",
        "CORPUS.SAP_LO_Customer_V2": "dimension_source",
        "CORPUS.SAP.TIME.VIEW_DIMENSION_DAY": "dimension_source",
    }
    upstream = mg.upstream(graph, AM)
    kinds = dict(zip(upstream["asset"], upstream["kind"], strict=True))
    tables = {a for a, k in kinds.items() if k == "table"}
    # The fact chain ends in the delta-capture table, the customer chain in its own, time in M_TIME_DIMENSION.
    assert {
        "CORPUS.SAP_SD_IL_C_SALESDOCUMENTITEMDEX_1_Delta",
        "CORPUS.SAP_LO_IL_I_CUSTOMER_Delta",
        "CORPUS.SAP.TIME.M_TIME_DIMENSION",
    } <= tables
    assert AM in mg.leaves(graph)


def test_view_with_nested_joins_lists_all_sources(graph: nx.DiGraph) -> None:
    four_joins = "CORPUS.3VD_LOCATION_WITH_FLAT_GEO_HIERARCHY"
    assert set(graph.predecessors(four_joins)) == {
        "CORPUS.3VD_LOCATION_COMPANY_INFO_FROM_WORKFORCE",
        "CORPUS.SAP_SFSF_EC_IL_Location_GeoCode_V_V1",
    }
    sub_select_join = "CORPUS.SAP_SD_HL_SalesQuotationItem_V2"
    kinds = {u: graph.edges[u, sub_select_join]["kind"] for u in graph.predecessors(sub_select_join)}
    assert set(kinds) == {"CORPUS.SAP_SD_HL_SalesDocumentItem_V2", "CORPUS.SAP_SD_HL_CnvtedSalesQuotation_V2"}
    assert set(kinds.values()) <= {"from", "join"}


def test_measure_column_lineage_reaches_a_table_column(config: dict, graph: nx.DiGraph) -> None:
    frames = read_source(load_config(config))
    columns = mg.column_lineage_graph(frames.column_lineage)
    upstream = mg.column_upstream(columns, AM, "NetAmount")
    reached = upstream.with_columns(
        kind=pl.concat_str("space", pl.lit("."), "name").replace_strict(dict(graph.nodes(data="kind")))
    )
    tables = reached.filter(pl.col("kind") == "table")
    assert ("SAP_SD_IL_C_SALESDOCUMENTITEMDEX_1_Delta", "NetAmount") in set(
        tables.select("name", "column").rows()
    )
    first = columns.edges[("CORPUS.SAP_SD_HL_SalesQuotationItem_V2", "NetAmount"), (AM, "NetAmount")]
    assert first["transform"] == "measure"


def test_corpus_plan_orders_every_data_flow_edge(config: dict, graph: nx.DiGraph) -> None:
    frames = read_source(load_config(config))
    plan = mg.plan_batches(frames.assets, frames.edges, priority=["analytic_model", "table", "view"])
    batch = {f"{s}.{n}": b for s, n, b in plan.select("space", "name", "batch").iter_rows()}
    flow = mg.dependency_graph(graph)
    checked = [(u, v) for u, v in flow.edges if u in batch and v in batch]
    assert checked and all(batch[u] < batch[v] for u, v in checked)
    assert plan["held_reason"].null_count() == plan.height
    # The analytic model's closure is scheduled before any asset it does not need.
    needed = nx.ancestors(flow, AM) | {AM}
    last_needed = max(batch[a] for a in needed if a in batch)
    assert all(b > last_needed for a, b in batch.items() if a not in needed)
