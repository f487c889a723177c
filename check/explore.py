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
    Scenario, AllocOp, FreeOwn, FreeNode, DoubleFree, ExploreConfig, random_scenario
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from nbbs.check import _progress, _verify
from nbbs.check._allocators import register as register_allocator
from nbbs.check._checks import Checker, explain, render_trace
from nbbs.check._hypothesis import preemption_points, scenarios
from nbbs.check._progress import op_bound, progress_bound
from nbbs.check._scenario import (
    AllocOp,
    DoubleFree,
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
from nbbs.check._sched import Failure, Outcome, RemoteThreads
from nbbs.check._strategies import PCT, Exhaustive, Preemptions, RandomWalk, Replay
from nbbs.check.report import Task
from nbbs.model import bits
from nbbs.model import geometry as g

__all__ = [
    "AllocOp",
    "DoubleFree",
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
    "progress_bound",
    "random_scenario",
    "register_allocator",
    "render_trace",
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

    def checker(self, scenario: Scenario, remote: RemoteThreads | None = None) -> Checker:
        """The checker of ``scenario`` with this config's checks (run on ``remote``'s threads if given)."""
        return Checker(scenario, self.max_steps, self.lin_timeout, self.quiescent, self.refinement, remote)


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
    scenario: Scenario,
    config: ExploreConfig = ExploreConfig(),
    progress: Callable[[int], None] | None = None,
    remote: RemoteThreads | None = None,
) -> Report:
    """Run many schedules of ``scenario`` under ``config``'s strategy; check each.

    ``remote``: run them on another process's threads (a port in controlled mode) instead of
    the scenario's local allocator; everything else is the same.
    """
    checker = config.checker(scenario, remote)
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
    scenario: Scenario | str,
    schedule: list[int] | None = None,
    config: ExploreConfig = ExploreConfig(),
    remote: RemoteThreads | None = None,
) -> Outcome:
    """One checked execution: of a schedule string, or of ``scenario`` under ``schedule``.

    Past the schedule's end the threads run without preemption. ``remote`` as in ``explore``.
    """
    if isinstance(scenario, str):
        scenario, parsed = parse(scenario)
        schedule = parsed if schedule is None else schedule
    return config.checker(scenario, remote).run(Replay(schedule or ()))


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
    rng: random.Random, threads: int, ops: int, depth: int, allocator: str = bits.DEFAULT_VARIANT
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


def lock_freedom(scenario: Scenario, config: ExploreConfig = ExploreConfig()) -> Failure | None:
    """Stall each thread after each of its steps in turn: the others must finish within ``progress_bound``.

    Returns the first failure (with its schedule string in the message), or None.
    """
    return _progress.lock_freedom(scenario, config)


def verify_tasks() -> list[Task]:
    """The explorer's checks for ``nbbs verify`` (``_verify``)."""
    return _verify.verify_tasks()
