"""The C port under real threads: ns per operation and word accesses per operation, per variant.

Usage: ``python bench/port_c_bench.py [--depth 16] [--ops 200000] [--threads 1,2] [--json FILE]``.
Runs the protocol executable's ``stress THREADS OPS SEED`` (each thread: random allocs of
orders up to ``max_order`` and frees of its own blocks, about half each) and reports, from the
history's CLOCK_MONOTONIC timestamps, the mean and median time inside one operation; a second
run of the ``--count-atomics`` build gives the word accesses per operation (its stderr line).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

from nbbs.ports import build


def run(
    exe: Path, depth: int, max_order: int, variant: str, threads: int, ops: int
) -> tuple[list[str], str, float]:
    """The history lines, the port's stderr and the wall time of one stress run."""
    script = f"hello 1\narena {depth} 4096 0 {max_order} {variant}\nstress {threads} {ops} 1\nquit\n"
    started = time.perf_counter()
    done = subprocess.run([str(exe)], input=script, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    lines = done.stdout.splitlines()
    return lines[lines.index("ok") + 1 : lines.index("end")], done.stderr, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--max-order", type=int, default=4)
    ap.add_argument("--ops", type=int, default=200_000, help="operations per thread")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "port_c.json")
    args = ap.parse_args()
    plain, counting = build("port"), build("port", count_atomics=True)
    rows = []
    for variant in ("counted", "reference"):
        for threads in map(int, args.threads.split(",")):
            lines, _, wall = run(plain, args.depth, args.max_order, variant, threads, args.ops)
            spans = [h["ret"] - h["call"] for h in map(json.loads, lines)]
            _, err, _ = run(counting, args.depth, args.max_order, variant, threads, args.ops)
            counts = dict(kv.split("=") for kv in err.split(":", 1)[1].split())
            per_op = {k: int(v) / int(counts["ops"]) for k, v in counts.items() if k != "ops"}
            row = {
                "variant": variant,
                "threads": threads,
                "ops": len(spans),
                "mean_ns": statistics.fmean(spans),
                "median_ns": statistics.median(spans),
                "wall_s": wall,
                "accesses_per_op": {k: round(v, 2) for k, v in per_op.items() if v},
            }
            rows.append(row)
            print(
                f"{variant:9} {threads} thread(s): {row['mean_ns']:7.0f} ns mean,"
                f" {row['median_ns']:6.0f} ns median per op; accesses/op {row['accesses_per_op']}"
            )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
    out = {
        "machine": machine,
        "date": time.strftime("%Y-%m-%d"),
        "args": vars(args) | {"json": str(args.json)},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({**out, "rows": rows}, indent=1) + "\n")
    print(f"machine: {machine}; written to {args.json}")


if __name__ == "__main__":
    main()
