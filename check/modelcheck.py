"""Exhaustive model checking of the NBBS step machines (``model/steps.py``).

``check(Config(threads, depth, ...))`` explores every state reachable when ``threads``
threads each repeat "alloc a block of some order, then free it" forever, from every set of
live blocks the sequential allocator can leave, and checks in every state:

(a) no two *held* blocks overlap (held: its alloc returned it, its free has not been called);
(b) when no operation is in flight, the OCC words are exactly the held blocks, and every
    free block can be obtained by a sequential alloc (none is lost), while a failed
    sequential alloc leaves every word as it was;
(c) linearizability against ``model/spec.py``: alloc takes effect at its last step (the one
    that completes its climb), free at its first; the linearized state is then exactly the
    held blocks, each alloc's block is free in it at that instant, and the words show it:
    the OCC words are the linearized live blocks plus the blocks of operations in flight
    (an alloc between its occupy and its rollback's release, a free before its release).
    Any alloc may fail (the spec's ``spurious_failures``); (b) rules out failing alone;
(d) lock-freedom: no reachable cycle of steps in which no operation completes.

Each alloc is one ``attempt`` at a node the checker picks (every node of every order), or
in ``scan`` mode ``impl/nbbs.py``'s scan from a start the checker picks. A shortest
counterexample is kept for each property that fails; ``render`` prints it step by step and
``to_json`` gives the file a scheduler replays on the real allocator.

The machinery is in ``_mc``; this module is its surface.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nbbs.check._mc import PROPERTIES, PROPERTY_NAMES, Config, Result, Step, Violation, check, render
from nbbs.model import bits, steps
from nbbs.model import geometry as g
from nbbs.model.steps import Machine

__all__ = [
    "PROPERTIES",
    "PROPERTY_NAMES",
    "Config",
    "Result",
    "Step",
    "Violation",
    "check",
    "load_counterexample",
    "render",
    "replay",
    "to_json",
]


def to_json(v: Violation, cfg: Config, explanation: str) -> dict[str, Any]:
    """The counterexample as data a scheduler can replay on ``NBBS`` (``tests/data/counterexamples``).

    Each thread's ops are ``{"op": "alloc", "order": o, "node": n}`` (in ``scan`` mode ``n``
    is where the scan starts: ``hint = n - first node of its level``; in ``attempt`` mode the
    one node tried) or ``{"op": "free", "node": n}``; ``schedule`` names the thread of each
    atomic step in order (the frees' argument-check loads included when ``checked_free``).
    """
    return {
        "variant": cfg.variant if cfg.transitions is None else "mutant",
        "depth": cfg.depth,
        "max_order": cfg.top_order,
        "mode": cfg.mode,
        "checked_free": cfg.checked_free,
        "initial_live": v.initial_live,
        "threads": v.ops,
        "schedule": v.schedule,
        "property": v.prop,
        "message": v.message,
        "explanation": explanation,
    }


def load_counterexample(path: str | Path) -> dict[str, Any]:
    """A counterexample file, as written by ``to_json``."""
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def replay(data: dict[str, Any]) -> tuple[list[tuple[int, steps.Event]], list[int], list[list[int | None]]]:
    """Run a counterexample's schedule on the step machines: (thread, event) per step, the
    final words (indexed by node), and each thread's op results (alloc: node or None;
    free: None). Raises ``ValueError`` if the schedule does not fit the ops."""
    depth, max_order = data["depth"], data["max_order"]
    m = Machine(depth, depth - max_order, bits.VARIANTS[data["variant"]])
    words = [0] * g.node_count(depth)
    for n in data["initial_live"]:
        m.run(m.attempt(n), words)
    todo = [list(ops) for ops in data["threads"]]
    running: list[steps.OpState | None] = [None] * len(todo)
    results: list[list[int | None]] = [[] for _ in todo]
    trace = []
    for k in data["schedule"]:
        op = running[k]
        if op is None:
            if not todo[k]:
                raise ValueError(f"thread {k} is scheduled but has no operation left")
            spec_op = todo[k].pop(0)
            n = spec_op["node"]
            if spec_op["op"] == "free":
                op = m.free(n, data["checked_free"])
            elif data["mode"] == "scan":
                lvl = g.level(n)
                op = m.alloc(g.order_of(depth, n), n - g.first_node(lvl))
            else:
                op = m.attempt(n)
        ev, op, new = m.step(op, words)
        words[ev.node] = new
        trace.append((k, ev))
        if steps.is_done(op):
            results[k].append(steps.result(op))
            running[k] = None
        else:
            running[k] = op
    return trace, words, results
