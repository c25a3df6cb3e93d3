"""The per-object baseline: the transform + validate stage written the straightforward way, one object at a time.

It does what metasync's vectorised stage does for the same configuration (default Glue mapping, the configured
rules in order, safe and unique names, Glue's text limits, the Glue limit checks), but with Python loops over
dicts, as a boto3 script would. `bench_plan.py` times both on the same source frames and compares the results.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
from typing import Any

from metasync.transform.mapping import (
    MAX_COMMENT,
    MAX_DESCRIPTION,
    MAX_NAME,
    SIMPLE_TYPES,
    SUFFIX_LEN,
    glue_type_problem,
)
from metasync.transform.rules import (
    COLUMN_TEMPLATE_FIELDS,
    TABLE_TEMPLATE_FIELDS,
    BusinessRule,
    DefaultRule,
    NamingRule,
    ParametersRule,
    Rule,
    Scope,
    ScopeRule,
    TagsRule,
    Template,
    TypeRule,
    ValueMapRule,
    _frame_of,
    _Where,
    glob_to_regex,
    parse_template,
)
from metasync.validate.glue_limits import NAME_PATTERN

Row = dict[str, Any]
Asset = dict[str, Any]  # an asset row with its column rows under "columns"

_NAME = re.compile(NAME_PATTERN)


# ------------------------------------------------------------------ default mapping
def glue_type(col: Row) -> str:
    if col.get("glue_type_hint"):
        return col["glue_type_hint"]
    if col["source_type"] == "cds.Decimal":
        p, s = col["precision"], col["scale"]
        if p is None or s is None:
            return "double"
        if p <= 38:
            return f"decimal({min(max(p, 1), 38)},{min(max(s, 0), p)})"
        return f"decimal(38,{max(0, min(s - (p - 38), 38))})"
    return SIMPLE_TYPES.get(col["source_type"], "string")


def map_default(asset: Asset) -> None:
    texts = [t for t in (asset["business_name"], asset["description"]) if t is not None]
    asset["glue_database"] = asset["space"]
    asset["glue_table"] = asset["name"]
    asset["glue_description"] = "\n\n".join(texts) or None
    measures = [c["column"] for c in asset["columns"] if c["semantic_role"] == "measure"]
    dimensions = [c["column"] for c in asset["columns"] if c["semantic_role"] == "dimension"]
    pairs = [
        ("metasync:kind", asset["kind"]),
        ("metasync:business_name", asset["business_name"]),
        ("metasync:modeling_pattern", asset["modeling_pattern"]),
        ("metasync:hierarchies", ",".join(asset["hierarchies"])),
        ("metasync:measures", ",".join(measures)),
        ("metasync:dimensions", ",".join(dimensions)),
        ("metasync:remote_source", asset["remote_source"]),
    ]
    asset["parameters"] = {k: v for k, v in pairs if v}
    for col in asset["columns"]:
        col["glue_column"] = col["column"]
        col["glue_type"] = glue_type(col)
        col["comment"] = col["business_name"] if col["business_name"] is not None else col["description"]
        pairs = [
            ("metasync:business_name", col["business_name"]),
            ("metasync:description", col["description"]),
            ("metasync:semantic_role", col["semantic_role"]),
            ("metasync:aggregation", col["aggregation"]),
            ("metasync:key", "true" if col["is_key"] else None),
            ("metasync:type_origin", col["type_origin"] if col["type_origin"] != "declared" else None),
        ]
        col["parameters"] = {k: v for k, v in pairs if v}


# ------------------------------------------------------------------ rules, one object at a time
def in_scope(scope: Scope | None, asset: Asset) -> bool:
    if scope is None:
        return True
    if scope.kinds is not None and asset["kind"] not in scope.kinds:
        return False
    if scope.spaces is not None and asset["space"] not in scope.spaces:
        return False
    if scope.name_glob is not None and not re.search(glob_to_regex(scope.name_glob), asset["name"]):
        return False
    if scope.name_regex is not None and not re.search(scope.name_regex, asset["name"]):
        return False
    return scope.modeling_patterns is None or asset["modeling_pattern"] in scope.modeling_patterns


def column_matches(flt: Any, col: Row) -> bool:
    if flt is None:
        return True
    if flt.names_glob is not None and not re.search(glob_to_regex(flt.names_glob), col["column"]):
        return False
    if flt.semantic_roles is not None and col["semantic_role"] not in flt.semantic_roles:
        return False
    if flt.source_types is not None and col["source_type"] not in flt.source_types:
        return False
    return flt.keys_only is None or col["is_key"] == flt.keys_only


def render(template: Template, values: dict[str, Any]) -> str:
    out = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        text = ""
        for alt in part:
            value = alt[1:-1] if alt.startswith("'") else values.get(alt)
            if value is not None:
                text = value if isinstance(value, str) else str(value)
                break
        out.append(text)
    return "".join(out)


def table_values(asset: Asset, env: str | None) -> dict[str, Any]:
    cols = sorted(asset["columns"], key=lambda c: c["ordinal"])
    values = {k: v for k, v in asset.items() if k != "columns"}
    values.update(
        env=env,
        hierarchies=", ".join(asset["hierarchies"]),
        hierarchy_names=", ".join(asset["hierarchies"]),
        measures=", ".join(c["column"] for c in cols if c["semantic_role"] == "measure") or None,
        dimensions=", ".join(c["column"] for c in cols if c["semantic_role"] == "dimension") or None,
        keys=", ".join(c["column"] for c in cols if c["is_key"]) or None,
        column_count=str(len(cols)),
    )
    return values


def column_values(col: Row, asset: Asset, env: str | None) -> dict[str, Any]:
    values = dict(col)
    values.update(
        env=env,
        kind=asset["kind"],
        modeling_pattern=asset["modeling_pattern"],
        glue_database=asset["glue_database"],
        glue_table=asset["glue_table"],
        glue_description=asset["glue_description"],
        asset_business_name=asset["business_name"],
        asset_description=asset["description"],
    )
    return values


def stable_hash(text: str, width: int = 8) -> str:
    data = text.encode("utf-8")
    weighted = sum(b * pow(131, i % 4096, 2_147_483_647) for i, b in enumerate(data))
    value = (weighted % 2_147_483_647) * 1_000_003 + len(data)
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[(value // 36**k) % 36] for k in range(width))


def apply_naming(rule: NamingRule, template: Template | None, current: str, values: dict[str, Any]) -> str:
    value = render(template, values) if template is not None else current
    for sub in rule.replace:
        value = re.sub(sub.pattern, re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", sub.replacement), value)
    if rule.case == "lower":
        value = value.lower()
    elif rule.case == "upper":
        value = value.upper()
    value = rule.prefix + value + rule.suffix
    if rule.max_length is not None and len(value) > rule.max_length:
        value = value[: rule.max_length - 9] + "_" + stable_hash(value)
    return value


def apply_rule(rule: Rule, index: int, assets: list[Asset], env: str | None) -> list[Asset]:
    at = _Where(index, rule.kind)
    if isinstance(rule, ScopeRule):
        return [
            a
            for a in assets
            if in_scope(rule.where, a)
            and in_scope(rule.include, a)
            and not (rule.exclude and in_scope(rule.exclude, a))
        ]
    for asset in assets:
        if not in_scope(rule.where, asset):
            continue
        if isinstance(rule, NamingRule):
            _naming(rule, at, asset, env)
        elif isinstance(rule, TypeRule):
            _types(rule, at, asset)
        elif isinstance(rule, BusinessRule):
            _business(rule, at, asset, env)
        elif isinstance(rule, ParametersRule):
            _parameters(rule, at, asset, env)
        elif isinstance(rule, TagsRule):
            values = table_values(asset, env)
            tags = {t.strip() for t in asset["parameters"].get(rule.parameter, "").split(",") if t.strip()}
            tags |= {
                render(parse_template(t, _EVERYTHING_FIELDS, at, "tags"), values).strip() for t in rule.tags
            }
            tags.discard("")
            if tags:
                asset["parameters"][rule.parameter] = ",".join(sorted(tags))
        elif isinstance(rule, (ValueMapRule, DefaultRule)):
            _field_rule(rule, at, asset, env)
    return assets


_EVERYTHING_FIELDS = TABLE_TEMPLATE_FIELDS | COLUMN_TEMPLATE_FIELDS | {"length", "precision", "scale"}


def _naming(rule: NamingRule, at: _Where, asset: Asset, env: str | None) -> None:
    template = parse_template(rule.template, _EVERYTHING_FIELDS, at, "template") if rule.template else None
    if rule.target == "column":
        for col in asset["columns"]:
            if column_matches(rule.columns, col):
                col["glue_column"] = apply_naming(
                    rule, template, col["glue_column"], column_values(col, asset, env)
                )
        return
    field = "glue_database" if rule.target == "database" else "glue_table"
    asset[field] = apply_naming(rule, template, asset[field], table_values(asset, env))


def _types(rule: TypeRule, at: _Where, asset: Asset) -> None:
    sources = [rule.source_type] if isinstance(rule.source_type, str) else rule.source_type
    template = parse_template(rule.glue_type, _EVERYTHING_FIELDS, at, "glue_type")
    bounds = {
        "length": (rule.min_length, rule.max_length),
        "precision": (rule.min_precision, rule.max_precision),
        "scale": (rule.min_scale, rule.max_scale),
    }
    for col in asset["columns"]:
        if col["source_type"] not in sources:
            continue
        ok = True
        for field, (low, high) in bounds.items():
            value = col[field]
            if (
                (low is not None or high is not None or field in template.fields)
                and value is None
                or (low is not None and value < low)
                or (high is not None and value > high)
            ):
                ok = False
        if ok:
            col["glue_type"] = render(template, col)


def _business(rule: BusinessRule, at: _Where, asset: Asset, env: str | None) -> None:
    if rule.table_description is not None:
        text = render(
            parse_template(rule.table_description, _EVERYTHING_FIELDS, at, "d"), table_values(asset, env)
        )
        if text and not (rule.only_if_empty and asset["glue_description"]):
            asset["glue_description"] = text
    if rule.column_comment is not None:
        template = parse_template(rule.column_comment, _EVERYTHING_FIELDS, at, "c")
        for col in asset["columns"]:
            if column_matches(rule.columns, col):
                text = render(template, column_values(col, asset, env))
                if text and not (rule.only_if_empty and col["comment"]):
                    col["comment"] = text


def _parameters(rule: ParametersRule, at: _Where, asset: Asset, env: str | None) -> None:
    if rule.table:
        values = table_values(asset, env)
        for key, text in rule.table.items():
            asset["parameters"].pop(key, None)
            value = render(parse_template(text, _EVERYTHING_FIELDS, at, key), values)
            if value:
                asset["parameters"][key] = value
    if rule.column:
        templates = {k: parse_template(t, _EVERYTHING_FIELDS, at, k) for k, t in rule.column.items()}
        for col in asset["columns"]:
            if not column_matches(rule.columns, col):
                continue
            values = column_values(col, asset, env)
            for key, template in templates.items():
                col["parameters"].pop(key, None)
                value = render(template, values)
                if value:
                    col["parameters"][key] = value


def _field_rule(rule: ValueMapRule | DefaultRule, at: _Where, asset: Asset, env: str | None) -> None:
    on_assets = _frame_of(rule.field, rule.on, at) == "assets"
    targets = [asset] if on_assets else [c for c in asset["columns"] if column_matches(rule.columns, c)]
    for row in targets:
        value = row[rule.field]
        if isinstance(rule, ValueMapRule):
            key = None if value is None else str(value)
            if key in rule.map:
                row[rule.field] = rule.map[key]
            elif "default" in rule.model_fields_set:
                row[rule.field] = rule.default
        elif value is None or value == "":
            if isinstance(rule.value, str) and "{" in rule.value:
                values = table_values(asset, env) if row is asset else column_values(row, asset, env)
                row[rule.field] = render(parse_template(rule.value, _EVERYTHING_FIELDS, at, "value"), values)
            else:
                row[rule.field] = rule.value


# ------------------------------------------------------------------ names and limits
def safe_name(name: str) -> str:
    text = "".join(c for c in unicodedata.normalize("NFKD", name) if unicodedata.category(c) != "Mn").lower()
    text = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]+", "_", text)).strip("_")
    return text or "x"


def _suffix(name: str) -> str:
    return "_" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:SUFFIX_LEN]


def _dedupe(rows: list[Row], field: str, original: str, order: str) -> None:
    """Rows sharing a safe name: the first by `order` keeps it, the others get a hash suffix."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row[field]].append(row)
    for name, members in groups.items():
        members.sort(key=lambda r: r[order])
        for i, row in enumerate(members):
            if i > 0 or len(name.encode()) > MAX_NAME:
                row[field] = row[field][: MAX_NAME - SUFFIX_LEN - 1] + _suffix(row[original])


def resolve_names(assets: list[Asset]) -> None:
    databases: dict[str, str] = {}
    for asset in assets:
        asset["glue_table"] = safe_name(asset["glue_table"])
        databases.setdefault(asset["space"], safe_name(asset["glue_database"]))
        for col in asset["columns"]:
            col["glue_column"] = safe_name(col["glue_column"])
        _dedupe(asset["columns"], "glue_column", "column", "ordinal")
    db_rows = [{"space": s, "glue_database": d} for s, d in databases.items()]
    _dedupe(db_rows, "glue_database", "space", "space")
    final = {r["space"]: r["glue_database"] for r in db_rows}
    by_db: dict[str, list[Asset]] = defaultdict(list)
    for asset in assets:
        asset["glue_database"] = final[asset["space"]]
        by_db[asset["glue_database"]].append(asset)
    for members in by_db.values():
        _dedupe(members, "glue_table", "name", "name")


def finish_text(assets: list[Asset]) -> None:
    for asset in assets:
        d = asset["glue_description"]
        if d is not None:
            d = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]+", " ", d)
            asset["glue_description"] = d[: MAX_DESCRIPTION - 3] + "..." if len(d) > MAX_DESCRIPTION else d
        for col in asset["columns"]:
            c = col["comment"]
            if c is not None:
                c = re.sub(r"[\x00-\x1f\ufffe\uffff]+", " ", c).strip()
                col["comment"] = c[: MAX_COMMENT - 3] + "..." if len(c) > MAX_COMMENT else c


def violations(assets: list[Asset]) -> dict[tuple[str, str], list[str]]:
    """(space, name) -> the names of the Glue limits the asset breaks."""
    found: dict[tuple[str, str], list[str]] = {}
    tables = Counter((a["glue_database"], a["glue_table"]) for a in assets)
    for asset in assets:
        problems = []
        for check, name in (("database_name", asset["glue_database"]), ("table_name", asset["glue_table"])):
            if not _NAME.match(name) or len(name.encode()) > MAX_NAME:
                problems.append(check)
        if asset["glue_description"] is not None and len(asset["glue_description"]) > MAX_DESCRIPTION:
            problems.append("description_length")
        if tables[(asset["glue_database"], asset["glue_table"])] > 1:
            problems.append("unique_table")
        names = Counter(c["glue_column"] for c in asset["columns"])
        for col in asset["columns"]:
            if not _NAME.match(col["glue_column"]) or len(col["glue_column"].encode()) > MAX_NAME:
                problems.append("column_name")
            if glue_type_problem(col["glue_type"]) is not None:
                problems.append("column_type")
            if col["comment"] is not None and (len(col["comment"]) > MAX_COMMENT or "\n" in col["comment"]):
                problems.append("column_comment")
            if names[col["glue_column"]] > 1:
                problems.append("unique_column")
        if problems:
            found[(asset["space"], asset["name"])] = problems
    return found


def transform_and_validate(
    assets: list[Asset], rules: list[Rule], env: str | None
) -> tuple[list[Asset], dict[tuple[str, str], list[str]]]:
    """The whole stage, per object: mapping, rules in order, names, text limits, limit checks."""
    for asset in assets:
        map_default(asset)
    for index, rule in enumerate(rules):
        assets = apply_rule(rule, index, assets, env)
    finish_text(assets)
    resolve_names(assets)
    return assets, violations(assets)


def objects_from_frames(assets: list[Row], columns: list[Row]) -> list[Asset]:
    """Per-object input: each asset dict with its column dicts (built outside the timed stage)."""
    by_asset: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for col in columns:
        by_asset[(col["space"], col["name"])].append(col)
    return [dict(a, columns=by_asset.get((a["space"], a["name"]), [])) for a in assets]
