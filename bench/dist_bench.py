"""The distributed engine: which framework (Dask or Ray), and states/s per worker against one process.

    python bench/dist_bench.py frameworks          # Dask and Ray on a local cluster of 2 workers
    python bench/dist_bench.py engines --only 3x2 --only 2x3 [--workers 2]

``frameworks``: for each of Dask's distributed and Ray (whichever is installed; Ray is not a
dependency: ``pip install 'ray>=2.60,<3'`` to measure it), the start-up time of a local
cluster of 2 worker processes with one stateful owner per worker, and the cost of one BFS
level's exchange, all to all, the way ``check/_dist.py`` does it (each worker's successors split
by owner, pickled, sent worker to worker, unpickled and added to the owner's seen set) for
1,000 and 100,000 90-bit states per worker; minimum of 3 rounds. Each framework runs in its
own child process.

``engines``: each configuration (``counted``, attempt mode, every initial live set) with the
one-process engine (``check``) in a child process, then ``dist.check`` on a fresh local cluster
of ``--workers`` processes: states, transitions, seconds, states/s in all and per worker, the
seconds the workers spent in their level tasks, the CPU seconds of the one process and of each
worker process (on a shared machine the fair per-state cost), and each worker's peak resident memory (bytes
per state = (peak - resident bytes when the run opened) / states it held). The two must
agree on states and transitions (checked).

Writes ``bench/results/dist_bench.json``. Machine of record: x86_64, 2 cores shared with other
jobs: a 2-worker cluster cannot show a speed-up there (say so).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

FRAMEWORK = r"""
import json, pickle, random, sys, time
W, SIZES, which = 2, (1000, 100000), sys.argv[1]
out = {"framework": which}


def batches(n, seed):
    rng = random.Random(seed)
    parts = [[] for _ in range(W)]
    for _ in range(n):
        x = rng.getrandbits(90)
        parts[hash(x) % W].append((x, x >> 1))
    return tuple(pickle.dumps(p, 5) for p in parts)


class Owner:
    def __init__(self):
        self.seen, self.out = {}, ()

    def make(self, n, seed):
        self.out = batches(n, seed)

    def parts(self):
        return self.out

    def take(self, *parts):
        for p in parts:
            for x, src in pickle.loads(p):
                self.seen.setdefault(x, src)
        return len(self.seen)


if which == "dask":
    import logging
    from operator import getitem
    from distributed import Client, LocalCluster, get_worker

    def state():
        w = get_worker()
        if not hasattr(w, "_owner"):
            w._owner = Owner()
        return w._owner

    def make(n, seed):
        state().make(n, seed)

    def parts():
        return state().parts()

    def take(*ps):
        return state().take(*ps)

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=W, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    c = Client(cluster)
    addrs = sorted(c.scheduler_info()["workers"])
    c.gather([c.submit(make, 1, i, workers=[a], pure=False) for i, a in enumerate(addrs)])
    out["startup_s"] = round(time.perf_counter() - t0, 2)
    for n in SIZES:
        c.gather([c.submit(make, n, i, workers=[a], pure=False) for i, a in enumerate(addrs)])
        best = 1e9
        for _ in range(3):
            t = time.perf_counter()
            ps = [c.submit(parts, workers=[a], pure=False) for a in addrs]
            split = [[c.submit(getitem, ps[i], j, workers=[addrs[i]], pure=False) for j in range(W)]
                     for i in range(W)]
            c.gather([c.submit(take, *[split[i][j] for i in range(W)], workers=[a], pure=False)
                      for j, a in enumerate(addrs)])
            best = min(best, time.perf_counter() - t)
        out[f"level_ms_{n}"] = round(best * 1e3, 1)
    c.close()
    cluster.close()
else:
    import ray
    t0 = time.perf_counter()
    ray.init(num_cpus=W, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    RayOwner = ray.remote(num_cpus=1)(Owner)
    owners = [RayOwner.remote() for _ in range(W)]
    ray.get([o.make.remote(1, i) for i, o in enumerate(owners)])
    out["startup_s"] = round(time.perf_counter() - t0, 2)
    for n in SIZES:
        ray.get([o.make.remote(n, i) for i, o in enumerate(owners)])
        best = 1e9
        for _ in range(3):
            t = time.perf_counter()
            refs = [o.parts.options(num_returns=W).remote() for o in owners]
            ray.get([o.take.remote(*[refs[i][j] for i in range(W)]) for j, o in enumerate(owners)])
            best = min(best, time.perf_counter() - t)
        out[f"level_ms_{n}"] = round(best * 1e3, 1)
    ray.shutdown()
print("RESULT " + json.dumps(out))
"""

ONE = r"""
import json, resource, sys, time
from nbbs.check._mc import Config
from nbbs.check.modelcheck import check
t, d = int(sys.argv[1]), int(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
use = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = use.ru_utime + use.ru_stime
started = time.perf_counter()
r = check(Config(t, d))
seconds = time.perf_counter() - started
use = resource.getrusage(resource.RUSAGE_SELF)
cpu = use.ru_utime + use.ru_stime - cpu0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print("RESULT " + json.dumps({
    "engine": "python", "threads": t, "depth": d, "states": r.states, "transitions": r.transitions,
    "ok": r.ok, "seconds": round(seconds, 1), "states_per_second": round(r.states / seconds),
    "cpu_s": round(cpu, 1), "states_per_cpu_second": round(r.states / cpu),
    "bytes_per_state": round((peak - before) / r.states, 1),
}))
"""

DIST = r"""
import json, sys, time
from nbbs.check import dist
from nbbs.check._mc import Config
t, d, w = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t0 = time.perf_counter()
client = dist.connect(w)
startup = time.perf_counter() - t0
dc = dist.DistChecker(Config(t, d), client)
r = dc.run()
client.close()
client.cluster.close()
print("RESULT " + json.dumps({
    "engine": "dist", "workers": w, "threads": t, "depth": d, "states": r.states,
    "transitions": r.transitions, "ok": r.ok, "startup_s": round(startup, 1),
    "seconds": round(r.seconds, 1), "states_per_second": round(r.states / r.seconds),
    "states_per_second_per_worker": round(r.states / r.seconds / w),
    "worker_busy_s": round(dc.worker_seconds, 1), "bfs_s": round(dc.bfs_seconds, 1),
    "lock_freedom_s": round(dc.d_seconds, 1),
    "states_per_busy_worker_second": round(r.states / max(dc.worker_seconds, 1e-9)),
    "worker_cpu_s": [round(c, 1) for c in dc.cpu_seconds],
    "states_per_worker_cpu_second": [round(n / max(c, 1e-9)) for n, c in zip(dc.per_worker, dc.cpu_seconds)],
    "levels": dc.levels, "states_per_worker": dc.per_worker, "peak_rss_bytes": dc.peak_rss,
    "baseline_rss_bytes": dc.baseline_rss,
    "bytes_per_state": [round((b - b0) / max(n, 1), 1)
                        for n, b, b0 in zip(dc.per_worker, dc.peak_rss, dc.baseline_rss)],
}))
"""


def _child(code: str, *args: str) -> dict[str, object]:
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            data: dict[str, object] = json.loads(line[len("RESULT ") :])
            return data
    return {"error": (p.stdout + p.stderr)[-2000:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["frameworks", "engines"])
    ap.add_argument("--only", action="append", default=[], help="threads x depth, e.g. 3x2 (repeatable)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    out_path = Path(__file__).parent / "results" / "dist_bench.json"
    data = json.loads(out_path.read_text()) if out_path.exists() else {}
    stamp = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, 2 cores shared with other jobs",
        "load_before": Path("/proc/loadavg").read_text().split()[:3],
        "command": "python bench/dist_bench.py " + " ".join(sys.argv[1:]),
    }
    if args.what == "frameworks":
        rows = [_child(FRAMEWORK, which) for which in ("dask", "ray")]
        data["frameworks"] = {**stamp, "rows": rows}
        for row in rows:
            print(row)
    else:
        configs = [tuple(int(x) for x in o.split("x")) for o in args.only] or [(3, 2), (2, 3)]
        rows = data.setdefault("engines", {})
        for t, d in configs:
            one = _child(ONE, str(t), str(d))
            print(one, flush=True)
            many = _child(DIST, str(t), str(d), str(args.workers))
            print(many, flush=True)
            if "error" not in one and "error" not in many:
                same = (one["states"], one["transitions"]) == (many["states"], many["transitions"])
                many["agrees_with_one_process"] = same
            rows[f"{t}x{d}"] = {**stamp, "python": one, "dist": many}
    out_path.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
