"""Word accesses per alloc+free pair, by variant and occupancy, counted with ``check/trace.py``.

Issue 12 compares the variants' costs by the atomic operations they make. This script counts
them in the Python allocator, sequentially (one thread, so every count is exact): a tree of
``2**depth`` pages, a random ``held`` fraction of its pages allocated first (order 0, each at
a random free page), then ``pairs`` times "alloc one page from a random hint, free it". It
prints, per variant and occupancy, the loads, CASes, fetch-ors and stores per pair, and the
read-modify-writes (CAS + fetch-or) the issue's native table counts.

    python bench/access_count.py                      # depths 10 and 15, 0 / 50 / 95 % held
    python bench/access_count.py --depth 10 --pairs 500

Writes ``bench/results/access-count.json``. Sequential counts say nothing of contention:
they are the number of atomic operations each variant issues, not their time.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from nbbs.check.trace import Tracing
from nbbs.impl.nbbs import NBBS
from nbbs.model.steps import Kind

VARIANTS = ("reference", "corrected", "counted", "stop_early", "top_down", "top_down_node")
HELD = (0.0, 0.5, 0.95)


def count(variant: str, depth: int, held: float, pairs: int, seed: int) -> dict[str, float]:
    """Accesses per pair for one variant at one occupancy (same seed, same pages for all)."""
    rng = random.Random(seed)
    tracing = Tracing()
    a = NBBS(depth, page_size=1, variant=variant, backend=tracing)
    pages = 1 << depth
    for page in rng.sample(range(pages), int(held * pages)):
        got = a.alloc(0, hint=page)
        assert got == page, (variant, page, got)
    words = tracing.words
    assert words is not None
    words.events.clear()
    for _ in range(pairs):
        got = a.alloc(0, hint=rng.randrange(pages))
        assert got is not None
        a.free(got)
    kinds = Counter(e.kind for e in words.events)
    per = {str(k): kinds[k] / pairs for k in Kind}
    per["rmw"] = (kinds[Kind.CAS] + kinds[Kind.FETCH_OR] + kinds[Kind.FETCH_AND]) / pairs
    per["total"] = len(words.events) / pairs
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, action="append", default=[])
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args()
    rows = []
    print("| pages | held | variant | loads | CAS | fetch-or | stores | CAS + fetch-or | all |")
    print("|---|---|---|---|---|---|---|---|---|")
    for depth in args.depth or [10, 15]:
        for held in HELD:
            for variant in VARIANTS:
                per = count(variant, depth, held, args.pairs, args.seed)
                rows.append({"depth": depth, "held": held, "variant": variant, "pairs": args.pairs, **per})
                print(
                    f"| {1 << depth:,} | {held:.0%} | `{variant}` | {per['load']:.1f} | {per['cas']:.1f} | "
                    f"{per['fetch_or']:.1f} | {per['store']:.1f} | {per['rmw']:.1f} | {per['total']:.1f} |",
                    flush=True,
                )
    out = Path(__file__).parent / "results" / "access-count.json"
    out.write_text(json.dumps({"seed": args.seed, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
