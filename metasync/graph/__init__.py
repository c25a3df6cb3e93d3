"""Lineage and planning: the asset graph, column lineage, priority batches, analysis and exports.

The only part of metasync that imports networkx. Typical use in a notebook::

    import metasync
    from metasync import graph as mg

    g = metasync.lineage("metasync.yaml")
    mg.upstream(g, "SALES.SALES_ANALYSIS_AM")   # what feeds the model (frame with distances)
    mg.impact(g, "SALES.SALES_ORDERS")          # what may break if SALES_ORDERS changes
    print(mg.to_mermaid(mg.neighbourhood(g, "SALES.SALES_ANALYSIS_AM", direction="upstream")))
"""

from metasync.graph.analysis import (
    downstream,
    impact,
    leaves,
    most_depended_on,
    neighbourhood,
    orphans,
    paths,
    roots,
    subgraph_by_space,
    upstream,
)
from metasync.graph.columns import (
    column_impact,
    column_lineage_graph,
    column_upstream,
)
from metasync.graph.export import (
    render,
    to_dot,
    to_graphml,
    to_json,
    to_mermaid,
    to_node_link,
    to_openlineage,
    to_table,
)
from metasync.graph.lineage import (
    asset_id,
    build_lineage_graph,
    data_flow_view,
    dependency_graph,
    split_asset_id,
)
from metasync.graph.planning import cycle_events, plan_batches

__all__ = [
    "asset_id",
    "build_lineage_graph",
    "column_impact",
    "column_lineage_graph",
    "column_upstream",
    "cycle_events",
    "data_flow_view",
    "dependency_graph",
    "downstream",
    "impact",
    "leaves",
    "most_depended_on",
    "neighbourhood",
    "orphans",
    "paths",
    "plan_batches",
    "render",
    "roots",
    "split_asset_id",
    "subgraph_by_space",
    "to_dot",
    "to_graphml",
    "to_json",
    "to_mermaid",
    "to_node_link",
    "to_openlineage",
    "to_table",
    "upstream",
]
