"""Contention near the root, natively: one run of ``ports/c/bench.c``'s ``contention`` workload.

Issue 12 asks whether a top-down climb (two passes over the path) loses to the published
algorithm when threads really meet near the root. The workload makes them: a small tree
(``2**depth`` pages, ``max_order = depth`` so every climb may reach the root), every alloc of
a high order (``lo..hi``: few blocks, short paths, all through the top levels), threads
released together, each doing ``pairs`` alloc + free in a busy loop and keeping its last
``hold`` blocks. The ``count_atomics`` build counts every word access per thread, failed CAS
included: a CAS fails only when another thread wrote the word between this thread's load and
its CAS, so failed CAS per pair is the evidence of how much the threads overlapped. Two ways
to make them overlap on a machine whose cores are busy with other work: ``sync`` (lockstep:
a spin barrier every few pairs, so that operations start together when both threads run) and
``interleave`` (the threads take turns at every word access, round-robin, through the
controlled build's hooks: every operation interleaved access by access with the others',
which measures the algorithm's retries under contention, not the hardware's cost).

Each run ends with a cheap sanity check (not the verification: that is the model checker's
and the proofs'), made with the model's own definitions on what the driver prints once every
thread has stopped: the blocks still held are pairwise disjoint and inside the arena
(``spec.broken_invariants``), the words show exactly them (``tree.abstraction``) and satisfy
the variant's quiescent invariant (``tree.quiescent_violations``), no free was refused, and
after every block is freed the words show nothing and are quiescent again (no block lost).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbbs.impl.errors import NBBSError
from nbbs.model import bits, spec, tree
from nbbs.model import geometry as g
from nbbs.ports.build import build

PAGE_SIZE = 4096
"""The page size ``bench.c`` gives its arena (start 0)."""

VARIANTS = ("reference", "counted", "top_down", "top_down_node")
"""The variants of the C port, the published algorithm first."""

HINTS = ("random", "same", "none")
"""Where an alloc's scan starts: a random node of the level, its first node for every thread
(``same``: the threads race for the same blocks), or the port's per-thread spread (``none``)."""

DEPTH_MAX = 12
"""The deepest tree whose words the driver prints (``WORDS_DEPTH_MAX`` in ``bench.c``)."""


class ContentionError(NBBSError):
    """A contention run that cannot be made (bad configuration, the driver failed) or whose end
    state is wrong (the message lists every problem)."""


@dataclass(frozen=True)
class Contention:
    """One run's configuration. ``lo``/``hi`` default to ``depth - 2`` and ``depth - 1`` (at least 0)."""

    variant: str
    depth: int
    threads: int = 2
    pairs: int = 100_000
    """alloc + free pairs per thread."""
    lo: int | None = None
    hi: int | None = None
    hint: str = "random"
    hold: int = 1
    """Blocks each thread keeps (its last ``hold``); 0: every block is freed at once."""
    fill: float = 0.0
    """Share of the pages held (order 0, at random) before the threads start."""
    seed: int = 1
    sync: int = 0
    """Lockstep: the threads meet at a spin barrier every ``sync`` pairs (0: never), so that
    their operations start together; the barrier's time is in the figures."""
    interleave: bool = False
    """The threads take turns at every word access, round-robin (the controlled build's hooks):
    every operation interleaved access by access with the others', whatever the machine's
    load. The counts are the point; the time is the hand-overs'."""

    @property
    def orders(self) -> tuple[int, int]:
        """The orders allocated, lowest and highest."""
        hi = self.hi if self.hi is not None else max(self.depth - 1, 0)
        lo = self.lo if self.lo is not None else max(self.depth - 2, 0)
        return lo, hi

    def problem(self) -> str | None:
        """What is wrong with this configuration, or None."""
        lo, hi = self.orders
        if self.variant not in VARIANTS:
            return f"variant must be one of {', '.join(VARIANTS)} (the C port's), got {self.variant!r}"
        if not 1 <= self.depth <= DEPTH_MAX:
            return f"depth must be 1..{DEPTH_MAX} (a small tree: its words are checked), got {self.depth}"
        if not 0 <= lo <= hi <= self.depth:
            return f"orders must satisfy 0 <= lo <= hi <= depth = {self.depth}, got lo={lo}, hi={hi}"
        if self.hint not in HINTS:
            return f"hint must be one of {', '.join(HINTS)}, got {self.hint!r}"
        if self.threads < 1 or min(self.pairs, self.hold, self.sync) < 0:
            return (
                f"threads must be >= 1, pairs, hold and sync >= 0; got threads={self.threads}, "
                f"pairs={self.pairs}, hold={self.hold}, sync={self.sync}"
            )
        if not 0.0 <= self.fill <= 1.0:
            return f"fill must be a share of the pages, 0..1, got {self.fill}"
        if self.interleave and (self.sync or self.threads > 64):
            # A thread waiting at the barrier would never take its turn: the others would wait for it.
            return "interleave takes at most 64 threads and no sync (they would wait for each other forever)"
        return None

    def argv(self, exe: Path) -> list[str]:
        """The driver's command line."""
        lo, hi = self.orders
        pages = 1 << self.depth
        head = [str(exe), self.variant, str(pages), str(self.depth), "contention", str(self.threads)]
        tail = [str(lo), str(hi), self.hint, str(self.hold), "access" if self.interleave else str(self.sync)]
        return [*head, str(self.pairs), repr(self.fill), str(self.seed), *tail]


def driver(defects: Sequence[str] = (), *, interleave: bool = False) -> Path:
    """The benchmark executable with per-thread access counters (``build("bench", count_atomics=True)``;
    ``interleave``: the controlled build, whose hooks the turn-taking needs)."""
    return build("bench", count_atomics=True, defects=defects, controlled=interleave)


def run_contention(config: Contention, exe: Path | None = None, *, check: bool = True) -> dict[str, Any]:
    """Run the driver once; its JSON plus ``figures`` and ``problems`` (the end-state check).

    ``check``: raise ``ContentionError`` if the end state has a problem (else only report it:
    for the published algorithm, which is unsafe under contention, a problem is a result).
    """
    if (why := config.problem()) is not None:
        raise ContentionError(why)
    cmd = config.argv(exe if exe is not None else driver(interleave=config.interleave))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = done.stderr.strip()
        raise ContentionError(f"the driver failed (exit {done.returncode}): {' '.join(cmd)}\n{why}")
    out: dict[str, Any] = json.loads(done.stdout)
    out["figures"] = figures(out)
    out["problems"] = end_state_problems(out, config)
    if check and out["problems"]:
        raise ContentionError(
            f"{' '.join(cmd)}: the end of the run is wrong:\n  " + "\n  ".join(out["problems"])
        )
    return out


def figures(out: Mapping[str, Any]) -> dict[str, float]:
    """Per pair (over all threads): failed CAS, atomic operations, wall and CPU ns; pairs per
    second; and how much the threads overlapped: ``time_overlap`` is the share of the run during
    which at least two threads were inside their loops, ``concurrency`` the threads' CPU time
    over the wall time from the first loop's start to the last one's end (2.0: two threads ran
    side by side throughout)."""
    # From the threads' raw counts: the driver's per-pair figures are rounded to 3 decimals.
    total = {k: sum(t["accesses"][k] for t in out["per_thread"]) for k in out["accesses_per_pair"]}
    pairs = out["pairs"] or 1
    elapsed = out["elapsed_ns"]
    writes = ("cas", "cas_fail", "fetch_or", "fetch_and", "store")
    threads = out["per_thread"]
    # From the first loop's start to the last one's end: the threads' start-up is not in it.
    window = max(t["ended_ns"] for t in threads) - min(t["began_ns"] for t in threads)
    return {
        "failed_cas_per_pair": total["cas_fail"] / pairs,
        "atomic_ops_per_pair": sum(total[k] for k in writes) / pairs,
        "loads_per_pair": total["load"] / pairs,
        "wall_ns_per_pair": out["ns_per_pair"],
        "cpu_ns_per_pair": out["cpu_ns_per_pair"],
        "pairs_per_s": out["pairs"] / elapsed * 1e9 if elapsed else 0.0,
        "failed_allocs_per_pair": out["failed"] / out["pairs"] if out["pairs"] else 0.0,
        "time_overlap": time_overlap([(t["began_ns"], t["ended_ns"]) for t in threads]),
        "concurrency": sum(t["cpu_ns"] for t in threads) / window if window > 0 else 0.0,
    }


def time_overlap(spans: Sequence[tuple[float, float]]) -> float:
    """The share of the union of ``spans`` covered by at least two of them."""
    events = sorted([(b, 1) for b, _ in spans] + [(e, -1) for _, e in spans])
    inside, last, both = 0, 0.0, 0.0
    for at, step in events:
        if inside >= 2:
            both += at - last
        inside += step
        last = at
    whole = max(e for _, e in spans) - min(b for b, _ in spans) if spans else 0.0
    return both / whole if whole > 0 else 0.0


def end_state_problems(out: Mapping[str, Any], config: Contention) -> list[str]:
    """Everything wrong with the end of a run, one readable line each (empty: all is well)."""
    depth, variant = config.depth, config.variant
    transitions = bits.VARIANTS[variant]
    problems = []
    threads = out["per_thread"]
    if len(threads) != config.threads or any(t["pairs"] != config.pairs for t in threads):
        problems.append(f"expected {config.threads} threads of {config.pairs} pairs, got {threads}")
    refused = sum(t["free_errors"] for t in threads)
    if refused or out["final_free_errors"]:
        problems.append(
            f"frees refused: {refused} in the loop, {out['final_free_errors']} at the end (a block was "
            "handed out twice, or the words lost one)"
        )
    if config.threads == 1 and out["accesses_per_pair"]["cas_fail"]:
        problems.append(f"one thread, yet CASes failed ({out['accesses_per_pair']['cas_fail']} per pair)")
    held: list[int] = []
    for address, order in out["held"]:
        if address % (PAGE_SIZE << order) or address >= PAGE_SIZE << depth:
            problems.append(f"held block ({address}, order {order}) is misaligned or outside the arena")
        else:
            held.append(g.node_of(depth, address // PAGE_SIZE, order))
    state = frozenset(held)
    if len(state) != len(held):
        twice = sorted({n for n in held if held.count(n) > 1})
        problems.append(f"blocks held twice (by two threads, or the fill and a thread): nodes {twice}")
    if broken := spec.broken_invariants(spec.Spec.of(depth), state):
        problems.append(f"the held blocks {sorted(state)} break {', '.join(broken)}")
    for key, expected in (("words", state), ("words_after", frozenset())):
        words = out[key]
        when = "when the threads stopped" if key == "words" else "after freeing every block"
        if (shown := tree.abstraction(words, depth)) != expected:
            problems.append(f"{when} the words show blocks {sorted(shown)}, expected {sorted(expected)}")
        if broken_nodes := tree.quiescent_violations(words, depth, 0, transitions):
            problems.append(f"{when} the words are not quiescent: " + "; ".join(broken_nodes))
    return problems
