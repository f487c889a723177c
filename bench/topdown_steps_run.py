"""The bounded step-level proof of ``top-down`` / ``top-down-node`` for one configuration, one
obligation at a time, recorded as it goes (a long run that may not finish says how far it got).

    python bench/topdown_steps_run.py --variant top_down_node --threads 3 --depth 3 [--symmetry]

(``--symmetry``: thread 0's per-pc queries and ``topdown_arith``'s ``tnsym_*``/``tsym_*``, which
prove every other thread's query is thread 0's relabelled; results in ``...-sym.json``.)
Writes ``bench/results/steps-<variant>-t<threads>-d<depth>.json`` after every obligation: each
obligation's result, z3 seconds and CPU seconds, and whether the run is complete.
Machine of record: x86_64, 2 cores shared with other jobs (times inflated; CPU time is the
honest figure).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from nbbs.proofs import topdown_steps as ts
from nbbs.proofs._obligation import prove


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=["top_down", "top_down_node"], default="top_down_node")
    ap.add_argument("--threads", type=int, default=3)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument(
        "--symmetry",
        action="store_true",
        help="thread 0's per-pc queries only, plus the tsym_*/tnsym_* proof that every other thread's "
        "query is thread 0's relabelled",
    )
    args = ap.parse_args()
    subject = ts.TOP_DOWN_NODE if args.variant == "top_down_node" else ts.TOP_DOWN
    obs = ts.obligations(args.depth, args.threads, subject=subject, symmetric=args.symmetry)
    label = args.variant.replace("_", "-")
    sym = "-sym" if args.symmetry else ""
    out = Path(__file__).parent / "results" / f"steps-{label}-t{args.threads}-d{args.depth}{sym}.json"
    rows: list[dict[str, object]] = []
    started = time.perf_counter()
    cpu0 = time.process_time()

    def write(complete: bool) -> None:
        doc = {
            "machine": f"{platform.machine()}, CPython {platform.python_version()}, 2 cores shared",
            "command": f"python bench/topdown_steps_run.py --variant {args.variant} "
            f"--threads {args.threads} --depth {args.depth}" + (" --symmetry" if args.symmetry else ""),
            "started": time.strftime(
                "%Y-%m-%d %H:%M UTC", time.gmtime(time.time() - (time.perf_counter() - started))
            ),
            "obligations": len(obs),
            "done": len(rows),
            "complete": complete,
            "all_proved": all(r["result"] == "proved" for r in rows),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "cpu_seconds": round(time.process_time() - cpu0, 1),
            "rows": rows,
        }
        out.write_text(json.dumps(doc, indent=1) + "\n")

    for ob in obs:
        p = prove(ob, subject)
        rows.append(
            {
                "obligation": ob.label,
                "result": p.result,
                "z3_seconds": round(p.seconds, 1),
                "cpu_seconds": round(p.cpu_seconds, 1),
                "at": time.strftime("%H:%M:%S UTC", time.gmtime()),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        if not p.proved:
            print(p.report(), flush=True)
        write(False)
    write(True)


if __name__ == "__main__":
    main()
