"""Transformation rules: small pydantic models that compile to Polars expressions.

A rule is data. `compile_rules` checks every rule (fields, placeholders, regular expressions, casts) before any
data moves, and turns the configured list into one function that applies every rule, in order, in one lazy pass
over the assets and columns frames.

Rules run after the default CSN -> Glue mapping and before name normalisation, collision handling and
validation, so they may set `glue_database`, `glue_table`, `glue_column`, `glue_type`, `glue_description`,
`comment` and `parameters` freely: normalisation makes the result safe for Glue afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from metasync.errors import RuleError
from metasync.models import ASSET_KINDS
from metasync.transform.mapping import glue_type_problem, parameter_keys, table_keys

# Parameters are a struct with one text field per key (null: not set); its fields depend on the rules.
PARAMETERS_DTYPE = pl.Struct({})

ASSET_FIELDS: dict[str, pl.DataType] = {
    "space": pl.Utf8(),
    "name": pl.Utf8(),
    "kind": pl.Utf8(),
    "business_name": pl.Utf8(),
    "description": pl.Utf8(),
    "modeling_pattern": pl.Utf8(),
    "hierarchies": pl.List(pl.Utf8),
    "remote_source": pl.Utf8(),
    "source_file": pl.Utf8(),
    "content_hash": pl.Utf8(),
    "glue_database": pl.Utf8(),
    "glue_table": pl.Utf8(),
    "glue_description": pl.Utf8(),
    "parameters": PARAMETERS_DTYPE,
}
COLUMN_FIELDS: dict[str, pl.DataType] = {
    "space": pl.Utf8(),
    "name": pl.Utf8(),
    "column": pl.Utf8(),
    "ordinal": pl.Int32(),
    "source_type": pl.Utf8(),
    "length": pl.Int64(),
    "precision": pl.Int64(),
    "scale": pl.Int64(),
    "is_key": pl.Boolean(),
    "not_null": pl.Boolean(),
    "business_name": pl.Utf8(),
    "description": pl.Utf8(),
    "semantic_role": pl.Utf8(),
    "aggregation": pl.Utf8(),
    "type_origin": pl.Utf8(),
    "glue_column": pl.Utf8(),
    "glue_type": pl.Utf8(),
    "comment": pl.Utf8(),
    "parameters": PARAMETERS_DTYPE,
}
# Identity and provenance fields: rules read them but never write them.
READ_ONLY_FIELDS = frozenset(
    {
        "space",
        "name",
        "column",
        "ordinal",
        "content_hash",
        "source_file",
        "type_origin",
        "hierarchies",
        "parameters",
    }
)
ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "kind": ASSET_KINDS,
    "semantic_role": ("measure", "dimension", "attribute", "text"),
}
# Asset fields a column rule can read through the asset it belongs to (prefixed `asset_` when the name clashes).
ASSET_CONTEXT_FIELDS = ("kind", "modeling_pattern", "glue_database", "glue_table", "glue_description")
ASSET_PREFIXED_FIELDS = ("business_name", "description")
# Table-level aggregates of an asset's columns, available to table templates.
DERIVED_TABLE_FIELDS = ("measures", "dimensions", "keys", "hierarchy_names", "column_count")


# ------------------------------------------------------------------ scope
def glob_to_regex(glob: str) -> str:
    """A Rust-compatible, anchored regular expression matching the shell-style glob (`*`, `?`, `[...]`)."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and "]" in glob[i + 1 :]:
            end = glob.index("]", i + 1)
            body = glob[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "^" + "".join(out) + "$"


class Scope(BaseModel):
    """Which assets a rule applies to; every given condition must hold."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[str] | None = None
    spaces: list[str] | None = None
    name_glob: str | None = None
    name_regex: str | None = None
    modeling_patterns: list[str] | None = None

    def expr(self, kind: str = "kind", modeling_pattern: str = "modeling_pattern") -> pl.Expr:
        """True for rows whose asset matches; `kind`/`modeling_pattern` name the columns holding those fields."""
        cond = pl.lit(True)
        if self.kinds is not None:
            cond &= pl.col(kind).is_in(self.kinds)
        if self.spaces is not None:
            cond &= pl.col("space").is_in(self.spaces)
        if self.name_glob is not None:
            cond &= pl.col("name").str.contains(glob_to_regex(self.name_glob))
        if self.name_regex is not None:
            cond &= pl.col("name").str.contains(self.name_regex)
        if self.modeling_patterns is not None:
            cond &= pl.col(modeling_pattern).is_in(self.modeling_patterns)
        return cond.fill_null(False)

    def needs_asset_context(self) -> bool:
        """Whether the scope reads asset fields that the columns frame does not carry."""
        return self.kinds is not None or self.modeling_patterns is not None

    def regexes(self) -> list[str]:
        return [r for r in (self.name_regex,) if r is not None] + (
            [glob_to_regex(self.name_glob)] if self.name_glob is not None else []
        )


class ColumnFilter(BaseModel):
    """Which columns of the assets in scope a column rule applies to; every given condition must hold."""

    model_config = ConfigDict(extra="forbid")

    names_glob: str | None = None
    semantic_roles: list[str] | None = None
    source_types: list[str] | None = None
    keys_only: bool | None = None

    def expr(self) -> pl.Expr:
        cond = pl.lit(True)
        if self.names_glob is not None:
            cond &= pl.col("column").str.contains(glob_to_regex(self.names_glob))
        if self.semantic_roles is not None:
            cond &= pl.col("semantic_role").is_in(self.semantic_roles)
        if self.source_types is not None:
            cond &= pl.col("source_type").is_in(self.source_types)
        if self.keys_only is not None:
            cond &= pl.col("is_key") == self.keys_only
        return cond.fill_null(False)


# ------------------------------------------------------------------ the rule models
class _RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    where: Scope = Field(default_factory=Scope, description="the assets the rule applies to (default: all)")


class ScopeRule(_RuleBase):
    """Keep only the assets that match `include` (if given) and do not match `exclude`; drops their columns too.
    With `where`, only the assets it selects are filtered; the others stay."""

    kind: Literal["scope"]
    include: Scope | None = None
    exclude: Scope | None = None


class RegexReplace(BaseModel):
    """One regular-expression substitution; `with` may use `$1` or `${name}` for groups."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    pattern: str
    replacement: str = Field(default="", alias="with")


class NamingRule(_RuleBase):
    """Set Glue database, table or column names from a template, then replace, case, affixes and length."""

    kind: Literal["naming"]
    target: Literal["database", "table", "column"] = "table"
    template: str | None = Field(
        default=None,
        description="e.g. `{env}_{space}`; placeholders {space} {name} {env} {kind} and the current names",
    )
    replace: list[RegexReplace] = Field(default_factory=list)
    case: Literal["lower", "upper"] | None = None
    prefix: str = ""
    suffix: str = ""
    max_length: int | None = Field(
        default=None, ge=16, le=255, description="longer names end in `_` + 8-char hash"
    )
    columns: ColumnFilter | None = Field(default=None, description="target=column only: which columns")


class TypeRule(_RuleBase):
    """Override the Glue type of columns whose source type matches and whose length/precision/scale fit."""

    kind: Literal["type"]
    source_type: str | list[str]
    glue_type: str = Field(description="a Glue type; may use {length}, {precision}, {scale}")
    min_length: int | None = None
    max_length: int | None = None
    min_precision: int | None = None
    max_precision: int | None = None
    min_scale: int | None = None
    max_scale: int | None = None


class BusinessRule(_RuleBase):
    """Table descriptions and column comments from templates over business names, descriptions and roles."""

    kind: Literal["business"]
    table_description: str | None = None
    column_comment: str | None = None
    columns: ColumnFilter | None = None
    only_if_empty: bool = Field(
        default=False, description="keep a description or comment that is already set"
    )


class ParametersRule(_RuleBase):
    """Set table and column Parameters from templates; an empty result removes nothing and sets nothing."""

    kind: Literal["parameters"]
    table: dict[str, str] = Field(default_factory=dict)
    column: dict[str, str] = Field(default_factory=dict)
    columns: ColumnFilter | None = None


class TagsRule(_RuleBase):
    """Add tags (templates) to a table Parameter holding a sorted, comma-separated set (Glue tables take no tags)."""

    kind: Literal["tags"]
    tags: list[str] = Field(min_length=1)
    parameter: str = "tags"


class ValueMapRule(_RuleBase):
    """Replace the values of one field by a mapping; values not in the mapping get `default` if given."""

    kind: Literal["value_map"]
    field: str
    on: Literal["assets", "columns"] | None = Field(
        default=None, description="needed when both frames have `field`"
    )
    map: dict[str, Any] = Field(min_length=1)
    default: Any = None
    columns: ColumnFilter | None = None


class DefaultRule(_RuleBase):
    """Fill a field where it is null (or empty text) with a value; text values may be templates."""

    kind: Literal["default"]
    field: str
    on: Literal["assets", "columns"] | None = None
    value: Any
    columns: ColumnFilter | None = None


Rule = Annotated[
    ScopeRule | NamingRule | TypeRule | BusinessRule | ParametersRule | TagsRule | ValueMapRule | DefaultRule,
    Field(discriminator="kind"),
]
RULE_KINDS = ("scope", "naming", "type", "business", "parameters", "tags", "value_map", "default")

FramePair = tuple[pl.LazyFrame, pl.LazyFrame]


# ------------------------------------------------------------------ load-time checks
@dataclass(frozen=True)
class _Where:
    """Identifies the rule being compiled, for error messages."""

    index: int
    kind: str

    def error(self, message: str, hint: str | None = None) -> RuleError:
        return RuleError(message, index=self.index, kind=self.kind, hint=hint)


def _check_regex(pattern: str, at: _Where, key: str) -> None:
    """Fail unless both Python and Polars (Rust) accept the pattern."""
    try:
        re.compile(pattern)
        pl.Series([""], dtype=pl.Utf8).str.contains(pattern)
    except (re.error, pl.exceptions.ComputeError) as exc:
        raise at.error(
            f"key '{key}': bad regular expression {pattern!r}: "
            + " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        ) from exc


def _check_scope(scope: Scope | None, at: _Where, key: str) -> None:
    if scope is None:
        return
    for pattern in scope.regexes():
        _check_regex(pattern, at, key)
    if scope.kinds is not None:
        unknown = sorted(set(scope.kinds) - set(ASSET_KINDS))
        if unknown:
            raise at.error(f"key '{key}.kinds': unknown asset kind(s) {unknown}; known: {list(ASSET_KINDS)}")


def _check_filter(flt: ColumnFilter | None, at: _Where) -> None:
    if flt is not None and flt.names_glob is not None:
        _check_regex(glob_to_regex(flt.names_glob), at, "columns.names_glob")


def _frame_of(field: str, on: str | None, at: _Where) -> str:
    """Which frame (`assets` or `columns`) a field rule works on; fails on unknown or ambiguous fields."""
    in_assets, in_columns = field in ASSET_FIELDS, field in COLUMN_FIELDS
    if (
        on == "assets"
        and not in_assets
        or on == "columns"
        and not in_columns
        or not (in_assets or in_columns)
    ):
        frames = [on] if on else ["assets", "columns"]
        known = sorted(
            set(ASSET_FIELDS if on != "columns" else {}) | set(COLUMN_FIELDS if on != "assets" else {})
        )
        raise at.error(f"unknown field '{field}' in {' or '.join(frames)}; known fields: {', '.join(known)}")
    if field in READ_ONLY_FIELDS:
        raise at.error(f"field '{field}' cannot be changed by a rule (it identifies the asset or column)")
    if on is not None:
        return on
    if in_assets and in_columns:
        raise at.error(
            f"field '{field}' exists on assets and on columns", hint="Add `on: assets` or `on: columns`."
        )
    return "assets" if in_assets else "columns"


def _cast_literal(value: Any, dtype: pl.DataType, field: str, at: _Where, key: str) -> pl.Expr:
    """A literal of the field's dtype; fails at load time when the value cannot be cast."""
    if value is None:
        return pl.lit(None, dtype=dtype)
    try:
        series = pl.Series([value]).cast(dtype, strict=True)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError, TypeError) as exc:
        raise at.error(
            f"key '{key}': cannot cast {value!r} to the type of field '{field}' ({dtype})"
        ) from exc
    allowed = ALLOWED_VALUES.get(field)
    if allowed is not None and series[0] not in allowed:
        raise at.error(f"key '{key}': {value!r} is not a valid {field}; allowed: {list(allowed)}")
    return pl.lit(series[0], dtype=dtype)


# ------------------------------------------------------------------ templates
_TOKEN = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]")
_QUOTED = re.compile(r"^'(.*)'$", re.DOTALL)


@dataclass(frozen=True)
class Template:
    """A parsed `{field|other|'literal'}` template: literal text and coalesced placeholders."""

    parts: tuple[str | tuple[str, ...], ...]

    @property
    def fields(self) -> set[str]:
        return {
            alt for part in self.parts if isinstance(part, tuple) for alt in part if not _QUOTED.match(alt)
        }

    def expr(self, resolve: Callable[[str], pl.Expr]) -> pl.Expr:
        """The template as one string expression; a placeholder whose alternatives are all null renders empty."""
        pieces: list[pl.Expr] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(pl.lit(part, dtype=pl.Utf8))
                continue
            alts = [
                pl.lit(m.group(1), dtype=pl.Utf8) if (m := _QUOTED.match(alt)) else resolve(alt).cast(pl.Utf8)
                for alt in part
            ]
            pieces.append(pl.coalesce([*alts, pl.lit("", dtype=pl.Utf8)]))
        return pl.concat_str(pieces) if pieces else pl.lit("", dtype=pl.Utf8)


def parse_template(text: str, available: Iterable[str], at: _Where, key: str) -> Template:
    """Parse a template, failing on unbalanced braces or placeholders that are not in `available`."""
    names = set(available)
    parts: list[str | tuple[str, ...]] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        if match.start() > pos:
            parts.append(text[pos : match.start()])
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif token in ("{", "}"):
            raise at.error(
                f"key '{key}': unbalanced '{token}' in template {text!r}", hint="Write {{ or }} for a brace."
            )
        else:
            alts = tuple(a.strip() for a in token[1:-1].split("|"))
            unknown = [a for a in alts if not _QUOTED.match(a) and a not in names]
            if unknown or not all(alts):
                raise at.error(
                    f"key '{key}': unknown placeholder {{{token[1:-1]}}} in template {text!r}",
                    hint=f"Available: {', '.join('{' + n + '}' for n in sorted(names))}.",
                )
            parts.append(alts)
        pos = match.end()
    if pos < len(text):
        parts.append(text[pos:])
    return Template(tuple(parts))


# ------------------------------------------------------------------ Glue types
_SOURCE_FAMILIES: dict[str, str] = {
    **dict.fromkeys(
        (
            "cds.String",
            "cds.LargeString",
            "cds.UUID",
            "cds.hana.NVARCHAR",
            "cds.hana.VARCHAR",
            "cds.hana.CHAR",
            "cds.hana.NCHAR",
            "cds.hana.ALPHANUM",
            "cds.hana.CLOB",
            "cds.hana.NCLOB",
        ),
        "text",
    ),
    **dict.fromkeys(
        (
            "cds.Integer",
            "cds.Int16",
            "cds.Int32",
            "cds.Int64",
            "cds.Integer64",
            "cds.UInt8",
            "cds.hana.TINYINT",
            "cds.hana.SMALLINT",
        ),
        "integer",
    ),
    **dict.fromkeys(("cds.Decimal", "cds.DecimalFloat", "cds.hana.SMALLDECIMAL"), "decimal"),
    **dict.fromkeys(("cds.Double", "cds.hana.REAL"), "float"),
    "cds.Boolean": "boolean",
    "cds.Date": "date",
    "cds.Time": "time",
    **dict.fromkeys(("cds.DateTime", "cds.Timestamp", "cds.hana.SECONDDATE"), "timestamp"),
    **dict.fromkeys(
        ("cds.Binary", "cds.LargeBinary", "cds.hana.VARBINARY", "cds.hana.BINARY", "cds.hana.BLOB"), "binary"
    ),
    **dict.fromkeys(("cds.hana.ST_POINT", "cds.hana.ST_GEOMETRY"), "geometry"),
}
_GLUE_FAMILIES = {
    "string": "text",
    "varchar": "text",
    "char": "text",
    "tinyint": "integer",
    "smallint": "integer",
    "int": "integer",
    "integer": "integer",
    "bigint": "integer",
    "decimal": "decimal",
    "float": "float",
    "double": "float",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "binary": "binary",
    "array": "complex",
    "map": "complex",
    "struct": "complex",
}
# Glue type families each source family can be read as (text is always possible).
_POSSIBLE_CASTS = {
    "text": {"text", "integer", "decimal", "float", "boolean", "date", "timestamp", "binary", "complex"},
    "integer": {"text", "integer", "decimal", "float"},
    "decimal": {"text", "integer", "decimal", "float"},
    "float": {"text", "decimal", "float"},
    "boolean": {"text", "boolean", "integer"},
    "date": {"text", "date", "timestamp"},
    "time": {"text"},
    "timestamp": {"text", "timestamp", "date"},
    "binary": {"text", "binary"},
    "geometry": {"text", "binary"},
}
_TYPE_PLACEHOLDERS = ("length", "precision", "scale")


def _type_bounds(rule: TypeRule) -> dict[str, tuple[int | None, int | None]]:
    return {
        "length": (rule.min_length, rule.max_length),
        "precision": (rule.min_precision, rule.max_precision),
        "scale": (rule.min_scale, rule.max_scale),
    }


def _check_type_rule(rule: TypeRule, template: Template, at: _Where) -> None:
    """Fail when the rendered type can be invalid for a matching column, or the cast is impossible."""
    bounds = _type_bounds(rule)
    floors = {"length": 1, "precision": 1, "scale": 0}
    for extreme in ("smallest", "largest"):
        sample = {
            f: (low if low is not None else floors[f])
            if extreme == "smallest"
            else (high if high is not None else 10**6)
            for f, (low, high) in bounds.items()
        }
        # A scale never exceeds its precision (CDS), so a bound on the precision bounds the scale too.
        sample["scale"] = (
            min(sample["scale"], sample["precision"]) if extreme == "largest" else sample["scale"]
        )
        rendered = "".join(p if isinstance(p, str) else str(sample[p[0]]) for p in template.parts)
        problem = glue_type_problem(rendered)
        if problem is not None:
            unbounded = sorted(f for f in template.fields if bounds[f][1] is None)
            raise at.error(
                f"key 'glue_type': {rule.glue_type!r} renders as {rendered!r} for the {extreme} matching "
                f"column, which {problem}",
                hint=f"Bound the rule with max_{unbounded[0]}."
                if unbounded and extreme == "largest"
                else None,
            )
    target_family = _GLUE_FAMILIES[re.split(r"[(<]", rendered, maxsplit=1)[0]]
    sources = [rule.source_type] if isinstance(rule.source_type, str) else rule.source_type
    for source in sources:
        family = _SOURCE_FAMILIES.get(source)
        if family is not None and target_family not in _POSSIBLE_CASTS[family]:
            raise at.error(f"impossible cast from {source} ({family}) to {rule.glue_type!r}")


# ------------------------------------------------------------------ compiled steps
@dataclass
class _Step:
    """One compiled rule: a function over the frame pair and the frame fields it reads."""

    at: _Where
    run: Callable[[FramePair], FramePair]
    asset_fields: frozenset[str] = frozenset()
    column_fields: frozenset[str] = frozenset()
    derived: frozenset[str] = frozenset()


def lookup(frame: pl.LazyFrame, table: pl.LazyFrame, on: list[str], fields: list[str]) -> pl.LazyFrame:
    """`frame` with `fields` of `table` (unique on `on`) added by key, row order kept.

    Joins only the key columns and adds the result beside the frame: a join that carries the frame's own
    columns (long texts, nested Parameters) along costs many times more on millions of rows.
    """
    found = frame.select(on).join(table.select(*on, *fields), on=on, how="left", maintain_order="left")
    return pl.concat([frame, found.select(fields)], how="horizontal")


def _asset_context(assets: pl.LazyFrame, columns: pl.LazyFrame, fields: Iterable[str]) -> pl.LazyFrame:
    """Columns with the named asset fields joined on, as `_asset_<field>`."""
    wanted = sorted(set(fields))
    if not wanted:
        return columns
    keys = table_keys(assets, columns)
    ctx = assets.select(*keys, *[pl.col(f).alias(f"_asset_{f}") for f in wanted])
    return lookup(columns, ctx, keys, [f"_asset_{f}" for f in wanted])


def _drop_context(columns: pl.LazyFrame, fields: Iterable[str]) -> pl.LazyFrame:
    return columns.drop([f"_asset_{f}" for f in sorted(set(fields))])


def _column_resolver(env: str | None) -> Callable[[str], pl.Expr]:
    """Resolve a placeholder of a column template to an expression over the columns frame with asset context."""

    def resolve(name: str) -> pl.Expr:
        if name == "env":
            return pl.lit(env, dtype=pl.Utf8)
        if name.startswith("asset_"):
            return pl.col(f"_asset_{name[len('asset_') :]}")
        if name in ASSET_CONTEXT_FIELDS:
            return pl.col(f"_asset_{name}")
        return pl.col(name)

    return resolve


def _asset_resolver(env: str | None) -> Callable[[str], pl.Expr]:
    def resolve(name: str) -> pl.Expr:
        if name == "env":
            return pl.lit(env, dtype=pl.Utf8)
        if name in DERIVED_TABLE_FIELDS:
            return pl.col(f"_derived_{name}")
        if name == "hierarchies":
            return pl.col("hierarchies").list.join(", ")
        return pl.col(name)

    return resolve


COLUMN_TEMPLATE_FIELDS = (
    {f for f in COLUMN_FIELDS if f != "parameters"}
    | set(ASSET_CONTEXT_FIELDS)
    | {f"asset_{f}" for f in ASSET_PREFIXED_FIELDS}
    | {"env"}
)
TABLE_TEMPLATE_FIELDS = {f for f in ASSET_FIELDS if f != "parameters"} | set(DERIVED_TABLE_FIELDS) | {"env"}


def _column_context_fields(scope: Scope, templates: Iterable[Template]) -> set[str]:
    """The asset fields a column step must join on."""
    fields = {"kind", "modeling_pattern"} if scope.needs_asset_context() else set()
    for template in templates:
        for name in template.fields:
            if name.startswith("asset_"):
                fields.add(name[len("asset_") :])
            elif name in ASSET_CONTEXT_FIELDS:
                fields.add(name)
    return fields


def _with_derived(assets: pl.LazyFrame, columns: pl.LazyFrame, fields: Iterable[str]) -> pl.LazyFrame:
    """Assets with `_derived_<name>` aggregates of their columns for the named derived fields."""
    used = sorted(set(fields))
    if not used:
        return assets

    keys = table_keys(assets, columns)
    # Filter before grouping: sorting inside every group of millions of columns costs far more.
    conditions = {
        "measures": pl.col("semantic_role") == "measure",
        "dimensions": pl.col("semantic_role") == "dimension",
        "keys": pl.col("is_key"),
    }
    for field in [f for f in used if f in conditions]:
        names = (
            columns.filter(conditions[field])
            .sort(*keys, "ordinal")
            .group_by(keys, maintain_order=True)
            .agg(pl.col("column").str.join(", ").alias(f"_derived_{field}"))
        )
        assets = lookup(assets, names, keys, [f"_derived_{field}"])
    if "column_count" in used:
        counts = columns.group_by(keys).agg(_derived_column_count=pl.len().cast(pl.Utf8))
        assets = lookup(assets, counts, keys, ["_derived_column_count"])
    if "hierarchy_names" in used:
        assets = assets.with_columns(_derived_hierarchy_names=pl.col("hierarchies").list.join(", "))
    if "column_count" in used:
        assets = assets.with_columns(pl.col("_derived_column_count").fill_null("0"))
    return assets


FrameUpdate = Callable[[pl.LazyFrame, pl.Expr], pl.LazyFrame]


def _assign(frame: pl.LazyFrame, field: str, new: pl.Expr | FrameUpdate, take: pl.Expr) -> pl.LazyFrame:
    """`frame` with `field` set to `new` where `take` holds (`new` may update the frame itself)."""
    if isinstance(new, pl.Expr):
        return frame.with_columns(pl.when(take).then(new).otherwise(pl.col(field)).alias(field))
    return new(frame, take)


def _column_step(
    at: _Where,
    where: Scope,
    flt: ColumnFilter | None,
    field: str,
    new: pl.Expr | FrameUpdate,
    templates: list[Template],
    *,
    extra: pl.Expr | None = None,
    reads: Iterable[str] = (),
) -> _Step:
    """A step setting column `field` to `new` on the columns in scope (and where `extra` holds)."""
    context = _column_context_fields(where, templates)

    def run(frames: FramePair) -> FramePair:
        assets, columns = frames
        columns = _asset_context(assets, columns, context)
        take = where.expr("_asset_kind", "_asset_modeling_pattern")
        if flt is not None:
            take &= flt.expr()
        if extra is not None:
            take &= extra.fill_null(False)
        return assets, _drop_context(_assign(columns, field, new, take), context)

    fields = (_field_names(templates) - set(ASSET_CONTEXT_FIELDS)) | {field, *reads}
    return _Step(at, run, column_fields=frozenset(fields))


def _asset_step(
    at: _Where,
    where: Scope,
    field: str,
    new: pl.Expr | FrameUpdate,
    templates: list[Template],
    *,
    extra: pl.Expr | None = None,
) -> _Step:
    """A step setting asset `field` to `new` on the assets in scope (and where `extra` holds)."""

    def run(frames: FramePair) -> FramePair:
        assets, columns = frames
        take = where.expr() if extra is None else where.expr() & extra.fill_null(False)
        return _assign(assets, field, new, take), columns

    fields = (_field_names(templates) - set(DERIVED_TABLE_FIELDS)) | {field}
    derived = {f for t in templates for f in t.fields} & set(DERIVED_TABLE_FIELDS)
    return _Step(at, run, asset_fields=frozenset(fields), derived=frozenset(derived))


def _field_names(templates: Iterable[Template]) -> set[str]:
    return {f for t in templates for f in t.fields if f != "env" and not f.startswith("asset_")}


def parameter_update(pairs: Mapping[str, pl.Expr | Callable[[list[str]], pl.Expr]]) -> FrameUpdate:
    """Set the `pairs` in `parameters` of the rows taken; a pair whose value is null or empty sets nothing (a
    value the key had before stays). A value may be a function of the keys the frame has already."""

    def update(frame: pl.LazyFrame, take: pl.Expr) -> pl.LazyFrame:
        keys = parameter_keys(frame)
        current = pl.col("parameters")
        values = {k: (v if isinstance(v, pl.Expr) else v(keys)).cast(pl.Utf8) for k, v in pairs.items()}

        def field(key: str) -> pl.Expr:
            old = current.struct.field(key) if key in keys else pl.lit(None, dtype=pl.Utf8)
            if key not in values:
                return old.alias(key)
            if key not in keys:
                return pl.when(take).then(values[key].replace("", None)).alias(key)
            return (
                pl.when(take).then(pl.coalesce(values[key].replace("", None), old)).otherwise(old).alias(key)
            )

        ordered = keys + [k for k in pairs if k not in keys]
        return frame.with_columns(parameters=pl.struct([field(k) for k in ordered]))

    return update


def parameter_value(key: str) -> Callable[[list[str]], pl.Expr]:
    """The current value of Parameters key `key` (null when the frame has no such key)."""
    return lambda keys: pl.col("parameters").struct.field(key) if key in keys else pl.lit(None, dtype=pl.Utf8)


# ------------------------------------------------------------------ compilers, one per rule kind
def _compile_scope(rule: ScopeRule, at: _Where, env: str | None) -> _Step:
    _check_scope(rule.include, at, "include")
    _check_scope(rule.exclude, at, "exclude")
    decided = pl.lit(True)
    if rule.include is not None:
        decided &= rule.include.expr()
    if rule.exclude is not None:
        decided &= ~rule.exclude.expr()
    keep = ~rule.where.expr() | decided  # `where` limits the rule: assets outside it are kept as they are

    def run(frames: FramePair) -> FramePair:
        assets, columns = frames
        flagged = assets.with_columns(_keep=keep.fill_null(False))
        columns = lookup(columns, flagged, table_keys(flagged, columns), ["_keep"])
        return (
            flagged.filter(pl.col("_keep")).drop("_keep"),
            columns.filter(pl.col("_keep").fill_null(False)).drop("_keep"),
        )

    return _Step(at, run, asset_fields=frozenset({"kind", "modeling_pattern"}))


def stable_hash(text: pl.Expr, width: int = 8) -> pl.Expr:
    """A hash of the UTF-8 bytes of `text` as `width` base-36 characters, stable across Polars versions."""
    modulus, base, span = 2_147_483_647, 131, 4096
    powers = pl.Series([pow(base, i, modulus) for i in range(span)], dtype=pl.Int64)
    byte_values = (
        text.str.encode("hex").str.extract_all(r"[0-9a-f]{2}").list.eval(pl.element().str.to_integer(base=16))
    )
    weighted = byte_values.list.eval(
        (pl.element() * pl.lit(powers).gather(pl.int_range(pl.len()) % span)).sum()
    ).list.first()
    value = (weighted % modulus) * 1_000_003 + text.str.len_bytes().cast(pl.Int64)
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return pl.concat_str([pl.lit(alphabet).str.slice((value // 36**k) % 36, 1) for k in range(width)])


def truncate_with_hash(name: pl.Expr, max_length: int) -> pl.Expr:
    """`name` unchanged when it has at most `max_length` characters, else cut and suffixed `_<hash of name>`."""
    too_long = name.str.len_chars() > max_length
    hashed = stable_hash(pl.when(too_long).then(name).otherwise(pl.lit("")))
    return (
        pl.when(too_long)
        .then(pl.concat_str([name.str.slice(0, max_length - 9), pl.lit("_"), hashed]))
        .otherwise(name)
    )


def _naming_expr(
    rule: NamingRule, current: pl.Expr, template: Template | None, resolve: Callable[[str], pl.Expr]
) -> pl.Expr:
    value = template.expr(resolve) if template is not None else current
    for sub in rule.replace:
        value = value.str.replace_all(sub.pattern, sub.replacement)
    if rule.case == "lower":
        value = value.str.to_lowercase()
    elif rule.case == "upper":
        value = value.str.to_uppercase()
    if rule.prefix or rule.suffix:
        value = pl.concat_str([pl.lit(rule.prefix), value, pl.lit(rule.suffix)])
    if rule.max_length is not None:
        value = truncate_with_hash(value, rule.max_length)
    return value


_NAMING_TABLE_FIELDS = {
    "space",
    "name",
    "env",
    "kind",
    "glue_database",
    "glue_table",
    "business_name",
    "modeling_pattern",
}


# What a database template may use: fields that are the same for every asset of a space.
_SPACE_FIELDS = frozenset({"space", "env", "glue_database"})


def _compile_naming(rule: NamingRule, at: _Where, env: str | None) -> _Step:
    for i, sub in enumerate(rule.replace):
        _check_regex(sub.pattern, at, f"replace[{i}].pattern")
    _check_filter(rule.columns, at)
    if rule.columns is not None and rule.target != "column":
        raise at.error("key 'columns' applies only to target: column")
    available = COLUMN_TEMPLATE_FIELDS if rule.target == "column" else _NAMING_TABLE_FIELDS
    template = parse_template(rule.template, available, at, "template") if rule.template is not None else None
    templates = [template] if template is not None else []
    if rule.target == "column":
        new = _naming_expr(rule, pl.col("glue_column"), template, _column_resolver(env))
        return _column_step(at, rule.where, rule.columns, "glue_column", new, templates)
    if rule.target == "database":
        per_asset = sorted((template.fields if template is not None else set()) - _SPACE_FIELDS)
        where = rule.where
        if per_asset or (
            where is not None
            and (where.kinds or where.name_glob or where.name_regex or where.modeling_patterns)
        ):
            raise at.error(
                "a database name must be the same for every asset of a space (one Glue database per space), "
                + (
                    f"but the template uses {', '.join('{' + f + '}' for f in per_asset)}"
                    if per_asset
                    else "but `where` selects assets by more than their space"
                ),
                hint="Use only {space} and {env} (and the current {glue_database}) in database templates, and "
                "`where: {spaces: [...]}` to scope them.",
            )
    field = "glue_database" if rule.target == "database" else "glue_table"
    new = _naming_expr(rule, pl.col(field), template, _asset_resolver(env))
    return _asset_step(at, rule.where, field, new, templates)


def _compile_type(rule: TypeRule, at: _Where, env: str | None) -> _Step:
    template = parse_template(rule.glue_type, _TYPE_PLACEHOLDERS, at, "glue_type")
    if any(isinstance(part, tuple) and len(part) > 1 for part in template.parts):
        raise at.error(f"key 'glue_type': placeholders in a type take no alternatives ({rule.glue_type!r})")
    _check_type_rule(rule, template, at)
    sources = [rule.source_type] if isinstance(rule.source_type, str) else rule.source_type
    cond = pl.col("source_type").is_in(sources)
    reads = {"source_type"} | template.fields
    for field, (low, high) in _type_bounds(rule).items():
        if low is not None:
            cond &= pl.col(field) >= low
        if high is not None:
            cond &= pl.col(field) <= high
        if field in template.fields:
            cond &= pl.col(field).is_not_null()
        if (low, high) != (None, None):
            reads.add(field)
    return _column_step(at, rule.where, None, "glue_type", _type_expr(template), [], extra=cond, reads=reads)


def _type_expr(template: Template) -> pl.Expr:
    """A type template as one `format` (cheaper than concatenating pieces on millions of columns); its
    placeholders are never null where the rule applies, so nothing needs a fallback."""
    literals = [part for part in template.parts if isinstance(part, str)]
    if not template.fields or any("{" in text or "}" in text for text in literals):
        return template.expr(pl.col)
    pattern = "".join(part if isinstance(part, str) else "{}" for part in template.parts)
    return pl.format(pattern, *[pl.col(part[0]) for part in template.parts if isinstance(part, tuple)])


def text_update(field: str, new: pl.Expr) -> FrameUpdate:
    """Set text `field` to `new` on the rows taken, except where `new` renders empty (the field keeps its value).

    `new` appears once in the plan: Polars computes an expression that a when/then repeats once per use.
    """

    def update(frame: pl.LazyFrame, take: pl.Expr) -> pl.LazyFrame:
        return frame.with_columns(
            pl.coalesce(pl.when(take).then(new.replace("", None)), pl.col(field)).alias(field)
        )

    return update


def _only_if_empty(field: str, only_if_empty: bool) -> pl.Expr | None:
    return (pl.col(field).fill_null("") == "") if only_if_empty else None


def _compile_business(rule: BusinessRule, at: _Where, env: str | None) -> list[_Step]:
    _check_filter(rule.columns, at)
    if rule.table_description is None and rule.column_comment is None:
        raise at.error("give table_description, column_comment or both")
    steps = []
    if rule.table_description is not None:
        tmpl = parse_template(rule.table_description, TABLE_TEMPLATE_FIELDS, at, "table_description")
        new = text_update("glue_description", tmpl.expr(_asset_resolver(env)))
        extra = _only_if_empty("glue_description", rule.only_if_empty)
        steps.append(_asset_step(at, rule.where, "glue_description", new, [tmpl], extra=extra))
    if rule.column_comment is not None:
        ctmpl = parse_template(rule.column_comment, COLUMN_TEMPLATE_FIELDS, at, "column_comment")
        cnew = text_update("comment", ctmpl.expr(_column_resolver(env)))
        extra = _only_if_empty("comment", rule.only_if_empty)
        steps.append(_column_step(at, rule.where, rule.columns, "comment", cnew, [ctmpl], extra=extra))
    return steps


def _parameter_templates(
    pairs: dict[str, str], available: set[str], at: _Where, key: str
) -> dict[str, Template]:
    """Parse `key -> template` pairs, rejecting reserved or over-long Parameters keys."""
    parsed = {}
    for name, text in pairs.items():
        if not 1 <= len(name.encode()) <= 255:
            raise at.error(f"key '{key}.{name}': a Parameters key must have 1 to 255 bytes")
        if name.startswith("metasync:"):
            raise at.error(f"key '{key}.{name}': the Parameters key {name!r} is reserved for metasync")
        if "," in name:
            raise at.error(
                f"key '{key}.{name}': a Parameters key cannot hold a comma (metasync:keys lists the keys the "
                "rules set, comma-separated)"
            )
        parsed[name] = parse_template(text, available, at, f"{key}.{name}")
    return parsed


def _compile_parameters(rule: ParametersRule, at: _Where, env: str | None) -> list[_Step]:
    _check_filter(rule.columns, at)
    if not rule.table and not rule.column:
        raise at.error("give `table`, `column` or both: a mapping of Parameters key to template")
    steps = []
    if rule.table:
        tmpls = _parameter_templates(rule.table, TABLE_TEMPLATE_FIELDS, at, "table")
        new = parameter_update({k: t.expr(_asset_resolver(env)) for k, t in tmpls.items()})
        steps.append(_asset_step(at, rule.where, "parameters", new, list(tmpls.values())))
    if rule.column:
        ctmpls = _parameter_templates(rule.column, COLUMN_TEMPLATE_FIELDS, at, "column")
        cnew = parameter_update({k: t.expr(_column_resolver(env)) for k, t in ctmpls.items()})
        steps.append(_column_step(at, rule.where, rule.columns, "parameters", cnew, list(ctmpls.values())))
    return steps


def _compile_tags(rule: TagsRule, at: _Where, env: str | None) -> _Step:
    key = rule.parameter
    _parameter_templates({key: ""}, set(), at, "parameter")
    tmpls = [parse_template(t, TABLE_TEMPLATE_FIELDS, at, f"tags[{i}]") for i, t in enumerate(rule.tags)]
    added = pl.concat_str([t.expr(_asset_resolver(env)) for t in tmpls], separator=",")
    tag = pl.element().str.strip_chars()

    def merged(keys: list[str]) -> pl.Expr:
        return (
            pl.concat_str([parameter_value(key)(keys).fill_null(""), added], separator=",")
            .str.split(",")
            .list.eval(tag.filter(tag != "").unique().sort())
            .list.join(",")
        )

    new = parameter_update({key: merged})
    return _asset_step(at, rule.where, "parameters", new, tmpls)


def _field_rule_frame(rule: ValueMapRule | DefaultRule, at: _Where) -> tuple[str, pl.DataType]:
    """The frame a value_map/default rule works on and the dtype of its field."""
    frame = _frame_of(rule.field, rule.on, at)
    _check_filter(rule.columns, at)
    if rule.columns is not None and frame != "columns":
        raise at.error("key 'columns' applies only to a field of the columns frame")
    return frame, (ASSET_FIELDS if frame == "assets" else COLUMN_FIELDS)[rule.field]


def _field_step(
    rule: ValueMapRule | DefaultRule,
    at: _Where,
    frame: str,
    new: pl.Expr,
    templates: list[Template],
    extra: pl.Expr | None = None,
) -> _Step:
    if frame == "assets":
        return _asset_step(at, rule.where, rule.field, new, templates, extra=extra)
    return _column_step(at, rule.where, rule.columns, rule.field, new, templates, extra=extra)


def _compile_value_map(rule: ValueMapRule, at: _Where, env: str | None) -> _Step:
    frame, dtype = _field_rule_frame(rule, at)
    try:
        old = pl.Series(list(rule.map), dtype=pl.Utf8).cast(dtype, strict=True)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise at.error(
            f"key 'map': a key cannot be cast to the type of field '{rule.field}' ({dtype})"
        ) from exc
    for key, value in rule.map.items():
        _cast_literal(value, dtype, rule.field, at, f"map.{key}")
    new_values = pl.Series(list(rule.map.values())).cast(dtype, strict=True)
    current = pl.col(rule.field)
    fallback = (
        _cast_literal(rule.default, dtype, rule.field, at, "default")
        if "default" in rule.model_fields_set
        else current
    )
    new = current.replace_strict(old, new_values, default=fallback, return_dtype=dtype)
    return _field_step(rule, at, frame, new, [])


def _compile_default(rule: DefaultRule, at: _Where, env: str | None) -> _Step:
    frame, dtype = _field_rule_frame(rule, at)
    templates: list[Template] = []
    if dtype == pl.Utf8 and isinstance(rule.value, str) and "{" in rule.value:
        available = TABLE_TEMPLATE_FIELDS if frame == "assets" else COLUMN_TEMPLATE_FIELDS
        templates = [parse_template(rule.value, available, at, "value")]
        resolver = _asset_resolver(env) if frame == "assets" else _column_resolver(env)
        value = templates[0].expr(resolver)
    else:
        value = _cast_literal(rule.value, dtype, rule.field, at, "value")
    missing = pl.col(rule.field).is_null()
    if dtype == pl.Utf8:
        missing |= pl.col(rule.field) == ""
    return _field_step(rule, at, frame, value, templates, extra=missing)


_COMPILERS: dict[str, Callable[[Any, _Where, str | None], _Step | list[_Step]]] = {
    "scope": _compile_scope,
    "naming": _compile_naming,
    "type": _compile_type,
    "business": _compile_business,
    "parameters": _compile_parameters,
    "tags": _compile_tags,
    "value_map": _compile_value_map,
    "default": _compile_default,
}


class CompiledRules:
    """The configured rules, checked and compiled; call it on (assets, columns) lazy frames."""

    def __init__(self, steps: list[_Step]) -> None:
        self.steps = steps

    def __len__(self) -> int:
        return len(self.steps)

    def check_frames(self, assets: pl.LazyFrame, columns: pl.LazyFrame) -> None:
        """Fail, naming the rule, when a field a rule reads or writes is missing from the frames."""
        asset_names = set(assets.collect_schema().names())
        column_names = set(columns.collect_schema().names())
        for step in self.steps:
            for fields, names, frame in (
                (step.asset_fields, asset_names, "assets"),
                (step.column_fields, column_names, "columns"),
            ):
                missing = sorted(fields - names - {"env"})
                if missing:
                    raise step.at.error(f"the {frame} frame has no field(s) {missing}")

    def __call__(self, assets: pl.LazyFrame, columns: pl.LazyFrame) -> FramePair:
        """Both frames with every rule applied in order (still lazy: nothing is computed here)."""
        if not self.steps:
            return assets, columns
        self.check_frames(assets, columns)
        # Table aggregates of the columns (measures, dimensions, ...) are taken once, from the columns as they
        # enter the rules: steps then read assets and columns without joining back and forth.
        derived = sorted(set().union(*(step.derived for step in self.steps)))
        frames: FramePair = (_with_derived(assets, columns, derived), columns)
        for step in self.steps:
            frames = step.run(frames)
        return frames[0].drop([f"_derived_{f}" for f in derived]), frames[1]


def compile_rules(rules: list[Rule], env: str | None = None) -> CompiledRules:
    """Check and compile the rules in order; `env` (the chosen environment) fills the `{env}` placeholder.

    Raises `RuleError` naming the rule's index and kind for an unknown field or placeholder, a bad regular
    expression, or an impossible cast.
    """
    steps: list[_Step] = []
    for index, rule in enumerate(rules):
        at = _Where(index, rule.kind)
        _check_scope(rule.where, at, "where")
        compiled = _COMPILERS[rule.kind](rule, at, env)
        steps.extend(compiled if isinstance(compiled, list) else [compiled])
    return CompiledRules(steps)
