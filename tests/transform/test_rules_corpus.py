"""Every rule kind on the real SAP CSN corpus, through the whole plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from param_cells import set_parameters as params

import metasync

pytestmark = pytest.mark.corpus

RULES: list[dict[str, Any]] = [
    {"kind": "scope", "exclude": {"kinds": ["text"]}},
    {"kind": "naming", "target": "database", "template": "{env}_{space}", "case": "lower"},
    {"kind": "naming", "template": "{kind}_{name}", "where": {"kinds": ["view"]}, "max_length": 30},
    {"kind": "type", "source_type": "cds.String", "glue_type": "varchar({length})", "max_length": 255},
    {
        "kind": "business",
        "table_description": "{business_name|name} ({kind})",
        "column_comment": "{business_name|column} [{semantic_role}]",
    },
    {
        "kind": "parameters",
        "table": {"measures": "{measures}"},
        "column": {"semantic_usage": "{semantic_role}"},
    },
    {"kind": "tags", "tags": ["env:{env}", "kind:{kind}"]},
    {"kind": "value_map", "field": "aggregation", "map": {"SUM": "sum"}},
    {"kind": "default", "field": "description", "on": "assets", "value": "no description for {name}"},
]


def plan(corpus: Path, tmp: Path, rules: list[dict[str, Any]]) -> metasync.SyncResult:
    return metasync.plan(
        {
            "source": {"kind": "csn", "path": str(corpus), "space": "CORPUS", "skip_invalid": True},
            "target": {"kind": "local", "path": str(tmp / "catalog")},
            "audit": {"dir": str(tmp / "audit")},
            "environments": {"dev": {}},
            "rules": rules,
        },
        env="dev",
    )


@pytest.fixture(scope="module")
def plans(corpus_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[metasync.SyncResult, ...]:
    return plan(corpus_path, tmp_path_factory.mktemp("plain"), []), plan(
        corpus_path, tmp_path_factory.mktemp("rules"), RULES
    )


def test_scope_drops_text_entities_and_their_columns(plans):
    plain, ruled = plans
    texts = plain.assets.filter(pl.col("kind") == "text")
    assert texts.height > 0
    assert ruled.assets.filter(pl.col("kind") == "text").is_empty()
    assert ruled.assets.height == plain.assets.height - texts.height
    assert ruled.columns.join(texts, on=["space", "name"], how="semi").is_empty()


def test_naming_database_and_view_tables(plans):
    _, ruled = plans
    expected = pl.concat_str([pl.lit("dev_"), pl.col("space").str.to_lowercase()])
    assert "dev_corpus" in ruled.assets["glue_database"].to_list()
    assert ruled.assets.select((pl.col("glue_database") == expected).all()).item()
    views = ruled.assets.filter(pl.col("kind") == "view")
    assert views["glue_table"].str.starts_with("view_").all()
    assert views["glue_table"].str.len_chars().max() <= 30


def test_type_rule_on_real_strings(plans):
    plain, ruled = plans
    strings = ruled.columns.filter((pl.col("source_type") == "cds.String") & pl.col("length").is_not_null())
    short = strings.filter(pl.col("length") <= 255)
    assert short.height > 100
    assert short.select((pl.col("glue_type") == pl.format("varchar({})", "length")).all()).item()
    long = strings.filter(pl.col("length") > 255)
    assert long.height > 0 and (long["glue_type"] == "string").all()
    others = ruled.columns.filter(pl.col("source_type") != "cds.String").select(
        "space", "name", "column", "glue_type"
    )
    assert others.join(plain.columns, on=["space", "name", "column", "glue_type"], how="anti").is_empty()


def test_business_context_text(plans):
    _, ruled = plans
    suffix = pl.concat_str([pl.lit("("), "kind", pl.lit(")")])
    assert ruled.assets.select(pl.col("glue_description").str.ends_with(suffix).all()).item()
    measures = ruled.columns.filter(pl.col("semantic_role") == "measure")
    assert measures.height > 0 and measures["comment"].str.ends_with("[measure]").all()


def test_parameters_tags_value_map_and_default(plans):
    _, ruled = plans
    model = ruled.assets.filter(pl.col("kind") == "analytic_model").row(0, named=True)
    model_columns = ruled.columns.filter(
        (pl.col("space") == model["space"]) & (pl.col("name") == model["name"])
    )
    expected = ", ".join(model_columns.filter(pl.col("semantic_role") == "measure").sort("ordinal")["column"])
    table_params = params(model["parameters"])
    assert expected and table_params["measures"] == expected
    assert table_params["tags"] == "env:dev,kind:analytic_model"
    assert (
        params(model_columns.filter(pl.col("semantic_role") == "measure")["parameters"][0])["semantic_usage"]
        == "measure"
    )
    assert "SUM" not in ruled.columns["aggregation"].drop_nulls().to_list()
    assert "sum" in ruled.columns["aggregation"].to_list()
    assert ruled.assets["description"].null_count() == 0


def test_rule_order_matters_on_the_corpus(corpus_path, tmp_path):
    upper_then_prefix = [
        {"kind": "naming", "template": "{name}", "case": "upper", "where": {"kinds": ["fact"]}},
        {"kind": "naming", "prefix": "f_", "where": {"kinds": ["fact"]}, "max_length": 20},
    ]
    prefix_then_upper = list(reversed(upper_then_prefix))
    a = plan(corpus_path, tmp_path / "a", upper_then_prefix).assets.filter(pl.col("kind") == "fact")
    b = plan(corpus_path, tmp_path / "b", prefix_then_upper).assets.filter(pl.col("kind") == "fact")
    assert a["glue_table"].str.starts_with("f_").all()
    assert a["glue_table"].to_list() != b["glue_table"].to_list()
