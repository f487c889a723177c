"""``nbbs check``: exhaustive model checking of the step machines, with progress and a table."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from nbbs.check import viewer
from nbbs.check.modelcheck import (
    PROPERTIES,
    PROPERTY_NAMES,
    Config,
    Result,
    Violation,
    check,
    check_vec,
    render,
    to_json,
)
from nbbs.model import bits

console = Console()


def result_table(results: list[Result], title: str = "nbbs check") -> Table:
    """One row per configuration: what was explored and which properties hold.

    Fits 80 columns: only the configuration wraps; the numbers and verdicts never shrink.
    """
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
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
@click.option(
    "--engine",
    type=click.Choice(["python", "vec", "spin", "dist"]),
    default="python",
    show_default=True,
    help="python: this checker (thread symmetry reduced); vec: the same search over packed arrays, a "
    "BFS level at a time, its hot loops in C (6-10x faster, a tenth of the memory; its levels go to "
    "$TMPDIR); spin: a Promela model "
    "generated from the step machines, searched by SPIN (every thread permutation; stops at the "
    "first violation); dist: the python engine's search split by state hash over the workers of a "
    "Dask cluster (--workers).",
)
@click.option(
    "--workers",
    default=None,
    metavar="N|ADDRESS",
    help="With --engine dist (and --engine spin --swarm): a local cluster of N worker processes "
    "(default 2), or the address of a running Dask scheduler (tcp://host:8786).",
)
@click.option(
    "--bitstate",
    type=click.IntRange(10, 40),
    default=None,
    metavar="BITS",
    help="With --engine spin: SPIN's bitstate search in 2**BITS bits (incomplete; coverage estimated).",
)
@click.option(
    "--swarm",
    type=click.IntRange(1, 500),
    default=None,
    metavar="K",
    help="With --engine spin: K diversified depth-first bitstate searches of (a)-(c) (SPIN's swarm), "
    "run on every core (or on a Dask cluster's workers: --workers), in 2**BITS bits each "
    "(--bitstate, default 24).",
)
@click.option(
    "--spin-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --engine spin: build and keep the model, pan and any trail here.",
)
@click.option("--stop-at-first", is_flag=True, help="Stop at the first violation.")
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
    engine: str,
    workers: str | None,
    bitstate: int | None,
    swarm: int | None,
    spin_dir: Path | None,
    stop_at_first: bool,
    memory: float | None,
    json_path: Path | None,
    html_path: Path | None,
) -> None:
    """Explore every state of THREADS threads each repeating alloc-then-free on a tree of DEPTH.

    Prints the shortest counterexample of each property that fails and exits 1; exits 3 if
    the search was cut short (--max-states; with SPIN: --bitstate, --swarm) without a
    violation; exits 4 if --engine spin cannot run (SPIN or a C compiler is missing) or
    --engine dist cannot (Dask missing, no scheduler at the address, a worker lost); a bad
    option exits 2.
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
    cluster = None if workers is None else _workers(workers)
    if cluster is not None and engine != "dist" and (engine != "spin" or swarm is None):
        raise click.UsageError("--workers needs --engine dist or --engine spin --swarm")
    if engine == "spin" and swarm is not None:
        _spin_swarm(cfg, swarm, bitstate or 24, json_path, html_path, cluster)
        return
    if engine == "spin":
        _spin_check(cfg, bitstate, spin_dir, json_path, html_path)
        return
    if bitstate is not None or spin_dir is not None or swarm is not None:
        raise click.UsageError("--bitstate, --swarm and --spin-dir need --engine spin")
    started = time.perf_counter()
    with Live(console=console, refresh_per_second=4, transient=True) as live:

        def progress(r: Result, queue: int) -> None:
            live.update(
                f"[bold]{cfg.describe()}[/bold]: {r.states:,} states, {r.rate:,.0f} states/s, "
                f"queue {queue:,}, {time.perf_counter() - started:.0f} s"
            )

        if engine == "vec":
            budget = None if memory is None else int(memory * 2**30)

            def found(v: Violation) -> None:
                # Said at once (a long search goes on); the counterexample is printed at the end.
                live.console.print(
                    f"property ({v.prop}) fails: {escape(v.message)} ({len(v.steps)} steps); "
                    "the search goes on",
                    soft_wrap=True,
                )

            result = check_vec(cfg, progress, memory_budget=budget, on_violation=found)
        elif engine == "dist":
            result = _dist_check(cfg, progress, 2 if cluster is None else cluster)
        else:
            result = check(cfg, progress)
    _counterexamples(result, json_path, html_path)
    title = "nbbs check" if engine == "python" else f"nbbs check --engine {engine}"
    console.print(result_table([result], title=title))
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


def _workers(text: str) -> int | str:
    """``--workers``: a positive count, or a scheduler's address."""
    if text.isdigit():
        if int(text) < 1:
            raise click.BadParameter("a cluster needs at least one worker", param_hint="--workers")
        return int(text)
    if "://" not in text and ":" not in text:
        raise click.BadParameter(
            f"expected a number of workers or a scheduler address such as tcp://host:8786, got {text!r}",
            param_hint="--workers",
        )
    return text


def _connect(workers: int | str) -> object:
    """A Dask client for ``--workers``; exits 4 (with the reason) if there can be none."""
    from nbbs.check import dist

    try:
        return dist.connect(workers)
    except (dist.DistError, OSError, TimeoutError) as e:
        console.print(f"[red]--engine dist cannot run: {escape(str(e))}[/red]", soft_wrap=True)
        sys.exit(4)


def _dist_check(cfg: Config, progress: Callable[[Result, int], None], workers: int | str) -> Result:
    """``--engine dist``: the search on a cluster (a local one of N processes, closed at the end)."""
    from nbbs.check import dist

    client: Any = _connect(workers)
    try:
        return dist.check(cfg, progress, client=client)
    except dist.DistError as e:  # a worker lost, or one that numbers op states otherwise
        console.print(f"[red]--engine dist stopped: {escape(str(e))}[/red]", soft_wrap=True)
        sys.exit(4)
    finally:
        _disconnect(client, workers)


def _disconnect(client: Any, workers: int | str | None) -> None:
    """Close the client, and the local cluster it was made with (never a remote one)."""
    cluster = getattr(client, "cluster", None) if isinstance(workers, int) else None
    client.close()
    if cluster is not None:
        cluster.close()


def _counterexamples(result: Result, json_path: Path | None, html_path: Path | None = None) -> None:
    """Print each counterexample step by step; write the first to ``json_path`` and as a viewer
    page to ``html_path``."""
    cfg = result.config
    for p, v in result.violations.items():
        console.rule(f"[red]({p}) fails: counterexample")
        console.print(render(v, cfg.depth), markup=False, highlight=False)
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


def _spin_check(
    cfg: Config, bitstate: int | None, spin_dir: Path | None, json_path: Path | None, html_path: Path | None
) -> None:
    """``--engine spin``: the same table, from SPIN's search of the generated model."""
    from nbbs.check import spin

    if cfg.max_states is not None:
        raise click.UsageError("--max-states is not supported by --engine spin (use --bitstate)")
    try:
        with console.status(f"[bold]{cfg.describe()}[/bold]: generating, compiling and running SPIN"):
            run = spin.run(cfg, bitstate=bitstate, keep=spin_dir)
    except spin.SpinUnavailable as e:
        console.print(f"[red]{e}[/red]")
        sys.exit(4)
    result = run.result
    _counterexamples(result, json_path, html_path)
    _on_allocator(result)
    if run.refused is not None:
        console.rule("[red]an access the model checker refuses")
        text = render(run.refused, cfg.depth).split("\n", 1)[1]
        console.print(f"{run.refused.message}\n{text}", markup=False, highlight=False)
    console.print(result_table([result], title="nbbs check --engine spin"))
    t = run.timings
    console.print(
        f"SPIN stored {run.stored:,} states: the model's {result.states:,} (every permutation of the "
        f"threads: no symmetry reduction) plus the state before the initial blocks are chosen; "
        f"{run.spin_transitions:,} transitions, depth {run.depth:,}. Seconds: generate "
        f"{t.get('generate', 0):.1f}, compile {t.get('compile', 0):.1f}, search {t.get('search', 0):.1f}"
        + (f", lock-freedom search {t['liveness']:.1f}" if "liveness" in t else "")
        + "."
    )
    if run.bitstate is not None:
        console.print(
            f"bitstate search in 2**{run.bitstate} bits: hash factor {run.hash_factor:,.1f} (SPIN: coverage "
            f"is good above 100), estimated chance a new state was taken for a seen one at the end "
            f"{run.omission:.2g}; a bitstate search is never complete."
        )
    if result.violations or run.refused is not None:
        console.print("SPIN stops at the first violation (its shortest: a breadth-first search).")
        sys.exit(1)
    if not result.complete:
        sys.exit(3)


def _spin_swarm(
    cfg: Config,
    searches: int,
    bitstate: int,
    json_path: Path | None,
    html_path: Path | None,
    workers: int | str | None = None,
) -> None:
    """``--engine spin --swarm K``: K diversified bitstate searches, one line each, then the table;
    on a Dask cluster's workers with ``--workers``."""
    from nbbs.check import spin

    where = "" if workers is None else f" on the cluster {workers}"
    client: Any = None
    try:
        with console.status(f"[bold]{cfg.describe()}[/bold]: a swarm of {searches} SPIN searches{where}"):
            if workers is not None:
                client = _connect(workers)
            run = spin.swarm(cfg, searches, bitstate=bitstate, client=client)
    except spin.SpinUnavailable as e:
        console.print(f"[red]{e}[/red]")
        sys.exit(4)
    finally:
        if client is not None:
            _disconnect(client, workers)
    result = run.result
    _counterexamples(result, json_path, html_path)
    _on_allocator(result)
    table = Table(title=f"SPIN swarm: {searches} bitstate searches in 2**{bitstate} bits each")
    for col in ("seed", "hash", "states", "depth", "hash factor", "missed", "errors"):
        table.add_column(col, justify="right")
    for row in run.runs:
        table.add_row(
            f"{row['seed']:.0f}",
            f"{row['hash']:.0f}",
            f"{row['states']:,.0f}",
            f"{row['depth']:,.0f}",
            f"{row['hash_factor']:,.1f}",
            f"{row['omission']:.2g}",
            f"{row['errors']:.0f}",
        )
    console.print(table)
    console.print(result_table([result], title="nbbs check --engine spin --swarm"))
    t = run.timings
    console.print(
        f"states: the most one search stored (no symmetry reduction; none is complete). Seconds: "
        f"generate {t.get('generate', 0):.1f}, compile {t.get('compile', 0):.1f}, searches "
        f"{t.get('search', 0):.1f}. Lock-freedom (d) is not searched by the swarm. Coverage (SPIN's "
        f"estimate, per search): hash factor, bits of the array per state stored (good above 100), and "
        f"missed, the chance a new state was taken for a seen one at the end."
    )
    sys.exit(1 if result.violations else 3)


def _on_allocator(result: Result) -> None:
    """SPIN's counterexample on the real allocator (the bridge), with its ``nbbs replay`` command."""
    from nbbs.check import spin

    for p, v in result.violations.items():
        if p == "d":
            continue
        ok, detail, schedule = spin.on_allocator(result.config, v)
        console.print(f"on the real allocator: {'reproduced' if ok else 'NOT reproduced'}: {detail}")
        if schedule:
            console.print(f"replay:   nbbs replay {schedule}", markup=False, highlight=False)
