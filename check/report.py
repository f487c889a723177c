"""How a check reports to ``nbbs verify``: one ``Outcome`` per check, one ``Task`` per check to run.

Each subsystem (the differential machines, the model checker, the explorer, the proofs)
offers ``verify_tasks() -> list[Task]``; the CLI runs them in order, each with its share of
the time budget, and prints one table row per outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """The result of one check: how much it ran, whether it passed, and what to replay if not."""

    check: str
    examples: int
    ok: bool
    seconds: float
    detail: str = ""
    """On failure, the reproducer (shrunk program, schedule or counterexample), printed as is."""
    complete: bool = True
    """False if the time budget ran out before the check did all its work (``ok`` then says
    only that nothing failed in what it did)."""


@dataclass(frozen=True)
class Task:
    """A check with its share of the total budget (shares are normalised over all tasks)."""

    name: str
    share: float
    run: Callable[[float], Outcome]
    """Runs the check within the given number of seconds: a check of fixed work stops where
    the time runs out and reports itself incomplete; a failing check may take a little longer
    (its shrinking, or the step in progress)."""
