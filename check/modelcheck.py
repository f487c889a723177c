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

The machinery is in ``_mc``; this module is its surface. ``check_vec`` runs the same search
over packed arrays a BFS level at a time, its hot loops in C (``_mc_vec``): the same states,
verdicts and counterexample lengths, 13-27 times the states/s in a fourteenth of the memory
(README, Model checking).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nbbs.check._mc import PROPERTIES, PROPERTY_NAMES, Config, Result, Step, Violation, check, render
from nbbs.check._mc_vec import check as check_vec
from nbbs.check.report import Outcome, Task
from nbbs.model import bits, steps
from nbbs.model import geometry as g
from nbbs.model.steps import Machine

__all__ = [
    "PROPERTIES",
    "PROPERTY_NAMES",
    "Config",
    "Result",
    "Script",
    "Step",
    "Violation",
    "as_scan_replay",
    "check",
    "check_vec",
    "differences",
    "initial_words",
    "load_counterexample",
    "random_scenario",
    "render",
    "replay",
    "replay_steps",
    "to_json",
    "verify_tasks",
]


Script = tuple[tuple[tuple[str, int], ...], ...]
"""A scenario for ``Config.scenario``: per thread, its ``("alloc" | "free", node)`` operations."""


def differences(a: Result, b: Result, names: tuple[str, str] = ("python", "other")) -> list[str]:
    """Where two engines' results of one configuration differ (empty: nowhere).

    Engines must agree on the states, transitions, initial and quiescent states, completeness,
    the properties violated, and the length of each shortest counterexample ((d)'s cycle may
    differ). The cross-checks of the vec and distributed engines against this one use it.
    """
    left, right = names
    out = []
    for what in ("states", "transitions", "initial_states", "quiescent", "stale_quiescent", "complete"):
        if getattr(a, what) != getattr(b, what):
            out.append(f"{what}: {left} {getattr(a, what)}, {right} {getattr(b, what)}")
    if sorted(a.violations) != sorted(b.violations):
        out.append(f"violations: {left} {sorted(a.violations)}, {right} {sorted(b.violations)}")
    for p in set(a.violations) & set(b.violations) - {"d"}:
        la, lb = len(a.violations[p].steps), len(b.violations[p].steps)
        if la != lb:
            out.append(f"({p}) counterexample length: {left} {la}, {right} {lb}")
    return out


def random_scenario(rng: random.Random, depth: int, threads: int) -> Script:
    """Per thread: alloc a random node and, mostly, free it, and sometimes alloc another after.

    The shape of the scenario that breaks ``corrected`` (ALGORITHM.md 2.5); scenario mode then
    searches every interleaving of it, where the full search cannot go (3 threads, depth 3).
    """
    nodes = list(g.all_nodes(depth))
    out = []
    for _ in range(threads):
        first, then = rng.choice(nodes), rng.choice(nodes)
        script: list[tuple[str, int]] = [("alloc", first)]
        if rng.random() < 0.7:
            script.append(("free", first))
            if rng.random() < 0.5:
                script.append(("alloc", then))
        out.append(tuple(script))
    return tuple(out)


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


def _start_replay(
    data: dict[str, Any],
) -> tuple[Machine, list[int], list[list[Any]], list[steps.OpState | None]]:
    """A counterexample's machine, its initial words (the initial live blocks allocated), each
    thread's ops still to run, and no op running yet."""
    depth, max_order = data["depth"], data["max_order"]
    if data["variant"] not in bits.VARIANTS:
        raise ValueError(bits.unknown_variant(data["variant"]))
    m = Machine(depth, depth - max_order, bits.VARIANTS[data["variant"]])
    words = [0] * g.node_count(depth)
    for n in data["initial_live"]:
        m.run(m.attempt(n), words)
    todo = [list(ops) for ops in data["threads"]]
    return m, words, todo, [None] * len(todo)


def replay_steps(
    data: dict[str, Any],
) -> Iterator[tuple[int, dict[str, Any] | None, steps.OpState, steps.Event, steps.OpState, list[int]]]:
    """Run a counterexample's schedule on the step machines, one step at a time: the thread,
    the op it starts at this step (its record in ``data["threads"]``, or None), its state
    before and after the step, the event, and the words after it (the same list each time,
    changed in place). Raises ``ValueError`` if the schedule does not fit the ops."""
    m, words, todo, running = _start_replay(data)
    for k in data["schedule"]:
        op = running[k]
        spec_op = None
        if op is None:
            if not todo[k]:
                raise ValueError(f"thread {k} is scheduled but has no operation left")
            spec_op = todo[k].pop(0)
            n = spec_op["node"]
            if spec_op["op"] == "dfree":
                op = m.free(n, checked=True)
            elif spec_op["op"] == "free":
                op = m.free(n, data["checked_free"])
            elif data["mode"] == "scan":
                lvl = g.level(n)
                op = m.alloc(g.order_of(m.depth, n), n - g.first_node(lvl))
            else:
                op = m.attempt(n)
        ev, nxt, new = m.step(op, words)
        words[ev.node] = new
        running[k] = None if steps.is_done(nxt) else nxt
        yield k, spec_op, op, ev, nxt, words


def initial_words(data: dict[str, Any]) -> list[int]:
    """A counterexample's words before its first step: its initial live blocks allocated."""
    return _start_replay(data)[1]


def replay(data: dict[str, Any]) -> tuple[list[tuple[int, steps.Event]], list[int], list[list[int | None]]]:
    """Run a counterexample's schedule on the step machines: (thread, event) per step, the
    final words (indexed by node), and each thread's op results (alloc: node or None;
    free: None). Raises ``ValueError`` if the schedule does not fit the ops."""
    results: list[list[int | None]] = [[] for _ in data["threads"]]
    trace = []
    words = initial_words(data)
    for k, _, _, ev, op, after in replay_steps(data):
        trace.append((k, ev))
        words = after
        if steps.is_done(op):
            results[k].append(steps.result(op))
    return trace, words, results


def as_scan_replay(data: dict[str, Any]) -> dict[str, Any]:
    """An ``attempt``-mode counterexample as ``NBBS`` runs it: scan-mode allocs, checked frees.

    Each free's argument-check loads are run right after its invocation, by its thread.
    This is exact only if every alloc succeeds at its first node (a failed attempt would be
    followed by more of the scan); otherwise ``ValueError``.
    """
    if data["mode"] != "attempt" or data["checked_free"]:
        raise ValueError("expects an attempt-mode counterexample without checked frees")
    m, words, todo, running = _start_replay(data)
    schedule: list[int] = []
    for k in data["schedule"]:
        op = running[k]
        if op is None:
            spec_op = todo[k].pop(0)
            n = spec_op["node"]
            if spec_op["op"] == "free":
                op = m.free(n, checked=True)
                while op.pc == steps.F_CHECK:
                    ev, op, new = m.step(op, words)
                    words[ev.node] = new
                    schedule.append(k)
            else:
                op = m.alloc(g.order_of(m.depth, n), n - g.first_node(g.level(n)))
        ev, op, new = m.step(op, words)
        words[ev.node] = new
        schedule.append(k)
        if steps.is_done(op):
            if op.pc == steps.DONE_FAIL:
                raise ValueError(f"thread {k}'s alloc fails: the scan would go on, the replay would differ")
            running[k] = None
        else:
            running[k] = op
    return {**data, "mode": "scan", "checked_free": True, "schedule": schedule}


VERIFY_CONFIGS = ((2, 1), (3, 1), (2, 2))
"""The small configurations ``nbbs verify`` checks (a few seconds in all)."""


def _outcome(cfg: Config, expect_ok: bool) -> Outcome:
    r = check(cfg)
    cut = not r.complete and not r.violations
    ok = (not r.violations) if expect_ok else bool(r.violations) or cut
    detail = "\n\n".join(render(v, cfg.depth) for v in r.violations.values())
    if not expect_ok and not r.violations and not cut:
        detail = f"{cfg.describe()}: expected a violation (the reference's known defect), found none"
    name = f"model check {cfg.label}" + ("" if expect_ok else " (finds the known defect)")
    return Outcome(name, r.states, ok, r.seconds, detail, complete=not cut)


def _task(name: str, cfg: Config, expect_ok: bool) -> Task:
    def run(seconds: float) -> Outcome:
        return _outcome(dataclasses.replace(cfg, seconds=seconds), expect_ok)

    return Task(name, 1.0, run)


SWEEP_SEED = 2026
"""The seed of ``random_scenario`` draws that ``nbbs verify``, the tests and bench/scenario_sweep.py use."""


def _sweep(count: int, budget: float | None = None) -> Outcome:
    """Every interleaving of the first ``count`` random 3-thread scenarios at depth 3, all
    properties; within ``budget`` seconds if given (incomplete if it runs out)."""
    rng = random.Random(SWEEP_SEED)
    name = f"model check {count} scenarios, 3 threads, depth 3"
    states, seconds = 0, 0.0
    for _ in range(count):
        left = None if budget is None else budget - seconds
        if left is not None and left <= 0:
            return Outcome(name, states, True, seconds, "", complete=False)
        cfg = Config(3, 3, scenario=random_scenario(rng, 3, 3), initial="empty", seconds=left)
        r = check(cfg)
        states, seconds = states + r.states, seconds + r.seconds
        if r.violations:
            detail = "\n\n".join(render(v, cfg.depth) for v in r.violations.values())
            return Outcome(name, states, False, seconds, detail)
        if not r.complete:
            return Outcome(name, states, True, seconds, "", complete=False)
    return Outcome(name, states, True, seconds, "")


def _double_frees(budget: float) -> Outcome:
    """Racing double frees (``dfree``) of every block, 2 and 3 threads at depth 2, every live set."""
    name = "model check racing double frees, depth 2"
    states, seconds = 0, 0.0
    for threads in (2, 3):
        for n in g.all_nodes(2):
            if seconds >= budget:
                return Outcome(name, states, True, seconds, "", complete=False)
            script = tuple((("dfree", n),) for _ in range(threads))
            cfg = Config(threads, 2, scenario=script, seconds=budget - seconds)
            r = check(cfg)
            states, seconds = states + r.states, seconds + r.seconds
            if r.violations:
                return Outcome(
                    name, states, False, seconds, "\n\n".join(render(v, 2) for v in r.violations.values())
                )
            if not r.complete:
                return Outcome(name, states, True, seconds, "", complete=False)
    return Outcome(name, states, True, seconds, "")


def verify_tasks() -> list[Task]:
    """The shipped variant passes every property in the small configurations and on random
    3-thread scenarios at depth 3; the reference's known defect is still found."""
    tasks = [_task(f"model check {t} threads, depth {d}", Config(t, d), True) for t, d in VERIFY_CONFIGS]
    tasks.append(Task("model check 3-thread scenarios, depth 3", 1.0, lambda seconds: _sweep(10, seconds)))
    tasks.append(Task("model check racing double frees, depth 2", 0.8, _double_frees))
    reference = Config(2, 2, variant="reference", properties=("b",), stop_at_first=True)
    tasks.append(_task("model check reference, 2 threads, depth 2", reference, False))
    return tasks
