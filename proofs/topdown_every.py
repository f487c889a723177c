"""``top-down`` and ``top-down-node`` for every depth and any number of threads: the frame, the
per-node invariant, safety and lock-freedom in z3, one query per program counter (``tnevery_*`` for
``top-down-node``, ``tdevery_*`` for ``top-down``).

Only the invariant is written here. The encoding (symbolic depth ``1 .. MAX_DEPTH``,
``max_level``, nodes; words and the others' summary as functions of nodes, reduced to
variables plus congruence), the step (``steps.Machine``'s own code run on those symbols by
``_symexec.explore``) and the queries are ``counted_every``'s, parameterised by a
``counted_every.Shape``; ``topdown_steps`` proves the same invariant for a fixed tree and
number of threads.

**The per-node invariant** ``NI(a)`` (ALGORITHM.md §1.4.2, ``topdown_steps``' ``Inv`` at one
node, with the other threads summarised): ``R_s(a)`` is, at a node at or below ``max_level``,
``[the child on side s is a static block]`` plus the other threads' tokens at ``(a, s)`` (0
above ``max_level``, where nothing is counted), ``H(a)`` "another thread or a static block
holds or occupies ``a``"::

    a above max_level: W[a] == 0, nobody holds it, R == 0, no token of mine at a
    OCC(W[a]) iff H(a) or I occupy a (at or below max_level); not both
    a held word is BUSY, any other has no status bit
    a page: R == 0, no token of mine at it
    a at or below max_level, side s with child c:
        c_s(W[a]) == R_s(a) + [a is not a page] * handed(W[c]) + [my token at (a, s)]

with ``handed(w)`` what a child hands up: ``[c_L(w) != 0] + [c_R(w) != 0]`` (``top-down``),
``[c_L(w) != 0 or c_R(w) != 0]`` (``top-down-node``). Unlike ``counted``'s, ``NI(a)`` reads
the words of ``a``'s children, so a step at ``m`` may change it at ``m`` and at ``parent(m)``:
the instantiation assumes ``NI`` at ``a0``, at ``m`` and at ``m``'s children (a descent's
undo needs its node's claim, which is in the child's ``NI``), and the frame says my
contribution changes only at ``m`` and its parent (a token handed up or down one level, the
change in what ``m`` hands up balancing it).

**Why one stepping thread covers any number** is ``counted_every``'s argument: ``Inv`` for
``T`` threads is ``NI`` at every node with the count's tokens summed over the threads, plus
each thread's local facts; the others' tokens, the static children and the others' local
facts are functions of their own op states, which my step does not change, and what a child
hands up is read from the words themselves. That is the one paragraph not checked by z3.

**My tokens** (``topdown_steps.token_sources``, one definition for ints and z3 terms):
holding ``n`` or about to release it, one handed up from ``n``; descending below the anchor
towards ``child``, one handed up from ``parent(child)``; undoing a surplus, that one and one
from ``child``; uncounting from ``child``, one from ``child``; a rollback about to release
after a descent failed at ``x``, one from ``x``.

**Bounds.** ``R_s(a)`` is at most one static child plus one token per other thread, so
``R < 2**29 - 4`` (``Shape.headroom``: room for two handed up, my token and one more CAS)
holds for any number of threads below ``2**29 - 6``; ``counted_every`` allows 2.

**Local facts** (``local``): the op state's shape per pc, as ``counted_every.local`` for the
pcs ``top-down`` shares with ``counted`` (occupy, free), and: an ascent's ``child`` is on
``n``'s path above ``max_level``; a descent's or undo's ``child`` is on ``n``'s path below the
anchor level ``top`` (``max_level <= top``), strictly below it for an undo; at a descent CAS
``cur`` is no block, and at the anchor above ``max_level`` it is claimed (``climb_stops``:
the anchor stays claimed, so what it hands up does not change); a rollback's release is
either the ascent's (nothing written: ``child == 0``, ``top == level(n)``) or the descent's
(``child == fail``, a proper ancestor of ``n`` below ``max_level``, ``top == max_level``).

**Safety** (``tnevery_safe``): three per-node claims and an induction on the path by hand:
a held block below ``max_level`` puts at least one into its parent's count on its side
(``R`` counts a static block and another thread's held block by its token: the definition of
``R``; mine is my token); a node below ``max_level`` with a count puts at least one into its
parent's; a node at or below ``max_level`` with a count is held by nobody. So every ancestor
of a held block up to ``max_level`` has a count and is no block.

**Lock-freedom** (``{prefix}_lockfree@pc``): ``counted_every``'s claims with ``rank`` (below)
in the measure: an attempt makes at most ``4 (L - max_level) + 4`` successful writes.

The linearization points, scan mode (``local`` takes ``left`` up to the level's width when
the world is in scan mode), the initial state, quiescence, the fold and the global measure:
``topdown_close``, with this shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import bits, steps
from nbbs.model import geometry as g
from nbbs.model.steps import OpState
from nbbs.proofs import counted_every as ce
from nbbs.proofs import topdown_steps as ts
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, val

_ALLOC = (
    steps.A_LOAD,
    steps.A_OCC,
    steps.C_LOAD,
    steps.D_LOAD,
    steps.D_CAS,
    steps.U_LOAD,
    steps.U_CAS,
    steps.R_RELEASE,
    steps.R_ULOAD,
    steps.R_UCAS,
)
_FREE = (steps.F_RELEASE, steps.F_ULOAD, steps.F_UCAS)
_KNOWN = (steps.DONE_OK, *_ALLOC, *_FREE)


def tokens_at(op: OpState, a: Any, s: int, ml: Any) -> Any:
    """``op``'s thread has a token at side ``s`` of node ``a`` (a z3 Boolean)."""
    out = []
    for cond, x in ts.token_sources(op, ml, ce.level):
        x = ce.bv(x)
        c = cond if z3.is_expr(cond) else z3.BoolVal(bool(cond))
        out.append(z3.And(c, g.parent(x) == a, ce.bv(g.side(x)) == s))
    return z3.Or(out) if out else z3.BoolVal(False)


def occupies(op: OpState, a: Any) -> Any:
    """``op``'s thread holds or has occupied ``a`` (``topdown_steps.occupier``)."""
    o = ts.occupier(op)
    return z3.BoolVal(False) if not z3.is_expr(o) and o == 0 else ce.bv(o) == a


def some_count(w: Any) -> Any:
    """The word has a claim on some side."""
    return z3.Or(ce._count(w, 0) != 0, ce._count(w, 1) != 0)


def _handed(per_node: bool) -> Callable[[Any], Any]:
    one, zero = z3.BitVecVal(1, ce.WIDE), z3.BitVecVal(0, ce.WIDE)

    def handed(w: Any) -> Any:
        if per_node:
            return z3.If(some_count(w), one, zero)
        return sum((z3.If(ce._count(w, s) != 0, one, zero) for s in (0, 1)), zero)

    return handed


def _ni(handed: Callable[[Any], Any]) -> Callable[[ce.World, ce.Words, OpState, Any], list[tuple[str, Any]]]:
    def ni(wd: ce.World, w_at: ce.Words, op: OpState, a: Any) -> list[tuple[str, Any]]:
        la = ce.level(a)
        w = w_at(a)
        ml = wd.max_level
        mine = occupies(op, a)
        held = wd.H(a)
        occupied = w & bits.OCC != 0
        above = la < ml
        tok = {s: tokens_at(op, a, s, ml) for s in (0, 1)}
        one, zero = z3.BitVecVal(1, ce.WIDE), z3.BitVecVal(0, ce.WIDE)
        r_zero = z3.And(wd.R(0, a) == 0, wd.R(1, a) == 0)
        nothing = z3.And(r_zero, z3.Not(tok[0]), z3.Not(tok[1]))
        kid = {1: g.left(a), 0: g.right(a)}
        inner = la < wd.depth
        return [
            (
                "above max_level: zero, unheld, nothing handed up",
                z3.Implies(above, z3.And(w == 0, z3.Not(held), z3.Not(mine), nothing)),
            ),
            ("OCC iff held or occupied", z3.Implies(z3.Not(above), occupied == z3.Or(held, mine))),
            ("held or occupied by one at most", z3.Not(z3.And(held, mine))),
            (
                "BUSY or no status bit",
                z3.If(occupied, w == bits.BUSY, w & ((1 << bits.COUNT_SHIFT) - 1) == 0),
            ),
            ("a page has nothing handed up to it", z3.Implies(la == wd.depth, nothing)),
            *[
                (
                    f"c_{'L' if s else 'R'} = the others' tokens + what the child hands up + my token",
                    z3.Implies(
                        z3.Not(above),
                        ce._count(w, s)
                        == wd.R(s, a) + z3.If(inner, handed(w_at(kid[s])), zero) + z3.If(tok[s], one, zero),
                    ),
                )
                for s in (1, 0)
            ],
        ]

    return ni


def local(wd: ce.World, op: OpState) -> Any:
    """My local facts at ``op`` (module docstring): a z3 Boolean."""
    pc, n = op.pc, ce.bv(op.n)
    if pc in (steps.DONE_FAIL, steps.DONE_FREE):
        return z3.BoolVal(True)
    if pc not in _KNOWN:
        return z3.BoolVal(False)  # a pc this invariant does not know: nothing may reach it
    ml = wd.max_level
    ln = ce.level(n)
    facts = [wd.node(n), ln >= ml]
    child, top, fail = ce.bv(op.child), ce.bv(op.top), ce.bv(op.fail)
    lc = ce.level(child)

    def on_path(x: Any) -> Any:
        return z3.And(x >= 1, ce.level(x) <= ln, g.ancestor_any(n, ce.level(x), z3.If, ce.BITS) == x)

    def proper(x: Any) -> Any:
        return z3.And(on_path(x), ce.level(x) < ln)

    if pc in _ALLOC:
        if wd.scan:
            facts += [ce.bv(op.left) >= 1, ce.bv(op.left) <= (z3.BitVecVal(1, ce.BITS) << ln)]
        else:
            facts.append(ce.bv(op.left) == 1)
    if pc == steps.A_OCC:
        facts.append(ce.bv(op.cur) == 0)
    if pc == steps.C_LOAD:
        facts += [on_path(child), lc > ml]
    if pc in (steps.D_LOAD, steps.D_CAS):
        facts += [on_path(child), top >= ml, top < lc]
    if pc == steps.D_CAS:
        facts.append(ce.bv(op.cur) & bits.OCC == 0)
        anchor = z3.And(lc - 1 == top, top > ml)
        facts.append(z3.Implies(anchor, wd.t.climb_stops(ce.bv(op.cur), ce.bv(g.side(child)))))
    if pc in (steps.U_LOAD, steps.U_CAS):
        facts += [on_path(child), top >= ml, top < lc - 1]
    if pc in (steps.F_RELEASE, steps.R_RELEASE):
        # The release is a CAS from the word this operation's own occupy wrote (release_cas).
        facts.append(ce.bv(op.cur) == wd.m.transitions.occupy(0))
    if pc in _FREE:
        facts.append(top == ml)
    if pc == steps.F_RELEASE:
        facts.append(child == 0)
    if pc in (steps.F_ULOAD, steps.F_UCAS):
        facts += [on_path(child), lc > ml]
    if pc in (steps.R_RELEASE, steps.R_ULOAD, steps.R_UCAS):
        facts += [proper(fail), ce.level(fail) >= ml]
    if pc == steps.R_RELEASE:
        after_ascent = z3.And(child == 0, top == ln)
        after_descent = z3.And(child == fail, top == ml, ce.level(fail) > ml)
        facts.append(z3.Or(after_ascent, after_descent))
    if pc in (steps.R_ULOAD, steps.R_UCAS):
        facts += [top == ml, proper(child), lc > ml]
    return z3.And(facts)


def _share(op: OpState, a: Any, ml: Any) -> list[Any]:
    return [occupies(op, a), *[tokens_at(op, a, s, ml) for s in (0, 1)]]


def rank(op: OpState, ml: Any) -> Any:
    """Lock-freedom: an upper bound on the successful writes (and ascent loads) ``op``'s attempt
    or free may still make, lowered by every step but a failed CAS.

    With ``L = level(n)`` and ``K = 3 (L - max_level) + 3``: an attempt starts at ``K + (L -
    max_level) + 1``; the ascent at ``child`` is ``K + (level(child) - max_level)`` (one less per
    level up), and the descent at the anchor the same as the ascent at that child (a lost CAS
    there may send it up again, one level higher); below the anchor, at ``x = parent(child)``,
    ``2 (L - level(x)) + (L - max_level) + 2`` (a descent CAS and an undo per level left, then a
    rollback's release and uncount), an undo one less; a release ``1 + level(start) - top``;
    an uncount at ``child`` ``level(child) - top``."""
    pc = op.pc
    ln, lc, top = ce.level(op.n), ce.level(op.child), ce.bv(op.top)
    k = 3 * (ln - ml) + 3
    below = 2 * (ln - (lc - 1)) + (ln - ml) + 2
    if pc in (steps.DONE_FAIL, steps.DONE_FREE, steps.DONE_OK):
        return z3.BitVecVal(0, ce.BITS)
    if pc in (steps.A_LOAD, steps.A_OCC):
        return k + (ln - ml) + 1
    if pc == steps.C_LOAD:
        return k + (lc - ml)
    if pc in (steps.D_LOAD, steps.D_CAS):
        return z3.If(lc - 1 == top, k + (lc - ml), below)
    if pc in (steps.U_LOAD, steps.U_CAS):
        return below - 1
    if pc == steps.F_RELEASE:
        return 1 + ln - top
    if pc == steps.R_RELEASE:
        return 1 + z3.If(ce.bv(op.child) != 0, lc, ln) - top
    if pc in (steps.F_ULOAD, steps.F_UCAS, steps.R_ULOAD, steps.R_UCAS):
        return lc - top
    return z3.BitVecVal(-1, ce.BITS)  # unknown pc: the claim "not negative" fails


def shape(per_node: bool) -> ce.Shape:
    """The every-depth invariant of ``top-down-node`` (``per_node``) or ``top-down``."""
    return ce.Shape(
        ni=_ni(_handed(per_node)),
        local=local,
        share=_share,
        instances=lambda m: [m, g.left(m), g.right(m)],
        touched=lambda m: [m, g.parent(m)],
        where="the accessed node and its parent",
        # A count is R + what the child hands up (2 at most) + my token, and a CAS adds one.
        headroom=4,
        rank=rank,
        attempt_writes=lambda ln, ml: 4 * (ln - ml) + 4,
        attempt_text="4 (L - max_level) + 4",
        contributes=tokens_at,
        occupant=occupies,
        # A rank reaches 4 (28 - 0) + 4 = 116: seven bits below left in the global measure.
        mu_shift=7,
        # The ascent's load and the descent's load may find a node occupied.
        fail_loads=(steps.C_LOAD, steps.D_LOAD),
    )


def safe(v: Variant, sh: ce.Shape) -> Query:
    """``Inv`` implies no two held blocks overlap, for every depth: the per-node claims of the
    induction (module docstring)."""
    wd = ce.World(v, scan=False)
    op = ce.symbolic_op(steps.DONE_OK)
    ml = wd.max_level
    b, x, a = z3.BitVecs("b x a", ce.BITS)
    pb, px = g.parent(b), g.parent(x)

    def count_on(w: Any, side: Any) -> Any:
        return z3.If(side == 1, ce._count(w, 1), ce._count(w, 0))

    held_b = z3.Or(wd.S(b), ce.bv(op.n) == b)
    prem = [*wd.bounds(), sh.local(wd, op)]
    for y in (b, x, a):
        prem.append(wd.node(y))
    for y in (pb, px, a):
        prem += [
            z3.Implies(wd.node(y), z3.And([c for _, c in sh.ni(wd, wd.W, op, y)])),
            *wd.room(y, sh.headroom),
        ]
    # What R means: a static block, or another thread's held block (by its token), below
    # max_level adds one to its parent's count on its side; a live block is held (S => H).
    prem += [
        z3.Implies(z3.And(wd.S(b), ce.level(b) > ml), count_on_r(wd, pb, ce.bv(g.side(b))) >= 1),
        z3.Implies(wd.S(b), wd.H(b)),
    ]
    claims = [
        (
            "a held block below max_level counts in its parent",
            z3.Implies(z3.And(held_b, ce.level(b) > ml), count_on(wd.W(pb), ce.bv(g.side(b))) >= 1),
        ),
        (
            "a node below max_level with a count counts in its parent",
            z3.Implies(
                z3.And(ce.level(x) > ml, some_count(wd.W(x))), count_on(wd.W(px), ce.bv(g.side(x))) >= 1
            ),
        ),
        (
            "a node at or below max_level with a count is held by nobody",
            z3.Implies(
                z3.And(ce.level(a) >= ml, some_count(wd.W(a))),
                z3.And(z3.Not(wd.H(a)), z3.Not(occupies(op, a))),
            ),
        ),
    ]
    prem += wd.congruence()  # last: the claims read words too

    def explain(m: z3.ModelRef) -> str:
        lines = [f"  depth {val(m, wd.depth)}, max_level {val(m, ml)}, me: done:ok n={val(m, ce.bv(op.n))}"]
        for name, y in (("b", b), ("parent(b)", pb), ("x", x), ("parent(x)", px), ("a", a)):
            lines.append(
                f"  {name} = node {val(m, y)} (level {val(m, ce.level(y))}): "
                f"word {wd.t.show(val(m, wd.W(y)))}, "
                f"others: R_L={val(m, wd.R(1, y))} R_R={val(m, wd.R(0, y))} held={val(m, wd.H(y))} "
                f"live={val(m, wd.S(y))}"
            )
        return "\n".join(lines)

    return Query(prem, claims, explain)


def count_on_r(wd: ce.World, a: Any, side: Any) -> Any:
    """``R_side(a)`` for a symbolic side."""
    return z3.If(side == 1, wd.R(1, a), wd.R(0, a))


TOP_DOWN_NODE_SHAPE = shape(per_node=True)
TOP_DOWN_SHAPE = shape(per_node=False)


def _fixed(query: Callable[..., Query], *args: Any) -> Callable[[Variant], Query]:
    """An obligation's builder that proves its own subject, whatever variant ``prove`` is handed."""

    def build(_v: Variant) -> Query:
        return query(*args)

    return build


def obligations(per_node: bool = True, subject: Variant | None = None) -> list[Obligation]:
    """``{prefix}_safe``, and per pc ``{prefix}_frame@pc`` and ``{prefix}_inv@pc`` (every depth, any
    number of threads, attempt mode): ``tnevery`` for ``top-down-node`` (``per_node``), ``tdevery``
    for ``top-down``. They prove ``subject`` (default: that variant; a mutant is a ``subject``)
    whatever variant ``prove`` is handed."""
    subject = subject or (ts.TOP_DOWN_NODE if per_node else ts.TOP_DOWN)
    sh = shape(per_node)
    prefix = "tnevery" if per_node else "tdevery"
    fam = "top-down-node" if per_node else "top-down"
    out = [
        Obligation(
            f"{prefix}_safe",
            "every",
            None,
            f"{fam}, any depth, any number of threads: Inv implies no two held blocks overlap (per node)",
            _fixed(safe, subject, sh),
        )
    ]
    for pc in ce.pcs(subject):
        name = steps.PC_NAMES[pc]
        out.append(
            Obligation(
                f"{prefix}_frame@{name}",
                "every",
                None,
                f"{fam}, any depth: a step at {name} changes its thread's share only at the node it "
                "accesses and its parent",
                _fixed(ce._frame, subject, pc, False, sh),
            )
        )
        out.append(
            Obligation(
                f"{prefix}_inv@{name}",
                "every",
                None,
                f"{fam}, any depth, any number of threads: a step at {name} preserves Inv at every node",
                _fixed(ce._step, subject, pc, False, sh),
            )
        )
        out.append(
            Obligation(
                f"{prefix}_lockfree@{name}",
                "every",
                None,
                f"{fam}, any depth: a step at {name} lowers the write budget unless a CAS failed",
                _fixed(ce._lock_free, subject, pc, False, sh),
            )
        )
    return out
