"""The CSN reader on small hand-written exports covering the shapes real Datasphere exports have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from metasync.config import CsnSourceConfig
from metasync.errors import ConfigError, SourceError
from metasync.sources import csn as csn_reader
from metasync.sources.csn import ELEMENT_FIELDS, CsnDocument, CsnSource, annotation, read_documents


def csn(**definitions: Any) -> dict[str, Any]:
    return {
        "definitions": definitions,
        "version": {"csn": "1.0"},
        "meta": {"creator": "test"},
        "$version": "1.0",
    }


def write(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    return path


TABLE = {
    "kind": "entity",
    "@EndUserText.label": "Orders",
    "@ObjectModel.modelingPattern": {"#": "DATA_STRUCTURE"},
    "elements": {
        "ID": {"type": "cds.String", "length": 10, "key": True, "@EndUserText.label": {"=": "Order"}},
        "AMOUNT": {"type": "cds.Decimal", "precision": 15, "scale": 2, "@Aggregation.default": {"#": "SUM"}},
        "CUSTOMER": {
            "type": "cds.String",
            "length": 10,
            "@ObjectModel.foreignKey.association": {"=": "_Customer"},
        },
        "_Customer": {"type": "cds.Association", "target": "CUSTOMERS", "on": []},
    },
}


def read(*docs: tuple[str, dict[str, Any]]) -> Any:
    return read_documents(
        [CsnDocument(origin=f"{i}.json", space=s, payload=p) for i, (s, p) in enumerate(docs)]
    )


def test_annotation_values_in_every_encoding() -> None:
    assert annotation("x") == annotation({"#": "x"}) == annotation({"=": "x"}) == "x"
    frames = read(("S", csn(ORDERS=TABLE)))
    row = frames.columns.filter(pl.col("column") == "ID").row(0, named=True)
    assert row["business_name"] == "Order"
    assert frames.assets["modeling_pattern"].item() == "DATA_STRUCTURE"


def test_columns_keep_definition_order_facets_and_roles() -> None:
    frames = read(("S", csn(ORDERS=TABLE)))
    cols = frames.columns.sort("ordinal")
    assert cols["column"].to_list() == ["ID", "AMOUNT", "CUSTOMER"]  # the association is an edge
    amount = cols.row(1, named=True)
    assert (amount["source_type"], amount["precision"], amount["scale"]) == ("cds.Decimal", 15, 2)
    assert (amount["semantic_role"], amount["aggregation"]) == ("measure", "SUM")
    assert cols.row(2, named=True)["semantic_role"] == "dimension"
    assert cols.row(0, named=True)["is_key"] and cols.row(0, named=True)["not_null"]
    edge = frames.edges.row(0, named=True)
    assert (edge["source_name"], edge["target_name"], edge["kind"], edge["via"]) == (
        "ORDERS",
        "CUSTOMERS",
        "foreign_key",
        "_Customer",
    )


def test_asset_kinds_from_structure_and_modeling_pattern() -> None:
    def entity(**extra: Any) -> dict[str, Any]:
        return {"kind": "entity", "elements": {"A": {"type": "cds.Integer"}}, **extra}

    def pattern(name: str) -> dict[str, Any]:
        return {"@ObjectModel.modelingPattern": {"#": name}}

    query = {"query": {"SELECT": {"from": {"ref": ["T"]}}}}
    payload = csn(
        T=entity(),
        V=entity(**query),
        P=entity(projection={"from": {"ref": ["T"]}}),
        D=entity(**query, **pattern("ANALYTICAL_DIMENSION")),
        X=entity(**pattern("LANGUAGE_DEPENDENT_TEXT")),
        F=entity(**query, **pattern("ANALYTICAL_FACT")),
        H=entity(**pattern("ANALYTICAL_PARENT_CHILD_HIERARCHY")),
        M=entity(**query, **pattern("ANALYTICAL_CUBE")),
        R=entity(**{"@DataWarehouse.remote.connection": "S4", "@DataWarehouse.remote.entity": "I_ORDERS"}),
        FN=entity(**{"@Analytics.dbViewType": "TABLE_FUNCTION"}),
        ACTIVE=entity(
            **query, **{"@DataWarehouse.delta": {"type": {"#": "ACTIVE"}, "deltaFromEntities": ["T"]}}
        ),
        TYPE={"kind": "type", "type": "cds.String"},
        CTX={"kind": "context"},
        SRV={"kind": "service"},
    )
    kinds = dict(read(("S", payload)).assets.select("name", "kind").iter_rows())
    assert kinds == {
        "T": "table",
        "V": "view",
        "P": "view",
        "D": "dimension",
        "X": "text",
        "F": "fact",
        "H": "hierarchy",
        "M": "analytic_model",
        "R": "remote_table",
        "FN": "view",
        "ACTIVE": "table",
    }


def test_a_remote_entity_written_in_del_separated_parts_reads_as_one_name() -> None:
    remote = {
        "@DataWarehouse.remote.connection": "D4556A",
        "@DataWarehouse.remote.entity": "<NULL>\x7fD4556A\x7fCountry_Master_Data",
    }
    table = {"kind": "entity", "elements": {"A": {"type": "cds.Integer"}}}
    other = {**remote, "@DataWarehouse.remote.entity": "SCH\x7fT1"}
    frames = read(("S", csn(R={**table, **remote}, Q={**table, **other})))
    sources = dict(frames.assets.select("name", "remote_source").iter_rows())
    assert sources == {"R": "D4556A.Country_Master_Data", "Q": "D4556A.SCH.T1"}
    upstream = frames.edges.filter(pl.col("target_name") == "R").select("source_space", "source_name").row(0)
    assert upstream == ("D4556A", "Country_Master_Data")


def test_type_references_by_name_chain_ref_and_unresolved() -> None:
    payload = csn(
        AMOUNT_T={"kind": "type", "type": "MONEY_T"},
        MONEY_T={"kind": "type", "type": "cds.Decimal", "precision": 23, "scale": 3},
        CURRENCY_T={"kind": "type", "type": "cds.Association", "target": "CURRENCIES"},
        BASE={"kind": "entity", "elements": {"CODE": {"type": "cds.String", "length": 5}}},
        E={
            "kind": "entity",
            "elements": {
                "A": {"type": "AMOUNT_T"},
                "B": {"type": {"ref": ["BASE", "CODE"]}},
                "C": {"type": "CURRENCY_T"},
                "D": {"type": "NOT_DEFINED"},
                "L": {"type": "MONEY_T", "precision": 10, "scale": 1},
            },
        },
    )
    frames = read(("S", payload))
    cols = {r["column"]: r for r in frames.columns.filter(pl.col("name") == "E").iter_rows(named=True)}
    assert (
        cols["A"]["source_type"],
        cols["A"]["precision"],
        cols["A"]["scale"],
        cols["A"]["type_origin"],
    ) == (
        "cds.Decimal",
        23,
        3,
        "type",
    )
    assert (cols["B"]["source_type"], cols["B"]["length"]) == ("cds.String", 5)
    assert "C" not in cols  # an association type is an edge
    assert frames.edges.filter(pl.col("via") == "C")["target_name"].to_list() == ["CURRENCIES"]
    assert cols["D"]["source_type"] == "NOT_DEFINED"
    assert [e.event for e in frames.events] == ["type_unresolved"]
    assert (cols["L"]["precision"], cols["L"]["scale"]) == (10, 1)  # the element's own facets win


def test_data_flow_edges_for_joins_unions_subselects_and_parameters() -> None:
    view = {
        "kind": "entity",
        "elements": {"K": {"type": "cds.Integer"}},
        "query": {
            "SELECT": {
                "from": {
                    "join": "left",
                    "args": [
                        {"ref": ["A"], "as": "a"},
                        {
                            "join": "inner",
                            "args": [{"ref": [{"id": "B", "args": {"P": {"val": 1}}}]}, {"ref": ["C"]}],
                        },
                        {"SELECT": {"from": {"ref": ["D"]}}, "as": "sub"},
                    ],
                    "on": [],
                }
            }
        },
    }
    union = {
        "kind": "entity",
        "elements": {"K": {"type": "cds.Integer"}},
        "query": {
            "SET": {
                "op": "union",
                "args": [{"SELECT": {"from": {"ref": ["A"]}}}, {"SELECT": {"from": {"ref": ["E"]}}}],
            }
        },
    }
    edges = read(("S", csn(V=view, U=union))).edges
    got = set(edges.select("source_name", "target_name", "kind").iter_rows())
    assert got == {
        ("A", "V", "join"),
        ("B", "V", "join"),
        ("C", "V", "join"),
        ("D", "V", "join"),
        ("A", "U", "union"),
        ("E", "U", "union"),
    }


def test_a_space_folder_with_a_dot_in_its_name_is_refused(tmp_path: Path) -> None:
    """`MY.SPACE.T` would read as space MY: the run stops before anything is read, naming the folder."""
    write(tmp_path / "exports" / "MY.SPACE" / "a.json", csn(T=TABLE))
    with pytest.raises(ConfigError, match=r"the folder .*MY\.SPACE is no space name: it has a dot"):
        CsnSource(CsnSourceConfig(path=tmp_path / "exports")).read()


@pytest.mark.parametrize("space", ["../../evil", "MY.SPACE", " "])
def test_a_context_naming_no_space_is_an_invalid_definition(tmp_path: Path, space: str) -> None:
    document = csn(OTHER={"kind": "context", "@DataWarehouse.space.name": space}, **{"OTHER.T": TABLE})
    write(tmp_path / "exports" / "S" / "bad.json", document)
    write(tmp_path / "exports" / "S" / "good.json", csn(T=TABLE))
    with pytest.raises(SourceError, match=r"bad\.json.*@DataWarehouse\.space\.name"):
        CsnSource(CsnSourceConfig(path=tmp_path / "exports")).read()
    frames = CsnSource(CsnSourceConfig(path=tmp_path / "exports", skip_invalid=True)).read()
    assert frames.assets.select("space", "name").rows() == [("S", "T")] and frames.incomplete


def test_a_linked_space_folder_is_read_and_a_link_loop_ends(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere" / "FINANCE" / "a.json", csn(LEDGER=TABLE))
    write(tmp_path / "exports" / "SALES" / "a.json", csn(T=TABLE))
    (tmp_path / "exports" / "FINANCE").symlink_to(
        tmp_path / "elsewhere" / "FINANCE", target_is_directory=True
    )
    (tmp_path / "exports" / "SALES" / "again").symlink_to(tmp_path / "exports", target_is_directory=True)
    frames = CsnSource(CsnSourceConfig(path=tmp_path / "exports")).read()
    assert sorted(frames.assets.select("space", "name").rows()) == [("FINANCE", "LEDGER"), ("SALES", "T")]


def test_a_link_to_another_spaces_folder_leaves_its_files_in_that_space(tmp_path: Path) -> None:
    write(tmp_path / "exports" / "B" / "common" / "t.json", csn(T=TABLE))
    write(tmp_path / "exports" / "A" / "a.json", csn(X=TABLE))
    (tmp_path / "exports" / "A" / "shared").symlink_to(tmp_path / "exports" / "B" / "common")
    frames = CsnSource(CsnSourceConfig(path=tmp_path / "exports")).read()
    assert sorted(frames.assets.select("space", "name").rows()) == [("A", "X"), ("B", "T")]


def test_space_rule_for_folders_files_and_contexts(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    write(root / "SALES" / "a.json", csn(T1=TABLE))
    write(root / "SALES" / "deeper" / "b.json", csn(T2=TABLE))
    write(
        root / "top.json",
        csn(
            OTHER={"kind": "context", "@DataWarehouse.space.name": "FINANCE"},
            **{"OTHER.LEDGER": TABLE},
            V={
                "kind": "entity",
                "elements": {"X": {"type": "cds.Integer"}},
                "query": {"SELECT": {"from": {"ref": ["OTHER.LEDGER"]}}},
            },
        ),
    )
    with pytest.raises(ConfigError, match=r"source\.space is required.*top\.json"):
        CsnSource(CsnSourceConfig(path=root)).read()
    frames = CsnSource(CsnSourceConfig(path=root, space="MAIN")).read()
    assert set(frames.assets.select("space", "name").iter_rows()) == {
        ("SALES", "T1"),
        ("SALES", "T2"),
        ("FINANCE", "LEDGER"),
        ("MAIN", "V"),
    }
    assert ("FINANCE", "LEDGER", "MAIN", "V") in set(
        frames.edges.select("source_space", "source_name", "target_space", "target_name").iter_rows()
    )


def test_i18n_bundle_beside_the_file_resolves_labels(tmp_path: Path) -> None:
    payload = csn(
        T={
            "kind": "entity",
            "@title": "{i18n>Books}",
            "elements": {
                "A": {"type": "cds.Integer", "@title": "{i18n>Stock}"},
                "B": {"type": "cds.Integer", "@title": "{i18n>Missing}"},
            },
        }
    )
    write(tmp_path / "S" / "model.json", payload)
    write(
        tmp_path / "S" / "i18n.json",
        {"": {"Books": "Books", "Stock": "Stock"}, "de": {"Books": "Bücher", "Stock": "Bestand"}},
    )
    frames = CsnSource(CsnSourceConfig(path=tmp_path, language="de")).read()
    assert frames.assets["business_name"].item() == "Bücher"
    labels = dict(frames.columns.select("column", "business_name").iter_rows())
    assert labels == {"A": "Bestand", "B": "{i18n>Missing}"}
    assert [e.event for e in frames.events] == ["i18n_bundle", "i18n_unresolved"]
    unresolved = frames.events[1]
    assert unresolved.severity == "warning" and "{i18n>Missing} on S.T.B" in unresolved.message
    assert unresolved.details == {"texts": 1, "objects": 1}

    # The same file read on its own (source.path is the file) still finds the bundle beside it, in either place.
    one = CsnSource(CsnSourceConfig(path=tmp_path / "S" / "model.json", space="S", language="de")).read()
    assert one.assets["business_name"].item() == "Bücher"
    (tmp_path / "S" / "_i18n").mkdir()
    (tmp_path / "S" / "i18n.json").rename(tmp_path / "S" / "_i18n" / "i18n.json")
    one = CsnSource(CsnSourceConfig(path=tmp_path / "S" / "model.json", space="S", language="de")).read()
    assert dict(one.columns.select("column", "business_name").iter_rows())["A"] == "Bestand"


def cube(source: str, columns: list[dict[str, Any]], elements: dict[str, Any]) -> dict[str, Any]:
    """An analytic model (ANALYTICAL_CUBE) selecting `columns` from `source`."""
    return {
        "kind": "entity",
        "@ObjectModel.modelingPattern": {"#": "ANALYTICAL_CUBE"},
        "query": {"SELECT": {"from": {"ref": [source]}, "columns": columns}},
        "elements": elements,
    }


def test_typeless_model_elements_take_the_type_of_their_source_or_fall_back() -> None:
    fact = {
        "kind": "entity",
        "elements": {
            "QTY": {"type": "cds.Decimal", "precision": 13, "scale": 3},
            "REGION": {"type": "cds.String", "length": 4},
        },
    }
    model = cube(
        "FACT",
        [{"ref": ["FACT", "QTY"], "as": "QUANTITY"}, {"ref": ["REGION"]}, {"xpr": [{"val": 1}], "as": "ONE"}],
        {"QUANTITY": {"@AnalyticsDetails.measureType": {"#": "BASE"}}, "REGION": {}, "ONE": {}},
    )
    frames = read(("S", csn(FACT=fact, MODEL=model)))
    cols = {r["column"]: r for r in frames.columns.filter(pl.col("name") == "MODEL").iter_rows(named=True)}
    assert (
        cols["QUANTITY"]["source_type"],
        cols["QUANTITY"]["precision"],
        cols["QUANTITY"]["type_origin"],
    ) == (
        "cds.Decimal",
        13,
        "lineage",
    )
    assert (cols["REGION"]["source_type"], cols["REGION"]["length"]) == ("cds.String", 4)
    assert (cols["ONE"]["source_type"], cols["ONE"]["type_origin"]) == ("cds.String", "fallback")
    warning = [e for e in frames.events if e.event == "type_fallback"]
    assert len(warning) == 1 and warning[0].details["columns"] == ["ONE"]


def test_hierarchies_keep_their_labels_levels_and_parent_child_columns() -> None:
    product = {
        "kind": "entity",
        "@ObjectModel.modelingPattern": {"#": "ANALYTICAL_DIMENSION"},
        "@Hierarchy.leveled": [
            {
                "name": "Prod_Categ",
                "label": "Product Category Hierarchy",
                "levels": [{"element": {"=": "CATEGORY"}}, {"element": {"=": "ID"}}],
            }
        ],
        "@Hierarchy.parentChild": [
            {
                "name": "Org",
                "label": "{i18n>ORG}",
                "recurse": {"parent": [{"=": "MANAGER"}], "child": [{"=": "ID"}]},
            }
        ],
        "elements": {"ID": {"type": "cds.String", "length": 10}},
    }
    doc = CsnDocument(
        origin="p.json", space="S", payload=csn(P=product), i18n={"en": {"ORG": "Organisation"}}
    )
    frames = read_documents([doc])
    assert frames.assets["hierarchies"].item().to_list() == ["Prod_Categ", "Org"]
    assert json.loads(frames.assets["hierarchy_details"].item()) == [
        {"name": "Prod_Categ", "label": "Product Category Hierarchy", "levels": ["CATEGORY", "ID"]},
        {"name": "Org", "label": "Organisation", "parent": ["MANAGER"], "child": ["ID"]},
    ]


def test_measures_take_the_aggregation_of_the_column_they_come_from() -> None:
    fact = {
        "kind": "entity",
        "elements": {
            "QTY": {"type": "cds.Decimal", "precision": 13, "scale": 3, "@Aggregation.default": {"#": "SUM"}},
            "PRICE": {
                "type": "cds.Decimal",
                "precision": 13,
                "scale": 2,
                "@Aggregation.default": {"#": "MAX"},
            },
        },
    }
    view = {
        "kind": "entity",
        "query": {"SELECT": {"from": {"ref": ["FACT"]}, "columns": [{"ref": ["QTY"]}, {"ref": ["PRICE"]}]}},
        "elements": {"QTY": {"@AnalyticsDetails.measureType": {"#": "BASE"}}, "PRICE": {}},
    }
    model = cube(
        "VIEW",
        [{"ref": ["QTY"], "as": "QUANTITY"}, {"ref": ["PRICE"], "as": "TOP_PRICE"}],
        {
            "QUANTITY": {"@AnalyticsDetails.measureType": {"#": "BASE"}},
            "TOP_PRICE": {
                "@AnalyticsDetails.measureType": {"#": "BASE"},
                "@Aggregation.default": {"#": "AVG"},
            },
        },
    )
    frames = read(("S", csn(FACT=fact, VIEW=view, MODEL=model)))
    aggregation = {(r["name"], r["column"]): r["aggregation"] for r in frames.columns.iter_rows(named=True)}
    assert aggregation[("VIEW", "QTY")] == "SUM"  # a measure over a summed column is summed
    assert aggregation[("MODEL", "QUANTITY")] == "SUM"  # through two steps
    assert aggregation[("MODEL", "TOP_PRICE")] == "AVG"  # its own aggregation stays
    assert aggregation[("VIEW", "PRICE")] is None  # not a measure: nothing inherited


def test_duplicates_identical_count_once_different_are_flagged(tmp_path: Path) -> None:
    write(tmp_path / "S" / "a.json", csn(T=TABLE))
    write(tmp_path / "S" / "b.json", csn(T={**TABLE, "_meta": {"folder": "x"}}))  # bookkeeping only
    frames = CsnSource(CsnSourceConfig(path=tmp_path)).read()
    assert frames.assets.height == 1 and frames.assets["conflict_files"].list.len().item() == 0
    assert frames.columns.height == 3

    reordered = dict(reversed(list(TABLE.items())))  # the same content with keys in another order
    write(tmp_path / "S" / "d.json", csn(T=reordered))
    frames = CsnSource(CsnSourceConfig(path=tmp_path)).read()
    assert frames.assets.height == 1 and frames.assets["conflict_files"].list.len().item() == 0

    changed = json.loads(json.dumps(TABLE))
    changed["elements"]["EXTRA"] = {"type": "cds.Integer"}
    write(tmp_path / "S" / "c.json", csn(T=changed))
    frames = CsnSource(CsnSourceConfig(path=tmp_path)).read()
    assert frames.assets.height == 1
    assert len(frames.assets["conflict_files"].item()) == 4
    assert frames.columns.height == 3  # the first file's columns, not a mix
    assert [e.event for e in frames.events] == ["duplicate_conflict"]
    # The event says which copies agree: a, b and d (key order and _meta aside) against c.
    versions = frames.events[0].details["versions"]
    assert [sorted(Path(f).name for f in v) for v in versions] == [["a.json", "b.json", "d.json"], ["c.json"]]
    assert "in 2 versions" in frames.events[0].message


def test_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    write(tmp_path / "S" / "good.json", csn(T=TABLE))
    bad = write(tmp_path / "S" / "bad.json", '{"definitions": {\n  "T": {"kind": "entity",,}\n}}')
    with pytest.raises(SourceError) as caught:
        CsnSource(CsnSourceConfig(path=tmp_path)).read()
    message = str(caught.value)
    assert str(bad) in message and "line 2" in message and "column" in message

    frames = CsnSource(CsnSourceConfig(path=tmp_path, skip_invalid=True)).read()
    assert frames.incomplete
    assert frames.assets["name"].to_list() == ["T"]
    skipped = [e for e in frames.events if e.event == "file_skipped"]
    assert skipped and skipped[0].details["file"] == str(bad)


MALFORMED = [
    ({"T": "a text"}, "'T'", "it is not an object"),
    ({"T": {"kind": "entity", "elements": [{"ID": {"type": "cds.Integer"}}]}}, "'T'", "elements are not"),
    ({"T": {"kind": "entity", "elements": "ID"}}, "'T'", "elements are not an object"),
    ({"T": {"kind": "entity", "elements": None}}, "'T'", "elements are not an object"),
    ({"T": {"kind": "entity", "elements": {"A": {"type": "cds.String"}, "B": 5}}}, "'T'", "element 'B' is"),
    ({"T": {"kind": "entity", "elements": {"A": {"items": 5}}}}, "'T'", "type of its element 'A'"),
    (
        {"V": {"kind": "entity", "query": {"SET": {"args": [5, None]}}, "elements": {"A": {}}}},
        "'V'",
        "TypeError",
    ),
    (
        {
            "V": {
                "kind": "entity",
                "query": {"SELECT": {"from": {"join": "inner", "args": 5}}},
                "elements": {},
            }
        },
        "'V'",
        "TypeError",
    ),
]


@pytest.mark.parametrize(("definitions", "name", "problem"), MALFORMED)
def test_malformed_csn_names_file_and_definition_and_loses_no_columns(
    tmp_path: Path, definitions: dict[str, Any], name: str, problem: str
) -> None:
    write(tmp_path / "S" / "good.json", csn(ORDERS=TABLE))
    bad = write(tmp_path / "S" / "bad.json", csn(**definitions))
    with pytest.raises(SourceError) as caught:
        CsnSource(CsnSourceConfig(path=tmp_path)).read()
    message = str(caught.value)
    assert f"{bad}: definition {name} is not valid CSN" in message and problem in message
    assert "skip_invalid" in (caught.value.hint or "")

    frames = CsnSource(CsnSourceConfig(path=tmp_path, skip_invalid=True)).read()
    assert frames.incomplete
    assert frames.assets["name"].to_list() == ["ORDERS"]
    assert frames.columns.height == 3
    (skipped,) = [e for e in frames.events if e.event == "file_skipped"]
    assert skipped.details == {"file": str(bad), "definition": name.strip("'")}


def test_documents_from_a_tenant_with_definitions_of_the_wrong_type_are_malformed() -> None:
    with pytest.raises(
        SourceError, match="tenant/T: the document is not valid CSN: definitions is not an object"
    ):
        read_documents(
            [CsnDocument(origin="tenant/T", space="S", payload={"definitions": [{"kind": "entity"}]})]
        )


def test_a_business_layer_that_is_no_object_is_malformed(tmp_path: Path) -> None:
    bad = write(tmp_path / "S" / "bad.json", csn(T=TABLE) | {"businessLayerDefinitions": 5})
    with pytest.raises(SourceError, match="the document is not valid CSN: businessLayerDefinitions"):
        CsnSource(CsnSourceConfig(path=tmp_path)).read()
    frames = CsnSource(CsnSourceConfig(path=tmp_path, skip_invalid=True)).read()
    assert frames.assets.is_empty() and frames.incomplete
    assert [e.details["file"] for e in frames.events if e.event == "file_skipped"] == [str(bad)]


def test_a_byte_order_mark_is_read_and_other_encodings_are_named(tmp_path: Path) -> None:
    path = tmp_path / "S" / "bom.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(csn(T=TABLE)).encode())
    assert CsnSource(CsnSourceConfig(path=tmp_path)).read().assets["name"].to_list() == ["T"]
    latin = tmp_path / "S" / "latin.json"
    latin.write_bytes('{"definitions": {"Stra\u00dfe": {"kind": "entity"}}}'.encode("latin-1"))
    with pytest.raises(
        SourceError, match=r"latin\.json is not UTF-8 text: the byte at offset 22 cannot be decoded"
    ):
        CsnSource(CsnSourceConfig(path=tmp_path)).read()


@pytest.mark.parametrize(("definitions", "found"), [([], "list"), ("x", "text"), (None, "null")])
def test_definitions_that_are_no_object_are_invalid_csn(tmp_path: Path, definitions: Any, found: str) -> None:
    """Broken CSN, not some other JSON file to pass over: the run stops, or skips it and ends partial."""
    write(tmp_path / "S" / "bad.json", {"definitions": definitions})
    write(tmp_path / "S" / "good.json", csn(T=TABLE))
    with pytest.raises(SourceError, match=rf"bad\.json is not valid CSN: its 'definitions' is {found}"):
        CsnSource(CsnSourceConfig(path=tmp_path)).read()
    frames = CsnSource(CsnSourceConfig(path=tmp_path, skip_invalid=True)).read()
    assert frames.incomplete and frames.assets["name"].to_list() == ["T"]
    assert [e.event for e in frames.events if e.severity == "error"] == ["file_skipped"]


def test_files_that_are_not_csn_are_reported(tmp_path: Path) -> None:
    write(tmp_path / "S" / "space.json", {"S": {"spaceDefinition": {"version": "1.0.4"}}})
    write(tmp_path / "S" / "other.json", [1, 2, 3])
    frames = CsnSource(CsnSourceConfig(path=tmp_path)).read()
    assert frames.assets.is_empty()
    assert sorted((e.event, e.severity) for e in frames.events) == [
        ("not_csn", "info"),
        ("not_csn", "warning"),
    ]
    assert not frames.incomplete


def test_missing_source_path_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        CsnSource(CsnSourceConfig(path=tmp_path / "nope", space="S")).read()


def test_calculated_measures_are_numeric_when_their_operands_are() -> None:
    fact = {
        "kind": "entity",
        "elements": {
            "NET": {"type": "cds.Decimal", "precision": 15, "scale": 2},
            "TAX": {"type": "cds.Decimal", "precision": 15, "scale": 2},
            "QTY": {"type": "cds.Integer"},
            "CODE": {"type": "cds.String", "length": 2},
        },
    }
    measure = {"@AnalyticsDetails.measureType": {"#": "CALCULATION"}}
    calc = {"xpr": [{"ref": ["NET"]}, "+", {"ref": ["TAX"]}], "as": "GROSS"}
    mixed = {"xpr": [{"ref": ["NET"]}, "*", {"ref": ["QTY"]}], "as": "WEIGHTED"}
    text = {
        "xpr": ["case", "when", {"ref": ["NET"]}, ">", {"val": 0}, "then", {"ref": ["CODE"]}, "end"],
        "as": "LABEL",
    }
    model = {
        "kind": "entity",
        "query": {"SELECT": {"from": {"ref": ["FACT"]}, "columns": [calc, mixed, {**text, "as": "FLAG"}]}},
        "elements": {"GROSS": measure, "WEIGHTED": measure, "FLAG": measure | {"@Semantics.text": True}},
    }
    frames = read(("S", csn(FACT=fact, MODEL=model)))
    cols = {r["column"]: r for r in frames.columns.filter(pl.col("name") == "MODEL").iter_rows(named=True)}
    assert (cols["GROSS"]["source_type"], cols["GROSS"]["precision"], cols["GROSS"]["scale"]) == (
        "cds.Decimal",
        15,
        2,
    )
    assert (cols["WEIGHTED"]["source_type"], cols["WEIGHTED"]["precision"]) == ("cds.Double", None)
    # an operand that is text means the result is not known to be numeric: it falls back, with a warning
    assert cols["FLAG"]["type_origin"] == "fallback"


# Any JSON value an element field may hold, odd ones included (the reader is told nothing about their types).
_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),  # what orjson reads
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["cds.String", "cds.Decimal", "10", "true", "{i18n>LABEL}"]),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.sampled_from(["#", "=", "ref"]), inner, max_size=2)
    ),
    max_leaves=4,
)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from([*ELEMENT_FIELDS, "@description", "other"]), _json_values, max_size=4
        ),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_elements_read_alike_whether_polars_or_python_gathers_their_fields(
    elements: list[dict[str, Any]], plain: bool
) -> None:
    """Polars gathers the common element fields itself when every value fits (real exports); otherwise Python
    does, where any JSON value (a type given as a list, a label as an object, a number too large) becomes text
    or null instead of failing. Either way the same documents give the same columns."""
    if plain:  # the shapes real exports have, so the compiled path is taken
        elements = [
            {
                k: (
                    True
                    if k in ("key", "notNull")
                    else 10
                    if k in ("length", "precision", "scale")
                    else str(v)
                )
                for k, v in e.items()
            }
            for e in elements
        ]
    document = CsnDocument(
        origin="odd.json",
        space="S",
        payload={
            "definitions": {
                "T": {"kind": "entity", "elements": {f"C{i}": e for i, e in enumerate(elements)}},
            }
        },
    )

    def read() -> pl.DataFrame | str:
        try:
            return read_documents([document]).columns
        except SourceError as exc:  # a type that is no CSN type reference: named, both ways alike
            return exc.message

    compiled = read()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(csn_reader, "_common_fields", csn_reader._common_fields_in_python)
        in_python = read()
    if isinstance(compiled, str) or isinstance(in_python, str):
        assert compiled == in_python
        return
    assert_frame_equal(compiled, in_python)
    assert compiled["column"].to_list() == [f"C{i}" for i in range(len(elements))]


@pytest.mark.parametrize(
    "neighbour", [{}, {"@EndUserText.label": {"#": "odd"}}], ids=["alone", "odd neighbour"]
)
def test_flags_texts_and_numbers_read_the_same_whatever_the_other_elements(neighbour: dict[str, Any]) -> None:
    """How an element's fields read depends on the element alone: the same values give the same columns
    whether or not another element of the file holds a value only Python can read."""
    elements = {
        "FLAG_TRUE": {"type": "cds.String", "key": True, "notNull": True},
        "FLAG_TEXT": {"type": "cds.String", "key": "true", "notNull": "TRUE"},
        "FLAG_TWO": {"type": "cds.String", "key": 2, "notNull": 0.5},
        "FLAG_ONE_TEXT": {"type": "cds.String", "key": "1", "notNull": 1},
        "FLAG_FALSE": {"type": "cds.String", "key": False, "notNull": None},
        "LIST_TEXTS": {"type": "cds.String", "@EndUserText.quickInfo": ["a"], "@EndUserText.label": []},
        "SMALL": {"type": "cds.String", "@EndUserText.quickInfo": 1e-7, "@EndUserText.label": 1e16},
        "BRACKETED": {
            "type": "cds.String",
            "@EndUserText.quickInfo": "[draft] net",
            "@EndUserText.label": "[x]",
        },
        "NEIGHBOUR": {"type": "cds.String", **neighbour},
    }
    columns = read_documents(
        [CsnDocument("f.json", "S", {"definitions": {"T": {"kind": "entity", "elements": elements}}})]
    ).columns
    rows = {row["column"]: row for row in columns.iter_rows(named=True)}
    flags = {
        name: (rows[name]["is_key"], rows[name]["not_null"]) for name in elements if name.startswith("FLAG")
    }
    assert flags == {
        "FLAG_TRUE": (True, True),
        "FLAG_TEXT": (True, True),
        "FLAG_TWO": (False, False),
        "FLAG_ONE_TEXT": (False, False),
        "FLAG_FALSE": (False, False),
    }
    assert (rows["LIST_TEXTS"]["description"], rows["LIST_TEXTS"]["business_name"]) == (None, None)
    assert (rows["SMALL"]["description"], rows["SMALL"]["business_name"]) == (str(1e-7), str(1e16))
    assert (rows["BRACKETED"]["description"], rows["BRACKETED"]["business_name"]) == ("[draft] net", "[x]")
