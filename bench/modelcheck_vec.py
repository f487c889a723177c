"""The two model-checking engines side by side: states/s and bytes per state.

Each run is a child process (so its peak memory is its own): it imports everything, notes its
resident memory, runs ``check`` (``--engine python``) or ``check_vec`` (``vec``), and reports
states, transitions, seconds, peak resident memory and the disk the vec engine wrote.
Bytes per state = (peak - resident before the search) / states; "before" is measured once
the engine's code is loaded (the python engine's modules; the vec engine's C kernel too).

    python bench/modelcheck_vec.py --only 3x2 --only 2x3            # both engines
    python bench/modelcheck_vec.py --only 4x2 --engine vec           # one engine
    python bench/modelcheck_vec.py --only 3x3 --engine vec --memory 8
    python bench/modelcheck_vec.py --only 3x3 --engine vec --variant top_down_node   # default: counted

Writes ``bench/results/modelcheck-vec.json`` (rows of configurations not run are kept). A vec
run prints its progress (levels, states, peak memory, disk) once a minute on stderr.
Machine of record: x86_64, 2 cores shared with other jobs (timings inflated; say so).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from nbbs.check._mc import Config
from nbbs.check.modelcheck import check, check_vec
t, d, engine, budget, variant = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
if engine == "vec":
    # Loading the engine's code (its C kernel, and the build module's imports: about 5.6 MB)
    # is code, like the python engine's imports above: not bytes of states.
    from nbbs.check import _mc_vec
    assert _mc_vec.native() is not None, "no C compiler: the vec engine would run its numpy code"
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
cfg = Config(t, d, variant=variant)
started = time.perf_counter()
if engine == "vec":
    from nbbs.check import _mc_vec
    last = [0.0]

    def status_kb(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def progress(r, queue, force=False):
        # One line a minute on stderr: how far a long run got, should it be stopped.
        now = time.perf_counter() - started
        if force or now - last[0] >= 60:
            last[0] = now
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            disk = vc.disk_bytes + vc.store.disk_bytes
            status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
            anon, file = (int(status.get(k, "0 kB").split()[0]) * 1024 for k in ("RssAnon", "RssFile"))
            line = {"seconds": round(now), "phase": vc.phase, "levels": len(vc.levels),
                    "states": r.states, "transitions": r.transitions, "queue": queue,
                    "peak_bytes": rss, "rss_anon": anon, "rss_file": file,
                    "vm_peak": status_kb("VmPeak"), "disk_bytes": disk,
                    "violations": sorted(r.violations)}
            print(json.dumps(line), file=sys.stderr, flush=True)

    def found(v):
        # A violation is printed as soon as it is found (the search goes on).
        line = {"seconds": round(time.perf_counter() - started), "violation": v.prop,
                "message": v.message, "steps": len(v.steps), "level": len(vc.levels) - 1}
        print(json.dumps(line), file=sys.stderr, flush=True)

    gib = None if budget == "-" else int(float(budget) * 2**30)
    vc = _mc_vec.VecChecker(cfg, progress, memory_budget=gib, on_violation=found)
    real_lock_freedom = vc._lock_freedom

    def lock_freedom():
        # The search is over: (a)-(c) are decided; say so before the lock-freedom pass.
        progress(vc.result, 0, force=True)
        real_lock_freedom()

    vc._lock_freedom = lock_freedom
    r = vc.run()
    disk = vc.disk_bytes
    extra = {"levels": len(vc.level_sizes), "level_sizes": vc.level_sizes,
             "lock_freedom_by": vc.lock_freedom_by, "lock_freedom_rounds": vc.lock_freedom_rounds,
             "rows_computed": vc.tb.rows_computed, "relayouts": vc.relayouts, "key_bits": vc.tb.bits,
             "vm_peak": status_kb("VmPeak")}
else:
    r = check(cfg)
    disk = 0
    extra = {}
seconds = time.perf_counter() - started
use = resource.getrusage(resource.RUSAGE_SELF)
peak = use.ru_maxrss * 1024
print(json.dumps({**extra, "cpu_user": round(use.ru_utime, 1), "cpu_system": round(use.ru_stime, 1),
    "threads": t, "depth": d, "engine": engine, "variant": variant, "states": r.states,
    "transitions": r.transitions,
    "complete": r.complete, "violations": sorted(r.violations), "seconds": round(seconds, 1),
    "states_per_second": round(r.states / seconds), "peak_bytes": peak, "baseline_bytes": before,
    "bytes_per_state": round((peak - before) / max(r.states, 1), 1), "disk_bytes": disk,
}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=[], help="threads x depth, e.g. 3x2 (repeatable)")
    ap.add_argument("--engine", action="append", choices=["python", "vec"], default=[])
    ap.add_argument("--memory", default="-", help="vec: GiB of seen runs kept in RAM (default: all)")
    # The engines' figures were taken on counted (the default before the switch): keep comparing it.
    ap.add_argument("--variant", default="counted", help="the variant searched (default: counted)")
    args = ap.parse_args()
    configs = [tuple(int(x) for x in o.split("x")) for o in args.only] or [(3, 2), (2, 3)]
    engines = args.engine or ["python", "vec"]
    rows = []
    for t, d in configs:
        for engine in engines:
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(t), str(d), engine, args.memory, args.variant],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None and child.stderr is not None
            lines = []  # the progress lines and the violations as found, kept in the row
            for line in child.stderr:
                sys.stderr.write(line)
                if line.startswith("{"):
                    lines.append(json.loads(line))
            out = child.stdout.read()
            if child.wait():
                raise SystemExit(f"the {engine} run of {t}x{d} failed (exit {child.returncode})")
            row = json.loads(out.strip().splitlines()[-1])
            if lines:
                row["progress"] = lines
            row["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            rows.append(row)
            print(json.dumps(row), flush=True)
    path = Path(__file__).parent / "results" / "modelcheck-vec.json"

    def key(r: dict) -> tuple:
        return r["threads"], r["depth"], r["engine"], r.get("variant", "counted")

    if path.exists():
        ran = {key(r) for r in rows}
        old = json.loads(path.read_text())["rows"]
        rows = [r for r in old if key(r) not in ran] + rows
    rows.sort(key=key)
    machine = f"{platform.machine()}, CPython {platform.python_version()}, 2 cores shared with other jobs"
    path.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
