"""The search behind ``linearizability.check``: Wing and Gong's, with Lowe's memo, kept near-linear.

Operations are numbered by call time, ``0 .. n-1``; ``a`` precedes ``b`` in real time iff
``ret[a] < call[b]``. A *configuration* is the set ``L`` of operations linearized so far and
the model state after them; an operation may come next iff it is not in ``L`` and was called
no later than the earliest return among the operations not in ``L``. Three things keep the
cost of a history with few operations in flight at once proportional to its length.

**The configuration is small.** Rank the operations by return time (ties by number). Let
``p`` be the rank of the first one not in ``L``: every operation ranked below ``p`` is in
``L``, and one ranked above ``p`` can be in ``L`` only if it was called by ``ret(p)`` (else the
pending ``p`` precedes it)::

    L = {rank < p}  ∪  X,      X ⊆ open(p) = {called by ret(p), rank ≥ p}

``open(p)`` holds the operations in flight at the instant ``ret(p)``: at most one per thread
for threads that call one operation at a time. The operations that may come next are exactly
``open(p) - X``, so a configuration is ``(p, mask)``, ``mask`` saying which of ``open(p)`` are
in ``X``: two ints, hashed in constant time, where a bitmask of ``L`` costs ``n / 64`` words.
The ``open`` sets are built by one sweep as the search first reaches each ``p``.

**Segments.** If no operation is pending at some instant, every operation that returned
before it precedes every operation called after it, so the history is checked in segments cut
at such instants, each from the state the previous one ended in. That is sound only for models
whose state after a set of operations is the same for every order of them the model accepts
(``state_determined``; ``model.spec`` is one: the live blocks are those allocated and not freed).
Otherwise the history is one segment.

**The path, not a stack of states.** The depth-first search walks one path of configurations,
one frame per linearized operation (``p``, ``mask`` and which candidate it tried: ints in arrays),
and keeps the model state only at every ``CHECKPOINT``-th frame; backtracking replays at most
``CHECKPOINT - 1`` steps from the nearest one. For a state-determined model the memo is keyed on
``(p, mask)`` alone (the state is a function of ``L``), so it holds no states either.

The memo is Lowe's: a configuration reached once is never expanded again, since the model is a
pure function of (state, operation). The longest path ever walked is kept without copying: the
path is the current frames up to ``shared`` plus ``best_tail`` (reversed), and a pop below
``shared`` moves one operation from the frames to ``best_tail``.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from nbbs.impl.errors import NBBSError

CHECKPOINT = 32
"""A model state is kept at every ``CHECKPOINT``-th frame of the path."""

CLOCK_EVERY = 2048
"""Units of work (candidates looked at, steps replayed) between two looks at the clock."""


class HistoryError(NBBSError, ValueError):
    """A history the checker cannot read: a malformed record, or an operation that returns before its call."""


class Outcome(NamedTuple):
    """What the search found, in indices of the call-sorted operations."""

    verdict: str
    """``ok``, ``illegal`` or ``unknown``."""
    order: Sequence[int]
    """On ``ok`` a linearization; otherwise the longest order the model accepted."""
    state: Any
    """The model state after ``order``."""
    configurations: int
    """Configurations reached (each at most once)."""
    segments: int
    """Segments checked, the last one included."""
    operations: int
    """Operations in the history."""


class _Limits:
    """The time and configuration budget shared by every segment of one check."""

    def __init__(self, timeout: float, budget: int | None) -> None:
        self.deadline = time.monotonic() + timeout
        self.budget = budget
        self.configurations = 0
        self.work = 0
        self.next_look = CLOCK_EVERY

    def exhausted(self) -> bool:
        """True once the time or the configuration budget has run out (looks at the clock rarely)."""
        if self.budget is not None and self.configurations >= self.budget:
            return True
        if self.work < self.next_look:
            return False
        self.next_look = self.work + CLOCK_EVERY
        return time.monotonic() > self.deadline


def cuts(calls: Sequence[Any], rets: Sequence[Any]) -> list[tuple[int, int]]:
    """The segments ``[lo, hi)`` of a call-sorted history, cut where no operation is pending.

    Operation ``i`` starts a segment iff it was called after every earlier operation returned.
    """
    out: list[tuple[int, int]] = []
    lo = 0
    latest: Any = None
    for i, (c, r) in enumerate(zip(calls, rets, strict=True)):
        if i > lo and c > latest:
            out.append((lo, i))
            lo = i
        if latest is None or r > latest:
            latest = r
    if calls:
        out.append((lo, len(calls)))
    return out


def search(
    calls: Sequence[Any],
    rets: Sequence[Any],
    ops: Sequence[Any],
    init: Any,
    step: Callable[[Any, Any], tuple[bool, Any]],
    *,
    state_determined: bool,
    timeout: float,
    budget: int | None,
) -> Outcome:
    """Is the call-sorted history ``(calls, rets, ops)`` linearizable from ``init``?"""
    n = len(calls)
    bounds = cuts(calls, rets) if state_determined else [(0, n)]
    limits = _Limits(timeout, budget)
    order = array("q")
    state = init
    for k, (lo, hi) in enumerate(bounds):
        verdict, seg_order, state = _segment(
            calls[lo:hi], rets[lo:hi], ops[lo:hi], state, step, state_determined, limits
        )
        order.extend(lo + i for i in seg_order)
        if verdict != "ok":
            return Outcome(verdict, order, state, limits.configurations, k + 1, n)
    return Outcome("ok", order, state, limits.configurations, len(bounds), n)


def _segment(
    calls: Sequence[Any],
    rets: Sequence[Any],
    ops: Sequence[Any],
    init: Any,
    step: Callable[[Any, Any], tuple[bool, Any]],
    state_determined: bool,
    limits: _Limits,
) -> tuple[str, list[int], Any]:
    """One segment: the verdict, the linearization (or the longest order found), the state after it."""
    m = len(calls)
    if m == 0:
        return "ok", [], init
    if m == 1:  # most segments of a history with few threads: no search
        limits.configurations += 1
        ok, state = step(init, ops[0])
        return ("ok", [0], state) if ok else ("illegal", [], init)
    by_ret = sorted(range(m), key=lambda i: (rets[i], i))
    rank = [0] * m
    for r, i in enumerate(by_ret):
        rank[i] = r

    # open(p) for p = 0, 1, ... as far as the search has reached, flat: open(p) is
    # flat[start[p] : start[p] + width[p]], in call order.
    flat = array("q")
    start = array("q")
    width = array("q")
    live: list[int] = []
    swept = 0  # operations called so far by the sweep's instant

    def reach(q: int) -> None:
        """Extend the ``open`` sets up to ``open(q)``."""
        nonlocal live, swept
        while len(start) <= q:
            p = len(start)
            horizon = rets[by_ret[p]]
            live = [i for i in live if rank[i] >= p]
            while swept < m and calls[swept] <= horizon:
                live.append(swept)
                swept += 1
            start.append(len(flat))
            width.append(len(live))
            flat.extend(live)
            limits.work += len(live)

    def op_of(p: int, k: int) -> int:
        return flat[start[p] + k]

    def replay(d: int) -> Any:
        """The state at depth ``d`` of the path: the last checkpoint, then the frames' steps."""
        state = saved[-1]
        for j in range(d - d % CHECKPOINT, d):
            ok, state = step(state, ops[op_of(fp[j], fk[j])])
            assert ok, "the model is not a pure function: a replayed step was refused"
        limits.work += d % CHECKPOINT
        return state

    stride = m + 1  # key = mask * stride + p names (p, mask) uniquely, as p <= m
    seen: set[Any] = set()
    # The path: frame d is the configuration at depth d and the candidate it tried.
    fp = array("q")
    fmask: list[int] = []
    fk = array("q")
    saved: list[Any] = []  # saved[j]: the state at depth j * CHECKPOINT
    best_depth, best_state = -1, init
    shared, best_tail = 0, array("q")

    p, mask, state, k = 0, 0, init, 0
    while True:
        if p == m:
            return "ok", [op_of(fp[d], fk[d]) for d in range(len(fp))], state
        if len(start) <= p:
            reach(p)
        s, w = start[p], width[p]
        limits.work += w - k
        if limits.exhausted():
            if len(fp) > best_depth:
                state = replay(len(fp)) if state is None else state
                best_depth, best_state, shared, best_tail = len(fp), state, len(fp), array("q")
            path = [op_of(fp[d], fk[d]) for d in range(shared)]
            return "unknown", path + best_tail[::-1].tolist(), best_state
        moved = False
        while k < w:
            if mask >> k & 1:
                k += 1
                continue
            c = flat[s + k]
            if c != by_ret[p]:
                np, nmask = p, mask | 1 << k
            elif not mask:
                np, nmask = p + 1, 0
            else:
                np, nmask = _advance(p, mask, s, w, flat, by_ret, m, reach, start, width)
            key: Any = nmask * stride + np
            if state_determined and key in seen:
                k += 1
                continue
            if state is None:
                state = replay(len(fp))
            ok, nstate = step(state, ops[c])
            if not ok:
                k += 1
                continue
            if not state_determined:
                key = (key, nstate)
                if key in seen:
                    k += 1
                    continue
            seen.add(key)
            limits.configurations += 1
            if len(fp) % CHECKPOINT == 0:
                saved.append(state)
            fp.append(p)
            fmask.append(mask)
            fk.append(k)
            p, mask, state, k = np, nmask, nstate, 0
            moved = True
            break
        if moved:
            continue
        # A dead end: every candidate is refused by the model or leads somewhere seen.
        d = len(fp)
        if d > best_depth:
            state = replay(d) if state is None else state
            best_depth, best_state, shared, best_tail = d, state, d, array("q")
        if d == 0:
            return "illegal", best_tail[::-1].tolist(), best_state
        d -= 1
        p, mask, k = fp.pop(), fmask.pop(), fk.pop()
        if d < shared:
            best_tail.append(op_of(p, k))
            shared = d
        k += 1
        # The state at depth d is rebuilt only if a candidate needs it: a dead end often
        # unwinds many frames whose other candidates lead nowhere new.
        state = saved.pop() if d % CHECKPOINT == 0 else None


def _advance(
    p: int,
    mask: int,
    s: int,
    w: int,
    flat: array[int],
    by_ret: list[int],
    m: int,
    reach: Callable[[int], None],
    start: array[int],
    width: array[int],
) -> tuple[int, int]:
    """The configuration after linearizing ``by_ret[p]``, the first pending operation by return,
    when others in flight (``mask``, not empty) are linearized already.

    ``p`` moves past it and past every operation after it (by return) already in ``X``; the
    rest of ``X`` is renumbered as positions in the new ``open`` set.
    """
    q = p + 1
    ahead = {flat[s + j] for j in range(w) if mask >> j & 1}
    while q < m and by_ret[q] in ahead:
        ahead.discard(by_ret[q])
        q += 1
    if not ahead:
        return q, 0
    reach(q)
    t = start[q]
    nmask = 0
    for j in range(width[q]):
        if flat[t + j] in ahead:
            nmask |= 1 << j
    return q, nmask
