"""Time the lineage graph and the batch planner on a synthetic tenant's frames.

Builds assets and edges frames shaped like the CSN reader's (tables, remote tables, dimensions with text
associations, views over tables and views with joins, facts, analytic models with fact and dimension sources),
then times `build_lineage_graph`, `plan_batches` and a few analysis calls. Deterministic for a given seed.

    python benchmarks/bench_lineage.py --assets 100000
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

import polars as pl

import metasync.graph as mg
from metasync.config import SyncOptions

# Share of each kind among the assets, in the order they are created (upstream kinds first).
MIX = (
    ("text", 0.05),
    ("table", 0.30),
    ("remote_table", 0.05),
    ("dimension", 0.10),
    ("view", 0.40),
    ("fact", 0.08),
    ("analytic_model", 0.02),
)


def synthetic_frames(n_assets: int, n_spaces: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Assets and edges of a layered tenant: every data-flow edge runs from an earlier-created asset."""
    rng = random.Random(seed)
    assets: list[tuple[str, str, str]] = []
    by_kind: dict[str, list[int]] = {}
    for kind, share in MIX:
        for _ in range(int(n_assets * share)):
            index = len(assets)
            assets.append((f"SPACE_{rng.randrange(n_spaces):03d}", f"{kind.upper()}_{index:07d}", kind))
            by_kind.setdefault(kind, []).append(index)
    edges: list[tuple[int, int, str]] = []
    sources = by_kind["table"] + by_kind["remote_table"]
    for dim in by_kind["dimension"]:
        edges.append((rng.choice(sources), dim, "from"))
        edges.append((dim, rng.choice(by_kind["text"]), "text"))
        edges.append((dim, rng.choice(by_kind["dimension"]), "association"))
    views: list[int] = []
    for view in by_kind["view"]:
        pool = sources + views[-5000:] if views else sources
        edges.append((rng.choice(pool), view, "from"))
        if rng.random() < 0.8:
            edges.append((rng.choice(pool), view, "join"))
        edges.append((view, rng.choice(by_kind["dimension"]), "association"))
        views.append(view)
    for fact in by_kind["fact"]:
        edges.append((rng.choice(views), fact, "from"))
        if rng.random() < 0.5:
            edges.append((rng.choice(views), fact, "join"))
        edges.extend((fact, rng.choice(by_kind["dimension"]), "foreign_key") for _ in range(3))
    for model in by_kind["analytic_model"]:
        edges.append((rng.choice(by_kind["fact"]), model, "fact_source"))
        edges.extend((rng.choice(by_kind["dimension"]), model, "dimension_source") for _ in range(3))
    asset_frame = pl.DataFrame(assets, schema=["space", "name", "kind"], orient="row")
    edge_frame = pl.DataFrame(
        [(*assets[u][:2], *assets[v][:2], kind, None) for u, v, kind in edges],
        schema={
            "source_space": pl.Utf8,
            "source_name": pl.Utf8,
            "target_space": pl.Utf8,
            "target_name": pl.Utf8,
            "kind": pl.Utf8,
            "via": pl.Utf8,
        },
        orient="row",
    )
    return asset_frame, edge_frame


def timed(label: str, results: dict[str, float], call: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    value = call()
    results[label] = time.perf_counter() - start
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--spaces", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    assets, edges = synthetic_frames(args.assets, args.spaces, args.seed)
    results: dict[str, float] = {}
    graph = timed("build_lineage_graph", results, lambda: mg.build_lineage_graph(assets, edges))
    plan = timed(
        "plan_batches",
        results,
        lambda: mg.plan_batches(assets, edges, priority=SyncOptions().priority),
    )
    model = assets.filter(pl.col("kind") == "analytic_model").row(0)
    table = assets.filter(pl.col("kind") == "table").row(0)
    timed("upstream(analytic model)", results, lambda: mg.upstream(graph, f"{model[0]}.{model[1]}"))
    timed("impact(table)", results, lambda: mg.impact(graph, f"{table[0]}.{table[1]}"))
    print(
        f"{assets.height:,} assets, {edges.height:,} edges, {graph.number_of_nodes():,} nodes, "
        f"{graph.number_of_edges():,} graph edges, {plan['batch'].max() + 1} batches"
    )
    for label, seconds in results.items():
        print(f"{label:<28} {seconds:8.2f} s")


if __name__ == "__main__":
    main()
