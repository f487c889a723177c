"""Benchmark: the bounded whole-state re-checks (``csteps_*``, ``clin_*``) of one configuration,
one obligation at a time, each result printed (and appended as a JSON line) as soon as it is
known, so a run stopped by its time limit still says how far it got.

Run (long: niced, memory-capped, one at a time on the shared 2-core machine):

    nice -n 10 prlimit --as=6000000000 python bench/prove_bounded.py --threads 4 --depth 3 \\
        --limit 2400 --out bench/results/bounded_T4_d3.jsonl
    nice -n 10 prlimit --as=6000000000 python bench/prove_bounded.py --threads 3 --depth 4 \\
        --limit 2400 --out bench/results/bounded_T3_d4.jsonl

``--obligation`` picks the obligations by name prefix (``csteps`` and ``clin``, the default,
run both). ``--limit`` (seconds): no obligation is started once it has passed (the one in
progress finishes, or is stopped by an outer ``timeout``). Each line: obligation, result, z3
seconds, CPU seconds of the process so far, wall seconds since the start.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nbbs.proofs import counted_lin, counted_steps
from nbbs.proofs._obligation import prove
from nbbs.proofs._variant import COUNTED


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--depth", type=int, required=True)
    ap.add_argument("--max-level", type=int, default=0)
    ap.add_argument("--obligation", action="append", default=None, help="name prefix (repeatable)")
    ap.add_argument("--limit", type=float, default=float("inf"), help="start no obligation after this")
    ap.add_argument("--out", type=Path, default=None, help="append one JSON line per obligation")
    args = ap.parse_args()
    prefixes = tuple(args.obligation or ("csteps", "clin"))
    todo = counted_steps.obligations(args.depth, args.threads, args.max_level)
    todo += counted_lin.obligations(args.depth, args.threads, args.max_level)
    todo = [ob for ob in todo if ob.name.startswith(prefixes)]
    started = time.perf_counter()
    print(f"{len(todo)} obligations, {args.threads} threads, depth {args.depth}", flush=True)
    done = 0
    for ob in todo:
        if time.perf_counter() - started > args.limit:
            break
        p = prove(ob, COUNTED)
        done += 1
        row = {
            "obligation": p.obligation,
            "depth": args.depth,
            "threads": args.threads,
            "result": p.result,
            "z3_seconds": round(p.seconds, 2),
            "cpu_seconds_so_far": round(time.process_time(), 1),
            "wall_seconds_so_far": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(row), flush=True)
        if not p.proved:
            print(p.report(), flush=True)
        if args.out is not None:
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
    print(
        f"done {done} of {len(todo)}: wall {time.perf_counter() - started:.1f} s, "
        f"CPU {time.process_time():.1f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
