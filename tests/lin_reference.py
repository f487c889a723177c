"""The linearizability search before it was made near-linear: the oracle the new one must agree with.

Wing and Gong's search with Lowe's memo on (bitmask of linearized operations, state), the
horizon recomputed by a scan at every configuration: quadratic in the history's length, but
short and plainly right. Kept verbatim (from commit 94e5752) for the agreement tests and for
``bench/lin_bench.py --old``; nothing else may call it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from nbbs.check.linearizability import Operation, Result, Verdict

S = TypeVar("S", bound=Hashable)


def reference_check(
    history: Sequence[Operation],
    init: S,
    step: Callable[[S, Any], tuple[bool, S]],
    timeout: float = 10.0,
) -> Result[S]:
    """Decide whether ``history`` (complete operations only) is linearizable from ``init``."""
    ops = sorted(history, key=lambda o: o.call)
    n = len(ops)
    full = (1 << n) - 1
    calls = [o.call for o in ops]
    rets = [o.ret for o in ops]
    seen: set[tuple[int, S]] = {(0, init)}
    best: Any = None
    best_depth, best_state = 0, init
    deadline = time.monotonic() + timeout
    expanded = 0
    # Depth-first over configurations; each entry carries its path as a linked list
    # (operation, parent link) so pushing is O(1) and the longest path can be rebuilt.
    stack: list[tuple[int, S, int, Any]] = [(0, init, 0, None)]
    while stack:
        mask, state, depth, link = stack.pop()
        expanded += 1
        if expanded & 1023 == 0 and time.monotonic() > deadline:
            return Result(Verdict.UNKNOWN, _unlink(ops, best), best_state, expanded)
        if mask == full:
            return Result(Verdict.OK, configurations=expanded)
        if depth > best_depth:
            best, best_depth, best_state = link, depth, state
        # Only an operation called before the earliest pending return can be next.
        horizon = min(rets[i] for i in range(n) if not mask >> i & 1)
        for i in range(n - 1, -1, -1):
            if mask >> i & 1 or calls[i] > horizon:
                continue
            ok, nxt = step(state, ops[i].op)
            if not ok:
                continue
            key = (mask | 1 << i, nxt)
            if key in seen:
                continue
            seen.add(key)
            stack.append((key[0], nxt, depth + 1, (i, link)))
    return Result(Verdict.ILLEGAL, _unlink(ops, best), best_state, expanded)


def _unlink(ops: list[Operation], link: Any) -> list[Operation]:
    out = []
    while link is not None:
        out.append(ops[link[0]])
        link = link[1]
    return out[::-1]
