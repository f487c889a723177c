"""Benchmark: z3 time of every default obligation for depths 1..D, and where it stops scaling.

Run (2-core machine, CPython 3.11, z3 4.x/5.x, fixed seed ``proofs._z3.SEED``):

    python bench/prove_bench.py                      # depths 1..10, default caps, the
                                                     # step-level invariant for 2 threads,
                                                     # depths 1..2 (what ``nbbs prove`` runs)
    python bench/prove_bench.py --probe 6            # also time the capped whole-tree
                                                     # obligations up to depth 6 (slow)

The obligations are ``counted``'s (the default catalogue; the variant shipped until the switch to
``top_down_node``).

Writes ``bench/results/prove_bench.json`` and ``bench/results/prove_time_vs_depth.png``
(needs the ``bench`` extra: ``pip install -e '.[bench]'``). Each obligation gets a fresh
solver; "z3 time" is the two ``check()`` calls (non-vacuity, then the claim), "wall" adds
building the terms in Python.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

from nbbs.proofs import obligations
from nbbs.proofs._obligation import prove
from nbbs.proofs.counted_refine import obligations as refinement_obligations
from nbbs.proofs.speclemmas import obligations as spec_obligations

OUT = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth-max", type=int, default=10)
    ap.add_argument("--probe", type=int, default=0, help="time capped obligations up to this depth too")
    ap.add_argument(
        "--steps-depth", type=int, default=2, help="step-level invariant (2 threads) up to this depth"
    )
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)

    rows = []
    started = time.perf_counter()
    # As ``nbbs prove`` with no option: also the every-depth frame and ``cevery_safe``.
    default = obligations.catalogue(
        args.depth_max, steps_depth=args.steps_depth or None, threads=2, every="frame"
    )
    for ob in default:
        t0 = time.perf_counter()
        p = prove(ob)
        rows.append(
            {
                "obligation": ob.name,
                "group": ob.group,
                "depth": ob.depth,
                "result": p.result,
                "z3_seconds": p.seconds,
                "cpu_seconds": p.cpu_seconds,
                "wall_seconds": time.perf_counter() - t0,
            }
        )
        assert p.proved, p.report()
    total_wall = time.perf_counter() - started
    probes = []
    for depth in range(1, args.probe + 1):
        for ob in spec_obligations(depth) + refinement_obligations(depth):
            if ob.name in obligations.CAPS and depth > obligations.CAPS[ob.name]:
                t0 = time.perf_counter()
                p = prove(ob)
                probes.append(
                    {
                        "obligation": ob.name,
                        "depth": depth,
                        "result": p.result,
                        "z3_seconds": p.seconds,
                        "wall_seconds": time.perf_counter() - t0,
                    }
                )
                print(f"probe {ob.name}@d{depth}: {p.result} z3 {p.seconds:.2f} s", flush=True)

    per_depth: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    wall_depth: dict[int, float] = defaultdict(float)
    for r in rows:
        if r["depth"] is not None:
            whole = r["obligation"] in obligations.CAPS
            per_depth[r["obligation"] + " (whole tree)" if whole else r["group"]][r["depth"]] += r[
                "z3_seconds"
            ]
            wall_depth[r["depth"]] += r["wall_seconds"]
    for r in probes:
        per_depth[r["obligation"] + " (whole tree)"][r["depth"]] += r["z3_seconds"]
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python bench/prove_bench.py" + (f" --probe {args.probe}" if args.probe else ""),
        "obligations": len(rows),
        "z3_seconds_total": sum(r["z3_seconds"] for r in rows),
        "wall_seconds_total": total_wall,
        "z3_seconds_by_group_and_depth": {k: dict(v) for k, v in per_depth.items()},
        "wall_seconds_by_depth": dict(wall_depth),
        "rows": rows,
        "probes": probes,
    }
    (OUT / "prove_bench.json").write_text(json.dumps(summary, indent=1))
    print(f"{len(rows)} obligations proved; z3 {summary['z3_seconds_total']:.1f} s, wall {total_wall:.1f} s")
    for depth in sorted(wall_depth):
        z = sum(per_depth[g].get(depth, 0.0) for g in ("spec", "refine", "param", "steps"))
        print(f"  depth {depth:>2}: z3 {z:7.3f} s   wall {wall_depth[depth]:7.2f} s")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, series in sorted(per_depth.items()):
        xs = sorted(series)
        ax.plot(xs, [max(series[x], 1e-4) for x in xs], marker="o", label=name)
    ax.plot(
        sorted(wall_depth),
        [wall_depth[d] for d in sorted(wall_depth)],
        "k--",
        label="wall, all (Python incl.)",
    )
    ax.set_yscale("log")
    ax.set_xlabel("tree depth")
    ax.set_ylabel("seconds (log)")
    ax.set_title("nbbs prove: z3 time per depth (2 cores, fixed seed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "prove_time_vs_depth.png", dpi=120)


if __name__ == "__main__":
    main()
