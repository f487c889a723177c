"""Is a concurrent history linearizable with respect to a sequential model?

The search is Wing and Gong's, with Lowe's memo (as in Porcupine): a *configuration* is the
set of operations linearized so far (a bitmask) and the model state after them. From a
configuration, an operation may be linearized next if it is not yet linearized and was
called before every not-yet-linearized operation returned (otherwise some operation finished
before it began and must come first). A configuration seen once is never expanded again: the
model is a pure function of (state, operation), so the same configuration always has the same
future. The history is linearizable iff the configuration with every operation is reachable.

Contracts: ``step(state, op) -> (ok, new_state)`` is pure and states are hashable, equal
states hashing equally (``model.spec.step`` over frozensets is). Times are any totally
ordered numbers, from a logical clock (the scheduler's trace index) or from
``time.perf_counter_ns`` on real threads; an operation ``a`` precedes ``b`` in real time iff
``a.ret < b.call``.

The answer is three-valued: ``ok``, ``illegal`` (with the longest partial linearization
found, to show where every order gets stuck), or ``unknown`` when the time limit ran out. A
timeout is never ``ok``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from nbbs.model import spec as _spec

S = TypeVar("S", bound=Hashable)


class Verdict(Enum):
    """The three answers of the checker."""

    OK = "ok"
    ILLEGAL = "illegal"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Operation:
    """One call in a history: who made it, what it was with its result, when it began and ended."""

    client: int
    op: Any
    call: float
    ret: float


@dataclass
class Result(Generic[S]):
    """The verdict, and on ``illegal`` the longest prefix of a linearization that the model accepts."""

    verdict: Verdict
    longest: list[Operation] = field(default_factory=list)
    """Operations in linearization order, as far as any order got."""
    stuck_state: Any = None
    """The model state after ``longest``."""
    configurations: int = 0

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    def explain(self) -> str:
        """A few lines saying why the history is not linearizable (empty when it is)."""
        if self.verdict is Verdict.OK:
            return ""
        if self.verdict is Verdict.UNKNOWN:
            return (
                f"linearizability unknown: the time limit ran out after {self.configurations} configurations"
            )
        lines = ["no linearization exists; the longest order the model accepts:"]
        lines += [f"  {i}. thread {o.client}: {o.op}" for i, o in enumerate(self.longest)]
        lines.append(f"  then state {sorted(self.stuck_state) if self.stuck_state is not None else '?'}")
        lines.append("  accepts none of the operations that may come next")
        return "\n".join(lines)


def check(
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


def check_allocator(
    history: Sequence[Operation],
    spec: _spec.Spec,
    initial: _spec.State = _spec.EMPTY,
    timeout: float = 10.0,
) -> Result[_spec.State]:
    """Linearizability of an allocator history (``spec.Alloc`` / ``spec.Free`` ops) against ``model.spec``."""
    return check(history, initial, lambda s, op: _spec.step(spec, s, op), timeout)
