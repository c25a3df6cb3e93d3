"""The lineage graph written out: GraphML, node-link JSON, Mermaid, DOT, OpenLineage, and the CLI's text table."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import networkx as nx
import polars as pl

from metasync.errors import ConfigError
from metasync.graph.analysis import neighbourhood
from metasync.graph.lineage import dependency_graph, is_data_flow, require_asset
from metasync.models import RELATIONSHIP_EDGE_KINDS

FORMATS = ("table", "json", "graphml", "mermaid", "dot", "openlineage")
OPENLINEAGE_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent"
COLUMN_LINEAGE_FACET = (
    "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet"
)
PRODUCER = "https://github.com/metasync/metasync"
# OpenLineage transformation (type, subtype) per column transform.
_OL_TRANSFORMS = {
    "direct": ("DIRECT", "IDENTITY"),
    "renamed": ("DIRECT", "IDENTITY"),
    "measure": ("DIRECT", "AGGREGATION"),
    "calculated": ("DIRECT", "TRANSFORMATION"),
}


# Characters XML 1.0 cannot carry at all, escaped or not (DOT fails on NUL too): written as `\xNN` text, so a
# hostile source name still gives a file the readers parse.
_UNWRITABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _writable(text: str) -> str:
    return _UNWRITABLE.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def _flat(value: Any) -> str | int | float | bool:
    """A GraphML-safe attribute value (GraphML has no lists and no nulls)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | set):
        return _writable(",".join(str(item) for item in value))
    if isinstance(value, str):
        return _writable(value)
    return value if isinstance(value, int | float | bool) else _writable(str(value))


def to_graphml(graph: nx.DiGraph) -> str:
    """GraphML text; list attributes (`kinds`) become comma-separated strings, nulls empty strings, and the
    control characters XML cannot hold `\\xNN` text (in names too)."""
    flat: nx.DiGraph = nx.DiGraph()
    flat.add_nodes_from(
        (_writable(str(n)), {k: _flat(v) for k, v in data.items()}) for n, data in graph.nodes(data=True)
    )
    flat.add_edges_from(
        (_writable(str(u)), _writable(str(v)), {k: _flat(x) for k, x in data.items()})
        for u, v, data in graph.edges(data=True)
    )
    return "\n".join(nx.generate_graphml(flat)) + "\n"


def to_node_link(graph: nx.DiGraph) -> dict[str, Any]:
    """The node-link form (`nodes`, `edges`) as a JSON-ready dict."""
    data: dict[str, Any] = nx.node_link_data(graph, edges="edges")
    return data


def to_json(graph: nx.DiGraph) -> str:
    """Node-link JSON text."""
    return json.dumps(to_node_link(graph), ensure_ascii=False, indent=2, default=str) + "\n"


def _mermaid_label(text: str) -> str:
    """Text for a Mermaid label: `#` first (it starts Mermaid's own entity codes), then what HTML would read."""
    return (
        text.replace("#", "#35;")
        .replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
    )


def to_mermaid(graph: nx.DiGraph) -> str:
    """A Mermaid flowchart (left to right); data-flow edges solid, relationship edges dotted."""
    ids = {node: f"n{index}" for index, node in enumerate(sorted(graph.nodes))}
    lines = ["flowchart LR"]
    for node in sorted(graph.nodes):
        kind = graph.nodes[node].get("kind", "")
        lines.append(f'    {ids[node]}["{_mermaid_label(node)}<br/><i>{_mermaid_label(kind)}</i>"]')
    for u, v, kind in sorted(graph.edges(data="kind")):
        arrow = "-->" if is_data_flow(kind) else "-.->"
        lines.append(f"    {ids[u]} {arrow}|{_mermaid_label(kind)}| {ids[v]}")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + _writable(text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")) + '"'


def to_dot(graph: nx.DiGraph) -> str:
    """Graphviz DOT text; relationship edges dashed, external assets grey."""
    lines = ["digraph lineage {", "    rankdir=LR;", "    node [shape=box];"]
    for node in sorted(graph.nodes):
        kind = graph.nodes[node].get("kind", "")
        style = ", style=dashed, color=grey" if kind == "external" else ""
        label = _dot_quote(node + "\n(" + kind + ")")
        lines.append(f"    {_dot_quote(node)} [label={label}{style}];")
    for u, v, kind in sorted(graph.edges(data="kind")):
        style = "" if is_data_flow(kind) else ", style=dashed"
        lines.append(f"    {_dot_quote(u)} -> {_dot_quote(v)} [label={_dot_quote(kind)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_openlineage(
    graph: nx.DiGraph,
    column_lineage: pl.DataFrame | None = None,
    *,
    namespace: str = "datasphere",
    event_time: datetime | None = None,
) -> list[dict[str, Any]]:
    """OpenLineage JobEvents (static lineage), one per asset with data-flow upstreams: the asset's definition is
    the job, its upstreams the inputs, the asset the output. Datasets are named by ASSET_ID in `namespace`; with
    `column_lineage` (COLUMN_LINEAGE_SCHEMA) outputs carry the `columnLineage` facet."""
    when = (event_time or datetime.now(UTC)).isoformat()
    fields_by_asset: dict[str, dict[str, list[dict[str, Any]]]] = {}
    if column_lineage is not None:
        for space, name, column, up_space, up_name, up_column, transform in column_lineage.select(
            "space", "name", "column", "upstream_space", "upstream_name", "upstream_column", "transform"
        ).iter_rows():
            kind, subtype = _OL_TRANSFORMS.get(transform, ("INDIRECT", "TRANSFORMATION"))
            fields_by_asset.setdefault(f"{space}.{name}", {}).setdefault(column, []).append(
                {
                    "namespace": namespace,
                    "name": f"{up_space}.{up_name}",
                    "field": up_column,
                    "transformations": [{"type": kind, "subtype": subtype}],
                }
            )
    deps = dependency_graph(graph)
    events = []
    for node in sorted(deps):
        inputs = sorted(deps.predecessors(node))
        if not inputs:
            continue
        output: dict[str, Any] = {"namespace": namespace, "name": node}
        if node in fields_by_asset:
            output["facets"] = {
                "columnLineage": {
                    "_producer": PRODUCER,
                    "_schemaURL": COLUMN_LINEAGE_FACET,
                    "fields": {col: {"inputFields": f} for col, f in fields_by_asset[node].items()},
                }
            }
        events.append(
            {
                "eventTime": when,
                "producer": PRODUCER,
                "schemaURL": OPENLINEAGE_SCHEMA,
                "job": {"namespace": namespace, "name": node},
                "inputs": [{"namespace": namespace, "name": up} for up in inputs],
                "outputs": [output],
            }
        )
    return events


def to_table(graph: nx.DiGraph) -> str:
    """Plain text, one line per edge of the graph: upstream, kind, downstream (relationship edges read from
    the association's target to the asset holding it). Isolated assets get a line of their own."""
    rows = sorted(
        (str(v), str(kind), str(u)) if kind in RELATIONSHIP_EDGE_KINDS else (str(u), str(kind), str(v))
        for u, v, kind in graph.edges(data="kind")
    )
    rows += sorted((node, "-", "") for node in graph if graph.degree(node) == 0)
    if not rows:
        return ""
    width_up = max(len(r[0]) for r in rows)
    width_kind = max(len(r[1]) for r in rows)
    return "\n".join(f"{u:<{width_up}}  {k:<{width_kind}}  {v}".rstrip() for u, k, v in rows) + "\n"


def render(
    graph: nx.DiGraph,
    fmt: str,
    asset: str | None = None,
    direction: str = "both",
    depth: int | None = None,
) -> str:
    """The lineage as text in `fmt` (one of FORMATS), limited to `asset`'s neighbourhood when given.

    Raises ConfigError for an unknown format, direction or asset (naming it and suggesting close matches).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown lineage format {fmt!r}.", hint=f"Use one of: {', '.join(FORMATS)}.")
    if depth is not None and depth < 0:
        raise ConfigError(f"--depth must be 0 or more, not {depth}.")
    selected = (
        neighbourhood(graph, require_asset(graph, asset), direction=direction, depth=depth)
        if asset is not None
        else graph
    )
    if fmt == "table":
        return to_table(selected)
    if fmt == "json":
        return to_json(selected)
    if fmt == "graphml":
        return to_graphml(selected)
    if fmt == "mermaid":
        return to_mermaid(selected)
    if fmt == "dot":
        return to_dot(selected)
    return json.dumps(to_openlineage(selected), ensure_ascii=False, indent=2) + "\n"
