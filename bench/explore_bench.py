"""Complete 2-thread schedules per second: the explorer vs frontrun 0.7.0, on one fixed scenario.

Scenario: depth 3, two threads, each ``alloc(order 0)`` then ``free`` of that block (thread 0
scans from page 0, thread 1 from page 1). A *schedule* is one complete execution of both
threads with every check the engine makes.

    python bench/explore_bench.py                    # the explorer, every strategy, with and without checks
    frontrun python bench/explore_bench.py frontrun  # frontrun's DPOR and random strategies (bench extra)

Writes ``bench/out/explore_bench[_frontrun].json``. The explorer is timed over ``--seconds``
per configuration, best of ``--repeat`` runs (the machine is shared: best-of filters other
processes' interference, and the README says so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
SCENARIO = "d3-m3-counted:a0@0+f0,a0@1+f0"


def _machine() -> dict[str, object]:
    return {"python": platform.python_version(), "cores": os.cpu_count(), "machine": platform.machine()}


def baseline(seconds: float, repeat: int) -> float:
    """The same four operations run sequentially on a plain NBBS (no scheduler, no checks), per second."""
    from nbbs.impl.nbbs import NBBS

    best = 0.0
    for _ in range(repeat):
        a = NBBS(3, page_size=1)
        started, n = time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            for _ in range(100):
                x = a.alloc(0, 0)
                a.free(x, 0)  # type: ignore[arg-type]
                y = a.alloc(0, 1)
                a.free(y, 0)  # type: ignore[arg-type]
            n += 100
        best = max(best, n / (time.perf_counter() - started))
    return best


def ours(seconds: float, repeat: int) -> list[dict[str, object]]:
    from nbbs.check.explore import ExploreConfig, explore, parse

    sc, _ = parse(SCENARIO + ":")
    plain = baseline(seconds, repeat)
    print(f"{'plain NBBS, the same 4 ops in sequence':40} {'none':30} {plain:10,.0f} runs/s")
    rows: list[dict[str, object]] = [{"engine": "plain NBBS (no scheduler)", "runs/s": plain}]
    configs = [
        ("random", dict(strategy="random")),
        ("pct (d=3)", dict(strategy="pct", pct_depth=3)),
        ("exhaustive (bound 2, sleep sets)", dict(strategy="exhaustive", preemption_bound=2)),
        ("exhaustive (no bound, sleep sets)", dict(strategy="exhaustive", preemption_bound=99)),
    ]
    for checks in ("all checks", "no refinement", "safety + linearizability only"):
        for name, kw in configs:
            extra: dict[str, object] = {}
            if checks != "all checks":
                extra["refinement"] = False
            if checks == "safety + linearizability only":
                extra["quiescent"] = "off"
            best = 0.0
            runs = 0
            for r in range(repeat):
                cfg = ExploreConfig(
                    **kw,  # type: ignore[arg-type]
                    **extra,  # type: ignore[arg-type]
                    seed=r,
                    max_schedules=10**9,
                    seconds=seconds,
                    stop_on_failure=False,
                )
                if kw["strategy"] == "exhaustive":
                    # The bounded space is small: re-run it until the time is up.
                    started, n = time.perf_counter(), 0
                    while time.perf_counter() - started < seconds:
                        n += explore(sc, cfg).schedules
                    rate = n / (time.perf_counter() - started)
                    runs = n
                else:
                    rep = explore(sc, cfg)
                    rate, runs = rep.rate, rep.schedules
                best = max(best, rate)
            rows.append(
                {"engine": "nbbs.check.explore", "strategy": name, "checks": checks, "schedules/s": best}
            )
            print(
                f"{name:40} {checks:30} {best:10,.0f} schedules/s  "
                f"({plain / best:.1f}x the plain run; {runs} in the last run)"
            )
    return rows


def frontrun_rows(max_executions: int) -> list[dict[str, object]]:
    import frontrun

    from nbbs.impl.atomics import StripedWords
    from nbbs.impl.nbbs import NBBS

    def setup() -> NBBS:
        return NBBS(3, page_size=1, backend=StripedWords)

    def worker(hint: int):  # type: ignore[no-untyped-def]
        def run(a: NBBS) -> None:
            addr = a.alloc(0, hint)
            if addr is not None:
                a.free(addr, 0)

        return run

    def invariant(a: NBBS) -> bool:
        return a.live_blocks() == []

    rows = []
    for strategy in ("dpor", "random"):
        kwargs: dict[str, object] = dict(strategy=strategy)
        if strategy == "dpor":
            kwargs.update(max_executions=max_executions, preemption_bound=2, stop_on_first=False)
        else:
            kwargs.update(max_attempts=max_executions, seed=0)
        started = time.perf_counter()
        try:
            result = frontrun.explore(setup, [worker(0), worker(1)], invariant, **kwargs)
            n = result.num_explored
            note = "property holds" if result.property_holds else "violation found"
        except Exception as e:  # report what frontrun says rather than hide it
            n, note = 0, f"{type(e).__name__}: {e}"[:200]
        elapsed = time.perf_counter() - started
        rate = n / elapsed if elapsed else 0.0
        row = {"engine": "frontrun 0.7.0", "strategy": strategy, "schedules/s": rate, "executions": n}
        rows.append({**row, "note": note})
        print(f"frontrun {strategy:10} {n:6} executions in {elapsed:6.1f} s = {rate:8.1f} /s  ({note})")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", nargs="?", choices=("ours", "frontrun"), default="ours")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--executions", type=int, default=300, help="frontrun: executions per strategy")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.engine == "ours":
        rows = ours(args.seconds, args.repeat)
        name = "explore_bench.json"
    else:
        rows = frontrun_rows(args.executions)
        name = "explore_bench_frontrun.json"
    data = {"scenario": SCENARIO, "command": " ".join(sys.argv), "machine": _machine(), "rows": rows}
    (OUT / name).write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
