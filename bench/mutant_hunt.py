"""Which strategy finds which defect, and after how many schedules.

For every code mutant (``check.impl_mutants``) and transition mutant (``check.mutants``, of the
published and of the ``counted`` transitions), and
for the published (reference) variant, each strategy explores the same scenarios in the same
order until the first failing execution:

* random, pct (d = 3): up to ``--per-scenario`` schedules per scenario, seeds 0, 1, ...;
* exhaustive: each scenario with at most 3 preemptions, sleep sets on;
* hypothesis: ``hypothesis.find`` over drawn scenarios and preemption points (its own scenarios).

The mutants run on ``check.impl_mutants.SUITE``, where the unmutated allocator passes every
check with up to 3 preemptions; a failure counts only if the same schedule passes on the
unmutated allocator (or does not fit it), so every hit is the mutant's own defect.

    python bench/mutant_hunt.py [--per-scenario 300] [--cap 20000]

Prints a Markdown table (schedules until the first failure; "-" = not found within the cap)
and writes ``bench/out/mutant_hunt.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

from hypothesis import HealthCheck, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from nbbs.check.explore import (
    ExploreConfig,
    ExplorerError,
    Scenario,
    explore,
    parse,
    preemption_points,
    run_points,
    run_schedule,
    scenarios,
)
from nbbs.check.impl_mutants import IMPL_MUTANTS, SUITE, reference_of
from nbbs.check.mutants import COUNTED_MUTANTS, TRANSITION_MUTANTS

OUT = Path(__file__).resolve().parent / "out"
REFERENCE_SCENARIOS = ("d3-m3-{}:a0@0+f0,a0@1+f0", "d3-m3-{}:a1@3+f0,a1@2+a1@1,a2@0+f0", *SUITE)
"""For the variants: frees skip ``NBBS.free``'s argument check (``-U``) in the ``reference`` row, so
what is found is the algorithm's; the ``counted: free check`` row keeps the check and hunts its race."""


def _texts(name: str) -> tuple[str, ...]:
    return REFERENCE_SCENARIOS if name in ("reference", "counted") else SUITE


def _config(name: str, **kw: object) -> ExploreConfig:
    # Transition mutants change the reference bundle, which leaves stale COAL bits.
    q = "stale_coal" if name in TRANSITION_MUTANTS else "obtainable"
    return ExploreConfig(refinement=False, quiescent=q, **kw)  # type: ignore[arg-type]


def _base(name: str) -> str | None:
    if name in ("reference", "counted"):
        return None
    if name in IMPL_MUTANTS:
        return reference_of(name)
    return "reference" if name in TRANSITION_MUTANTS else "counted"


def _own(name: str, schedule: str, cfg: ExploreConfig) -> bool:
    """The failure is the mutant's: the base allocator passes the same schedule (or cannot follow it)."""
    base = _base(name)
    if base is None:
        return True
    head, rest = schedule.split(":", 1)
    parts = head.split("-")
    parts[2] = base
    try:
        return run_schedule("-".join(parts) + ":" + rest, config=cfg).failure is None
    except ExplorerError:
        return True


def hunt(
    name: str, strategy: str, texts: tuple[str, ...], per_scenario: int, cap: int
) -> tuple[int | None, float]:
    started = time.perf_counter()
    total = 0
    scenarios_ = [parse(t.format(name) + ":")[0] for t in texts]
    if name == "reference":
        scenarios_ = [dataclasses.replace(sc, checked_free=False) for sc in scenarios_]
    rounds = 1 if strategy == "exhaustive" else max(1, cap // (per_scenario * len(scenarios_)))
    for r in range(rounds):
        for sc in scenarios_:
            cfg = _config(
                name,
                strategy=strategy,
                seed=r,
                max_schedules=per_scenario if strategy != "exhaustive" else cap,
                preemption_bound=3,
                stop_on_failure=False,
            )
            rep = explore(sc, cfg)
            for i, (schedule, _) in enumerate(rep.failures):
                if _own(name, schedule, cfg):
                    return total + rep.failed_at[i], time.perf_counter() - started
            total += rep.schedules
            if total >= cap:
                return None, time.perf_counter() - started
    return None, time.perf_counter() - started


def hunt_hypothesis(name: str, cap: int, checked_free: bool = True) -> tuple[int | None, float]:
    started = time.perf_counter()
    calls = [0]
    base = _base(name)
    cfg = _config(name)

    def fails(case: tuple[Scenario, dict[int, int]]) -> bool:
        calls[0] += 1
        sc, points = case
        if run_points(sc, points, cfg).failure is None:
            return False
        if base is None:
            return True
        unmutated = Scenario(sc.depth, sc.threads, sc.max_order, base, (), sc.checked_free)
        return run_points(unmutated, points, cfg).failure is None

    try:
        find(
            st.tuples(scenarios(name, checked_free=checked_free), preemption_points()),
            fails,
            settings=settings(
                max_examples=cap, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
            ),
        )
    except NoSuchExample:
        return None, time.perf_counter() - started
    return calls[0], time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-scenario", type=int, default=300)
    ap.add_argument("--cap", type=int, default=20_000)
    args = ap.parse_args()
    names = ["reference", "counted", *IMPL_MUTANTS, *TRANSITION_MUTANTS, *COUNTED_MUTANTS]
    rows = []
    print("| defect | random | pct (d=3) | exhaustive (≤3 preemptions) | hypothesis |")
    print("|---|---|---|---|---|")
    for name in names:
        texts = _texts(name)
        row: dict[str, object] = {"defect": name if name != "counted" else "counted: free check"}
        cells = []
        for strategy in ("random", "pct", "exhaustive"):
            n, secs = hunt(name, strategy, texts, args.per_scenario, args.cap)
            row[strategy] = {"schedules": n, "seconds": round(secs, 2)}
            cells.append("-" if n is None else f"{n} ({secs:.2f} s)")
        n, secs = hunt_hypothesis(name, 3000, checked_free=name != "reference")
        row["hypothesis"] = {"examples": n, "seconds": round(secs, 2)}
        cells.append("-" if n is None else f"{n} ({secs:.2f} s)")
        rows.append(row)
        print(f"| {row['defect']} | " + " | ".join(cells) + " |", flush=True)
    OUT.mkdir(exist_ok=True)
    machine = {"python": platform.python_version(), "cores": os.cpu_count()}
    (OUT / "mutant_hunt.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
