"""SPIN as an independent cross-check of the model checker (``nbbs check --engine spin``).

``run(Config(...))`` generates a Promela model from ``model/steps.py`` and ``model/bits.py``
(never written by hand: every op state and every word transition is tabulated from the step
machine, so a new variant, mutant or step needs nothing here), runs SPIN on it and returns
the model checker's ``Result`` with SPIN's counts and, if a property fails, SPIN's trail as
the model checker's ``Violation`` (``render`` and ``to_json`` print and save it; the bridge
replays it on the real allocator)::

    r = run(Config(2, 2))               # SpinRun: r.result.states, r.stored, r.timings
    r = run(Config(2, 2, variant="reference"))
    v = r.result.violations["b"]        # the shortest counterexample SPIN found (BFS)

SPIN keeps no thread symmetry: it stores every permutation of the threads, so its count is
``symmetric_count`` of ours (plus one: the state before ``init`` picks the initial blocks).
``swarm(cfg, K)`` runs K diversified bitstate searches (SPIN's swarm verification) for spaces
no complete search reaches. ``cross_check(cfg)`` runs both engines and lists where they
disagree; ``on_allocator(cfg, v)`` replays a counterexample on ``NBBS`` (the bridge) and gives
its ``nbbs replay`` command. ``extract`` and ``promela`` give the tables and the model text;
``available`` says whether ``spin`` and ``cc`` are installed (``INSTALL_HINT`` says how
otherwise).
"""

from __future__ import annotations

from nbbs.check._spin import (
    INSTALL_HINT,
    Moves,
    SpinFailed,
    SpinRun,
    SpinUnavailable,
    SwarmRun,
    available,
    cross_check,
    on_allocator,
    run,
    swarm,
    violation_of,
)
from nbbs.check._spin_model import VIOLATIONS, Model, Tables, extract, promela, symmetric_count

__all__ = [
    "INSTALL_HINT",
    "VIOLATIONS",
    "Model",
    "Moves",
    "SpinFailed",
    "SpinRun",
    "SpinUnavailable",
    "SwarmRun",
    "Tables",
    "available",
    "cross_check",
    "extract",
    "on_allocator",
    "promela",
    "run",
    "swarm",
    "symmetric_count",
    "violation_of",
]
