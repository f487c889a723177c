"""The C engine: native costs (counted, reference, spin-locked buddy), bindings, the engines from Python.

Usage::

    python bench/engine_bench.py native   [--repeat 5] [--pairs 200000]   # ports/c/bench.c
    python bench/engine_bench.py callgrind [--pairs 20000]                # instructions per pair
    python bench/engine_bench.py topdown  [--repeat 7] [--pairs 200000]   # issue 12: the cheap variants
    python bench/engine_bench.py contention [--repeat 5] [--pairs 500000] # issue 12: contention near the root
    python bench/engine_bench.py bindings [--repeat 5]                    # ctypes, cffi, extension
    python bench/engine_bench.py python   [--repeat 5]                    # the engines from Python
    python bench/engine_bench.py plot                                     # the figures

Each subcommand writes ``bench/results/engine_<name>.json`` (command, date, machine, every run)
and prints a table of min and median; ``plot`` draws ``engine_native.png`` and
``engine_python.png`` from the JSON files (``topdown`` draws ``engine_topdown.png`` itself).
Ratios are taken between runs of one invocation.

``topdown`` is issue 12's native comparison: ``reference`` (the published algorithm, compiled
from the same port), ``counted``, ``top_down`` and ``top_down_node`` side by side, interleaved
within each repeat: single-thread alloc(0, random hint) + free pairs at 1,024 and 32,768 pages
with 0, 50 and 95 % of the pages held (random holes), wall and CPU ns per pair; the thread-test
loop with 1 and 2 threads (pairs per second, wall); word accesses per pair (the
``count_atomics`` build); and callgrind instructions per pair for the single-thread rows (the
one figure a loaded machine does not disturb).

``contention`` is issue 12's last row: the same four variants where threads meet near the root
(``nbbs.ports.run_contention``, ``bench.c``'s ``contention`` workload, counting build): small
trees, high orders only, 1, 2 and 4 threads (4 is oversubscribed on 2 cores, flagged in the
JSON), per pair wall and CPU ns, failed CAS, atomic operations, pairs per second, medians of
``--repeat`` runs interleaved and rotated as in ``topdown``; the load average is read before
every run, and ``--wait-load`` (a 1-minute load below it) or ``--wait-cores`` (a short 2-thread
probe whose CPU time over wall time reaches it) waits up to ``--wait-max`` seconds for a quieter
machine. Every
run ends with the end-state check (held blocks disjoint, words exactly them and quiescent,
nothing lost after freeing all); a problem stops the benchmark, except for ``reference`` with
more than one thread (the published algorithm is unsafe there: its problems are recorded).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import mmap
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbbs.impl import NBBS, LockedBuddy
from nbbs.ports import Contention, build, run_contention
from nbbs.ports._contention import driver

RESULTS = Path(__file__).parent / "results"
ALLOCATORS = ("counted", "reference", "locked")
WORKLOADS = ("linux-scalability", "thread-test", "constant-occupancy")


def machine() -> dict[str, Any]:
    """Where and when: the figures mean nothing without it."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "load_average": os.getloadavg(),
        "command": "python " + " ".join(sys.argv),
    }


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values)}


def save(name: str, data: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"engine_{name}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path}")


# -- native ------------------------------------------------------------------------------------


def bench_run(
    exe: Path, allocator: str, pages: int, workload: str, threads: int, pairs: int, fill: float, seed: int
):
    depth = pages.bit_length() - 1
    cmd = [
        str(exe),
        allocator,
        str(pages),
        str(depth),
        workload,
        str(threads),
        str(pairs),
        str(fill),
        str(seed),
    ]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def native(args: argparse.Namespace) -> None:
    """Single-thread pairs by fill, and the paper's workloads with 1 and 2 threads."""
    plain, counting = build("bench"), build("bench", count_atomics=True)
    configs = [(p, "pairs", 1, f) for p in (1024, 32768) for f in (0.0, 0.5, 0.95)]
    configs += [
        (p, w, t, 0.5 if w == "constant-occupancy" else 0.0)
        for p in (1024, 32768)
        for w in WORKLOADS
        for t in (1, 2)
    ]
    rows = []
    for pages, workload, threads, fill in configs:
        row: dict[str, Any] = {"pages": pages, "workload": workload, "threads": threads, "fill": fill}
        for allocator in ALLOCATORS:
            # Interleave the allocators within each repeat: the machine's load drifts.
            row[allocator] = []
        for r in range(args.repeat):
            for allocator in ALLOCATORS:
                out = bench_run(plain, allocator, pages, workload, threads, args.pairs, fill, r + 1)
                row[allocator].append(out["ns_per_pair"])
        for allocator in ALLOCATORS:
            times = row.pop(allocator)
            acc = bench_run(counting, allocator, pages, workload, threads, args.pairs // 4, fill, 1)
            row[allocator] = {
                "ns_per_pair": times,
                **summary(times),
                "accesses_per_pair": acc["accesses_per_pair"],
            }
        c, ref, lk = (row[a]["median"] for a in ALLOCATORS)
        row["counted/reference"] = c / ref
        row["counted/locked"] = c / lk
        rows.append(row)
        print(
            f"{pages:>6} {workload:<19} t={threads} fill={fill:<4} ns/pair min|median: "
            + "  ".join(f"{a} {row[a]['min']:.0f}|{row[a]['median']:.0f}" for a in ALLOCATORS)
            + f"  counted/reference {c / ref:.2f}  counted/locked {c / lk:.2f}",
            flush=True,
        )
    save("native", {**machine(), "max_order": "depth (the whole tree)", "rows": rows})


def instructions_per_pair(exe: Path, allocator: str, pages: int, fill: float, pairs: int) -> float:
    """Instructions per single-thread alloc(0, random hint) + free pair, counted by callgrind: the
    difference of a run of ``pairs`` and a run of none removes set-up and fill."""
    counts = []
    for n in (0, pairs):
        with tempfile.TemporaryDirectory() as d:
            depth = pages.bit_length() - 1
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/cg.out", str(exe), allocator]
            cmd += [str(pages), str(depth), "pairs", "1", str(n), str(fill), "1"]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            line = next(x for x in done.stderr.splitlines() if "Collected" in x)
            counts.append(int(line.split(":")[-1].strip()))
    return (counts[1] - counts[0]) / pairs


def callgrind(args: argparse.Namespace) -> None:
    """Instructions per pair (valgrind --tool=callgrind), repeatable on a noisy machine: one thread."""
    exe = build("bench")
    rows = []
    for pages in (1024, 32768):
        for fill in (0.0, 0.5, 0.95):
            row: dict[str, Any] = {"pages": pages, "fill": fill}
            for allocator in ALLOCATORS:
                row[allocator] = instructions_per_pair(exe, allocator, pages, fill, args.pairs)
            row["counted/reference"] = row["counted"] / row["reference"]
            row["counted/locked"] = row["counted"] / row["locked"]
            rows.append(row)
            print(
                f"{pages:>6} fill={fill:<4} instructions/pair: "
                + "  ".join(f"{a} {row[a]:.0f}" for a in ALLOCATORS)
                + f"  counted/reference {row['counted/reference']:.2f}",
                flush=True,
            )
    save("callgrind", {**machine(), "rows": rows})


# -- issue 12: the cheap variants against the published algorithm ---------------------------------

CHEAP = ("reference", "counted", "top_down", "top_down_node")
"""``topdown``'s allocators: the published algorithm first (every ratio is to it)."""


def topdown(args: argparse.Namespace) -> None:
    """reference, counted, top_down, top_down_node side by side (issue 12, item 3)."""
    plain, counting = build("bench"), build("bench", count_atomics=True)
    configs = [(p, "pairs", 1, f) for p in (1024, 32768) for f in (0.0, 0.5, 0.95)]
    configs += [(p, "thread-test", t, 0.0) for p in (1024, 32768) for t in (1, 2)]
    rows = []
    for pages, workload, threads, fill in configs:
        row: dict[str, Any] = {"pages": pages, "workload": workload, "threads": threads, "fill": fill}
        wall: dict[str, list[float]] = {a: [] for a in CHEAP}
        cpu: dict[str, list[float]] = {a: [] for a in CHEAP}
        failed: dict[str, int] = dict.fromkeys(CHEAP, 0)
        for r in range(args.repeat):
            # Interleaved, and rotated so that no allocator always runs first: the load drifts.
            for allocator in CHEAP[r % len(CHEAP) :] + CHEAP[: r % len(CHEAP)]:
                out = bench_run(plain, allocator, pages, workload, threads, args.pairs, fill, r + 1)
                wall[allocator].append(out["ns_per_pair"])
                cpu[allocator].append(out["cpu_ns_per_pair"])
                failed[allocator] += out["failed"]
        for allocator in CHEAP:
            acc = bench_run(counting, allocator, pages, workload, threads, args.pairs // 4, fill, 1)
            entry: dict[str, Any] = {
                "wall_ns_per_pair": wall[allocator],
                "cpu_ns_per_pair": cpu[allocator],
                "wall": summary(wall[allocator]),
                "cpu": summary(cpu[allocator]),
                "accesses_per_pair": acc["accesses_per_pair"],
                "failed_allocs": failed[allocator],
            }
            if workload == "thread-test":
                # Pairs per second of all threads together, from the wall time (min ns: max rate).
                entry["pairs_per_s"] = {
                    "max": 1e9 / min(wall[allocator]),
                    "median": 1e9 / entry["wall"]["median"],
                }
            else:
                entry["instructions_per_pair"] = instructions_per_pair(
                    plain, allocator, pages, fill, args.callgrind_pairs
                )
            row[allocator] = entry
        ref = row["reference"]
        for allocator in CHEAP[1:]:
            mine = row[allocator]
            ratio = {
                "wall_median": mine["wall"]["median"] / ref["wall"]["median"],
                "cpu_median": mine["cpu"]["median"] / ref["cpu"]["median"],
                "cpu_min": mine["cpu"]["min"] / ref["cpu"]["min"],
            }
            if workload == "thread-test":
                ratio["throughput_median"] = mine["pairs_per_s"]["median"] / ref["pairs_per_s"]["median"]
                ratio["throughput_max"] = mine["pairs_per_s"]["max"] / ref["pairs_per_s"]["max"]
            else:
                ratio["instructions"] = mine["instructions_per_pair"] / ref["instructions_per_pair"]
            row[f"{allocator}/reference"] = ratio
        rows.append(row)
        _print_topdown_row(row)
    save(
        args.name,
        {**machine(), "max_order": "depth (the whole tree)", "pairs_per_run": args.pairs, "rows": rows},
    )
    plot_topdown(args.name)


def _print_topdown_row(row: dict[str, Any]) -> None:
    head = f"{row['pages']:>6} {row['workload']:<11} t={row['threads']} fill={row['fill']:<4}"
    if row["workload"] == "thread-test":
        cells = [f"{a} {row[a]['pairs_per_s']['median'] / 1e6:.2f}" for a in CHEAP]
        print(f"{head} Mpairs/s median: " + "  ".join(cells), flush=True)
        return
    cells = []
    for a in CHEAP:
        e = row[a]
        cells.append(
            f"{a} {e['cpu']['min']:.0f}|{e['cpu']['median']:.0f} ns {e['instructions_per_pair']:.0f} ins"
        )
    print(f"{head} cpu min|median, instructions: " + "  ".join(cells), flush=True)


def _footer(fig: Any, data: dict[str, Any]) -> None:
    """The command, date, machine and load a figure's numbers came from, in small print."""
    fig.text(
        0.01,
        0.01,
        f"{data['command']}; {data['date']}; {data['machine']} (shared, load {data['load_average'][0]:.1f})",
        fontsize=6,
    )


def plot_topdown(name: str = "topdown") -> None:
    """``engine_<name>.png``: CPU ns and instructions per pair, and thread-test throughput."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads((RESULTS / f"engine_{name}.json").read_text())
    pairs = [r for r in data["rows"] if r["workload"] == "pairs"]
    tt = [r for r in data["rows"] if r["workload"] == "thread-test"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    width = 0.2
    panels = (
        (axes[0], pairs, lambda e: e["cpu"]["median"], "CPU ns per alloc+free pair (median)", "pages, held"),
        (
            axes[1],
            pairs,
            lambda e: e["instructions_per_pair"],
            "instructions per pair (callgrind)",
            "pages, held",
        ),
        (
            axes[2],
            tt,
            lambda e: e["pairs_per_s"]["median"] / 1e6,
            "thread-test, Mpairs/s (median)",
            "pages, threads",
        ),
    )
    for ax, rows, value, label, _ in panels:
        for i, a in enumerate(CHEAP):
            xs = [j + (i - 1.5) * width for j in range(len(rows))]
            ax.bar(xs, [value(r[a]) for r in rows], width, label=a)
        if rows is tt:
            ticks = [f"{r['pages']}\n{r['threads']} thr" for r in rows]
        else:
            ticks = [f"{r['pages']}\n{r['fill']:.0%}" for r in rows]
        ax.set_xticks(range(len(rows)), ticks, fontsize=8)
        ax.set_ylabel(label, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle("Native C: the published algorithm (reference) against the counted variants", fontsize=10)
    _footer(fig, data)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    fig.savefig(RESULTS / f"engine_{name}.png", dpi=120)
    print("wrote", RESULTS / f"engine_{name}.png")


# -- issue 12: contention near the root -------------------------------------------------------------

_ROOT_MIX = {"depth": 4, "lo": 1, "hi": 3, "hint": "random", "hold": 1, "sync": 0, "interleave": False}
_SAME = {"depth": 3, "lo": 2, "hi": 2, "hint": "same", "hold": 0, "sync": 0, "interleave": False}
SCENARIOS: dict[str, dict[str, Any]] = {
    "root-mix": _ROOT_MIX,
    "same-blocks": _SAME,
    "same-blocks-lockstep": {**_SAME, "sync": 1},
    "root-mix-interleaved": {**_ROOT_MIX, "interleave": True},
    "same-blocks-interleaved": {**_SAME, "interleave": True},
}
"""``contention``'s workloads. ``root-mix``: 16 pages, orders 1-3 (8 blocks of 2 pages at most,
every climb 1-3 levels to the root), random hints, each thread keeping its last block.
``same-blocks``: 8 pages, order 2 only (two blocks), every scan starting on the left one, every
block freed at once: both threads occupy, climb to and uncount the root for the same two
blocks. ``-lockstep``: the same with a spin barrier before every pair, so that when both threads
are running their operations start together (the barrier's time is in wall and CPU ns).
``-interleaved``: the threads take turns at every word access, round-robin (the controlled
build): every operation interleaved access by access with the others' whatever the load, so
failed CAS and atomic operations per pair are the algorithm's under contention; the time is
the hand-overs' (``sched_yield``), not the algorithm's."""

THREADS = (1, 2, 4)
"""4 threads on this 2-core machine are oversubscribed (``oversubscribed`` in the JSON)."""


def load_1min() -> float:
    """The 1-minute load average now."""
    return os.getloadavg()[0]


def wait_for_load(below: float, at_most: float) -> float:
    """Wait (polling every 10 s, at most ``at_most`` seconds) until the 1-minute load is below ``below``."""
    started = time.monotonic()
    while load_1min() >= below and time.monotonic() - started < at_most:
        time.sleep(10)
    return load_1min()


def probe_concurrency(exe: Path) -> float:
    """CPU time over wall time of a short 2-thread run (2.0: both threads had a core throughout)."""
    out = run_contention(Contention("top_down_node", 4, threads=2, pairs=200_000), exe)
    return float(out["figures"]["concurrency"])


def wait_for_cores(exe: Path, at_least: float, at_most: float) -> float:
    """Probe every 15 s (at most ``at_most`` seconds) until two threads get ``at_least`` cores' time."""
    started = time.monotonic()
    while (got := probe_concurrency(exe)) < at_least and time.monotonic() - started < at_most:
        print(f"  {time.strftime('%H:%M:%S')} load {load_1min():.2f}, concurrency {got:.2f}", flush=True)
        time.sleep(15)
    return got


def contention(args: argparse.Namespace) -> None:
    """reference, counted, top_down, top_down_node where threads meet near the root (issue 12, item 3)."""
    exe = driver()
    exes = {False: exe, True: driver(interleave=True)}
    if args.wait_load:
        print(f"waiting for load < {args.wait_load} (now {load_1min():.2f})", flush=True)
        print(f"load now {wait_for_load(args.wait_load, args.wait_max):.2f}", flush=True)
    if args.wait_cores:
        print(f"waiting for 2 threads to get {args.wait_cores} cores' time", flush=True)
        print(f"probe: {wait_for_cores(exe, args.wait_cores, args.wait_max):.2f}", flush=True)
    names = args.scenario or list(SCENARIOS)
    rows = []
    for name in names:
        shape = SCENARIOS[name]
        for threads in args.threads or THREADS:
            pairs = args.pairs // (100 if shape["interleave"] else 5 if shape["sync"] else 1)
            row: dict[str, Any] = {"scenario": name, **shape, "threads": threads, "pairs_per_thread": pairs}
            row["oversubscribed"] = threads > (os.cpu_count() or 1)
            runs: dict[str, list[dict[str, Any]]] = {a: [] for a in CHEAP}
            for r in range(args.repeat):
                for allocator in CHEAP[r % len(CHEAP) :] + CHEAP[: r % len(CHEAP)]:
                    config = Contention(allocator, threads=threads, pairs=pairs, seed=r + 1, **shape)
                    load = load_1min()
                    # The published algorithm is unsafe under contention: its problems are a result.
                    strict = allocator != "reference" or threads == 1
                    out = run_contention(config, exes[config.interleave], check=strict)
                    runs[allocator].append({"load_1min": load, **out["figures"], "problems": out["problems"]})
            for allocator in CHEAP:
                entry: dict[str, Any] = {"runs": runs[allocator]}
                for key in runs[allocator][0]:
                    if key != "problems":
                        entry[key] = statistics.median(x[key] for x in runs[allocator])
                entry["problems"] = sorted({p for x in runs[allocator] for p in x["problems"]})
                row[allocator] = entry
            ref = row["reference"]
            for allocator in CHEAP[1:]:
                mine = row[allocator]
                row[f"{allocator}/reference"] = {
                    key: mine[key] / ref[key] if ref[key] else None
                    for key in ("wall_ns_per_pair", "cpu_ns_per_pair", "pairs_per_s")
                }
            rows.append(row)
            _print_contention_row(row)
    save(
        args.name,
        {
            **machine(),
            "max_order": "depth (every climb may reach the root)",
            "build": "bench with count_atomics (per-thread access counters in the timed runs); "
            "-interleaved scenarios: the same with controlled (the turn-taking hooks)",
            "repeat": args.repeat,
            "rows": rows,
        },
    )
    print(contention_markdown(args.name))


def contention_markdown(name: str = "contention") -> str:
    """Two markdown tables of ``engine_<name>.json``: CPU ns and failed CAS per pair, and
    throughput and atomic operations per pair, medians, with the ratios to ``reference``."""
    data = json.loads((RESULTS / f"engine_{name}.json").read_text())
    head = "| workload | threads | load | concurrency | " + " | ".join(f"`{a}`" for a in CHEAP)
    one = [
        head + " | `top_down_node` / `reference` CPU, wall |",
        "|---|---|---|---|" + "---|" * len(CHEAP) + "---|",
    ]
    two = [head + " | `top_down_node` / `reference` |", one[1]]
    for row in data["rows"]:
        loads = [x["load_1min"] for a in CHEAP for x in row[a]["runs"]]
        conc = [row[a]["concurrency"] for a in CHEAP]
        threads = f"{row['threads']}" + (" (over)" if row["oversubscribed"] else "")
        lead = f"| {row['scenario']} | {threads} | {min(loads):.1f}-{max(loads):.1f} |"
        lead += f" {min(conc):.2f}-{max(conc):.2f} |"
        tdn = row["top_down_node/reference"]
        one.append(
            lead
            + "".join(
                f" {row[a]['cpu_ns_per_pair']:.0f} ({row[a]['failed_cas_per_pair']:.3f}) |" for a in CHEAP
            )
            + f" {tdn['cpu_ns_per_pair']:.2f}, {tdn['wall_ns_per_pair']:.2f} |"
        )
        two.append(
            lead
            + "".join(
                f" {row[a]['pairs_per_s'] / 1e6:.2f} ({row[a]['atomic_ops_per_pair']:.2f};"
                f" {row[a]['failed_allocs_per_pair']:.2f}) |"
                for a in CHEAP
            )
            + f" {tdn['pairs_per_s']:.2f} |"
        )
    problems = [
        f"{row['scenario']}, {row['threads']} threads, {a}: {p}"
        for row in data["rows"]
        for a in CHEAP
        for p in row[a]["problems"]
    ]
    text = "CPU ns per pair (failed CAS per pair):\n\n" + "\n".join(one)
    text += "\n\nMillion pairs per second, wall (atomic operations; failed allocs, per pair):\n\n"
    text += "\n".join(two)
    return text + "\n\nEnd-state problems: " + ("; ".join(problems) if problems else "none") + "\n"


def _print_contention_row(row: dict[str, Any]) -> None:
    flag = " (oversubscribed)" if row["oversubscribed"] else ""
    print(f"{row['scenario']} t={row['threads']}{flag}, medians:", flush=True)
    for a in CHEAP:
        e = row[a]
        print(
            f"  {a:<14} wall {e['wall_ns_per_pair']:8.1f} ns  cpu {e['cpu_ns_per_pair']:8.1f} ns  "
            f"{e['pairs_per_s'] / 1e6:6.2f} Mpairs/s  failed CAS {e['failed_cas_per_pair']:.4f}  "
            f"atomics {e['atomic_ops_per_pair']:.2f}  failed allocs {e['failed_allocs_per_pair']:.3f}  "
            f"overlap {e['time_overlap']:.2f}  "
            f"concurrency {e['concurrency']:.2f}  load {e['load_1min']:.2f}"
            + (f"  PROBLEMS {len(e['problems'])}" if e["problems"] else ""),
            flush=True,
        )


# -- bindings ----------------------------------------------------------------------------------


def timed(fn: Callable[[], None], calls: int) -> float:
    """ns per call of ``fn`` run ``calls`` times (``fn`` does one pair)."""
    started = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - started) / calls


def bindings(args: argparse.Namespace) -> None:
    """One alloc + free pair through ctypes, cffi (ABI mode) and the extension, on an empty 1,024 pages."""
    n = args.pairs
    lib_path = build("lib")
    words = mmap.mmap(-1, 8 << 11)
    results: dict[str, list[float]] = {"ctypes": [], "cffi": [], "extension": [], "extension (C loop)": []}

    lib = ctypes.CDLL(str(lib_path))
    handle = ctypes.create_string_buffer(256)
    buf = (ctypes.c_char * len(words)).from_buffer(words)
    lib.nbbs_init.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_uint64,
        ctypes.c_uint64,
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.nbbs_alloc.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.POINTER(ctypes.c_uint64),
    ]
    lib.nbbs_free.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int64]
    assert lib.nbbs_init(handle, buf, 10, 4096, 0, 10, 0) == 0
    out = ctypes.c_uint64()
    c_alloc, c_free, ref, no_hint = lib.nbbs_alloc, lib.nbbs_free, ctypes.byref(out), -(2**63)

    def via_ctypes() -> None:
        for _ in range(n):
            if c_alloc(handle, 0, no_hint, ref) == 0:
                c_free(handle, out.value, no_hint)

    try:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(
            "int nbbs_init(void *, void *, unsigned, uint64_t, uint64_t, int, int);"
            "int nbbs_alloc(void *, int64_t, int64_t, uint64_t *);"
            "int nbbs_free(void *, uint64_t, int64_t);"
        )
        flib = ffi.dlopen(str(lib_path))
        fhandle, fwords, fout = ffi.new("char[256]"), ffi.new("uint64_t[]", 1 << 11), ffi.new("uint64_t *")
        assert flib.nbbs_init(fhandle, fwords, 10, 4096, 0, 10, 0) == 0
        f_alloc, f_free = flib.nbbs_alloc, flib.nbbs_free

        def via_cffi() -> None:
            for _ in range(n):
                if f_alloc(fhandle, 0, no_hint, fout) == 0:
                    f_free(fhandle, fout[0], no_hint)
    except ImportError:
        via_cffi = None  # type: ignore[assignment]

    heap = NBBS(10, engine="c")
    alloc, free = heap.alloc, heap.free

    def via_extension() -> None:
        for _ in range(n):
            a = alloc(0)
            if a is not None:
                free(a)

    def c_loop() -> None:
        heap._pairs(0, None, n)  # type: ignore[attr-defined]

    for _ in range(args.repeat):
        results["ctypes"].append(timed(via_ctypes, n))
        if via_cffi is not None:
            results["cffi"].append(timed(via_cffi, n))
        results["extension"].append(timed(via_extension, n))
        results["extension (C loop)"].append(timed(c_loop, n))
    rows = {k: {"ns_per_pair": v, **summary(v)} for k, v in results.items() if v}
    for k, v in rows.items():
        print(f"{k:<20} ns per alloc+free pair: min {v['min']:.0f}, median {v['median']:.0f}")
    save("bindings", {**machine(), "pages": 1024, "pairs": n, "rows": rows})


# -- the engines from Python ---------------------------------------------------------------------


OCCUPANCY = (0.01, 0.5, 0.9, 0.99, 0.999)
ENGINES: dict[str, Callable[[int], Any]] = {
    "python": lambda depth: NBBS(depth),
    "c": lambda depth: NBBS(depth, engine="c"),
    "locked": lambda depth: LockedBuddy(depth),
}


def filled(make: Callable[[int], Any], depth: int, fraction: float, seed: int) -> Any:
    """An arena with ``fraction`` of its pages held as single pages at random (random holes)."""
    heap = make(depth)
    pages = [heap.alloc(0, hint=p) for p in range(1 << depth)]
    random.Random(seed).shuffle(pages)
    for address in pages[round(fraction * len(pages)) :]:
        heap.free(address, 0)
    return heap


def python_engines(args: argparse.Namespace) -> None:
    """ns per alloc(0) + free pair as occupancy grows, per engine; with and without random hints."""
    depth = args.depth
    rows = []
    for fraction in OCCUPANCY:
        row: dict[str, Any] = {"occupancy": fraction}
        samples: dict[str, list[float]] = {f"{e}/{h}": [] for e in ENGINES for h in ("last", "random")}
        native: list[float] = []
        for r in range(args.repeat):
            for engine, make in ENGINES.items():
                heap = filled(make, depth, fraction, r)
                alloc, free = heap.alloc, heap.free
                pairs = args.pairs if engine != "python" else max(args.pairs // 50, 200)
                rng = random.Random(r)
                hints = [rng.randrange(1 << depth) for _ in range(pairs)]

                def last(alloc=alloc, free=free, pairs=pairs) -> None:
                    for _ in range(pairs):
                        free(alloc(0), 0)

                def spread(alloc=alloc, free=free, hints=hints) -> None:
                    for h in hints:
                        free(alloc(0, h), 0)

                samples[f"{engine}/last"].append(timed(last, pairs))
                samples[f"{engine}/random"].append(timed(spread, pairs))
                if engine == "c":
                    native.append(timed(lambda heap=heap, pairs=pairs: heap._pairs(0, None, pairs), pairs))
        for key, values in samples.items():
            row[key] = {"ns_per_pair": values, **summary(values)}
        row["c native loop"] = {"ns_per_pair": native, **summary(native)}
        row["c from python / c native loop"] = row["c/last"]["median"] / row["c native loop"]["median"]
        rows.append(row)
        print(
            f"occupancy {fraction:<6} ns/pair median (hint last|random): "
            + "  ".join(
                f"{e} {row[e + '/last']['median']:.0f}|{row[e + '/random']['median']:.0f}" for e in ENGINES
            )
            + f"  c native loop {row['c native loop']['median']:.0f}",
            flush=True,
        )
    for key in (f"{e}/{h}" for e in ENGINES for h in ("last", "random")):
        ratio = rows[-1][key]["median"] / rows[0][key]["median"]
        print(f"{key:<16} cost at {OCCUPANCY[-1]:.1%} / at {OCCUPANCY[0]:.0%}: {ratio:.2f}")
    save("python", {**machine(), "depth": depth, "rows": rows})


# -- figures -------------------------------------------------------------------------------------


def plot(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads((RESULTS / "engine_native.json").read_text())
    pairs = [r for r in data["rows"] if r["workload"] == "pairs"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.27
    for i, a in enumerate(ALLOCATORS):
        xs = [j + (i - 1) * width for j in range(len(pairs))]
        ax.bar(xs, [r[a]["median"] for r in pairs], width, label=a)
    ax.set_xticks(range(len(pairs)), [f"{r['pages']} pages\n{r['fill']:.0%} held" for r in pairs], fontsize=8)
    ax.set_ylabel("ns per alloc+free pair (median)")
    ax.set_title("Native C, one thread, random hints", fontsize=10)
    ax.legend()
    _footer(fig, data)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(RESULTS / "engine_native.png", dpi=120)

    data = json.loads((RESULTS / "engine_python.json").read_text())
    fig, ax = plt.subplots(figsize=(10, 4))
    occ = [r["occupancy"] for r in data["rows"]]
    for e in ENGINES:
        for h, style in (("last", "-"), ("random", "--")):
            ax.plot(
                occ,
                [r[f"{e}/{h}"]["median"] for r in data["rows"]],
                style,
                marker="o",
                label=f"{e}, hint {h}",
            )
    ax.plot(
        occ, [r["c native loop"]["median"] for r in data["rows"]], ":", marker="x", label="c, native loop"
    )
    ax.set_xscale("logit")
    ax.set_yscale("log")
    ax.set_xlabel("occupancy (pages held at random)")
    ax.set_ylabel("ns per alloc(0)+free pair (median)")
    ax.set_title(f"From Python, 2**{data['depth']} pages", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _footer(fig, data)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(RESULTS / "engine_python.png", dpi=120)
    print("wrote", RESULTS / "engine_native.png", RESULTS / "engine_python.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("native")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--pairs", type=int, default=200_000, help="per thread")
    p = sub.add_parser("callgrind")
    p.add_argument("--pairs", type=int, default=20_000)
    p = sub.add_parser("topdown")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--pairs", type=int, default=200_000, help="per thread")
    p.add_argument("--callgrind-pairs", type=int, default=50_000)
    p.add_argument("--name", default="topdown", help="results: bench/results/engine_NAME.json and .png")
    p = sub.add_parser("contention")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--pairs", type=int, default=500_000, help="per thread (lockstep 1/5, interleaved 1/100)")
    p.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="repeatable; default all")
    p.add_argument("--threads", type=int, action="append", help="repeatable; default 1, 2, 4")
    p.add_argument("--wait-load", type=float, default=0.0, help="wait until the 1-min load is below this")
    p.add_argument("--wait-cores", type=float, default=0.0, help="wait until a 2-thread probe gets this")
    p.add_argument("--wait-max", type=float, default=600.0, help="seconds to wait at most")
    p.add_argument("--name", default="contention", help="results: bench/results/engine_NAME.json")
    p = sub.add_parser("contention-table", help="print contention's tables from its JSON")
    p.add_argument("--name", default="contention")
    p = sub.add_parser("bindings")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--pairs", type=int, default=200_000)
    p = sub.add_parser("python")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--pairs", type=int, default=50_000, help="per run (the Python engine does 1/50)")
    p.add_argument("--depth", type=int, default=12)
    sub.add_parser("plot")
    args = ap.parse_args()
    commands = {"native": native, "callgrind": callgrind, "topdown": topdown, "bindings": bindings}
    commands["contention"] = contention
    commands["contention-table"] = lambda a: print(contention_markdown(a.name))
    {**commands, "python": python_engines, "plot": plot}[args.what](args)


if __name__ == "__main__":
    main()
