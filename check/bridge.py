"""Replay the model checker's counterexamples on the real allocator, through the scheduler.

A counterexample file (``tests/data/counterexamples/*.json``) holds::

    variant, depth, max_order, initial_live   the arena, the algorithm, the blocks held from the start
    threads      per thread, its operations: {"op": "alloc", "order": o, "node": n} (n: the
                 candidate, or the scan's start in ``scan`` mode) or {"op": "free", "node": n}
    schedule     the thread of every atomic step of the model
    property     which property failed (the model checker's a, b, c, d), explanation: its text
    mode         optional: attempt (default) or scan

Replaying it (``reproduce``):

1. The scenario: ``NBBS(variant=...)`` (allocator name = the variant), the initial blocks,
   each alloc with ``hint`` = its node's position on its level, each free of the block the
   thread's matching alloc got.
2. The step machine runs the model's schedule again, and the implementation's schedule is
   derived from it step by step. Two differences are bridged: the model's free has no
   argument check, so the scenario's frees call ``NBBS._free_node`` directly (header flag
   ``U``); the report notes when ``NBBS.free``'s check would have refused the free at that
   point (it loads the smaller blocks at the address first and can see a concurrent alloc's
   candidate there). And in ``attempt`` mode a model alloc gives up after one failed
   candidate where ``NBBS.alloc`` scans on, so from that point the implementation's thread
   is left where it is (stalled inside its scan) and the model's later steps of that thread
   are dropped.
3. The implementation runs that schedule and stops at its end (mid-flight, like the model).
   Every access must equal the model's (node, kind, old, new); then the violation is
   checked on the implementation's own state: an overlap is caught by the scheduler when the
   alloc returns (a), the quiescent check fails on its words (b), and for every property the
   implementation's words equal the model's violating words.

When a thread was dropped, only the accesses up to there are compared and the words are
compared where no dropped step wrote; the report says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbbs.check._checks import Checker
from nbbs.check._scenario import AllocOp, DoubleFree, ExplorerError, FreeNode, FreeOwn, Op, Scenario
from nbbs.check._sched import CALL, RET, Execution, Outcome, RemoteThreads
from nbbs.model import bits, steps
from nbbs.model import geometry as g


@dataclass(frozen=True)
class Counterexample:
    """A model checker counterexample, as stored in JSON."""

    variant: str
    depth: int
    max_order: int
    initial_live: tuple[int, ...]
    threads: tuple[tuple[dict[str, Any], ...], ...]
    schedule: tuple[int, ...]
    property: str
    explanation: str = ""
    mode: str = "attempt"
    checked_free: bool = False
    """The model's frees start with ``NBBS.free``'s argument-check loads (and the schedule has them)."""

    @classmethod
    def load(cls, path: Path | str) -> Counterexample:
        d = json.loads(Path(path).read_text())
        missing = {"variant", "depth", "threads", "schedule", "property"} - set(d)
        if missing:
            raise ExplorerError(f"{path}: a counterexample needs the keys {sorted(missing)}")
        return cls(
            d["variant"],
            int(d["depth"]),
            int(d["depth"] if d.get("max_order") is None else d["max_order"]),
            tuple(d.get("initial_live", ())),
            tuple(tuple(ops) for ops in d["threads"]),
            tuple(d["schedule"]),
            str(d["property"]),
            str(d.get("explanation") or d.get("message") or ""),
            str(d.get("mode", "attempt")),
            bool(d.get("checked_free", False)),
        )

    def dump(self) -> str:
        """The JSON text of this counterexample."""
        d = {
            "variant": self.variant,
            "depth": self.depth,
            "max_order": self.max_order,
            "initial_live": list(self.initial_live),
            "threads": [list(t) for t in self.threads],
            "schedule": list(self.schedule),
            "property": self.property,
            "explanation": self.explanation,
            "mode": self.mode,
            "checked_free": self.checked_free,
        }
        return json.dumps(d, indent=1)

    def scenario(self) -> Scenario:
        """The scenario of the real allocator that performs these operations."""
        threads: list[tuple[Op, ...]] = []
        for ops in self.threads:
            mine: list[Op] = []
            allocs, unfreed = 0, []
            for op in ops:
                n = int(op["node"])
                if op["op"] == "alloc":
                    mine.append(AllocOp(int(op["order"]), n - g.first_node(g.level(n))))
                    unfreed.append(allocs)
                    allocs += 1
                elif op["op"] == "dfree":
                    mine.append(DoubleFree(n))
                elif n in self.initial_live and not unfreed:
                    mine.append(FreeNode(n))
                else:
                    # The model's threads free the block their last alloc got.
                    mine.append(FreeOwn(unfreed.pop()))
            threads.append(tuple(mine))
        return Scenario(
            self.depth, tuple(threads), self.max_order, self.variant, self.initial_live, self.checked_free
        )


@dataclass
class Reproduction:
    """What replaying a counterexample on the real allocator showed."""

    reproduced: bool
    detail: str
    outcome: Outcome | None = None
    schedule: list[int] = field(default_factory=list)
    """The implementation's schedule (the model's, with the free's check loads added)."""
    dropped: list[int] = field(default_factory=list)
    """Threads whose model alloc gave up where the implementation scans on."""


class _Stop:
    """Follow a schedule exactly and stop at its end (the model's run ends mid-flight)."""

    def __init__(self, schedule: list[int]) -> None:
        self.schedule = schedule

    def pick(self, ex: Execution, me: int) -> int:
        step = len(ex.schedule)
        if step >= len(self.schedule):
            return -1
        t = self.schedule[step]
        if t not in ex.enabled:
            raise ExplorerError(f"bridge: step {step} names thread {t}, which cannot run there")
        return t


def reproduce(cx: Counterexample, remote: RemoteThreads | None = None) -> Reproduction:
    """Replay ``cx`` on ``NBBS(variant=cx.variant)`` and check that the same violation shows.

    ``remote``: replay it on another process's threads instead (a port in controlled mode,
    ``nbbs.conform.controlled``); its frees always check their argument, so only
    counterexamples with ``checked_free`` apply.
    """
    if cx.variant not in bits.VARIANTS:
        raise ExplorerError(bits.unknown_variant(cx.variant))
    sc = cx.scenario()
    checker = Checker(sc, 100_000, quiescent="obtainable", refinement=False, remote=remote)
    first = checker.execution()
    words = list(first.initial_words())
    m = steps.Machine(sc.depth, sc.max_level, bits.VARIANTS[cx.variant])
    expected: list[tuple[int, int, int, int]] = []
    schedule: list[int] = []
    queue = [list(t) for t in cx.threads]
    state: list[steps.OpState | None] = [None] * len(queue)
    dropped: list[int] = []
    written_after_drop: set[int] = set()
    refused: int | None = None
    gave_up: set[int] = set()
    for step, k in enumerate(cx.schedule):
        if k in gave_up and k not in dropped:
            dropped.append(k)
        if state[k] is None and not queue[k]:
            # Replayed on another variant, a thread may finish its operations sooner.
            return Reproduction(
                False, f"the model's thread {k} has no operation left at step {step}: the runs part ways"
            )
        if k in dropped:
            # The model's later operations of a thread the implementation left scanning.
            later = state[k] or _start(m, queue[k], cx.mode, cx.checked_free)
            ev, after, new = m.step(later, words)
            words[ev.node] = new
            written_after_drop.add(ev.node)
            state[k] = None if steps.is_done(after) else after
            continue
        current = state[k]
        if current is not None:
            op = current
        else:
            spec = queue[k][0]
            if spec["op"] == "free" and refused is None and not cx.checked_free:
                # Would NBBS.free's argument check (loads from the page up) accept this block now?
                check = m.free(int(spec["node"]), checked=True)
                trial = list(words)
                while check.pc == steps.F_CHECK:
                    _, check, _ = m.step(check, trial)
                if check.pc == steps.DONE_FAIL:
                    refused = len(schedule)
            op = _start(m, queue[k], cx.mode, cx.checked_free)
        ev, nxt, new = m.step(op, words)
        words[ev.node] = new
        expected.append((ev.node, int(ev.kind), ev.old, ev.new))
        schedule.append(k)
        state[k] = None if steps.is_done(nxt) else nxt
        if nxt.pc == steps.DONE_FAIL and cx.mode == "attempt" and not _last_candidate(sc, op):
            gave_up.add(k)
    out = first.run(_Stop(schedule))
    got = [(ev[1], _KIND[ev[2]], ev[3], ev[4]) for ev in out.trace if ev[2] < CALL]
    notes = f" (threads {dropped} dropped where the model's alloc gave up)" if dropped else ""
    if got != expected[: len(got)] or len(got) != len(expected):
        i = next(
            (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
            min(len(got), len(expected)),
        )
        return Reproduction(
            False,
            f"the implementation's accesses differ from the model's at step {i}: "
            f"{got[i] if i < len(got) else 'none'} vs {expected[i] if i < len(expected) else 'none'}"
            + (f"; it stopped: {out.failure.message}" if out.failure else ""),
            out,
            schedule,
            dropped,
        )
    same = [n for n in g.all_nodes(sc.depth) if n not in written_after_drop]
    if any(out.final_words[n] != words[n] for n in same):
        return Reproduction(False, "the implementation's words differ from the model's at the end" + notes)
    in_flight = [k for k, op in enumerate(state) if op is not None]
    calls = sum(1 for ev in out.trace if ev[2] == CALL)
    returns = sum(1 for ev in out.trace if ev[2] == RET)  # a refused double free returns too
    if cx.property == "b" and (in_flight or calls != returns):
        return Reproduction(
            False,
            f"the run is not quiescent at its end (threads {in_flight} are mid-operation), "
            "so (b) does not apply" + notes,
            out,
            schedule,
            dropped,
        )
    detail = _confirm(cx, checker, out)
    if detail is None:
        return Reproduction(
            False, f"no ({cx.property}) violation on the implementation", out, schedule, dropped
        )
    if refused is not None:
        detail += (
            f"; note: at step {refused} NBBS.free's argument check would have refused the free"
            " (a transiently occupied smaller block at its address), so frees call _free_node"
        )
    return Reproduction(True, detail + notes, out, schedule, dropped)


_KIND = (0, 1, 1, 2, 3, 4)  # the scheduler's kinds as model.steps.Kind (a lost CAS is a CAS)


def _start(m: steps.Machine, queue: list[dict[str, Any]], mode: str, checked: bool) -> steps.OpState:
    spec = queue.pop(0)
    n = int(spec["node"])
    if spec["op"] in ("free", "dfree"):
        return m.free(n, checked=checked or spec["op"] == "dfree")
    if mode == "scan":
        return m.alloc(int(spec["order"]), n - g.first_node(g.level(n)))
    return m.attempt(n)


def _last_candidate(sc: Scenario, op: steps.OpState) -> bool:
    """A level of one node: the implementation's scan gives up where the model's attempt does."""
    return g.width(g.level(op.n)) == 1


def _confirm(cx: Counterexample, checker: Checker, out: Outcome) -> str | None:
    """The violation, seen on the implementation's own state (None if it is not there)."""
    if cx.property == "a":
        if out.failure is not None and out.failure.kind == "overlap":
            return f"reproduced (a): {out.failure.message}"
        return None
    if cx.property == "b":
        bad = checker._quiescent_problems(out.final_words, frozenset(out.held))
        occ = {n for n in g.all_nodes(cx.depth) if out.final_words[n] & bits.OCC}
        if occ != set(out.held):
            bad = [f"OCC words {sorted(occ)} != held blocks {sorted(out.held)}", *bad]
        return f"reproduced (b): {bad[0]}" if bad else None
    # (c), (d): the implementation reached the model's violating words by the same accesses.
    return f"reproduced ({cx.property}): the implementation's words equal the model's violating state"


def counterexample_of(violation: Any, config: Any) -> Counterexample:
    """A ``Counterexample`` from the model checker's ``_mc.Violation`` and ``_mc.Config``."""
    return Counterexample(
        config.variant,
        config.depth,
        config.top_order,
        tuple(violation.initial_live),
        tuple(tuple(ops) for ops in violation.ops),
        tuple(violation.schedule),
        violation.prop,
        violation.message,
        config.mode,
        getattr(config, "checked_free", False),
    )
