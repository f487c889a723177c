"""``nbbs``: verify, and (as they land) check, explore, replay and prove.

Every subcommand ends with a table and exits 1 if any check failed, after printing what a
person needs to reproduce the failure.
"""

from __future__ import annotations

import sys
import time

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nbbs.check.report import Outcome

console = Console()


def outcome_table(title: str, outcomes: list[Outcome]) -> Table:
    """One row per check: name, examples run, result, time. Fits 80 columns: only the name wraps."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("check", overflow="fold", ratio=1)
    table.add_column("examples", justify="right", no_wrap=True, min_width=8)
    table.add_column("result", no_wrap=True, min_width=6)
    table.add_column("time (s)", justify="right", no_wrap=True, min_width=8)
    for o in outcomes:
        result = "[green]ok[/green]" if o.ok else "[red]FAILED[/red]"
        table.add_row(o.check, f"{o.examples:,}", result, f"{o.seconds:.1f}")
    total = sum(o.seconds for o in outcomes)
    table.add_row("total", f"{sum(o.examples for o in outcomes):,}", "", f"{total:.1f}", style="bold")
    return table


def report(title: str, outcomes: list[Outcome]) -> None:
    """Print each failure's reproducer, then the table; exit 1 if anything failed."""
    for o in outcomes:
        if not o.ok:
            console.rule(f"[red]{o.check} failed")
            console.print(o.detail, markup=False, highlight=False)
    console.print(outcome_table(title, outcomes))
    if not all(o.ok for o in outcomes):
        sys.exit(1)


@click.group()
def main() -> None:
    """Check and run the NBBS non-blocking buddy allocator."""


@main.command()
@click.option("--seconds", type=float, default=60.0, show_default=True, help="Total time budget.")
def verify(seconds: float) -> None:
    """Run every check (differential machines, and later model checking, exploration, proofs)."""
    from nbbs.cli.verify import tasks

    todo = tasks()
    shares = sum(t.share for t in todo)
    outcomes: list[Outcome] = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        bar = progress.add_task("verify", total=len(todo))
        for t in todo:
            progress.update(bar, description=f"{t.name}")
            started = time.perf_counter()
            outcomes.append(t.run(seconds * t.share / shares))
            progress.advance(bar)
            progress.console.log(
                f"{t.name}: {'ok' if outcomes[-1].ok else 'FAILED'} ({time.perf_counter() - started:.1f} s)"
            )
    report("nbbs verify", outcomes)


def _register() -> None:
    from nbbs.cli.check import check_command
    from nbbs.cli.explore import explore_cmd, replay_cmd
    from nbbs.cli.prove import prove

    main.add_command(check_command)
    main.add_command(explore_cmd)
    main.add_command(replay_cmd)
    main.add_command(prove)


_register()
