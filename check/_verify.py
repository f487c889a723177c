"""The explorer's checks for ``nbbs verify``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from nbbs.check.report import Outcome as CheckOutcome
from nbbs.check.report import Task


def _mutants_caught(seconds: float) -> CheckOutcome:
    """Every code mutant fails on the mutant suite (exhaustive, 3 preemptions), the unmutated code
    passes it: ``counted``'s and the shipped ``top_down_node``'s, which the mutants break
    (``impl_mutants.reference_of``)."""
    from nbbs.check.explore import ExploreConfig, explore, parse
    from nbbs.check.impl_mutants import IMPL_MUTANTS, SUITE

    started = time.perf_counter()
    deadline = started + seconds
    cfg = ExploreConfig(strategy="exhaustive", preemption_bound=3, quiescent="stale_coal", refinement=False)
    runs, problems, complete = 0, [], True
    for text in (t.format(base) for t in SUITE for base in ("counted", "top_down_node")):
        rep = explore(parse(text + ":")[0], cfg)
        runs += rep.schedules
        if rep.failures:
            problems.append(f"the unmutated allocator fails {text}:\n{rep.failures[0][1]}")
    for name in IMPL_MUTANTS:
        if time.perf_counter() > deadline:
            complete = False  # the budget ran out: the mutants left are not tried
            break
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
        complete=complete,
    )


def _random_exploration(name: str, checked_free: bool) -> Callable[[float], CheckOutcome]:
    """Random 2-3 thread scenarios of the shipped allocator (``bits.DEFAULT_VARIANT``) under
    exhaustive search and PCT, all checks."""

    def run(seconds: float) -> CheckOutcome:
        from nbbs.check.explore import ExploreConfig, Scenario, explore, random_scenario
        from nbbs.model import bits

        started = time.perf_counter()
        deadline = started + seconds
        rng = random.Random(0)
        runs = 0
        while time.perf_counter() < deadline:
            drawn = random_scenario(rng, rng.choice((2, 3)), 2, 3)
            sc = Scenario(drawn.depth, drawn.threads, drawn.max_order, bits.DEFAULT_VARIANT, (), checked_free)
            for strategy in ("exhaustive", "pct"):
                left = max(deadline - time.perf_counter(), 0.0)
                seed = rng.randrange(1 << 30)
                rep = explore(
                    sc, ExploreConfig(strategy=strategy, seed=seed, max_schedules=300, seconds=left)
                )
                runs += rep.schedules
                if rep.failures:
                    return CheckOutcome(name, runs, False, time.perf_counter() - started, rep.failures[0][1])
        # As many schedules as the budget allows; none at all is not a complete check.
        return CheckOutcome(name, runs, True, time.perf_counter() - started, complete=runs > 0)

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
        Task(algorithm, 0.5, _random_exploration(algorithm, checked_free=False)),
        Task(api, 0.3, _random_exploration(api, checked_free=True)),
    ]
