"""The pieces of ``counted_every``'s argument that were argued by hand, as z3 obligations: every
depth, symbolic nodes, quantifier-free (issue 14).

Everything reuses ``counted_every``'s encoding (``World``, ``ni``, ``local``, ``moves``, the
measure) and the ``Variant``'s step machine, so a variant with its own step machine reuses the
obligations by supplying its invariant, not a new prover.

**1. The initial state, every depth** (``cevery_init_page``, ``cevery_init_node``,
``cevery_init_above``). An induction on the height of a subtree, symbolic node ``a`` and depth
``D``. ``B(c)`` is the number of blocks in ``c``'s subtree, defined by ``B(c) = [OCC(W[c])] +
B(2c) + B(2c+1)`` (a page: ``[OCC(W[c])]``). ``P(c)``: ``B(c) = [OCC] + c_L(W[c]) + c_R(W[c])``,
a block (``OCC``) is ``BUSY`` with ``B(c) = 1`` (no block under a block), ``B(c) <= pages(c)``.
Base (a page, quiescent: ``0`` or ``BUSY``): ``P(a)``. Step (``node_ok`` at ``a`` and ``P`` at
both children): ``P(a)``. And at every node, the per-node invariant ``NI(a)`` of
``counted_every`` holds with every thread idle and the others' summary the static blocks:
``R_s(a) = B(child_s(a))`` at or below ``max_level`` (0 above), ``H(a) = OCC(W[a])``. So
every quiescent tree of every depth, with its blocks as the static set and idle threads,
satisfies ``Inv`` at every node (the induction itself, on the height, is the only step not in
z3: each of its cases is).

**2. The scan's skip** (``cevery_scan_skip@pc``, scan mode). For each step of an alloc that moves
the scan on (``_advance``): the scan's next candidate is exactly ``by`` positions on (round
robin, ``by`` = what ``left`` drops), and every node of the level it jumps over (a symbolic
``x`` at cyclic offset ``1 .. by - 1``, or ``1 .. left - 1`` when it gives up) lies under the
rollback's ``fail``; a rollback keeps its ``fail``; and at the climb load that finds ``fail``
occupied (the step into the rollback, where the alloc's "not here" is decided), every node
under ``fail`` is not free in the abstract state or another operation is in flight (the
witness: ``fail`` itself, occupied by another, live when nobody is in flight). So a scan
leaves a node behind only where an attempt's ``None`` is allowed (``cevery_scan_lin``'s
failed-alloc claim for the candidate itself).

**3. The summary is a fold over threads** (``cevery_sum_*``, ``cevery_compose``). For a set
``T`` of other threads, ``R^T_s(a)``, ``H^T(a)``, ``S^T(a)``, ``O^T`` (and ``Multi^T(a)``:
two of them hold or occupy ``a``) are defined by

    T = {}:     R_s(a) = B(child_s(a)) if level(a) >= max_level else 0   (static blocks below)
                H(a) = S(a) = static(a),  O = false,  Multi(a) = false
    T + {k}:    R_s(a) += [k's claim passes side s of a]     (claims_at, claim_levels)
                H(a) |= k occupies a   (occupier)             S(a) |= a is k's live block
                O |= k is in flight    Multi(a) |= H(a) and k occupies a

(``contribution_k``: a function of k's op state only). z3 checks, quantifier-free:

* ``cevery_sum_commute``: adding two threads in either order gives the same summary, so the
  fold over a set is well defined and any thread can be added last;
* ``cevery_sum_frame@pc``: every contribution term and every local fact of a thread ``k`` at
  ``pc`` mentions only ``k``'s op state, ``D``, ``max_level`` and the node (its free symbols),
  so a step of another thread (which changes its own op state and one word) leaves it as it
  is at every node: the frame, for the summary;
* ``cevery_sum_static_page``, ``cevery_sum_static_node``: the induction on subtree height for
  the static part: a static block in ``c``'s subtree makes ``B(c) >= 1``; ``B(c) >= 1`` has a
  static witness in ``c``'s subtree (the Skolem function ``wit(c) = c if static(c) else
  wit(2c) if B(2c) >= 1 else wit(2c+1)``); ``B(c) <= 2 pages(c) - 1``;
* ``cevery_sum_empty``: the four facts ``cevery_safe`` / ``cevery_lin`` assume about ``R``,
  ``H``, ``S``, ``O`` hold for ``T = {}`` (from the static induction at the children):
  (F1) ``S => H``; (F2) a block of ``S`` below side ``s`` of a node at or below ``max_level``
  makes ``R_s >= 1`` there; (F3) with ``not O``, ``R_s(a) >= 1`` has a witness in ``S`` below
  side ``s`` of ``a``; (F4) with ``not O``, ``H => S``; and (F5, for quiescence) with ``not O``,
  ``R_s(a) = [S(c)] + R_L(c) + R_R(c)`` for ``c`` the child on side ``s``;
* ``cevery_sum_add@pc``: they are preserved by adding a thread at ``pc`` whose local facts
  hold (F3's witness: ``k``'s block where ``k`` claims, else the old one; F5 uses ``Inv``'s
  "at most one holds or occupies a node");
* ``cevery_quiescent@done:fail``, ``@done:ok``: with nobody in flight, ``NI`` at a node and
  its children with F1, F4, F5 give the quiescent invariant there (``untouched_ok``,
  ``leaf_ok``, the bundle's ``node_ok``) and ``OCC`` exactly at the live blocks;
* ``cevery_compose@pc``: the whole system's per-node invariant (``counted_steps``' ``Inv`` at a
  node: count = the sum over every thread and the static set, ``OCC`` iff someone holds or
  occupies it, at most one does) equals, for any thread ``j`` added last, ``counted_every``'s
  ``NI(a)`` for ``j`` with ``R``, ``H`` the others' fold, and "at most one" among the others.

With ``cevery_inv`` (``NI`` for the stepping thread is preserved at every node) and the frame
for the summary (the others' fold, their "at most one" and their local facts do not change),
``Inv`` is preserved by every step of every thread, for any finite number of threads. What is
left by hand: the two induction principles (on subtree height, on a finite set of threads) and
the count bound ``R_s(a) < 2**29 - 2`` (fewer than ``2**29 - 2**27 - 2`` threads), which is an
assumption about the configuration, not something a step could establish.

**4. Lock-freedom's closing argument** (``cevery_lfglobal@pc``, ``cevery_scan_lfglobal@pc``).
A global measure over a symbolic set of threads, compared lexicographically:
``(M, N)`` with ``M = sum_k mu_k``, ``mu_k = left_k * 64 + rank_k`` (``counted_every.measure``
folded into one number: ``rank < 64`` is checked), and ``N = sum_k ([k is at a load] + 2 [k is at a
CAS that will fail: the word differs from what it expects])``. Per pc of the stepping thread
``j``, with the others' ``M_o``, ``N_o`` symbolic (their ``mu`` is a function of their op
state; their ``N`` changes only if a word changes): every step that is neither a start nor a
completion lowers ``(M_o + mu_j, N_o + nu_j)`` strictly. So between two completions there are at most
``T`` starts and, between two starts, fewer than ``(T mu_max + 1)(2T + 1)`` steps, with
``mu_max = 64 * 2**D + 2 (D - max_level) + 2`` (scan; attempt mode: ``left = 1``). That
arithmetic is z3's: ``counted_lfarith`` (``clf_run_*``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import bits, steps, tree
from nbbs.model import geometry as g
from nbbs.model.steps import OpState
from nbbs.proofs import counted_every as ce
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._symexec import explore
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, Z, val
from nbbs.proofs.counted_every import BITS, WIDE, World, bv, level

_ONE, _ZERO = z3.BitVecVal(1, WIDE), z3.BitVecVal(0, WIDE)


def _wide(x: Any) -> Any:
    """A ``BITS``-bit term as a ``WIDE``-bit one (counts and block numbers are ``WIDE``)."""
    return z3.Extract(WIDE - 1, 0, x)


def _one(w: Any) -> Any:
    return z3.If(w & bits.OCC != 0, _ONE, _ZERO)


def _pages(wd: World, c: Any) -> Any:
    """``2**(D - level(c))``: the pages under ``c``, as a ``WIDE``-bit term."""
    return z3.BitVecVal(1, WIDE) << _wide(wd.depth - level(c))


def _child(a: Any, s: int) -> Any:
    """``a``'s child on side ``s`` (1: left, as ``geometry.side``)."""
    return g.left(a) if s == 1 else g.right(a)


def _idle() -> OpState:
    return OpState(steps.DONE_FAIL, 0)


# -- 1. the initial state, every depth --------------------------------------------------------


def _subtree(wd: World, c: Any, b: Any) -> list[tuple[str, Any]]:
    """``P(c)`` with ``b`` = the blocks of ``c``'s subtree."""
    w = wd.W(c)
    occ = w & bits.OCC != 0
    return [
        ("the subtree's blocks = [OCC] + c_L + c_R", b == _one(w) + ce._count(w, 1) + ce._count(w, 0)),
        ("a block is BUSY and has no block under it", z3.Implies(occ, z3.And(w == bits.BUSY, b == 1))),
        ("at most as many blocks as pages", z3.ULE(b, _pages(wd, c))),
    ]


def _init_explain(wd: World, nodes: list[tuple[str, Any, Any]]) -> Callable[[z3.ModelRef], str]:
    def explain(m: z3.ModelRef) -> str:
        lines = [f"  depth {val(m, wd.depth)}, max_level {val(m, wd.max_level)}"]
        for name, x, b in nodes:
            blocks = "" if b is None else f", blocks below {val(m, b)}"
            lines.append(
                f"  {name} = {val(m, x)} (level {val(m, level(x))}): "
                f"word {wd.t.show(val(m, wd.W(x)))}{blocks}"
            )
        return "\n".join(lines)

    return explain


def _init(v: Variant, case: str) -> Query:
    wd = World(v, scan=False)
    a = z3.BitVec("a", BITS)
    la = level(a)
    me = _idle()
    b_a = z3.BitVec("blocks_a", WIDE)
    prem = [*wd.bounds(), wd.node(a)]
    shown: list[tuple[str, Any, Any]] = [("node a", a, b_a)]
    if case == "above":
        prem += [
            la < wd.max_level,
            tree.untouched_ok(wd.W(a), Z),
            wd.R(0, a) == 0,
            wd.R(1, a) == 0,
            z3.Not(wd.H(a)),
        ]
        claims = list(ce.ni(wd, wd.W(a), me, a))
    elif case == "page":
        w = wd.W(a)
        prem += [la == wd.depth, la >= wd.max_level, tree.leaf_ok(w, Z)]
        prem += [b_a == _one(w), wd.R(0, a) == 0, wd.R(1, a) == 0, wd.H(a) == (w & bits.OCC != 0)]
        claims = _subtree(wd, a, b_a) + ce.ni(wd, w, me, a)
    else:
        node_ok = wd.t.node_ok
        assert node_ok is not None, "[proofs internal bug] a counted bundle has its node_ok"
        kids = [_child(a, s) for s in (0, 1)]
        b_kid = [z3.BitVec(f"blocks_{s}", WIDE) for s in (0, 1)]
        shown += [(f"child {'L' if s else 'R'}", kids[s], b_kid[s]) for s in (1, 0)]
        prem += [la >= wd.max_level, la < wd.depth, node_ok(wd.W(a), wd.W(kids[1]), wd.W(kids[0]), Z)]
        for s in (0, 1):
            prem += [c for _, c in _subtree(wd, kids[s], b_kid[s])]
            prem += [wd.R(s, a) == b_kid[s]]
        prem += [b_a == _one(wd.W(a)) + b_kid[0] + b_kid[1], wd.H(a) == (wd.W(a) & bits.OCC != 0)]
        claims = _subtree(wd, a, b_a) + ce.ni(wd, wd.W(a), me, a)
        claims += [("the others' total leaves room for two claims", z3.And(wd.room(a)))]
    prem += wd.congruence()
    return Query(prem, claims, _init_explain(wd, shown), split=True)


def init_obligations() -> list[Obligation]:
    """The initial state for every depth: the base and step of the induction on subtree height."""
    what = {
        "page": "a quiescent page satisfies P and the per-node invariant (idle threads, static blocks)",
        "node": "node_ok at a node and P at both children give P and the per-node invariant there",
        "above": "a node above max_level (zero) satisfies the per-node invariant",
    }
    return [
        Obligation(
            f"cevery_init_{case}", "every", None, f"any depth: {text}", functools.partial(_init, case=case)
        )
        for case, text in what.items()
    ]


# -- 2. the scan's skip -----------------------------------------------------------------------


def _offset(x: Any, n: Any, size: Any) -> Any:
    """The cyclic distance from ``n`` to ``x`` on a level of ``size`` (a power of two) nodes."""
    return (x - n) & (size - 1)


def _skip(v: Variant, pc: int, shape: ce.Shape = ce.COUNTED_SHAPE) -> Query:
    wd, op, a0, mvs = ce._built(v, pc, True)
    others = z3.Bool("another_op_in_flight")
    x = z3.BitVec("x", BITS)
    n = bv(op.n)
    ln = level(n)
    size = z3.BitVecVal(1, BITS) << ln
    on_level = z3.And(level(x) == ln, wd.node(x))
    claims: list[tuple[str, Any]] = []
    accessed = [mv.acc.node for mv in mvs if mv.acc is not None]
    for mv in mvs:
        if mv.acc is None:
            continue
        nxt = mv.nxt
        if nxt.pc in (steps.A_LOAD, steps.DONE_FAIL):
            left0 = bv(op.left)
            by = left0 - bv(nxt.left) if nxt.pc == steps.A_LOAD else left0
            jumped = z3.And(on_level, _offset(x, n, size) >= 1, _offset(x, n, size) < by)
            claims.append(
                (
                    f"{mv.label}: every node the scan jumps over lies under the ancestor found occupied",
                    z3.Implies(z3.And(mv.hyp, jumped), g.is_ancestor_any(bv(op.fail), x, Z, z3.If, BITS)),
                )
            )
            if nxt.pc == steps.A_LOAD:
                claims.append(
                    (
                        f"{mv.label}: the next candidate is exactly `by` positions on, on the same level",
                        z3.Implies(
                            mv.hyp,
                            z3.And(
                                by >= 1,
                                level(bv(nxt.n)) == ln,
                                _offset(bv(nxt.n), n, size) == by & (size - 1),
                            ),
                        ),
                    )
                )
        elif steps.is_alloc(nxt) and pc in (steps.R_RELEASE, steps.R_ULOAD, steps.R_UCAS):
            claims.append(
                (f"{mv.label}: the rollback keeps its fail", z3.Implies(mv.hyp, bv(nxt.fail) == bv(op.fail)))
            )
        if pc in shape.fail_loads and nxt.pc == steps.R_RELEASE:
            m = mv.acc.node
            claims += [
                (f"{mv.label}: fail is the ancestor found occupied", z3.Implies(mv.hyp, bv(nxt.fail) == m)),
                (
                    f"{mv.label}: every node under it is not free in A, or another operation is in flight",
                    z3.Implies(
                        z3.And(mv.hyp, g.is_ancestor_any(m, x, Z, z3.If, BITS)),
                        z3.Or(others, z3.And(wd.S(m), ce._overlaps(m, x))),
                    ),
                ),
            ]
    if not claims:
        claims.append(("no step of this pc moves the scan", z3.BoolVal(True)))
    prem = [*wd.bounds(), shape.local(wd, op), wd.node(a0)]
    for a in [a0, n, *accessed]:
        prem += [
            z3.Implies(wd.node(a), z3.And([c for _, c in shape.ni(wd, wd.W, op, a)])),
            *wd.room(a, shape.headroom),
        ]
    prem += (shape.meaning or ce._meaning)(wd, [], [a0, n, *accessed], others)
    prem += wd.congruence()
    base = ce._explain(wd, op, a0, mvs)

    def explain(m: z3.ModelRef) -> str:
        return base(m) + f"\n  node x = {val(m, x)} (level {val(m, level(x))})"

    cases = [("some step applies", z3.Or([mv.hyp for mv in mvs]))]
    return Query(prem, claims, explain, (), cases, split=True)


def skip_obligations() -> list[Obligation]:
    """Per alloc pc (scan mode): ``cevery_scan_skip@pc``."""
    from nbbs.proofs._variant import COUNTED

    return [
        Obligation(
            f"cevery_scan_skip@{steps.PC_NAMES[pc]}",
            "every",
            None,
            f"any depth (scan): a step at {steps.PC_NAMES[pc]} jumps only over nodes under an "
            "occupied ancestor",
            functools.partial(_skip, pc=pc),
        )
        for pc in ce.pcs(COUNTED)
        if pc in ce._ALLOC
    ]


# -- 3. the summary as a fold over threads -----------------------------------------------------


class _Per:
    """Values of named per-node functions at a few node terms, one variable per use, with
    "equal nodes, equal values" (Ackermann's reduction, as ``World`` does)."""

    def __init__(self, tag: str, sorts: dict[str, int | None]) -> None:
        self.tag, self.sorts = tag, sorts
        self._at: dict[int, tuple[Any, dict[str, Any]]] = {}

    def __call__(self, name: str, a: Any) -> Any:
        key = a.get_id()
        if key not in self._at:
            k = len(self._at)
            self._at[key] = (
                a,
                {
                    f: z3.Bool(f"{self.tag}{f}@{k}")
                    if size is None
                    else z3.BitVec(f"{self.tag}{f}@{k}", size)
                    for f, size in self.sorts.items()
                },
            )
        return self._at[key][1][name]

    def congruence(self) -> list[Any]:
        items = list(self._at.values())
        out = []
        for i, (a, xs) in enumerate(items):
            for b, ys in items[i + 1 :]:
                out.append(z3.Implies(a == b, z3.And([xs[f] == ys[f] for f in self.sorts])))
        return out


def in_flight(op: OpState) -> Any:
    """``op``'s thread is in flight: not idle and not holding a block it got (``DONE_OK``)."""
    return z3.BoolVal(op.pc not in (*ce._IDLE, steps.DONE_OK))


class Summary:
    """A summary of a set of threads at a node: the others' totals, holders, live blocks,
    Skolem witnesses, "two hold it", and (one for all nodes) "one of them is in flight"."""

    def __init__(self, r: tuple[Any, Any], h: Any, s: Any, wit: tuple[Any, Any], multi: Any, o: Any) -> None:
        self.r, self.h, self.s, self.wit, self.multi, self.o = r, h, s, wit, multi, o

    def add(self, op: OpState, a: Any, ml: Any, shape: ce.Shape = ce.COUNTED_SHAPE) -> Summary:
        """The summary with one more thread, in ``op``: its contribution at ``a`` (``shape``'s:
        ``counted``'s claims, or a top-down variant's tokens)."""
        cl = [shape.claims(op, a, s, ml) for s in (0, 1)]
        occ = shape.occupies(op, a)
        return Summary(
            (self.r[0] + z3.If(cl[0], _ONE, _ZERO), self.r[1] + z3.If(cl[1], _ONE, _ZERO)),
            z3.Or(self.h, occ),
            z3.Or(self.s, ce.live(op, a)),
            (z3.If(cl[0], bv(op.n), self.wit[0]), z3.If(cl[1], bv(op.n), self.wit[1])),
            z3.Or(self.multi, z3.And(self.h, occ)),
            z3.Or(self.o, in_flight(op)),
        )


def _facts(
    wd: World, a: Any, b: Any, at_a: Summary, s_b: Any, live_wit: tuple[Any, Any]
) -> list[tuple[str, Any]]:
    """F1-F4 at ``a`` (F2 for the block ``b``): ``at_a`` the summary at ``a``, ``s_b`` = ``S(b)``,
    ``live_wit[s]`` = ``S(wit_s(a))``."""
    ml = wd.max_level
    out = [("F1: a live block of the others is held or occupied", z3.Implies(at_a.s, at_a.h))]
    for s in (0, 1):
        side = "L" if s else "R"
        out.append(
            (
                f"F2: a live block below side {side} of a node at or below max_level is counted in R_{side}",
                z3.Implies(z3.And(s_b, ce.below_side(b, a, s), level(a) >= ml), at_a.r[s] >= 1),
            )
        )
        w = at_a.wit[s]
        out.append(
            (
                f"F3: with nobody in flight, R_{side} >= 1 has a live witness below side {side}",
                z3.Implies(
                    z3.And(z3.Not(at_a.o), at_a.r[s] >= 1),
                    z3.And(live_wit[s], ce.below_side(w, a, s), wd.node(w)),
                ),
            )
        )
    out.append(
        (
            "F4: with nobody in flight, a held or occupied node is live",
            z3.Implies(z3.Not(at_a.o), z3.Implies(at_a.h, at_a.s)),
        )
    )
    return out


def _tree_fact(wd: World, a: Any, s: int, at_a: Summary, at_c: Summary) -> tuple[str, Any]:
    """F5 at ``a``, side ``s`` (``at_c`` the summary at ``c = child_s(a)``): with nobody in
    flight, ``R_s(a) = [S(c)] + R_L(c) + R_R(c)`` at a node at or below ``max_level`` (what the
    quiescent invariant says of the counts)."""
    la = level(a)
    side = "L" if s else "R"
    return (
        f"F5: with nobody in flight, R_{side}(a) = [S(c)] + R_L(c) + R_R(c) for its child c",
        z3.Implies(
            z3.And(z3.Not(at_a.o), la >= wd.max_level, la < wd.depth),
            at_a.r[s] == z3.If(at_c.s, _ONE, _ZERO) + at_c.r[1] + at_c.r[0],
        ),
    )


def _summary_explain(
    wd: World, nodes: list[tuple[str, Any]], extra: list[tuple[str, Any]]
) -> Callable[[z3.ModelRef], str]:
    def explain(m: z3.ModelRef) -> str:
        lines = [f"  depth {val(m, wd.depth)}, max_level {val(m, wd.max_level)}"]
        lines += [f"  {name} = {val(m, x)} (level {val(m, level(x))})" for name, x in nodes]
        lines += [f"  {name} = {val(m, x)}" for name, x in extra]
        return "\n".join(lines)

    return explain


def _op_text(m: z3.ModelRef, op: OpState) -> str:
    parts = [steps.PC_NAMES[op.pc]] + [
        f"{f}={val(m, bv(getattr(op, f)))}" for f in ("n", "child", "top", "left", "fail")
    ]
    return " ".join(parts)


def _sum_add(v: Variant, pc: int) -> Query:
    wd = World(v, scan=True)
    op = ce.symbolic_op(pc, "k_")
    a, b = z3.BitVecs("a b", BITS)
    ml = wd.max_level
    o = z3.Bool("O")
    before = Summary(
        (wd.R(0, a), wd.R(1, a)), wd.H(a), wd.S(a), (wd.wit(0, a), wd.wit(1, a)), z3.BoolVal(False), o
    )
    after = before.add(op, a, ml)
    s_b_after = z3.Or(wd.S(b), ce.live(op, b))
    wit_live = tuple(wd.S(wd.wit(s, a)) for s in (0, 1))
    wit_live_after = tuple(
        z3.If(
            ce.claims_at(op, a, s, ml),
            z3.Or(wd.S(bv(op.n)), ce.live(op, bv(op.n))),
            z3.Or(wit_live[s], ce.live(op, wd.wit(s, a))),
        )
        for s in (0, 1)
    )
    prem = [*wd.bounds(), ce.local(wd, op), wd.node(a), wd.node(b), *wd.room(a)]
    prem += [c for _, c in _facts(wd, a, b, before, wd.S(b), wit_live)]
    post = _facts(wd, a, b, after, s_b_after, wit_live_after)
    for s in (0, 1):
        c = _child(a, s)
        at_c = Summary((wd.R(0, c), wd.R(1, c)), wd.H(c), wd.S(c), (c, c), z3.BoolVal(False), o)
        prem += [_tree_fact(wd, a, s, before, at_c)[1], *wd.room(c), z3.Implies(wd.S(c), wd.H(c))]
        # Inv's "at most one holds or occupies it" for the threads folded so far (and k).
        prem.append(z3.Not(z3.And(wd.H(c), ce.occupies(op, c))))
        post.append(_tree_fact(wd, a, s, after, at_c.add(op, c, ml)))
    prem += wd.congruence()
    claims = [(f"T + k at {steps.PC_NAMES[pc]}: {name}", c) for name, c in post]

    def explain(m: z3.ModelRef) -> str:
        return (
            _summary_explain(
                wd,
                [("node a", a), ("block b", b)],
                [
                    ("R_L(a)", before.r[1]),
                    ("R_R(a)", before.r[0]),
                    ("H(a)", before.h),
                    ("S(a)", before.s),
                    ("S(b)", wd.S(b)),
                    ("O", o),
                ],
            )(m)
            + f"\n  thread k: {_op_text(m, op)}"
        )

    return Query(prem, claims, explain, split=True)


def _sum_empty(v: Variant, static_counted: bool = True) -> Query:
    """F1-F4 for no thread (``static_counted=False``: a broken fold whose ``R`` forgets the
    static blocks, for the mutant test)."""
    wd = World(v, scan=False)
    a, b = z3.BitVecs("a b", BITS)
    st = _Per("st_", {"static": None, "blocks": WIDE, "wit": BITS})
    la = level(a)
    kids = [_child(a, s) for s in (0, 1)]

    def empty_at(x: Any) -> Summary:
        counted = z3.And(level(x) >= wd.max_level, level(x) < wd.depth, static_counted)
        r = tuple(z3.If(counted, st("blocks", _child(x, s)), _ZERO) for s in (0, 1))
        wit = (st("wit", _child(x, 0)), st("wit", _child(x, 1)))
        return Summary(r, st("static", x), st("static", x), wit, z3.BoolVal(False), z3.BoolVal(False))

    empty = empty_at(a)
    wit = empty.wit
    prem = [*wd.bounds(), wd.node(a), wd.node(b)]
    for s in (0, 1):
        c = kids[s]
        prem += [x for _, x in _static_facts(wd, st, c, b)]
        # B's definition at the child (a page: its own block only).
        grand = z3.If(level(c) < wd.depth, st("blocks", _child(c, 0)) + st("blocks", _child(c, 1)), _ZERO)
        prem.append(z3.Implies(la < wd.depth, st("blocks", c) == z3.If(st("static", c), _ONE, _ZERO) + grand))
    claims = _facts(wd, a, b, empty, st("static", b), (st("static", wit[0]), st("static", wit[1])))
    claims += [_tree_fact(wd, a, s, empty, empty_at(kids[s])) for s in (0, 1)]
    prem += st.congruence() + wd.congruence()
    return Query(
        prem,
        claims,
        _summary_explain(wd, [("node a", a), ("block b", b)], [("static(b)", st("static", b))]),
        split=True,
    )


def _static_facts(wd: World, st: _Per, c: Any, b: Any) -> list[tuple[str, Any]]:
    """The static part's subtree facts at ``c`` (``b`` a symbolic node)."""
    w = st("wit", c)
    return [
        (
            "a static block in c's subtree makes B(c) >= 1",
            z3.Implies(
                z3.And(st("static", b), g.is_ancestor_any(c, b, Z, z3.If, BITS)), st("blocks", c) >= 1
            ),
        ),
        (
            "B(c) >= 1 has a static witness in c's subtree",
            z3.Implies(
                st("blocks", c) >= 1,
                z3.And(st("static", w), g.is_ancestor_any(c, w, Z, z3.If, BITS), wd.node(w)),
            ),
        ),
        ("B(c) <= the nodes of c's subtree", z3.ULE(st("blocks", c), 2 * _pages(wd, c) - 1)),
    ]


def _sum_static(v: Variant, case: str, look_left: bool = True) -> Query:
    """The induction on subtree height for the static blocks (``look_left=False``: a witness
    that never looks in the left child, for the mutant test)."""
    wd = World(v, scan=False)
    c, b = z3.BitVecs("c b", BITS)
    st = _Per("st_", {"static": None, "blocks": WIDE, "wit": BITS})
    lc = level(c)
    mark = z3.If(st("static", c), _ONE, _ZERO)
    prem = [*wd.bounds(), wd.node(c), wd.node(b)]
    if case == "page":
        prem += [lc == wd.depth, st("blocks", c) == mark, st("wit", c) == c]
    else:
        kids = [_child(c, s) for s in (0, 1)]
        prem += [lc < wd.depth, st("blocks", c) == mark + st("blocks", kids[0]) + st("blocks", kids[1])]
        prem += [
            st("wit", c)
            == z3.If(
                st("static", c),
                c,
                z3.If(z3.And(look_left, st("blocks", kids[1]) >= 1), st("wit", kids[1]), st("wit", kids[0])),
            )
        ]
        for s in (0, 1):
            prem += [x for _, x in _static_facts(wd, st, kids[s], b)]
    claims = _static_facts(wd, st, c, b)
    prem += st.congruence() + wd.congruence()
    return Query(
        prem,
        claims,
        _summary_explain(
            wd, [("node c", c), ("node b", b)], [("B(c)", st("blocks", c)), ("static(b)", st("static", b))]
        ),
        split=True,
    )


def _sum_commute(v: Variant, multi_needs_h: bool = True) -> Query:
    """Adding two threads' contributions (any values) in either order gives the same summary
    (``multi_needs_h=False``: a broken "two hold it" that compares the new occupier with the live
    blocks instead of the holders, for the mutant test)."""
    del v
    r = z3.BitVec("R", WIDE)
    c1, c2 = z3.Bools("claim_1 claim_2")
    h, o1, o2, s, l1, l2, o, f1, f2, mu = z3.Bools("H occ_1 occ_2 S live_1 live_2 O flight_1 flight_2 Multi")

    def add(x: tuple[Any, ...], c: Any, occ: Any, liv: Any, fl: Any) -> tuple[Any, ...]:
        rr, hh, ss, oo, mm = x
        return (
            rr + z3.If(c, _ONE, _ZERO),
            z3.Or(hh, occ),
            z3.Or(ss, liv),
            z3.Or(oo, fl),
            z3.Or(mm, z3.And(hh, occ) if multi_needs_h else z3.And(ss, occ)),
        )

    t0 = (r, h, s, o, mu)
    one = add(add(t0, c1, o1, l1, f1), c2, o2, l2, f2)
    two = add(add(t0, c2, o2, l2, f2), c1, o1, l1, f1)
    names = ("R", "H", "S", "O", "Multi")
    return Query(
        [],
        [
            (f"{nm}: the order of two threads does not matter", x == y)
            for nm, x, y in zip(names, one, two, strict=True)
        ],
        lambda m: str(m),
    )


def _free_symbols(e: Any) -> set[str]:
    out: set[str] = set()
    seen: set[int] = set()
    todo = [e]
    while todo:
        x = todo.pop()
        if x.get_id() in seen:
            continue
        seen.add(x.get_id())
        if z3.is_const(x) and x.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out.add(str(x))
        todo.extend(x.children())
    return out


def _sum_frame(v: Variant, shape: ce.Shape = ce.COUNTED_SHAPE) -> Query:
    """Each contribution and local fact of a thread ``k`` mentions only ``k``'s op state,
    ``D``, ``max_level`` and the node (so another thread's step, which changes its own op state
    and one word, leaves it as it is): a check of the terms' free symbols, no solving."""
    claims: list[tuple[str, Any]] = []
    bad: list[str] = []
    for scan in (False, True):
        wd = World(v, scan)
        for pc in ce.pcs(v):
            op = ce.symbolic_op(pc, "k_")
            a = z3.BitVec("a", BITS)
            terms = [shape.claims(op, a, s, wd.max_level) for s in (0, 1)]
            terms += [
                shape.occupies(op, a),
                ce.live(op, a),
                in_flight(op),
                shape.local(wd, op),
                *ce.measure(op, wd.max_level, shape),
            ]
            allowed = {f"k_{f}" for f in ("n", "child", "top", "cur", "left", "fail")} | {
                "D",
                "max_level",
                "a",
            }
            extra = (
                set().union(
                    *(_free_symbols(z3.simplify(t) if z3.is_expr(t) else z3.BoolVal(True)) for t in terms)
                )
                - allowed
            )
            if extra:
                bad.append(f"{steps.PC_NAMES[pc]} ({'scan' if scan else 'attempt'}): {sorted(extra)}")
            claims.append(
                (
                    f"{steps.PC_NAMES[pc]} ({'scan' if scan else 'attempt'}): k's contribution is a "
                    "function of k's op state",
                    not extra,
                )
            )
    return Query([], claims, lambda m: "\n".join(f"  mentions another's state: {x}" for x in bad))


def global_ni(wd: World, w: Any, a: Any, every: Summary) -> list[tuple[str, Any]]:
    """The whole system's per-node invariant at ``a`` (``counted_steps``' ``Inv`` at one node),
    with ``every`` the fold over every thread and the static blocks."""
    la = level(a)
    occupied = w & bits.OCC != 0
    r_zero = z3.And(every.r[0] == 0, every.r[1] == 0)
    return [
        (
            "above max_level: zero, unheld, unclaimed",
            z3.Implies(la < wd.max_level, z3.And(w == 0, z3.Not(every.h), r_zero)),
        ),
        ("OCC iff someone holds or occupies it", z3.Implies(la >= wd.max_level, occupied == every.h)),
        ("at most one holds or occupies it", z3.Not(every.multi)),
        ("BUSY or no status bit", z3.If(occupied, w == bits.BUSY, w & ((1 << bits.COUNT_SHIFT) - 1) == 0)),
        ("a page has nothing claimed through it", z3.Implies(la == wd.depth, r_zero)),
        *[
            (
                f"c_{'L' if s else 'R'} = the sum over every thread and the static set",
                ce._count(w, s) == every.r[s],
            )
            for s in (1, 0)
        ],
    ]


GlobalNI = Callable[[World, Any, Any, Summary], list[tuple[str, Any]]]
"""The whole system's per-node invariant at a node: ``(wd, W[a], a, every) -> named conjuncts``."""


def _compose(
    v: Variant,
    pc: int,
    others_at_most_one: bool = True,
    shape: ce.Shape = ce.COUNTED_SHAPE,
    glob_ni: GlobalNI | None = None,
) -> Query:
    """``others_at_most_one=False``: the composition forgets "at most one among the others"
    (for the mutant test). ``shape``, ``glob_ni``: another variant's per-node invariant for
    one thread and for the whole system (default: ``counted``'s)."""
    gni = glob_ni or global_ni
    wd = World(v, scan=True)
    op = ce.symbolic_op(pc, "j_")
    a = z3.BitVec("a", BITS)
    multi = z3.Bool("Multi_others")
    others = Summary(
        (wd.R(0, a), wd.R(1, a)), wd.H(a), wd.S(a), (wd.wit(0, a), wd.wit(1, a)), multi, z3.Bool("O")
    )
    every = others.add(op, a, wd.max_level, shape)
    glob = z3.And([c for _, c in gni(wd, wd.W(a), a, every)])
    mine = z3.And(*[c for _, c in shape.ni(wd, wd.W, op, a)], z3.Or(z3.Not(multi), not others_at_most_one))
    prem = [*wd.bounds(), shape.local(wd, op), wd.node(a), *wd.room(a, shape.headroom), *wd.congruence()]

    def explain(m: z3.ModelRef) -> str:
        broken = [nm for nm, c in gni(wd, wd.W(a), a, every) if z3.is_false(m.eval(c, model_completion=True))]
        return _summary_explain(
            wd, [("node a", a)], [("R_L", others.r[1]), ("R_R", others.r[0]), ("H", others.h)]
        )(m) + (
            f"\n  thread j: {_op_text(m, op)}\n  word {wd.t.show(val(m, wd.W(a)))}\n  global broken: {broken}"
        )

    return Query(
        prem,
        [
            (
                "the global per-node invariant = j's NI with the others' fold, and at most one "
                "among the others",
                glob == mine,
            )
        ],
        explain,
    )


def quiescent_claims(wd: World, me: OpState, a: Any) -> list[tuple[str, Any]]:
    """The quiescent invariant at ``a`` (``untouched_ok`` above ``max_level``, ``leaf_ok`` on a
    page, the bundle's ``node_ok`` between) and "OCC exactly at the live blocks", as claims:
    what ``{p}_quiescent@pc`` proves of every variant of the counted family."""
    la = level(a)
    node_ok = wd.t.node_ok
    assert node_ok is not None, "[proofs internal bug] a counted-family bundle has its node_ok"
    w, kids = wd.W(a), [_child(a, s) for s in (0, 1)]
    return [
        ("above max_level the word is untouched", z3.Implies(la < wd.max_level, tree.untouched_ok(w, Z))),
        ("a page is free or a block", z3.Implies(la == wd.depth, tree.leaf_ok(w, Z))),
        (
            "node_ok holds between max_level and the pages",
            z3.Implies(
                z3.And(la >= wd.max_level, la < wd.depth), node_ok(w, wd.W(kids[1]), wd.W(kids[0]), Z)
            ),
        ),
        (
            "OCC exactly at the live blocks",
            z3.Implies(la >= wd.max_level, (w & bits.OCC != 0) == z3.Or(wd.S(a), ce.live(me, a))),
        ),
    ]


def _quiescent(v: Variant, pc: int) -> Query:
    """With nobody else in flight and me idle (``done:fail``) or holding my block (``done:ok``),
    ``NI`` at a node and its children, F1/F4 and F5 give the quiescent invariant there
    (``untouched_ok`` above ``max_level``, ``leaf_ok`` on a page, ``node_ok`` between) and
    "OCC exactly at the live blocks": property (b)'s words = blocks, every depth."""
    wd = World(v, scan=False)
    me = ce.symbolic_op(pc)
    a = z3.BitVec("a", BITS)
    kids = [_child(a, s) for s in (0, 1)]
    no = z3.BoolVal(False)

    def at(x: Any) -> Summary:
        return Summary((wd.R(0, x), wd.R(1, x)), wd.H(x), wd.S(x), (x, x), no, no)

    prem = [*wd.bounds(), ce.local(wd, me), wd.node(a)]
    for x in [a, *kids]:
        ni = z3.And([c for _, c in ce.ni(wd, wd.W(x), me, x)])
        prem += [z3.Implies(wd.node(x), ni), *wd.room(x), wd.S(x) == wd.H(x)]  # F1 and F4
    prem += [_tree_fact(wd, a, s, at(a), at(kids[s]))[1] for s in (0, 1)]
    prem += wd.congruence()
    claims = quiescent_claims(wd, me, a)

    def explain(m: z3.ModelRef) -> str:
        lines = [f"  depth {val(m, wd.depth)}, max_level {val(m, wd.max_level)}, me: {_op_text(m, me)}"]
        for name, x in (("node a", a), ("child L", kids[1]), ("child R", kids[0])):
            lines.append(
                f"  {name} = {val(m, x)}: word {wd.t.show(val(m, wd.W(x)))}, live {val(m, wd.S(x))}, "
                f"R_L={val(m, wd.R(1, x))} R_R={val(m, wd.R(0, x))}"
            )
        return "\n".join(lines)

    return Query(prem, claims, explain, split=True)


def sum_obligations() -> list[Obligation]:
    """The summary's meaning (``cevery_sum_*``) and the composition (``cevery_compose@pc``)."""
    from nbbs.proofs._variant import COUNTED

    out = [
        Obligation(
            "cevery_sum_commute",
            "every",
            None,
            "the fold over threads does not depend on their order",
            _sum_commute,
        ),
        Obligation(
            "cevery_sum_frame",
            "every",
            None,
            "a thread's contribution is a function of its own op state",
            _sum_frame,
        ),
        Obligation(
            "cevery_sum_static_page",
            "every",
            None,
            "any depth: the static blocks' count and witness at a page",
            functools.partial(_sum_static, case="page"),
        ),
        Obligation(
            "cevery_sum_static_node",
            "every",
            None,
            "any depth: the static blocks' count and witness, from the children to the node",
            functools.partial(_sum_static, case="node"),
        ),
        Obligation(
            "cevery_sum_empty",
            "every",
            None,
            "any depth: F1-F4 hold for the static blocks alone (no thread)",
            _sum_empty,
        ),
    ]
    for pc in (steps.DONE_FAIL, steps.DONE_OK):
        out.append(
            Obligation(
                f"cevery_quiescent@{steps.PC_NAMES[pc]}",
                "every",
                None,
                "any depth: with nobody in flight, Inv gives the quiescent invariant and OCC at the "
                "live blocks",
                functools.partial(_quiescent, pc=pc),
            )
        )
    for pc in ce.pcs(COUNTED):
        name = steps.PC_NAMES[pc]
        out.append(
            Obligation(
                f"cevery_sum_add@{name}",
                "every",
                None,
                f"any depth: F1-F4 survive adding a thread at {name}",
                functools.partial(_sum_add, pc=pc),
            )
        )
        out.append(
            Obligation(
                f"cevery_compose@{name}",
                "every",
                None,
                f"any depth: the global per-node invariant is NI for a thread at {name} with the "
                "others folded",
                functools.partial(_compose, pc=pc),
            )
        )
    return out


# -- 4. lock-freedom: a global measure over a symbolic set of threads ------------------------


def mu(op: OpState, ml: Any, shape: ce.Shape = ce.COUNTED_SHAPE) -> Any:
    """``counted_every.measure`` as one number: ``left * 64 + rank`` (``rank < 64`` is checked;
    a shape may widen the 64: ``Shape.mu_shift``)."""
    left, rank = ce.measure(op, ml, shape)
    return (left << shape.mu_shift) + rank


def _nu(wd: World, op: OpState, word_at: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
    """``[at a load] + 2 [at a CAS that will fail]`` for ``op`` with the words ``word_at``, and the
    nodes it reads."""
    if steps.is_done(op):
        return z3.BitVecVal(0, BITS), []
    out: Any = z3.BitVecVal(0, BITS)
    nodes = []
    for path, acc in reversed(explore(lambda: wd.m.access(op))):
        assert acc is not None
        if acc.kind == steps.Kind.LOAD:
            here: Any = z3.BitVecVal(1, BITS)
        elif acc.kind == steps.Kind.CAS:
            nodes.append(acc.node)
            here = z3.If(word_at(acc.node) != bv(acc.a), z3.BitVecVal(2, BITS), z3.BitVecVal(0, BITS))
        else:
            here = z3.BitVecVal(0, BITS)
        out = z3.If(path, here, out)
    return out, nodes


def _lex_below(x: tuple[Any, Any], y: tuple[Any, Any]) -> Any:
    return z3.Or(z3.ULT(x[0], y[0]), z3.And(x[0] == y[0], z3.ULT(x[1], y[1])))


def _lf_global(v: Variant, pc: int, scan: bool = False, shape: ce.Shape = ce.COUNTED_SHAPE) -> Query:
    wd, op, a0, mvs = ce._built(v, pc, scan)
    ml = wd.max_level
    m_o, n_o, n_o2 = z3.BitVecs("M_others N_others N_others_after", BITS)
    mu0 = mu(op, ml, shape)
    nu0, reads = _nu(wd, op, wd.W)
    rank = ce.measure(op, ml, shape)[1]
    top = 1 << shape.mu_shift
    # The others' M is the same before and after (a function of their op states); adding it to
    # both sides keeps the order (the second claim, on any values below the bounds the first
    # establishes), so each move's claim compares mu alone (cheaper for z3 than the sums).
    x, y = z3.BitVecs("mu_before mu_after", BITS)
    claims: list[tuple[str, Any]] = [
        (
            f"rank < {top} (so left * {top} + rank orders as the pair) and mu < 2**40",
            z3.And(z3.ULT(rank, top), z3.ULT(mu0, 1 << 40)),
        ),
        (
            "adding the others' M keeps the order of mu",
            z3.Implies(
                z3.And(z3.ULT(x, 1 << 40), z3.ULT(y, 1 << 40)), z3.ULT(m_o + x, m_o + y) == z3.ULT(x, y)
            ),
        ),
    ]
    for mv in mvs:
        if mv.acc is None or steps.is_done(mv.nxt):
            continue  # a start or a completion
        acc, old = mv.acc, wd.W(mv.acc.node)

        def after(y: Any, acc: steps.Access = acc, new: Any = mv.new) -> Any:
            return z3.If(y == acc.node, new, wd.W(y))

        nu1, more = _nu(wd, mv.nxt, after)
        reads += more
        others_same = z3.Or(mv.new != old, n_o2 == n_o)
        claims.append(
            (
                f"{mv.label}: the global measure (sum of mu, sum of nu) drops",
                z3.Implies(
                    z3.And(mv.hyp, others_same),
                    _lex_below((mu(mv.nxt, ml, shape), n_o2 + nu1), (mu0, n_o + nu0)),
                ),
            )
        )
    if len(claims) == 2:
        claims.append(("every step of this pc starts or completes an operation", z3.BoolVal(True)))
    nodes = [a0, bv(op.n)] + [x for mv in mvs if mv.acc is not None for x in shape.instances(mv.acc.node)]
    nodes += reads
    prem = [*wd.bounds(), shape.local(wd, op), wd.node(a0)]
    for a in nodes:
        prem += [
            z3.Implies(wd.node(a), z3.And([c for _, c in shape.ni(wd, wd.W, op, a)])),
            *wd.room(a, shape.headroom),
        ]
    prem += [z3.ULT(x, 1 << 60) for x in (m_o, n_o, n_o2)]
    prem += wd.congruence()
    base = ce._explain(wd, op, a0, mvs)

    def explain(m: z3.ModelRef) -> str:
        return base(m) + f"\n  mu {val(m, mu0)}, nu {val(m, nu0)}; others: M {val(m, m_o)}, N {val(m, n_o)}"

    cases = [("some step applies", z3.Or([mv.hyp for mv in mvs]))]
    return Query(prem, claims, explain, (), cases, split=True)


def lf_obligations(scan: bool = False) -> list[Obligation]:
    """Per pc in flight: ``cevery_lfglobal@pc`` (``cevery_scan_lfglobal@pc`` in scan mode)."""
    from nbbs.proofs._variant import COUNTED

    prefix = "cevery_scan" if scan else "cevery"
    return [
        Obligation(
            f"{prefix}_lfglobal@{steps.PC_NAMES[pc]}",
            "every",
            None,
            f"any depth, any number of threads: a step at {steps.PC_NAMES[pc]} that neither starts nor "
            "completes an operation lowers the global measure",
            functools.partial(_lf_global, pc=pc, scan=scan),
        )
        for pc in ce.pcs(COUNTED)
        if pc not in (*ce._IDLE, steps.DONE_OK)
    ]


def obligations(every: str) -> list[Obligation]:
    """This module's obligations for ``nbbs prove --every`` (``obligations.EVERY``): the cheap
    ones (initial state, summary, composition) from ``frame`` up, the skip and the global
    lock-freedom measure from ``attempt`` (attempt mode) and ``scan`` (both modes)."""
    if every == "none":
        return []
    out = init_obligations() + sum_obligations()
    if every in ("attempt", "scan"):
        out += lf_obligations(False)
    if every == "scan":
        out += skip_obligations() + lf_obligations(True)
    return out
