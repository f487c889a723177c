"""Controlled interleavings of the real allocator: run ``impl/nbbs.py`` in logical threads, check each run.

The allocator's own code runs unchanged in greenlets over a word backend whose every load,
cas, fetch_or, fetch_and and store is a scheduling point; a strategy decides which thread
performs the next access. Every execution is checked (``_checks``) and named by a schedule
string that ``replay`` re-runs step by step. ``docs/explorer.md`` has the design.

Public surface::

    explore(scenario, config) -> Report          # many schedules of one scenario
    run_schedule(text_or_scenario, schedule)     # one execution, checked -> Outcome
    replay(text) -> str                          # its step-by-step trace, as text
    lock_freedom(scenario, config) -> Failure | None
    register_allocator(name, NBBS subclass or builder)
    Scenario, AllocOp, FreeOwn, FreeNode, ExploreConfig, random_scenario
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from nbbs.check._allocators import register as register_allocator
from nbbs.check._checks import Checker, explain, render_trace
from nbbs.check._hypothesis import preemption_points, scenarios
from nbbs.check._scenario import (
    AllocOp,
    ExplorerError,
    FreeNode,
    FreeOwn,
    InternalBug,
    Op,
    Scenario,
    decode_schedule,
    encode_schedule,
    parse,
    schedule_string,
)
from nbbs.check._sched import Execution, Failure, Outcome
from nbbs.check._strategies import PCT, Exhaustive, Preemptions, RandomWalk, Replay
from nbbs.check.report import Outcome as CheckOutcome
from nbbs.check.report import Task
from nbbs.model import geometry as g

__all__ = [
    "AllocOp",
    "ExploreConfig",
    "ExplorerError",
    "Failure",
    "FreeNode",
    "FreeOwn",
    "InternalBug",
    "Op",
    "Outcome",
    "Preemptions",
    "Report",
    "Scenario",
    "check_points",
    "decode_schedule",
    "encode_schedule",
    "explain",
    "explore",
    "lock_freedom",
    "op_bound",
    "parse",
    "preemption_points",
    "random_scenario",
    "register_allocator",
    "replay",
    "run_points",
    "run_schedule",
    "scenarios",
    "schedule_string",
    "verify_tasks",
]

StrategyName = Literal["random", "pct", "exhaustive"]


@dataclass(frozen=True)
class ExploreConfig:
    """Every bound of an exploration, with its default.

    ``strategy``          random (uniform random walk), pct, or exhaustive.
    ``seed``              the one seed every random choice derives from (random, pct).
    ``max_schedules``     stop after this many executions (default 1000).
    ``seconds``           stop after this much time (None: no time limit).
    ``pct_depth``         PCT's bug depth d (default 3: two ordering constraints, d - 1 = 2 change points).
    ``preemption_bound``  exhaustive: most preemptions per schedule (default 2).
    ``max_steps``         accesses per execution before it is reported stuck (default 20,000).
    ``lin_timeout``       seconds per linearizability check before it answers unknown (default 5).
    ``quiescent``         obtainable (default: the model checker's property (b), every free block
                          can be had sequentially), strict (``tree.inv_quiescent``), stale_coal
                          (strict with COAL bits ignored), or off.
    ``refinement``        compare every access with ``model.steps`` under the same schedule.
    ``stop_on_failure``   stop at the first failing execution (default True).
    """

    strategy: StrategyName = "random"
    seed: int = 0
    max_schedules: int = 1000
    seconds: float | None = None
    pct_depth: int = 3
    preemption_bound: int = 2
    max_steps: int = 20_000
    lin_timeout: float = 5.0
    quiescent: Literal["obtainable", "strict", "stale_coal", "off"] = "obtainable"
    refinement: bool = True
    stop_on_failure: bool = True

    def __post_init__(self) -> None:
        if self.strategy not in ("random", "pct", "exhaustive"):
            raise ExplorerError(f"strategy must be random, pct or exhaustive, got {self.strategy!r}")
        if self.max_schedules < 1 or self.max_steps < 1 or self.preemption_bound < 0 or self.pct_depth < 1:
            raise ExplorerError(
                "max_schedules, max_steps and pct_depth must be positive and preemption_bound non-negative"
            )

    def checker(self, scenario: Scenario) -> Checker:
        """The checker of ``scenario`` with this config's checks."""
        return Checker(scenario, self.max_steps, self.lin_timeout, self.quiescent, self.refinement)


@dataclass
class Report:
    """What an exploration did and found."""

    scenario: Scenario
    strategy: str
    schedules: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(schedule string, explanation) of each failing execution."""
    exhausted: bool = False
    """Exhaustive only: every schedule within the bound was run."""
    pruned: int = 0
    """Exhaustive only: choices the sleep sets skipped."""
    first_failure_at: int | None = None
    """How many schedules had run when the first failure was found."""
    failed_at: list[int] = field(default_factory=list)
    """For each failure, how many schedules had run when it was found."""

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def rate(self) -> float:
        """Schedules per second."""
        return self.schedules / self.seconds if self.seconds else 0.0


def explore(
    scenario: Scenario, config: ExploreConfig = ExploreConfig(), progress: Callable[[int], None] | None = None
) -> Report:
    """Run many schedules of ``scenario`` under ``config``'s strategy; check each."""
    checker = config.checker(scenario)
    rng = random.Random(config.seed)
    report = Report(scenario, config.strategy)
    started = time.perf_counter()
    deadline = None if config.seconds is None else started + config.seconds
    exhaustive = Exhaustive(config.preemption_bound) if config.strategy == "exhaustive" else None
    longest = 0
    while report.schedules < config.max_schedules:
        if config.strategy == "random":
            strategy: RandomWalk | PCT | Exhaustive = RandomWalk(rng)
        elif config.strategy == "pct":
            if not longest:
                longest = len(checker.execution().run(Replay(())).schedule)
            strategy = PCT(rng, len(scenario.threads), longest, config.pct_depth)
        else:
            assert exhaustive is not None
            strategy = exhaustive
        out = checker.run(strategy)
        report.schedules += 1
        longest = max(longest, len(out.schedule))
        if out.failure is not None:
            report.failures.append((schedule_string(scenario, out.schedule), explain(scenario, out)))
            report.failed_at.append(report.schedules)
            if report.first_failure_at is None:
                report.first_failure_at = report.schedules
            if config.stop_on_failure:
                break
        if exhaustive is not None and not exhaustive.advance(len(out.schedule)):
            report.exhausted = True
            break
        if progress is not None and report.schedules & 63 == 0:
            progress(report.schedules)
        if deadline is not None and report.schedules & 15 == 0 and time.perf_counter() > deadline:
            break
    report.seconds = time.perf_counter() - started
    if exhaustive is not None:
        report.pruned = exhaustive.pruned
    return report


def run_schedule(
    scenario: Scenario | str, schedule: list[int] | None = None, config: ExploreConfig = ExploreConfig()
) -> Outcome:
    """One checked execution: of a schedule string, or of ``scenario`` under ``schedule``.

    Past the schedule's end the threads run without preemption.
    """
    if isinstance(scenario, str):
        scenario, parsed = parse(scenario)
        schedule = parsed if schedule is None else schedule
    return config.checker(scenario).run(Replay(schedule or ()))


def run_points(
    scenario: Scenario, points: dict[int, int], config: ExploreConfig = ExploreConfig()
) -> Outcome:
    """One checked execution, non-preemptive except at ``points`` (``{step: thread rank}``).

    The form Hypothesis draws (``preemption_points``).
    """
    return config.checker(scenario).run(Preemptions(points))


def check_points(scenario: Scenario, points: dict[int, int], config: ExploreConfig = ExploreConfig()) -> None:
    """Raise ``AssertionError`` with the full explanation if the execution at ``points`` fails.

    For ``@given(scenarios(), preemption_points())`` tests: Hypothesis shrinks the failure and
    the message carries the schedule string, the threads, the lost CASes and the trees.
    """
    out = run_points(scenario, points, config)
    if out.failure is not None:
        raise AssertionError(explain(scenario, out))


def replay(text: str, config: ExploreConfig = ExploreConfig()) -> tuple[Outcome, str]:
    """Re-run a schedule string: the outcome and its step-by-step trace (with the failure explained)."""
    scenario, schedule = parse(text)
    out = run_schedule(scenario, schedule, config)
    body = render_trace(out, scenario.depth)
    if out.failure is not None:
        body += "\n\n" + explain(scenario, out)
    else:
        body += f"\n\nall checks passed ({len(out.schedule)} steps, {out.preemptions} preemption(s))"
    return out, body


def random_scenario(
    rng: random.Random, threads: int, ops: int, depth: int, allocator: str = "nbbs"
) -> Scenario:
    """``threads`` threads of ``ops`` operations each: allocs of small orders at random hints, and frees."""
    top = min(depth, 2)
    out: list[tuple[Op, ...]] = []
    for _ in range(threads):
        thread: list[Op] = []
        allocs, freed = 0, set()
        for _ in range(ops):
            live = [k for k in range(allocs) if k not in freed]
            if live and rng.random() < 0.5:
                k = rng.choice(live)
                freed.add(k)
                thread.append(FreeOwn(k))
            else:
                order = rng.randint(0, top)
                thread.append(AllocOp(order, rng.randrange(g.width(g.level_of_order(depth, order)))))
                allocs += 1
        out.append(tuple(thread))
    return Scenario(depth, tuple(out), allocator=allocator)


# -- lock-freedom ---------------------------------------------------------------------------


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


def lock_freedom(scenario: Scenario, config: ExploreConfig = ExploreConfig()) -> Failure | None:
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
            ex = Execution(scenario, checker._factory, config.max_steps)
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


# -- nbbs verify ----------------------------------------------------------------------------


def _mutants_caught(seconds: float) -> CheckOutcome:
    """Every code mutant fails on the mutant suite (exhaustive, 3 preemptions), the reference passes it."""
    from nbbs.check.impl_mutants import IMPL_MUTANTS, SUITE

    started = time.perf_counter()
    cfg = ExploreConfig(strategy="exhaustive", preemption_bound=3, quiescent="stale_coal", refinement=False)
    runs, problems = 0, []
    for text in SUITE:
        rep = explore(parse(text.format("nbbs") + ":")[0], cfg)
        runs += rep.schedules
        if rep.failures:
            problems.append(f"the reference fails {text.format('nbbs')}:\n{rep.failures[0][1]}")
    for name in IMPL_MUTANTS:
        for text in SUITE:
            rep = explore(parse(text.format(name) + ":")[0], cfg)
            runs += rep.schedules
            if rep.failures:
                break
        else:
            problems.append(f"no suite scenario catches the mutant {name}")
    return CheckOutcome(
        "explore: code mutants caught",
        runs,
        not problems,
        time.perf_counter() - started,
        "\n\n".join(problems),
    )


def _random_exploration(name: str, checked_free: bool) -> Callable[[float], CheckOutcome]:
    """Random 2-3 thread scenarios of the shipped allocator under exhaustive search and PCT, all checks."""

    def run(seconds: float) -> CheckOutcome:
        started = time.perf_counter()
        deadline = started + seconds
        rng = random.Random(0)
        runs = 0
        while time.perf_counter() < deadline:
            drawn = random_scenario(rng, rng.choice((2, 3)), 2, 3)
            sc = Scenario(drawn.depth, drawn.threads, drawn.max_order, "nbbs", (), checked_free)
            for strategy in ("exhaustive", "pct"):
                left = max(deadline - time.perf_counter(), 0.0)
                seed = rng.randrange(1 << 30)
                rep = explore(
                    sc, ExploreConfig(strategy=strategy, seed=seed, max_schedules=300, seconds=left)
                )
                runs += rep.schedules
                if rep.failures:
                    return CheckOutcome(name, runs, False, time.perf_counter() - started, rep.failures[0][1])
        return CheckOutcome(name, runs, True, time.perf_counter() - started)

    return run


def verify_tasks() -> list[Task]:
    """The explorer's checks for ``nbbs verify``.

    The algorithm's run calls ``_free_node`` as the model checker's free does; the API's run
    goes through ``NBBS.free`` and its argument check, which races with allocs (docs/explorer.md).
    """
    algorithm = "explore: algorithm (unchecked frees)"
    api = "explore: alloc/free API"
    return [
        Task("explore: code mutants caught", 0.5, _mutants_caught),
        Task(algorithm, 0.7, _random_exploration(algorithm, checked_free=False)),
        Task(api, 0.3, _random_exploration(api, checked_free=True)),
    ]
