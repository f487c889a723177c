"""Cost of the word backends: one CAS, and one alloc+free pair of NBBS, per backend and thread count.

Usage: ``python bench/atomics_bench.py [--ops N] [--variants counted,corrected] [--json FILE]``.
Reports nanoseconds per operation measured in the same run for every backend and every
variant named (the alloc+free pairs, on an empty arena and with ``LIVE`` pages held), with the
machine beside them; the lock-based allocator is the baseline for the alloc+free pairs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from nbbs.impl import NBBS, LockedBuddy
from nbbs.impl.atomics import Backend, CereggiiWords, StripedWords


def backends() -> dict[str, Backend]:
    """Every backend this machine can run (cereggii only with the ``fast`` extra)."""
    found: dict[str, Backend] = {"striped": StripedWords}
    if importlib.util.find_spec("cereggii") is not None:
        found["cereggii"] = CereggiiWords
    return found


def per_op_ns(body: Callable[[int], None], ops: int, threads: int) -> float:
    """Wall-clock nanoseconds per operation with ``threads`` threads each running ``body(ops)``."""
    pool = [threading.Thread(target=body, args=(ops,)) for _ in range(threads)]
    started = time.perf_counter_ns()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return (time.perf_counter_ns() - started) / (ops * threads)


def cas_body(backend: Backend) -> Callable[[int], None]:
    words = backend(1024)

    def body(ops: int) -> None:
        cas = words.cas
        for i in range(ops):
            cas(i & 1023, 0, 0)

    return body


def alloc_free_body(make: Callable[[], NBBS | LockedBuddy], live: int = 0) -> Callable[[int], None]:
    """Pairs of ``alloc(i & 3)`` and ``free``, with ``live`` random pages allocated beforehand."""
    allocator = make()
    rng = random.Random(1)
    for _ in range(live):
        allocator.alloc(0, hint=rng.randrange(1 << 16))

    def body(ops: int) -> None:
        alloc, free = allocator.alloc, allocator.free
        for i in range(ops):
            address = alloc(i & 3)
            if address is not None:
                free(address)

    return body


LIVE = 1024
"""Pages held during the second workload (``alloc+free/1024``), spread over the arena: every
climb and free then meets ancestors other blocks already hold, where the published climb
skips its write and the published free stops early, and ``counted`` writes anyway."""


def _pair(live: int) -> str:
    return f"alloc+free/{live}" if live else "alloc+free"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=20000, help="operations per thread")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--variants", default="counted,corrected", help="comma-separated variants")
    args = parser.parse_args()
    rows = []
    for name, backend in backends().items():
        for threads in (1, 2):
            rows.append(("cas", name, threads, per_op_ns(cas_body(backend), args.ops * 5, threads)))
            for variant in args.variants.split(","):
                # StripedWords as the allocator sizes it (bytes for five-bit words), others as given.
                chosen = None if backend is StripedWords else backend
                make = lambda b=chosen, v=variant: NBBS(16, page_size=4096, backend=b, variant=v)  # noqa: E731
                for live in (0, LIVE):
                    ns = per_op_ns(alloc_free_body(make, live), args.ops, threads)
                    rows.append(
                        (f"alloc+free{'/' + str(live) if live else ''}", f"{name}, {variant}", threads, ns)
                    )
    for threads in (1, 2):
        make_locked = lambda: LockedBuddy(16, page_size=4096)  # noqa: E731
        for live in (0, LIVE):
            ns = per_op_ns(alloc_free_body(make_locked, live), args.ops, threads)
            rows.append((_pair(live), "locked baseline", threads, ns))
    python = f"{platform.python_implementation()} {platform.python_version()}"
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {python}"
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"machine: {machine}, GIL {'on' if gil else 'off'}")
    print(f"command: python {' '.join(sys.argv)}")
    print(f"{'operation':<16} {'backend, variant':<22} {'threads':>7} {'ns/op':>10}")
    for op, name, threads, ns in rows:
        print(f"{op:<16} {name:<22} {threads:>7} {ns:>10.0f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": machine,
            "gil": gil,
            "rows": [dict(zip(("op", "backend", "threads", "ns"), r, strict=True)) for r in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
