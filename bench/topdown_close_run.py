"""Prove every ``topdown_close`` obligation of one top-down variant, one process, one obligation at
a time, and record per obligation its result, z3 seconds and CPU seconds (a run that does not
finish says how far it got: the JSON is rewritten after each family).

    python bench/topdown_close_run.py --variant top_down_node [--family close,lin,...]
        [--refine-depth 10] [--out bench/results/prove-topdown-close-node.json]

Families: ``close`` (initial state, fold, composition, quiescence, lemmas), ``lin`` and ``lf``
(linearization points, global lock-freedom; attempt mode), ``scan`` (frame, invariant,
lock-freedom, skip in scan mode), ``scanlin``, ``scanlf``, ``refine`` (the sequential refinement,
depths 1 to ``--refine-depth``, whole-tree queries capped as ``nbbs prove`` caps them);
``topdown_arith``'s: ``arith`` (``tlf_*`` and ``tind_*``, shared by both variants), ``lfbound``
and ``scanlfbound`` (the step facts of lock-freedom's arithmetic, attempt and scan mode).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from collections.abc import Callable

from nbbs.proofs import obligations, topdown_arith, topdown_close, topdown_steps
from nbbs.proofs._obligation import Obligation, prove

FAMILIES = ("close", "lin", "lf", "scan", "scanlin", "scanlf", "refine", "arith", "lfbound", "scanlfbound")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", choices=["top_down_node", "top_down"], default="top_down_node")
    ap.add_argument("--family", default=",".join(FAMILIES))
    ap.add_argument("--refine-depth", type=int, default=10)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    per_node = args.variant == "top_down_node"
    subject = topdown_steps.TOP_DOWN_NODE if per_node else topdown_steps.TOP_DOWN
    out = args.out or f"bench/results/prove-topdown-close-{'node' if per_node else 'side'}.json"

    def refine() -> list[Obligation]:
        obs = []
        for d in range(1, args.refine_depth + 1):
            obs += [
                ob
                for ob in topdown_close.refine_obligations(d, per_node)
                if d <= obligations.CAPS.get(ob.name, d)
            ]
        return obs

    build: dict[str, Callable[[], list[Obligation]]] = {
        "close": lambda: topdown_close.close_obligations(per_node),
        "lin": lambda: topdown_close.lin_obligations(per_node),
        "lf": lambda: topdown_close.lf_obligations(per_node),
        "scan": lambda: topdown_close.scan_obligations(per_node),
        "scanlin": lambda: topdown_close.lin_obligations(per_node, scan=True),
        "scanlf": lambda: topdown_close.lf_obligations(per_node, scan=True),
        "refine": refine,
        "arith": lambda: topdown_arith.arith_obligations() + topdown_arith.induction_obligations(),
        "lfbound": lambda: topdown_arith.lfbound_obligations(per_node),
        "scanlfbound": lambda: topdown_arith.lfbound_obligations(per_node, True),
    }
    res: dict[str, object] = {
        "variant": subject.name,
        "started": datetime.datetime.now(datetime.UTC).isoformat(),
        "load_at_start": os.getloadavg(),
        "families": {},
    }
    families: dict[str, object] = {}
    res["families"] = families
    for fam in args.family.split(","):
        rows = []
        w0 = time.time()
        for ob in build[fam]():
            p = prove(ob, subject)
            rows.append(
                {
                    "name": ob.label,
                    "result": p.result,
                    "z3_seconds": round(p.seconds, 2),
                    "cpu_seconds": round(p.cpu_seconds, 2),
                }
            )
            print(f"{ob.label:48s} {p.result:8s} z3 {p.seconds:7.1f} cpu {p.cpu_seconds:7.1f}", flush=True)
            if not p.proved:
                print(p.report()[:4000], flush=True)
        families[fam] = {
            "count": len(rows),
            "proved": sum(r["result"] == "proved" for r in rows),
            "cpu_seconds": round(sum(float(r["cpu_seconds"]) for r in rows), 1),
            "wall_seconds": round(time.time() - w0, 1),
            "rows": rows,
        }
        with open(out, "w") as f:
            json.dump(res, f, indent=1)
    res["load_at_end"] = os.getloadavg()
    with open(out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
