"""The checks ``nbbs verify`` runs, gathered from each subsystem's ``verify_tasks()``."""

from __future__ import annotations

from nbbs.check.report import Task


def tasks() -> list[Task]:
    """Every check of ``nbbs verify``, in the order they run."""
    from nbbs.check import differential, explore, modelcheck
    from nbbs.proofs import verify_tasks as proof_tasks

    return [
        *differential.verify_tasks(),
        *modelcheck.verify_tasks(),
        *explore.verify_tasks(),
        *proof_tasks(),
    ]
