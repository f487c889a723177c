"""``nbbs explore`` and ``nbbs replay``: controlled interleavings of the real allocator."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import click
from rich import box
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nbbs.check import viewer
from nbbs.check.explore import (
    ExploreConfig,
    ExplorerError,
    Report,
    explore,
    parse,
    random_scenario,
    render_trace,
    replay,
    schedule_string,
)
from nbbs.cli.main import console
from nbbs.model import bits

STRATEGIES = ("random", "pct", "exhaustive")


@click.command("explore")
@click.option(
    "--threads", type=click.IntRange(1, 8), default=2, show_default=True, help="Threads per scenario."
)
@click.option(
    "--ops", type=click.IntRange(1, 10), default=2, show_default=True, help="Operations per thread."
)
@click.option("--depth", type=click.IntRange(1, 6), default=3, show_default=True, help="Tree depth.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="random", show_default=True)
@click.option("--seconds", type=float, default=10.0, show_default=True, help="Time budget.")
@click.option(
    "--variant",
    default=bits.DEFAULT_VARIANT,
    show_default=True,
    help="Allocator: a variant of bits.VARIANTS (top_down_node, the shipped one; counted; top_down; "
    "reference; corrected; stop_early; rollback_only; skip_only; rollback_skip; rollback_skip_last), "
    "locked, or a mutant (check.impl_mutants, check.mutants).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of scenarios and schedules.")
@click.option(
    "--pct-depth", type=click.IntRange(1, 10), default=3, show_default=True, help="PCT bug depth d."
)
@click.option(
    "--preemptions", type=click.IntRange(0, 10), default=2, show_default=True, help="Exhaustive bound."
)
@click.option(
    "--quiescent",
    type=click.Choice(["obtainable", "strict", "stale_coal", "off"]),
    default="obtainable",
    show_default=True,
    help="Quiescent predicate at the end of each run.",
)
@click.option("--no-refinement", is_flag=True, help="Skip the step-by-step comparison with model.steps.")
@click.option(
    "--per-scenario", type=int, default=300, show_default=True, help="Schedules per scenario at most."
)
@click.option(
    "--scenario", default=None, help="Explore this scenario (HEADER:THREADS) instead of random ones."
)
def explore_cmd(
    threads: int,
    ops: int,
    depth: int,
    strategy: str,
    seconds: float,
    variant: str,
    seed: int,
    pct_depth: int,
    preemptions: int,
    quiescent: str,
    no_refinement: bool,
    per_scenario: int,
    scenario: str | None,
) -> None:
    """Run random scenarios under a scheduling strategy, checking every execution; print the first failure."""
    rng = random.Random(seed)
    reports: list[Report] = []
    started = time.perf_counter()
    deadline = started + seconds
    try:
        fixed = parse(scenario)[0] if scenario else None
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            bar = progress.add_task("exploring", total=seconds)
            while time.perf_counter() < deadline:
                sc = fixed or random_scenario(rng, threads, ops, depth, variant)
                left = deadline - time.perf_counter()
                cfg = ExploreConfig(
                    strategy=strategy,  # type: ignore[arg-type]
                    seed=rng.randrange(1 << 30),
                    max_schedules=per_scenario,
                    seconds=left,
                    pct_depth=pct_depth,
                    preemption_bound=preemptions,
                    quiescent=quiescent,  # type: ignore[arg-type]
                    refinement=not no_refinement,
                )
                rep = explore(sc, cfg)
                reports.append(rep)
                done = sum(r.schedules for r in reports)
                fails = sum(len(r.failures) for r in reports)
                progress.update(
                    bar,
                    completed=min(time.perf_counter() - started, seconds),
                    description=f"{len(reports)} scenarios, {done} schedules, {fails} failures",
                )
                if rep.failures or (fixed is not None and rep.exhausted):
                    break
    except ExplorerError as e:
        raise click.UsageError(str(e)) from e
    elapsed = time.perf_counter() - started
    failed = [r for r in reports if r.failures]
    for r in failed[:1]:
        console.rule("[red]first failure")
        console.print(r.failures[0][1], markup=False, highlight=False)
    total = sum(r.schedules for r in reports)
    table = Table(
        title=f"nbbs explore ({strategy}, {variant})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for col in ("scenarios", "schedules", "schedules/s", "exhausted", "failures", "time (s)"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    table.add_row(
        str(len(reports)),
        str(total),
        f"{total / elapsed:,.0f}" if elapsed else "-",
        str(sum(r.exhausted for r in reports)),
        str(sum(len(r.failures) for r in reports)),
        f"{elapsed:.1f}",
    )
    console.print(table)
    if failed:
        sys.exit(1)


@click.command("replay")
@click.argument("schedule")
@click.option(
    "--quiescent",
    type=click.Choice(["obtainable", "strict", "stale_coal", "off"]),
    default="obtainable",
    show_default=True,
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the run as a self-contained HTML page to watch step by step.",
)
def replay_cmd(schedule: str, quiescent: str, html_path: Path | None) -> None:
    """Re-run SCHEDULE and print every step, the trees and the checks; exit 1 if a check fails.

    SCHEDULE is a schedule string from ``nbbs explore`` (or a failing test), or the path of a
    counterexample file that ``nbbs check --json`` wrote: the model's schedule is then replayed
    on the real allocator, which must make the same accesses and show the same violation.
    """
    try:
        if html_path is not None:
            html_path = viewer.check_target(html_path)
        if schedule.endswith(".json") or Path(schedule).is_file():
            _replay_counterexample(Path(schedule), quiescent, html_path)
            return
        out, text = replay(schedule, ExploreConfig(quiescent=quiescent))  # type: ignore[arg-type]
    except viewer.ViewerError as e:
        raise click.BadParameter(str(e), param_hint="--html") from e
    except ExplorerError as e:
        raise click.UsageError(str(e)) from e
    console.print(text, markup=False, highlight=False)
    if html_path is not None:
        try:
            viewer.write(viewer.from_outcome(parse(schedule)[0], out, schedule.strip()), html_path)
        except viewer.ViewerError as e:
            raise click.BadParameter(f"no page written: {e}", param_hint="--html") from e
        console.print(f"page written to {html_path} (open it in a browser)", soft_wrap=True)
    if out.failure is not None:
        sys.exit(1)


def _replay_counterexample(path: Path, quiescent: str, html_path: Path | None = None) -> None:
    """Replay a model checker counterexample file on the real allocator (``check.bridge``), and
    write it as a viewer page (the model's steps, program counters and locals) to ``html_path``."""
    from nbbs.check.bridge import Counterexample, reproduce

    if not path.is_file():
        raise ExplorerError(f"{path}: no such file (expected a schedule string or a counterexample file)")
    try:
        cx = Counterexample.load(path)
    except (ValueError, TypeError, KeyError) as e:
        raise ExplorerError(f"{path}: not a counterexample file ({type(e).__name__}: {e})") from e
    rep = reproduce(cx)
    sc = cx.scenario()
    text = schedule_string(sc, rep.schedule)
    console.print(
        f"{path}: ({cx.property}) on variant {cx.variant}, depth {cx.depth}; on the real allocator "
        f"that schedule is\n  nbbs replay {text}",
        markup=False,
        highlight=False,
    )
    if rep.outcome is not None:
        console.print(render_trace(rep.outcome, sc.depth), markup=False, highlight=False)
    console.print(rep.detail if rep.reproduced else f"not reproduced: {rep.detail}", markup=False)
    if html_path is not None:
        try:
            viewer.write(viewer.from_counterexample(json.loads(path.read_text()), str(path)), html_path)
        except viewer.ViewerError as e:
            raise click.BadParameter(f"no page written: {e}", param_hint="--html") from e
        console.print(f"page written to {html_path} (open it in a browser)", soft_wrap=True)
    sys.exit(1 if rep.reproduced else 0)
