"""Lineage edges from Datasphere flow definitions (data, replication and transformation flows).

A flow is not an asset (it is no CSN entity); it links the objects it reads to the objects it writes. Each
source → target pair becomes one edge of kind `flow`, running downstream, with `via` holding the flow's
technical name. Design-time flow documents keep their flows under a top-level section per type:

* `dataflows`: `{NAME: {"kind": "sap.dis.dataflow", "contents": {"processes": {...}}, "sources": {...},
  "targets": {...}}}`. Sources are the keys of `sources` and the `dwcEntity` of every table consumer
  process; targets the keys of `targets` and the `dwcEntity` of every table producer process.
* `transformationflows`: `{NAME: {"kind": "sap.dis.transformationflow", "contents": {"processes": {...}}}}`.
  Sources are the objects the `from` clauses of a view-transform process read (`config.definition.query`,
  a CSN query), targets the `config.name` of every `com.sap.dwc.target` process; `sources` / `targets` maps
  count too when present.
* `replicationflows`: `{NAME: {"kind": "sap.dis.replicationflow", "contents": {"sourceSystem": [...],
  "targetSystem": [...], "replicationTasks": [{"sourceObject": {"name"}, "targetObject": {"name"}}]}}}`;
  each task is one edge from its source object to its target object.

An object held in the tenant (connection `$DWC`, or a process without connection) is named by its technical
name in the flow's space. An object outside the tenant is named `CONNECTION/OBJECT` in the flow's space, so it
appears in the lineage as an `external` node.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl

FLOW_SECTIONS = ("dataflows", "replicationflows", "transformationflows")
TENANT_CONNECTION = "$DWC"
EDGE_COLUMNS = ("source_space", "source_name", "target_space", "target_name", "kind", "via")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _process_entities(flow: dict[str, Any], role: str) -> Iterator[str]:
    """Entities read (`consumer`) or written (`producer`) by a data flow's table processes."""
    for process in _dict(_dict(flow.get("contents")).get("processes")).values():
        process = _dict(process)
        component = process.get("component")
        if not isinstance(component, str) or not component.endswith("." + role):
            continue
        config = _dict(_dict(process.get("metadata")).get("config"))
        connection = _dict(config.get("hanaConnection")).get("connectionID") or config.get("connectionID")
        entity = config.get("dwcEntity") or config.get("qualifiedName")
        if not isinstance(entity, str) or not entity:
            continue
        if connection in (None, "", TENANT_CONNECTION):
            yield entity
        else:
            yield f"{connection}/{entity}"


def _from_refs(node: Any) -> Iterator[str]:
    """Names a CSN `from` clause reads: plain and parameterised refs, joins, sub-selects."""
    node = _dict(node)
    ref = node.get("ref")
    if isinstance(ref, list) and ref:
        head = ref[0]
        name = head if isinstance(head, str) else _dict(head).get("id")
        if isinstance(name, str) and name:
            yield name
    for arg in node.get("args") or []:
        yield from _from_refs(arg)
    yield from _query_refs(node.get("SELECT") or node.get("SET"))


def _query_refs(query: Any) -> Iterator[str]:
    """Names every `from` clause of a CSN query reads, unions and sub-selects included."""
    if isinstance(query, list):
        for item in query:
            yield from _query_refs(item)
    elif isinstance(query, dict):
        for key, value in query.items():
            if key == "from":
                yield from _from_refs(value)
            elif isinstance(value, (dict, list)):
                yield from _query_refs(value)


def _transform_endpoints(flow: dict[str, Any], role: str) -> Iterator[str]:
    """Objects a transformation flow reads (`consumer`) through its view transforms, or writes (`producer`)."""
    for process in _dict(_dict(flow.get("contents")).get("processes")).values():
        process = _dict(process)
        config = _dict(_dict(process.get("metadata")).get("config"))
        if role == "consumer":
            yield from _query_refs(_dict(config.get("definition")).get("query"))
        elif process.get("component") == "com.sap.dwc.target" and isinstance(config.get("name"), str):
            yield config["name"]


def _mapped_endpoints(flow: dict[str, Any], section: str, kind: str, role: str) -> list[str]:
    names = [name for name in _dict(flow.get(section)) if isinstance(name, str) and name]
    names.extend(_process_entities(flow, role) if kind == "dataflows" else _transform_endpoints(flow, role))
    return list(dict.fromkeys(names))


def _system_connection(contents: dict[str, Any], key: str) -> str | None:
    systems = contents.get(key)
    first = systems[0] if isinstance(systems, list) and systems else systems
    connection = _dict(first).get("connectionId")
    return connection if isinstance(connection, str) and connection else None


def _endpoint(name: str, connection: str | None) -> str:
    return name if connection in (None, TENANT_CONNECTION) else f"{connection}/{name}"


def _flow_pairs(section: str, flow: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if section == "replicationflows":
        contents = _dict(flow.get("contents"))
        source_connection = _system_connection(contents, "sourceSystem")
        target_connection = _system_connection(contents, "targetSystem")
        for task in contents.get("replicationTasks") or []:
            source = _dict(_dict(task).get("sourceObject")).get("name")
            target = _dict(_dict(task).get("targetObject")).get("name")
            if isinstance(source, str) and source and isinstance(target, str) and target:
                yield _endpoint(source, source_connection), _endpoint(target, target_connection)
        return
    sources = _mapped_endpoints(flow, "sources", section, "consumer")
    targets = _mapped_endpoints(flow, "targets", section, "producer")
    for target in targets:
        for source in sources:
            if source != target:
                yield source, target


def flow_edges(documents: Iterable[tuple[str, dict[str, Any]]]) -> pl.DataFrame:
    """One `flow` edge per source → target pair of every flow in `(space, payload)` documents."""
    rows: dict[str, list[str]] = {column: [] for column in EDGE_COLUMNS}
    for space, payload in documents:
        for section in FLOW_SECTIONS:
            for flow_name, flow in _dict(payload.get(section)).items():
                for source, target in _flow_pairs(section, _dict(flow)):
                    for column, value in zip(
                        EDGE_COLUMNS, (space, source, space, target, "flow", flow_name), strict=True
                    ):
                        rows[column].append(value)
    return pl.DataFrame(rows, schema={column: pl.Utf8 for column in EDGE_COLUMNS}).unique(maintain_order=True)


def is_flow_document(payload: dict[str, Any]) -> bool:
    """Whether a design-time document holds flows."""
    return any(isinstance(payload.get(section), dict) for section in FLOW_SECTIONS)
