"""Small hand-built asset and edge frames for the graph tests."""

from __future__ import annotations

import polars as pl

EDGE_COLUMNS = ("source_space", "source_name", "target_space", "target_name", "kind", "via")


def asset_frame(kinds: dict[str, str]) -> pl.DataFrame:
    """Assets from {"SPACE.NAME": kind}."""
    ids = list(kinds)
    return pl.DataFrame(
        {
            "space": [i.partition(".")[0] for i in ids],
            "name": [i.partition(".")[2] for i in ids],
            "kind": [kinds[i] for i in ids],
        },
        schema={"space": pl.Utf8, "name": pl.Utf8, "kind": pl.Utf8},
    )


def edge_frame(edges: list[tuple[str, str, str]]) -> pl.DataFrame:
    """Edges from [("S.UP", "S.DOWN", kind)] (relationship edges: asset, target, kind)."""
    rows = [
        (u.partition(".")[0], u.partition(".")[2], v.partition(".")[0], v.partition(".")[2], kind, None)
        for u, v, kind in edges
    ]
    return pl.DataFrame(rows, schema={c: pl.Utf8 for c in EDGE_COLUMNS}, orient="row")
