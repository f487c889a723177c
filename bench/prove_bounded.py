"""Benchmark: the bounded whole-state re-checks (``csteps_*``, ``clin_*``) of one configuration,
one obligation at a time, each result printed (and appended as a JSON line) as soon as it is
known, so a run stopped by its time limit still says how far it got.

Run (long: niced, memory-capped, one at a time on the shared 2-core machine):

    nice -n 10 prlimit --as=6000000000 python bench/prove_bounded.py --threads 4 --depth 3 \\
        --limit 2400 --out bench/results/bounded_T4_d3.jsonl
    nice -n 10 prlimit --as=6000000000 python bench/prove_bounded.py --threads 3 --depth 4 \\
        --limit 2400 --out bench/results/bounded_T3_d4.jsonl

``--obligation`` picks the obligations by name prefix (default: ``csteps``, ``clin`` and, with
``--symmetric``, ``csym``). ``--symmetric``: thread 0's per-pc queries only, plus
``counted_sym``'s proof (seconds) that every other thread's are thread 0's relabelled.
``--fingerprints``: print each query's fingerprint (sha256 of its z3 text) and prove nothing;
two runs whose fingerprints agree asked z3 the same question. ``--limit`` (seconds): no
obligation is started once it has passed (the one in
progress finishes, or is stopped by an outer ``timeout``). Each line: obligation, result, z3
seconds, CPU seconds of the process so far, wall seconds since the start.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

from nbbs.proofs import counted_lin, counted_steps, counted_sym
from nbbs.proofs._obligation import Obligation, prove
from nbbs.proofs._variant import COUNTED
from nbbs.proofs._z3 import term


def fingerprint(ob: Obligation) -> str:
    """The sha256 (first 16 hex digits) of the obligation's query text: premises, witness, cases
    and named claims as z3 s-expressions. Equal fingerprints mean z3 is asked the same question,
    so a result recorded under one can be reused for the other."""
    q = ob.build(COUNTED)
    h = hashlib.sha256()
    for part in (*q.premises, *q.witness, *(c for _, c in q.cases)):
        h.update(term(part).sexpr().encode())
    for name, c in q.claims:
        h.update(name.encode())
        h.update(term(c).sexpr().encode())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--depth", type=int, required=True)
    ap.add_argument("--max-level", type=int, default=0)
    ap.add_argument("--obligation", action="append", default=None, help="name prefix (repeatable)")
    ap.add_argument("--limit", type=float, default=float("inf"), help="start no obligation after this")
    ap.add_argument("--out", type=Path, default=None, help="append one JSON line per obligation")
    ap.add_argument(
        "--fingerprints", action="store_true", help="print each obligation's query fingerprint, prove none"
    )
    ap.add_argument(
        "--symmetric",
        action="store_true",
        help="thread 0's queries only, plus the symmetry obligations (csym_*) covering the others",
    )
    args = ap.parse_args()
    prefixes = tuple(args.obligation or ("csteps", "clin", "csym"))
    sym = args.symmetric
    todo = counted_steps.obligations(args.depth, args.threads, args.max_level, symmetric=sym)
    todo += counted_lin.obligations(args.depth, args.threads, args.max_level, symmetric=sym)
    if sym:
        todo = counted_sym.obligations(args.depth, args.threads, args.max_level) + todo
    todo = [ob for ob in todo if ob.name.startswith(prefixes)]
    started = time.perf_counter()
    print(f"{len(todo)} obligations, {args.threads} threads, depth {args.depth}", flush=True)
    if args.fingerprints:
        for ob in todo:
            print(json.dumps({"obligation": ob.name, "fingerprint": fingerprint(ob)}), flush=True)
        return
    done = 0
    for ob in todo:
        if time.perf_counter() - started > args.limit:
            break
        digest = fingerprint(ob)
        p = prove(ob, COUNTED)
        done += 1
        row = {
            "obligation": p.obligation,
            "fingerprint": digest,
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
