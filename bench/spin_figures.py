"""SPIN against the model checker: states, transitions and time per configuration, side by side.

For each configuration (threads x depth, the shipped variant, attempt mode, every initial set
of live blocks, all four properties) it runs ``nbbs check``'s engine and SPIN on the model
generated from the step machines, checks that SPIN's counts are ours with the thread
symmetry undone, and writes ``bench/results/spin-<variant>.json`` and a Markdown table.

    python bench/spin_figures.py                         # the default list
    python bench/spin_figures.py --only 3x2 --no-ours    # SPIN alone (no comparison)
    python bench/spin_figures.py --only 2x3 --bitstate 26

Machine of record: 2 cores, CPython 3.11, shared with other jobs (timings are inflated).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from nbbs.check import spin
from nbbs.check._mc import Checker, Config
from nbbs.model import bits

CONFIGS = [(2, 1), (3, 1), (2, 2), (3, 2), (2, 3)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default=bits.DEFAULT_VARIANT)
    ap.add_argument("--only", action="append", default=[], help="threads x depth, e.g. 3x2 (repeatable)")
    ap.add_argument("--no-ours", action="store_true", help="Run SPIN only.")
    ap.add_argument("--bitstate", type=int, default=None, help="SPIN's bitstate search in 2**N bits.")
    ap.add_argument("--hash-bits", type=int, default=24, help="log2 of SPIN's hash table slots.")
    args = ap.parse_args()
    configs = [tuple(int(x) for x in o.split("x")) for o in args.only] or CONFIGS
    rows = []
    for threads, depth in configs:
        cfg = Config(threads, depth, variant=args.variant)
        row: dict[str, object] = {"threads": threads, "depth": depth, "variant": args.variant}
        if not args.no_ours:
            started = time.perf_counter()
            c = Checker(cfg)
            r = c.run()
            seconds = time.perf_counter() - started
            states, transitions = spin.symmetric_count(c.sp, c.states)
            row["ours"] = {
                "states": r.states,
                "transitions": r.transitions,
                "states_symmetry_undone": states,
                "transitions_symmetry_undone": transitions,
                "seconds": round(seconds, 1),
                "states_per_second": round(r.states / seconds),
                "ok": r.ok,
            }
        run = spin.run(cfg, bitstate=args.bitstate, hash_bits=args.hash_bits)
        search = run.timings.get("search", 0.0)
        row["spin"] = {
            "stored": run.stored,
            "transitions": run.spin_transitions,
            "states": run.result.states,
            "model_transitions": run.result.transitions,
            "depth": run.depth,
            "seconds": {k: round(v, 1) for k, v in run.timings.items()},
            "states_per_second_search": round(run.stored / search) if search else None,
            "complete": run.result.complete,
            "violations": {p: v.message for p, v in run.result.violations.items()},
            "bitstate": args.bitstate,
            "hash_factor": run.hash_factor,
            "omission": run.omission,
        }
        if not args.no_ours and args.bitstate is None:
            ours = row["ours"]
            assert isinstance(ours, dict)
            row["equal"] = (run.result.states, run.result.transitions) == (
                ours["states_symmetry_undone"],
                ours["transitions_symmetry_undone"],
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
    suffix = "" if args.bitstate is None else f"-bitstate{args.bitstate}"
    out = Path(__file__).parent / "results" / f"spin-{args.variant}{suffix}.json"
    old = json.loads(out.read_text())["rows"] if out.exists() else []
    done = {(r["threads"], r["depth"]) for r in rows}
    rows = [r for r in old if (r["threads"], r["depth"]) not in done] + rows
    rows.sort(key=lambda r: (r["threads"], r["depth"]))
    meta = {
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "command": "python bench/spin_figures.py " + " ".join(f"--only {t}x{d}" for t, d in configs),
    }
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    cols = ["threads", "depth", "ours: states", "unreduced", "SPIN: states", "equal", "ours s", "SPIN s"]
    print("\n| " + " | ".join(cols) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        o, s = r.get("ours", {}), r["spin"]
        assert isinstance(o, dict) and isinstance(s, dict)
        print(
            f"| {r['threads']} | {r['depth']} | {_n(o.get('states'))} "
            f"| {_n(o.get('states_symmetry_undone'))} | {_n(s['states'])} | {r.get('equal', '-')} "
            f"| {o.get('seconds', '-')} | "
            f"{sum(s['seconds'].values()):.1f} ({s['seconds'].get('search', 0)}) |"
        )


def _n(x: object) -> str:
    return f"{x:,}" if isinstance(x, int) else "-"


if __name__ == "__main__":
    main()
