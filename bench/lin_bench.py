"""How long linearizability takes on long histories: the near-linear search, and the old one for scale.

    python bench/lin_bench.py                        # 1k .. 1M operations (a few minutes)
    python bench/lin_bench.py --sizes 1000,10000 --old 1000,4000,10000 --chained 0

Four measurements, written to ``bench/results/lin_bench.json`` with the machine, the date, the
command and the load average beside them:

``stress``   PORTING.md's ``stress`` on ``NBBS(6)`` (2 real threads, alloc of a random order or
             free of a held block, half the time each), the records checked by
             ``check_stress_history``: the time a ``nbbs conform --stress`` run spends deciding.
``old``      the same histories as ``spec`` operations, ``check_allocator`` against the search as
             it was before (``tests/lin_reference.py``), which grows quadratically.
``chained``  two clients whose calls always overlap (nothing is ever quiescent, so the whole
             history is one segment): the worst case for the segments, not for the search.
``wide``     the adversarial case: many operations in flight at once and no linearization; the
             answer must be ``unknown`` when the time limit runs out, not a hang.

Times are wall-clock seconds (``perf_counter``) and CPU seconds (``process_time``) of this
process; the machine is shared, so wall time is inflated by the load shown. Generating a
history (real threads on the Python allocator) is timed separately and not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nbbs.check import _lin_search, _lin_stress
from nbbs.check.linearizability import Operation, Result, check_allocator, check_stress_history
from nbbs.impl.arena import Arena
from nbbs.impl.nbbs import NBBS
from nbbs.model import geometry as g
from nbbs.model import spec as sp

OUT = Path(__file__).resolve().parent / "results" / "lin_bench.json"
DEPTH = 6
SWITCH = 1e-5
"""The GIL switch interval while a stress history is generated (seconds)."""


def stress(threads: int, ops: int, seed: int) -> list[dict[str, Any]]:
    """PORTING.md's ``stress THREADS OPS SEED`` on ``NBBS(DEPTH)``: one record per completed call."""
    heap = NBBS(DEPTH)
    out: list[dict[str, Any]] = []
    switch = sys.getswitchinterval()
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work(t: int) -> None:
        rng = random.Random(seed * 1000 + t)
        held: list[tuple[int, int]] = []
        mine = []
        clock = time.perf_counter_ns
        barrier.wait()
        for _ in range(ops):
            if held and rng.random() < 0.5:
                address, order = held.pop(rng.randrange(len(held)))
                call = clock()
                heap.free(address, order)
                ret = clock()
                mine.append(
                    {
                        "thread": t,
                        "op": "free",
                        "args": [address, order],
                        "result": "ok",
                        "call": call,
                        "ret": ret,
                    }
                )
            else:
                order = rng.randrange(heap.max_order + 1)
                call = clock()
                got = heap.alloc(order)
                ret = clock()
                mine.append(
                    {"thread": t, "op": "alloc", "args": [order], "result": got, "call": call, "ret": ret}
                )
                if got is not None:
                    held.append((got, order))
        with lock:
            out.extend(mine)

    # The interpreter hands the GIL over every 5 ms by default: a thread would run hundreds of
    # calls alone. Every 10 us, the two threads' calls interleave and overlap as a port's do.
    sys.setswitchinterval(SWITCH)
    try:
        ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for th in ts:
            th.start()
        for th in ts:
            th.join()
    finally:
        sys.setswitchinterval(switch)
    return out


def chained(n: int) -> list[Operation]:
    """Two clients, each allocating and freeing its own page, every call overlapping the other's."""
    mine = [g.node_of(DEPTH, page, 0) for page in (0, 1)]
    h = []
    for t in (0, 1):
        for k in range(n // 2):
            op = sp.Alloc(0, mine[t]) if k % 2 == 0 else sp.Free(mine[t])
            h.append(Operation(t, op, 4 * k + 2 * t, 4 * k + 2 * t + 3))
    return h


def wide(n: int) -> list[Operation]:
    """``n`` failed allocs and a free of a block nobody holds, all in flight at once: illegal."""
    return [*(Operation(i, sp.Alloc(0, None), 0, 1) for i in range(n)), Operation(n, sp.Free(4), 0, 1)]


def longest(records: list[dict[str, Any]]) -> int:
    """The most operations in one segment (between two instants with nothing pending)."""
    spans = sorted((r["call"], r["ret"]) for r in records)
    bounds = _lin_search.cuts([c for c, _ in spans], [r for _, r in spans])
    return max((hi - lo for lo, hi in bounds), default=0)


def timed(f: Any, *args: Any, **kwargs: Any) -> tuple[Result[Any], float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    res = f(*args, **kwargs)
    return res, time.perf_counter() - wall, time.process_time() - cpu


def row(kind: str, n: int, res: Result[Any], wall: float, cpu: float, **extra: Any) -> dict[str, Any]:
    out = {
        "kind": kind,
        "operations": n,
        "verdict": res.verdict.value,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "segments": res.segments,
        "configurations": res.configurations,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **extra,
    }
    print(
        f"{kind:8} {n:>9,} ops  {out['verdict']:8} wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
        f"segments {res.segments:>8,}  configurations {res.configurations:>9,}  "
        + "  ".join(f"{k} {v}" for k, v in extra.items()),
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000,1000000", help="stress history lengths")
    ap.add_argument("--old", default="1000,4000,10000", help="lengths to run the old search on too")
    ap.add_argument("--chained", type=int, default=1_000_000, help="length of the chained history (0: skip)")
    ap.add_argument(
        "--wide", type=int, default=10_000, help="operations in flight in the wide case (0: skip)"
    )
    ap.add_argument("--timeout", type=float, default=600.0, help="the checker's time limit per history")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    old_sizes = {int(x) for x in args.old.split(",") if x}
    reference_check = None
    if old_sizes:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from lin_reference import reference_check

    load = os.getloadavg()
    rows = []
    spec = sp.Spec.of(DEPTH, spurious_failures=True)

    def spec_step(state: sp.State, op: sp.Op) -> tuple[bool, sp.State]:
        return sp.step(spec, state, op)

    for n in sorted(set(sizes) | old_sizes):
        started = time.perf_counter()
        records = stress(2, n // 2, args.seed)
        generated = round(time.perf_counter() - started, 2)
        if n in sizes:
            res, wall, cpu = timed(check_stress_history, records, depth=DEPTH, timeout=args.timeout)
            rows.append(
                row("stress", n, res, wall, cpu, generate_s=generated, longest_segment=longest(records))
            )
        if n in old_sizes and reference_check is not None:
            cols = _lin_stress.read_records(records, Arena(DEPTH))
            history = [
                Operation(t, j.effect, c, r)
                for t, j, c, r in zip(cols.threads, cols.judged, cols.calls, cols.rets, strict=True)
            ]
            res, wall, cpu = timed(check_allocator, history, spec, timeout=args.timeout)
            rows.append(row("new", n, res, wall, cpu))
            res, wall, cpu = timed(reference_check, history, sp.EMPTY, spec_step, args.timeout)
            rows.append(row("old", n, res, wall, cpu))
        del records
    if args.chained:
        history = chained(args.chained)
        res, wall, cpu = timed(check_allocator, history, spec, timeout=args.timeout)
        rows.append(row("chained", args.chained, res, wall, cpu))
        del history
    if args.wide:
        res, wall, cpu = timed(check_allocator, wide(args.wide), spec, timeout=5.0)
        rows.append(row("wide", args.wide + 1, res, wall, cpu, timeout_s=5.0))
    out = {
        "command": "python bench/lin_bench.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other jobs",
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
