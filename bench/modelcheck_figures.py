"""Model-checking coverage figures: states, transitions, seconds, states/s per configuration.

Runs the checker on each configuration of issue 4 for one variant and writes
``bench/results/modelcheck-<variant>.json`` and a Markdown table on stdout.

    python bench/modelcheck_figures.py                       # the shipped variant, the default list
    python bench/modelcheck_figures.py --variant reference   # finds the reference's defects
    python bench/modelcheck_figures.py --only 4x2            # one configuration (threads x depth)
    python bench/modelcheck_figures.py --variant top_down_node --only 4x2 --engine vec --memory 3
                                                             # the vec engine, seen runs past 3 GiB on disk

Rows of configurations not run this time are kept from the existing results file, so one
configuration can be re-run alone.

Machine of record: 2 cores, CPython 3.11, shared with other jobs (timings are inflated).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

from nbbs.check.modelcheck import PROPERTIES, Config, Result, check, check_vec
from nbbs.model import bits

CONFIGS = [(2, 1), (2, 2), (2, 3), (3, 1), (3, 2), (4, 2)]


def _progress(r: Result, frontier: int) -> None:
    """How far a long search got (stderr, at most every 30 s): it may not finish in the time at hand."""
    global _last
    if r.seconds - _last >= 30:
        _last = r.seconds
        print(
            f"[{time.strftime('%H:%M:%S')}] {r.seconds:.0f} s: {r.states:,} states in complete levels, "
            f"{r.transitions:,} transitions, frontier left {frontier:,}, "
            f"violations {sorted(r.violations) or 'none'}",
            file=sys.stderr,
            flush=True,
        )


_last = 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default=bits.DEFAULT_VARIANT)
    ap.add_argument("--only", action="append", default=[], help="threads x depth, e.g. 3x2 (repeatable)")
    ap.add_argument("--max-states", type=int, default=None)
    ap.add_argument("--mode", default="attempt", choices=["attempt", "scan"])
    ap.add_argument("--engine", default="python", choices=["python", "vec"])
    ap.add_argument("--memory", type=float, default=None, help="vec: GiB of seen runs in RAM")
    args = ap.parse_args()
    configs = [tuple(int(x) for x in o.split("x")) for o in args.only] or CONFIGS
    variant, label = args.variant.replace("-", "_"), args.variant.replace("_", "-")
    rows = []
    for threads, depth in configs:
        cfg = Config(threads, depth, variant=variant, mode=args.mode, max_states=args.max_states)
        started = time.perf_counter()
        if args.engine == "vec":
            budget = None if args.memory is None else int(args.memory * 2**30)
            r = check_vec(cfg, _progress, memory_budget=budget)
        else:
            r = check(cfg)
        rows.append(
            {
                "threads": threads,
                "depth": depth,
                "variant": label,
                "mode": args.mode,
                "states": r.states,
                "transitions": r.transitions,
                "initial_states": r.initial_states,
                "quiescent_states": r.quiescent,
                "quiescent_with_coal": r.stale_quiescent,
                "seconds": round(time.perf_counter() - started, 1),
                "states_per_second": round(r.rate),
                "complete": r.complete,
                "engine": args.engine,
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "violations": {p: v.message for p, v in r.violations.items()},
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out = Path(__file__).parent / "results" / f"modelcheck-{label}-{args.mode}.json"
    out.parent.mkdir(exist_ok=True)
    if out.exists():
        ran = {(row["threads"], row["depth"]) for row in rows}
        kept = [
            row for row in json.loads(out.read_text())["rows"] if (row["threads"], row["depth"]) not in ran
        ]
        rows = sorted(kept + rows, key=lambda row: (row["threads"], row["depth"]))
    machine = f"{platform.machine()}, CPython {platform.python_version()}, 2 cores shared with other jobs"
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    head = ["threads", "depth", "states", "transitions", "seconds", "states/s", "complete", *PROPERTIES]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        verdict = ["FAILS" if p in row["violations"] else "ok" for p in PROPERTIES]
        cells = [
            row["threads"],
            row["depth"],
            f"{row['states']:,}",
            f"{row['transitions']:,}",
            row["seconds"],
            f"{row['states_per_second']:,}",
            "yes" if row["complete"] else "no",
            *verdict,
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
