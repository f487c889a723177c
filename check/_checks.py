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
from nbbs.check._scenario import (
    AllocOp,
    DoubleFree,
    ExplorerError,
    FreeOwn,
    InternalBug,
    Op,
    Scenario,
    schedule_string,
)
from nbbs.check._sched import (
    CALL,
    CAS_FAIL,
    KIND_NAMES,
    LOCK_NODE,
    RET,
    Event,
    Execution,
    Failure,
    Outcome,
    RemoteAllocator,
    RemoteThreads,
    Strategy,
    remote_factory,
)
from nbbs.model import bits, steps, tree
from nbbs.model import geometry as g
from nbbs.model import spec as sp

QUIESCENT = ("obtainable", "strict", "stale_coal", "off")
"""The quiescent predicates an exploration may check at the end of each run."""

# The scheduler's access kinds as ``model.steps.Kind`` values (a lost CAS is still a CAS).
_STEP_KIND = (0, 1, 1, 2, 3, 4)


def _transitions(allocator: str) -> bits.Transitions:
    """The word transitions the named allocator runs (a transition mutant's own bundle)."""
    from nbbs.check._allocators import allocator_classes

    cls = allocator_classes().get(allocator)
    return bits.PUBLISHED if cls is None else cls.transitions


@dataclass
class Checker:
    """Runs executions of one scenario and checks each; caches the checks of repeated end states."""

    scenario: Scenario
    max_steps: int
    lin_timeout: float = 5.0
    quiescent: str = "obtainable"
    """The quiescent predicate: ``obtainable`` (the model checker's property (b): every free block
    can be had by a sequential alloc, no other can), ``strict`` (``tree.inv_quiescent``),
    ``stale_coal`` (``strict`` with COAL bits ignored), or ``off``. All of them also need the
    words' OCC nodes to be exactly the held blocks (checked before)."""
    refinement: bool = True
    """Re-run the step machine (``model.steps``) under the schedule and compare every access."""
    remote: RemoteThreads | None = None
    """Run the scenario on these remote threads (a port in controlled mode) instead of a local allocator."""
    _quiescent_memo: dict[tuple[tuple[int, ...], frozenset[int]], list[str]] = field(default_factory=dict)
    _lin_memo: dict[tuple[object, ...], lin.Result[sp.State]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._last: Execution | None = None
        self.mismatch: steps.Access | None = None
        """The step machine's access at the last refinement failure (None: it had no operation left)."""
        # The step machine is a pure function of (state, word found): memoised across executions.
        self._ids: dict[steps.OpState, int] = {}
        self._states: list[steps.OpState] = []
        self._at_node: list[int] = []
        self._at_kind: list[int] = []
        self._moves: dict[int, tuple[int, int]] = {}
        self._results: dict[int, int | None] = {}
        self._refined: dict[tuple[Event, ...], int] = {}
        self._mismatch_state: dict[tuple[Event, ...], int] = {}
        self._factory = factory(self.scenario.allocator)
        if self.remote is not None:
            if not self.scenario.checked_free:
                raise ExplorerError(
                    "a remote allocator always checks a free's argument: scenarios with U do not apply"
                )
            self._factory = remote_factory(self.remote)
        self._spec = sp.Spec.of(self.scenario.depth, self.scenario.top_order, spurious_failures=True)
        if self.quiescent not in QUIESCENT:
            raise ExplorerError(f"quiescent must be one of {', '.join(QUIESCENT)}, got {self.quiescent!r}")
        if self.scenario.allocator == "locked":
            # The baseline has no NBBS words and no step machine to compare with.
            self.quiescent, self.refinement = "off", False
        self._machine = steps.Machine(
            self.scenario.depth, self.scenario.max_level, _transitions(self.scenario.allocator)
        )

    def execution(self) -> Execution:
        """A fresh execution of the scenario (reusing the allocator of the last one where that is safe)."""
        ex = Execution(self.scenario, self._factory, self.max_steps, self._last)
        self._last = ex
        return ex

    def run(self, strategy: Strategy) -> Outcome:
        """One execution under ``strategy``, with every check."""
        ex = self.execution()
        out = ex.run(strategy)
        if out.failure is None and isinstance(ex.allocator, RemoteAllocator):
            out.failure = ex.allocator.consistency(out)
        if out.failure is None and out.completed:
            out.failure = self.final_checks(out)
        return out

    def final_checks(self, out: Outcome) -> Failure | None:
        """The checks at quiescence: abstraction, quiescent invariant, linearizability."""
        sc = self.scenario
        words = out.final_words
        step = len(out.schedule)
        held = frozenset(out.held)
        doubly = {op.node for ops in sc.threads for op in ops if isinstance(op, DoubleFree)}
        won = {r.op.node for r in out.history if isinstance(r.op, sp.Free)}
        if doubly - won:
            n = min(doubly - won)
            return Failure(
                "double free", f"block {n} is still live: every racing free of it was refused", step
            )
        live = tree.abstraction(words, sc.depth)
        if live != held:
            return Failure(
                "abstraction",
                f"at the end the words hold blocks {sorted(live)} but the threads hold {sorted(held)}"
                f" (leaked: {sorted(live - held)}, lost: {sorted(held - live)})",
                step,
                tuple(sorted(live ^ held)),
            )
        if self.quiescent != "off":
            bad = self._quiescent_memo.get((words, held))
            if bad is None:
                bad = self._quiescent_memo[(words, held)] = self._quiescent_problems(words, held)
            if bad:
                return Failure(
                    "quiescent", f"the {self.quiescent} quiescent check fails:\n  " + "\n  ".join(bad), step
                )
        result = self.linearizable(out)
        if not result.ok:
            return Failure("linearizability", result.explain(), step)
        if self.refinement:
            return self.refines(out)
        return None

    def refines(self, out: Outcome) -> Failure | None:
        """Run the step machine under ``out``'s schedule: the same (node, access, old, new) at every step?

        Checked thread by thread: a thread's machine is deterministic given the words its own
        accesses find, and if every access so far matched, the machine's words equal the
        allocator's, so it finds the same words. A thread's access sequence checked once is
        never checked again (most runs repeat the per-thread sequences of earlier ones).
        """
        # The trace's own records, grouped by thread (no copying: this runs on every execution).
        per_thread: list[list[Event]] = [[] for _ in self.scenario.threads]
        for ev in out.trace:
            if ev[2] < CALL:
                per_thread[ev[0]].append(ev)
        for t, records in enumerate(per_thread):
            key = tuple(records)
            bad = self._refined.get(key, -2)
            if bad == -2:
                events = [(ev[1], _STEP_KIND[ev[2]], ev[3], ev[4]) for ev in records if ev[1] != LOCK_NODE]
                bad = self._refined[key] = self._first_mismatch(t, events, key)
            if bad >= 0:
                events = [(ev[1], _STEP_KIND[ev[2]], ev[3], ev[4]) for ev in records if ev[1] != LOCK_NODE]
                steps_of = [i for i, ev in enumerate(e for e in out.trace if e[2] < CALL) if ev[0] == t]
                node, kind, old, new = events[bad]
                sid = self._mismatch_state[key]
                self.mismatch = None if sid < 0 else self._machine.access(self._states[sid])
                if sid < 0:
                    machine, m_node = "the step machine has no operation left", node
                else:
                    m_node, m_kind = self._at_node[sid], self._at_kind[sid]
                    move = self._moves.get(sid << 64 | old)
                    shown = bits.show(move[0]) if move is not None and m_node == node else "?"
                    machine = f"the step machine node {m_node} {steps.Kind(m_kind)} (-> {shown})"
                return Failure(
                    "refinement",
                    f"step {steps_of[bad]} (thread {t}): the allocator did node {node} "
                    f"{steps.Kind(kind)} {bits.show(old)} -> {bits.show(new)},\n{machine}",
                    steps_of[bad],
                    (node, m_node),
                )
        return None

    def _first_mismatch(self, t: int, events: list[tuple[int, int, int, int]], key: tuple[Event, ...]) -> int:
        """Index of thread ``t``'s first access the step machine does not make (-1 if none)."""
        ops = list(self.scenario.threads[t])
        got: list[int | None] = []
        sid, allocating = -1, False
        at_node, at_kind, moves = self._at_node, self._at_kind, self._moves
        for i, (node, kind, old, new) in enumerate(events):
            if sid < 0:
                op = self._start(ops, got)
                if op is None:
                    self._mismatch_state[key] = -1
                    return i
                allocating = steps.is_alloc(op)
                sid = self._intern(op)
            if at_node[sid] != node or at_kind[sid] != kind:
                self._mismatch_state[key] = sid
                return i
            move = moves.get(sid << 64 | old)
            if move is None:
                move = moves[sid << 64 | old] = self._move(sid, old)
            if move[0] != new:
                self._mismatch_state[key] = sid
                return i
            if move[1] < 0:
                if allocating:
                    got.append(self._results[sid << 64 | old])
                sid = -1
            else:
                sid = move[1]
        return -1

    def _intern(self, op: steps.OpState) -> int:
        """The int naming step-machine state ``op`` (a new one gets its next access recorded)."""
        sid = self._ids.get(op)
        if sid is None:
            acc = self._machine.access(op)
            if acc is None:
                raise InternalBug(f"refinement: a finished operation was stepped ({steps.describe(op)})")
            sid = self._ids[op] = len(self._states)
            self._states.append(op)
            self._at_node.append(acc.node)
            self._at_kind.append(int(acc.kind))
        return sid

    def _move(self, sid: int, old: int) -> tuple[int, int]:
        """The word left and the next state (-1 when the operation is done) after ``sid`` found ``old``."""
        op = self._states[sid]
        acc = self._machine.access(op)
        assert acc is not None
        nxt = self._machine.after(op, old)
        if steps.is_done(nxt):
            self._results[sid << 64 | old] = steps.result(nxt)
            return steps.effect(acc, old), -1
        return steps.effect(acc, old), self._intern(nxt)

    def _start(self, ops: list[Op], got: list[int | None]) -> steps.OpState | None:
        """The step-machine state of the thread's next operation that performs an access."""
        m = self._machine
        while ops:
            op = ops.pop(0)
            if isinstance(op, AllocOp):
                return m.alloc(op.order, op.hint)
            if isinstance(op, DoubleFree):
                return m.free(op.node, checked=True)
            node = got[op.k] if isinstance(op, FreeOwn) else op.node
            if node is not None:
                return m.free(node, checked=self.scenario.checked_free)
        return None

    def _quiescent_problems(self, words: tuple[int, ...], held: frozenset[int]) -> list[str]:
        """What is wrong with quiescent ``words`` under the configured predicate (empty if nothing)."""
        sc = self.scenario
        if self.quiescent == "strict":
            return tree.quiescent_violations(words, sc.depth, sc.max_level, self._machine.transitions)
        if self.quiescent == "stale_coal":
            return tree.quiescent_violations(
                tuple(w & ~tree.COAL_BITS for w in words), sc.depth, sc.max_level, self._machine.transitions
            )
        # "obtainable", the model checker's property (b): a sequential single attempt at each
        # block succeeds exactly when the block is free, and a failed one restores the words.
        m, out = self._machine, []
        for lvl in range(sc.max_level, sc.depth + 1):
            for n in g.nodes_at(lvl):
                trial = list(words)
                done, _ = m.run(m.attempt(n), trial)
                free = sp.is_free(held, n)
                if free and steps.result(done) != n:
                    out.append(f"block {n} is free but a sequential alloc of it fails (lost)")
                elif not free and steps.result(done) is not None:
                    out.append(f"block {n} is not free but a sequential alloc of it succeeds")
                elif not free and tuple(trial) != words:
                    out.append(f"a failed sequential alloc of {n} does not restore the words")
        return out

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
