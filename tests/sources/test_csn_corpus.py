"""Every file of the SAP CSN corpus is read; counts are derived independently from the raw JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from metasync.config import CsnSourceConfig
from metasync.graph.lineage import build_lineage_graph
from metasync.sources.csn import CsnSource

pytestmark = pytest.mark.corpus


def _is_association(element: dict[str, Any], definitions: dict[str, Any]) -> bool:
    """Follow `type` names through type definitions until a builtin; independent of the reader's resolver."""
    seen = 0
    current = element
    while seen < 50:
        type_ = current.get("type")
        if not isinstance(type_, str):
            return False
        if type_ in ("cds.Association", "cds.Composition"):
            return True
        if type_.startswith("cds."):
            return False
        nxt = definitions.get(type_)
        if not isinstance(nxt, dict):
            return False
        current, seen = nxt, seen + 1
    return False


def expected_counts(path: Path) -> tuple[int, int]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    definitions = raw.get("definitions") if isinstance(raw, dict) else None
    if not isinstance(definitions, dict):
        return 0, 0
    entities = [d for d in definitions.values() if isinstance(d, dict) and d.get("kind") == "entity"]
    columns = sum(
        1
        for entity in entities
        for element in (entity.get("elements") or {}).values()
        if isinstance(element, dict) and not _is_association(element, definitions)
    )
    return len(entities), columns


def corpus_files() -> list[str]:
    # By path: `import conftest` gives whichever conftest pytest loaded last (tests/transform has one too).
    spec = importlib.util.spec_from_file_location(
        "_tests_conftest", Path(__file__).parents[1] / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    top = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(top)
    root = top.find_corpus()
    return sorted(p.name for p in root.glob("*.json")) if root else []


@pytest.mark.parametrize("filename", corpus_files() or ["<corpus absent>"])
def test_each_corpus_file_reads_with_counts_from_raw_json(corpus_path: Path, filename: str) -> None:
    path = corpus_path / filename
    frames = CsnSource(CsnSourceConfig(path=path, space="CORPUS")).read()
    assets, columns = expected_counts(path)
    assert frames.assets.height == assets
    assert frames.columns.height == columns
    # every column has a Glue-mappable type after inference
    assert frames.columns["source_type"].null_count() == 0
    if assets:
        assert set(frames.columns.select("space", "name").unique().rows()) <= set(
            frames.assets.select("space", "name").rows()
        )


def test_non_csn_files_are_reported_not_crashed_on(corpus_path: Path) -> None:
    for name, event in (("i18n.json", "i18n_bundle"), ("1_create_first_space.json", "not_csn")):
        frames = CsnSource(CsnSourceConfig(path=corpus_path / name, space="X")).read()
        assert frames.assets.is_empty()
        assert [e.event for e in frames.events] == [event]
        assert not frames.incomplete


def test_cap_labels_resolve_from_the_i18n_bundle_beside_the_file(corpus_path: Path, tmp_path: Path) -> None:
    # csn.json and i18n.json lie in one folder: the bundle resolves {i18n>...} titles.
    space = tmp_path / "CAP"
    space.mkdir()
    for name in ("csn.json", "i18n.json"):
        (space / name).symlink_to(corpus_path / name)
    frames = CsnSource(CsnSourceConfig(path=tmp_path)).read()
    books = frames.columns.filter(
        (pl.col("name") == "sap.capire.bookshop.Books") & (pl.col("column") == "createdBy")
    )
    bundle = json.loads((corpus_path / "i18n.json").read_text(encoding="utf-8"))
    assert books["business_name"].item() == bundle["en"]["CreatedBy"]
    assert not frames.columns["business_name"].drop_nulls().str.contains(r"^\{i18n>").any()
    # the Currency type is a managed association: an edge, not a column
    assert books.height == 1
    assert frames.columns.filter(
        (pl.col("name") == "sap.capire.bookshop.Books") & (pl.col("column") == "currency")
    ).is_empty()
    assert frames.edges.filter(
        (pl.col("source_name") == "sap.capire.bookshop.Books") & (pl.col("via") == "currency")
    )["target_name"].to_list() == ["sap.common.Currencies"]


def test_abap_type_definitions_are_resolved(corpus_path: Path) -> None:
    frames = CsnSource(CsnSourceConfig(path=corpus_path / "_CostCenter.json", space="S4")).read()
    raw = json.loads((corpus_path / "_CostCenter.json").read_text(encoding="utf-8"))
    kokrs = raw["definitions"]["KOKRS"]
    row = frames.columns.filter(pl.col("column") == "ControllingArea").row(0, named=True)
    assert row["source_type"] == kokrs["type"]
    assert row["length"] == kokrs.get("length")
    assert row["type_origin"] == "type"
    # without a bundle, {i18n>...} labels stay as written rather than being lost
    assert row["business_name"].startswith("{i18n>")


def test_space_contexts_give_cross_space_assets_their_space(corpus_path: Path) -> None:
    frames = CsnSource(
        CsnSourceConfig(path=corpus_path / "CSN_SalesAnalysis_Workshop_COEKOM.json", space="SALES")
    ).read()
    tcurx = frames.assets.filter(pl.col("name") == "SAP.CURRENCY.TABLE.TCURX")
    assert tcurx.select("space", "kind").row(0) == ("PA143793U00", "table")
    view_edges = frames.edges.filter(pl.col("target_name") == "SAP.CURRENCY.VIEW.TCURX")
    assert view_edges.select("source_space", "source_name", "kind").row(0) == (
        "PA143793U00",
        "SAP.CURRENCY.TABLE.TCURX",
        "from",
    )


def test_analytic_model_types_come_from_its_fact_source(corpus_path: Path) -> None:
    frames = CsnSource(
        CsnSourceConfig(path=corpus_path / "CSN_SalesAnalysis_Workshop_COEKOM.json", space="SALES")
    ).read()
    model = "SAP_SD_RL_SalesQuotationItm_V2"
    assert frames.assets.filter(pl.col("name") == model)["kind"].item() == "analytic_model"
    cols = frames.columns.filter(pl.col("name") == model)
    fact = frames.columns.filter(pl.col("name") == "SAP_SD_HL_SalesQuotationItem_V2")
    joined = cols.filter(pl.col("type_origin") == "lineage").join(
        fact.select("column", pl.col("source_type").alias("fact_type")), on="column", how="inner"
    )
    assert joined.height > 100
    assert (joined["source_type"] == joined["fact_type"]).all()
    # restricted measures built on a calculated measure (a difference of two amounts) are numeric too
    restricted = cols.filter(pl.col("column") == "OpenSlsQuotationNetAmnt_CC").row(0, named=True)
    assert (restricted["source_type"], restricted["precision"], restricted["scale"]) in {
        ("cds.Decimal", 17, 2),
        ("cds.Decimal", 22, 2),
        ("cds.Double", None, None),
    }
    assert cols.filter(pl.col("type_origin") == "fallback").is_empty()
    assert not [e for e in frames.events if e.event == "type_fallback" and e.name == model]
    # fact and dimension sources come from the business layer
    graph = build_lineage_graph(frames.assets, frames.edges)
    kinds = {graph.edges[u, f"SALES.{model}"]["kind"] for u in graph.predecessors(f"SALES.{model}")}
    assert {"fact_source", "dimension_source"} <= kinds


def test_identical_shared_definitions_from_several_files_count_once(
    corpus_path: Path, tmp_path: Path
) -> None:
    space = tmp_path / "HR"
    space.mkdir()
    names = ["DP Headcount Top Management.json", "DP Headcount for Employee.json"]
    for name in names:
        (space / name).symlink_to(corpus_path / name)
    frames = CsnSource(CsnSourceConfig(path=tmp_path)).read()
    separately = [CsnSource(CsnSourceConfig(path=corpus_path / n, space="HR")).read().assets for n in names]
    union = pl.concat(separately).select("space", "name").unique()
    assert frames.assets.height == union.height
    assert frames.assets.select(pl.col("conflict_files").list.len().sum()).item() == 0
