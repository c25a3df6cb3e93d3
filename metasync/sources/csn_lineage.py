"""Column lineage read from one CSN definition: where each column of a view or analytic model comes from.

Pure functions over plain dicts (one `definitions` entry of a CSN document). The reader supplies `resolve`, which
turns a CSN reference name (as written in `from`, `target` or a business layer's `dataEntity`) into the
(space, name) of the asset it denotes.

Column transforms, from weakest to strongest: `direct` (same name), `renamed` (`as` gives another name),
`measure` (an analytic-model measure over a fact-source column), `calculated` (`xpr`, `func`, `case`, `val`,
`cast`). A column that passes through several steps (sub-select, `$projection`, restricted measure) carries the
strongest transform met on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

Resolve = Callable[[str], tuple[str, str]]
Row = tuple[str, str, str, str, str]

TRANSFORM_RANK = {"direct": 0, "renamed": 1, "measure": 2, "calculated": 3}
_EXPRESSION_KEYS = frozenset({"xpr", "func", "case", "val", "list", "cast", "SELECT", "param"})
_ASSOCIATION_TYPES = ("cds.Association", "cds.Composition")
_SELF = ("$projection", "$self")


class Upstream(NamedTuple):
    """One upstream column; `space` is None for a reference to another column of the same view."""

    space: str | None
    name: str
    column: str
    transform: str


# `Upstream(...)` runs a Python-level `__new__`; the C one is several times faster in the reader's hot loop.
_new_upstream: Callable[[tuple[str | None, str, str, str]], Upstream] = partial(tuple.__new__, Upstream)


def _stronger(first: str, second: str) -> str:
    return first if TRANSFORM_RANK[first] >= TRANSFORM_RANK[second] else second


def _with_transform(upstreams: list[Upstream], transform: str) -> list[Upstream]:
    rank = TRANSFORM_RANK[transform]
    if rank == 0 or all(TRANSFORM_RANK[up.transform] >= rank for up in upstreams):
        return upstreams  # nothing gets stronger: keep the (immutable) tuples as they are
    return [
        up if TRANSFORM_RANK[up.transform] >= rank else Upstream(up.space, up.name, up.column, transform)
        for up in upstreams
    ]


def _ref_name(segment: Any) -> str:
    """A ref segment is a name or `{"id": name, "args": ...}` (parameterised source)."""
    return str(segment["id"]) if isinstance(segment, dict) else str(segment)


def query_of(definition: dict[str, Any]) -> dict[str, Any] | None:
    """The query of a view (`query`), or a projection wrapped as a SELECT; None for tables."""
    query, projection = definition.get("query"), definition.get("projection")
    if isinstance(query, dict):
        return query
    if isinstance(projection, dict):
        return {"SELECT": projection}
    return None


# ----------------------------------------------------------------------------- column lineage of a query
@dataclass
class _SubQuery:
    """A sub-select seen from outside: its output columns, and the one source `*` passes through, if any."""

    columns: dict[str, list[Upstream]]
    passthrough: _Source | None = None


_Source = tuple[str, str] | _SubQuery


@dataclass
class _Scope:
    resolve: Resolve
    sources: dict[str, _Source] = field(default_factory=dict)
    associations: dict[str, str] = field(default_factory=dict)  # association/mixin name -> target ref
    _distinct: list[_Source] | None = None

    def distinct_sources(self) -> list[_Source]:
        """The sources under all their aliases, once each (computed once all aliases are registered)."""
        if self._distinct is None:
            self._distinct = list({id(source): source for source in self.sources.values()}.values())
        return self._distinct


def _lookup(source: _Source, column: str) -> list[Upstream]:
    if isinstance(source, _SubQuery):
        if column in source.columns:
            return source.columns[column]
        return _lookup(source.passthrough, column) if source.passthrough is not None else []
    space, name = source
    return [Upstream(space, name, column, "direct")]


def _add_sources(node: Any, scope: _Scope, outer_associations: dict[str, str]) -> None:
    """Register the aliases of a `from` tree in `scope`."""
    if not isinstance(node, dict):
        return
    if node.get("ref"):
        ref = _ref_name(node["ref"][0])
        source = scope.resolve(ref)
        aliases = [node["as"]] if node.get("as") else [ref, ref.rsplit(".", 1)[-1]]
        for alias in aliases:
            scope.sources.setdefault(str(alias), source)
    elif "join" in node:
        for arg in node.get("args", []):
            _add_sources(arg, scope, outer_associations)
    elif "SELECT" in node or "SET" in node:
        inner = _query_columns(node, {}, outer_associations, scope.resolve)
        if node.get("as"):
            scope.sources[str(node["as"])] = inner


def _walk_refs(node: Any) -> Iterator[dict[str, Any]]:
    """Every column reference inside an expression, skipping parameters and nested queries."""
    if isinstance(node, list):
        for item in node:
            yield from _walk_refs(item)
    elif isinstance(node, dict):
        if "SELECT" in node or "SET" in node or node.get("param"):
            return
        if "ref" in node:
            yield node
        for key, value in node.items():
            if key not in ("ref", "as", "cast"):
                yield from _walk_refs(value)


def _resolve_ref(ref: list[Any], scope: _Scope) -> list[Upstream] | None:
    """Upstreams of a column reference; None when it denotes an association (not a column)."""
    path = (
        ref if all(segment.__class__ is str for segment in ref) else [_ref_name(segment) for segment in ref]
    )
    head = path[0]
    if head in _SELF:
        return [Upstream(None, "", path[1], "direct")] if len(path) == 2 else []
    if len(path) == 1:
        if head in scope.associations:
            return None
        if head.startswith((":", "$")):
            return []
        distinct = scope.distinct_sources()
        if len(distinct) == 1:
            return _lookup(distinct[0], head)
        holders = [s for s in distinct if isinstance(s, _SubQuery) and head in s.columns]
        return _lookup(holders[0], head) if len(holders) == 1 else []
    if len(path) == 2 and head in scope.sources:
        return _lookup(scope.sources[head], path[1])
    if len(path) == 2 and head in scope.associations:
        space, name = scope.resolve(scope.associations[head])
        return [Upstream(space, name, path[1], "direct")]
    return []


def _column_name(column: dict[str, Any]) -> str | None:
    if column.get("as"):
        return str(column["as"])
    if column.get("ref"):
        return _ref_name(column["ref"][-1])
    return None


def _column_upstreams(column: dict[str, Any], name: str, scope: _Scope) -> list[Upstream] | None:
    """Upstreams of one `columns[]` entry, or None when the entry is an association."""
    is_plain_ref = "ref" in column and _EXPRESSION_KEYS.isdisjoint(column)
    if is_plain_ref:
        upstreams = _resolve_ref(column["ref"], scope)
        if upstreams is None:
            return None
        step = "direct" if _ref_name(column["ref"][-1]) == name else "renamed"
        return _with_transform(upstreams, step)
    found: list[Upstream] = []
    for ref in _walk_refs({key: value for key, value in column.items() if key != "as"}):
        found.extend(_resolve_ref(ref["ref"], scope) or [])
    return _with_transform(found, "calculated")


def _passthrough(scope: _Scope) -> _Source | None:
    distinct = {id(source): source for source in scope.sources.values()}
    return next(iter(distinct.values())) if len(distinct) == 1 else None


def _expand_self(columns: dict[str, list[Upstream]]) -> dict[str, list[Upstream]]:
    """Replace references to other columns of the same query (`$projection.X`) by X's upstreams."""
    if all(up.space is not None for upstreams in columns.values() for up in upstreams):
        return columns  # no such reference (most queries)
    done: dict[str, list[Upstream]] = {}

    def expand(name: str, visiting: frozenset[str]) -> list[Upstream]:
        if name in done:
            return done[name]
        result: list[Upstream] = []
        for up in columns.get(name, []):
            if up.space is not None:
                result.append(up)
            elif up.column not in visiting:
                result.extend(_with_transform(expand(up.column, visiting | {up.column}), up.transform))
        done[name] = result
        return result

    return {name: expand(name, frozenset({name})) for name in columns}


def _query_columns(
    query: dict[str, Any], elements: dict[str, Any], associations: dict[str, str], resolve: Resolve
) -> _SubQuery:
    """Output columns of a SELECT or SET and their upstreams; `elements` lists the columns `*` stands for."""
    if "SET" in query:
        parts = [_query_columns(arg, elements, associations, resolve) for arg in query["SET"].get("args", [])]
        if not parts:
            return _SubQuery({})
        names = list(parts[0].columns)
        merged: dict[str, list[Upstream]] = {name: [] for name in names}
        for part in parts:
            for name, upstreams in zip(names, part.columns.values(), strict=False):
                merged[name].extend(upstreams)
        return _SubQuery(merged)
    select = query.get("SELECT", {})
    scope = _Scope(resolve, associations=dict(associations))
    for mixin, spec in (select.get("mixin") or {}).items():
        if isinstance(spec, dict) and spec.get("target"):
            scope.associations[mixin] = str(spec["target"])
    _add_sources(select.get("from"), scope, associations)
    columns: dict[str, list[Upstream]] = {}
    entries = select.get("columns")
    sources = scope.sources
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        # Fast path for the bulk of columns: `{"ref": [alias, column]}`, optionally with `as`, from a table or
        # view source (what `_column_upstreams` gives them, without its general machinery).
        ref = entry.get("ref")
        if ref.__class__ is list and len(ref) == 2 and len(entry) <= 2 and (len(entry) == 1 or "as" in entry):
            head, tail = ref
            source = sources.get(head) if head.__class__ is str and tail.__class__ is str else None
            if source.__class__ is tuple and head not in _SELF:
                column = entry.get("as") or tail
                if column and column.__class__ is str:  # an empty name is no column (the general path agrees)
                    space, name = source
                    step = "direct" if tail == column else "renamed"
                    columns[column] = [_new_upstream((space, name, tail, step))]
                    continue
        column = _column_name(entry)
        found = _column_upstreams(entry, column, scope) if column else None
        if column and found is not None:
            columns[column] = found
    passthrough = _passthrough(scope)
    if entries is None or "*" in entries:
        excluded = set(select.get("excluding") or [])
        for element in elements:
            if element not in columns and element not in excluded and element not in scope.associations:
                columns[element] = _lookup(passthrough, element) if passthrough is not None else []
    return _SubQuery(_expand_self(columns), passthrough if entries is None or "*" in entries else None)


# ----------------------------------------------------------------------------- analytic models
def _business_layer_columns(business_layer: dict[str, Any], resolve: Resolve) -> dict[str, list[Upstream]]:
    """Measures and attributes of an analytic model mapped to their fact- and dimension-source columns."""
    model = business_layer.get("sourceModel", {})
    sources: dict[str, tuple[str, str]] = {}
    for section in ("factSources", "dimensionSources"):
        for key, source in (model.get(section) or {}).items():
            entity = (source.get("dataEntity") or {}).get("key")
            if entity:
                sources[str(key)] = resolve(str(entity))
    facts = [sources[key] for key in (model.get("factSources") or {}) if key in sources]
    measures: dict[str, Any] = business_layer.get("measures") or {}
    attributes: dict[str, Any] = business_layer.get("attributes") or {}
    columns: dict[str, list[Upstream]] = {}

    def source_column(source_key: Any, column: str, name: str) -> list[Upstream]:
        source = sources.get(str(source_key)) if source_key is not None else (facts[0] if facts else None)
        if source is None:
            return []
        return [Upstream(*source, column, "direct" if column == name else "renamed")]

    for name, spec in attributes.items():
        if "attributeMapping" in spec:
            columns[name] = [
                up
                for source_key, target in spec["attributeMapping"].items()
                for up in source_column(source_key, str(target.get("key", name)), name)
            ]
        else:
            columns[name] = source_column(spec.get("sourceKey"), str(spec.get("key", name)), name)

    def measure(name: str, visiting: frozenset[str]) -> list[Upstream]:
        spec = measures.get(name)
        if spec is None:
            return columns.get(name, [])
        kind = str(spec.get("measureType", ""))
        if kind.endswith("CalculatedMeasure"):
            operands = [
                str(element["key"])
                for element in (spec.get("elements") or {}).values()
                if str(element.get("operandType", "")).endswith("Element") and element.get("key")
            ]
            found = [up for op in operands if op not in visiting for up in measure(op, visiting | {op})]
            return _with_transform(found, "calculated")
        key = str(spec.get("key", name))
        if key in measures and key not in visiting:
            return _with_transform(measure(key, visiting | {key}), "measure")
        return _with_transform(source_column(spec.get("sourceKey"), key, name), "measure")

    for name in measures:
        columns[name] = measure(name, frozenset({name}))
    return columns


# ----------------------------------------------------------------------------- entry point
def _own_associations(definition: dict[str, Any]) -> dict[str, str]:
    return {
        str(name): str(element["target"])
        for name, element in (definition.get("elements") or {}).items()
        if isinstance(element, dict) and element.get("type") in _ASSOCIATION_TYPES and element.get("target")
    }


def column_lineage_rows(definition: dict[str, Any], resolve: Resolve) -> list[Row]:
    """Column lineage of one view, projection or analytic model: (column, upstream_space, upstream_name,
    upstream_column, transform), distinct, in column order.

    Analytic models carry their businessLayerDefinitions entry under the key `"$businessLayer"`; their measures
    and attributes take lineage from it, any other column from the query. Tables give no rows.
    """
    associations = _own_associations(definition)
    elements: dict[str, Any] = definition.get("elements") or {}
    if associations:
        elements = {name: element for name, element in elements.items() if name not in associations}
    query = query_of(definition)
    columns = _query_columns(query, elements, associations, resolve).columns if query else {}
    business_layer = definition.get("$businessLayer")
    if isinstance(business_layer, dict):
        columns.update(_business_layer_columns(business_layer, resolve))
    rows: dict[Row, None] = {}
    for name, upstreams in columns.items():
        for up in upstreams:
            if up.space is not None:
                rows[(name, *up)] = None  # type: ignore[index]
    return list(rows)
