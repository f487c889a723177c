"""NBBS alloc and free as explicit step machines: one shared-word access per step.

An operation in flight is an ``OpState``: a program counter and a few small ints of locals,
immutable and hashable. The machine that runs it is a ``Machine`` (the tree's shape and the
``bits.Transitions`` bundle), so a mutant bundle plugs in unchanged. Every index comes from
``geometry`` and every word transition and predicate from the bundle; this module only
orders the accesses, exactly as ``impl/nbbs.py`` does (a test runs both on the same
operations and compares their access sequences).

The API, for the model checker, the deterministic scheduler and the proofs::

    m = Machine(depth, max_level, transitions)        # frozen, hashable
    op = m.alloc(order, start)   # scan of level depth - order from position ``start``
    op = m.attempt(node)         # one attempt at ``node``: fails if occupy or climb fails
    op = m.free(node)            # free of the block ``node`` (``checked=True``: as NBBS.free)

    m.access(op) -> Access | None   # the next shared access: kind, node, operands (None: done)
    m.after(op, old) -> OpState     # the state after that access, given the word it found
    effect(access, old) -> int      # the word the access leaves (load: unchanged, cas: ...)
    m.step(op, words) -> (Event, new op, new word)   # the three above, on a word sequence
    m.branches(op, old, logic) -> [(guard, OpState)] # ``after`` for symbolic ``old``
    is_done(op), result(op)                           # finished? the node an alloc got

Every access returns to the machine the word it found (``old``): for a CAS, success is
``old == access.a``. ``after`` decides with the bundle's predicates on ``old`` and with
Python ``if`` only on the locals that are always concrete (``pc``, ``n``, ``child``, ``top``,
``left``); ``cur``, the word a CAS expects, is the only local holding a word. So
``branches(op, old, logic)`` with a z3 ``Logic`` (``tree.Logic``) and a z3 ``old`` gives the
successors as (guard, state) pairs, mutually exclusive and exhaustive, with ``cur`` a z3
term; on ints the one whose guard is true is ``after(op, old)``. ``effect(access, old, ite)``
takes z3's ``If`` the same way.

**alloc** (``A_*``, ``C_*``, then ``R_*`` while rolling back). ``left`` is how many nodes
of the level the scan may still visit (``m.attempt`` starts with 1, so any failure ends it)::

    A_LOAD    load n;  free? -> A_OCC (cur = old)  else advance
    A_OCC     cas n: cur -> occupy(cur);  ok -> climb from n  else advance
    C_LOAD    load p = parent(child);  occupied? -> roll back below p
              else climb(old) == old ? -> next level  else C_CAS (cur = old)
    C_CAS     cas p: cur -> climb(cur);  ok -> climb_stops(cur)? -> done  else next level;
              failed -> C_LOAD
    R_*       the free below, of n, bounded by top = level(p) + 1; then skip p's subtree
    R_PLOAD   (rollback_extends) the mark reached top and would go on: load the failed
              ancestor;  rollback_continues(old)? -> R_PCAS (cur = old)  else release
    R_PCAS    cas it: cur -> mark(cur);  failed -> R_PLOAD;  ok -> a free up to max_level

``advance`` moves to the next node (round-robin) or, when ``left`` runs out, fails
(``DONE_FAIL``); a climb past ``max_level`` succeeds (``DONE_OK``, ``n`` the block).

**free** (``F_*``; a rollback runs the same code as ``R_*``), with ``top`` the highest
level it may touch (``F_CHECK``, only in a checked free, first loads what ``NBBS.free``
loads to check its argument)::

    F_MARK    fetch_or parent(child) with mark_mask;  buddy keeps it busy or at top? -> F_RELEASE
    F_RELEASE (release_cas) cas n: cur -> release(cur);  failed -> DONE_FAIL (another free
              of n came first);  else store release(BUSY) into n
    F_ULOAD   load p = parent(child);  unmark_applies(old)? -> F_UCAS (cur = old)
              else unmark_skips(old)? -> on to the next ancestor  else done
    F_UCAS    cas p: cur -> unmark(cur);  failed -> F_ULOAD;  unmark_stops or at top -> done

With ``release_cas`` (``counted``) the release is a CAS so that of two frees racing on one
block exactly one gets it: ``cur`` is the block's word as the free found it (``F_CHECK``'s
load that accepted it; an unchecked free or a rollback expects ``occupy(0)``, the word its
occupy wrote), and the loser, finding the word already released, ends in ``DONE_FAIL``
having written nothing (the release is ``counted``'s first write). ``cur`` carries that word
from the free's start to its release. The five-bit variants keep the published store.
With ``release_last`` (a bundle flag) the release comes after the unmark instead: mark,
unmark, then F_RELEASE (expecting ``occupy(0)``: the unmark used ``cur``), then done.
Without ``marks`` (``counted``) there is no F_MARK: a free releases, then unmarks (uncounts)
every ancestor up to ``top``. Which bundle flags and
predicates each variant uses is in ``bits.VARIANTS``.

A trace record is an ``Event(node, kind, old, new)``; the checker adds the thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

from nbbs.model import bits
from nbbs.model import geometry as g
from nbbs.model.tree import PY, Logic


class Kind(IntEnum):
    """The five shared-word accesses."""

    LOAD = 0
    CAS = 1
    FETCH_OR = 2
    FETCH_AND = 3
    STORE = 4

    def __str__(self) -> str:
        return self.name.lower()


class Access(NamedTuple):
    """One shared access: ``cas`` has ``a`` = expected, ``b`` = new; ``fetch_*`` has ``a`` = mask;
    ``store`` has ``a`` = the value; ``load`` uses neither."""

    kind: Kind
    node: int
    a: Any = 0
    b: Any = 0


class Event(NamedTuple):
    """What one access did: the trace record compared between the model and the allocator."""

    node: int
    kind: Kind
    old: int
    new: int


def _py_ite(c: Any, a: Any, b: Any) -> Any:
    return a if c else b


def effect(access: Access, old: Any, ite: Callable[[Any, Any, Any], Any] = _py_ite) -> Any:
    """The word ``access`` leaves behind when it finds ``old`` (pass z3's ``If`` as ``ite``)."""
    k = access.kind
    if k == Kind.LOAD:
        return old
    if k == Kind.CAS:
        return ite(old == access.a, access.b, old)
    if k == Kind.FETCH_OR:
        return old | access.a
    if k == Kind.FETCH_AND:
        return old & access.a
    return access.a


# Program counters. Done states first, then alloc, then the free's four steps twice:
# F_* for a free operation, R_* (F_* + ROLLBACK) for an alloc's rollback.
DONE_OK, DONE_FAIL, DONE_FREE = 0, 1, 2
A_LOAD, A_OCC, C_LOAD, C_CAS = 3, 4, 5, 6
F_MARK, F_RELEASE, F_ULOAD, F_UCAS = 7, 8, 9, 10
ROLLBACK = 4
R_MARK, R_RELEASE, R_ULOAD, R_UCAS = (pc + ROLLBACK for pc in (F_MARK, F_RELEASE, F_ULOAD, F_UCAS))
F_CHECK = 15
R_PLOAD, R_PCAS = 16, 17
D_LOAD, D_CAS, U_LOAD, U_CAS = 18, 19, 20, 21

PC_NAMES = (
    "done:ok", "done:fail", "done:free",
    "alloc:load", "alloc:occupy", "alloc:climb-load", "alloc:climb-cas",
    "free:mark", "free:release", "free:unmark-load", "free:unmark-cas",
    "rollback:mark", "rollback:release", "rollback:unmark-load", "rollback:unmark-cas",
    "free:check", "rollback:above-load", "rollback:above-cas",
    "alloc:descend-load", "alloc:descend-cas", "alloc:undo-load", "alloc:undo-cas",
)  # fmt: skip


class OpState(NamedTuple):
    """One operation in flight: program counter and locals (unused locals are 0).

    ``n``: the alloc's candidate (its result when done) or the block being freed;
    ``child``: the node whose parent the climb, mark or unmark touches next;
    ``top``: the highest level a free or rollback touches;
    ``cur``: the word a CAS expects (the last one loaded);
    ``left``: how many nodes of the level the scan may still visit;
    ``fail``: the occupied ancestor that made an alloc's climb fail (while it rolls back).
    """

    pc: int
    n: int
    child: int = 0
    top: int = 0
    cur: Any = 0
    left: int = 0
    fail: int = 0


def is_done(op: OpState) -> bool:
    """The operation has finished."""
    return op.pc <= DONE_FREE


def is_alloc(op: OpState) -> bool:
    """The operation is an alloc in flight."""
    return A_LOAD <= op.pc <= C_CAS or R_MARK <= op.pc <= R_UCAS or op.pc >= R_PLOAD


def result(op: OpState) -> int | None:
    """The block a finished alloc got, or None (a failed alloc, or a free)."""
    return op.n if op.pc == DONE_OK else None


def describe(op: OpState) -> str:
    """The state in words, for counterexamples."""
    extra = []
    if op.child:
        extra.append(f"child={op.child}")
    if op.pc in (A_OCC, C_CAS, F_UCAS, R_UCAS, R_PCAS, D_CAS, U_CAS) or (
        op.pc in (F_RELEASE, R_RELEASE) and op.cur
    ):
        extra.append(f"cur={op.cur:05b}")
    if F_MARK <= op.pc <= R_UCAS or op.pc >= R_PLOAD:
        extra.append(f"top={op.top}")
    if op.fail:
        extra.append(f"fail={op.fail}")
    if op.left and not is_done(op):
        extra.append(f"left={op.left}")
    return f"{PC_NAMES[op.pc]} n={op.n}" + (" " + " ".join(extra) if extra else "")


Branches = list[tuple[Any, OpState]]


@dataclass(frozen=True)
class Machine:
    """The step machines of one tree: its ``depth``, the ``max_level`` climbs stop at, the bundle.

    ``gives_up`` is True for NBBS: a scan that has visited its whole level fails. False is a
    deliberately broken machine that scans forever (the lock-freedom check's own test).
    """

    depth: int
    max_level: int = 0
    transitions: bits.Transitions = bits.PUBLISHED
    gives_up: bool = True

    # -- starting an operation -------------------------------------------------------------

    def alloc(self, order: int, start: int) -> OpState:
        """A scan of the level of ``order`` starting at position ``start`` (modulo its width)."""
        lvl = g.level_of_order(self.depth, order)
        return OpState(A_LOAD, g.first_node(lvl) + start % g.width(lvl), left=g.width(lvl))

    def attempt(self, node: int) -> OpState:
        """One attempt at ``node``: the alloc fails if its occupy or its climb fails."""
        return OpState(A_LOAD, node, left=1)

    def free(self, node: int, checked: bool = False) -> OpState:
        """The free of block ``node`` (mark, release, unmark up to ``max_level``).

        ``checked`` starts with the loads ``NBBS.free`` makes to check its argument
        (``Arena.block_to_free``: the nodes starting at the block's first page, from the
        largest order down, until one is occupied; the free is refused, ``DONE_FAIL``
        touching nothing, unless that one is ``node``), so a scheduler can run the machine
        beside ``NBBS.free``. The model checker runs them with ``checked_free``.
        """
        if checked:
            top = g.ancestor_at(node, self.max_level) if g.level(node) >= self.max_level else node
            return OpState(F_CHECK, node, child=top)
        return self._free_from(node, self.max_level, 0, 0)

    # -- one step ----------------------------------------------------------------------------

    def access(self, op: OpState) -> Access | None:
        """The shared access ``op`` performs next, or None when it is done."""
        t, pc = self.transitions, op.pc
        if pc == A_LOAD:
            return Access(Kind.LOAD, op.n)
        if pc == A_OCC:
            return Access(Kind.CAS, op.n, op.cur, t.occupy(op.cur))
        if pc == C_LOAD:
            return Access(Kind.LOAD, g.parent(op.child))
        if pc == C_CAS:
            return Access(Kind.CAS, g.parent(op.child), op.cur, t.climb(op.cur, g.side(op.child)))
        if pc == F_CHECK:
            return Access(Kind.LOAD, op.child)
        if pc == R_PLOAD:
            return Access(Kind.LOAD, g.parent(op.child))
        if pc == R_PCAS:
            return Access(Kind.CAS, g.parent(op.child), op.cur, t.mark(op.cur, g.side(op.child)))
        if pc == D_LOAD:
            return Access(Kind.LOAD, g.parent(op.child))
        if pc == D_CAS:
            return Access(Kind.CAS, g.parent(op.child), op.cur, t.climb(op.cur, g.side(op.child)))
        if pc == U_LOAD:
            return Access(Kind.LOAD, g.parent(g.parent(op.child)))
        if pc == U_CAS:
            x = g.parent(op.child)
            return Access(Kind.CAS, g.parent(x), op.cur, t.unmark(op.cur, g.side(x)))
        if pc >= F_MARK:
            base = pc - ROLLBACK if R_MARK <= pc <= R_UCAS else pc
            if base == F_MARK:
                return Access(Kind.FETCH_OR, g.parent(op.child), t.mark_mask(g.side(op.child)))
            if base == F_RELEASE:
                if t.release_cas:
                    return Access(Kind.CAS, op.n, op.cur, t.release(op.cur))
                return Access(Kind.STORE, op.n, t.release(bits.BUSY))
            if base == F_ULOAD:
                return Access(Kind.LOAD, g.parent(op.child))
            return Access(Kind.CAS, g.parent(op.child), op.cur, t.unmark(op.cur, g.side(op.child)))
        return None

    def after(self, op: OpState, old: int) -> OpState:
        """The state after ``op``'s access found the word ``old`` (ints only)."""
        for guard, nxt in self.branches(op, old):
            if guard:
                return nxt
        raise AssertionError(f"[steps internal bug] no branch of {describe(op)} applies to {old}")

    def step(self, op: OpState, words: Sequence[int]) -> tuple[Event, OpState, int]:
        """Run ``op``'s next access on ``words``: the event, the new state, the accessed word's new value."""
        acc = self.access(op)
        if acc is None:
            raise ValueError(f"the operation is done ({describe(op)}); it has no next step")
        old = words[acc.node]
        new = effect(acc, old)
        return Event(acc.node, acc.kind, old, new), self.after(op, old), new

    def run(self, op: OpState, words: list[int]) -> tuple[OpState, list[Event]]:
        """Run ``op`` alone to completion on ``words`` (changed in place): the final state and the trace."""
        trace = []
        while not is_done(op):
            ev, op, new = self.step(op, words)
            words[ev.node] = new
            trace.append(ev)
        return op, trace

    def branches(self, op: OpState, old: Any, logic: Logic = PY) -> Branches:
        """The possible next states after ``op``'s access found ``old``, each with its guard.

        The guards are mutually exclusive and exhaustive; they are Python bools for an int
        ``old`` and ``logic``'s terms for a symbolic one.
        """
        t, pc = self.transitions, op.pc
        if pc == A_LOAD:
            ok = t.is_free(old)
            return [(ok, op._replace(pc=A_OCC, cur=old)), (logic.not_(ok), self._advance(op, 1))]
        if pc == A_OCC:
            ok = old == op.cur
            return [(ok, self._climb_from(op, op.n)), (logic.not_(ok), self._advance(op, 1))]
        if pc in (C_LOAD, C_CAS):
            return self._climb_branches(op, old, logic)
        if pc == F_CHECK:
            live = t.is_occupied(old)
            found = self.free(op.n) if op.child == op.n else OpState(DONE_FAIL, 0)
            if t.release_cas and op.child == op.n:
                found = found._replace(cur=old)  # the release will expect the word found here
            # The next node down that starts at the block's first page.
            lvl = g.level(op.child)
            below = g.ancestor_at(op.n, lvl + 1) if lvl < g.level(op.n) else g.left(op.child)
            down = op._replace(child=below) if lvl < self.depth else OpState(DONE_FAIL, 0)
            return [(live, found), (logic.not_(live), down)]
        if pc in (R_PLOAD, R_PCAS):
            return self._extend_branches(op, old, logic)
        if pc >= D_LOAD:
            return self._descend_branches(op, old, logic)
        if pc >= F_MARK:
            return self._free_branches(op, old, logic)
        raise ValueError(f"the operation is done ({describe(op)}); it has no next step")

    # -- alloc ---------------------------------------------------------------------------------

    def _advance(self, op: OpState, by: int) -> OpState:
        """Move the scan ``by`` positions right (round-robin), or fail when the lap is over."""
        lvl = g.level(op.n)
        first, size = g.first_node(lvl), g.width(lvl)
        left = op.left - by
        if left <= 0:
            if self.gives_up:
                return OpState(DONE_FAIL, 0)
            left = size
        return OpState(A_LOAD, first + (op.n - first + by) % size, left=left)

    def _climb_from(self, op: OpState, child: int) -> OpState:
        """Continue the climb above ``child``, or succeed when ``child`` is at ``max_level``."""
        if g.level(child) > self.max_level:
            return OpState(C_LOAD, op.n, child=child, left=op.left)
        return OpState(DONE_OK, op.n)

    def _climb_branches(self, op: OpState, old: Any, logic: Logic) -> Branches:
        t, s, p = self.transitions, g.side(op.child), g.parent(op.child)
        if t.top_down:
            # The ascent only reads: fail having written nothing, go up, or turn at the anchor.
            occupied = t.is_occupied(old)
            descend = op._replace(pc=D_CAS, cur=old, top=g.level(p))
            if g.level(p) == self.max_level:
                return [(occupied, self._roll_back_above(op, p)), (logic.not_(occupied), descend)]
            anchored = t.climb_stops(old, s)
            return [
                (occupied, self._roll_back_above(op, p)),
                (logic.and_(logic.not_(occupied), anchored), descend),
                (logic.and_(logic.not_(occupied), logic.not_(anchored)), op._replace(child=p)),
            ]
        if op.pc == C_CAS:
            ok = old == op.cur
            stops = t.climb_stops(op.cur, s)
            return [
                (logic.and_(ok, stops), OpState(DONE_OK, op.n)),
                (logic.and_(ok, logic.not_(stops)), self._climb_from(op, p)),
                (logic.not_(ok), op._replace(pc=C_LOAD, cur=0)),
            ]
        occupied = t.is_occupied(old)
        same = t.climb(old, s) == old
        rollback = self._free_from(op.n, g.level(p) + 1, ROLLBACK, op.left)._replace(fail=p)
        # (fail is set after _free_from, which only reads n, top and left.)
        return [
            (occupied, rollback),
            (logic.and_(logic.not_(occupied), same), self._climb_from(op, p)),
            (logic.and_(logic.not_(occupied), logic.not_(same)), op._replace(pc=C_CAS, cur=old)),
        ]

    # -- top-down climb (``Transitions.top_down``) -------------------------------------------
    #
    # D_LOAD    load x = parent(child);  occupied? -> roll back (x the anchor: nothing written;
    #           below it: uncount from x up);  x the anchor, not at max_level, its side now
    #           unclaimed? -> ascend again from x  else D_CAS (cur = old)
    # D_CAS     cas x: cur -> climb(cur);  failed -> D_LOAD;  below the anchor and the side was
    #           already claimed? -> U_LOAD (our claim on parent(x) is one too many)  else down
    # U_LOAD    load parent(x);  -> U_CAS (cur = old)
    # U_CAS     cas parent(x): cur -> unmark(cur);  failed -> U_LOAD;  ok -> down
    #
    # ``top`` is the anchor's level; "down" moves ``child`` one node towards n (D_LOAD), or
    # succeeds when the node just written was n's parent.

    def _roll_back_above(self, op: OpState, p: int) -> OpState:
        """The climb found ``p`` occupied having written nothing above ``op.n``: release ``op.n``."""
        return OpState(R_RELEASE, op.n, top=g.level(op.n), cur=self._held(), left=op.left, fail=p)

    def _roll_back_below(self, op: OpState, x: int) -> OpState:
        """The descent found ``x`` occupied below the anchor: release, then uncount from ``x`` up."""
        return OpState(R_RELEASE, op.n, child=x, top=self.max_level, cur=self._held(), left=op.left, fail=x)

    def _down(self, op: OpState) -> OpState:
        """The descent wrote ``parent(op.child)``: go on to the next node down, or succeed."""
        if op.child == op.n:
            return OpState(DONE_OK, op.n)
        below = g.ancestor_at(op.n, g.level(op.child) + 1)
        return OpState(D_LOAD, op.n, child=below, top=op.top, left=op.left)

    def _descend_branches(self, op: OpState, old: Any, logic: Logic) -> Branches:
        t, s, x = self.transitions, g.side(op.child), g.parent(op.child)
        anchor = g.level(x) == op.top
        if op.pc == D_LOAD:
            occupied = t.is_occupied(old)
            stop = self._roll_back_above(op, x) if anchor else self._roll_back_below(op, x)
            cas = op._replace(pc=D_CAS, cur=old)
            if anchor and g.level(x) > self.max_level:
                # The anchor's claims left while our CAS failed: it holds nothing up any more.
                gone = logic.not_(t.climb_stops(old, s))
                up = OpState(C_LOAD, op.n, child=x, left=op.left)
                return [
                    (occupied, stop),
                    (logic.and_(logic.not_(occupied), gone), up),
                    (logic.and_(logic.not_(occupied), logic.not_(gone)), cas),
                ]
            return [(occupied, stop), (logic.not_(occupied), cas)]
        if op.pc == D_CAS:
            ok = old == op.cur
            retry = op._replace(pc=D_LOAD, cur=0)
            if anchor:
                return [(ok, self._down(op)), (logic.not_(ok), retry)]
            joined = t.climb_stops(op.cur, s)
            return [
                (logic.and_(ok, joined), op._replace(pc=U_LOAD, cur=0)),
                (logic.and_(ok, logic.not_(joined)), self._down(op)),
                (logic.not_(ok), retry),
            ]
        if op.pc == U_LOAD:
            return [(True, op._replace(pc=U_CAS, cur=old))]
        ok = old == op.cur
        return [(ok, self._down(op)), (logic.not_(ok), op._replace(pc=U_LOAD, cur=0))]

    # -- free and rollback -------------------------------------------------------------------

    def _free_from(self, n: int, top: int, rb: int, left: int) -> OpState:
        """Start freeing ``n`` below level ``top``: mark if there is a parent to mark, else release.

        ``cur`` starts as the word occupy wrote into ``n`` (what an unchecked release expects).
        """
        held = self._held()
        if self.transitions.marks and g.level(n) > top:
            return OpState(F_MARK + rb, n, child=n, top=top, cur=held, left=left)
        return self._release(OpState(F_RELEASE + rb, n, cur=held, left=left), rb, top)

    def _held(self) -> int:
        """What a release CAS expects by default: the word occupy wrote (0 without ``release_cas``)."""
        return self.transitions.occupy(0) if self.transitions.release_cas else 0

    def _release(self, op: OpState, rb: int, top: int) -> OpState:
        """The mark phase is over: release, or (``release_last``) unmark first."""
        if rb and self.transitions.rollback_extends:
            # The corrected rollback's unmark goes on above its bound like a free's.
            top = self.max_level
        # A free's ``cur`` is still its block's word; a rollback's may be an ancestor's (R_PCAS).
        held = self._held() if rb else op.cur
        base = OpState(F_RELEASE + rb, op.n, top=top, cur=held, left=op.left, fail=op.fail)
        return self._unmark_from(base, op.n, rb) if self.transitions.release_last else base

    def _unmark_done(self, op: OpState, rb: int) -> OpState:
        """The unmark is over: finish, or (``release_last``) release now."""
        if self.transitions.release_last:
            held = self._held()
            return OpState(F_RELEASE + rb, op.n, top=op.top, cur=held, left=op.left, fail=op.fail)
        return self._finish_free(op, rb)

    def _finish_free(self, op: OpState, rb: int) -> OpState:
        """A free is done; a rollback resumes its scan after the failed ancestor's subtree."""
        if not rb:
            return OpState(DONE_FREE, op.n)
        lvl = g.level(op.n)
        skip = g.after_subtree(op.fail, lvl) - op.n
        return self._advance(op, skip)

    def _unmark_from(self, op: OpState, child: int, rb: int) -> OpState:
        """Continue the unmark above ``child``, or finish at ``top``."""
        if g.level(child) > op.top:
            return OpState(F_ULOAD + rb, op.n, child=child, top=op.top, left=op.left, fail=op.fail)
        return self._unmark_done(op, rb)

    def _unmark_start(self, op: OpState) -> Any:
        """Where a release's unmark starts: ``n``, or for a top-down rollback the node it failed
        at (``child``). (No truth test on ``child`` unless top-down: the proofs make it a z3 term.)"""
        return op.child if self.transitions.top_down and op.child else op.n

    def _free_branches(self, op: OpState, old: Any, logic: Logic) -> Branches:
        t = self.transitions
        rb = ROLLBACK if R_MARK <= op.pc <= R_UCAS else 0
        base = op.pc - rb
        if base == F_RELEASE and not t.release_cas:
            if t.release_last:
                return [(True, self._finish_free(op, rb))]
            return [(True, self._unmark_from(op, self._unmark_start(op), rb))]
        if base == F_RELEASE:
            ok = old == op.cur
            # Lost: another free released the block first; this one ends having written nothing.
            lost = OpState(DONE_FAIL, 0)
            if t.release_last:
                return [(ok, self._finish_free(op._replace(cur=0), rb)), (logic.not_(ok), lost)]
            start = self._unmark_start(op)
            return [(ok, self._unmark_from(op._replace(cur=0), start, rb)), (logic.not_(ok), lost)]
        s, p = g.side(op.child), g.parent(op.child)
        if base == F_MARK:
            release = self._release(op, rb, op.top)
            stop = t.buddy_keeps_busy(old, s)
            if g.level(p) > op.top:
                return [(stop, release), (logic.not_(stop), op._replace(child=p))]
            if rb and t.rollback_extends and op.top == g.level(op.fail) + 1:
                # The mark would go on but reached the rollback's bound: look above it.
                return [(stop, release), (logic.not_(stop), op._replace(pc=R_PLOAD, child=p))]
            return [(True, release)]
        if base == F_ULOAD:
            # Skipping treats the side as cleared by us: go on unless the other side holds p.
            applies = t.unmark_applies(old, s)
            skips = logic.and_(
                logic.not_(applies), t.unmark_skips(old, s), logic.not_(t.unmark_stops(old, s))
            )
            return [
                (logic.and_(logic.not_(applies), logic.not_(skips)), self._unmark_done(op, rb)),
                (skips, self._unmark_from(op, p, rb)),
                (applies, op._replace(pc=F_UCAS + rb, cur=old)),
            ]
        ok = old == op.cur
        stops = t.unmark_stops(t.unmark(op.cur, s), s)
        return [
            (logic.not_(ok), op._replace(pc=F_ULOAD + rb, cur=0)),
            (logic.and_(ok, stops), self._unmark_done(op, rb)),
            (logic.and_(ok, logic.not_(stops)), self._unmark_from(op, p, rb)),
        ]

    def _extend_branches(self, op: OpState, old: Any, logic: Logic) -> Branches:
        """Above a rollback's bound: mark the failed ancestor if a climb handed its side to us."""
        t, s, p = self.transitions, g.side(op.child), g.parent(op.child)
        if op.pc == R_PLOAD:
            go = t.rollback_continues(old, s)
            return [
                (go, op._replace(pc=R_PCAS, cur=old)),
                (logic.not_(go), self._release(op, ROLLBACK, op.top)),
            ]
        ok = old == op.cur
        stop = t.buddy_keeps_busy(op.cur, s)
        done = self._release(op, ROLLBACK, self.max_level)
        if g.level(p) > self.max_level:
            on = OpState(R_MARK, op.n, child=p, top=self.max_level, left=op.left, fail=op.fail)
        else:
            on = done
        return [
            (logic.not_(ok), op._replace(pc=R_PLOAD, cur=0)),
            (logic.and_(ok, stop), done),
            (logic.and_(ok, logic.not_(stop)), on),
        ]
