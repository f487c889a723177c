"""How the next thread is chosen: random walk, PCT, replay, preemption points, bounded exhaustive search.

A strategy's ``pick(ex, me)`` returns one thread of ``ex.enabled``; ``me`` is the thread that
just announced its next access (-1 when none is running: at the start, or after a thread
ended). Every random choice comes from the one ``random.Random`` the strategy was given.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from nbbs.check._scenario import ExplorerError, InternalBug
from nbbs.check._sched import LOAD, Execution


def _default(ex: Execution, me: int) -> int:
    """No preemption: the running thread goes on if it can, else the lowest runnable thread."""
    return me if me >= 0 and me in ex.enabled else ex.enabled[0]


class RandomWalk:
    """Each step, a thread chosen uniformly among the runnable ones."""

    def __init__(self, rng: random.Random) -> None:
        self._random = rng.random

    def pick(self, ex: Execution, me: int) -> int:
        e = ex.enabled
        return e[0] if len(e) == 1 else e[int(self._random() * len(e))]


class PCT:
    """Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010).

    Threads get distinct random priorities ``d .. d + n - 1``; ``d - 1`` change points are drawn
    uniformly from the first ``k`` steps. The runnable thread of highest priority always runs;
    when step ``k_j`` is reached, the running thread's priority drops to ``d - j`` (below every
    initial one). For a program of ``n`` threads and at most ``k`` steps, every bug of depth
    ``d`` (one that needs ``d`` ordering constraints between steps to show) is found by one run
    with probability at least ``1 / (n * k**(d - 1))``.
    """

    def __init__(self, rng: random.Random, threads: int, steps: int, depth: int) -> None:
        if depth < 1:
            raise ExplorerError(f"PCT bug depth d must be at least 1, got {depth}")
        order = list(range(threads))
        rng.shuffle(order)
        self.priority = [0] * threads
        for rank, t in enumerate(order):
            self.priority[t] = depth + rank
        points = rng.sample(range(1, max(steps, depth) + 1), depth - 1)
        self.change = {k: depth - 1 - j for j, k in enumerate(sorted(points))}

    def pick(self, ex: Execution, me: int) -> int:
        prio = self.priority
        e = ex.enabled
        best = e[0]
        for t in e:
            if prio[t] > prio[best]:
                best = t
        low = self.change.get(len(ex.schedule))
        if low is not None:
            prio[best] = low
            for t in e:
                if prio[t] > prio[best]:
                    best = t
        return best


class Replay:
    """Follow a given schedule; past its end, run without preemption."""

    def __init__(self, schedule: Sequence[int]) -> None:
        self.schedule = schedule

    def pick(self, ex: Execution, me: int) -> int:
        step = len(ex.schedule)
        if step < len(self.schedule):
            t = self.schedule[step]
            if t not in ex.enabled:
                raise ExplorerError(
                    f"the schedule does not fit the scenario: step {step} names thread {t}, "
                    f"but only threads {ex.enabled} can run there (a schedule replays only on the "
                    f"allocator and operations it was found with; this one runs {ex.scenario.allocator!r})"
                )
            return t
        return _default(ex, me)


class Preemptions:
    """Run without preemption except at the given steps, where the thread named (mod runnable) runs.

    The form Hypothesis draws: a short list of (step, thread) pairs shrinks towards fewer and
    earlier preemptions.
    """

    def __init__(self, points: dict[int, int]) -> None:
        self.points = points

    def pick(self, ex: Execution, me: int) -> int:
        t = self.points.get(len(ex.schedule))
        if t is None:
            return _default(ex, me)
        return ex.enabled[t % len(ex.enabled)]


@dataclass(slots=True)
class _Frame:
    """One decision point of the exhaustive search. Thread sets are bitmasks (bit ``t`` = thread ``t``)."""

    enabled: list[int]
    nodes: tuple[int, ...]
    kinds: tuple[int, ...]
    """Each thread's next access (node, kind) at this point, indexed by thread."""
    me: int
    """The thread that ran the step before (-1 if none): switching away from it is a preemption."""
    preemptions: int
    """Preemptions spent before this decision."""
    sleep: int
    """Threads whose next step here is known to lead only to explored orders (sleep set)."""
    chosen: int = -1
    done: int = 0
    """Choices already explored from here (the current one included)."""
    carried: int = 0
    """Threads asleep or explored here before ``chosen``: candidates for the next frame's sleep set."""


def independent(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Two accesses commute: different words, or both loads."""
    return a[0] != b[0] or (a[1] == LOAD and b[1] == LOAD)


class Exhaustive:
    """Every schedule with at most ``bound`` preemptions, up to reordering of independent accesses.

    Stateless search: each execution replays a prefix of decisions and then runs without
    preemption, recording a frame per decision. ``advance()`` backtracks to the deepest frame
    with an unexplored choice that keeps within the preemption bound and is not in the
    frame's sleep set (Godefroid's sleep sets: a thread whose pending access commutes with
    everything run since it was explored stays asleep, because every order it would lead to
    was covered). The pair "different words or two loads" is the independence relation.
    """

    def __init__(self, bound: int, sleep_sets: bool = True) -> None:
        self.bound = bound
        self.sleep_sets = sleep_sets
        """False turns the partial-order reduction off (to measure it, and to test that it loses nothing)."""
        self.frames: list[_Frame | None] = []
        """One per decision of the last execution; None where only one thread could run."""
        self.prefix = 0
        """Decisions to replay from ``frames`` in the next execution."""
        self.pruned = 0
        """Choices skipped because they were asleep."""

    def pick(self, ex: Execution, me: int) -> int:
        step = len(ex.schedule)
        frames = self.frames
        enabled = ex.enabled
        if step < self.prefix:
            f = frames[step]
            if f is None:
                if len(enabled) != 1:
                    raise InternalBug(
                        f"exhaustive replay diverged at step {step}: runnable {enabled}, recorded one"
                    )
                return enabled[0]
            if enabled != f.enabled:
                raise InternalBug(
                    f"exhaustive replay diverged at step {step}: runnable {enabled}, recorded {f.enabled}"
                )
            return f.chosen
        if len(enabled) == 1:
            # No choice, and the sleep set empties: its only possible member runs now.
            frames.append(None)
            return enabled[0]
        sleep = 0
        prev = frames[step - 1] if step > 0 and self.sleep_sets else None
        if prev is not None:
            candidates = prev.carried & ~(1 << prev.chosen)
            if candidates:
                rn, rk = prev.nodes[prev.chosen], prev.kinds[prev.chosen]
                for u in enabled:
                    if candidates >> u & 1 and (
                        prev.nodes[u] != rn or (rk == LOAD and prev.kinds[u] == LOAD)
                    ):
                        sleep |= 1 << u
        f = _Frame(list(enabled), tuple(ex.pending_node), tuple(ex.pending_kind), me, ex.preemptions, sleep)
        running = me >= 0 and me in enabled
        if not sleep:
            c = me if running else enabled[0]
        else:
            awake = [t for t in enabled if not sleep >> t & 1]
            self.pruned += len(enabled) - len(awake)
            if running and (me in awake or f.preemptions >= self.bound):
                c = me
            else:
                c = awake[0] if awake else (me if running else enabled[0])
        f.chosen, f.done, f.carried = c, 1 << c, sleep
        frames.append(f)
        return c

    def advance(self, executed: int) -> bool:
        """Prepare the next execution after one that made ``executed`` decisions; False when done."""
        del self.frames[executed:]
        for j in range(len(self.frames) - 1, -1, -1):
            f = self.frames[j]
            if f is None:
                continue
            running = f.me >= 0 and f.me in f.enabled
            for t in f.enabled:
                if (f.done | f.sleep) >> t & 1:
                    continue
                if running and t != f.me and f.preemptions + 1 > self.bound:
                    continue
                f.carried = f.sleep | f.done
                f.done |= 1 << t
                f.chosen = t
                del self.frames[j + 1 :]
                self.prefix = j + 1
                return True
        return False
