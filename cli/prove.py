"""``nbbs prove``: run the z3 obligations, with progress, a table and a total (``--json`` for machines)."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from nbbs.proofs._obligation import Proof


@click.command()
@click.option(
    "--depth-max",
    type=click.IntRange(1, 20),
    default=None,
    help="Prove the per-depth obligations for depths 1..D (default: 10 with --variant; 6 for "
    "counted's block of the default run).",
)
@click.option("--depth-min", type=click.IntRange(1, 20), default=1, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(2, None),
    default=None,
    help="Threads of the step-level invariant (the counting variants: 2 unless told, one z3 query "
    "per thread and program counter; five-bit variants: run their thread-modular check, which "
    "holds for any number).",
)
@click.option(
    "--steps-depth",
    type=click.IntRange(1, 4),
    default=None,
    help="Largest tree depth of the step-level proof (counted: 2 unless told, 3 is the deep run; "
    "top_down_node: 2 in the default run; with --variant top_down_node or top_down: none unless "
    "told; five-bit: 1 or 2).",
)
@click.option(
    "--steps-max-level",
    type=click.IntRange(0, 4),
    default=0,
    show_default=True,
    help="The counting variants' step-level proof: the level climbs stop at (max_level = depth - max_order).",
)
@click.option("--obligation", "name", default=None, help="Only obligations whose name starts with NAME.")
@click.option(
    "--variant",
    default=None,
    help="Prove this algorithm's obligations alone: counted (its whole catalogue, the most "
    "complete proof) | top_down_node | top_down | reference | corrected | ... (default: the "
    "shipped top_down_node's, then counted's to depth 6).",
)
@click.option(
    "--mutant",
    default=None,
    help="Prove a deliberately broken variant instead: expect failures (top_down_node's are "
    "named top_down_node:NAME).",
)
@click.option(
    "--every",
    type=click.Choice(["none", "frame", "attempt", "scan"]),
    default=None,
    help="counted's every-depth, any-number-of-threads obligations (counted_every, counted_close): "
    "the frame, cevery_safe and the closing family (cheap), also preservation, lock-freedom and "
    "linearization points in attempt mode (minutes), or also in scan mode (longer). Default: frame "
    "with --variant counted; none in the default run, which proves the shipped variant's (given: "
    "counted's block in the default run has them too).",
)
@click.option(
    "--top-down",
    type=click.Choice(["none", "frame", "lockfree", "all", "scan"]),
    default=None,
    help="The top-down variants' every-depth, any-number-of-threads obligations (topdown_every, "
    "topdown_close): the frame, safety, initial state, quiescence, the fold and the composition "
    "(cheap); also lock-freedom and the linearization points at every pc; also preservation of the "
    "invariant and the global lock-freedom measure at every pc (minutes); also all of that in scan "
    "mode (longer). Default: lockfree in the default run (top_down_node); all with --variant "
    "top_down_node or top_down; none with --variant counted (given: a block for each top-down "
    "variant after counted's).",
)
@click.option(
    "--symmetry",
    is_flag=True,
    help="The bounded step-level checks (csteps, clin; tnsteps, tsteps) for thread 0 only, plus the "
    "z3 proof (csym_*; tnsym_*, tsym_*) that every other thread's queries are thread 0's with the "
    "threads relabelled.",
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
    depth_max: int | None,
    depth_min: int,
    threads: int | None,
    steps_depth: int | None,
    steps_max_level: int,
    name: str | None,
    variant: str | None,
    mutant: str | None,
    every: str | None,
    top_down: str | None,
    symmetry: bool,
    uncapped: bool,
    as_json: bool,
    jobs: int,
) -> None:
    """Prove the shipped variant (top_down_node) for every depth and any number of threads, then
    counted's bit lemmas, spec lemmas, refinement of sequential alloc and free, per-node lemmas
    and step-level invariant; each block of the output names the variant it is about."""
    from rich import box
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from nbbs.cli.main import console
    from nbbs.proofs import obligations
    from nbbs.proofs._variant import VARIANTS, Variant
    from nbbs.proofs.mutants import COUNTED_MUTANTS, EVERY_MUTANTS, MUTANTS, SCAN_MUTANTS, top_down_mutants

    mutants = {**MUTANTS, **COUNTED_MUTANTS, **EVERY_MUTANTS, **SCAN_MUTANTS, **top_down_mutants()}
    subject: Variant | None = None
    if mutant is not None:
        if mutant not in mutants:
            raise click.BadParameter(f"unknown mutant {mutant!r}; one of: {', '.join(sorted(mutants))}")
        subject = mutants[mutant][1]
    elif variant is not None:
        if variant not in VARIANTS:
            from nbbs.cli.check import known_variant

            known_variant(variant)  # refuses an unknown or old spelling
            raise click.BadParameter(
                f"{variant!r} has no obligations of its own (the model checker refutes it); "
                f"one of: {', '.join(sorted(VARIANTS))}",
                param_hint="--variant",
            )
        subject = VARIANTS[variant]
    if subject is not None and not subject.counted and threads and (steps_depth or 1) > 2:
        raise click.BadParameter("the five-bit step-level check runs at depth 1 or 2 (--steps-depth)")
    blocks = [
        obligations.Block(b.variant, b.title, obligations.matching(b.obligations, name))
        for b in obligations.plan(
            subject,
            depth_max,
            depth_min,
            capped=not uncapped,
            steps_depth=steps_depth,
            threads=threads,
            steps_max_level=steps_max_level,
            every=every,
            top_down=top_down,
            symmetric=symmetry,
        )
    ]
    blocks = [b for b in blocks if b.obligations]
    if not blocks:
        raise click.BadParameter(f"no obligation matches {name!r}")
    done: list[tuple[obligations.Block, list[Proof]]] = []
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    ) as progress:
        bar = progress.add_task("prove", total=sum(len(b.obligations) for b in blocks))
        by_block: dict[int, list[Proof]] = {id(b): [] for b in blocks}
        for b, proof in obligations.run_blocks(blocks, jobs):
            progress.update(bar, description=f"{b.variant.name}: {proof.obligation}")
            by_block[id(b)].append(proof)
            progress.advance(bar)
        done = [(b, by_block[id(b)]) for b in blocks]
    wall = time.perf_counter() - started
    proofs = [p for _, got in done for p in got]
    # Each proof's CPU time, measured in whichever process proved it (forked or this one).
    cpu = sum(p.cpu_seconds for p in proofs)
    failed = [p for p in proofs if not p.proved]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "variant": subject.name if subject is not None else "default",
                    "wall_seconds": round(wall, 3),
                    "cpu_seconds": round(cpu, 3),
                    "z3_seconds": round(sum(p.seconds for p in proofs), 3),
                    "blocks": [
                        {
                            "variant": b.variant.name,
                            "title": b.title,
                            "obligations": len(got),
                            "not_proved": sum(not p.proved for p in got),
                            "cpu_seconds": round(sum(p.cpu_seconds for p in got), 3),
                        }
                        for b, got in done
                    ],
                    "proofs": [
                        {
                            "obligation": p.obligation,
                            "variant": p.variant,
                            "group": p.group,
                            "depth": p.depth,
                            "result": p.result,
                            "z3_seconds": round(p.seconds, 4),
                            "cpu_seconds": round(p.cpu_seconds, 4),
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
                f"[red]{p.obligation} ({p.variant}, depth {p.depth if p.depth is not None else 'any'}): "
                f"{p.result}"
            )
            console.print(p.report(), markup=False, highlight=False, soft_wrap=True)
        for b, got in done:
            # Fits 80 columns: only the obligation's name wraps.
            table = Table(title=b.title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
            table.add_column("obligation", overflow="fold", ratio=1)
            table.add_column("depth", justify="right", no_wrap=True, min_width=5)
            table.add_column("result", no_wrap=True, min_width=6)
            table.add_column("z3 time (s)", justify="right", no_wrap=True, min_width=11)
            for p in got:
                colour = "green" if p.proved else "red"
                depth = "any" if p.depth is None else str(p.depth)
                table.add_row(p.obligation, depth, f"[{colour}]{p.result}[/{colour}]", f"{p.seconds:.3f}")
            table.add_row(
                f"{b.variant.name}: {len(got)} obligations, {sum(not p.proved for p in got)} not proved",
                "",
                "",
                f"{sum(p.seconds for p in got):.2f}",
                style="bold",
            )
            console.print(table)
        for b, got in done:
            bad = sum(not p.proved for p in got)
            colour = "green" if not bad else "red"
            console.print(f"[{colour}]{b.variant.name}[/{colour}]: {len(got)} obligations, {bad} not proved")
        console.print(
            f"total: {len(proofs)} obligations, {len(failed)} not proved; wall time {wall:.1f} s, CPU "
            f"time {cpu:.1f} s summed over the proving processes (building the z3 terms in Python included)"
        )
    if mutant is not None:
        # A mutant must be caught: success means some obligation failed with a counterexample.
        sys.exit(0 if any(not p.vacuous for p in failed) else 1)
    sys.exit(1 if failed else 0)
