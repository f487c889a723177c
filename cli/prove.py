"""``nbbs prove``: run the z3 obligations, with progress, a table and a total (``--json`` for machines)."""

from __future__ import annotations

import json
import os
import sys
import time

import click


@click.command()
@click.option(
    "--depth-max",
    type=click.IntRange(1, 20),
    default=10,
    show_default=True,
    help="Prove the per-depth obligations for depths 1..D.",
)
@click.option("--depth-min", type=click.IntRange(1, 20), default=1, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(2, None),
    default=None,
    help="Threads of the step-level invariant (counted: 2 unless told, one z3 query per thread and "
    "program counter; five-bit variants: run their thread-modular check, which holds for any number).",
)
@click.option(
    "--steps-depth",
    type=click.IntRange(1, 4),
    default=None,
    help="Largest tree depth of the step-level proof (counted: 2 unless told, 3 is the deep run; "
    "five-bit: 1 or 2).",
)
@click.option(
    "--steps-max-level",
    type=click.IntRange(0, 4),
    default=0,
    show_default=True,
    help="counted's step-level proof: the level climbs stop at (max_level = depth - max_order).",
)
@click.option("--obligation", "name", default=None, help="Only obligations whose name starts with NAME.")
@click.option(
    "--variant", default=None, help="Algorithm to prove: reference | corrected | ... (default: shipped)."
)
@click.option("--mutant", default=None, help="Prove a deliberately broken variant instead: expect failures.")
@click.option(
    "--every",
    type=click.Choice(["none", "frame", "attempt", "scan"]),
    default="frame",
    show_default=True,
    help="counted's every-depth, any-number-of-threads obligations (counted_every): only the frame "
    "and cevery_safe (cheap), also preservation, lock-freedom and linearization points in attempt "
    "mode (minutes), or also frame, preservation and lock-freedom in scan mode (longer).",
)
@click.option(
    "--top-down",
    type=click.Choice(["none", "frame", "all", "scan"]),
    default="none",
    show_default=True,
    help="top-down-node's and top-down's every-depth, any-number-of-threads obligations "
    "(topdown_every, topdown_close): the frame, safety, initial state, quiescence, the fold and "
    "the composition (cheap), also preservation of the invariant, lock-freedom and "
    "linearization points at every pc in attempt mode (minutes), or also in scan mode (longer).",
)
@click.option(
    "--symmetry",
    is_flag=True,
    help="counted's bounded step-level checks (csteps, clin) for thread 0 only, plus the z3 proof "
    "(csym_*) that every other thread's queries are thread 0's with the threads relabelled.",
)
@click.option("--uncapped", is_flag=True, help="Run whole-tree obligations at every depth (slow above 8).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default=True,
    help="Processes proving side by side (one z3 solver each).",
)
def prove(
    depth_max: int,
    depth_min: int,
    threads: int | None,
    steps_depth: int | None,
    steps_max_level: int,
    name: str | None,
    variant: str | None,
    mutant: str | None,
    every: str,
    top_down: str,
    symmetry: bool,
    uncapped: bool,
    as_json: bool,
    jobs: int,
) -> None:
    """Prove the bit lemmas, the spec lemmas, the refinement of sequential alloc and free,
    the per-node lemmas that carry them to every depth and, for the shipped ``counted`` variant,
    the step-level invariant (one z3 query per thread and program counter)."""
    from rich import box
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from nbbs.cli.main import console
    from nbbs.proofs import obligations
    from nbbs.proofs._variant import SHIPPED, VARIANTS
    from nbbs.proofs.mutants import COUNTED_MUTANTS, EVERY_MUTANTS, MUTANTS, SCAN_MUTANTS

    mutants = {**MUTANTS, **COUNTED_MUTANTS, **EVERY_MUTANTS, **SCAN_MUTANTS}
    if mutant is not None:
        if mutant not in mutants:
            raise click.BadParameter(f"unknown mutant {mutant!r}; one of: {', '.join(sorted(mutants))}")
        subject = mutants[mutant][1]
    elif variant is not None:
        if variant not in VARIANTS:
            from nbbs.cli.check import known_variant

            known_variant(variant)
        subject = VARIANTS[variant]
    else:
        subject = SHIPPED
    if subject.counted:
        # The shipped variant's step-level invariant runs by default (2 threads, depths 1-2).
        steps_at: int | None = steps_depth or 2
    else:
        steps_at = (steps_depth or 1) if threads else None
        if steps_at is not None and steps_at > 2:
            raise click.BadParameter("the five-bit step-level check runs at depth 1 or 2 (--steps-depth)")
    todo = obligations.matching(
        obligations.catalogue(
            depth_max,
            depth_min,
            capped=not uncapped,
            steps_depth=steps_at,
            variant=subject,
            threads=threads or 2,
            steps_max_level=steps_max_level,
            every=every,
            top_down=top_down,
            symmetric=symmetry,
        ),
        name,
    )
    if not todo:
        raise click.BadParameter(f"no obligation matches {name!r}")
    proofs = []
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    ) as progress:
        bar = progress.add_task("prove", total=len(todo))
        for ob, proof in zip(todo, obligations.run_all(todo, subject, jobs), strict=True):
            progress.update(bar, description=ob.label)
            proofs.append(proof)
            progress.advance(bar)
    wall = time.perf_counter() - started
    # Each proof's CPU time, measured in whichever process proved it (forked or this one).
    cpu = sum(p.cpu_seconds for p in proofs)
    failed = [p for p in proofs if not p.proved]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "variant": subject.name,
                    "wall_seconds": round(wall, 3),
                    "cpu_seconds": round(cpu, 3),
                    "z3_seconds": round(sum(p.seconds for p in proofs), 3),
                    "proofs": [
                        {
                            "obligation": p.obligation,
                            "group": p.group,
                            "depth": p.depth,
                            "result": p.result,
                            "z3_seconds": round(p.seconds, 4),
                            "broken": list(p.broken),
                            "counterexample": p.counterexample,
                        }
                        for p in proofs
                    ],
                },
                indent=1,
            )
        )
    else:
        for p in failed:
            console.rule(
                f"[red]{p.obligation} (depth {p.depth if p.depth is not None else 'any'}): {p.result}"
            )
            console.print(p.report(), markup=False, highlight=False, soft_wrap=True)
        # Fits 80 columns: only the obligation's name wraps.
        table = Table(
            title=f"nbbs prove ({subject.name})", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
        )
        table.add_column("obligation", overflow="fold", ratio=1)
        table.add_column("depth", justify="right", no_wrap=True, min_width=5)
        table.add_column("result", no_wrap=True, min_width=6)
        table.add_column("z3 time (s)", justify="right", no_wrap=True, min_width=11)
        for p in proofs:
            colour = "green" if p.proved else "red"
            depth = "any" if p.depth is None else str(p.depth)
            table.add_row(p.obligation, depth, f"[{colour}]{p.result}[/{colour}]", f"{p.seconds:.3f}")
        table.add_row(
            f"total: {len(proofs)} obligations, {len(failed)} not proved",
            "",
            "",
            f"{sum(p.seconds for p in proofs):.2f}",
            style="bold",
        )
        console.print(table)
        console.print(
            f"wall time {wall:.1f} s, CPU time {cpu:.1f} s summed over the proving processes "
            "(building the z3 terms in Python included)"
        )
    if mutant is not None:
        # A mutant must be caught: success means some obligation failed with a counterexample.
        sys.exit(0 if any(not p.vacuous for p in failed) else 1)
    sys.exit(1 if failed else 0)
