"""Every interleaving of random 3-thread scenarios at depth 3, where the full search cannot go.

The full model-checking search stops at 2 threads for depth 3 (3 threads would take hundreds of
millions of states). Scenario mode (``Config.scenario``) searches every interleaving of given
operations instead; this script draws random scenarios of the shape that broke ``corrected``
(each thread allocates a block, frees it and allocates again, or fewer operations) and checks
each with all four properties, from the empty tree and from every initial live set.

    python bench/scenario_sweep.py                          # the shipped variant, 300 scenarios
    python bench/scenario_sweep.py --variant corrected      # how often the five-bit repair fails
    python bench/scenario_sweep.py --count 2000 --seed 7
    python bench/scenario_sweep.py --skip 40 --count 100   # scenarios 41-140 of the same draw

Prints one line per failing scenario, then a summary (scenarios, states, seconds, failures by
property) and writes ``bench/results/scenario-sweep-<variant>-t<threads>-d<depth>-<initial>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path

from nbbs.check.modelcheck import SWEEP_SEED, Config, check, random_scenario
from nbbs.model import bits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default=bits.DEFAULT_VARIANT)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--skip", type=int, default=0, help="draw and skip this many scenarios first")
    ap.add_argument("--seed", type=int, default=SWEEP_SEED)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--threads", type=int, default=3)
    ap.add_argument("--initial", default="empty", choices=["empty", "all"])
    args = ap.parse_args()
    rng = random.Random(args.seed)
    for _ in range(args.skip):  # the same draw as a run from the start, continued
        random_scenario(rng, args.depth, args.threads)
    variant, label = args.variant.replace("-", "_"), args.variant.replace("_", "-")
    started = time.perf_counter()
    states, failed = 0, Counter[str]()
    failures = []
    for k in range(args.count):
        ops = random_scenario(rng, args.depth, args.threads)
        r = check(Config(args.threads, args.depth, variant=variant, scenario=ops, initial=args.initial))
        states += r.states
        # How far a long sweep got, should it not finish in the time at hand.
        elapsed = time.perf_counter() - started
        done = f"[{args.skip + k + 1}/{args.skip + args.count}]"
        print(f"{done} {states:,} states, {elapsed:.0f} s", file=sys.stderr, flush=True)
        if r.violations:
            failed.update(r.violations.keys())
            text = "; ".join(", ".join(f"{what} {n}" for what, n in t) for t in ops)
            failures.append({"scenario": text, "violations": {p: v.message for p, v in r.violations.items()}})
            print(f'FAILS {sorted(r.violations)}: --scenario "{text}"', flush=True)
    seconds = time.perf_counter() - started
    summary = {
        "machine": f"{platform.machine()}, CPython {platform.python_version()}, 2 cores",
        "variant": label,
        "depth": args.depth,
        "threads": args.threads,
        "initial": args.initial,
        "seed": args.seed,
        "scenarios": args.count,
        "skipped_first": args.skip,
        "states": states,
        "seconds": round(seconds, 1),
        "failing_scenarios": len(failures),
        "by_property": dict(failed),
        "failures": failures[:50],
    }
    part = f"-from{args.skip + 1}" if args.skip else ""
    name = f"scenario-sweep-{label}-t{args.threads}-d{args.depth}-{args.initial}{part}.json"
    out = Path(__file__).parent / "results" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"{label}: {args.count} scenarios ({args.threads} threads, depth {args.depth}, initial "
        f"{args.initial}), {states:,} states in {seconds:.1f} s; failing: {len(failures)} {dict(failed)}"
    )


if __name__ == "__main__":
    main()
