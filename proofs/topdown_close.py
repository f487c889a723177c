"""``top-down-node`` and ``top-down`` get everything ``counted`` has in z3 for every depth and any
number of threads: the initial state, quiescence, the others' summary as a fold over threads and
the composition, the linearization points, scan mode (with the skip), the global lock-freedom
measure (``tnevery_*`` / ``tdevery_*``; scan mode ``tnevery_scan_*`` / ``tdevery_scan_*``) and,
per depth, the sequential refinement (``tnrefine_*`` / ``tdrefine_*``).

Nothing here is a new prover. The queries are ``counted_every``'s and ``counted_close``'s,
generic over a ``counted_every.Shape``; this module writes what is the variant's own: its
static summary (a side's total is ``[the child on that side is a static block]``, not the blocks
below it), the facts the fold over threads keeps (F1, F2, F4, F5 below), the whole system's
per-node invariant (``global_ni``) and three lemmas the linearization points use, each an
induction whose base and step are z3 queries (the induction principle itself, on subtree
height or on a path's length, is the one step by hand, as in ``counted_close``).

**The summary of the other threads** (``Summary`` with the shape's tokens): for a set ``T`` of
threads, at a node ``a`` at or below ``max_level`` and not a page, ``R_s(a) = [child_s(a) is a
static block] + #(threads of T with a token at (a, s))`` (0 elsewhere); ``H``, ``S``, ``O``,
``Multi`` as in ``counted_close``. Facts kept by the fold (``{p}_sum_empty``, ``{p}_sum_add@pc``)::

    F1  S(x) => H(x)                                        a live block is held or occupied
    F2  S(b), level(b) > max_level => R_side(b)(parent(b)) >= 1     (its token, or static)
    F4  not O, H(x) => S(x)                                 nobody in flight: occupied = live
    F5  not O, max_level <= level(a) < D => R_s(a) = [S(child_s(a))]

(F3 of ``counted`` is F5 here: the witness below side ``s`` is the child itself.)

**Lemmas** (an ``Inv`` state: ``NI`` at every node with the stepping thread "me")::

    below   (me at alloc:load or alloc:occupy: I contribute nothing)  with nobody else in
            flight, a node whose word is a block or has a count has a live block dw(c) in its
            subtree (dw: a Skolem function; induction on subtree height: page, node)
    up      (me at done:ok)  a node x at or below max_level with a count: no ancestor-or-self y
            of x at or below max_level is held by anyone (induction on level(x) - max_level)
    down    (me at done:ok)  a live block b strictly below a node x at or below max_level:
            x has a count (induction on level(b) - level(x))

**Linearization points** (``counted_every._lin`` with this shape; ALGORITHM.md §1.4.2 and
proofs/README.md): a successful alloc takes effect at the CAS that ends its descent (the write
at ``parent(n)``: a descent CAS or an undo), or its occupy when ``n`` is at ``max_level``; a free
at its release; a failed alloc where it decides: its load or occupy finds the candidate taken,
the ascent's load or a descent's load finds a node occupied. The success point's "no live block
overlaps ``n``" uses ``up`` and ``down`` on the state after the step (``Inv`` holds there by
``{p}_inv``; ``S`` is the others', which the step leaves as it is); a failed load's witness is
the occupied node (F4), a failed load or occupy of the candidate's witness ``dw(n)`` (``below``).

**Sequential refinement** (``refine_obligations``): ``counted_refine``'s path queries with the
variant's bundle (``sequential.alloc_path`` runs the top-down climb for a top-down bundle) and
a whole-tree lemma of its own (``_whole_tree``: ``node_ok`` everywhere means a word is a block
or has a count exactly when its subtree holds a block).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import bits, steps, tree
from nbbs.model import geometry as g
from nbbs.model.steps import OpState
from nbbs.proofs import counted_close as cc
from nbbs.proofs import counted_every as ce
from nbbs.proofs import topdown_every as te
from nbbs.proofs import topdown_steps as ts
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, Z, val
from nbbs.proofs.counted_every import BITS, World, bv, level

_ONE, _ZERO = z3.BitVecVal(1, ce.WIDE), z3.BitVecVal(0, ce.WIDE)


def _occ(w: Any) -> Any:
    return w & bits.OCC != 0


def _child(a: Any, s: Any) -> Any:
    """``a``'s child on side ``s`` (1: left), ``s`` an int or a z3 term."""
    if isinstance(s, int):
        return g.left(a) if s == 1 else g.right(a)
    return z3.If(s == 1, g.left(a), g.right(a))


def _r_on(wd: World, a: Any, side: Any) -> Any:
    """``R_side(a)`` for a symbolic side."""
    return z3.If(side == 1, wd.R(1, a), wd.R(0, a))


def _ni(sh: ce.Shape, wd: World, op: OpState, x: Any, w_at: ce.Words | None = None) -> Any:
    return z3.And([c for _, c in sh.ni(wd, w_at or wd.W, op, x)])


def _inv_at(sh: ce.Shape, wd: World, op: OpState, xs: list[Any], w_at: ce.Words | None = None) -> list[Any]:
    """``NI`` at each of ``xs`` (where it is a node) and the count bound there."""
    out: list[Any] = []
    for x in xs:
        out += [z3.Implies(wd.node(x), _ni(sh, wd, op, x, w_at)), *wd.room(x, sh.headroom)]
    return out


def _explain_nodes(
    wd: World, me: OpState | None, nodes: list[tuple[str, Any]], extra: str = ""
) -> Callable[[z3.ModelRef], str]:
    def explain(m: z3.ModelRef) -> str:
        lines = [f"  depth {val(m, wd.depth)}, max_level {val(m, wd.max_level)}"]
        if me is not None:
            lines.append(f"  me: {cc._op_text(m, me)}")
        for name, x in nodes:
            lines.append(
                f"  {name} = node {val(m, x)} (level {val(m, level(x))}): word {wd.t.show(val(m, wd.W(x)))}, "
                f"others: R_L={val(m, wd.R(1, x))} R_R={val(m, wd.R(0, x))} held={val(m, wd.H(x))} "
                f"live={val(m, wd.S(x))}"
            )
        return "\n".join(lines) + extra

    return explain


# -- the facts of the fold (F1, F2, F4, F5) ----------------------------------------------------


def f1(wd: World, x: Any, s: Any = None, h: Any = None) -> Any:
    """F1 at ``x``: a live block of the others is held or occupied."""
    return z3.Implies(wd.S(x) if s is None else s, wd.H(x) if h is None else h)


def f2(wd: World, b: Any, s_b: Any = None, r_parent: Any = None) -> Any:
    """F2 for ``b``: a live block below ``max_level`` counts one at its parent, on its side."""
    r = _r_on(wd, g.parent(b), bv(g.side(b))) if r_parent is None else r_parent
    return z3.Implies(z3.And(wd.S(b) if s_b is None else s_b, level(b) > wd.max_level), r >= 1)


def f4(wd: World, x: Any, others: Any, s: Any = None, h: Any = None) -> Any:
    """F4 at ``x``: with nobody in flight, a held or occupied node is live."""
    return z3.Implies(z3.Not(others), z3.Implies(wd.H(x) if h is None else h, wd.S(x) if s is None else s))


def f5(wd: World, a: Any, side: int, others: Any, r: Any = None, s_child: Any = None) -> Any:
    """F5 at ``a``, side ``side``: with nobody in flight the others' total is the child's liveness."""
    la = level(a)
    total = wd.R(side, a) if r is None else r
    live = wd.S(_child(a, side)) if s_child is None else s_child
    return z3.Implies(
        z3.And(z3.Not(others), la >= wd.max_level, la < wd.depth), total == z3.If(live, _ONE, _ZERO)
    )


def meaning(wd: World, pairs: list[tuple[Any, Any]], at: list[Any], others: Any) -> list[Any]:
    """``Shape.meaning``: F1 and F4 at the nodes a query reads (the pairs are ``counted``'s F2
    instances; a top-down query uses the lemmas instead)."""
    del pairs
    return [f1(wd, x) for x in at] + [f4(wd, x, others) for x in at]


def dw(wd: World, c: Any) -> Any:
    """The ``below`` lemma's Skolem witness at ``c`` (``World.wit(0, c)``'s slot: a top-down
    query has no ``counted`` witness there)."""
    return wd.wit(0, c)


def below_fact(wd: World, w_at: ce.Words, c: Any, others: Any) -> Any:
    """``below``'s conclusion at ``c``."""
    w = w_at(c)
    x = dw(wd, c)
    return z3.Implies(
        z3.And(wd.node(c), z3.Not(others), z3.Or(_occ(w), te.some_count(w))),
        z3.And(wd.S(x), wd.node(x), g.is_ancestor_any(c, x, Z, z3.If, BITS)),
    )


def up_fact(wd: World, w_at: ce.Words, sh: ce.Shape, me: OpState, x: Any, y: Any) -> Any:
    """``up``'s conclusion at ``(x, y)``."""
    ml = wd.max_level
    return z3.Implies(
        z3.And(
            wd.node(x),
            level(x) >= ml,
            te.some_count(w_at(x)),
            g.is_ancestor_any(y, x, Z, z3.If, BITS),
            level(y) >= ml,
        ),
        z3.And(z3.Not(wd.H(y)), z3.Not(sh.occupies(me, y))),
    )


def down_fact(wd: World, w_at: ce.Words, x: Any, b: Any) -> Any:
    """``down``'s conclusion at ``(x, b)``."""
    return z3.Implies(
        z3.And(
            wd.node(b),
            wd.S(b),
            g.is_ancestor_any(x, b, Z, z3.If, BITS),
            x != b,
            level(x) >= wd.max_level,
        ),
        te.some_count(w_at(x)),
    )


# -- 1. the initial state, every depth ---------------------------------------------------------


def _quiescent_word(wd: World, x: Any) -> Any:
    """``x``'s own quiescent invariant (``leaf_ok`` on a page, the bundle's ``node_ok`` above)."""
    node_ok = wd.t.node_ok
    assert node_ok is not None, "[proofs internal bug] a top-down bundle has its node_ok"
    return z3.If(
        level(x) == wd.depth,
        tree.leaf_ok(wd.W(x), Z),
        node_ok(wd.W(x), wd.W(g.left(x)), wd.W(g.right(x)), Z),
    )


def _init(v: Variant, sh: ce.Shape, case: str) -> Query:
    """A quiescent tree, its blocks the static set, idle threads: ``NI`` holds at ``a`` with the
    static summary (``R_s(a) = [child_s(a) is a block]`` at or below ``max_level``, ``H(a) =
    OCC``). No induction: ``NI`` reads ``a`` and its children only, and each of them is quiescent."""
    wd = World(v, scan=False)
    a = z3.BitVec("a", BITS)
    la = level(a)
    me = cc._idle()
    ml = wd.max_level
    prem = [*wd.bounds(), wd.node(a), wd.H(a) == _occ(wd.W(a))]
    shown = [("node a", a)]
    if case == "above":
        prem += [la < ml, tree.untouched_ok(wd.W(a), Z), wd.R(0, a) == 0, wd.R(1, a) == 0]
    elif case == "page":
        prem += [la == wd.depth, la >= ml, tree.leaf_ok(wd.W(a), Z), wd.R(0, a) == 0, wd.R(1, a) == 0]
    else:
        kids = [_child(a, s) for s in (0, 1)]
        shown += [("child L", kids[1]), ("child R", kids[0])]
        prem += [la >= ml, la < wd.depth, _quiescent_word(wd, a)]
        prem += [_quiescent_word(wd, c) for c in kids]
        prem += [wd.R(s, a) == z3.If(_occ(wd.W(kids[s])), _ONE, _ZERO) for s in (0, 1)]
    claims = [*sh.ni(wd, wd.W, me, a), ("the others' total leaves room", z3.And(wd.room(a, sh.headroom)))]
    prem += wd.congruence()
    return Query(prem, claims, _explain_nodes(wd, None, shown), split=True)


def _sum_empty(v: Variant, static_counted: bool = True) -> Query:
    """F1, F2, F4, F5 for no thread: the static blocks (``static_counted=False``: a fold whose
    ``R`` forgets them, for the mutant test)."""
    wd = World(v, scan=False)
    a, b = z3.BitVecs("a b", BITS)
    st = cc._Per("st_", {"static": None})
    ml = wd.max_level
    no = z3.BoolVal(False)

    def r(x: Any, s: Any) -> Any:
        counted = z3.And(level(x) >= ml, level(x) < wd.depth, static_counted)
        return z3.If(z3.And(counted, st("static", _child(x, s))), _ONE, _ZERO)

    pb, sb = g.parent(b), bv(g.side(b))
    prem = [*wd.bounds(), wd.node(a), wd.node(b)]
    claims = [
        ("F1: a live block is held", f1(wd, a, st("static", a), st("static", a))),
        ("F2: a live block below max_level counts at its parent", f2(wd, b, st("static", b), r(pb, sb))),
        ("F4: with nobody in flight a held node is live", f4(wd, a, no, st("static", a), st("static", a))),
        *[
            (
                f"F5: with nobody in flight R_{'L' if s else 'R'}(a) = [S(child)]",
                f5(wd, a, s, no, r(a, s), st("static", _child(a, s))),
            )
            for s in (1, 0)
        ],
    ]
    prem += st.congruence() + wd.congruence()
    base = _explain_nodes(wd, None, [("node a", a), ("block b", b)])

    def explain(m: z3.ModelRef) -> str:
        return base(m) + f"\n  static(b) = {m.eval(st('static', b), model_completion=True)}"

    return Query(prem, claims, explain, split=True)


# -- 2. the summary as a fold over threads, and the composition --------------------------------


def _sum_add(v: Variant, sh: ce.Shape, pc: int, keep_token: bool = True) -> Query:
    """F1, F2, F4, F5 survive adding a thread at ``pc`` whose local facts hold (``keep_token=False``:
    a fold that forgets the held block's token, for the mutant test)."""
    wd = World(v, scan=True)
    op = ce.symbolic_op(pc, "k_")
    a, b = z3.BitVecs("a b", BITS)
    ml = wd.max_level
    o = z3.Bool("O")
    o_after = z3.Or(o, cc.in_flight(op))

    def h_after(x: Any) -> Any:
        return z3.Or(wd.H(x), sh.occupies(op, x))

    def s_after(x: Any) -> Any:
        return z3.Or(wd.S(x), ce.live(op, x))

    def r_after(x: Any, s: int) -> Any:
        mine = z3.And(sh.claims(op, x, s, ml), keep_token)
        return wd.R(s, x) + z3.If(mine, _ONE, _ZERO)

    pb, sb = g.parent(b), bv(g.side(b))
    kids = [_child(a, s) for s in (0, 1)]
    prem = [*wd.bounds(), sh.local(wd, op), wd.node(a), wd.node(b), *wd.room(a, sh.headroom)]
    prem += [*wd.room(pb, sh.headroom), f1(wd, a), f2(wd, b), f4(wd, a, o)]
    prem += [f5(wd, a, s, o) for s in (0, 1)]
    for x in (a, b, *kids):
        # Inv's "at most one holds or occupies a node", among the threads folded so far and k.
        prem += [f1(wd, x), z3.Not(z3.And(wd.H(x), sh.occupies(op, x)))]
    claims = [
        ("F1: a live block is held", f1(wd, a, s_after(a), h_after(a))),
        (
            "F2: a live block below max_level counts at its parent",
            f2(wd, b, s_after(b), z3.If(sb == 1, r_after(pb, 1), r_after(pb, 0))),
        ),
        ("F4: with nobody in flight a held node is live", f4(wd, a, o_after, s_after(a), h_after(a))),
        *[
            (
                f"F5: with nobody in flight R_{'L' if s else 'R'}(a) = [S(child)]",
                f5(wd, a, s, o_after, r_after(a, s), s_after(kids[s])),
            )
            for s in (1, 0)
        ],
    ]
    prem += wd.congruence()
    base = _explain_nodes(wd, None, [("node a", a), ("block b", b), ("parent(b)", pb)])

    def explain(m: z3.ModelRef) -> str:
        return base(m) + f"\n  thread k: {cc._op_text(m, op)}, others in flight before: {val(m, o)}"

    return Query(prem, [(f"T + k at {steps.PC_NAMES[pc]}: {n}", c) for n, c in claims], explain, split=True)


def global_ni(per_node: bool) -> cc.GlobalNI:
    """The whole system's per-node invariant at ``a`` (``topdown_steps``' ``Inv`` at one node):
    each side's count = every thread's tokens there + the static child + what the child hands up."""
    handed = te._handed(per_node)

    def gni(wd: World, w: Any, a: Any, every: cc.Summary) -> list[tuple[str, Any]]:
        la = level(a)
        above = la < wd.max_level
        occupied = _occ(w)
        r_zero = z3.And(every.r[0] == 0, every.r[1] == 0)
        kid = {1: g.left(a), 0: g.right(a)}
        inner = la < wd.depth
        return [
            (
                "above max_level: zero, unheld, nothing handed up",
                z3.Implies(above, z3.And(w == 0, z3.Not(every.h), r_zero)),
            ),
            ("OCC iff someone holds or occupies it", z3.Implies(z3.Not(above), occupied == every.h)),
            ("at most one holds or occupies it", z3.Not(every.multi)),
            (
                "BUSY or no status bit",
                z3.If(occupied, w == bits.BUSY, w & ((1 << bits.COUNT_SHIFT) - 1) == 0),
            ),
            ("a page has nothing handed up to it", z3.Implies(la == wd.depth, r_zero)),
            *[
                (
                    f"c_{'L' if s else 'R'} = every thread's tokens + static child + what the child hands up",
                    z3.Implies(
                        z3.Not(above),
                        ce._count(w, s) == every.r[s] + z3.If(inner, handed(wd.W(kid[s])), _ZERO),
                    ),
                )
                for s in (1, 0)
            ],
        ]

    return gni


def _quiescent(v: Variant, sh: ce.Shape, pc: int) -> Query:
    """With nobody else in flight and me idle or holding my block, ``NI`` at a node and its
    children with F1, F4, F5 give the quiescent invariant there and ``OCC`` exactly at the live
    blocks (property (b): words = blocks)."""
    wd = World(v, scan=False)
    me = ce.symbolic_op(pc)
    a = z3.BitVec("a", BITS)
    kids = [_child(a, s) for s in (0, 1)]
    no = z3.BoolVal(False)
    prem = [*wd.bounds(), sh.local(wd, me), wd.node(a)]
    prem += _inv_at(sh, wd, me, [a, *kids])
    prem += [wd.S(x) == wd.H(x) for x in (a, *kids)]  # F1 and F4
    prem += [f5(wd, a, s, no) for s in (0, 1)]
    prem += wd.congruence()
    claims = cc.quiescent_claims(wd, me, a)
    shown = [("node a", a), ("child L", kids[1]), ("child R", kids[0])]
    return Query(prem, claims, _explain_nodes(wd, me, shown), split=True)


# -- 3. the lemmas the linearization points use ------------------------------------------------


def _below(v: Variant, sh: ce.Shape, pc: int, case: str, look_right: bool = True) -> Query:
    """``below`` at ``c``: base (a page) or step (from the children). ``look_right=False``: a
    witness that never looks in the right child, for the mutant test."""
    wd = World(v, scan=True)
    me = ce.symbolic_op(pc)
    c = z3.BitVec("c", BITS)
    others = z3.Bool("another_op_in_flight")
    prem = [*wd.bounds(), sh.local(wd, me), wd.node(c), *_inv_at(sh, wd, me, [c])]
    prem += [f1(wd, c), f4(wd, c, others)]
    if case == "page":
        prem += [level(c) == wd.depth, dw(wd, c) == c]
    else:
        kl, kr = g.left(c), g.right(c)
        prem += [level(c) < wd.depth, *[f5(wd, c, s, others) for s in (0, 1)]]
        prem += [below_fact(wd, wd.W, k, others) for k in (kl, kr)]
        right = z3.If(wd.R(0, c) >= 1, kr, dw(wd, kr)) if look_right else dw(wd, kl)
        prem.append(
            dw(wd, c)
            == z3.If(
                _occ(wd.W(c)),
                c,
                z3.If(wd.R(1, c) >= 1, kl, z3.If(te.some_count(wd.W(kl)), dw(wd, kl), right)),
            )
        )
    claims = [
        ("a block or a count at c has a live block dw(c) in c's subtree", below_fact(wd, wd.W, c, others))
    ]
    prem += wd.congruence()
    base = _explain_nodes(wd, me, [("node c", c)])

    def explain(m: z3.ModelRef) -> str:
        return base(m) + f"\n  dw(c) = {val(m, dw(wd, c))}, another op in flight: {val(m, others)}"

    return Query(prem, claims, explain, split=True)


def _up(v: Variant, sh: ce.Shape, hypothesis: bool = True) -> Query:
    """``up`` at ``(x, y)``, assuming it at ``(parent(x), y)`` when ``x`` is below ``max_level``
    (``hypothesis=False``: not assuming it, for the mutant test)."""
    wd = World(v, scan=False)
    me = ce.symbolic_op(steps.DONE_OK)
    x, y = z3.BitVecs("x y", BITS)
    px = g.parent(x)
    below = level(x) > wd.max_level
    prem = [*wd.bounds(), sh.local(wd, me), wd.node(x), wd.node(y), *_inv_at(sh, wd, me, [x])]
    prem += [z3.Implies(below, _ni(sh, wd, me, px)), *wd.room(px, sh.headroom)]
    prem.append(z3.Implies(z3.And(below, hypothesis), up_fact(wd, wd.W, sh, me, px, y)))
    claims = [
        ("nothing at or above a counted node is held, up to max_level", up_fact(wd, wd.W, sh, me, x, y))
    ]
    prem += wd.congruence()
    return Query(prem, claims, _explain_nodes(wd, me, [("x", x), ("parent(x)", px), ("y", y)]), split=True)


def _down(v: Variant, sh: ce.Shape) -> Query:
    """``down`` at ``(x, b)``, assuming it at ``(y, b)`` for ``x``'s child ``y`` towards ``b``."""
    wd = World(v, scan=False)
    me = ce.symbolic_op(steps.DONE_OK)
    x, b = z3.BitVecs("x b", BITS)
    y = g.ancestor_any(b, level(x) + 1, z3.If, BITS)
    prem = [*wd.bounds(), sh.local(wd, me), wd.node(x), wd.node(b), *_inv_at(sh, wd, me, [x])]
    prem += [f2(wd, b), *wd.room(g.parent(b), sh.headroom)]
    prem.append(z3.Implies(level(b) - level(x) >= 2, down_fact(wd, wd.W, y, b)))
    claims = [("every node between a live block and max_level has a count", down_fact(wd, wd.W, x, b))]
    prem += wd.congruence()
    return Query(
        prem, claims, _explain_nodes(wd, me, [("x", x), ("b", b), ("parent(b)", g.parent(b))]), split=True
    )


# -- 4. the linearization points: counted_every._lin with these facts ---------------------------


def _witnesses(wd: World, m: Any, n: Any) -> list[Any]:
    """A failed attempt at ``n`` deciding at ``m``: ``m`` is live (an occupied ancestor, or the
    candidate itself) or ``below``'s witness under ``m`` is."""
    return [z3.And(wd.S(m), ce._overlaps(m, n)), z3.And(wd.S(dw(wd, m)), ce._overlaps(dw(wd, m), n))]


def _lin_facts(sh: ce.Shape) -> Callable[[World, OpState, ce.Move, Any, Any], list[Any]]:
    def facts(wd: World, op: OpState, mv: ce.Move, a0: Any, others: Any) -> list[Any]:
        out: list[Any] = []
        if op.pc in (steps.A_LOAD, steps.A_OCC) and mv.acc is not None:
            out.append(below_fact(wd, wd.W, mv.acc.node, others))  # {p}_below_*@pc
        if mv.nxt.pc == steps.DONE_OK and steps.is_alloc(op):
            # The state after the step satisfies Inv ({p}_inv@pc) with me holding n: the lemmas
            # up and down hold there (S, H, R are the others', unchanged by my step).
            after = ce._after(wd, mv)
            n = bv(op.n)
            pn = g.parent(n)
            post = [
                up_fact(wd, after, sh, mv.nxt, pn, a0),
                down_fact(wd, after, n, a0),
                *_inv_at(sh, wd, mv.nxt, [n, pn], after),
            ]
            out += [z3.Implies(mv.hyp, c) for c in post]
        return out

    return facts


def full_shape(per_node: bool) -> ce.Shape:
    """``topdown_every.shape`` with what the linearization and skip queries need."""
    base = te.TOP_DOWN_NODE_SHAPE if per_node else te.TOP_DOWN_SHAPE
    return dataclasses.replace(base, meaning=meaning, witnesses=_witnesses, lin_facts=_lin_facts(base))


SHAPES = {True: full_shape(True), False: full_shape(False)}
"""``top-down-node``'s (True) and ``top-down``'s every-depth invariant with its facts."""


# -- the obligations ---------------------------------------------------------------------------


def _fixed(query: Callable[..., Query], *args: Any, **kw: Any) -> Callable[[Variant], Query]:
    """A builder that proves its own subject, whatever variant ``prove`` is handed."""

    def build(_v: Variant) -> Query:
        return query(*args, **kw)

    return build


def _names(per_node: bool, subject: Variant | None) -> tuple[Variant, ce.Shape, str, str]:
    subject = subject or (ts.TOP_DOWN_NODE if per_node else ts.TOP_DOWN)
    return (
        subject,
        SHAPES[per_node],
        "tnevery" if per_node else "tdevery",
        ("top-down-node" if per_node else "top-down"),
    )


def _in_flight_pcs(subject: Variant) -> list[int]:
    return [pc for pc in ce.pcs(subject) if pc not in (*ce._IDLE, steps.DONE_OK)]


def close_obligations(per_node: bool = True, subject: Variant | None = None) -> list[Obligation]:
    """The cheap family: initial state, the fold and the composition, quiescence, the lemmas."""
    v, sh, p, fam = _names(per_node, subject)

    def ob(name: str, claim: str, build: Callable[[Variant], Query]) -> Obligation:
        return Obligation(f"{p}_{name}", "every", None, f"{fam}, any depth: {claim}", build)

    out = [
        ob(
            "init_page",
            "a quiescent page satisfies NI (idle threads, static blocks)",
            _fixed(_init, v, sh, "page"),
        ),
        ob("init_node", "node_ok at a node and its children give NI there", _fixed(_init, v, sh, "node")),
        ob("init_above", "a node above max_level (zero) satisfies NI", _fixed(_init, v, sh, "above")),
        ob("sum_commute", "the fold over threads does not depend on their order", _fixed(cc._sum_commute, v)),
        ob(
            "sum_frame",
            "a thread's tokens and facts are a function of its own op state",
            _fixed(cc._sum_frame, v, sh),
        ),
        ob("sum_empty", "F1, F2, F4, F5 hold for the static blocks alone", _fixed(_sum_empty, v)),
        ob(
            "up",
            "a node with a count has no held node above it up to max_level (induction step)",
            _fixed(_up, v, sh),
        ),
        ob(
            "down",
            "every node from a live block up to max_level has a count (induction step)",
            _fixed(_down, v, sh),
        ),
    ]
    for pc in (steps.A_LOAD, steps.A_OCC):
        name = steps.PC_NAMES[pc]
        for case in ("page", "node"):
            out.append(
                ob(
                    f"below_{case}@{name}",
                    f"with nobody else in flight a block or count has a live block below ({case} case)",
                    _fixed(_below, v, sh, pc, case),
                )
            )
    for pc in (steps.DONE_FAIL, steps.DONE_OK):
        out.append(
            ob(
                f"quiescent@{steps.PC_NAMES[pc]}",
                "with nobody in flight, Inv gives the quiescent invariant and OCC at the live blocks",
                _fixed(_quiescent, v, sh, pc),
            )
        )
    for pc in ce.pcs(v):
        name = steps.PC_NAMES[pc]
        out.append(
            ob(
                f"sum_add@{name}",
                f"F1, F2, F4, F5 survive adding a thread at {name}",
                _fixed(_sum_add, v, sh, pc),
            )
        )
        out.append(
            ob(
                f"compose@{name}",
                f"the global per-node invariant is NI for a thread at {name} with the others folded",
                _fixed(cc._compose, v, pc, shape=sh, glob_ni=global_ni(per_node)),
            )
        )
    return out


def lin_obligations(
    per_node: bool = True, subject: Variant | None = None, scan: bool = False
) -> list[Obligation]:
    """Per pc: ``{p}_lin@pc`` (``{p}_scan_lin@pc`` in scan mode)."""
    v, sh, p, fam = _names(per_node, subject)
    prefix = f"{p}_scan" if scan else p
    return [
        Obligation(
            f"{prefix}_lin@{steps.PC_NAMES[pc]}",
            "every",
            None,
            f"{fam}, any depth: a step at {steps.PC_NAMES[pc]} is its operation's linearization point "
            "exactly when it changes the abstract state, and a legal one",
            _fixed(ce._lin, v, pc, scan=scan, shape=sh),
        )
        for pc in ce.pcs(v)
    ]


def lf_obligations(
    per_node: bool = True, subject: Variant | None = None, scan: bool = False
) -> list[Obligation]:
    """Per pc in flight: ``{p}_lfglobal@pc`` (``{p}_scan_lfglobal@pc`` in scan mode)."""
    v, sh, p, fam = _names(per_node, subject)
    prefix = f"{p}_scan" if scan else p
    return [
        Obligation(
            f"{prefix}_lfglobal@{steps.PC_NAMES[pc]}",
            "every",
            None,
            f"{fam}, any depth, any number of threads: a step at {steps.PC_NAMES[pc]} that neither "
            "starts nor completes an operation lowers the global measure",
            _fixed(cc._lf_global, v, pc, scan, sh),
        )
        for pc in _in_flight_pcs(v)
    ]


def scan_obligations(per_node: bool = True, subject: Variant | None = None) -> list[Obligation]:
    """Scan mode (``Machine.alloc``: ``left`` up to the level's width, skip and wrap): frame,
    ``Inv``, lock-freedom per thread, the skip; ``lin_obligations`` / ``lf_obligations`` with
    ``scan`` add the linearization points and the global measure."""
    v, sh, p, fam = _names(per_node, subject)
    out = []
    for pc in ce.pcs(v):
        name = steps.PC_NAMES[pc]
        out += [
            Obligation(
                f"{p}_scan_frame@{name}",
                "every",
                None,
                f"{fam}, any depth (scan): a step at {name} changes its thread's share only at the node it "
                "accesses and its parent",
                _fixed(ce._frame, v, pc, True, sh),
            ),
            Obligation(
                f"{p}_scan_inv@{name}",
                "every",
                None,
                f"{fam}, any depth, any number of threads (scan): a step at {name} preserves Inv everywhere",
                _fixed(ce._step, v, pc, True, sh),
            ),
            Obligation(
                f"{p}_scan_lockfree@{name}",
                "every",
                None,
                f"{fam}, any depth (scan): a step at {name} lowers the write budget unless a CAS failed",
                _fixed(ce._lock_free, v, pc, True, sh),
            ),
        ]
        if pc in te._ALLOC:
            out.append(
                Obligation(
                    f"{p}_scan_skip@{name}",
                    "every",
                    None,
                    f"{fam}, any depth (scan): a step at {name} jumps only over nodes under an occupied node",
                    _fixed(cc._skip, v, pc, sh),
                )
            )
    return out


def obligations(
    every: str = "scan", per_node: bool = True, subject: Variant | None = None
) -> list[Obligation]:
    """What this module adds to ``topdown_every.obligations`` at ``nbbs prove --every`` level
    ``every``: ``frame``: the cheap family (``close_obligations``); ``attempt``: also the
    linearization points and the global measure; ``scan``: also everything in scan mode. Each
    level also has ``topdown_arith``'s: lock-freedom's arithmetic (``tlf_*``) and the unrolled
    inductions (``tind_*``) from ``frame`` (listed with ``top-down-node``'s, both variants share
    them), the step facts ``{p}_lfbound@*`` from ``attempt``, ``{p}_scan_lfbound@*`` at ``scan``."""
    if every == "none":
        return []
    from nbbs.proofs import topdown_arith

    out = close_obligations(per_node, subject)
    if every in ("attempt", "scan"):
        out += lin_obligations(per_node, subject) + lf_obligations(per_node, subject)
    if every == "scan":
        out += scan_obligations(per_node, subject)
        out += lin_obligations(per_node, subject, True) + lf_obligations(per_node, subject, True)
    return out + topdown_arith.obligations(every, per_node, subject)


# -- 5. sequential refinement, per depth (``counted_refine``'s path queries, top-down words) ---


def _whole_tree(depth: int) -> Callable[[Variant], Query]:
    """``{p}tree_local_global`` at ``depth``: the bundle's ``node_ok`` everywhere (``leaf_ok`` on
    pages, zero above ``max_level``) implies that a word is a block or has a count exactly when
    its subtree holds a block, no block lies under another, and none is above ``max_level``:
    the abstraction (the ``OCC`` words) is a set of disjoint blocks, and the words say where."""

    def build(v: Variant) -> Query:
        from nbbs.proofs import counted_refine as cr
        from nbbs.proofs.refinement import _LEVEL_BITS

        t = v.at(cr.width_for(depth))
        node_ok = t.node_ok
        assert node_ok is not None
        ml = z3.BitVec("max_level", _LEVEL_BITS)
        nodes = g.all_nodes(depth)
        w: list[Any] = [None] + [z3.BitVec(f"w{x}", t.word_bits) for x in nodes]
        above = {lvl: z3.ULT(z3.BitVecVal(lvl, _LEVEL_BITS), ml) for lvl in range(depth + 1)}
        premises: list[Any] = [z3.ULE(ml, depth)]
        for x in nodes:
            lvl = g.level(x)
            local = tree.leaf_ok(w[x], Z) if lvl == depth else node_ok(w[x], w[g.left(x)], w[g.right(x)], Z)
            premises.append(z3.If(above[lvl], w[x] == 0, local))
        occ = [None] + [cr.occ(w[x]) for x in nodes]
        down: list[Any] = [None] * len(w)
        for x in reversed(nodes):
            down[x] = occ[x] if g.level(x) == depth else z3.Or(occ[x], down[g.left(x)], down[g.right(x)])
        width = t.count_bits
        meaning, nested = [], []
        for x in nodes:
            lvl = g.level(x)
            some = z3.Or(occ[x], *[cr.count(w[x], s, width) != 0 for s in (0, 1)])
            meaning.append(z3.Implies(z3.Not(above[lvl]), some == down[x]))
            if lvl < depth:
                nested.append(z3.Implies(occ[x], z3.Not(z3.Or(down[g.left(x)], down[g.right(x)]))))
        claims = [
            ("a word is a block or has a count iff its subtree holds a block", z3.And(meaning)),
            ("no block lies under another", z3.And(nested or [True])),
            (
                "no block above max_level",
                z3.And([z3.Implies(above[g.level(x)], z3.Not(occ[x])) for x in nodes]),
            ),
        ]

        def explain(m: z3.ModelRef) -> str:
            words = [0] + [val(m, w[x]) for x in nodes]
            return f"  max_level {val(m, ml)}\n" + tree.render(words, depth, t)

        return Query(premises, claims, explain, [*(w[x] == 0 for x in nodes)])

    return build


def refine_obligations(depth: int, per_node: bool = True, subject: Variant | None = None) -> list[Obligation]:
    """``{p}tree_local_global`` and per level ``{p}refine_alloc_L{l}`` / ``{p}refine_free_L{l}``
    (``tn``: ``top-down-node``, ``td``: ``top-down``) for a tree of ``depth``: ``counted_refine``'s
    path queries (``sequential.alloc_path`` runs the top-down climb for a top-down bundle) with
    the variant's own quiescent invariant, proving ``subject`` whatever variant ``prove`` is handed."""
    from nbbs.proofs import counted_refine as cr
    from nbbs.proofs.refinement import path_obligations

    v, _sh, _p, fam = _names(per_node, subject)
    p = "tn" if per_node else "td"

    def mine(build: Callable[..., Callable[[Variant], Query]]) -> Callable[..., Callable[[Variant], Query]]:
        return lambda *args: lambda _v: build(*args)(v)

    whole = (
        f"{p}tree_local_global",
        f"{fam}: node_ok everywhere: words = blocks, disjoint",
        mine(_whole_tree),
    )
    return path_obligations(depth, f"{p}refine", whole, mine(cr._alloc), mine(cr._free))
