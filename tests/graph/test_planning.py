"""plan_batches: dependency order, priority tiers, cycles and blocked assets held, on hand-built and random graphs."""

from __future__ import annotations

import re

import networkx as nx
import polars as pl
from graph_frames import asset_frame, edge_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from metasync.graph import plan_batches
from metasync.models import DATA_FLOW_EDGE_KINDS, RELATIONSHIP_EDGE_KINDS

PRIORITY = ["analytic_model", "table", "view"]


def _by_id(plan: pl.DataFrame) -> dict[str, dict]:
    return {f"{row['space']}.{row['name']}": row for row in plan.iter_rows(named=True)}


def test_diamond() -> None:
    assets = asset_frame({"S.T": "table", "S.L": "view", "S.R": "view", "S.AM": "analytic_model"})
    edges = edge_frame(
        [
            ("S.T", "S.L", "from"),
            ("S.T", "S.R", "from"),
            ("S.L", "S.AM", "fact_source"),
            ("S.R", "S.AM", "dimension_source"),
        ]
    )
    plan = _by_id(plan_batches(assets, edges, priority=PRIORITY))
    assert plan["S.T"]["batch"] == 0
    assert plan["S.L"]["batch"] == plan["S.R"]["batch"] == 1
    assert plan["S.AM"]["batch"] == 2
    assert plan["S.AM"]["upstreams"] == ["S.L", "S.R"]
    assert plan["S.AM"]["priority"] == 0 and plan["S.T"]["priority"] == 1 and plan["S.L"]["priority"] == 2
    assert all(row["held_reason"] is None for row in plan.values())


def test_deep_chain_gets_one_batch_per_level() -> None:
    names = [f"S.V{i:03d}" for i in range(200)]
    assets = asset_frame(dict.fromkeys(names, "view"))
    edges = edge_frame([(names[i], names[i + 1], "from") for i in range(len(names) - 1)])
    plan = plan_batches(assets, edges, priority=PRIORITY)
    batches = dict(zip(plan["name"], plan["batch"], strict=True))
    assert [batches[n.partition(".")[2]] for n in names] == list(range(200))


def test_disconnected_parts_and_schema() -> None:
    assets = asset_frame({"S.A": "table", "S.B": "view", "X.C": "table", "X.D": "remote_table"})
    edges = edge_frame([("S.A", "S.B", "from")])
    plan = plan_batches(assets, edges, priority=PRIORITY)
    assert plan.height == 4
    assert plan.schema["batch"] == pl.Int32 and plan.schema["priority"] == pl.Int32
    assert plan.schema["upstreams"] == pl.List(pl.Utf8) and plan.schema["held_reason"] == pl.Utf8
    rows = _by_id(plan)
    assert rows["X.D"]["priority"] == len(PRIORITY)  # unlisted kinds come last
    assert rows["X.C"]["batch"] == 0 and rows["S.A"]["batch"] == 0 and rows["S.B"]["batch"] == 1


def test_relationships_and_externals_do_not_order_batches() -> None:
    assets = asset_frame({"S.A": "table", "S.B": "table"})
    edges = edge_frame(
        [
            ("S.A", "S.B", "association"),
            ("S.B", "S.A", "foreign_key"),
            ("S.A", "S.A", "association"),
            ("EXT.Z", "S.A", "from"),
        ]
    )
    plan = _by_id(plan_batches(assets, edges, priority=PRIORITY))
    assert plan["S.A"]["batch"] == plan["S.B"]["batch"] == 0
    assert plan["S.A"]["held_reason"] is None and plan["S.A"]["upstreams"] == []


def test_cycle_holds_members_and_dependents_and_the_rest_proceeds() -> None:
    assets = asset_frame(
        {"S.A": "view", "S.B": "view", "S.C": "view", "S.DEP": "view", "S.T": "table", "S.OK": "view"}
    )
    edges = edge_frame(
        [
            ("S.A", "S.B", "from"),
            ("S.B", "S.C", "join"),
            ("S.C", "S.A", "from"),
            ("S.C", "S.DEP", "from"),
            ("S.T", "S.OK", "from"),
            ("S.T", "S.A", "join"),
        ]
    )
    plan = _by_id(plan_batches(assets, edges, priority=PRIORITY))
    for member in ("S.A", "S.B", "S.C"):
        reason = plan[member]["held_reason"]
        assert reason.startswith("dependency cycle: ")
        assert {"S.A", "S.B", "S.C"} <= set(re.findall(r"S\.\w+", reason))
    assert plan["S.A"]["held_reason"] == "dependency cycle: S.A -> S.B -> S.C -> S.A"
    assert plan["S.DEP"]["held_reason"].startswith("upstream S.A is held: dependency cycle: ")
    assert plan["S.T"]["held_reason"] is None and plan["S.OK"]["held_reason"] is None
    assert plan["S.OK"]["batch"] > plan["S.T"]["batch"]


def test_cycle_reason_names_every_member_of_a_larger_component() -> None:
    assets = asset_frame({"S.A": "view", "S.B": "view", "S.C": "view"})
    edges = edge_frame(
        [("S.A", "S.B", "from"), ("S.B", "S.A", "from"), ("S.B", "S.C", "from"), ("S.C", "S.B", "from")]
    )
    plan = plan_batches(assets, edges, priority=PRIORITY)
    for reason in plan["held_reason"]:
        assert {"S.A", "S.B", "S.C"} == set(re.findall(r"S\.\w", reason))


def test_data_flow_self_reference_is_a_cycle_of_one() -> None:
    assets = asset_frame({"S.A": "view", "S.B": "view"})
    plan = _by_id(
        plan_batches(assets, edge_frame([("S.A", "S.A", "from"), ("S.A", "S.B", "from")]), priority=PRIORITY)
    )
    assert plan["S.A"]["held_reason"] == "dependency cycle: S.A -> S.A"
    assert plan["S.B"]["held_reason"] == "upstream S.A is held: dependency cycle: S.A -> S.A"
    assert plan["S.A"]["upstreams"] == []


def test_blocked_assets_hold_their_dependents() -> None:
    assets = asset_frame({"S.T": "table", "S.V": "view", "S.W": "view", "S.X": "view"})
    edges = edge_frame([("S.T", "S.V", "from"), ("S.V", "S.W", "from")])
    blocked = pl.DataFrame({"space": ["S"], "name": ["T"], "reason": ["quarantined: column name too long"]})
    plan = _by_id(plan_batches(assets, edges, priority=PRIORITY, blocked=blocked))
    assert plan["S.T"]["held_reason"] == "quarantined: column name too long"
    assert plan["S.V"]["held_reason"] == "upstream S.T is held: quarantined: column name too long"
    assert plan["S.W"]["held_reason"] == "upstream S.T is held: quarantined: column name too long"
    assert plan["S.X"]["held_reason"] is None


def test_high_priority_closure_comes_before_unrelated_lower_priority_work() -> None:
    # A long chain of views nobody important needs, and an analytic model over one table.
    chain = {f"S.V{i}": "view" for i in range(5)}
    assets = asset_frame({**chain, "S.T": "table", "S.AM": "analytic_model"})
    edges = edge_frame(
        [(f"S.V{i}", f"S.V{i + 1}", "from") for i in range(4)] + [("S.T", "S.AM", "fact_source")]
    )
    plan = _by_id(plan_batches(assets, edges, priority=PRIORITY))
    assert plan["S.T"]["batch"] == 0 and plan["S.AM"]["batch"] == 1
    assert min(plan[v]["batch"] for v in chain) > plan["S.AM"]["batch"]


def test_empty_input() -> None:
    plan = plan_batches(asset_frame({}), edge_frame([]), priority=PRIORITY)
    assert plan.height == 0 and list(plan.columns)[:3] == ["space", "name", "kind"]


# ----------------------------------------------------------------------------- properties
KINDS = ["analytic_model", "table", "view", "fact", "dimension"]


@st.composite
def random_graphs(draw: st.DrawFn, acyclic: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = draw(st.integers(min_value=1, max_value=30))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=n, max_size=n))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    edge_kinds = draw(
        st.lists(
            st.sampled_from(DATA_FLOW_EDGE_KINDS + RELATIONSHIP_EDGE_KINDS),
            min_size=len(pairs),
            max_size=len(pairs),
        )
    )
    edges = []
    for (i, j), kind in zip(pairs, edge_kinds, strict=True):
        if acyclic and kind in DATA_FLOW_EDGE_KINDS and i >= j:
            i, j = sorted((i, j))
            if i == j:
                continue
        edges.append((f"S.N{i}", f"S.N{j}", kind))
    return asset_frame({f"S.N{i}": kinds[i] for i in range(n)}), edge_frame(edges)


def _flow_graph(assets: pl.DataFrame, edges: pl.DataFrame) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(f"{s}.{n}" for s, n in assets.select("space", "name").iter_rows())
    graph.add_edges_from(
        (f"{a}.{b}", f"{c}.{d}") for a, b, c, d, kind, _ in edges.iter_rows() if kind in DATA_FLOW_EDGE_KINDS
    )
    return graph


@settings(max_examples=150, deadline=None)
@given(random_graphs())
def test_every_data_flow_edge_goes_from_an_earlier_to_a_later_batch(frames) -> None:
    assets, edges = frames
    plan = _by_id(plan_batches(assets, edges, priority=PRIORITY))
    assert len(plan) == assets.height
    graph = _flow_graph(assets, edges)
    for u, v in graph.edges:
        assert plan[u]["batch"] < plan[v]["batch"]
    assert all(row["held_reason"] is None for row in plan.values())
    batches = sorted({row["batch"] for row in plan.values()})
    assert batches == list(range(len(batches)))  # no empty batch


@settings(max_examples=150, deadline=None)
@given(random_graphs())
def test_priority_order_holds_within_dependency_constraints(frames) -> None:
    assets, edges = frames
    plan = _by_id(plan_batches(assets, edges, priority=PRIORITY))
    graph = _flow_graph(assets, edges)
    tier = {node: row["priority"] for node, row in plan.items()}
    # The priority an asset serves: its own, or that of anything downstream that needs it.
    serves = {node: min([tier[node], *(tier[d] for d in nx.descendants(graph, node))]) for node in graph}
    for high in graph:
        for other in graph:
            if plan[other]["batch"] < plan[high]["batch"]:
                assert serves[other] <= tier[high], (other, high)
    top = min(tier.values())
    for node in graph:
        if tier[node] == top:  # the highest-priority assets run as early as their dependencies allow
            longest = nx.dag_longest_path_length(graph.subgraph(nx.ancestors(graph, node) | {node}))
            assert plan[node]["batch"] == longest


@settings(max_examples=100, deadline=None)
@given(random_graphs(acyclic=False))
def test_cycles_hold_exactly_their_members_and_dependents(frames) -> None:
    assets, edges = frames
    plan = _by_id(plan_batches(assets, edges, priority=PRIORITY))
    graph = _flow_graph(assets, edges)
    cyclic = {n for c in nx.strongly_connected_components(graph) if len(c) > 1 for n in c}
    cyclic |= {n for n in graph if graph.has_edge(n, n)}
    expected = cyclic | {d for n in cyclic for d in nx.descendants(graph, n)}
    assert {n for n, row in plan.items() if row["held_reason"] is not None} == expected
    acyclic_part = graph.subgraph(set(graph) - expected)
    for u, v in acyclic_part.edges:
        assert plan[u]["batch"] < plan[v]["batch"]


@settings(max_examples=100, deadline=None)
@given(random_graphs(), st.data())
def test_blocked_assets_hold_exactly_their_dependents(frames, data) -> None:
    assets, edges = frames
    blocked = assets.filter(
        pl.Series(data.draw(st.lists(st.booleans(), min_size=assets.height, max_size=assets.height)))
    )
    blocked = blocked.select("space", "name", reason=pl.lit("quarantined"))
    plan = _by_id(plan_batches(assets, edges, priority=PRIORITY, blocked=blocked))
    graph = _flow_graph(assets, edges)
    roots = {f"{s}.{n}" for s, n in blocked.select("space", "name").iter_rows()}
    expected = roots | {d for r in roots for d in nx.descendants(graph, r)}
    assert {n for n, row in plan.items() if row["held_reason"] is not None} == expected
    for node in expected - roots:
        upstream = plan[node]["held_reason"].removeprefix("upstream ").split(" is held: ")[0]
        assert upstream in roots and node in nx.descendants(graph, upstream)
