"""Read Datasphere / CAP CSN documents into the assets, columns, edges and column-lineage frames.

The walk over definitions and elements is the only per-object Python in the pipeline; it appends plain values
to column lists, and everything after it (type inference along lineage, kinds of edges, duplicates) is done on
frames.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, ClassVar

import orjson
import polars as pl

from metasync.config import CsnSourceConfig
from metasync.errors import ConfigError, SourceError
from metasync.models import (
    ASSET_SCHEMA,
    COLUMN_LINEAGE_SCHEMA,
    COLUMN_SCHEMA,
    Event,
    SourceFrames,
    space_name_problem,
)
from metasync.runtime import gc_paused
from metasync.sources.csn_lineage import column_lineage_rows
from metasync.sources.datasphere.flows import flow_edges, is_flow_document

log = logging.getLogger(__name__)

CSN_SUFFIXES = (".json", ".csn")
UTF8_BOM = b"\xef\xbb\xbf"
FIX_FILE_HINT = "Fix or re-export the file, or set source.skip_invalid: true to skip it."
ASSOCIATION_TYPES = frozenset({"cds.Association", "cds.Composition"})
HIERARCHY_PATTERNS = frozenset(
    {
        "ANALYTICAL_PARENT_CHILD_HIERARCHY",
        "ANALYTICAL_PARENT_CHILD_HIERARCHY_WITH_DIRECTORY",
        "EXTERNAL_HIERARCHY",
        "HIERARCHY",
    }
)
LABEL_KEYS = ("@EndUserText.label", "@Common.Label", "@title")
DESCRIPTION_KEYS = ("@EndUserText.quickInfo", "@description", "@Core.Description", "doc")
_I18N = re.compile(r"^\{i18n>([^}]+)\}$")
_MAX_TYPE_DEPTH = 32


def annotation(value: Any) -> Any:
    """The value of an annotation in any of its encodings: `"x"`, `{"#": "x"}` or `{"=": "x"}`."""
    if isinstance(value, dict):
        if "#" in value:
            return value["#"]
        if "=" in value:
            return value["="]
    return value


def _text(value: Any) -> str | None:
    if value.__class__ is str:  # the common case, first
        return value  # type: ignore[no-any-return]
    value = annotation(value)
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


@dataclass
class CsnDocument:
    """One parsed CSN document and where it came from."""

    origin: str
    space: str | None
    payload: dict[str, Any]
    i18n: dict[str, dict[str, str]] | None = None


@dataclass
class _Doc:
    """A document with its space contexts resolved, ready for the walk."""

    document: CsnDocument
    definitions: dict[str, Any]
    space_prefixes: list[tuple[str, str]]  # (context name + ".", space), longest first
    business_layer: dict[str, Any]
    texts: dict[str, str]

    def resolve(self, ref: str) -> tuple[str, str]:
        """Map a reference name in this document to (space, technical name)."""
        for prefix, space in self.space_prefixes:
            if ref.startswith(prefix):
                return space, ref[len(prefix) :]
        return self.document.space or "", ref

    def label(self, value: Any) -> str | None:
        text = _text(value)
        if text is None or not text.startswith("{i18n>"):
            return text
        match = _I18N.match(text)
        if match and match.group(1) in self.texts:
            return self.texts[match.group(1)]
        return text

    def first_label(self, node: dict[str, Any], keys: tuple[str, ...]) -> str | None:
        """The `label` of the first of `keys` that `node` has (None when it has none of them)."""
        return next((self.label(node[k]) for k in keys if k in node), None)


class InvalidDefinition(Exception):
    """A document that parses as JSON but breaks the CSN shape the reader relies on (raised by the walk)."""

    def __init__(self, document: CsnDocument, definition: str | None, problem: str) -> None:
        where = f"definition '{definition}'" if definition is not None else "the document"
        super().__init__(f"{document.origin}: {where} is not valid CSN: {problem}.")
        self.document = document
        self.definition = definition


def _problem(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# Errors a malformed document raises in the walk (a value of the wrong JSON type where CSN prescribes one).
_SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)


def _i18n_texts(bundle: dict[str, Any] | None, language: str) -> dict[str, str]:
    """Flatten an i18n bundle ({lang: {KEY: text}}) for one language, falling back to the default bundle."""
    if not bundle:
        return {}
    texts: dict[str, str] = {}
    for lang in ("", "en", language.split("_")[0], language):
        part = bundle.get(lang)
        if isinstance(part, dict):
            texts.update({k: v for k, v in part.items() if isinstance(v, str)})
    return texts


def _semantic_role(element: dict[str, Any]) -> tuple[str, str | None]:
    aggregation = _text(element.get("@Aggregation.default"))
    if aggregation in ("NONE", "NOP"):
        aggregation = None
    if "@AnalyticsDetails.measureType" in element or element.get("@Analytics.measure") is True or aggregation:
        return "measure", aggregation
    if element.get("@Semantics.text") is True:
        return "text", aggregation
    if (
        element.get("@Analytics.dimension") is True
        or "@ObjectModel.foreignKey.association" in element
        or "@ObjectModel.text.association" in element
    ):
        return "dimension", aggregation
    return "attribute", aggregation


class _TypeResolver:
    """Resolves element types through `type` definitions, by name or `{"ref": [...]}`, across documents."""

    def __init__(self, docs: list[_Doc]) -> None:
        self._by_name: dict[str, dict[str, Any]] = {}
        for doc in docs:
            for name, definition in doc.definitions.items():
                if isinstance(definition, dict):
                    self._by_name.setdefault(name, definition)

    def resolve(self, element: dict[str, Any], doc: _Doc) -> tuple[str | None, dict[str, Any], str]:
        """Return (cds base type or None if typeless/unknown, merged facets, origin)."""
        facets: dict[str, Any] = {}
        current: dict[str, Any] = element
        origin = "declared"
        for _ in range(_MAX_TYPE_DEPTH):
            for facet in ("length", "precision", "scale", "target", "items", "elements", "srid"):
                if facet in current and facet not in facets:
                    facets[facet] = current[facet]
            type_ = current.get("type")
            if type_ is None:
                if "items" in current or "elements" in current:
                    return ("cds.Array" if "items" in current else "cds.Struct"), facets, origin
                return None, facets, origin
            if isinstance(type_, str) and (
                type_.startswith("cds.") or type_ in ("Association", "Composition")
            ):
                return (type_ if type_.startswith("cds.") else f"cds.{type_}"), facets, origin
            found = self._lookup(type_, doc)
            if found is None:
                return (
                    (type_ if isinstance(type_, str) else orjson.dumps(type_).decode()),
                    facets,
                    "unresolved",
                )
            current, origin = found, "type"
        return None, facets, "unresolved"

    def _lookup(self, type_: Any, doc: _Doc) -> dict[str, Any] | None:
        if isinstance(type_, dict) and isinstance(type_.get("ref"), list):
            path = [p if isinstance(p, str) else p.get("id", "") for p in type_["ref"]]
        elif isinstance(type_, str) and ":" in type_:
            head, _, tail = type_.partition(":")
            path = [head, *tail.split(".")]
        elif isinstance(type_, str):
            path = [type_]
        else:
            return None
        node = self._by_name.get(path[0])
        for step in path[1:]:
            if node is None:
                return None
            node = (node.get("elements") or {}).get(step)
        return node if isinstance(node, dict) else None


def _glue_hint(base: str, facets: dict[str, Any], resolver: _TypeResolver, doc: _Doc) -> str | None:
    """Glue type for arrays and structures (rare), built here because it recurses into element types."""
    from metasync.transform.mapping import scalar_glue_type

    def of(element: dict[str, Any]) -> str:
        sub_base, sub_facets, _ = resolver.resolve(element, doc)
        if sub_base in ("cds.Array", "cds.Struct"):
            return _glue_hint(sub_base, sub_facets, resolver, doc) or "string"
        return scalar_glue_type(
            sub_base, sub_facets.get("length"), sub_facets.get("precision"), sub_facets.get("scale")
        )

    if base == "cds.Array":
        items = facets.get("items") or {}
        return f"array<{of(items)}>"
    if base == "cds.Struct":
        fields = [
            f"{re.sub(r'[^a-z0-9_]', '_', name.lower())}:{of(sub)}"
            for name, sub in (facets.get("elements") or {}).items()
            if isinstance(sub, dict)
        ]
        return f"struct<{','.join(fields)}>" if fields else "string"
    return None


def _query_sources(definition: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(reference name, edge kind) for every object a view reads from."""

    def from_clause(node: Any, kind: str) -> Iterator[tuple[str, str]]:
        if not isinstance(node, dict):
            return
        if "ref" in node and isinstance(node["ref"], list) and node["ref"]:
            head = node["ref"][0]
            name = head.get("id") if isinstance(head, dict) else head
            if isinstance(name, str):
                yield name, kind
        elif "join" in node or "args" in node:
            for arg in node.get("args") or []:
                yield from from_clause(arg, "join")
        if "SELECT" in node or "SET" in node:
            yield from query(node, kind)

    def query(node: Any, kind: str) -> Iterator[tuple[str, str]]:
        if not isinstance(node, dict):
            return
        if "SELECT" in node:
            yield from from_clause(node["SELECT"].get("from"), kind)
        if "SET" in node:
            for arg in node["SET"].get("args") or []:
                yield from query(arg, "union")

    if "query" in definition:
        yield from query(definition["query"], "from")
    if "projection" in definition:
        yield from from_clause(definition["projection"].get("from"), "from")


def _mixins(definition: dict[str, Any]) -> dict[str, Any]:
    query = definition.get("query")
    if isinstance(query, dict) and isinstance(query.get("SELECT"), dict):
        mixin = query["SELECT"].get("mixin")
        if isinstance(mixin, dict):
            return mixin
    return {}


def _content_hash(definition: dict[str, Any], business_layer: Any, *, canonical: bool = False) -> str:
    """SHA-256 of a definition's content as exported; `_meta` (designer bookkeeping such as folders) does not
    count. With `canonical`, keys are sorted first, so copies that differ only in key order hash alike (used
    to re-check duplicates, since sorting every definition costs twice as much)."""
    if "_meta" in definition:
        definition = {k: v for k, v in definition.items() if k != "_meta"}
    if isinstance(business_layer, dict) and "_meta" in business_layer:
        business_layer = {k: v for k, v in business_layer.items() if k != "_meta"}
    payload = orjson.dumps([definition, business_layer], option=orjson.OPT_SORT_KEYS if canonical else 0)
    return hashlib.sha256(payload).hexdigest()


def _hierarchy_details(found: list[tuple[str, dict[str, Any]]], doc: _Doc) -> str:
    """The hierarchies of a dimension as JSON text: name, label, and the level columns (leveled, top first) or
    the parent and child columns (parent-child)."""

    def names(values: Any) -> list[str]:
        return [str(_text(v)) for v in (values if isinstance(values, list) else []) if _text(v) is not None]

    details = []
    for key, h in found:
        item: dict[str, Any] = {"name": str(h["name"]), "label": doc.label(h.get("label"))}
        if key == "@Hierarchy.leveled":
            levels: list[Any] = h["levels"] if isinstance(h.get("levels"), list) else []
            item["levels"] = names([level.get("element") for level in levels if isinstance(level, dict)])
        else:
            recurse: dict[str, Any] = h["recurse"] if isinstance(h.get("recurse"), dict) else {}
            item["parent"], item["child"] = names(recurse.get("parent")), names(recurse.get("child"))
        details.append(item)
    return orjson.dumps(details).decode()


def _remote_entity(entity: str | None, connection: str) -> str | None:
    """The remote object a remote table reads, readable: Datasphere may write it as parts separated by DEL
    (`<NULL>` for an empty part, the connection's own id first); those become one dotted name."""
    if entity is None or "\x7f" not in entity:
        return entity
    parts = [p for p in entity.split("\x7f") if p and p != "<NULL>"]
    if len(parts) > 1 and parts[0] == connection:
        parts = parts[1:]
    return ".".join(parts) or None


def _asset_kind(definition: dict[str, Any], pattern: str | None, in_business_layer: bool) -> str:
    if in_business_layer or pattern == "ANALYTICAL_CUBE":
        return "analytic_model"
    if "@DataWarehouse.remote.connection" in definition or "@DataWarehouse.remote.entity" in definition:
        return "remote_table"
    if pattern == "ANALYTICAL_DIMENSION":
        return "dimension"
    if pattern == "LANGUAGE_DEPENDENT_TEXT":
        return "text"
    if pattern in HIERARCHY_PATTERNS:
        return "hierarchy"
    if pattern == "ANALYTICAL_FACT":
        return "fact"
    if _text(definition.get("@Analytics.dbViewType")) == "TABLE_FUNCTION":
        return "view"  # an SQL script view: no query in the CSN, still a view
    delta = definition.get("@DataWarehouse.delta")
    if isinstance(delta, dict) and _text(delta.get("type")) == "ACTIVE":
        return "table"  # a delta-capture table's active records: its query is generated
    if "query" in definition or "projection" in definition or "SET" in definition:
        return "view"
    return "table"


@dataclass
class PartFrames:
    """What the reader makes of one part of a source, before the steps that need the whole source.

    A source read in parts (several processes, each a group of space folders) is finished once over all parts
    by `finish`; a part that needs another one (a type defined elsewhere) is flagged `unresolved_types`.
    """

    assets: pl.DataFrame  # duplicates within the part collapsed, with `conflict_files`
    columns: pl.DataFrame  # declared and resolved types; typeless columns not yet inferred
    edges: pl.DataFrame  # data-flow edges from definitions and business layers
    relationships: pl.DataFrame  # association, text and foreign-key edges (text not yet classified)
    flows: pl.DataFrame  # edges from Datasphere flows
    column_lineage: pl.DataFrame
    events: list[Event] = field(default_factory=list)  # the reader's events
    file_events: list[Event] = field(default_factory=list)  # events about files (skipped, not CSN, ...)
    incomplete: bool = False
    unresolved_types: bool = False

    FRAMES: ClassVar[tuple[str, ...]] = (
        "assets",
        "columns",
        "edges",
        "relationships",
        "flows",
        "column_lineage",
    )


def read_documents(docs: Iterable[CsnDocument], *, language: str = "en") -> SourceFrames:
    """Read CSN documents into validated frames; identical duplicates collapse, differing ones are flagged.

    Documents holding Datasphere flows contribute only their `flow` edges (flows are not entities).
    """
    return finish([read_part(docs, language=language)])


def read_part(docs: Iterable[CsnDocument], *, language: str = "en", skip_invalid: bool = False) -> PartFrames:
    """The reader's work on one part of a source (see `PartFrames`).

    A document that breaks the CSN shape (elements that are not an object, a query of the wrong type, ...) raises
    a `SourceError` naming its file and definition; with `skip_invalid`, it is left out instead, with a
    `file_skipped` event, and the part is `incomplete`.
    """
    docs = list(docs)
    skipped: list[Event] = []
    while True:
        try:
            with gc_paused():
                prepared = [_prepare(doc, language) for doc in docs if not is_flow_document(doc.payload)]
                part = _walk(prepared)
            break
        except InvalidDefinition as exc:
            if not skip_invalid:
                raise SourceError(str(exc), hint=FIX_FILE_HINT) from exc
            docs = [doc for doc in docs if doc is not exc.document]
            skipped.append(
                Event(
                    event="file_skipped",
                    severity="error",
                    space=exc.document.space,
                    message=str(exc),
                    details={"file": exc.document.origin, "definition": exc.definition},
                    hint="Fix or re-export the file; the run ends partial while it is skipped.",
                )
            )
    part.flows = flow_edges((doc.space or "", doc.payload) for doc in docs if is_flow_document(doc.payload))
    part.file_events, part.incomplete = skipped, bool(skipped)
    return part


def finish(parts: list[PartFrames]) -> SourceFrames:
    """The whole source from its parts: text edges classified, types inferred along the column lineage across
    parts, frames validated. Events: every part's file events, then the reader's, then the inference's."""
    assets = pl.concat([p.assets for p in parts])
    lineage = pl.concat([p.column_lineage for p in parts]).unique(maintain_order=True)
    edges = pl.concat([p.edges for p in parts] + [p.relationships for p in parts])
    edges = _classify_text_edges(edges.unique(maintain_order=True), assets)
    columns, fallback_events = infer_types_along_lineage(pl.concat([p.columns for p in parts]), lineage)
    columns = inherit_aggregations_along_lineage(columns, lineage)
    flows = pl.concat([p.flows for p in parts], how="diagonal_relaxed")
    if flows.height:
        edges = pl.concat([edges, flows], how="diagonal_relaxed").unique(maintain_order=True)
    frames = SourceFrames(
        assets=assets,
        columns=columns,
        edges=edges,
        column_lineage=lineage,
        events=[e for p in parts for e in p.file_events]
        + [e for p in parts for e in p.events]
        + fallback_events
        + _unresolved_i18n(assets, columns),
        incomplete=any(p.incomplete for p in parts),
    )
    return frames.validate()


def _unresolved_i18n(assets: pl.DataFrame, columns: pl.DataFrame) -> list[Event]:
    """One warning when labels or descriptions are still `{i18n>KEY}` placeholders (no bundle, or no text for
    the key in it): they are written as they are, which no one wants to read in a catalog."""
    texts = ("business_name", "description")
    placeholder = pl.any_horizontal([pl.col(t).str.starts_with("{i18n>") for t in texts]).fill_null(False)
    found = pl.concat(
        [
            assets.filter(placeholder).select(
                "space", "name", pl.lit(None, dtype=pl.Utf8).alias("column"), *texts
            ),
            columns.filter(placeholder).select("space", "name", "column", *texts),
        ]
    )
    if found.is_empty():
        return []
    objects = found.select("space", "name").unique().height
    first = found.head(1).to_dicts()[0]
    key = next(first[t] for t in texts if (first[t] or "").startswith("{i18n>"))
    where = f"{first['space']}.{first['name']}" + (f".{first['column']}" if first["column"] else "")
    return [
        Event(
            event="i18n_unresolved",
            severity="warning",
            message=f"{found.height} label(s) or description(s) of {objects} object(s) are i18n placeholders "
            f"with no text (e.g. {key} on {where}); they are written as they are.",
            details={"texts": found.height, "objects": objects},
            hint="Export the i18n bundle with the CSN (i18n.json beside the file, or in _i18n/), or check "
            "source.language.",
        )
    ]


def _prepare(document: CsnDocument, language: str) -> _Doc:
    payload = document.payload
    definitions = payload.get("definitions") or {}
    if not isinstance(definitions, dict):
        raise InvalidDefinition(document, None, "definitions is not an object")
    prefixes: list[tuple[str, str]] = []
    for name, definition in definitions.items():
        if isinstance(definition, dict) and definition.get("kind") == "context":
            space = _text(definition.get("@DataWarehouse.space.name"))
            if space:
                problem = space_name_problem(space)
                if problem:
                    raise InvalidDefinition(document, name, f"@DataWarehouse.space.name {space!r} {problem}")
                prefixes.append((name + ".", space))
    prefixes.sort(key=lambda p: len(p[0]), reverse=True)
    bundle: dict[str, Any] = {}
    if isinstance(payload.get("i18n"), dict):
        bundle.update(payload["i18n"])
    if document.i18n:
        for lang, texts in document.i18n.items():
            bundle.setdefault(lang, {}).update(texts)
    business_layer = payload.get("businessLayerDefinitions") or {}
    if not isinstance(business_layer, dict) or not all(isinstance(v, dict) for v in business_layer.values()):
        raise InvalidDefinition(document, None, "businessLayerDefinitions is not an object of objects")
    return _Doc(
        document=document,
        definitions=definitions,
        space_prefixes=prefixes,
        business_layer=business_layer,
        texts=_i18n_texts(bundle, language),
    )


# The fields every element is read for, with the types they are read as (a value of another JSON type becomes
# its text, or null where no number can be made of it). The flags are read as text: Polars and Python turn
# other values into booleans by different rules, while both write `true` for true (see `_flag`).
ELEMENT_FIELDS: dict[str, type[pl.DataType]] = {
    "type": pl.Utf8,
    "length": pl.Int64,
    "precision": pl.Int64,
    "scale": pl.Int64,
    "key": pl.Utf8,
    "notNull": pl.Utf8,
    "@EndUserText.label": pl.Utf8,
    "@EndUserText.quickInfo": pl.Utf8,
}
# Keys whose presence sends an element through the per-element path: rare annotations and structured types.
RARE_ELEMENT_KEYS = frozenset(
    {
        "@Common.Label",
        "@title",
        *(key for key in DESCRIPTION_KEYS if key not in ELEMENT_FIELDS),
        "@AnalyticsDetails.measureType",
        "@Analytics.measure",
        "@Aggregation.default",
        "@Semantics.text",
        "@Analytics.dimension",
        "@ObjectModel.foreignKey.association",
        "@ObjectModel.text.association",
        "items",
        "elements",
    }
)


@dataclass
class _Elements:
    """Every element of every entity, gathered with C-level list operations (no per-element Python)."""

    names: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)
    owner_doc: list[_Doc] = field(default_factory=list)  # per asset row
    # per asset row: the definition's name in its document
    owner_name: list[str] = field(default_factory=list)
    i18n_ranges: list[tuple[int, int, _Doc]] = field(default_factory=list)

    def add(self, asset_row: int, elements: dict[str, Any]) -> None:
        self.names.extend(elements)
        self.values.extend(elements.values())
        self.owner.extend(repeat(asset_row, len(elements)))


def _walk(docs: list[_Doc]) -> PartFrames:
    resolver = _TypeResolver(docs)
    events: list[Event] = []
    assets: dict[str, list[Any]] = {
        k: []
        for k in (
            "space",
            "name",
            "kind",
            "business_name",
            "description",
            "modeling_pattern",
            "hierarchies",
            "hierarchy_details",
            "remote_source",
            "source_file",
            "content_hash",
        )
    }
    elements = _Elements()
    hashed: list[tuple[dict[str, Any], Any]] = []  # per asset row, to re-hash differing duplicates
    mixins: list[tuple[int, str, str]] = []  # (asset row, mixin name, target ref)
    edges: dict[str, list[Any]] = {
        k: [] for k in ("source_space", "source_name", "target_space", "target_name", "kind", "via")
    }
    lineage_rows: list[
        tuple[str, str, str, str, str]
    ] = []  # (column, upstream space, name, column, transform)
    lineage_owner: list[int] = []

    def add_edge(
        src: tuple[str, str],
        dst: tuple[str, str],
        kind: str,
        via: str | None,
        into: dict[str, list[Any]] = edges,
    ) -> None:
        into["source_space"].append(src[0])
        into["source_name"].append(src[1])
        into["target_space"].append(dst[0])
        into["target_name"].append(dst[1])
        into["kind"].append(kind)
        into["via"].append(via)

    for doc in docs:
        origin = doc.document.origin
        first_element = len(elements.values)
        full_name: str | None = None
        try:
            for full_name, definition in doc.definitions.items():
                if not isinstance(definition, dict):
                    raise InvalidDefinition(doc.document, full_name, "it is not an object")
                if definition.get("kind") != "entity":
                    continue
                space, name = doc.resolve(full_name)
                asset = (space, name)
                business = doc.business_layer.get(full_name)
                pattern = _text(definition.get("@ObjectModel.modelingPattern"))
                kind = _asset_kind(definition, pattern, business is not None)
                found = [
                    (key, h)
                    for key in ("@Hierarchy.leveled", "@Hierarchy.parentChild")
                    for h in (definition.get(key) or [])
                    if isinstance(h, dict) and h.get("name")
                ]
                hierarchies = [str(h["name"]) for _, h in found]
                remote = None
                if kind == "remote_table":
                    connection = _text(definition.get("@DataWarehouse.remote.connection")) or "remote"
                    entity = (
                        _remote_entity(_text(definition.get("@DataWarehouse.remote.entity")), connection)
                        or name
                    )
                    remote = f"{connection}.{entity}"
                    add_edge((connection, entity), asset, "from", None)
                asset_row = len(assets["space"])
                assets["space"].append(space)
                assets["name"].append(name)
                assets["kind"].append(kind)
                assets["business_name"].append(doc.first_label(definition, LABEL_KEYS))
                assets["description"].append(doc.first_label(definition, DESCRIPTION_KEYS))
                assets["modeling_pattern"].append(pattern)
                assets["hierarchies"].append("\x1f".join(hierarchies))  # split into a list in Polars below
                assets["hierarchy_details"].append(_hierarchy_details(found, doc) if found else None)
                assets["remote_source"].append(remote)
                assets["source_file"].append(origin)
                assets["content_hash"].append(_content_hash(definition, business))
                hashed.append((definition, business))
                elements.owner_doc.append(doc)
                elements.owner_name.append(full_name)

                # Data-flow edges: analytic-model sources come from the business layer only.
                model_sources: set[tuple[str, str]] = set()
                if business is not None:
                    source_model = business.get("sourceModel") or {}
                    for group, edge_kind in (
                        ("factSources", "fact_source"),
                        ("dimensionSources", "dimension_source"),
                    ):
                        for src in (source_model.get(group) or {}).values():
                            key = ((src or {}).get("dataEntity") or {}).get("key")
                            if isinstance(key, str):
                                upstream = doc.resolve(key)
                                if upstream not in model_sources:
                                    model_sources.add(upstream)
                                    add_edge(upstream, asset, edge_kind, None)
                seen_sources: set[tuple[str, str]] = set(model_sources)
                for ref, edge_kind in _query_sources(definition):
                    upstream = doc.resolve(ref)
                    if upstream not in seen_sources:
                        seen_sources.add(upstream)
                        add_edge(upstream, asset, edge_kind, None)

                own = definition.get("elements")
                if isinstance(own, dict):
                    if own:
                        elements.add(asset_row, own)
                elif "elements" in definition:
                    raise InvalidDefinition(doc.document, full_name, "its elements are not an object")
                for mixin_name, mixin in _mixins(definition).items():
                    if isinstance(mixin, dict) and isinstance(mixin.get("target"), str):
                        mixins.append((asset_row, mixin_name, mixin["target"]))

                if "query" in definition or "projection" in definition or business is not None:
                    with_layer = (
                        definition if business is None else {**definition, "$businessLayer": business}
                    )
                    rows = column_lineage_rows(with_layer, doc.resolve)
                    lineage_rows.extend(rows)
                    lineage_owner.extend(repeat(asset_row, len(rows)))
        except _SHAPE_ERRORS as exc:  # a value of the wrong JSON type somewhere in the definition
            raise InvalidDefinition(doc.document, full_name, _problem(exc)) from exc
        if doc.texts and len(elements.values) > first_element:
            elements.i18n_ranges.append((first_element, len(elements.values), doc))

    schema = {k: ASSET_SCHEMA.columns[k].dtype.type for k in assets} | {"hierarchies": pl.Utf8}
    asset_frame = pl.DataFrame(assets, schema=schema).with_columns(
        hierarchies=pl.when(pl.col("hierarchies") == "")
        .then(pl.lit([], dtype=pl.List(pl.Utf8)))
        .otherwise(pl.col("hierarchies").str.split("\x1f"))
    )
    column_frame, relationship_rows, element_events = _element_frame(elements, resolver, asset_frame, mixins)
    events.extend(element_events)
    relationships: dict[str, list[Any]] = {k: [] for k in edges}
    for row in relationship_rows:
        add_edge(*row, into=relationships)
    edge_schema = dict.fromkeys(edges, pl.Utf8)
    edge_frame = pl.DataFrame(edges, schema=edge_schema)
    relationship_frame = pl.DataFrame(relationships, schema=edge_schema)
    lineage_frame = _lineage_frame(lineage_rows, lineage_owner, asset_frame)
    asset_frame, column_frame, dup_events = _collapse_duplicates(
        asset_frame, column_frame, lambda row: _content_hash(*hashed[row], canonical=True)
    )
    events.extend(dup_events)
    return PartFrames(
        assets=asset_frame,
        columns=column_frame,
        edges=edge_frame,
        relationships=relationship_frame,
        flows=pl.DataFrame(schema=edge_schema),
        column_lineage=lineage_frame,
        events=events,
        unresolved_types=any(e.event == "type_unresolved" for e in element_events),
    )


def _lineage_frame(
    rows: list[tuple[str, str, str, str, str]], owner: list[int], assets: pl.DataFrame
) -> pl.DataFrame:
    """The column-lineage frame from the reader's row tuples and the asset row each belongs to."""
    names = ("column", "upstream_space", "upstream_name", "upstream_column", "transform")
    columns = zip(*rows, strict=True) if rows else [()] * len(names)
    frame = pl.DataFrame(
        {"_asset_row": pl.Series(owner, dtype=pl.UInt32)}
        | {name: pl.Series(values, dtype=pl.Utf8) for name, values in zip(names, columns, strict=True)}
    )
    return _with_asset_ids(frame, assets).select(list(COLUMN_LINEAGE_SCHEMA.columns))


def _with_asset_ids(frame: pl.DataFrame, assets: pl.DataFrame) -> pl.DataFrame:
    """`frame`, whose `_asset_row` is the row of each row's asset in `assets`, with that asset's space and name."""
    rows = frame["_asset_row"]
    return frame.with_columns(assets["space"].gather(rows), assets["name"].gather(rows))


def _flag(text: pl.Series) -> pl.Series:
    """A CSN flag (`key`, `notNull`) read as text: set when the value is `true` (or the text "true" in any case);
    numbers, other texts, objects and a missing value leave it unset, whichever way the fields were read."""
    return (text.str.to_lowercase() == "true").fill_null(False)


def _common_fields(values: list[dict[str, Any]]) -> pl.DataFrame:
    """The `ELEMENT_FIELDS` of every element, one column each.

    Polars reads the dicts itself (no per-element Python) when every value fits its column's type; a value that
    does not (a type given as `{"ref": ...}`, a label as `{"#": ...}`, a length as a list) makes it refuse the
    whole list, and the fields are then gathered in Python, where such values become text or null.
    """
    try:
        return pl.from_dicts(values, schema=ELEMENT_FIELDS, strict=False)
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError, TypeError, OverflowError):
        return _common_fields_in_python(values)


def _common_fields_in_python(values: list[dict[str, Any]]) -> pl.DataFrame:
    """`_common_fields` for any JSON values: each field's values made a Series with `strict=False`."""
    # One pass touching each element once (far better memory locality than one pass per field).
    fields = tuple(ELEMENT_FIELDS)
    rows = [tuple(map(v.get, fields)) for v in values]
    columns = zip(*rows, strict=True) if rows else [()] * len(ELEMENT_FIELDS)
    return pl.DataFrame(
        [
            _lenient_series(name, list(column), dtype)
            for (name, dtype), column in zip(ELEMENT_FIELDS.items(), columns, strict=True)
        ]
    )


def _lenient_series(name: str, values: list[Any], dtype: type[pl.DataType]) -> pl.Series:
    """A Series of `dtype` from JSON values of any type. Polars converts what it can (`strict=False`); when
    lists or objects keep it from building the Series at all, those become their JSON text in a text column and
    null in any other."""
    try:
        return pl.Series(name, values, dtype=dtype, strict=False)
    except (TypeError, OverflowError, pl.exceptions.PolarsError):
        pass
    nested = (list, dict)
    if dtype == pl.Utf8:
        values = [orjson.dumps(v).decode() if isinstance(v, nested) else v for v in values]
    else:
        values = [None if isinstance(v, nested) else v for v in values]
    return pl.Series(name, values, dtype=dtype, strict=False)


def _element_frame(
    elements: _Elements,
    resolver: _TypeResolver,
    assets: pl.DataFrame,
    mixins: list[tuple[int, str, str]],
) -> tuple[pl.DataFrame, list[tuple[tuple[str, str], tuple[str, str], str, str]], list[Event]]:
    """The columns frame and the relationship edges, from all elements at once.

    Common fields are read for the whole element list by `_common_fields`; only elements with a type that is not
    a plain `cds.*` scalar, with rare annotations, or with a label or description that is not plain text take the
    per-element path.
    """
    values = elements.values
    owner_doc = elements.owner_doc
    owners = elements.owner

    def invalid(i: int, problem: str) -> InvalidDefinition:
        doc = owner_doc[owners[i]]
        return InvalidDefinition(doc.document, elements.owner_name[owners[i]], problem)

    if set(map(type, values)) - {dict}:
        i = next(i for i, v in enumerate(values) if not isinstance(v, dict))
        raise invalid(i, f"its element '{elements.names[i]}' is not an object")
    n = len(values)
    common = _common_fields(values)
    series: dict[str, pl.Series] = {
        "_asset_row": pl.Series(elements.owner, dtype=pl.UInt32),
        "column": pl.Series(elements.names, dtype=pl.Utf8),
        "source_type": common["type"],
        "length": common["length"],
        "precision": common["precision"],
        "scale": common["scale"],
        "is_key": _flag(common["key"]),
        "not_null": _flag(common["notNull"]),
        "business_name": common["@EndUserText.label"],
        "description": common["@EndUserText.quickInfo"],
        "semantic_role": pl.repeat("attribute", n, dtype=pl.Utf8, eager=True),
        "aggregation": pl.Series([None] * n, dtype=pl.Utf8),
        "type_origin": pl.repeat("declared", n, dtype=pl.Utf8, eager=True),
        "glue_type_hint": pl.Series([None] * n, dtype=pl.Utf8),
    }
    # Which rows need Python: non-`cds.` or association types, rare keys, labels and descriptions that are not
    # plain text (objects and lists read as text start with `{` or `[`, like i18n placeholders; numbers and
    # booleans are written again as Python writes them).
    source_type = series["source_type"]
    odd_type = (
        source_type.is_null() | ~source_type.str.starts_with("cds.") | source_type.is_in(ASSOCIATION_TYPES)
    ).arg_true()
    rare = pl.Series(list(map(RARE_ELEMENT_KEYS.isdisjoint, values)), dtype=pl.Boolean).not_().arg_true()
    odd_text = {
        text_field: (
            text.str.contains(r"^[{\[]|^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^(true|false|NaN|-?inf)$")
        ).arg_true()
        for text_field, text in (
            ("business_name", series["business_name"]),
            ("description", series["description"]),
        )
    }
    i18n_rows = [i for start, end, _ in elements.i18n_ranges for i in range(start, end)]

    patch: dict[str, dict[int, Any]] = {
        k: {}
        for k in (
            "source_type",
            "length",
            "precision",
            "scale",
            "business_name",
            "description",
            "semantic_role",
            "aggregation",
            "type_origin",
            "glue_type_hint",
        )
    }
    drop: list[int] = []
    associations: list[tuple[int, str, str]] = []  # (asset row, element name, target ref)
    text_refs: set[tuple[int, str | None]] = set()
    fk_refs: set[tuple[int, str | None]] = set()
    unresolved: dict[int, list[str]] = {}

    for i in odd_type.to_list():
        element = values[i]
        doc = owner_doc[owners[i]]
        try:
            base, facets, origin_kind = resolver.resolve(element, doc)
            hint = _glue_hint(base, facets, resolver, doc) if base in ("cds.Array", "cds.Struct") else None
        except _SHAPE_ERRORS as exc:
            raise invalid(i, f"the type of its element '{elements.names[i]}': {_problem(exc)}") from exc
        if base in ASSOCIATION_TYPES:
            drop.append(i)
            target = facets.get("target")
            if isinstance(target, str):
                associations.append((owners[i], elements.names[i], target))
            continue
        if origin_kind == "unresolved":
            unresolved.setdefault(owners[i], []).append(elements.names[i])
        patch["source_type"][i] = base
        for facet in ("length", "precision", "scale"):
            value = facets.get(facet)
            patch[facet][i] = value if isinstance(value, int) and not isinstance(value, bool) else None
        patch["type_origin"][i] = "declared" if origin_kind in ("declared", "unresolved") else origin_kind
        if hint is not None:
            patch["glue_type_hint"][i] = hint
    roles, aggregations, descriptions = patch["semantic_role"], patch["aggregation"], patch["description"]
    labels = patch["business_name"]
    for i in rare.to_list():
        element = values[i]
        role, aggregation = _semantic_role(element)
        if role != "attribute":
            roles[i] = role
        if aggregation is not None:
            aggregations[i] = aggregation
        descriptions[i] = owner_doc[owners[i]].first_label(element, DESCRIPTION_KEYS)
        if "@EndUserText.label" not in element:  # else the bulk read (and the odd-label pass) has it
            labels[i] = owner_doc[owners[i]].first_label(element, LABEL_KEYS)
        if "@ObjectModel.text.association" in element:
            text_refs.add((owners[i], _text(element["@ObjectModel.text.association"])))
        if "@ObjectModel.foreignKey.association" in element:
            fk_refs.add((owners[i], _text(element["@ObjectModel.foreignKey.association"])))
    for text_field, keys in (("business_name", LABEL_KEYS), ("description", DESCRIPTION_KEYS)):
        patched = patch[text_field]
        for i in sorted(set(odd_text[text_field].to_list()) | set(i18n_rows)):
            if i not in patched:
                patched[i] = owner_doc[owners[i]].first_label(values[i], keys)

    for name, changes in patch.items():
        if changes:
            current = series[name]
            series[name] = current.scatter(
                list(changes), pl.Series(list(changes.values()), dtype=current.dtype)
            )
    frame = pl.DataFrame(series)
    if drop:
        frame = frame.with_row_index("_i").filter(~pl.col("_i").is_in(drop)).drop("_i")
    frame = frame.with_columns(
        not_null=pl.col("not_null") | pl.col("is_key"),
        ordinal=pl.int_range(pl.len(), dtype=pl.Int32).over("_asset_row"),
    )
    frame = _with_asset_ids(frame, assets).select(*COLUMN_SCHEMA.columns, "glue_type_hint", "_asset_row")

    relationships: list[tuple[tuple[str, str], tuple[str, str], str, str]] = []
    spaces, names = assets["space"].to_list(), assets["name"].to_list()
    for asset_row, via, target_ref in associations + mixins:
        rel = (
            "text"
            if (asset_row, via) in text_refs
            else ("foreign_key" if (asset_row, via) in fk_refs else "association")
        )
        resolved = owner_doc[asset_row].resolve(target_ref)
        relationships.append(((spaces[asset_row], names[asset_row]), resolved, rel, via))
    events = [
        Event(
            event="type_unresolved",
            severity="warning",
            space=spaces[row],
            name=names[row],
            message=f"{spaces[row]}.{names[row]}: the type of {len(cols)} column(s) is not defined in the source "
            f"({', '.join(cols[:5])}{', ...' if len(cols) > 5 else ''}); mapped to string.",
            details={"columns": cols},
            hint="Export the type definitions together with the entity, or add a `type` rule for them.",
        )
        for row, cols in unresolved.items()
    ]
    return frame, relationships, events


def _collapse_duplicates(
    assets: pl.DataFrame,
    columns: pl.DataFrame,
    canonical_hash: Callable[[int], str],
) -> tuple[pl.DataFrame, pl.DataFrame, list[Event]]:
    """Identical definitions from several files count once; differing ones keep one row and are flagged.

    `columns` carries `_asset_row`, the row of `assets` each column belongs to; only the first copy's columns stay.
    Copies whose hashes differ are hashed again with sorted keys (`canonical_hash(row)`), so key order alone is
    no conflict.
    """
    assets = assets.with_row_index("_asset_row")
    differing = assets.filter(pl.col("content_hash").n_unique().over("space", "name") > 1)["_asset_row"]
    if not differing.is_empty():
        rehashed = pl.Series([canonical_hash(row) for row in differing.to_list()], dtype=pl.Utf8)
        assets = assets.with_columns(assets["content_hash"].scatter(differing, rehashed))
    grouped = assets.group_by("space", "name", maintain_order=True).agg(
        pl.col("_asset_row").first(),
        pl.col("content_hash").n_unique().alias("_variants"),
        pl.col("source_file").alias("_files"),
        pl.col("content_hash").alias("_hashes"),
    )
    no_files = pl.lit([], dtype=pl.List(pl.Utf8))
    kept = assets.join(
        grouped.select("_asset_row", "_variants", "_files", "_hashes"),
        on="_asset_row",
        how="inner",
        maintain_order="left",
    )
    assets = kept.with_columns(
        conflict_files=pl.when(pl.col("_variants") > 1).then(pl.col("_files")).otherwise(no_files)
    )
    conflicting = assets.filter(pl.col("conflict_files").list.len() > 0)
    assets = assets.drop("_variants", "_files", "_hashes")
    columns = columns.join(assets.select("_asset_row"), on="_asset_row", how="semi").drop("_asset_row")
    assets = assets.drop("_asset_row")
    events: list[Event] = []
    for row in conflicting.iter_rows(named=True):  # the few objects defined differently
        variants: dict[str, list[str]] = {}
        for file, digest in zip(row["_files"], row["_hashes"], strict=True):
            variants.setdefault(digest, []).append(file)
        groups = sorted(variants.values(), key=len, reverse=True)
        agreeing = "; ".join(" = ".join(g) for g in groups)
        events.append(
            Event(
                event="duplicate_conflict",
                severity="error",
                space=row["space"],
                name=row["name"],
                action="conflict",
                status="held",
                message=f"{row['space']}.{row['name']} is defined differently in {len(row['_files'])} files, "
                f"in {len(groups)} versions ({agreeing}); it is held and not written.",
                details={"files": row["_files"], "versions": groups},
                hint="Keep one definition of the object (remove or update the stale export), then sync again.",
            )
        )
    return assets, columns, events


def _classify_text_edges(edges: pl.DataFrame, assets: pl.DataFrame) -> pl.DataFrame:
    """An association to a language-dependent text entity is a `text` edge."""
    texts = assets.filter(pl.col("kind") == "text").select(
        pl.col("space").alias("target_space"),
        pl.col("name").alias("target_name"),
        pl.lit(True).alias("_text"),
    )
    return (
        edges.join(texts, on=["target_space", "target_name"], how="left")
        .with_columns(
            kind=pl.when((pl.col("kind") == "association") & pl.col("_text").fill_null(False))
            .then(pl.lit("text"))
            .otherwise(pl.col("kind"))
        )
        .drop("_text")
    )


INFERABLE_TRANSFORMS = ("direct", "renamed", "measure", "attribute")


NUMERIC_TYPES = (
    "cds.Decimal",
    "cds.DecimalFloat",
    "cds.Double",
    "cds.Integer",
    "cds.Integer64",
    "cds.Int16",
    "cds.Int32",
    "cds.Int64",
    "cds.UInt8",
    "cds.hana.SMALLINT",
    "cds.hana.TINYINT",
    "cds.hana.REAL",
    "cds.hana.SMALLDECIMAL",
)


def _calculated_measure_types(
    missing: pl.DataFrame, calculated: pl.DataFrame, known: pl.DataFrame
) -> pl.DataFrame:
    """Types of typeless calculated measures whose operands are all typed and numeric: the operands' type when
    they agree, else `cds.Double`. Calculated columns that are not measures are left alone (a CASE may give text).
    """
    keys = ["space", "name", "column"]
    operands = (
        missing.filter(pl.col("semantic_role") == "measure")
        .select(keys)
        .join(calculated, on=keys, how="inner")
        .join(known, on=["upstream_space", "upstream_name", "upstream_column"], how="left")
    )
    agg = operands.group_by(keys).agg(
        typed=pl.col("source_type").is_not_null().all(),
        numeric=pl.col("source_type").is_in(NUMERIC_TYPES).all(),
        variants=pl.struct("source_type", "precision", "scale").n_unique(),
        source_type=pl.col("source_type").first(),
        precision=pl.col("precision").first(),
        scale=pl.col("scale").first(),
    )
    same = pl.col("variants") == 1
    return agg.filter(pl.col("typed") & pl.col("numeric")).select(
        *keys,
        _source_type=pl.when(same).then(pl.col("source_type")).otherwise(pl.lit("cds.Double")),
        _length=pl.lit(None, dtype=pl.Int64),
        _precision=pl.when(same).then(pl.col("precision")),
        _scale=pl.when(same).then(pl.col("scale")),
        _glue_type_hint=pl.lit(None, dtype=pl.Utf8),
    )


def _inferable_links(lineage: pl.DataFrame) -> pl.DataFrame:
    """The column-lineage rows a column inherits from (not calculated ones), one per column."""
    return lineage.filter(pl.col("transform").is_in(INFERABLE_TRANSFORMS)).unique(
        ["space", "name", "column"], keep="first", maintain_order=True
    )


def infer_types_along_lineage(
    columns: pl.DataFrame, lineage: pl.DataFrame
) -> tuple[pl.DataFrame, list[Event]]:
    """Give typeless columns the type of the column they come from, through any depth; the rest become strings."""
    facet_cols = ["source_type", "length", "precision", "scale", "glue_type_hint"]
    links = _inferable_links(lineage)
    calculated = lineage.filter(pl.col("transform") == "calculated")
    for _ in range(_MAX_TYPE_DEPTH):
        missing = columns.filter(pl.col("source_type").is_null())
        if missing.is_empty():
            break
        known = columns.filter(pl.col("source_type").is_not_null()).select(
            pl.col("space").alias("upstream_space"),
            pl.col("name").alias("upstream_name"),
            pl.col("column").alias("upstream_column"),
            *facet_cols,
        )
        keys = ["space", "name", "column"]
        found = (
            missing.select(keys)
            .join(links, on=keys, how="inner")
            .join(known, on=["upstream_space", "upstream_name", "upstream_column"], how="inner")
            .select(*keys, *[pl.col(c).alias(f"_{c}") for c in facet_cols])
        )
        if found.is_empty():
            found = _calculated_measure_types(missing, calculated, known)
        if found.is_empty():
            break
        columns = (
            columns.join(found, on=["space", "name", "column"], how="left")
            .with_columns(
                *[
                    pl.when(pl.col("_source_type").is_not_null())
                    .then(pl.col(f"_{c}"))
                    .otherwise(pl.col(c))
                    .alias(c)
                    for c in facet_cols
                ],
                type_origin=pl.when(pl.col("_source_type").is_not_null())
                .then(pl.lit("lineage"))
                .otherwise(pl.col("type_origin")),
            )
            .drop([f"_{c}" for c in facet_cols])
        )
    events = []
    still = columns.filter(pl.col("source_type").is_null())
    if not still.is_empty():
        for row in (
            still.group_by("space", "name", maintain_order=True).agg(pl.col("column")).iter_rows(named=True)
        ):
            names = row["column"]
            events.append(
                Event(
                    event="type_fallback",
                    severity="warning",
                    space=row["space"],
                    name=row["name"],
                    message=f"{row['space']}.{row['name']}: {len(names)} column(s) have no type and none could be "
                    f"inferred from their sources ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}); "
                    "mapped to string.",
                    details={"columns": names},
                    hint="Include the source objects of this view or model in the export, or add a `type` rule.",
                )
            )
        columns = columns.with_columns(
            type_origin=pl.when(pl.col("source_type").is_null())
            .then(pl.lit("fallback"))
            .otherwise(pl.col("type_origin")),
            source_type=pl.col("source_type").fill_null("cds.String"),
        )
    return columns, events


def inherit_aggregations_along_lineage(columns: pl.DataFrame, lineage: pl.DataFrame) -> pl.DataFrame:
    """Give measures without an aggregation of their own the one of the column they come from (a model's
    measure over a fact's `@Aggregation.default: SUM` column is summed too), through any depth."""
    keys = ["space", "name", "column"]
    upstream = ["upstream_space", "upstream_name", "upstream_column"]
    links: pl.DataFrame | None = None  # made once a measure lacks an aggregation (most tenants: never)
    for _ in range(_MAX_TYPE_DEPTH):
        missing = columns.filter((pl.col("semantic_role") == "measure") & pl.col("aggregation").is_null())
        if missing.is_empty():
            break
        links = _inferable_links(lineage) if links is None else links
        known = columns.filter(pl.col("aggregation").is_not_null()).select(
            *[pl.col(k).alias(u) for k, u in zip(keys, upstream, strict=True)], _aggregation="aggregation"
        )
        found = (
            missing.select(keys)
            .join(links, on=keys, how="inner")
            .join(known, on=upstream, how="inner")
            .select(*keys, "_aggregation")
            .unique(keys, keep="first", maintain_order=True)
        )
        if found.is_empty():
            break
        columns = (
            columns.join(found, on=keys, how="left", maintain_order="left")
            .with_columns(aggregation=pl.coalesce("aggregation", "_aggregation"))
            .drop("_aggregation")
        )
    return columns


# ------------------------------------------------------------------ files on disk
@dataclass
class CsnFile:
    """A candidate CSN file and the space it belongs to."""

    path: Path
    space: str | None


def _is_i18n_bundle(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and bool(payload)
        and "definitions" not in payload
        and all(isinstance(v, dict) and all(isinstance(t, str) for t in v.values()) for v in payload.values())
        and all(len(k) <= 10 for k in payload)
    )


def _is_space_definition(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and bool(payload)
        and "definitions" not in payload
        and all(isinstance(v, dict) and "spaceDefinition" in v for v in payload.values())
    )


@dataclass
class LoadedFiles:
    """Parsed files: their CSN documents, events about the other files, and whether any was skipped."""

    documents: list[CsnDocument]
    events: list[Event]
    incomplete: bool


def _files_under(root: Path) -> Iterator[Path]:
    """Every file under `root`, hidden folders left out, linked folders followed (a space folder linked into
    the export folder is part of it). Each real folder is read once, and where it also lies under `root`
    itself, there: a link to another space's folder never takes that folder's files into the link's space.
    A link back up (a loop) ends."""
    seen: set[str] = set()
    links: list[Path] = []

    def walk(top: Path, follow: bool) -> Iterator[Path]:
        for folder, subfolders, names in os.walk(top, followlinks=follow):
            real = os.path.realpath(folder)
            if real in seen:
                subfolders.clear()
                continue
            seen.add(real)
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            if not follow:
                links.extend(Path(folder, name) for name in subfolders if os.path.islink(Path(folder, name)))
            for name in names:
                path = Path(folder, name)
                if path.is_file():
                    yield path

    yield from walk(root, follow=False)  # the folders that are really there first
    for link in sorted(links):
        yield from walk(link, follow=True)


def _check_definitions(file: CsnFile, payload: Any) -> None:
    """A document with a `definitions` key that is no object is broken CSN (not some other JSON to ignore)."""
    if (
        isinstance(payload, dict)
        and "definitions" in payload
        and not isinstance(payload["definitions"], dict)
    ):
        found = type(payload["definitions"]).__name__.replace("NoneType", "null").replace("str", "text")
        raise SourceError(
            f"{file.path} is not valid CSN: its 'definitions' is {found}, not an object of definitions.",
            hint=FIX_FILE_HINT,
        )


class CsnSource:
    """CSN exports on disk: a file, or a folder whose immediate subfolders name the spaces."""

    def __init__(self, config: CsnSourceConfig) -> None:
        self.config = config

    def describe(self) -> str:
        return f"CSN files under {self.config.path}"

    def files(self) -> list[CsnFile]:
        """Every CSN candidate file with its space; raises when files directly under `path` have no space."""
        root = self.config.path
        if not root.exists():
            raise SourceError(
                f"source.path {root} does not exist.", hint="Point source.path at a CSN file or folder."
            )
        if root.is_file():
            found = [CsnFile(root, self.config.space)]
        else:
            found = []
            for path in sorted(p for p in _files_under(root) if p.suffix.lower() in CSN_SUFFIXES):
                relative = path.relative_to(root)
                if any(part.startswith(".") for part in relative.parts):
                    continue
                space = relative.parts[0] if len(relative.parts) > 1 else self.config.space
                problem = space_name_problem(relative.parts[0]) if len(relative.parts) > 1 else None
                if problem:
                    raise ConfigError(
                        f"the folder {root / relative.parts[0]} is no space name: it {problem} (ASSET_IDs are "
                        "SPACE.NAME).",
                        hint="Rename the folder to the space's technical name.",
                    )
                found.append(CsnFile(path, space))
        missing = [f.path for f in found if f.space is None]
        if missing:
            raise ConfigError(
                f"source.space is required: {missing[0]} lies directly under source.path and belongs to no space "
                f"folder ({len(missing)} file(s) like it).",
                hint="Set source.space, or move the file into a subfolder named after its space.",
            )
        return found

    def _load(self, file: CsnFile) -> Any:
        try:
            raw = file.path.read_bytes()
        except OSError as exc:
            raise SourceError(f"{file.path} cannot be read: {exc.strerror}.") from exc
        if raw.startswith(UTF8_BOM):  # written by some Windows tools; JSON itself has no byte-order mark
            raw = raw[len(UTF8_BOM) :]
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            hint = FIX_FILE_HINT
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                raise SourceError(
                    f"{file.path} is not UTF-8 text: the byte at offset {bad.start} cannot be decoded.",
                    hint="Export the file as UTF-8, or set source.skip_invalid: true to skip it.",
                ) from exc
            raise SourceError(
                f"{file.path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
                hint=hint,
            ) from exc

    def read(self) -> SourceFrames:
        """All files into frames: in child processes when `read_in_subprocess` asks for it (see
        `metasync.sources.subprocess_read`), else in this process."""
        from metasync.sources.subprocess_read import read_in_subprocess, wants_subprocess

        files = self.files()
        if wants_subprocess(self.config, sum(file.path.stat().st_size for file in files)):
            return read_in_subprocess(self.config, files)
        return finish([self.read_part(files)])

    def read_part(self, files: list[CsnFile]) -> PartFrames:
        """The reader's work on some of the files (all of one space folder belong to one part)."""
        with gc_paused():
            loaded = self.load(files)
            part = self.read_loaded(loaded)
            # Freed while the collector is off: switched back on, it would first scan every parsed object.
            loaded.documents.clear()
        return part

    def read_loaded(self, loaded: LoadedFiles) -> PartFrames:
        """The reader's work on files already parsed by `load`, with the events of both steps."""
        part = read_part(
            loaded.documents, language=self.config.language, skip_invalid=self.config.skip_invalid
        )
        part.file_events = loaded.events + part.file_events
        part.incomplete = loaded.incomplete or part.incomplete
        return part

    def load(self, files: list[CsnFile]) -> LoadedFiles:
        """Parse the files: the CSN documents (with the i18n bundles beside them attached) and the events about
        files that are not CSN or, with `skip_invalid`, could not be read."""
        events: list[Event] = []
        incomplete = False
        documents: list[CsnDocument] = []
        bundles: dict[Path, dict[str, Any]] = {}
        with gc_paused():
            for file in files:
                try:
                    payload = self._load(file)
                    _check_definitions(file, payload)
                except SourceError as exc:
                    if not self.config.skip_invalid:
                        raise
                    incomplete = True
                    events.append(
                        Event(
                            event="file_skipped",
                            severity="error",
                            space=file.space,
                            message=str(exc.message),
                            details={"file": str(file.path)},
                            hint="Fix or re-export the file; the run ends partial while it is skipped.",
                        )
                    )
                    continue
                if isinstance(payload, dict) and (
                    isinstance(payload.get("definitions"), dict) or is_flow_document(payload)
                ):
                    documents.append(CsnDocument(origin=str(file.path), space=file.space, payload=payload))
                elif _is_i18n_bundle(payload):
                    bundles[file.path.parent] = payload
                    events.append(
                        Event(
                            event="i18n_bundle",
                            severity="info",
                            space=file.space,
                            message=f"{file.path} is an i18n bundle; its texts resolve {{i18n>KEY}} labels of the CSN "
                            "files beside it.",
                            details={"file": str(file.path), "languages": sorted(payload)},
                        )
                    )
                elif _is_space_definition(payload):
                    events.append(
                        Event(
                            event="not_csn",
                            severity="info",
                            space=file.space,
                            message=f"{file.path} is a space definition (spaces {', '.join(payload)}), not a CSN "
                            "export; it holds no objects to sync.",
                            details={"file": str(file.path), "kind": "space_definition"},
                        )
                    )
                else:
                    events.append(
                        Event(
                            event="not_csn",
                            severity="warning",
                            space=file.space,
                            message=f"{file.path} is JSON but not a CSN document (no 'definitions'); it was ignored.",
                            details={"file": str(file.path)},
                            hint="Remove the file from source.path or export the objects as CSN.",
                        )
                    )
        for document in documents:
            folder = Path(document.origin).parent
            if folder not in bundles and folder / "_i18n" not in bundles:
                bundles.update(self._bundle_beside(folder))  # a single file read: its bundle is not listed
            document.i18n = bundles.get(folder) or bundles.get(folder / "_i18n")
        return LoadedFiles(documents, events, incomplete)

    def _bundle_beside(self, folder: Path) -> dict[Path, dict[str, Any]]:
        """The i18n bundle next to CSN files in `folder` (`i18n.json` there or in `_i18n/`) when it was not
        among the files read, keyed by its folder; an unreadable or foreign file is no bundle."""
        for candidate in (folder / "i18n.json", folder / "_i18n" / "i18n.json"):
            if candidate.is_file():
                try:
                    payload = orjson.loads(candidate.read_bytes())
                except (OSError, orjson.JSONDecodeError):
                    continue
                if _is_i18n_bundle(payload):
                    return {candidate.parent: payload}
        return {folder: {}}
