"""The checks every execution gets, and the text a person reads when one fails.

During the run (``_sched``): no two held blocks overlap, checked each time an alloc returns
(held = alloc returned it, free not yet called; the held set changes only then). At the end
of a completed run: the abstraction of the words equals the held set, the quiescent
invariant holds, and the history is linearizable against ``model.spec`` with the concurrent
failure contract (an alloc may return None while a block is free).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nbbs.check import linearizability as lin
from nbbs.check._allocators import factory
from nbbs.check._scenario import Scenario, schedule_string
from nbbs.check._sched import (
    CALL,
    CAS_FAIL,
    KIND_NAMES,
    LOCK_NODE,
    RET,
    Execution,
    Failure,
    Outcome,
    Strategy,
)
from nbbs.model import bits, tree
from nbbs.model import geometry as g
from nbbs.model import spec as sp


@dataclass
class Checker:
    """Runs executions of one scenario and checks each; caches the checks of repeated end states."""

    scenario: Scenario
    max_steps: int
    lin_timeout: float = 5.0
    quiescent: bool = True
    """Check the quiescent invariant at the end (off for allocators without NBBS words)."""
    _quiescent_memo: dict[tuple[int, ...], list[str]] = field(default_factory=dict)
    _lin_memo: dict[tuple[object, ...], lin.Result[sp.State]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._factory = factory(self.scenario.allocator)
        self._spec = sp.Spec.of(self.scenario.depth, self.scenario.top_order, spurious_failures=True)
        self.quiescent = self.quiescent and self.scenario.allocator != "locked"

    def execution(self) -> Execution:
        return Execution(self.scenario, self._factory, self.max_steps)

    def run(self, strategy: Strategy) -> Outcome:
        """One execution under ``strategy``, with every check."""
        out = self.execution().run(strategy)
        if out.failure is None and out.completed:
            out.failure = self.final_checks(out)
        return out

    def final_checks(self, out: Outcome) -> Failure | None:
        """The checks at quiescence: abstraction, quiescent invariant, linearizability."""
        sc = self.scenario
        words = out.final_words
        step = len(out.schedule)
        held = frozenset(out.held)
        live = tree.abstraction(words, sc.depth)
        if live != held:
            return Failure(
                "abstraction",
                f"at the end the words hold blocks {sorted(live)} but the threads hold {sorted(held)}"
                f" (leaked: {sorted(live - held)}, lost: {sorted(held - live)})",
                step,
                tuple(sorted(live ^ held)),
            )
        if self.quiescent:
            bad = self._quiescent_memo.get(words)
            if bad is None:
                bad = self._quiescent_memo[words] = tree.quiescent_violations(words, sc.depth, sc.max_level)
            if bad:
                return Failure("quiescent", "the quiescent invariant fails at:\n  " + "\n  ".join(bad), step)
        result = self.linearizable(out)
        if not result.ok:
            return Failure("linearizability", result.explain(), step)
        return None

    def linearizable(self, out: Outcome) -> lin.Result[sp.State]:
        """The history of ``out`` checked against ``model.spec`` (memoised on the history's shape)."""
        key = tuple((r.thread, r.op, r.call, r.ret) for r in out.history)
        res = self._lin_memo.get(key)
        if res is None:
            ops = [lin.Operation(r.thread, r.op, r.call, r.ret) for r in out.history if r.ret is not None]
            res = lin.check_allocator(ops, self._spec, frozenset(self.scenario.initial), self.lin_timeout)
            self._lin_memo[key] = res
        return res


# -- what a person reads ----------------------------------------------------------------


def describe_event(ev: tuple[int, int, int, object, object]) -> str:
    """One trace record as a line: thread, node, access, old and new word."""
    t, node, kind, old, new = ev
    if kind == CALL:
        return f"T{t}  call   {old}"
    if kind == RET:
        return f"T{t}  return {old} -> {'node ' + str(new) if isinstance(new, int) else new}"
    if node == LOCK_NODE:
        return f"T{t}  {KIND_NAMES[kind]} the lock"
    assert isinstance(old, int) and isinstance(new, int)
    return f"T{t}  node {node:<3} {KIND_NAMES[kind]:<10} {bits.show(old):<24} -> {bits.show(new)}"


def render_trace(out: Outcome, depth: int) -> str:
    """The step-by-step trace of an execution, with the tree before and after."""
    lines = ["tree before:", tree.render(out.initial_words, depth)]
    step = 0
    for ev in out.trace:
        if ev[2] in (CALL, RET):
            lines.append(f"        {describe_event(ev)}")
        else:
            lines.append(f"  {step:>4}  {describe_event(ev)}")
            step += 1
    lines += ["tree after:", tree.render(out.final_words, depth)]
    return "\n".join(lines)


def explain(scenario: Scenario, out: Outcome) -> str:
    """Why an execution failed: the schedule string, which threads and nodes, whose CAS lost, the trees."""
    f = out.failure
    assert f is not None
    lines = [
        f"{f.kind}: {f.message}",
        f"schedule: {schedule_string(scenario, out.schedule)}",
        f"replay:   nbbs replay {schedule_string(scenario, out.schedule)}",
        f"threads:  {len(scenario.threads)}, {out.preemptions} preemption(s), {len(out.schedule)} steps",
    ]
    for t, ops in enumerate(scenario.threads):
        lines.append(f"  T{t}: {' '.join(op.code() for op in ops)}")
    focus = set(f.nodes)
    for n in list(focus):
        focus.update(g.ancestors(n))
    lost = [ev for ev in out.trace if ev[2] == CAS_FAIL]
    if lost:
        lines.append("lost CASes (the word had changed since the thread read it):")
        lines += [f"  {describe_event(ev)}" for ev in lost[:8]]
    if focus:
        touching = [ev for ev in out.trace if ev[1] in focus and ev[2] not in (CALL, RET)]
        lines.append(f"accesses to nodes {sorted(focus)} (the blocks involved and their ancestors):")
        lines += [f"  {describe_event(ev)}" for ev in touching[-24:]]
    lines += ["tree before:", tree.render(out.initial_words, scenario.depth)]
    lines += ["tree after:", tree.render(out.final_words, scenario.depth)]
    return "\n".join(lines)
