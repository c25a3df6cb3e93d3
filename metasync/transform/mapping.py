"""Map source frames to Glue: types, safe names, comments, descriptions, Parameters, TableInput JSON.

All of it is Polars expressions over whole frames. Naming rule (documented in the README):

1. lowercase; letters with accents lose them (`é` → `e`); every run of other characters becomes `_`;
   leading/trailing `_` are dropped; an empty result becomes `x`.
2. a name longer than 255 bytes is cut to 246 characters plus `_` and 8 hex digits of the SHA-256 of the
   original name.
3. names that still collide (two assets → one table in one database, two spaces → one database, two columns
   → one column name in a table): the first keeps the plain name, every other one gets `_` plus 8 hex digits of
   the SHA-256 of its original name. "First" means the lowest original name in code-point order for tables and
   databases, and the lowest ordinal (definition order) for columns.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from metasync.errors import ConfigError
from metasync.targets.base import SIGNATURE_COLUMN_SEP, signature_entry

MAX_NAME = 255
MAX_COMMENT = 255
MAX_DESCRIPTION = 2048
MAX_PARAMETER_VALUE = 512_000
MAX_GLUE_TYPE = 131_072
# Glue (Hive) column types: lowercase scalars with their sizes, or nested types (checked for their alphabet).
GLUE_TYPE_PATTERN = (
    r"^(string|tinyint|smallint|int|bigint|float|double|boolean|date|timestamp|binary"
    r"|varchar\((\d+)\)|char\((\d+)\)|decimal\((\d+),(\d+)\)|(array|map|struct)<[a-z0-9_<>:,()]+>)$"
)
_GLUE_TYPE = re.compile(GLUE_TYPE_PATTERN)


def glue_type_problem(glue_type: str) -> str | None:
    """Why `glue_type` is not a valid Glue column type, or None when it is (the one definition the rules'
    load-time check and the Glue limit checks share)."""
    m = _GLUE_TYPE.match(glue_type)
    if m is None or len(glue_type.encode()) > MAX_GLUE_TYPE:
        return "is not a Glue type (lowercase Hive types such as string, varchar(n), decimal(p,s), bigint)"
    if m.group(2) is not None and not 1 <= int(m.group(2)) <= 65535:
        return "varchar length must be between 1 and 65535"
    if m.group(3) is not None and not 1 <= int(m.group(3)) <= 255:
        return "char length must be between 1 and 255"
    if m.group(4) is not None and not (1 <= int(m.group(4)) <= 38 and int(m.group(5)) <= int(m.group(4))):
        return "decimal needs 1 <= precision <= 38 and scale <= precision"
    return None


SUFFIX_LEN = 8

STRING_TYPES = (
    "cds.String",
    "cds.LargeString",
    "cds.UUID",
    "cds.Time",
    "cds.hana.NVARCHAR",
    "cds.hana.VARCHAR",
    "cds.hana.CHAR",
    "cds.hana.NCHAR",
    "cds.hana.CLOB",
    "cds.hana.NCLOB",
    "cds.hana.ALPHANUM",
    "cds.hana.SHORTTEXT",
    "cds.hana.ST_POINT",
    "cds.hana.ST_GEOMETRY",
)
SIMPLE_TYPES: dict[str, str] = {
    "cds.Boolean": "boolean",
    "cds.UInt8": "smallint",
    "cds.hana.TINYINT": "smallint",
    "cds.Int16": "smallint",
    "cds.hana.SMALLINT": "smallint",
    "cds.Integer": "int",
    "cds.Int32": "int",
    "cds.hana.INTEGER": "int",
    "cds.Integer64": "bigint",
    "cds.Int64": "bigint",
    "cds.hana.BIGINT": "bigint",
    "cds.DecimalFloat": "double",
    "cds.Double": "double",
    "cds.hana.DOUBLE": "double",
    "cds.hana.SMALLDECIMAL": "double",
    "cds.hana.REAL": "float",
    "cds.Date": "date",
    "cds.DateTime": "timestamp",
    "cds.Timestamp": "timestamp",
    "cds.hana.SECONDDATE": "timestamp",
    "cds.Binary": "binary",
    "cds.LargeBinary": "binary",
    "cds.hana.BINARY": "binary",
    "cds.hana.VARBINARY": "binary",
    "cds.hana.BLOB": "binary",
}


ASSET_KEY = "_asset"


def with_asset_key(assets: pl.DataFrame, columns: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both frames with `_asset` (UInt32), an internal key naming the asset of each row: one number per distinct
    (space, name), in order of first appearance, assets first (for assets unique on space and name, as the
    reader gives them, the key is the asset's row). Joins, group-bys and uniqueness checks of millions of
    columns by their table then hash one integer instead of two strings.

    Columns of one asset usually arrive together (the reader's order), so only the first column of every run of
    the same (space, name) is looked up; columns in any other order get the same keys.
    """
    keys = ["space", "name"]
    head = (
        (pl.col("space") != pl.col("space").shift()) | (pl.col("name") != pl.col("name").shift())
    ).fill_null(True)
    runs = columns.lazy().select(*keys, _head=head).with_columns(_run=pl.col("_head").cum_sum() - 1)
    heads = runs.filter(pl.col("_head")).select(keys)
    ids = (
        pl.concat([assets.lazy().select(keys), heads])
        .unique(keys, keep="first", maintain_order=True)
        .with_row_index(ASSET_KEY)
    )
    of_heads = heads.join(ids, on=keys, how="left", maintain_order="left").select(ASSET_KEY)
    run, of_head, numbered = pl.collect_all([runs.select("_run"), of_heads, ids], engine="in-memory")
    key = of_head[ASSET_KEY].gather(run["_run"]) if columns.height else pl.Series(ASSET_KEY, [], pl.UInt32)
    if numbered.head(assets.height).select(keys).equals(assets.select(keys)):
        asset_key = pl.int_range(assets.height, dtype=pl.UInt32, eager=True)  # unique assets: the row
    else:
        asset_key = assets.select(keys).join(numbered, on=keys, how="left", maintain_order="left")[ASSET_KEY]
    return (
        assets.with_columns(asset_key.cast(pl.UInt32).alias(ASSET_KEY)),
        columns.with_columns(key.cast(pl.UInt32).alias(ASSET_KEY)),
    )


def table_keys(*frames: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """The columns that name a row's asset: `_asset` when every frame has it, else space and name."""
    if all(ASSET_KEY in frame.collect_schema() for frame in frames):
        return [ASSET_KEY]
    return ["space", "name"]


def duplicated_names(frame: pl.DataFrame, group: list[str], name: str) -> pl.Series:
    """True for every row that shares `name` with another row of the same `group` (nulls count as equal).

    Grouped by the internal asset key, each row becomes one 64-bit number (the key, and the category code of
    the name) and duplicates are found by sorting those and comparing neighbours: several times cheaper than
    hashing the texts at millions of rows.
    """
    if group != [ASSET_KEY]:
        return pl.DataFrame([*(frame[g] for g in group), frame[name]]).is_duplicated()
    code = frame[name].cast(pl.Categorical).to_physical().cast(pl.UInt64).fill_null(2**32 - 1)
    key = frame[ASSET_KEY].cast(pl.UInt64) * 2**32 + code
    ordered = key.sort()
    repeated = ordered.filter(ordered == ordered.shift(1)).unique()
    return key.is_in(repeated.implode())


def scalar_glue_type(base: str | None, length: int | None, precision: int | None, scale: int | None) -> str:
    """The Glue type of one scalar CSN type (used for element types nested in arrays and structures)."""
    if base in SIMPLE_TYPES:
        return SIMPLE_TYPES[base]
    if base == "cds.Decimal":
        if not isinstance(precision, int) or not isinstance(scale, int):
            return "double"
        p, s = _clamp_decimal(precision, scale)
        return f"decimal({p},{s})"
    return "string"


def _clamp_decimal(precision: int, scale: int) -> tuple[int, int]:
    if precision <= 38:
        return max(precision, 1), min(max(scale, 0), precision)
    return 38, max(0, min(scale - (precision - 38), 38))


def glue_type_expr() -> pl.Expr:
    """Glue type from `source_type`, `precision`, `scale` and `glue_type_hint`.

    Decimals keep precision and scale (precision above 38 drops fractional digits first); a decimal without
    precision or scale is a floating decimal and becomes `double`. Unknown types become `string`.
    """
    source = pl.col("source_type")
    p, s = pl.col("precision"), pl.col("scale")
    clamped_p = pl.min_horizontal(pl.max_horizontal(p, pl.lit(1)), pl.lit(38))
    clamped_s = (
        pl.when(p <= 38)
        .then(pl.min_horizontal(pl.max_horizontal(s, pl.lit(0)), p))
        .otherwise(pl.max_horizontal(pl.lit(0), pl.min_horizontal(s - (p - 38), pl.lit(38))))
    )
    decimal = pl.format("decimal({},{})", clamped_p, clamped_s)
    return (
        pl.when(pl.col("glue_type_hint").is_not_null())
        .then(pl.col("glue_type_hint"))
        .when(source == "cds.Decimal")
        .then(pl.when(p.is_not_null() & s.is_not_null()).then(decimal).otherwise(pl.lit("double")))
        .otherwise(source.replace_strict(SIMPLE_TYPES, default="string", return_dtype=pl.Utf8))
    )


def source_type_label_expr() -> pl.Expr:
    """The source type with its facets, e.g. `cds.Decimal(15,2)` or `cds.String(40)`."""
    facets = (
        pl.when(pl.col("precision").is_not_null())
        .then(
            pl.format(
                "({})",
                pl.concat_str(
                    [pl.col("precision").cast(pl.Utf8), pl.col("scale").cast(pl.Utf8)],
                    separator=",",
                    ignore_nulls=True,
                ),
            )
        )
        .when(pl.col("length").is_not_null())
        .then(pl.format("({})", pl.col("length")))
        .otherwise(pl.lit(""))
    )
    return pl.concat_str([pl.col("source_type"), facets])


def safe_name_expr(expr: pl.Expr) -> pl.Expr:
    """Steps 1 and the cut of step 2 of the naming rule (the hash suffix is added by `resolve_names`)."""
    cleaned = (
        expr.str.normalize("NFKD")
        .str.replace_all(r"\p{Mn}", "")
        .str.to_lowercase()
        .str.replace_all(r"[^a-z0-9_]+", "_")
        .str.replace_all(r"_+", "_")
        .str.strip_chars("_")
    )
    return pl.when(cleaned.str.len_bytes() == 0).then(pl.lit("x")).otherwise(cleaned)


# Characters Glue's text patterns refuse: in a column comment every control character (line breaks and tabs
# included, which are replaced for one line anyway), in a description all but line breaks and tabs; and the
# noncharacters U+FFFE and U+FFFF in both.
NOT_IN_COMMENT = r"[\x00-\x1f\x{FFFE}\x{FFFF}]"
NOT_IN_DESCRIPTION = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{FFFE}\x{FFFF}]"


def one_line(expr: pl.Expr, limit: int) -> pl.Expr:
    """Text on one line, cut to `limit` characters (ending in `...` when cut); control characters become a
    space."""
    flat = expr.str.replace_all(NOT_IN_COMMENT + "+", " ").str.strip_chars()
    return (
        pl.when(flat.str.len_chars() > limit)
        .then(flat.str.slice(0, limit - 3) + pl.lit("..."))
        .otherwise(flat)
    )


def cut(expr: pl.Expr, limit: int) -> pl.Expr:
    return (
        pl.when(expr.str.len_chars() > limit)
        .then(expr.str.slice(0, limit - 3) + pl.lit("..."))
        .otherwise(expr)
    )


def parameters_expr(pairs: list[tuple[str, pl.Expr]]) -> pl.Expr:
    """The Parameters of a row as a struct with one text field per key; null (or empty) means "not set".

    One field per key keeps the key names once per frame instead of once per row, and rules update a key with
    one expression.
    """
    return pl.struct([_set_or_null(value).alias(key) for key, value in pairs])


def _set_or_null(value: pl.Expr) -> pl.Expr:
    # Not `when(text != "").then(text)`: an expression repeated inside when/then is computed once per use.
    return value.cast(pl.Utf8).replace("", None)


# Parameters that carry a field's value, per frame: rules that change the field (value_map, default) change
# these too (`refresh_parameters`), so the catalog shows what the rules made of it.
ASSET_FIELD_PARAMETERS = {
    "kind": "metasync:kind",
    "business_name": "metasync:business_name",
    "modeling_pattern": "metasync:modeling_pattern",
    "remote_source": "metasync:remote_source",
}
COLUMN_FIELD_PARAMETERS = {
    "business_name": "metasync:business_name",
    "description": "metasync:description",
    "semantic_role": "metasync:semantic_role",
    "aggregation": "metasync:aggregation",
}


def refresh_parameters(frame: pl.DataFrame, fields: set[str], parameters: dict[str, str]) -> pl.DataFrame:
    """`frame` with the Parameters of `fields` (see ASSET_FIELD_PARAMETERS) set again from the fields' values."""
    pairs = [(parameters[f], pl.col(f)) for f in sorted(fields) if f in parameters and f in frame.columns]
    if not pairs or "parameters" not in frame.columns:
        return frame
    return frame.with_columns(
        pl.col("parameters").struct.with_fields([_set_or_null(value).alias(key) for key, value in pairs])
    )


TYPE_FACETS = ("source_type", "length", "precision", "scale", "glue_type_hint")


def column_types(columns: pl.LazyFrame) -> pl.LazyFrame:
    """`_glue_type` and `_source_type_label` of every column, in row order.

    Computed once per distinct type with its facets (a tenant has a few dozen on millions of columns) and
    joined back on the facets alone, which costs about half of building the type texts on every row.
    """
    facets = list(TYPE_FACETS)
    types = (
        columns.select(facets)
        .unique()
        .with_columns(_glue_type=glue_type_expr(), _source_type_label=source_type_label_expr())
    )
    return (
        columns.select(facets)
        .join(types, on=facets, how="left", nulls_equal=True, maintain_order="left")
        .select("_glue_type", "_source_type_label")
    )


def map_columns(columns: pl.LazyFrame) -> pl.LazyFrame:
    """Default Glue column name, type, comment and Parameters for every column."""
    label = pl.col("business_name")
    description = pl.col("description")
    typed = pl.concat([columns, column_types(columns)], how="horizontal")
    return typed.with_columns(
        glue_column=pl.col("column"),
        glue_type=pl.col("_glue_type"),
        comment=pl.coalesce(label, description),
        parameters=parameters_expr(
            [
                ("metasync:source_type", pl.col("_source_type_label")),
                ("metasync:business_name", label),
                ("metasync:description", description),
                ("metasync:semantic_role", pl.col("semantic_role")),
                ("metasync:aggregation", pl.col("aggregation")),
                ("metasync:key", pl.when(pl.col("is_key")).then(pl.lit("true"))),
                (
                    "metasync:type_origin",
                    pl.when(pl.col("type_origin") != "declared").then(pl.col("type_origin")),
                ),
            ]
        ),
    ).drop("_glue_type", "_source_type_label")


MAX_UPSTREAM_PARAMETER = 4_000
DATA_FLOW_KINDS = ("from", "join", "union", "fact_source", "dimension_source", "flow")


def upstream_parameter(edges: pl.LazyFrame) -> pl.LazyFrame:
    """`space`, `name`, `upstream`: the direct data-flow upstream ASSET_IDs, comma-separated, size-limited."""
    ids = (
        edges.filter(pl.col("kind").is_in(DATA_FLOW_KINDS))
        .select(
            pl.col("target_space").alias("space"),
            pl.col("target_name").alias("name"),
            pl.concat_str([pl.col("source_space"), pl.lit("."), pl.col("source_name")]).alias("upstream"),
        )
        .unique()
        .sort("space", "name", "upstream")
        .group_by("space", "name", maintain_order=True)
        .agg(pl.col("upstream").str.join(","), pl.len().alias("n"))
    )
    cut_at = MAX_UPSTREAM_PARAMETER - 40
    return ids.select(
        "space",
        "name",
        upstream=pl.when(pl.col("upstream").str.len_chars() > MAX_UPSTREAM_PARAMETER)
        .then(
            pl.format(
                "{},... ({} upstream assets in all)",
                pl.col("upstream").str.slice(0, cut_at).str.replace(r",[^,]*$", ""),
                pl.col("n"),
            )
        )
        .otherwise(pl.col("upstream")),
    )


def map_assets(assets: pl.LazyFrame, columns: pl.LazyFrame, edges: pl.LazyFrame) -> pl.LazyFrame:
    """Default Glue database, table, description and Parameters for every asset."""
    # Only the few measure and dimension columns are grouped (an asset without any gets null, like "").
    roles = (
        columns.filter(pl.col("semantic_role").is_in(["measure", "dimension"]))
        .group_by("space", "name")
        .agg(
            measures=pl.col("column").filter(pl.col("semantic_role") == "measure").str.join(","),
            dimensions=pl.col("column").filter(pl.col("semantic_role") == "dimension").str.join(","),
        )
    )
    details = (
        pl.col("hierarchy_details")
        if "hierarchy_details" in assets.collect_schema().names()
        else pl.lit(None, dtype=pl.Utf8)
    )
    description = pl.concat_str(
        [pl.col("business_name"), pl.col("description")], separator="\n\n", ignore_nulls=True
    )
    return (
        assets.join(roles, on=["space", "name"], how="left", maintain_order="left")
        .join(upstream_parameter(edges), on=["space", "name"], how="left", maintain_order="left")
        .with_columns(
            glue_database=pl.col("space"),
            glue_table=pl.col("name"),
            glue_description=pl.when(description != "").then(description),
            parameters=parameters_expr(
                [
                    ("metasync:managed", pl.lit("true")),
                    ("metasync:space", pl.col("space")),
                    ("metasync:name", pl.col("name")),
                    ("metasync:kind", pl.col("kind")),
                    ("metasync:business_name", pl.col("business_name")),
                    ("metasync:modeling_pattern", pl.col("modeling_pattern")),
                    ("metasync:hierarchies", pl.col("hierarchies").list.join(",")),
                    ("metasync:hierarchy_details", details),
                    ("metasync:measures", pl.col("measures")),
                    ("metasync:dimensions", pl.col("dimensions")),
                    ("metasync:remote_source", pl.col("remote_source")),
                    ("metasync:upstream", pl.col("upstream")),
                ]
            ),
        )
        .drop("measures", "dimensions", "upstream")
    )


def collision_suffix(names: pl.Series) -> pl.Series:
    """`_` + 8 hex digits of SHA-256 of each name (applied only to the few names that collide or are cut).

    SHA-256 rather than Polars' own hash: that one may change between Polars versions, and a changed suffix
    would rename tables, which Glue cannot do.
    """
    digest = hashlib.sha256
    suffixes = [
        digest(n.encode()).hexdigest() for n in names.to_list()
    ]  # row-python-ok: colliding/cut names only
    suffixes = [s[:SUFFIX_LEN] for s in suffixes]
    return pl.Series(names.name, ["_" + s for s in suffixes], dtype=pl.Utf8)


def _dedupe(
    frame: pl.DataFrame, *, group: list[str], name_col: str, original: str, order: str
) -> pl.DataFrame:
    """Apply steps 2 and 3 of the naming rule to `name_col` (already cleaned) within `group`.

    Ranks are computed only among the rows whose name clashes, so the common case costs one hash pass.
    """
    clash = duplicated_names(frame, group, name_col)
    too_long = frame[name_col].str.len_bytes() > MAX_NAME
    candidates = (clash | too_long).arg_true()
    if candidates.is_empty():
        return frame
    sub = (
        frame[candidates]
        .select(list(dict.fromkeys([*group, name_col, original, order])))
        .with_columns(_row=candidates, _rank=pl.col(order).rank("ordinal").over([*group, name_col]))
    )
    sub = sub.filter((pl.col("_rank") > 1) | (pl.col(name_col).str.len_bytes() > MAX_NAME))
    if sub.is_empty():
        return frame
    cut = sub[name_col].str.slice(0, MAX_NAME - SUFFIX_LEN - 1) + collision_suffix(sub[original])
    return frame.with_columns(frame[name_col].scatter(sub["_row"], cut))


def _safe_names(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Step 1 of the naming rule, computed once per distinct name (names repeat across tables)."""
    # Lazy: the optimizer computes the cleaned name once for both of its uses (eager evaluation does it twice).
    distinct = (
        frame.lazy()
        .select(pl.col(column).unique())
        .with_columns(safe_name_expr(pl.col(column)).alias("_safe"))
    ).collect()
    return frame.with_columns(
        pl.col(column).replace_strict(distinct[column], distinct["_safe"], return_dtype=pl.Utf8)
    )


def resolve_names(assets: pl.DataFrame, columns: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Make database, table and column names Glue-safe and unique (steps 1–3 of the naming rule)."""
    assets = _safe_names(_safe_names(assets, "glue_database"), "glue_table")
    split = (
        assets.group_by("space")
        .agg(pl.col("glue_database").unique().sort())
        .filter(pl.col("glue_database").list.len() > 1)
    )
    if split.height:
        first = split.sort("space").head(1)
        space, names = first["space"].item(), first["glue_database"].item().to_list()
        raise ConfigError(
            f"the rules give space {space} more than one Glue database ({', '.join(names[:3])}); metasync "
            "writes one database per space.",
            hint="Make database names depend on the space and environment only.",
        )
    # Databases: distinct spaces that land on one database name.
    databases = assets.select("space", "glue_database").unique(maintain_order=True)
    databases = _dedupe(databases, group=[], name_col="glue_database", original="space", order="space")
    assets = assets.drop("glue_database").join(databases, on="space", how="left", maintain_order="left")
    assets = _dedupe(assets, group=["glue_database"], name_col="glue_table", original="name", order="name")
    columns = _dedupe(
        _safe_names(columns, "glue_column"),
        group=table_keys(columns),
        name_col="glue_column",
        original="column",
        order="ordinal",
    )
    return assets, columns


def finish_text(assets: pl.DataFrame, columns: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bring comments and descriptions within Glue's limits and patterns; the full text stays in Parameters (a
    column's in its metasync:business_name and metasync:description, a cut table description in
    metasync:description)."""
    description = pl.col("glue_description").str.replace_all(NOT_IN_DESCRIPTION + "+", " ")
    long = description.str.len_chars() > MAX_DESCRIPTION
    if "parameters" in assets.columns and assets.select(long.any()).item():
        full = cut(description, MAX_PARAMETER_VALUE)
        assets = assets.with_columns(
            pl.col("parameters").struct.with_fields(pl.when(long).then(full).alias("metasync:description"))
        )
    assets = assets.lazy().with_columns(glue_description=cut(description, MAX_DESCRIPTION)).collect()
    return assets, one_line_where_needed(columns, "comment", MAX_COMMENT)


def one_line_where_needed(frame: pl.DataFrame, column: str, limit: int) -> pl.DataFrame:
    """`one_line` on text `column`, applied only to the texts it changes: those with control characters (line
    breaks and tabs among them), white space at either end, or more than `limit` bytes (a superset of those
    over `limit` characters). Finding them costs a fraction of rewriting millions of column comments that are
    fine as they are."""
    text = frame[column]
    rows = (text.str.contains(NOT_IN_COMMENT + r"|^\s|\s$") | (text.str.len_bytes() > limit)).arg_true()
    if rows.is_empty():
        return frame
    fixed = pl.select(one_line(pl.lit(text.gather(rows)), limit)).to_series()
    return frame.with_columns(text.scatter(rows, fixed))


def parameter_keys(frame: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """The Parameters keys (fields of the `parameters` struct) of a frame; none when it has no Parameters."""
    dtype = frame.collect_schema().get("parameters")
    return [f.name for f in dtype.fields] if isinstance(dtype, pl.Struct) else []


def _set_pairs(column: str, keys: list[str]) -> pl.Expr:
    """The set keys of the Parameters struct `column` as a list of {key, value} (an empty list when none)."""
    if not keys:
        return pl.lit([], dtype=pl.List(pl.Struct({"key": pl.Utf8, "value": pl.Utf8})))
    pairs = [pl.struct(pl.lit(k).alias("key"), pl.col(column).struct.field(k).alias("value")) for k in keys]
    # A fixed-width array first: `concat_list` of structs is many times slower on millions of rows.
    return pl.concat_arr(pairs).arr.to_list().list.filter(pl.element().struct.field("value").is_not_null())


SLICE_ASSETS = 10_000
SLICE_WORKERS = 4  # slices at once, at most (each holds some 100 MB of texts at 20 columns an asset)


def by_asset_slices(
    assets: pl.DataFrame, columns: pl.DataFrame, work: Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]
) -> pl.DataFrame:
    """`work(assets, columns)` for a per-asset result (one row per asset, in order), done on slices of 10,000
    assets with their columns, as many at once as Polars has threads (at most 4), the results concatenated.

    For work that builds texts per column and per table: those then exist for a few slices at a time, not for
    the whole tenant, and a Polars query (which runs each expression on one core) runs on every core. Frames
    without the internal asset key, or of one slice, are done in one pass.
    """
    if assets.height <= SLICE_ASSETS or table_keys(assets, columns) != [ASSET_KEY]:
        return work(assets, columns)
    count = -(-assets.height // SLICE_ASSETS)
    assets = assets.with_columns(_slice=pl.int_range(pl.len(), dtype=pl.Int64) * count // pl.len())
    columns = columns.join(
        assets.select(ASSET_KEY, "_slice"), on=ASSET_KEY, how="left", maintain_order="left"
    )

    def part(index: int) -> pl.DataFrame:
        return work(
            assets.filter(pl.col("_slice") == index).drop("_slice"),
            columns.filter(pl.col("_slice") == index).drop("_slice"),
        )

    with ThreadPoolExecutor(max_workers=max(1, min(count, pl.thread_pool_size(), SLICE_WORKERS))) as pool:
        return pl.concat(list(pool.map(part, range(count))))


def table_inputs(assets: pl.DataFrame, columns: pl.DataFrame) -> pl.DataFrame:
    """One row per asset with `table_input`: the Glue TableInput as canonical JSON text, and its columns'
    `column_signature` (`targets.base.column_signature` of the TableInput, to compare with the target's).

    Parameters appear as a list of the keys that are set (`{"key", "value"}` pairs, turned into an object by the
    writer), so equal definitions give equal text whatever other keys the rules know; columns are in definition
    order.

    Built `by_asset_slices`: at 2 million columns that keeps 1.1 GB of intermediate texts from existing at once,
    and takes 1.1 s instead of 1.8 s on two cores.
    """
    return by_asset_slices(assets, columns, _table_inputs)


def _table_inputs(assets: pl.DataFrame, columns: pl.DataFrame) -> pl.DataFrame:
    column_params, table_params = parameter_keys(columns), parameter_keys(assets)
    column_json = pl.struct(
        pl.col("glue_column").alias("Name"),
        pl.col("glue_type").alias("Type"),
        pl.col("comment").alias("Comment"),
        _set_pairs("parameters", column_params).alias("Parameters"),
    ).struct.json_encode()
    # Each column encoded once, then joined per table: encoding nested lists of column structs per table is
    # slower. Columns arrive in definition order per asset (the reader's order, which rules keep); sorting
    # within each group by ordinal guards that without sorting the whole frame.
    keys = table_keys(assets, columns)
    glue_columns = (
        columns.lazy()
        .select(
            *keys,
            "ordinal",
            _column=column_json,
            _signature=signature_entry(pl.col("glue_column"), pl.col("glue_type")),
        )
        .group_by(keys, maintain_order=True)
        .agg(
            _columns=pl.col("_column").sort_by("ordinal").str.join(","),
            column_signature=pl.col("_signature").sort_by("ordinal").str.join(SIGNATURE_COLUMN_SEP),
        )
    )
    found = assets.lazy().select(keys).join(glue_columns, on=keys, how="left", maintain_order="left")
    head = pl.struct(
        pl.col("glue_table").alias("Name"),
        pl.col("glue_description").alias("Description"),
        pl.lit("EXTERNAL_TABLE").alias("TableType"),
        _set_pairs("parameters", table_params).alias("Parameters"),
    ).struct.json_encode()
    table_input = pl.concat_str(
        [
            head.str.head(-1),  # without its closing brace
            pl.lit(',"StorageDescriptor":{"Columns":['),
            pl.col("_columns").fill_null(""),
            pl.lit("]}}"),
        ]
    )
    return (
        pl.concat(
            [assets.lazy(), found.select("_columns", pl.col("column_signature").fill_null(""))],
            how="horizontal",
        )
        .with_columns(table_input=table_input)
        .drop("_columns")
        .collect(engine="in-memory")  # the streaming engine took 0.4-0.9 s longer at 2 million columns
    )
