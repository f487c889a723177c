"""Controlled mode on the Python reference port: its speed, and which broken ports it catches how fast.

``rate``: complete, checked schedules per second of one scenario (depth 3, two threads each
doing alloc(order 0) + free, ``counted``), in process (greenlets over ``NBBS``) and through the
reference port (``python -m nbbs.conform._controlled_server``: one OS thread per logical
thread, a pipe round trip per access), every check on.

``mutants``: every mutant the server accepts (``--mutant``), run as a port on the scenarios of
``check.impl_mutants.SUITE`` with bounded exhaustive search (at most 3 preemptions), with and
without the refinement check: schedules until the first failure, which check found it, and
whether the same schedule passes on the unmutated port (so the failure is the mutant's own).

    python bench/controlled_bench.py [rate] [mutants] [--seconds 5]

Writes ``bench/results/controlled.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from nbbs.check.explore import ExploreConfig, ExplorerError, explore, parse
from nbbs.check.impl_mutants import SUITE
from nbbs.check.mutants import TRANSITION_MUTANTS
from nbbs.conform import controlled as c
from nbbs.conform._controlled_server import mutants

OUT = Path(__file__).resolve().parent / "results" / "controlled.json"
SCENARIO = "d3-m3-counted:a0@0+f0,a0@1+f0"


def variant_of_mutant(name: str) -> str:
    """The variant a mutant breaks (the one the port claims)."""
    if name in TRANSITION_MUTANTS or name == "set_instead_of_clear":
        return "reference"
    if name == "release_before_mark":
        return "corrected"
    return "counted"


def rate(seconds: float) -> list[dict[str, Any]]:
    rows = []
    sc = parse(SCENARIO)[0]
    for strategy in ("random", "pct", "exhaustive"):
        local = explore(sc, ExploreConfig(strategy=strategy, max_schedules=10**9, seconds=seconds))  # type: ignore[arg-type]
        cfg = c.ControlledConfig(strategy, seconds=seconds, schedules=10**9, scenarios=(SCENARIO,))  # type: ignore[arg-type]
        remote = c.run(c.reference_port(), cfg)
        rows.append(
            {
                "strategy": strategy,
                "in_process_per_s": round(local.rate),
                "port_per_s": round(remote.reports[0].rate),
                "port_ok": remote.ok,
            }
        )
    return rows


def hunt(name: str, refinement: bool) -> dict[str, Any]:
    variant = variant_of_mutant(name)
    texts = tuple(t.format(variant.replace("-", "_")) for t in SUITE)
    # The five-bit variants leave stale COAL bits by design: tolerate them, as bench/mutant_hunt.py does.
    q = "stale_coal" if variant == "reference" else "obtainable"
    started = time.perf_counter()
    total = 0
    for text in texts:
        cfg = c.ControlledConfig(
            "exhaustive",
            preemption_bound=3,
            schedules=5000,
            scenarios=(text,),
            refinement=refinement,
            quiescent=q,
        )
        res = c.run(c.reference_port(name), cfg)
        rep = res.reports[0]
        if not rep.ok:
            schedule, why = rep.failures[0]
            assert rep.first_failure_at is not None
            try:
                base, _ = c.replay(c.reference_port(), schedule, cfg)
                own = base.failure is None
            except ExplorerError:  # the schedule does not fit the unmutated port: the mutant's own
                own = True
            return {
                "mutant": name,
                "variant": variant,
                "refinement": refinement,
                "schedules": total + rep.first_failure_at,
                "check": why.split(":", 1)[0],
                "own": own,
                "schedule": schedule,
                "seconds": round(time.perf_counter() - started, 2),
            }
        total += rep.schedules
    return {
        "mutant": name,
        "variant": variant,
        "refinement": refinement,
        "schedules": None,
        "check": "-",
        "own": None,
        "schedule": "",
        "seconds": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parts", nargs="*", default=["rate", "mutants"])
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    # Keep the other part's figures when only one part is re-run.
    result: dict[str, Any] = json.loads(OUT.read_text()) if OUT.exists() else {}
    result |= {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    if "rate" in args.parts:
        result["rate"] = rate(args.seconds)
        result["rate_load"] = os.getloadavg()[0]
        print("| strategy | in process (schedules/s) | reference port (schedules/s) |\n|---|---|---|")
        for r in result["rate"]:
            print(f"| {r['strategy']} | {r['in_process_per_s']:,} | {r['port_per_s']:,} |")
    if "mutants" in args.parts:
        rows = [hunt(name, refinement) for name in sorted(mutants()) for refinement in (True, False)]
        result["mutants"] = rows
        result["mutants_load"] = os.getloadavg()[0]
        print("\n| mutant (as a port) | variant | refinement | schedules | check | own |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['mutant']} | {r['variant']} | {'on' if r['refinement'] else 'off'} | "
                f"{r['schedules'] if r['schedules'] is not None else '-'} | {r['check']} | {r['own']} |"
            )
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
