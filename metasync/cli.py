"""The `metasync` command line: sync, plan, lineage, export, watch."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from metasync.errors import ConfigError, ExitCode, MetasyncError
from metasync.targets.base import ProgressCallback

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


out = Console(soft_wrap=True)  # piped output keeps long lines (paths, reasons) whole for grep
err = Console(stderr=True, soft_wrap=True)

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
    if result.plan.is_empty():
        empty = (result.events["event"] == "source_empty").any()
        err.print(
            "[yellow]warning:[/] nothing to sync: "
            + (
                "the source holds no objects; check source.path."
                if empty
                else "the rules leave no object in scope."
            ),
            highlight=False,
            soft_wrap=True,
        )
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
    """Print the lineage graph, or the part of it around one asset."""
    from metasync.api import lineage as build
    from metasync.graph.export import render

    def action() -> str:
        if depth is not None and asset is None:
            raise ConfigError("--depth needs --asset: it counts steps from that asset.")
        graph = build(config, env=env)
        return render(graph, fmt.value, asset=asset, direction=direction.value, depth=depth)

    text = _guard(debug, action)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


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
        where = record.error or f"audit: {record.audit_dir}"
        out.print(
            f"run {record.number}: [bold]{record.status}[/] (exit {record.exit_code}) {where}",
            highlight=False,
        )

    try:
        records = run_every(
            config, every=seconds, env=env, dry_run=dry_run, max_runs=max_runs, stop=stop, on_run=report
        )
    except KeyboardInterrupt:
        stop.set()
        err.print("stopped")
        raise typer.Exit(130) from None
    raise typer.Exit(last_exit_code(records))


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
