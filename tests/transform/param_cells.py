"""Parameters cells for hand-built frames, in the shape the mapping gives them."""

from __future__ import annotations

import polars as pl


def parameters_series(cells: list[dict[str, str] | None]) -> pl.Series:
    """Parameters cells (key -> value) as the struct column the mapping builds: one text field per key."""
    keys = list(dict.fromkeys(k for cell in cells for k in cell or {})) or ["metasync:managed"]
    dtype = pl.Struct(dict.fromkeys(keys, pl.Utf8))
    return pl.Series("parameters", [dict.fromkeys(keys) | (cell or {}) for cell in cells], dtype=dtype)


def set_parameters(cell: dict[str, str | None] | None) -> dict[str, str]:
    """The Parameters that are set in one struct cell (null fields are keys not set)."""
    return {k: v for k, v in (cell or {}).items() if v is not None}
