"""``nbbs conform -- COMMAND ...``: check a port of NBBS through PORTING.md's line protocol."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys

import click
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from nbbs.cli.main import console
from nbbs.conform.harness import OK, Options, Result, conform, exit_status


def result_table(results: list[Result]) -> Table:
    """One row per check: name, runs (examples or histories), result, time; narrow enough for 80 columns."""
    table = Table(title="nbbs conform")
    table.add_column("check")
    table.add_column("runs", justify="right")
    table.add_column("result")
    table.add_column("time (s)", justify="right")
    for r in results:
        colour = "green" if r.status == OK else "red"
        table.add_row(r.check, str(r.runs), f"[{colour}]{r.status}[/{colour}]", f"{r.seconds:.1f}")
    return table


@click.command("conform", context_settings={"ignore_unknown_options": True})
@click.option("--stress", is_flag=True, help="Also check real-thread histories (stress THREADS OPS SEED).")
@click.option("--controlled", is_flag=True, help="Also schedule the port's threads step by step.")
@click.option(
    "--examples",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Sequential examples per variant, at most.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0),
    default=60.0,
    show_default=True,
    help="Time budget, shared by the modes.",
)
@click.option(
    "--variant",
    "variants",
    multiple=True,
    help="Check this variant (repeatable); default: top_down_node, counted and reference if listed "
    "(stress: top_down_node, else counted).",
)
@click.option(
    "--max-depth", type=click.IntRange(0, 16), default=10, show_default=True, help="Deepest sequential arena."
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds one reply may take.",
)
@click.option(
    "--shrink-seconds",
    type=click.FloatRange(0),
    default=20.0,
    show_default=True,
    help="Time to shrink a failure.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Controlled mode: write the first failing schedule, re-run on the port, as a page to watch.",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    help="Controlled mode: explore this scenario string, or replay this schedule string (repeatable).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of stress rounds and schedules.")
@click.option(
    "--json", "json_file", type=click.Path(dir_okay=False, writable=True), help="Also write the results here."
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def conform_cmd(
    stress: bool,
    controlled: bool,
    examples: int,
    seconds: float,
    variants: tuple[str, ...],
    max_depth: int,
    timeout: float,
    shrink_seconds: float,
    html_path: str | None,
    scenarios: tuple[str, ...],
    seed: int,
    json_file: str | None,
    command: tuple[str, ...],
) -> None:
    """Check the port that COMMAND starts (after `--`): exit 0 all passed, 1 a violation, 2 a broken port.

    The sequential run drives the port with the differential machine against the spec (bad
    inputs included) and shows a failure as protocol lines to paste into the port. With
    --controlled, COMMAND is the port's controlled build (PORTING.md §8): it serves the sequential
    run too, then the explorer schedules its threads and the scan-cost check counts its accesses.
    """
    options = Options(
        stress=stress,
        controlled=controlled,
        examples=examples,
        seconds=seconds,
        variants=variants,
        max_depth=max_depth,
        timeout=timeout,
        shrink_seconds=shrink_seconds,
        scenarios=scenarios,
        html=html_path,
        seed=seed,
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} runs"),
        console=console,
    ) as progress:
        bars: dict[str, TaskID] = {}

        def tell(check: str, done: int, total: int) -> None:
            if check not in bars:
                for bar in bars.values():
                    progress.stop_task(bar)
                bars[check] = progress.add_task(check, total=total or None)
            progress.update(bars[check], completed=done)

        results = conform(command, options, tell)
        for bar in bars.values():
            progress.stop_task(bar)
    for r in results:
        if r.status != OK:
            console.rule(f"[red]{r.check}: {r.status}")
            console.print(r.detail, markup=False, highlight=False)
    console.print(f"port: {' '.join(command)}", highlight=False)
    console.print(result_table(results))
    for r in results:
        if r.status == OK and r.detail:
            console.print(f"{r.check}: {r.detail}", highlight=False)
    status = exit_status(results)
    if json_file:
        record = {
            "command": list(command),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, CPython {platform.python_version()}, {os.cpu_count()} cores",
            "options": {k: v for k, v in vars(options).items()},
            "results": [r.as_json() for r in results],
            "exit": status,
        }
        with open(json_file, "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
    sys.exit(status)


@click.group("trace")
def trace_group() -> None:
    """Conformance traces a port's own tests replay without Python (PORTING.md)."""


@trace_group.command("export")
@click.option(
    "--out", default="traces", show_default=True, type=click.Path(file_okay=False), help="Directory."
)
def export_cmd(out: str) -> None:
    """Write the sequential traces (and the schedule traces, when the controlled mode is built)."""
    from nbbs.conform.traces import export

    for path in export(out):
        console.print(str(path), highlight=False)


@trace_group.command("replay", context_settings={"ignore_unknown_options": True})
@click.argument("traces", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--timeout", type=click.FloatRange(0.1), default=10.0, show_default=True, help="Seconds per reply."
)
@click.option(
    "--port", "command", required=True, help="The port's command line (quoted), e.g. './nbbs-port'."
)
def replay_cmd(traces: tuple[str, ...], timeout: float, command: str) -> None:
    """Replay sequential TRACES on a port: exit 0 if every reply matches, 1 if not, 2 if the port broke."""
    import shlex

    from nbbs.conform.protocol import Port, PortError
    from nbbs.conform.traces import replay

    failed = False
    try:
        with Port(shlex.split(command), timeout=timeout) as port:
            for path in traces:
                wrong = replay(path, port)
                console.print(f"{path}: {'ok' if not wrong else f'{len(wrong)} mismatches'}", highlight=False)
                for line in wrong[:5]:
                    console.print(f"  {line}", highlight=False, markup=False)
                failed |= bool(wrong)
    except PortError as e:
        console.print(str(e), highlight=False, markup=False)
        sys.exit(2)
    sys.exit(1 if failed else 0)
