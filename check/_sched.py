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

*Remote threads.* The allocator may also live in another process (a port in controlled
mode, ``nbbs.conform.controlled``): its threads are real OS threads that announce each
shared access and wait. ``RemoteThreads`` is all the runtime needs of them (start an
operation, learn its pending access, perform it, read the words); ``RemoteAllocator`` is the
local stand-in each logical thread calls, still in its greenlet: it announces the remote
thread's pending access at ``Execution.point`` exactly as ``ScheduledWords`` does, then has the
remote thread perform it and records what it did. So strategies, checks and schedule strings
are the same for both kinds of thread: one scheduler.
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
from nbbs.model import steps
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
    ``crash``, ``stuck``, ``deadlock``, ``progress`` (lock-freedom), ``bridge``, or ``protocol``
    (a remote allocator's words disagree with the accesses it reported)."""
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


Access = tuple[int, int, int, int]
"""What a remote thread did: ``(kind, node, old, new)``, ``kind`` one of LOAD .. STORE."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A remote thread waits to perform this access."""

    kind: int
    """LOAD, CAS, FETCH_OR, FETCH_AND or STORE (a CAS's outcome is known only once performed)."""
    node: int


@dataclass(frozen=True, slots=True)
class Done:
    """A remote thread finished its operation: an alloc's first page (or None); None for a free."""

    result: int | None


class RemoteError(Exception):
    """A remote allocator answered an operation with an error, or broke the protocol."""


class RemoteThreads(Protocol):
    """Threads of an allocator in another process, each stopped before every shared access.

    Pages and nodes, not addresses: the implementation converts. An operation that the remote
    allocator refuses raises ``RemoteError`` (a crash of that logical thread).
    """

    def arena(self, scenario: Scenario) -> None:
        """A fresh arena for ``scenario`` (depth, max order, allocator = variant), no thread mid-operation."""
        ...

    def alloc(self, order: int, hint: int) -> int | None:
        """A sequential alloc, outside any schedule: the first page of the block, or None."""
        ...

    def spawn_alloc(self, t: int, order: int, hint: int) -> Pending | Done:
        """Thread ``t`` starts ``alloc(order, hint)`` and runs to its first shared access."""
        ...

    def spawn_free(self, t: int, page: int, order: int) -> Pending | Done:
        """Thread ``t`` starts freeing the block of ``order`` at ``page``."""
        ...

    def step(self, t: int) -> tuple[Access, Pending | Done]:
        """Thread ``t`` performs its pending access: what it did, and what comes next."""
        ...

    def words(self) -> tuple[int, ...] | None:
        """The status words by node (None if the remote allocator does not expose them)."""
        ...


class RemoteAllocator:
    """The local stand-in of a remote allocator: what each logical thread's greenlet calls.

    Keeps a mirror of the remote words, updated from what each access reports, so a remote
    allocator that changes a word without reporting it (or reports a word it did not find)
    is caught at its next access to that word.
    """

    def __init__(
        self, scenario: Scenario, remote: RemoteThreads, words: Callable[[int], ScheduledWords]
    ) -> None:
        self.remote = remote
        self.depth = scenario.depth
        self.max_level = scenario.max_level
        # The mirror: a ScheduledWords only for its ``ex`` and array; its accesses are never called.
        self.mirror = words(g.node_count(scenario.depth))
        self.ex = self.mirror.ex
        self.scenario = scenario
        remote.arena(scenario)

    def alloc(self, order: int, hint: int | None) -> int | None:
        """``order``'s block: sequentially before the run (setup), else through the schedule."""
        if hint is None:
            raise ExplorerError("a remote alloc needs a scan start (hint)")
        if not self.ex.live:
            page = self.remote.alloc(order, hint)
            self.resync(page, order)
            return page
        t = self.ex.current
        return self._follow(t, self.remote.spawn_alloc(t, order, hint))

    def free(self, page: int, order: int) -> None:
        """Free the block of ``order`` at ``page`` through the schedule."""
        t = self.ex.current
        self._follow(t, self.remote.spawn_free(t, page, order))

    def _free_node(self, node: int, top_level: int) -> None:
        raise ExplorerError("a remote allocator always checks a free's argument: U scenarios do not apply")

    def _follow(self, t: int, nxt: Pending | Done) -> int | None:
        """Let thread ``t`` perform its accesses, each when the strategy picks it; its result."""
        ex, remote, mirror, trace = self.ex, self.remote, self.mirror.w, self.ex.trace
        while type(nxt) is Pending:
            ex.point(nxt.node, nxt.kind)
            (kind, node, old, new), after = remote.step(t)
            if node != nxt.node or (kind != nxt.kind and not (kind == CAS_FAIL and nxt.kind == CAS)):
                raise RemoteError(
                    f"thread {t} announced {KIND_NAMES[nxt.kind]} of node {nxt.node} "
                    f"but did {KIND_NAMES[kind]} of node {node}"
                )
            if old != mirror[node]:
                raise RemoteError(
                    f"thread {t} found word {old:#x} at node {node}, but the accesses reported so far "
                    f"left {mirror[node]:#x} there: some access went unreported"
                )
            mirror[node] = new
            trace.append((t, node, kind, old, new))
            nxt = after
        assert type(nxt) is Done
        return nxt.result

    def resync(self, page: int | None, order: int) -> None:
        """Bring the mirror up to date after a sequential alloc that returned ``page``.

        From the remote words if it shows them; else by the step machine of the scenario's
        variant making the same alloc on the mirror (the port is assumed to leave the words
        the model does: the first access to a word it left otherwise is caught).
        """
        w = self.remote.words()
        if w is not None:
            self.mirror.w[:] = w
        elif page is not None:
            from nbbs.check._allocators import allocator_classes  # (it imports this module)

            sc = self.scenario
            m = steps.Machine(sc.depth, sc.max_level, allocator_classes()[sc.allocator].transitions)
            m.run(m.attempt(g.node_of(sc.depth, page, order)), self.mirror.w)

    def words(self) -> tuple[int, ...]:
        """The remote words (the mirror, if the remote allocator does not expose them)."""
        w = self.remote.words()
        return tuple(self.mirror.w) if w is None else w

    def consistency(self, out: Outcome) -> Failure | None:
        """At the end of a run: do the words the remote allocator shows equal what its accesses reported?"""
        mirror = tuple(self.mirror.w)
        if out.final_words != mirror:
            bad = [n for n in range(1, len(mirror)) if mirror[n] != out.final_words[n]]
            return Failure(
                "protocol",
                f"the port's words differ at nodes {bad} from what its reported accesses left there",
                len(out.schedule),
                tuple(bad),
            )
        return None


def remote_factory(remote: RemoteThreads) -> AllocatorFactory:
    """The allocator factory of scenarios run on ``remote``."""

    def build(sc: Scenario, words: Callable[[int], ScheduledWords], lock: Callable[[], ScheduledLock]) -> Any:
        return RemoteAllocator(sc, remote, words)

    return build


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
