"""The default Glue mapping: types per distinct facets, one-line comments, measure and dimension Parameters."""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from metasync.sources.csn import CsnDocument, read_documents
from metasync.transform.mapping import (
    MAX_COMMENT,
    column_types,
    duplicated_names,
    glue_type_expr,
    map_assets,
    map_columns,
    one_line,
    one_line_where_needed,
    resolve_names,
    source_type_label_expr,
    table_inputs,
    table_keys,
    with_asset_key,
)
from metasync.validate.glue_limits import find_violations

FACETS = {
    "source_type": pl.Utf8,
    "length": pl.Int64,
    "precision": pl.Int64,
    "scale": pl.Int64,
    "glue_type_hint": pl.Utf8,
}


def _types_frame(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=FACETS, orient="row")


def test_types_per_distinct_facets_equal_the_per_row_expressions_in_row_order() -> None:
    rows = [
        ("cds.Decimal", None, 15, 2, None),
        ("cds.String", 40, None, None, None),
        ("cds.Decimal", None, None, None, None),  # a floating decimal: double
        ("cds.Decimal", None, 15, 2, None),  # repeats the first row
        ("cds.Decimal", None, 60, 20, None),  # precision above 38
        ("cds.Struct", None, None, None, "struct<a:int>"),
        ("cds.Integer", None, None, None, None),
        ("cds.Decimal", None, 15, None, None),  # scale missing: null must join null, not another row
        ("cds.String", None, None, None, None),
        ("cds.String", 40, None, None, None),
        ("my.Unknown", None, None, None, None),
    ]
    frame = _types_frame(rows)
    expected = frame.select(glue_type_expr().alias("_glue_type"), source_type_label_expr().alias("_label"))
    got = column_types(frame.lazy()).collect()
    assert got["_glue_type"].to_list() == expected["_glue_type"].to_list()
    assert got["_source_type_label"].to_list() == expected["_label"].to_list()
    assert got["_glue_type"].to_list()[:5] == [
        "decimal(15,2)",
        "string",
        "double",
        "decimal(15,2)",
        "decimal(38,0)",
    ]


facet_rows = st.lists(
    st.tuples(
        st.sampled_from(["cds.Decimal", "cds.String", "cds.Integer", "cds.Double", "other.Type", None]),
        st.one_of(st.none(), st.integers(1, 5000)),
        st.one_of(st.none(), st.integers(0, 60)),
        st.one_of(st.none(), st.integers(-2, 60)),
        st.one_of(st.none(), st.sampled_from(["array<int>", "struct<a:string>"])),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(facet_rows)
def test_types_per_distinct_facets_match_on_any_rows(rows: list[tuple[Any, ...]]) -> None:
    frame = _types_frame(rows)
    got = column_types(frame.lazy()).collect()
    assert got.height == frame.height
    expected = frame.select(glue_type_expr().alias("type"), source_type_label_expr().alias("label"))
    assert got["_glue_type"].to_list() == expected["type"].to_list()
    assert got["_source_type_label"].to_list() == expected["label"].to_list()


COMMENTS = [
    None,
    "",
    "plain",
    " leading",
    "trailing ",
    "a\nb",
    "a\r\n\r\nb",
    "tab\there",
    "\t",
    "\u00a0no-break space\u00a0",
    "x" * MAX_COMMENT,
    "x" * (MAX_COMMENT + 1),
    "ä" * 200,  # 400 bytes but 200 characters: within the limit, unchanged
    "ä" * 300,
    "Straße\nÆrø " + "y" * 300,
]


def test_one_line_where_needed_equals_one_line_on_every_row() -> None:
    frame = pl.DataFrame({"comment": COMMENTS, "other": range(len(COMMENTS))})
    expected = frame.select(one_line(pl.col("comment"), MAX_COMMENT))["comment"]
    got = one_line_where_needed(frame, "comment", MAX_COMMENT)
    assert got["comment"].to_list() == expected.to_list()
    assert got["other"].to_list() == frame["other"].to_list()
    assert got["comment"][12] == "ä" * 200
    assert got["comment"][11] == "x" * (MAX_COMMENT - 3) + "..."


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=400)), max_size=30))
def test_one_line_where_needed_matches_one_line_on_any_text(texts: list[str | None]) -> None:
    frame = pl.DataFrame({"comment": texts}, schema={"comment": pl.Utf8})
    expected = frame.select(one_line(pl.col("comment"), MAX_COMMENT))["comment"].to_list()
    assert one_line_where_needed(frame, "comment", MAX_COMMENT)["comment"].to_list() == expected


def test_measures_and_dimensions_parameters_list_only_assets_that_have_them() -> None:
    fact = {
        "kind": "entity",
        "@ObjectModel.modelingPattern": {"#": "ANALYTICAL_FACT"},
        "elements": {
            "ID": {"type": "cds.String", "length": 10, "key": True},
            "REGION": {"type": "cds.String", "length": 4, "@Analytics.dimension": True},
            "AMOUNT": {
                "type": "cds.Decimal",
                "precision": 15,
                "scale": 2,
                "@Aggregation.default": {"#": "SUM"},
            },
            "QTY": {"type": "cds.Integer", "@Aggregation.default": {"#": "SUM"}},
            "COUNTRY": {"type": "cds.String", "length": 3, "@Analytics.dimension": True},
        },
    }
    table = {"kind": "entity", "elements": {"ID": {"type": "cds.String", "length": 10}}}
    frames = read_documents(
        [CsnDocument(origin="a.json", space="S", payload={"definitions": {"FACT": fact, "PLAIN": table}})]
    )
    mapped = map_assets(frames.assets.lazy(), frames.columns.lazy(), frames.edges.lazy()).collect()
    params = {row["name"]: row["parameters"] for row in mapped.iter_rows(named=True)}
    assert params["FACT"]["metasync:measures"] == "AMOUNT,QTY"
    assert params["FACT"]["metasync:dimensions"] == "REGION,COUNTRY"
    assert params["PLAIN"]["metasync:measures"] is None
    assert params["PLAIN"]["metasync:dimensions"] is None
    assert mapped["name"].to_list() == frames.assets["name"].to_list()
    columns = map_columns(frames.columns.lazy()).collect()
    assert columns.columns[: len(frames.columns.columns)] == frames.columns.columns
    assert columns["glue_type"].to_list() == ["string", "string", "decimal(15,2)", "int", "string", "string"]


def _source(
    asset_ids: list[tuple[str, str]], column_ids: list[tuple[str, str, str]]
) -> tuple[pl.DataFrame, ...]:
    assets = pl.DataFrame(asset_ids, schema={"space": pl.Utf8, "name": pl.Utf8}, orient="row")
    columns = pl.DataFrame(
        column_ids, schema={"space": pl.Utf8, "name": pl.Utf8, "column": pl.Utf8}, orient="row"
    )
    return assets, columns


def test_asset_key_is_the_asset_row_in_any_column_order_and_numbers_orphans_apart() -> None:
    assets, columns = _source(
        [("S", "A"), ("S", "B"), ("T", "A")],
        [
            ("S", "B", "x"),
            ("S", "A", "x"),
            ("S", "A", "y"),
            ("T", "A", "x"),
            ("S", "B", "y"),  # B again, after other assets
            ("GONE", "Z", "x"),  # no such asset
            ("GONE", "Z", "y"),
            ("GONE", "Y", "x"),
            ("S", "A", "z"),
        ],
    )
    keyed_assets, keyed = with_asset_key(assets, columns)
    assert keyed_assets["_asset"].to_list() == [0, 1, 2]
    assert keyed["_asset"].dtype == pl.UInt32
    assert keyed["_asset"].to_list()[:5] == [1, 0, 0, 2, 1]
    orphans = keyed["_asset"].to_list()[5:8]
    assert orphans[0] == orphans[1] != orphans[2] and min(orphans) >= 3
    assert keyed["_asset"][8] == 0
    assert keyed.drop("_asset").equals(columns)
    empty_assets, empty = with_asset_key(assets, columns.clear())
    assert empty.height == 0 and empty["_asset"].dtype == pl.UInt32
    # An asset listed twice (frames built by hand) keeps one key, so its columns still find their table.
    twice, _ = _source([("S", "A"), ("S", "B"), ("S", "A")], [])
    twice_keyed, twice_columns = with_asset_key(twice, columns.head(3))
    assert twice_keyed["_asset"].to_list() == [0, 1, 0]
    assert twice_columns["_asset"].to_list() == [1, 0, 0]


def test_names_and_table_inputs_are_the_same_with_or_without_the_asset_key(sales_frames) -> None:
    assets, columns = sales_frames
    clashing = columns.with_columns(
        glue_column=pl.when(pl.col("column") == "ID").then(pl.lit("Amount")).otherwise(pl.col("glue_column"))
    )
    plain = resolve_names(assets, clashing)
    keyed = resolve_names(*with_asset_key(assets, clashing))
    assert keyed[1].drop("_asset").equals(plain[1])
    assert keyed[0].drop("_asset").equals(plain[0])
    assert plain[1]["glue_column"].n_unique() < plain[1].height  # same names across tables stay
    assert table_inputs(*keyed)["table_input"].equals(table_inputs(*plain)["table_input"])
    assert table_keys(*keyed) == ["_asset"] and table_keys(*plain) == ["space", "name"]


def test_limit_checks_find_the_same_duplicate_columns_with_or_without_the_asset_key(sales_frames) -> None:
    assets, columns = sales_frames
    dup = columns.with_columns(glue_column=pl.lit("same"))
    plain = find_violations(assets, dup)
    keyed = find_violations(*with_asset_key(assets, dup))
    assert plain.filter(pl.col("check") == "unique_column").height > 0
    assert keyed.sort(pl.all()).equals(plain.sort(pl.all()))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["S", "T"]),
            st.sampled_from(["A", "B", "C"]),
            st.one_of(st.none(), st.sampled_from(["x", "y", "X", "ü", ""])),
        ),
        max_size=40,
    )
)
def test_duplicated_names_flags_what_a_struct_comparison_flags(
    rows: list[tuple[str, str, str | None]],
) -> None:
    columns = pl.DataFrame(
        rows, schema={"space": pl.Utf8, "name": pl.Utf8, "glue_column": pl.Utf8}, orient="row"
    )
    assets = columns.select("space", "name").unique(maintain_order=True)
    expected = columns.select(pl.struct("space", "name", "glue_column").is_duplicated()).to_series().to_list()
    assert duplicated_names(columns, ["space", "name"], "glue_column").to_list() == expected
    keyed = with_asset_key(assets, columns)[1]
    assert duplicated_names(keyed, ["_asset"], "glue_column").to_list() == expected


def test_table_inputs_in_slices_equal_one_pass(sales_frames, monkeypatch) -> None:
    import metasync.transform.mapping as mapping

    keyed = with_asset_key(*sales_frames)
    whole = table_inputs(*keyed)
    monkeypatch.setattr(mapping, "SLICE_ASSETS", 1)
    sliced = table_inputs(*keyed)
    assert sliced.equals(whole)
    assert sliced["table_input"].n_chunks() > 1  # it was done in slices
    assert sliced.height == sales_frames[0].height


def test_table_inputs_of_an_asset_listed_twice_do_not_repeat_its_columns(sales_frames, monkeypatch) -> None:
    import metasync.transform.mapping as mapping

    assets, columns = sales_frames
    twice = pl.concat([assets, assets.head(1)])
    keyed = with_asset_key(twice, columns)
    whole = table_inputs(*keyed)
    monkeypatch.setattr(mapping, "SLICE_ASSETS", 1)
    assert table_inputs(*keyed).equals(whole)
    assert whole.height == twice.height
    assert whole["table_input"][0] == whole["table_input"][-1]


def test_column_signature_is_the_one_the_target_reads_back_from_the_table_input(sales_frames) -> None:
    """`schema_edited_in_target` compares the signature made here with the one the target makes of the table it
    holds: for a table written from this TableInput they must be the same text, column order included, and
    empty for a table without columns."""
    import orjson

    from metasync.targets.base import column_signature

    assets, columns = sales_frames
    reordered = columns.sample(fraction=1.0, shuffle=True, seed=7)  # ordinal, not row order, decides
    no_columns = assets.head(1).with_columns(name=pl.lit("EMPTY"), glue_table=pl.lit("empty"))
    built = table_inputs(pl.concat([assets, no_columns]), reordered)
    read_back = [column_signature(orjson.loads(text)) for text in built["table_input"]]
    assert built["column_signature"].to_list() == read_back
    assert built["column_signature"][-1] == ""
    assert all(built["column_signature"][:-1])
