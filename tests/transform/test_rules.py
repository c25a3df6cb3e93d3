"""Each rule kind on small frames; order; load-time failures naming the rule."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from param_cells import parameters_series
from param_cells import set_parameters as params
from pydantic import TypeAdapter, ValidationError

from metasync.errors import ConfigError, RuleError
from metasync.transform.mapping import resolve_names
from metasync.validate.glue_limits import find_violations
from metasync.transform.rules import Rule, compile_rules, glob_to_regex, truncate_with_hash

RULES = TypeAdapter(list[Rule])


def run(
    rules: list[dict[str, Any]], frames: tuple[pl.DataFrame, pl.DataFrame], env: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    compiled = compile_rules(RULES.validate_python(rules), env=env)
    assets, columns = compiled(frames[0].lazy(), frames[1].lazy())
    return assets.collect(), columns.collect()


def col_of(frame: pl.DataFrame, name: str, field: str, column: str | None = None) -> Any:
    rows = frame.filter(pl.col("name") == name)
    if column is not None:
        rows = rows.filter(pl.col("column") == column)
    assert rows.height == 1
    return rows[field][0]


# ------------------------------------------------------------------ scope
def test_scope_include_and_exclude_drop_assets_and_their_columns(sales_frames):
    assets, columns = run(
        [{"kind": "scope", "include": {"spaces": ["SALES"]}, "exclude": {"name_glob": "V_*"}}], sales_frames
    )
    assert sorted(assets["name"]) == ["AM_Revenue", "Orders"]
    assert set(columns["name"]) == {"AM_Revenue", "Orders"}
    assert columns.height == 6


def test_scope_where_limits_the_rule_and_keeps_everything_outside_it(sales_frames):
    everything = sorted(run([], sales_frames)[0]["name"])
    assets, columns = run(
        [{"kind": "scope", "where": {"spaces": ["SALES"]}, "exclude": {"name_glob": "V_*"}}], sales_frames
    )
    outside = sorted(run([{"kind": "scope", "include": {"spaces": ["HR"]}}], sales_frames)[0]["name"])
    assert outside and sorted(assets["name"]) == sorted(["AM_Revenue", "Orders", *outside])
    assert sorted(assets["name"]) == sorted(n for n in everything if not n.startswith("V_") or n in outside)
    all_columns = run([], sales_frames)[1]
    assert columns.height == all_columns.filter(pl.col("name").is_in(assets["name"].implode())).height


def test_scope_by_kind_and_modeling_pattern(sales_frames):
    assets, _ = run(
        [
            {
                "kind": "scope",
                "include": {
                    "kinds": ["analytic_model", "dimension"],
                    "modeling_patterns": ["ANALYTICAL_CUBE"],
                },
            }
        ],
        sales_frames,
    )
    assert assets["name"].to_list() == ["AM_Revenue"]


def test_glob_matches_dots_and_is_anchored():
    assert pl.Series(["SAP.TIME.X", "xSAP.TIME"]).str.contains(glob_to_regex("SAP.*")).to_list() == [
        True,
        False,
    ]
    assert pl.Series(["a.b", "axb"]).str.contains(glob_to_regex("a.b")).to_list() == [True, False]


# ------------------------------------------------------------------ naming
def test_naming_templates_for_database_and_table_use_env_and_kind(sales_frames):
    assets, _ = run(
        [
            {"kind": "naming", "target": "database", "template": "{env}_{space}", "case": "lower"},
            {"kind": "naming", "target": "table", "template": "{kind}__{name}", "where": {"kinds": ["view"]}},
        ],
        sales_frames,
        env="dev",
    )
    assert col_of(assets, "Orders", "glue_database") == "dev_sales"
    assert col_of(assets, "SAP.TIME.DIM_DAY", "glue_database") == "dev_hr"
    assert col_of(assets, "V_Orders", "glue_table") == "view__V_Orders"
    assert col_of(assets, "Orders", "glue_table") == "orders"  # out of scope: unchanged


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"template": "{kind}_{space}"}, "the template uses {kind}"),
        ({"template": "{space}_{name}"}, "the template uses {name}"),
        ({"prefix": "x_", "where": {"kinds": ["view"]}}, "`where` selects assets by more than their space"),
    ],
)
def test_a_database_name_must_not_differ_within_a_space(rule, problem):
    with pytest.raises(RuleError, match=r"rules\[0\] \(naming\): a database name must be the same") as caught:
        compile_rules(RULES.validate_python([{"kind": "naming", "target": "database", **rule}]))
    assert problem in str(caught.value)
    compile_rules(
        RULES.validate_python([{"kind": "naming", "target": "database", "where": {"spaces": ["S"]}}])
    )


def test_a_space_split_over_databases_by_other_means_is_an_error(sales_frames):
    assets, _ = run([], sales_frames)
    assets = assets.with_columns(
        glue_database=pl.when(pl.col("name") == "Orders").then(pl.lit("other")).otherwise("glue_database")
    )
    with pytest.raises(ConfigError, match=r"give space SALES more than one Glue database \(other, sales\)"):
        resolve_names(assets, pl.DataFrame(schema={"space": pl.Utf8}))


def test_naming_regex_replace_prefix_suffix_case(sales_frames):
    assets, _ = run(
        [
            {
                "kind": "naming",
                "template": "{name}",
                "replace": [
                    {"pattern": r"^SAP\.TIME\.", "with": "time_"},
                    {"pattern": r"^(V)_(\w+)$", "with": "${2}_$1"},
                ],
                "case": "upper",
                "prefix": "p_",
                "suffix": "_s",
            }
        ],
        sales_frames,
    )
    assert col_of(assets, "SAP.TIME.DIM_DAY", "glue_table") == "p_TIME_DIM_DAY_s"
    assert col_of(assets, "V_Orders", "glue_table") == "p_ORDERS_V_s"


def test_naming_max_length_cuts_with_a_stable_distinct_hash(sales_frames):
    assets, _ = run(
        [{"kind": "naming", "template": "{space}_{name}_{business_name|'none'}", "max_length": 16}],
        sales_frames,
    )
    names = assets["glue_table"].to_list()
    assert all(len(n) <= 16 for n in names)
    assert len(set(names)) == len(names)
    long_ones = [n for n in names if len(n) == 16]
    assert long_ones and all(n[7] == "_" for n in long_ones)
    again, _ = run(
        [{"kind": "naming", "template": "{space}_{name}_{business_name|'none'}", "max_length": 16}],
        sales_frames,
    )
    assert again["glue_table"].to_list() == names


def test_truncate_keeps_short_names_and_hashes_the_full_name():
    frame = pl.DataFrame({"n": ["short", "x" * 40 + "a", "x" * 40 + "b", "ä" * 30]})
    out = frame.select(truncate_with_hash(pl.col("n"), 20))["n"].to_list()
    assert out[0] == "short"
    assert out[1][:11] == out[2][:11] == "x" * 11 and out[1] != out[2]
    assert all(len(n) == 20 for n in out[1:])


def test_naming_columns_with_filter(sales_frames):
    _, columns = run(
        [
            {
                "kind": "naming",
                "target": "column",
                "template": "m_{column}",
                "case": "lower",
                "columns": {"semantic_roles": ["measure"]},
            }
        ],
        sales_frames,
    )
    assert col_of(columns, "AM_Revenue", "glue_column", "Revenue") == "m_revenue"
    assert col_of(columns, "AM_Revenue", "glue_column", "Region") == "region"


def test_unknown_placeholder_fails_at_load():
    with pytest.raises(RuleError, match=r"rules\[1\] \(naming\).*unknown placeholder \{owner\}"):
        compile_rules(
            RULES.validate_python([{"kind": "scope"}, {"kind": "naming", "template": "{space}_{owner}"}])
        )


def test_unbalanced_brace_fails_at_load():
    with pytest.raises(RuleError, match=r"rules\[0\] \(naming\).*unbalanced"):
        compile_rules(RULES.validate_python([{"kind": "naming", "template": "{space"}]))


def test_bad_regex_fails_at_load_naming_the_rule():
    with pytest.raises(
        RuleError, match=r"rules\[0\] \(naming\).*replace\[0\]\.pattern.*bad regular expression"
    ):
        compile_rules(RULES.validate_python([{"kind": "naming", "replace": [{"pattern": "(", "with": "x"}]}]))
    with pytest.raises(RuleError, match=r"rules\[0\] \(scope\).*where.*bad regular expression"):
        compile_rules(RULES.validate_python([{"kind": "scope", "where": {"name_regex": "[a-"}}]))
    # Python accepts look-behind, Polars (Rust) does not: still a load-time failure, with Rust's whole reason.
    with pytest.raises(RuleError, match=r"rules\[0\] \(scope\).*look-around.*not supported"):
        compile_rules(RULES.validate_python([{"kind": "scope", "include": {"name_regex": "(?<=a)b"}}]))


# ------------------------------------------------------------------ types
def test_type_rule_with_length_bound(sales_frames):
    _, columns = run(
        [{"kind": "type", "source_type": "cds.String", "glue_type": "varchar({length})", "max_length": 255}],
        sales_frames,
    )
    assert col_of(columns, "Orders", "glue_type", "Note") == "varchar(100)"
    assert col_of(columns, "Orders", "glue_type", "LongText") == "string"
    assert col_of(columns, "AM_Revenue", "glue_type", "Region") == "varchar(10)"


def test_type_rule_precision_condition_and_scope(sales_frames):
    _, columns = run(
        [
            {"kind": "type", "source_type": "cds.Decimal", "glue_type": "double", "min_precision": 18},
            {
                "kind": "type",
                "source_type": ["cds.Integer"],
                "glue_type": "bigint",
                "where": {"kinds": ["analytic_model"]},
            },
        ],
        sales_frames,
    )
    assert col_of(columns, "AM_Revenue", "glue_type", "Revenue") == "double"
    assert col_of(columns, "V_Orders", "glue_type", "Amount") == "decimal(15,2)"
    assert col_of(columns, "AM_Revenue", "glue_type", "Quantity") == "bigint"
    assert col_of(columns, "Orders", "glue_type", "ID") == "int"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"source_type": "cds.Date", "glue_type": "int"}, "impossible cast from cds.Date"),
        ({"source_type": "cds.Binary", "glue_type": "decimal(10,2)"}, "impossible cast"),
        ({"source_type": "cds.String", "glue_type": "varchar({length})"}, "max_length"),
        ({"source_type": "cds.Decimal", "glue_type": "decimal({precision})"}, "not a Glue type"),
        ({"source_type": "cds.Decimal", "glue_type": "decimal(40,2)"}, "precision <= 38"),
        ({"source_type": "cds.String", "glue_type": "VARCHAR(10)"}, "not a Glue type"),
        ({"source_type": "cds.String", "glue_type": "varchar({size})"}, "unknown placeholder"),
        # The same grammar as the Glue limit checks: what they would quarantine fails here.
        ({"source_type": "cds.Integer", "glue_type": "integer"}, "not a Glue type"),
        ({"source_type": "cds.Decimal", "glue_type": "decimal(10, 2)"}, "not a Glue type"),
        ({"source_type": "cds.Decimal", "glue_type": "decimal({precision},{scale})"}, "max_precision"),
    ],
)
def test_bad_type_rules_fail_at_load(rule, message):
    with pytest.raises(RuleError, match=r"rules\[0\] \(type\)") as err:
        compile_rules(RULES.validate_python([{"kind": "type", **rule}]))
    assert message in str(err.value)


def test_a_decimal_template_needs_only_its_precision_bounded(sales_frames):
    rule = {
        "kind": "type",
        "source_type": "cds.Decimal",
        "glue_type": "decimal({precision},{scale})",
        "max_precision": 38,
    }
    _, columns = run([rule], sales_frames)
    assert col_of(columns, "V_Orders", "glue_type", "Amount") == "decimal(15,2)"


def test_types_a_rule_cannot_check_are_quarantined_with_the_type_named(sales_frames):
    rules = [{"kind": "value_map", "field": "glue_type", "map": {"int": "decimal(50,2)"}}]
    assets, columns = run(rules, sales_frames)
    violations = find_violations(assets, columns).filter(pl.col("check") == "column_type")
    assert violations.height > 0
    int_columns = columns.filter(pl.col("glue_type") == "decimal(50,2)")["column"]
    assert sorted(violations["subject"]) == sorted(f"{c}: decimal(50,2)" for c in int_columns)


# ------------------------------------------------------------------ business context
def test_business_descriptions_and_comments(sales_frames):
    assets, columns = run(
        [
            {
                "kind": "business",
                "table_description": "{business_name|name} ({kind}) measures: {measures|'none'}",
                "column_comment": "{business_name|column} [{semantic_role}] of {asset_business_name|name}",
            }
        ],
        sales_frames,
    )
    assert col_of(assets, "Orders", "glue_description") == "Sales Orders (table) measures: none"
    assert (
        col_of(assets, "AM_Revenue", "glue_description")
        == "AM_Revenue (analytic_model) measures: Revenue, Quantity"
    )
    assert col_of(columns, "Orders", "comment", "ID") == "Order ID [attribute] of Sales Orders"
    assert col_of(columns, "AM_Revenue", "comment", "Revenue") == "Revenue [measure] of AM_Revenue"


def test_business_only_if_empty_keeps_existing_text(sales_frames):
    assets, columns = sales_frames
    assets = assets.with_columns(glue_description=pl.when(pl.col("name") == "Orders").then(pl.lit("kept")))
    out, _ = run(
        [{"kind": "business", "table_description": "new {name}", "only_if_empty": True}], (assets, columns)
    )
    assert col_of(out, "Orders", "glue_description") == "kept"
    assert col_of(out, "V_Orders", "glue_description") == "new V_Orders"


def test_parameters_from_templates_and_derived_fields(sales_frames):
    assets, columns = run(
        [
            {
                "kind": "parameters",
                "where": {"kinds": ["analytic_model"]},
                "table": {
                    "business_name": "{business_name}",
                    "measures": "{measures}",
                    "dimensions": "{dimensions}",
                    "hierarchy_names": "{hierarchy_names}",
                    "steward": "finance-team",
                    "certification": "{env|'uncertified'}",
                },
                "column": {"semantic_usage": "{semantic_role}", "aggregation": "{aggregation}"},
            }
        ],
        sales_frames,
        env="prod",
    )
    p = params(col_of(assets, "AM_Revenue", "parameters"))
    assert p == {
        "measures": "Revenue, Quantity",
        "dimensions": "Region",
        "hierarchy_names": "H_Region, H_Time",
        "steward": "finance-team",
        "certification": "prod",
    }  # business_name is null -> left out
    assert params(col_of(assets, "Orders", "parameters")) == {}
    assert params(col_of(columns, "AM_Revenue", "parameters", "Revenue")) == {
        "semantic_usage": "measure",
        "aggregation": "SUM",
    }
    assert params(col_of(columns, "AM_Revenue", "parameters", "Region")) == {"semantic_usage": "dimension"}
    assert params(col_of(columns, "Orders", "parameters", "ID")) == {}


def test_parameters_replace_same_key_and_keep_others(sales_frames):
    assets, columns = sales_frames
    assets = assets.with_columns(
        parameters_series([{"metasync:kind": "table", "owner": "old"}] * assets.height)
    )
    out, _ = run([{"kind": "parameters", "table": {"owner": "new"}}], (assets, columns))
    assert params(col_of(out, "Orders", "parameters")) == {"metasync:kind": "table", "owner": "new"}


def test_an_empty_parameter_result_keeps_the_earlier_value(sales_frames):
    rules = [
        {"kind": "parameters", "table": {"p2": "{kind}-{column_count}", "p3": "{remote_source}"}},
        {"kind": "parameters", "table": {"p2": "{remote_source}"}},  # empty for local objects: sets nothing
    ]
    out, _ = run(rules, sales_frames)
    orders = params(col_of(out, "Orders", "parameters"))
    assert orders["p2"].startswith("table-") and "p3" not in orders


def test_reserved_parameter_key_fails_at_load():
    with pytest.raises(RuleError, match=r"rules\[0\] \(parameters\).*reserved"):
        compile_rules(RULES.validate_python([{"kind": "parameters", "table": {"metasync:hash": "x"}}]))
    with pytest.raises(RuleError, match=r"rules\[0\] \(parameters\).*cannot hold a comma"):
        compile_rules(RULES.validate_python([{"kind": "parameters", "table": {"cost,center": "x"}}]))


def test_tags_merge_into_a_sorted_set(sales_frames):
    assets, columns = sales_frames
    assets = assets.with_columns(parameters_series([{"tags": "zeta,alpha"}] * assets.height))
    out, _ = run(
        [
            {"kind": "tags", "tags": ["space:{space}", "alpha"]},
            {"kind": "tags", "tags": ["analytics"], "where": {"kinds": ["analytic_model"]}},
        ],
        (assets, columns),
    )
    assert params(col_of(out, "AM_Revenue", "parameters"))["tags"] == "alpha,analytics,space:SALES,zeta"
    assert params(col_of(out, "SAP.TIME.DIM_DAY", "parameters"))["tags"] == "alpha,space:HR,zeta"


# ------------------------------------------------------------------ value maps and defaults
def test_value_map_with_default_and_without(sales_frames):
    _, columns = run(
        [{"kind": "value_map", "field": "aggregation", "map": {"SUM": "sum"}, "default": "none"}],
        sales_frames,
    )
    assert col_of(columns, "AM_Revenue", "aggregation", "Revenue") == "sum"
    assert col_of(columns, "Orders", "aggregation", "ID") == "none"
    assets, _ = run([{"kind": "value_map", "field": "kind", "map": {"view": "table"}}], sales_frames)
    assert sorted(assets["kind"]) == ["analytic_model", "dimension", "table", "table"]


def test_value_map_on_integer_field_casts_and_rejects(sales_frames):
    _, columns = run([{"kind": "value_map", "field": "length", "map": {"5000": 4000}}], sales_frames)
    assert col_of(columns, "Orders", "length", "LongText") == 4000
    with pytest.raises(RuleError, match=r"rules\[0\] \(value_map\).*cannot cast 'big'"):
        compile_rules(RULES.validate_python([{"kind": "value_map", "field": "length", "map": {"1": "big"}}]))
    with pytest.raises(RuleError, match=r"not a valid semantic_role"):
        compile_rules(
            RULES.validate_python([{"kind": "value_map", "field": "semantic_role", "map": {"text": "label"}}])
        )


def test_default_fills_nulls_and_empty_text_only(sales_frames):
    assets, columns = run(
        [
            {"kind": "default", "field": "business_name", "on": "assets", "value": "{name} in {space}"},
            {"kind": "default", "field": "comment", "value": "{column}"},
        ],
        sales_frames,
    )
    assert col_of(assets, "Orders", "business_name") == "Sales Orders"
    assert col_of(assets, "AM_Revenue", "business_name") == "AM_Revenue in SALES"
    assert col_of(columns, "Orders", "comment", "LongText") == "LongText"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"kind": "default", "field": "owner", "value": "x"}, "unknown field 'owner'"),
        ({"kind": "default", "field": "business_name", "value": "x"}, "exists on assets and on columns"),
        ({"kind": "value_map", "field": "space", "map": {"A": "B"}}, "cannot be changed"),
        ({"kind": "default", "field": "is_key", "value": "maybe"}, "cannot cast"),
        ({"kind": "scope", "include": {"kinds": ["cube"]}}, "unknown asset kind"),
    ],
)
def test_bad_field_rules_fail_at_load(rule, message):
    rules = RULES.validate_python([{"kind": "scope"}, {"kind": "scope"}, rule])
    with pytest.raises(RuleError, match=rf"rules\[2\] \({rule['kind']}\)") as err:
        compile_rules(rules)
    assert message in str(err.value)


def test_unknown_rule_kind_is_a_validation_error():
    with pytest.raises(ValidationError):
        RULES.validate_python([{"kind": "rename"}])


def test_missing_frame_field_fails_before_collect(sales_frames):
    compiled = compile_rules(RULES.validate_python([{"kind": "business", "table_description": "{name}"}]))
    with pytest.raises(RuleError, match=r"rules\[0\] \(business\).*glue_description"):
        compiled(sales_frames[0].drop("glue_description").lazy(), sales_frames[1].lazy())


# ------------------------------------------------------------------ order
def test_rule_order_matters(sales_frames):
    first_upper = [
        {"kind": "naming", "template": "{name}", "case": "upper"},
        {"kind": "naming", "replace": [{"pattern": "Orders", "with": "o"}]},
    ]
    first_replace = list(reversed(first_upper))
    first_replace[0], first_replace[1] = (
        {"kind": "naming", "template": "{name}", "replace": [{"pattern": "Orders", "with": "o"}]},
        {"kind": "naming", "case": "upper"},
    )
    a, _ = run(first_upper, sales_frames)
    b, _ = run(first_replace, sales_frames)
    assert col_of(a, "Orders", "glue_table") == "ORDERS"
    assert col_of(b, "Orders", "glue_table") == "O"


def test_later_rule_sees_earlier_value_map(sales_frames):
    rules = [
        {"kind": "value_map", "field": "kind", "map": {"view": "fact"}},
        {"kind": "naming", "template": "f_{name}", "where": {"kinds": ["fact"]}},
        {"kind": "type", "source_type": "cds.Integer", "glue_type": "bigint", "where": {"kinds": ["fact"]}},
    ]
    assets, columns = run(rules, sales_frames)
    assert col_of(assets, "V_Orders", "glue_table") == "f_V_Orders"
    assert col_of(columns, "V_Orders", "glue_type", "ID") == "bigint"
    assert col_of(columns, "Orders", "glue_type", "ID") == "int"
    swapped, swapped_cols = run([rules[1], rules[2], rules[0]], sales_frames)
    assert col_of(swapped, "V_Orders", "glue_table") == "v_orders"
    assert col_of(swapped_cols, "V_Orders", "glue_type", "ID") == "int"


def test_no_rules_returns_frames_unchanged(sales_frames):
    assets, columns = run([], sales_frames)
    assert assets.equals(sales_frames[0]) and columns.equals(sales_frames[1])


def test_rules_keep_row_order_and_schema(sales_frames):
    rules = [
        {
            "kind": "type",
            "source_type": "cds.String",
            "glue_type": "varchar({length})",
            "max_length": 255,
            "where": {"kinds": ["table"]},
        },
        {"kind": "business", "column_comment": "{asset_business_name}", "columns": {"keys_only": True}},
        {"kind": "parameters", "table": {"m": "{measures}"}},
    ]
    assets, columns = run(rules, sales_frames)
    assert columns.schema == sales_frames[1].schema
    # The parameters rule adds its key to the Parameters struct; every other field keeps its type.
    source_schema = dict(sales_frames[0].schema)
    source_keys = [f.name for f in source_schema.pop("parameters").fields]
    result_schema = dict(assets.schema)
    assert [f.name for f in result_schema.pop("parameters").fields] == [*source_keys, "m"]
    assert result_schema == source_schema
    assert assets.select("space", "name").equals(sales_frames[0].select("space", "name"))
    assert columns.select("space", "name", "column").equals(sales_frames[1].select("space", "name", "column"))


def test_rules_give_the_same_frames_with_or_without_the_internal_asset_key(sales_frames):
    from metasync.transform.mapping import with_asset_key

    rules = [
        {"kind": "scope", "exclude": {"name_glob": "V_*"}},
        {
            "kind": "type",
            "where": {"kinds": ["analytic_model", "table"]},
            "source_type": "cds.String",
            "glue_type": "varchar(99)",
        },
        {"kind": "business", "column_comment": "{business_name|column} of {asset_business_name} ({kind})"},
        {
            "kind": "parameters",
            "table": {"m": "{measures}", "n": "{column_count}"},
            "column": {"k": "{kind} {glue_table}"},
        },
    ]
    plain = run(rules, sales_frames)
    keyed = run(rules, with_asset_key(*sales_frames))
    assert plain[0].height < sales_frames[0].height  # the scope rule dropped an asset
    assert keyed[0].drop("_asset").equals(plain[0])
    assert keyed[1].drop("_asset").equals(plain[1])
