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
        if not o.ok:
            result = "[red]FAILED[/red]"
        else:
            result = "[green]ok[/green]" if o.complete else "[yellow]ok*[/yellow]"
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
    cut = [o.check for o in outcomes if o.ok and not o.complete]
    if cut:
        console.print(
            f"ok* = nothing failed, but the time budget ran out before {len(cut)} check(s) finished "
            "their work; give more --seconds to run them in full"
        )
    if not all(o.ok for o in outcomes):
        sys.exit(1)


@click.group()
def main() -> None:
    """Check and run the NBBS non-blocking buddy allocator."""


MARGIN = 10.0
"""What ``verify`` may take beyond ``--seconds``: the step or z3 query in progress when a check's
time runs out, the last check's shrinking when it fails, start-up (measured: README)."""


@main.command()
@click.option(
    "--seconds",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help=f"Total time budget; verify ends within it plus about {MARGIN:.0f} s.",
)
def verify(seconds: float) -> None:
    """Run every check of the allocator within a time budget and print a table.

    \b
    In order, each with its share of what is left of the budget:
    The shipped variant (top_down_node) unless a line names another:
      differential   Hypothesis drives NBBS and LockedBuddy beside the spec (alloc,
                     alloc_bytes, free, bad input); a failure prints the shrunk program
      model check    every state of 2 threads at depths 1-2 and 3 at depth 1, ten
                     random 3-thread scenarios at depth 3, racing double frees,
                     and the published algorithm's known lost block (found again)
      explore        the real allocator under controlled interleavings: every code
                     mutant of counted caught, random 2-3 thread scenarios
                     (algorithm and API)
      proofs         z3: top_down_node's every-depth frame and safety and its step
                     invariant for 2 threads at depth 1; counted's obligations to
                     depth 4, its step invariant for 2 threads to depth 2 and its
                     every-depth frame; corrected's; and every mutant caught

    A check whose time runs out stops and is marked ok* (nothing failed in what it did);
    a failure prints its reproducer (a program, a counterexample or a schedule string) and
    verify exits 1.
    """
    from nbbs.cli.verify import tasks

    todo = tasks()
    deadline = time.perf_counter() + seconds
    outcomes: list[Outcome] = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        bar = progress.add_task("verify", total=len(todo))
        for i, t in enumerate(todo):
            progress.update(bar, description=f"{t.name}")
            started = time.perf_counter()
            # Each check's share of what is left: time a check does not use goes to the later ones.
            left = max(deadline - started, 0.0)
            outcomes.append(t.run(left * t.share / sum(u.share for u in todo[i:])))
            progress.advance(bar)
            progress.console.log(
                f"{t.name}: {'ok' if outcomes[-1].ok else 'FAILED'} ({time.perf_counter() - started:.1f} s)"
            )
    report("nbbs verify", outcomes)


def _register() -> None:
    from nbbs.cli.check import check_command
    from nbbs.cli.conform import conform_cmd, trace_group
    from nbbs.cli.explore import explore_cmd, replay_cmd
    from nbbs.cli.port import port
    from nbbs.cli.prove import prove

    main.add_command(check_command)
    main.add_command(explore_cmd)
    main.add_command(replay_cmd)
    main.add_command(prove)
    main.add_command(conform_cmd)
    main.add_command(trace_group)
    main.add_command(port)


_register()
