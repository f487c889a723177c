"""Scenarios and schedules as Hypothesis data: a failure shrinks to few threads, operations, preemptions.

A schedule is drawn as a few *preemption points* ``{step: thread}`` over an otherwise
non-preemptive run (``Preemptions``): Hypothesis shrinks the dictionary towards fewer and
earlier entries, hence towards the fewest context switches that still fail.
"""

from __future__ import annotations

from hypothesis import strategies as st

from nbbs.check._scenario import AllocOp, FreeOwn, Op, Scenario
from nbbs.model import bits
from nbbs.model import geometry as g


@st.composite
def _thread(draw: st.DrawFn, depth: int, top: int, max_ops: int) -> tuple[Op, ...]:
    ops: list[Op] = []
    unfreed: list[int] = []
    allocs = 0
    for _ in range(draw(st.integers(1, max_ops))):
        free: bool = bool(unfreed) and draw(st.booleans())
        if free:
            k: int = draw(st.sampled_from(unfreed))
            unfreed.remove(k)
            ops.append(FreeOwn(k))
        else:
            order = draw(st.integers(0, top))
            hint = draw(st.integers(0, g.width(g.level_of_order(depth, order)) - 1))
            ops.append(AllocOp(order, hint))
            unfreed.append(allocs)
            allocs += 1
    return tuple(ops)


@st.composite
def scenarios(
    draw: st.DrawFn,
    allocator: str = bits.DEFAULT_VARIANT,
    depths: tuple[int, ...] = (2, 3),
    max_threads: int = 4,
    max_ops: int = 3,
    checked_free: bool = True,
) -> Scenario:
    """A scenario: a depth, 2 to ``max_threads`` threads of 1 to ``max_ops`` operations (orders up to 2)."""
    depth = draw(st.sampled_from(depths))
    top = min(depth, 2)
    n = draw(st.integers(2, max_threads))
    threads = tuple(draw(_thread(depth, top, max_ops)) for _ in range(n))
    return Scenario(depth, threads, allocator=allocator, checked_free=checked_free)


def preemption_points(max_step: int = 80, max_points: int = 4) -> st.SearchStrategy[dict[int, int]]:
    """Where the otherwise non-preemptive run switches, and to which runnable thread (by rank)."""
    return st.dictionaries(st.integers(0, max_step), st.integers(0, 3), max_size=max_points)
