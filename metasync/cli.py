"""The `metasync` command line: sync, plan, lineage, export, watch."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from metasync.errors import ConfigError, ExitCode, MetasyncError, Terminated
from metasync.targets.base import ProgressCallback

if TYPE_CHECKING:
    from metasync.models import Event

app = typer.Typer(
    name="metasync",
    help="Synchronise SAP Datasphere catalog metadata into the AWS Glue Data Catalog.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            sys.stdout.write(f"metasync {version('metasync')}\n")
        except PackageNotFoundError:  # run from a source tree that was never installed
            sys.stdout.write("metasync (not installed)\n")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Synchronise SAP Datasphere catalog metadata into the AWS Glue Data Catalog."""


# Piped output (a scheduler's log, grep) keeps long lines and the plan table's asset names whole: without a
# terminal, Rich would lay tables out 80 characters wide and cut the names. COLUMNS, when set, still rules.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 1000
out = Console(soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, soft_wrap=True, width=_WIDTH)

T = TypeVar("T")

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Configuration file (YAML).", show_default=False)
]
EnvOption = Annotated[str | None, typer.Option("--env", help="Environment from the config's `environments`.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")]


class Direction(StrEnum):
    upstream = "upstream"
    downstream = "downstream"
    both = "both"


class Format(StrEnum):
    table = "table"
    json = "json"
    graphml = "graphml"
    mermaid = "mermaid"


def _guard(debug: bool, action: Callable[[], T]) -> T:
    """Run `action`; turn metasync errors into one sentence on stderr and the contract's exit code."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s" if debug else "%(levelname)s: %(message)s",
    )
    try:
        return action()
    except Terminated:  # before Typer, which would turn it into Ctrl-C's 130
        err.print("terminated")
        raise typer.Exit(143) from None
    except MetasyncError as exc:
        if debug:
            err.print_exception()
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        if exc.audit_dir is not None:
            err.print(f"audit: {exc.audit_dir}", highlight=False, soft_wrap=True)
        raise typer.Exit(int(exc.exit_code)) from None
    except Exception as exc:  # an unexpected failure still ends with one sentence unless --debug
        if debug:
            raise
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (run again with --debug for details)",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(int(ExitCode.UNREACHABLE)) from None


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int], ProgressCallback] | None]:
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("writing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bar:

        def start(total: int) -> ProgressCallback:
            task = bar.add_task("write", total=total)
            return lambda n: bar.advance(task, n)

        yield start


EVENT_LINES = 20  # run-level warnings and errors shown on stderr; all of them are in the audit


def _print_events(events: list[dict[str, Any]], *, rest: str) -> None:
    """Warnings and errors on stderr, one line each with its hint, so a scheduler's log says why a run ended."""
    for event in events[:EVENT_LINES]:
        text = f"{event['message']} {event['hint']}" if event["hint"] else event["message"]
        colour = "bold red" if event["severity"] == "error" else "yellow"
        err.print(f"[{colour}]{event['severity']}:[/] {escape(text)}", highlight=False, soft_wrap=True)
    if len(events) > EVENT_LINES:
        err.print(f"... and {len(events) - EVENT_LINES} more, {rest}", highlight=False, soft_wrap=True)


def _run_level_events(result: Any, listed: Any) -> list[dict[str, Any]]:
    """The run's warnings and errors, less the per-asset rows and the events of assets listed already."""
    shown_elsewhere = ["asset", "run_finished"] + (["source_empty"] if result.plan.is_empty() else [])
    events = result.events.filter(
        result.events["severity"].is_in(["warning", "error"]) & ~result.events["event"].is_in(shown_elsewhere)
    )
    # Events with no space or name (delete_refused, a skipped file) never match a listed asset.
    events = events.join(listed.select("space", "name"), on=["space", "name"], how="anti")
    return list(events.select("severity", "message", "hint").iter_rows(named=True))


def _print_summary(result: Any, *, title: str) -> None:
    summary = result.summary
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("count")
    table.add_column("assets", justify="right")
    for key, value in summary["counts"].items():
        table.add_row(key, str(value))
    out.print(table)
    calls = ", ".join(f"{k} {v}" for k, v in summary["api_calls"].items()) or "none"
    out.print(f"target calls: {calls}")
    problems = result.plan.filter(
        result.plan["action"].is_in(["quarantine", "conflict", "skip"]) | (result.plan["status"] == "failed")
    )
    for row in problems.head(20).iter_rows(named=True):
        out.print(
            f"  [yellow]{row['action']}[/] {row['space']}.{row['name']}: {row['reason']}", highlight=False
        )
    if problems.height > 20:
        out.print(f"  ... and {problems.height - 20} more (see the audit folder)")
    empty = result.events.filter(result.events["event"] == "source_empty")
    if result.plan.is_empty() and (empty.height or summary["status"] != "partial"):
        # A partial run's own events (printed below) say what could not be read.
        reason = (
            f"{empty['message'][0]} {empty['hint'][0]}"
            if empty.height
            else "the rules leave no object in scope."
        )
        err.print(f"[yellow]warning:[/] nothing to sync: {escape(reason)}", highlight=False, soft_wrap=True)
    _print_events(_run_level_events(result, problems), rest=f"see {result.audit_dir}")
    out.print(f"status: [bold]{summary['status']}[/]  audit: {result.audit_dir}", soft_wrap=True)


@app.command()
def sync(
    config: ConfigOption,
    env: EnvOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan against the target; write nothing.")
    ] = False,
    delete_stale: Annotated[
        bool, typer.Option("--delete-stale", help="Delete managed tables whose source asset is gone.")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Synchronise the source into the target."""
    from metasync.pipeline import run

    def action() -> Any:
        with _progress(not dry_run and err.is_terminal) as progress:
            return run(config, env=env, dry_run=dry_run, delete_stale=delete_stale or None, progress=progress)

    result = _guard(debug, action)
    _print_summary(result, title="metasync plan (dry run)" if dry_run else "metasync sync")
    raise typer.Exit(result.exit_code)


@app.command()
def plan(
    config: ConfigOption,
    env: EnvOption = None,
    delete_stale: Annotated[
        bool, typer.Option("--delete-stale", help="Also show the managed tables a sync would delete.")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Show what a sync would do, against the target's current state."""
    from metasync.pipeline import run

    result = _guard(debug, lambda: run(config, env=env, dry_run=True, delete_stale=delete_stale or None))
    changes = result.plan.filter(~result.plan["action"].is_in(["unchanged"]))
    table = Table(title="plan", header_style="bold")
    for col in ("batch", "action", "asset", "glue table", "reason"):
        table.add_column(col)
    for row in changes.head(200).iter_rows(named=True):
        table.add_row(
            str(row["batch"]),
            row["action"],
            f"{row['space']}.{row['name']}",
            f"{row['glue_database']}.{row['glue_table']}",
            row.get("column_changes") or row.get("reason") or "",
        )
    if changes.height:
        out.print(table)
    if changes.height > 200:
        out.print(f"... {changes.height - 200} more rows in {result.audit_dir}/plan.csv")
    _print_summary(result, title="metasync plan")
    raise typer.Exit(result.exit_code)


@app.command()
def lineage(
    config: ConfigOption,
    env: EnvOption = None,
    asset: Annotated[str | None, typer.Option("--asset", help="ASSET_ID (SPACE.NAME) to centre on.")] = None,
    direction: Annotated[Direction, typer.Option("--direction")] = Direction.both,
    depth: Annotated[
        int | None, typer.Option("--depth", min=0, help="Steps from --asset (default: all).")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    debug: DebugOption = False,
) -> None:
    """Print the lineage graph, or the part of it around one asset.

    A source read only in part (a file skipped by `source.skip_invalid`, a space that could not be read) still
    prints the graph of what was read, names the parts left out on stderr and exits 1.
    """
    from metasync.api import lineage_and_unread
    from metasync.graph.export import render

    def action() -> tuple[str, bool, list[Event]]:
        if depth is not None and asset is None:
            raise ConfigError("--depth needs --asset: it counts steps from that asset.")
        graph, incomplete, unread = lineage_and_unread(config, env=env)
        text = render(graph, fmt.value, asset=asset, direction=direction.value, depth=depth)
        return text, incomplete, unread

    text, incomplete, unread = _guard(debug, action)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    _print_events(
        [{"severity": e.severity, "message": e.message, "hint": e.hint} for e in unread],
        rest="run `metasync plan` for the full list in its audit.",
    )
    raise typer.Exit(int(ExitCode.PARTIAL if incomplete else ExitCode.OK))


@app.command()
def export(
    config: ConfigOption,
    to: Annotated[Path, typer.Option("--to", help="Folder for the CSN files (one subfolder per space).")],
    env: EnvOption = None,
    debug: DebugOption = False,
) -> None:
    """Write what a Datasphere tenant holds as CSN files, for offline syncs with a `csn` source."""
    from metasync.config import load_config
    from metasync.sources.datasphere.export import export_tenant

    summary = _guard(debug, lambda: export_tenant(load_config(config, env=env), to))
    for event in summary["events"]:
        err.print(f"[yellow]{event['severity']}:[/] {event['message']}", highlight=False, soft_wrap=True)
    out.print(
        f"exported {summary['objects']} objects of {len(summary['spaces'])} spaces to {summary['folder']}; "
        f"status: [bold]{summary['status']}[/]",
        highlight=False,
    )
    raise typer.Exit(int(ExitCode.OK if summary["status"] == "succeeded" else ExitCode.PARTIAL))


@app.command()
def watch(
    config: ConfigOption,
    every: Annotated[str, typer.Option("--every", help="Interval between runs: 30s, 15m, 2h, 1d.")],
    env: EnvOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan on every run; write nothing.")] = False,
    max_runs: Annotated[
        int | None, typer.Option("--max-runs", min=1, help="Stop after this many runs.")
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Sync on an interval, re-reading the configuration before every run (edits apply without a restart)."""
    import threading

    from metasync.scheduler.loop import last_exit_code, parse_interval, run_every

    seconds = _guard(debug, lambda: parse_interval(every))
    if not config.is_file():
        err.print(f"[bold red]error:[/] configuration file {config} does not exist.", highlight=False)
        raise typer.Exit(int(ExitCode.USAGE))
    stop = threading.Event()

    def report(record: Any) -> None:
        audit = f"audit: {record.audit_dir}" if record.audit_dir is not None else ""
        where = f"{record.error} {audit}".strip() if record.error else audit
        out.print(
            f"run {record.number}: [bold]{record.status}[/] (exit {record.exit_code}) {where}",
            highlight=False,
        )

    try:
        records = run_every(
            config, every=seconds, env=env, dry_run=dry_run, max_runs=max_runs, stop=stop, on_run=report
        )
    except KeyboardInterrupt as exc:
        stop.set()
        err.print("stopped")
        raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None
    raise typer.Exit(last_exit_code(records))


def _terminate(_signal: int, _frame: Any) -> None:
    raise Terminated()


def main() -> None:
    """Console entry point. SIGTERM stops a run as Ctrl-C does (its audit is written), exit code 143."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except Terminated:
        err.print("terminated")
        sys.exit(143)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
