"""Lock-freedom: stall one thread for good after each of its steps; the others must finish in a bound."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from nbbs.check._scenario import AllocOp, Op, Scenario, schedule_string
from nbbs.check._sched import Execution, Failure
from nbbs.check._strategies import RandomWalk, Replay
from nbbs.model import geometry as g

if TYPE_CHECKING:
    from nbbs.check.explore import ExploreConfig


def op_bound(scenario: Scenario, op: Op) -> int:
    """Accesses one operation makes when it runs alone, at most.

    An alloc of level ``L`` climbing ``h = L - max_level`` levels visits at most ``width(L)``
    candidates; each costs a load and a CAS, a climb of ``2h`` (load and CAS per level) and at
    worst a rollback of ``3h + 1`` (``h`` fetch-ors, a store, ``h`` unmark loads and CASes):
    ``width(L) * (5h + 3)``. A free makes at most ``max_order + 1`` checking loads, ``h``
    marks, a store and ``2h`` unmark accesses.
    """
    sc = scenario
    if isinstance(op, AllocOp):
        lvl = g.level_of_order(sc.depth, op.order)
        h = lvl - sc.max_level
        return g.width(lvl) * (5 * h + 3)
    return sc.top_order + 1 + 3 * sc.depth + 1


def progress_bound(scenario: Scenario, threads: list[int]) -> int:
    """Steps within which ``threads`` must all finish once the one other thread has stalled.

    ``S`` = the sum of ``op_bound`` over their operations. A retry loop (climb, unmark) only
    repeats when its CAS lost to a write by another running thread, costing two accesses; a
    write makes at most one CAS of each other thread lose, and the running threads make at
    most ``S`` writes. The stalled thread writes nothing more. So the bound is
    ``S * (1 + 2 * (len(threads) - 1))``.
    """
    s = sum(op_bound(scenario, op) for t in threads for op in scenario.threads[t])
    return s * (1 + 2 * max(len(threads) - 1, 0))


class _Stall:
    """Random walk in which thread ``victim`` stops for good after its ``after``-th step."""

    def __init__(self, rng: random.Random, victim: int, after: int) -> None:
        self.walk = RandomWalk(rng)
        self.victim, self.after = victim, after
        self.stalled_at: int | None = None

    def pick(self, ex: Execution, me: int) -> int:
        v = self.victim
        if v in ex.enabled and ex.schedule.count(v) >= self.after:
            if self.stalled_at is None:
                self.stalled_at = len(ex.schedule)
            ex.enabled.remove(v)
            if not ex.enabled:
                return -1
        return self.walk.pick(ex, me)


def lock_freedom(scenario: Scenario, config: ExploreConfig) -> Failure | None:
    """Stall each thread after each of its steps in turn: the others must finish within ``progress_bound``.

    Returns the first failure (with its schedule string in the message), or None.
    """
    rng = random.Random(config.seed)
    checker = config.checker(scenario)
    solo = checker.execution().run(Replay(()))
    if solo.failure is not None:
        return solo.failure
    n = len(scenario.threads)
    for victim in range(n):
        others = [t for t in range(n) if t != victim]
        bound = progress_bound(scenario, others)
        for after in range(solo.thread_steps[victim]):
            stall = _Stall(rng, victim, after)
            ex = checker.execution()
            out = ex.run(stall)
            if out.failure is not None and out.failure.kind not in ("deadlock", "stuck"):
                out.failure.message += f"\nschedule: {schedule_string(scenario, out.schedule)}"
                return out.failure
            begun = stall.stalled_at if stall.stalled_at is not None else len(out.schedule)
            finished = not ex.enabled and out.failure is None
            if not finished or len(out.schedule) - begun > bound:
                why = out.failure.message if out.failure is not None else f"{len(out.schedule) - begun} steps"
                return Failure(
                    "progress",
                    f"thread {victim} stalled after its step {after}; threads {others} did not all finish "
                    f"within {bound} steps ({why})\nschedule: {schedule_string(scenario, out.schedule)}",
                    len(out.schedule),
                )
    return None
