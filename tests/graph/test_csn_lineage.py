"""column_lineage_rows on hand-built CSN definitions and on real definitions from the corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metasync.sources.csn_lineage import column_lineage_rows


def resolve(ref: str) -> tuple[str, str]:
    return ("SP", ref)


def by_column(rows: list[tuple[str, str, str, str, str]]) -> dict[str, set[tuple[str, str, str]]]:
    out: dict[str, set[tuple[str, str, str]]] = {}
    for column, _space, name, up_column, transform in rows:
        out.setdefault(column, set()).add((name, up_column, transform))
    return out


def view(select: dict, elements: dict | None = None) -> dict:
    return {"kind": "entity", "query": {"SELECT": select}, "elements": elements or {}}


def test_refs_through_aliases_and_nested_joins() -> None:
    definition = view(
        {
            "from": {
                "join": "left",
                "args": [
                    {"join": "inner", "args": [{"ref": ["ORDERS"], "as": "o"}, {"ref": ["ITEMS"]}], "on": []},
                    {"ref": ["CUST.TOMERS"]},
                ],
                "on": [],
            },
            "columns": [
                {"ref": ["o", "ID"]},
                {"ref": ["ITEMS", "QTY"], "as": "Quantity"},
                {"ref": ["TOMERS", "NAME"]},
                {"ref": ["CUST.TOMERS", "CITY"]},
            ],
        }
    )
    rows = column_lineage_rows(definition, resolve)
    assert all(space == "SP" for _, space, *_ in rows)
    assert by_column(rows) == {
        "ID": {("ORDERS", "ID", "direct")},
        "Quantity": {("ITEMS", "QTY", "renamed")},
        "NAME": {("CUST.TOMERS", "NAME", "direct")},
        "CITY": {("CUST.TOMERS", "CITY", "direct")},
    }


def test_calculated_columns_list_every_referenced_column() -> None:
    definition = view(
        {
            "from": {"ref": ["T"]},
            "columns": [
                {"func": "CONCAT", "args": [{"ref": ["T", "YEAR"]}, {"ref": ["T", "PERIOD"]}], "as": "FP"},
                {
                    "xpr": [
                        "case",
                        "when",
                        {"ref": ["KIND"]},
                        "=",
                        {"val": "B"},
                        "then",
                        {"ref": ["T", "AMT"]},
                        "else",
                        {"val": 0},
                        "end",
                    ],
                    "as": "AMT_B",
                },
                {
                    "func": "CONVERT_CURRENCY",
                    "args": {"AMOUNT": {"ref": ["T", "NET"]}, "DAYS": {"ref": ["D"], "param": True}},
                    "as": "NET_CC",
                },
                {"val": 1, "as": "ONE"},
                {"ref": ["T", "X"], "cast": {"type": "cds.Integer"}, "as": "X"},
            ],
        }
    )
    assert by_column(column_lineage_rows(definition, resolve)) == {
        "FP": {("T", "YEAR", "calculated"), ("T", "PERIOD", "calculated")},
        "AMT_B": {("T", "KIND", "calculated"), ("T", "AMT", "calculated")},
        "NET_CC": {("T", "NET", "calculated")},
        "X": {("T", "X", "calculated")},
    }


def test_sub_select_columns_are_followed_to_their_source() -> None:
    sub = {
        "SELECT": {
            "from": {"ref": ["BASE"]},
            "columns": [{"ref": ["BASE", "A"], "as": "A2"}, {"ref": ["BASE", "B"]}],
        },
        "as": "P",
    }
    definition = view(
        {
            "from": {"join": "left", "args": [sub, {"ref": ["OTHER"]}], "on": []},
            "columns": [{"ref": ["P", "A2"]}, {"ref": ["P", "B"], "as": "BB"}, {"ref": ["OTHER", "C"]}],
        }
    )
    assert by_column(column_lineage_rows(definition, resolve)) == {
        "A2": {("BASE", "A", "renamed")},
        "BB": {("BASE", "B", "renamed")},
        "C": {("OTHER", "C", "direct")},
    }


def test_union_args_contribute_by_position() -> None:
    definition = {
        "kind": "entity",
        "elements": {"ID": {}, "V": {}},
        "query": {
            "SET": {
                "op": "union",
                "all": True,
                "args": [
                    {
                        "SELECT": {
                            "from": {"ref": ["A"]},
                            "columns": [{"ref": ["ID"]}, {"ref": ["VAL"], "as": "V"}],
                        }
                    },
                    {"SELECT": {"from": {"ref": ["B"]}, "columns": [{"ref": ["KEY"]}, {"ref": ["AMOUNT"]}]}},
                ],
            }
        },
    }
    assert by_column(column_lineage_rows(definition, resolve)) == {
        "ID": {("A", "ID", "direct"), ("B", "KEY", "direct")},
        "V": {("A", "VAL", "renamed"), ("B", "AMOUNT", "direct")},
    }


def test_star_projection_excluding_and_parameterised_source() -> None:
    definition = {
        "kind": "entity",
        "elements": {
            "ID": {},
            "TITLE": {},
            "createdBy": {},
            "age": {},
            "author": {"type": "cds.Association", "target": "Authors"},
        },
        "projection": {
            "from": {"ref": [{"id": "Books", "args": {"P": {"val": 1}}}]},
            "columns": ["*", {"xpr": [{"ref": ["born"]}, "-", {"ref": ["died"]}], "as": "age"}],
            "excluding": ["createdBy"],
        },
    }
    assert by_column(column_lineage_rows(definition, resolve)) == {
        "ID": {("Books", "ID", "direct")},
        "TITLE": {("Books", "TITLE", "direct")},
        "age": {("Books", "born", "calculated"), ("Books", "died", "calculated")},
    }


def test_projection_refs_and_association_paths() -> None:
    definition = view(
        {
            "from": {"ref": ["FACT"]},
            "mixin": {"_day": {"type": "cds.Association", "target": "SAP.TIME.DAY", "on": []}},
            "columns": [
                {"ref": ["FACT", "NET"]},
                {"ref": ["FACT", "TAX"]},
                {"ref": ["_day"]},
                {"ref": ["_day", "YEAR"], "as": "YEAR_DOC"},
                {
                    "xpr": [{"ref": ["$projection", "NET"]}, "+", {"ref": ["$projection", "TAX"]}],
                    "as": "GROSS",
                },
                {"ref": ["$projection", "GROSS"], "as": "GROSS2"},
            ],
        }
    )
    assert by_column(column_lineage_rows(definition, resolve)) == {
        "NET": {("FACT", "NET", "direct")},
        "TAX": {("FACT", "TAX", "direct")},
        "YEAR_DOC": {("SAP.TIME.DAY", "YEAR", "renamed")},
        "GROSS": {("FACT", "NET", "calculated"), ("FACT", "TAX", "calculated")},
        "GROSS2": {("FACT", "NET", "calculated"), ("FACT", "TAX", "calculated")},
    }


def test_business_layer_measures_and_attributes() -> None:
    layer = {
        "sourceModel": {
            "factSources": {"0": {"dataEntity": {"key": "FACT"}}},
            "dimensionSources": {"1": {"dataEntity": {"key": "DAY"}}},
        },
        "attributes": {
            "Doc": {
                "attributeType": "AnalyticModelAttributeType.FactSourceAttribute",
                "attributeMapping": {"0": {"key": "Document"}},
            },
            "YEAR1": {
                "attributeType": "AnalyticModelAttributeType.DimensionSourceAttribute",
                "sourceKey": "1",
                "key": "YEAR",
            },
        },
        "measures": {
            "Net": {
                "measureType": "AnalyticModelMeasureType.FactSourceMeasure",
                "sourceKey": "0",
                "key": "NetAmount",
            },
            "Tax": {
                "measureType": "AnalyticModelMeasureType.FactSourceMeasure",
                "sourceKey": "0",
                "key": "Tax",
            },
            "NetB": {
                "measureType": "AnalyticModelMeasureType.RestrictedMeasure",
                "key": "Net",
                "elements": {
                    "0": {"operandType": "AnalyticModelRestrictedMeasureOperandType.Attribute", "key": "Doc"}
                },
            },
            "Gross": {
                "measureType": "AnalyticModelMeasureType.CalculatedMeasure",
                "elements": {
                    "0": {"operandType": "AnalyticModelCalculatedMeasureOperandType.Element", "key": "Net"},
                    "1": {"operandType": "AnalyticModelCalculatedMeasureOperandType.Element", "key": "Tax"},
                },
            },
        },
    }
    definition = {"kind": "entity", "elements": {}, "$businessLayer": layer}
    assert by_column(column_lineage_rows(definition, resolve)) == {
        "Doc": {("FACT", "Document", "renamed")},
        "YEAR1": {("DAY", "YEAR", "renamed")},
        "Net": {("FACT", "NetAmount", "measure")},
        "Tax": {("FACT", "Tax", "measure")},
        "NetB": {("FACT", "NetAmount", "measure")},
        "Gross": {("FACT", "NetAmount", "calculated"), ("FACT", "Tax", "calculated")},
    }


def test_tables_have_no_column_lineage() -> None:
    assert column_lineage_rows({"kind": "entity", "elements": {"A": {"type": "cds.String"}}}, resolve) == []


# ----------------------------------------------------------------------------- corpus
def _definitions(corpus: Path, file: str) -> dict:
    return json.loads((corpus / file).read_text(encoding="utf-8"))


@pytest.mark.corpus
def test_corpus_analytic_model_measures_reach_the_fact_source(corpus_path: Path) -> None:
    doc = _definitions(corpus_path, "CSN_SalesAnalysis_Workshop_COEKOM.json")
    name = "SAP_SD_RL_SalesQuotationItm_V2"
    definition = {**doc["definitions"][name], "$businessLayer": doc["businessLayerDefinitions"][name]}
    columns = by_column(column_lineage_rows(definition, resolve))
    fact = "SAP_SD_HL_SalesQuotationItem_V2"
    assert columns["NetAmount"] == {(fact, "NetAmount", "measure")}
    assert columns["SlsQuotationOpenNetAmount"] == {
        (fact, "NetAmount", "calculated"),
        (fact, "CnvtSalesQuotationAmount", "calculated"),
    }
    assert columns["CALWEEK9"] == {("SAP.TIME.VIEW_DIMENSION_DAY", "CALWEEK", "renamed")}
    association_columns = [c for c in columns if "\u221e" in c]
    assert association_columns == []
    typeless = [e for e, spec in doc["definitions"][name]["elements"].items() if "type" not in spec]
    assert set(typeless) <= set(columns) | {"No_of_QuotationItems"}


@pytest.mark.corpus
def test_corpus_join_with_sub_select_covers_every_column(corpus_path: Path) -> None:
    doc = _definitions(corpus_path, "CSN_SalesAnalysis_Workshop_COEKOM.json")
    definition = doc["definitions"]["SAP_SD_HL_SalesQuotationItem_V2"]
    columns = by_column(column_lineage_rows(definition, resolve))
    upstream_assets = {name for ups in columns.values() for name, _, _ in ups}
    assert upstream_assets == {"SAP_SD_HL_SalesDocumentItem_V2", "SAP_SD_HL_CnvtedSalesQuotation_V2"}
    # "Projection 1" is a sub-select over SAP_SD_HL_SalesDocumentItem_V2: its alias never leaks out.
    assert columns["SalesDocument"] == {("SAP_SD_HL_SalesDocumentItem_V2", "SalesDocument", "direct")}
    assert ("SAP_SD_HL_SalesDocumentItem_V2", "BindingPeriodValEndDate", "calculated") in columns[
        "SlsQuotationExpiring"
    ]


@pytest.mark.corpus
def test_corpus_four_level_join_lists_both_sources(corpus_path: Path) -> None:
    doc = _definitions(corpus_path, "DP Workforce Location.json")
    definition = doc["definitions"]["3VD_LOCATION_WITH_FLAT_GEO_HIERARCHY"]
    rows = column_lineage_rows(definition, resolve)
    assert {name for _, _, name, _, _ in rows} == {
        "3VD_LOCATION_COMPANY_INFO_FROM_WORKFORCE",
        "SAP_SFSF_EC_IL_Location_GeoCode_V_V1",
    }
    elements = [e for e, spec in definition["elements"].items() if spec.get("type") != "cds.Association"]
    assert {column for column, *_ in rows} == set(elements)


@pytest.mark.parametrize("alias", [None, "", 0, False, []])
def test_a_column_whose_name_is_empty_has_no_lineage(alias: object) -> None:
    """`{"ref": ["A", ""]}` names no column, whatever (falsy) `as` it carries; plain references beside it do."""
    entry: dict = {"ref": ["A", ""]}
    if alias is not None:
        entry["as"] = alias
    definition = view({"from": {"ref": ["S"], "as": "A"}, "columns": [entry, {"ref": ["A", "X"], "as": "Y"}]})
    assert column_lineage_rows(definition, resolve) == [("Y", "SP", "S", "X", "renamed")]


def test_column_entries_may_be_dict_subclasses() -> None:
    """Payloads built by callers (not parsed by orjson) may hold OrderedDicts; they read like dicts."""
    from collections import OrderedDict

    definition = view(
        {
            "from": {"ref": ["S"], "as": "A"},
            "columns": [OrderedDict(ref=["A", "X"]), OrderedDict(ref=["A", "Z"])],
        }
    )
    assert by_column(column_lineage_rows(definition, resolve)) == {
        "X": {("S", "X", "direct")},
        "Z": {("S", "Z", "direct")},
    }
