"""The runtime: logical threads as greenlets that switch only at atomic word accesses.

One ``Execution`` runs a scenario once. Each logical thread is a greenlet running the
allocator's own code; the allocator's word backend is a ``ScheduledWords`` whose every
access first calls ``Execution.point``: there the running thread announces its next access
(node, kind), the strategy picks which thread performs its pending access next, and if that
is another thread the runtime switches straight to it (one greenlet switch per preemption,
none when the same thread continues). The access itself happens after the decision, so
between two decisions exactly one access runs: a *step*.

Why greenlets: the allocator's code must run unchanged, so a thread has to be suspended in
the middle of a call stack. Generators would need a ``yield`` at every access (rewriting
``impl/nbbs.py``); OS threads handing a baton through locks cost ~10-30 us per switch (see
``bench/switch_cost.py``); a greenlet switch costs ~0.3-0.5 us and happens only on preemption.

Before the first decision every thread runs up to its first access (the *start phase*), so
at every decision the pending access of every runnable thread is known: the partial-order
reduction needs it.

Failure modes are reported, never hung on: a run longer than ``max_steps`` stops as
``stuck``; an exception in a logical thread stops it as ``crash``; all remaining threads
blocked (a scheduled lock held by a stalled thread) stops it as ``deadlock``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from greenlet import getcurrent, greenlet

from nbbs.check._scenario import AllocOp, DoubleFree, ExplorerError, FreeOwn, InternalBug, Scenario
from nbbs.impl.errors import DoubleFreeError
from nbbs.impl.nbbs import NBBS
from nbbs.model import geometry as g
from nbbs.model.spec import Alloc, Free

# Access kinds, in trace records and pending announcements.
LOAD, CAS, CAS_FAIL, FETCH_OR, FETCH_AND, STORE, LOCK, UNLOCK, CALL, RET = range(10)
KIND_NAMES = (
    "load",
    "cas",
    "cas(lost)",
    "fetch_or",
    "fetch_and",
    "store",
    "lock",
    "unlock",
    "call",
    "return",
)
LOCK_NODE = -1
"""The "word" a scheduled lock stands on: lock accesses all depend on each other."""

Event = tuple[int, int, int, Any, Any]
"""A trace record ``(thread, node, kind, old, new)``; for CALL/RET ``old`` is the operation and
``new`` its result. A failed CAS is recorded as ``CAS_FAIL`` with ``new == old``."""


class Strategy(Protocol):
    """Chooses which runnable thread performs its pending access next."""

    def pick(self, ex: Execution, me: int) -> int:
        """A thread of ``ex.enabled``; ``me`` is the thread that just announced (-1 if none runs)."""
        ...


@dataclass
class Failure:
    """What went wrong in one execution."""

    kind: str
    """``overlap``, ``quiescent``, ``abstraction``, ``linearizability``, ``refinement``,
    ``crash``, ``stuck``, ``deadlock``, ``progress`` (lock-freedom) or ``bridge``."""
    message: str
    step: int
    """How many accesses had run when it was detected."""
    nodes: tuple[int, ...] = ()
    """The blocks or words it concerns (for the explanation)."""


@dataclass
class OpRecord:
    """One completed (or pending) operation of the history."""

    thread: int
    op: Any
    """``spec.Alloc`` or ``spec.Free`` with the observed result."""
    call: int
    """Logical time of the call: calls and returns are numbered 1, 2, 3 ... in the order they happen."""
    ret: int | None = None


@dataclass
class Outcome:
    """The result of one execution."""

    schedule: list[int]
    trace: list[Event]
    history: list[OpRecord]
    initial_words: tuple[int, ...]
    final_words: tuple[int, ...]
    held: dict[int, int]
    failure: Failure | None = None
    completed: bool = False
    """Every thread ran to its end (no abort, no stall)."""
    preemptions: int = 0
    thread_steps: list[int] = field(default_factory=list)


class ScheduledWords:
    """A ``Words`` backend whose every access is a scheduling point of its ``Execution``."""

    __slots__ = ("ex", "w")

    def __init__(self, ex: Execution, length: int) -> None:
        self.ex = ex
        self.w = [0] * length

    def load(self, i: int) -> int:
        ex = self.ex
        if ex.live:
            ex.point(i, LOAD)
        v = self.w[i]
        ex.trace.append((ex.current, i, LOAD, v, v))
        return v

    def cas(self, i: int, expected: int, new: int) -> bool:
        ex = self.ex
        if ex.live:
            ex.point(i, CAS)
        old = self.w[i]
        if old == expected:
            self.w[i] = new
            ex.trace.append((ex.current, i, CAS, old, new))
            return True
        ex.trace.append((ex.current, i, CAS_FAIL, old, old))
        return False

    def fetch_or(self, i: int, mask: int) -> int:
        ex = self.ex
        if ex.live:
            ex.point(i, FETCH_OR)
        old = self.w[i]
        self.w[i] = old | mask
        ex.trace.append((ex.current, i, FETCH_OR, old, old | mask))
        return old

    def fetch_and(self, i: int, mask: int) -> int:
        ex = self.ex
        if ex.live:
            ex.point(i, FETCH_AND)
        old = self.w[i]
        self.w[i] = old & mask
        ex.trace.append((ex.current, i, FETCH_AND, old, old & mask))
        return old

    def store(self, i: int, value: int) -> None:
        ex = self.ex
        if ex.live:
            ex.point(i, STORE)
        old = self.w[i]
        self.w[i] = value
        ex.trace.append((ex.current, i, STORE, old, value))

    def snapshot(self) -> tuple[int, ...]:
        return tuple(self.w)

    def __len__(self) -> int:
        return len(self.w)


class ScheduledLock:
    """A lock whose acquire and release are scheduling points; a thread that finds it held blocks.

    It replaces ``threading.Lock`` in lock-based allocators (``LockedBuddy``) so the scheduler
    can run them: a blocked thread is not runnable until the owner releases.
    """

    __slots__ = ("ex", "owner", "waiters")

    def __init__(self, ex: Execution) -> None:
        self.ex = ex
        self.owner = -1
        self.waiters: list[int] = []

    def acquire(self) -> bool:
        ex = self.ex
        if ex.live:
            ex.point(LOCK_NODE, LOCK)
            while self.owner >= 0:
                ex.block(self)
        self.owner = ex.current
        if ex.live:
            ex.trace.append((ex.current, LOCK_NODE, LOCK, 0, 1))
        return True

    def release(self) -> None:
        ex = self.ex
        if ex.live:
            ex.point(LOCK_NODE, UNLOCK)
        self.owner = -1
        if ex.live:
            ex.trace.append((ex.current, LOCK_NODE, UNLOCK, 1, 0))
        if self.waiters:
            ex.enabled.extend(self.waiters)
            ex.enabled.sort()
            self.waiters.clear()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


AllocatorFactory = Callable[[Scenario, Callable[[int], ScheduledWords], Callable[[], ScheduledLock]], Any]
"""Builds the allocator under test from the scenario, a word-backend factory and a lock factory."""


def _no_strategy(ex: Execution, me: int) -> int:
    raise InternalBug("an execution asked for a decision before it was given a strategy")


_STOP = object()
"""Sent to the main greenlet when an execution stops early (stuck, deadlock)."""


class Execution:
    """One run of a scenario under a strategy. Fields are read by strategies and checks."""

    def __init__(
        self, scenario: Scenario, factory: AllocatorFactory, max_steps: int, reuse: Execution | None = None
    ) -> None:
        self.scenario = scenario
        self.max_steps = max_steps
        n = len(scenario.threads)
        self.live = False
        """True once the start phase is over and accesses are scheduled."""
        self.starting = False
        self.current = -1
        """The thread running now (-1 for the main greenlet)."""
        self.enabled: list[int] = []
        """Threads that can perform their pending access, in index order."""
        self.pending_node = [0] * n
        self.pending_kind = [0] * n
        self.schedule: list[int] = []
        """The thread chosen at each step so far."""
        self.preemptions = 0
        self.trace: list[Event] = []
        self.history: list[OpRecord] = []
        self._clock = 0
        self.held: dict[int, int] = {}
        """Block -> the thread holding it (-1 for initial blocks): alloc returned it, free not yet called."""
        self.failure: Failure | None = None
        self.misuse: ExplorerError | None = None
        """The strategy could not go on (a schedule that does not fit): raised by ``run``, not a crash."""
        self.words: ScheduledWords | None = None
        self._glets: list[Any] = [None] * n
        self._main: Any = None
        self._pick: Callable[[Execution, int], int] = _no_strategy
        self.allocator: Any
        self._initial: list[int]
        self._initial_held: dict[int, int]
        self._reusable: bool
        if reuse is not None and reuse.words is not None and reuse._reusable:
            # Same scenario, an allocator whose whole state is its words: reset them, skip the setup.
            self.allocator, self.words = reuse.allocator, reuse.words
            self.words.ex = self
            self.words.w[:] = reuse._initial
            self.held = dict(reuse._initial_held)
        else:
            self.allocator = factory(scenario, self._make_words, self._make_lock)
            self._setup()
        self._initial = list(self.words.w) if self.words is not None else []
        self._initial_held = dict(self.held)
        # An NBBS (or subclass keeping its constructor) holds nothing but its words: reusable.
        self._reusable = type(self.allocator).__init__ is NBBS.__init__

    # -- construction -------------------------------------------------------------------

    def _make_words(self, length: int) -> ScheduledWords:
        self.words = ScheduledWords(self, length)
        return self.words

    def _make_lock(self) -> ScheduledLock:
        return ScheduledLock(self)

    def _setup(self) -> None:
        """Allocate the initial blocks sequentially, unscheduled, each exactly at its node."""
        sc = self.scenario
        for n in sc.initial:
            order = g.order_of(sc.depth, n)
            addr = self.allocator.alloc(order, n - g.first_node(g.level(n)))
            if addr != g.first_page(sc.depth, n):
                raise ExplorerError(
                    f"allocator {sc.allocator!r} cannot place initial block {n} "
                    f"(it returned address {addr}): it ignores the scan hint, so give it no initial blocks"
                )
            self.held[n] = -1
        self.trace.clear()

    def initial_words(self) -> tuple[int, ...]:
        return tuple(self.allocator.words())

    def _tick(self) -> int:
        """The logical clock of calls and returns: only their order matters to linearizability,
        so numbering them 0, 1, 2 ... lets equal orders share one memoised check."""
        self._clock += 1
        return self._clock

    # -- scheduling ---------------------------------------------------------------------

    def point(self, node: int, kind: int) -> None:
        """The running thread is about to access ``node``: decide who goes next.

        The hot path of the explorer: when the same thread goes on, no switch happens.
        """
        me = self.current
        self.pending_node[me] = node
        self.pending_kind[me] = kind
        if self.starting:
            self._main.switch()
            return
        sched = self.schedule
        if len(sched) >= self.max_steps:
            self._stop_stuck()
        nxt = self._pick(self, me)
        sched.append(nxt)
        if nxt != me:
            if nxt < 0:
                sched.pop()
                self._main.switch(_STOP)
                raise InternalBug("a stopped execution was resumed")
            self.preemptions += 1
            self.current = nxt
            self._glets[nxt].switch()

    def _stop_stuck(self) -> None:
        if self.failure is None:
            self.failure = Failure(
                "stuck",
                f"no end after {self.max_steps} steps (max_steps): a thread loops or livelocks",
                len(self.schedule),
            )
        self._main.switch(_STOP)
        raise InternalBug("a stopped execution was resumed")

    def choose(self, me: int) -> int:
        """The thread that performs the next step when no thread is running, or -1 to stop."""
        if len(self.schedule) >= self.max_steps:
            if self.failure is None:
                self.failure = Failure(
                    "stuck",
                    f"no end after {self.max_steps} steps (max_steps): a thread loops or livelocks",
                    len(self.schedule),
                )
            return -1
        if not self.enabled:
            return -1
        nxt = self._pick(self, me)
        if nxt >= 0:
            self.schedule.append(nxt)
        return nxt

    def block(self, lock: ScheduledLock) -> None:
        """The running thread waits for ``lock``: run someone else until it is released."""
        me = self.current
        self.enabled.remove(me)
        lock.waiters.append(me)
        nxt = self.choose(-1)
        if nxt < 0:
            if self.failure is None:
                self.failure = Failure(
                    "deadlock",
                    f"threads {sorted(lock.waiters)} wait for a lock held by thread {lock.owner}, "
                    "and no thread can run",
                    len(self.schedule),
                )
            self._main.switch(_STOP)
            raise InternalBug("a deadlocked execution was resumed")
        self.current = nxt
        self._glets[nxt].switch()

    def _body(self, t: int) -> None:
        """Logical thread ``t``: its operations, with the bookkeeping the checks need."""
        sc = self.scenario
        depth = sc.depth
        alloc = self.allocator
        trace = self.trace
        held = self.held
        mine: list[int | None] = []
        op: Any = None
        try:
            for op in sc.threads[t]:
                if type(op) is AllocOp:
                    rec = OpRecord(t, None, self._tick())
                    trace.append((t, -1, CALL, op, None))
                    addr = alloc.alloc(op.order, op.hint)
                    node = None if addr is None else g.node_of(depth, addr, op.order)
                    rec.ret = self._tick()
                    trace.append((t, -1, RET, op, node))
                    rec.op = Alloc(op.order, node)
                    self.history.append(rec)
                    mine.append(node)
                    if node is not None:
                        for h, owner in held.items():
                            if g.overlaps(h, node):
                                holder = "the setup" if owner < 0 else f"thread {owner}"
                                self.failure = Failure(
                                    "overlap",
                                    f"thread {t} got block {node} while {holder} holds block {h}, "
                                    "which overlaps it",
                                    len(self.schedule),
                                    (h, node),
                                )
                                return
                        held[node] = t
                elif type(op) is DoubleFree:
                    node = op.node
                    # The user's block leaves their hands when the first racing free is called
                    # (a free takes effect at its call); exactly one of the frees may succeed.
                    held.pop(node, None)
                    rec = OpRecord(t, Free(node), self._tick())
                    trace.append((t, -1, CALL, op, None))
                    try:
                        alloc.free(g.first_page(depth, node), g.order_of(depth, node))
                    except DoubleFreeError:
                        # Refused: another free of the block came first. Not an operation of the history.
                        trace.append((t, -1, RET, op, None))
                        continue
                    rec.ret = self._tick()
                    trace.append((t, -1, RET, op, None))
                    if any(r.op == Free(node) for r in self.history):
                        self.failure = Failure(
                            "double free",
                            f"thread {t}'s free of block {node} succeeded, but another free of it "
                            "already had",
                            len(self.schedule),
                            (node,),
                        )
                        return
                    self.history.append(rec)
                else:
                    node = mine[op.k] if type(op) is FreeOwn else op.node
                    if node is None:
                        continue
                    del held[node]
                    rec = OpRecord(t, Free(node), self._tick())
                    trace.append((t, -1, CALL, op, None))
                    if sc.checked_free:
                        alloc.free(g.first_page(depth, node), g.order_of(depth, node))
                    else:
                        alloc._free_node(node, alloc.max_level)
                    rec.ret = self._tick()
                    trace.append((t, -1, RET, op, None))
                    self.history.append(rec)
        except ExplorerError as e:
            # The strategy was misused (a replayed schedule that does not fit), not the allocator.
            self.misuse = e
            self.failure = Failure("misuse", str(e), len(self.schedule))
            return
        except Exception as e:  # the allocator under test raised: a crash of this thread
            import traceback

            tb = "".join(traceback.format_exception(e)[-6:])
            self.failure = Failure(
                "crash", f"thread {t} raised during {op}: {type(e).__name__}: {e}\n{tb}", len(self.schedule)
            )
            return
        self.enabled.remove(t)

    # -- running ------------------------------------------------------------------------

    def run(self, strategy: Strategy) -> Outcome:
        """Run every thread to its end (or to the first failure) under ``strategy``."""
        self._pick = strategy.pick
        initial = self.initial_words()
        n = len(self.scenario.threads)
        main = self._main = getcurrent()
        self.enabled = list(range(n))
        # Start phase: each thread runs to its first access and parks there.
        self.starting = self.live = True
        for t in range(n):
            self.current = t
            gl = self._glets[t] = greenlet(self._body, main)
            gl.switch(t)
            if self.failure is not None:
                break
        self.starting = False
        glets = self._glets
        while self.enabled and self.failure is None:
            nxt = self.choose(-1)
            if nxt < 0:
                break
            self.current = nxt
            if glets[nxt].switch() is _STOP:
                break
        self.live = False
        self.current = -1
        completed = not self.enabled and self.failure is None
        out = Outcome(
            self.schedule,
            self.trace,
            self.history,
            initial,
            tuple(self.allocator.words()),
            self.held,
            self.failure,
            completed,
            self.preemptions,
            [self.schedule.count(t) for t in range(n)],
        )
        self._glets = []
        if self.misuse is not None:
            raise self.misuse
        return out
