"""``nbbs check``: exhaustive model checking of the step machines, with progress and a table."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table

from nbbs.check.modelcheck import PROPERTIES, PROPERTY_NAMES, Config, Result, check, render, to_json
from nbbs.model import bits

console = Console()


def result_table(results: list[Result]) -> Table:
    """One row per configuration: what was explored and which properties hold.

    Fits 80 columns: only the configuration wraps; the numbers and verdicts never shrink.
    """
    table = Table(title="nbbs check", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("configuration", overflow="fold", ratio=1)
    for col in ("states", "transitions", "s", "done"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    for p in PROPERTIES:
        table.add_column(f"({p})", no_wrap=True, min_width=4)
    for r in results:
        row = [
            r.config.label.replace("+", " +"),
            f"{r.states:,}",
            f"{r.transitions:,}",
            f"{r.seconds:.1f}",
            "yes" if r.complete else "[yellow]NO[/yellow]",
        ]
        for p in PROPERTIES:
            if p not in r.config.properties:
                row.append("-")
            elif p in r.violations:
                row.append("[red]FAIL[/red]")
            elif p == "d" and not r.complete:
                row.append("[yellow]n/r[/yellow]")
            else:
                row.append("[green]ok[/green]" if r.complete else "[yellow]ok*[/yellow]")
        table.add_row(*row)
    return table


def known_variant(name: str | None) -> str | None:
    """``name`` if it is a variant of ``bits.VARIANTS`` (or None); else a usage error that lists them."""
    if name is not None and name not in bits.VARIANTS:
        raise click.BadParameter(bits.unknown_variant(name), param_hint="--variant")
    return name


def parse_scenario(text: str) -> tuple[tuple[tuple[str, int], ...], ...]:
    """``'alloc 4, free 4; alloc 10'`` -> ``((("alloc", 4), ("free", 4)), (("alloc", 10),))``."""
    threads = []
    for part in text.split(";"):
        ops = []
        for item in part.split(","):
            words = item.split()
            if len(words) != 2 or words[0] not in ("alloc", "free", "dfree") or not words[1].isdigit():
                raise click.BadParameter(
                    f"expected 'alloc N', 'free N' or 'dfree N', got {item.strip()!r}",
                    param_hint="--scenario",
                )
            ops.append((words[0], int(words[1])))
        threads.append(tuple(ops))
    return tuple(threads)


@click.command("check")
@click.option("--threads", "-t", type=click.IntRange(1, 6), default=2, show_default=True)
@click.option("--depth", "-d", type=click.IntRange(0, 5), default=2, show_default=True)
@click.option("--max-order", type=int, default=None, help="Largest order (default: depth).")
@click.option(
    "--variant",
    default=bits.DEFAULT_VARIANT,
    show_default=True,
    callback=lambda _ctx, _param, value: known_variant(value),
    help="The algorithm: " + ", ".join(sorted(bits.VARIANTS)) + ".",
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
    "e.g. 'alloc 4, free 4, alloc 1; alloc 10, free 10; alloc 11' (sets --threads). "
    "'dfree N' is a racing double free of N, a block of the initial live set: 'dfree 2; dfree 2' "
    "checks that exactly one of two racing frees succeeds.",
)
@click.option("--empty", is_flag=True, help="Start from the empty tree only (default: every live set).")
@click.option("--max-states", type=int, default=None, help="Stop after this many states (incomplete).")
@click.option("--stop-at-first", is_flag=True, help="Stop at the first violation.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the first counterexample here, in the replay format.",
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
    json_path: Path | None,
) -> None:
    """Explore every state of THREADS threads each repeating alloc-then-free on a tree of DEPTH.

    Prints the shortest counterexample of each property that fails and exits 1; exits 3 if
    the search was cut short (--max-states) without a violation; a bad option exits 2.
    """
    if max_order is not None and not 0 <= max_order <= depth:
        raise click.BadParameter(f"must be from 0 to depth={depth}", param_hint="--max-order")
    script = None if scenario is None else parse_scenario(scenario)
    if script is not None:
        threads = len(script)
    if json_path is not None and not json_path.parent.is_dir():
        # Say so now, not after the whole search has run.
        raise click.BadParameter(f"no folder {str(json_path.parent)!r} to write into", param_hint="--json")
    try:
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
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--scenario") from e
    started = time.perf_counter()
    with Live(console=console, refresh_per_second=4, transient=True) as live:

        def progress(r: Result, queue: int) -> None:
            live.update(
                f"[bold]{cfg.describe()}[/bold]: {r.states:,} states, {r.rate:,.0f} states/s, "
                f"queue {queue:,}, {time.perf_counter() - started:.0f} s"
            )

        result = check(cfg, progress)
    for p, v in result.violations.items():
        console.rule(f"[red]({p}) fails: counterexample")
        console.print(render(v, depth), markup=False, highlight=False)
    if json_path is not None and result.violations:
        v = next(iter(result.violations.values()))
        json_path.write_text(json.dumps(to_json(v, cfg, v.message), indent=1) + "\n")
        console.print(f"counterexample written to {json_path}")
    console.print(result_table([result]))
    if not result.complete:
        console.print(
            "ok* = no violation in the states explored so far (the search was cut short); "
            "n/r = not run (lock-freedom needs the whole graph)"
        )
    console.print(
        f"{result.rate:,.0f} states/s; {result.initial_states} initial states (live sets), "
        f"{result.quiescent:,} quiescent states "
        f"({result.stale_quiescent:,} with a COAL bit left)"
    )
    if result.violations:
        sys.exit(1)
    if not result.complete:
        sys.exit(3)
