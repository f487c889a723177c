"""``nbbs check``: exhaustive model checking of the step machines, with progress and a table."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from nbbs.check import viewer
from nbbs.check.modelcheck import (
    PROPERTIES,
    PROPERTY_NAMES,
    Config,
    Result,
    check,
    check_vec,
    render,
    to_json,
)
from nbbs.model import bits

console = Console()


def result_table(results: list[Result]) -> Table:
    """One row per configuration: what was explored and which properties hold."""
    table = Table(title="nbbs check")
    for col in ("configuration", "states", "transitions", "s", "states/s", "complete"):
        if col == "configuration":
            table.add_column(col, no_wrap=True)
        else:
            table.add_column(col, justify="right")
    for p in PROPERTIES:
        table.add_column(f"({p})")
    for r in results:
        row = [
            r.config.label,
            f"{r.states:,}",
            f"{r.transitions:,}",
            f"{r.seconds:.1f}",
            f"{r.rate:,.0f}",
            "yes" if r.complete else "[yellow]NO[/yellow]",
        ]
        for p in PROPERTIES:
            if p not in r.config.properties:
                row.append("-")
            elif p in r.violations:
                row.append("[red]FAILS[/red]")
            elif p == "d" and not r.complete:
                row.append("[yellow]not run[/yellow]")
            else:
                row.append("[green]ok[/green]" if r.complete else "[yellow]ok*[/yellow]")
        table.add_row(*row)
    return table


def parse_scenario(text: str) -> tuple[tuple[tuple[str, int], ...], ...]:
    """``'alloc 4, free 4; alloc 10'`` -> ``((("alloc", 4), ("free", 4)), (("alloc", 10),))``."""
    threads = []
    for part in text.split(";"):
        ops = []
        for item in part.split(","):
            words = item.split()
            if len(words) != 2 or words[0] not in ("alloc", "free") or not words[1].isdigit():
                raise click.BadParameter(
                    f"expected 'alloc N' or 'free N', got {item.strip()!r}", param_hint="--scenario"
                )
            ops.append((words[0], int(words[1])))
        threads.append(tuple(ops))
    return tuple(threads)


@click.command("check")
@click.option("--threads", "-t", type=click.IntRange(1, 6), default=2, show_default=True)
@click.option("--depth", "-d", type=click.IntRange(0, 5), default=2, show_default=True)
@click.option("--max-order", type=int, default=None, help="Largest order (default: depth).")
@click.option(
    "--variant", type=click.Choice(sorted(bits.VARIANTS)), default=bits.DEFAULT_VARIANT, show_default=True
)
@click.option(
    "--property",
    "props",
    type=click.Choice(PROPERTIES),
    multiple=True,
    help="Check only these (repeatable); default all: "
    + "; ".join(f"({p}) {PROPERTY_NAMES[p]}" for p in PROPERTIES),
)
@click.option(
    "--mode",
    type=click.Choice(["attempt", "scan"]),
    default="attempt",
    show_default=True,
    help="Each alloc is one attempt at a chosen node, or impl/nbbs.py's scan from a chosen start.",
)
@click.option("--checked-free", is_flag=True, help="Include NBBS.free's argument-check loads.")
@click.option(
    "--scenario",
    default=None,
    help="Only these ops, every interleaving: threads separated by ';', ops by ',', "
    "e.g. 'alloc 4, free 4, alloc 1; alloc 10, free 10; alloc 11' (sets --threads).",
)
@click.option("--empty", is_flag=True, help="Start from the empty tree only (default: every live set).")
@click.option("--max-states", type=int, default=None, help="Stop after this many states (incomplete).")
@click.option("--stop-at-first", is_flag=True, help="Stop at the first violation.")
@click.option(
    "--engine",
    type=click.Choice(["python", "vec"]),
    default="python",
    show_default=True,
    help="python: states as Python ints; vec: the same search in numpy arrays, a BFS level at a "
    "time (faster, a tenth of the memory; its levels go to $TMPDIR).",
)
@click.option(
    "--memory",
    type=click.FloatRange(min=0.01),
    default=None,
    help="vec engine: GiB of seen states to keep in RAM; larger runs are written to $TMPDIR.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the first counterexample here, in the replay format.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the first counterexample as a self-contained HTML page to watch step by step.",
)
def check_command(
    threads: int,
    depth: int,
    max_order: int | None,
    variant: str,
    props: tuple[str, ...],
    mode: str,
    checked_free: bool,
    scenario: str | None,
    empty: bool,
    max_states: int | None,
    stop_at_first: bool,
    engine: str,
    memory: float | None,
    json_path: Path | None,
    html_path: Path | None,
) -> None:
    """Explore every state of THREADS threads each repeating alloc-then-free on a tree of DEPTH.

    Prints the shortest counterexample of each property that fails and exits 1; exits 2 if
    the search was cut short (--max-states) without a violation.
    """
    if max_order is not None and not 0 <= max_order <= depth:
        raise click.BadParameter(f"must be from 0 to depth={depth}", param_hint="--max-order")
    script = None if scenario is None else parse_scenario(scenario)
    if html_path is not None:
        try:
            html_path = viewer.check_target(html_path)
        except viewer.ViewerError as e:
            raise click.BadParameter(str(e), param_hint="--html") from e
    if script is not None:
        threads = len(script)
    cfg = Config(
        threads,
        depth,
        max_order=max_order,
        variant=variant,
        properties=props or PROPERTIES,
        mode=mode,
        initial="empty" if empty else "all",
        checked_free=checked_free,
        max_states=max_states,
        stop_at_first=stop_at_first,
        scenario=script,
    )
    started = time.perf_counter()
    with Live(console=console, refresh_per_second=4, transient=True) as live:

        def progress(r: Result, queue: int) -> None:
            live.update(
                f"[bold]{cfg.describe()}[/bold]: {r.states:,} states, {r.rate:,.0f} states/s, "
                f"queue {queue:,}, {time.perf_counter() - started:.0f} s"
            )

        if engine == "vec":
            budget = None if memory is None else int(memory * 2**30)
            result = check_vec(cfg, progress, memory_budget=budget)
        else:
            result = check(cfg, progress)
    for p, v in result.violations.items():
        console.rule(f"[red]({p}) {PROPERTY_NAMES[p]}: counterexample")
        console.print(render(v, depth), markup=False, highlight=False)
    if json_path is not None and result.violations:
        v = next(iter(result.violations.values()))
        json_path.write_text(json.dumps(to_json(v, cfg, v.message), indent=1) + "\n")
        console.print(f"counterexample written to {json_path}")
    if html_path is not None:
        if result.violations:
            prop, v = next(iter(result.violations.items()))
            try:
                viewer.write(viewer.from_violation(v, cfg, f"nbbs check: {cfg.describe()}"), html_path)
            except viewer.ViewerError as e:
                raise click.BadParameter(f"no page written: {e}", param_hint="--html") from e
            console.print(
                f"counterexample ({prop}) written to {html_path} (open it in a browser)", soft_wrap=True
            )
        else:
            console.print(f"no counterexample: {html_path} not written", soft_wrap=True)
    console.print(result_table([result]))
    if not result.complete:
        console.print("ok* = no violation in the states explored so far (the search was cut short)")
    console.print(
        f"{result.initial_states} initial states (live sets), {result.quiescent:,} quiescent states "
        f"({result.stale_quiescent:,} with a COAL bit left)"
    )
    if result.violations:
        sys.exit(1)
    if not result.complete:
        sys.exit(2)
