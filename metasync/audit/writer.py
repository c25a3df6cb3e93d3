"""The audit trail of a run: events in Parquet, CSV and JSON (same rows), the plan, and summary.json."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from metasync.errors import ConfigError
from metasync.models import EVENT_COLUMNS, Event


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC time to the second plus 6 random hex digits."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class AuditLog:
    """Collects the events of one run and writes the audit folder."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._rows: list[dict[str, Any]] = []
        self._frames: list[pl.DataFrame] = []

    def add(self, event: Event) -> None:
        self._rows.append(self._row(event))

    def extend(self, events: list[Event]) -> None:
        self._rows.extend(self._row(e) for e in events)

    def add_frame(self, frame: pl.DataFrame) -> None:
        """Add many events at once: a frame with some of the event columns (others are filled)."""
        if frame.is_empty():
            return
        self._flush_rows()
        now = datetime.now(UTC)
        filled = frame.with_columns(
            *[
                pl.lit(None, dtype=dtype).alias(name)
                for name, dtype in EVENT_COLUMNS.items()
                if name not in frame.columns
            ]
        ).with_columns(run_id=pl.lit(self.run_id), ts=pl.lit(now, dtype=pl.Datetime("us", "UTC")))
        self._frames.append(filled.select([pl.col(n).cast(t) for n, t in EVENT_COLUMNS.items()]))

    def _row(self, event: Event) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ts": datetime.now(UTC),
            "event": event.event,
            "severity": event.severity,
            "space": event.space,
            "name": event.name,
            "action": event.action,
            "status": event.status,
            "message": event.message,
            "details": orjson.dumps(event.details, default=str).decode(),
            "hint": event.hint,
        }

    def _flush_rows(self) -> None:
        if self._rows:
            self._frames.append(pl.DataFrame(self._rows, schema=EVENT_COLUMNS))
            self._rows = []

    def frame(self) -> pl.DataFrame:
        self._flush_rows()
        if not self._frames:
            return pl.DataFrame(schema=EVENT_COLUMNS)
        return pl.concat(self._frames, how="vertical")

    def prepare(self, folder: Path) -> Path:
        """Create `<folder>/<run_id>/` and check that files can be written there, before the run touches the
        target: a run whose audit cannot be written must not write the catalog either."""
        out = folder / self.run_id
        probe = out / ".writable"
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"audit.dir {folder} cannot hold the run's audit folder: {exc.strerror or exc} ({exc.filename}).",
                hint="Point audit.dir at a folder this user can create and write; nothing was read or written.",
            ) from exc
        return out

    def write(self, folder: Path, summary: dict[str, Any], plan: pl.DataFrame | None) -> Path:
        """Write `<folder>/<run_id>/` and return it."""
        out = folder / self.run_id
        out.mkdir(parents=True, exist_ok=True)
        events = self.frame()
        events.write_parquet(out / "events.parquet")
        events.write_csv(out / "events.csv", datetime_format="%Y-%m-%dT%H:%M:%S%.6fZ")
        (out / "events.json").write_text(_json_array(events), encoding="utf-8")
        if plan is not None:
            flat = plan.select([c for c, t in plan.schema.items() if not isinstance(t, (pl.List, pl.Struct))])
            flat.write_parquet(out / "plan.parquet")
            flat.write_csv(out / "plan.csv")
        (out / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        return out


def _json_array(events: pl.DataFrame) -> str:
    """The events as one JSON array, an object a line: encoded by Polars (a Python dict per event and an indented
    dump took 0.4 s at 100,000 events, this 0.15 s), still readable and easy to diff."""
    if events.is_empty():
        return "[]\n"
    lines = events.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).select(
        pl.struct(pl.all()).struct.json_encode().str.join(",\n  ")
    )
    return "[\n  " + lines.item() + "\n]\n"
