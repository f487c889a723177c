"""``counted``'s step-level invariant for every depth and any number of threads: frame,
composition, safety, lock-freedom and linearization points in z3, one query per program
counter (``cevery_frame@pc``, ``cevery_inv@pc``, ``cevery_safe``, ``cevery_lockfree@pc``,
``cevery_lin@pc``; ``cevery_scan_*`` in scan mode).

``counted_steps`` proves ``Inv`` inductive for a fixed depth and number of threads (every
node a z3 variable). Here the depth ``D`` (``1 .. MAX_DEPTH``), ``max_level`` (``0 .. D``)
and every node are symbolic 63-bit vectors; the tree's arithmetic is ``geometry``'s generic
forms (``level_any``, ``ancestor_any``); the step is ``steps.Machine``'s own ``access`` /
``effect`` / ``branches`` run on those symbols by ``_symexec.explore`` (one run per path of its
Python ``if``s), so a new branch (a CAS release) is picked up without an edit here.

**Encoding (thread-modular).** The words are a function ``W`` from nodes to words. One thread
("me") steps, in a symbolic ``OpState`` whose fields are symbols constrained by its local
facts (``local``, below; its ``pc`` is fixed per query); its ``cur`` is unconstrained where
the local facts say nothing. All other threads and the static
blocks are summarised per node and side: ``R_L(a)``, ``R_R(a)`` (their claims through each
side of ``a`` plus the static blocks below it) and ``H(a)`` (some other thread or a static
block holds or occupies ``a``), functions over nodes (``World``). The per-node invariant is
``counted_param.ni``'s, with my contribution added (``mine``: ``counted_steps.occupier`` and
``claim_levels`` below)::

    NI(a):  a above max_level: W[a] == 0, nobody holds it, nothing claimed through it
            else: OCC(W[a]) iff H(a) or I occupy a; not both; a held word is BUSY, others
                  have no status bit; c_s(W[a]) == R_s(a) + [I claim a on side s]
                  (and a page has R == 0)

``Inv`` = for every node ``a`` of the tree, ``NI(a)``, and my local facts. This is exactly
``counted_steps``' ``Inv`` for any number of threads: its count at ``a`` is the sum over all
threads and the static set, and for the thread that steps that sum is its own term plus
``R``; the other threads' terms and the static set do not change when it steps (each is a
function of that thread's own op state), so ``R`` and ``H`` are the same before and after,
and the other threads' local facts (functions of their own op states and ``D``,
``max_level``) are unchanged. So ``Inv`` is preserved by every step of every thread iff
this query holds for every ``R``, ``H`` and every ``pc`` of "me".

**The quantifier.** ``Inv`` says ``NI(a)`` for *every* node. The query proves ``NI'(a0)``
for a symbolic node ``a0`` after the step, assuming ``NI`` before only at ``a0`` and at the
node ``m`` the step accesses: a finite instantiation of the universally quantified
premise, so each query is quantifier-free and, with the functions of nodes reduced to one
variable per use plus congruence (``World``), in ``QF_BV``; and,
``a0`` being arbitrary, its unsatisfiability proves ``NI'`` at every node. No pattern or
instantiation heuristic is involved.

**The frame** (``cevery_frame@pc``): from a state satisfying ``Inv`` (an unmark load finds
its claim: without ``NI(m)`` its "no claim, stop" branch would drop the claims above), for
every node ``a`` other than ``m`` my contribution
(claims on both sides, occupancy) is the same after the step as before; the step's only
write is ``W[m] := effect(access, W[m])`` (an ``Access`` names one node) and ``m`` is a node
of the tree at or below ``max_level``.

**Local facts** (``local``): hand-written per ``pc``, for the attempt *and* the scan mode
(``left`` between 1 and the level's width: ``Machine.alloc``'s scan with its skip and wrap is
covered, not only ``Machine.attempt``). ``L = level(n)``; ``n`` a node of the tree with
``max_level <= L``; a climb's ``child`` is ``n`` or an ancestor, above ``max_level``, and
at ``C_CAS`` ``cur`` has no ``OCC``; a free has ``top == max_level``; a rollback's ``fail``
is a proper ancestor of ``n`` at or below ``max_level`` and ``top == level(fail) + 1``; an
unmark's ``child`` is ``n`` or an ancestor above ``top``; at ``A_OCC`` ``cur == 0``.

**Another variant** writes its invariant as a ``Shape`` (per-node invariant, local facts,
contribution at a node, which nodes a step's query instantiates ``NI`` at) and reuses
``_frame`` and ``_step`` as they are: ``topdown_every`` does so for ``top-down`` and
``top-down-node``, whose ``NI(a)`` also reads the children's words.

**Bounds.** Counts are ``bits.COUNT_BITS`` (29) bits, the allocator's; ``R`` leaves room
for two more claims (the number of blocks below a child, at most ``2**27``, plus the threads
stay below ``2**29 - 2``), as ``counted_param`` assumes. ``D <= MAX_DEPTH`` (28).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from nbbs.model import bits, steps
from nbbs.model import geometry as g
from nbbs.model.steps import OpState
from nbbs.proofs import counted_steps
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._symexec import explore
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, Z, term, val

MAX_DEPTH = 28
"""``impl.arena.MAX_DEPTH``: the deepest tree the allocator accepts."""

WIDTH = bits.COUNT_BITS
BITS = bits.COUNT_SHIFT + 2 * WIDTH
"""Words, nodes, levels and depths are all ``BITS``-bit vectors (63: one sort, no casts)."""
WIDE = WIDTH + 8

_CLIMBING = (steps.C_LOAD, steps.C_CAS)
_UNMARKING = (steps.F_ULOAD, steps.F_UCAS, steps.R_ULOAD, steps.R_UCAS)
_ALLOC = (steps.A_LOAD, steps.A_OCC, *_CLIMBING, steps.R_RELEASE, steps.R_ULOAD, steps.R_UCAS)
_IDLE = (steps.DONE_FAIL, steps.DONE_FREE)


def bv(x: Any) -> Any:
    """A field as a ``BITS``-bit term (the machine leaves unused fields as the int 0)."""
    return x if z3.is_expr(x) else z3.BitVecVal(x, BITS)


def level(n: Any) -> Any:
    """The level of a symbolic node (``geometry.level_any``)."""
    return g.level_any(bv(n), z3.If, BITS)


def claim_levels(op: OpState, max_level: Any, lvl: Callable[[Any], Any] = level) -> tuple[Any, Any] | None:
    """The levels ``lo .. hi`` of the ancestors of ``op.n`` ``op``'s claim passes through
    (None: it claims nothing); ``counted_steps.claims`` as levels, generic (a test checks the
    two agree on every op state of depths 1-4)."""
    pc = op.pc
    if pc in (steps.DONE_OK, steps.F_RELEASE):
        return max_level, lvl(op.n) - 1
    if pc in _CLIMBING:
        return lvl(op.child), lvl(op.n) - 1
    if pc == steps.R_RELEASE:
        return op.top, lvl(op.n) - 1
    if pc in _UNMARKING:
        return op.top, lvl(op.child) - 1
    return None


def claims_at(op: OpState, a: Any, s: int, max_level: Any) -> Any:
    """``op``'s claim passes through side ``s`` of node ``a`` (a z3 Boolean)."""
    rng = claim_levels(op, max_level)
    if rng is None:
        return z3.BoolVal(False)
    lo, hi = rng
    la = level(a)
    n = bv(op.n)
    return z3.And(
        la >= bv(lo),
        la <= bv(hi),
        g.ancestor_any(n, la, z3.If, BITS) == a,
        bv(g.side(g.ancestor_any(n, la + 1, z3.If, BITS))) == s,
    )


def occupies(op: OpState, a: Any) -> Any:
    """``op``'s thread holds or has occupied ``a`` (``counted_steps.occupier``)."""
    o = counted_steps.occupier(op)
    return z3.BoolVal(False) if not z3.is_expr(o) and o == 0 else bv(o) == a


class World:
    """The symbols of one query: depth, ``max_level``, words, the others' summary, the bundle.

    Words and the others' summary are functions of nodes, used at a few node terms only
    (``a0`` and the accessed node): each use gets a variable and ``congruence`` adds
    "equal nodes, equal values" for every pair (Ackermann's reduction, done here so the
    query stays in ``QF_BV``, the logic ``_z3.solver`` sets up).
    """

    def __init__(self, v: Variant, scan: bool) -> None:
        self.scan = scan
        """Scan mode (``Machine.alloc``: ``left`` up to the level's width, skip and wrap) or
        attempt mode (``Machine.attempt``: ``left == 1``)."""
        self.t = v.at(WIDTH)
        self.depth = z3.BitVec("D", BITS)
        self.max_level = z3.BitVec("max_level", BITS)
        self.m = v.machine(self.depth, self.max_level, self.t)
        self._at: dict[int, tuple[Any, list[Any]]] = {}

    def _vals(self, a: Any) -> list[Any]:
        key = a.get_id()
        if key not in self._at:
            k = len(self._at)
            self._at[key] = (
                a,
                [
                    z3.BitVec(f"W@{k}", BITS),
                    z3.BitVec(f"R_R@{k}", WIDE),
                    z3.BitVec(f"R_L@{k}", WIDE),
                    z3.Bool(f"H@{k}"),
                    z3.Bool(f"S@{k}"),
                    z3.BitVec(f"wit_R@{k}", BITS),
                    z3.BitVec(f"wit_L@{k}", BITS),
                ],
            )
        return self._at[key][1]

    def W(self, a: Any) -> Any:
        """The word at node ``a``."""
        return self._vals(a)[0]

    def R(self, s: int, a: Any) -> Any:
        """The others' total through side ``s`` of ``a`` (claims plus static blocks below)."""
        return self._vals(a)[1 + s]

    def H(self, a: Any) -> Any:
        """Some other thread or a static block holds or occupies ``a``."""
        return self._vals(a)[3]

    def S(self, a: Any) -> Any:
        """``a`` is a static block or another thread's live block (its alloc returned ``a`` and
        its free has not released it: ``DONE_OK`` or ``F_RELEASE``)."""
        return self._vals(a)[4]

    def wit(self, s: int, a: Any) -> Any:
        """A live block of someone else below side ``s`` of ``a`` when ``R_s(a) > 0`` and no other
        operation is in flight (a Skolem function: see ``_meaning``)."""
        return self._vals(a)[5 + s]

    def congruence(self) -> list[Any]:
        items = list(self._at.values())
        out = []
        for i, (a, xs) in enumerate(items):
            for b, ys in items[i + 1 :]:
                out.append(z3.Implies(a == b, z3.And([x == y for x, y in zip(xs, ys, strict=True)])))
        return out

    def bounds(self) -> list[Any]:
        return [self.depth >= 1, self.depth <= MAX_DEPTH, self.max_level >= 0, self.max_level <= self.depth]

    def node(self, a: Any) -> Any:
        """``a`` is a node of the tree."""
        return g.in_tree(a, self.depth, Z)

    def room(self, a: Any, headroom: int = 2) -> list[Any]:
        """The others' totals at ``a`` leave ``headroom`` below the count's bound (``Shape``)."""
        return [z3.ULT(self.R(s, a), (1 << WIDTH) - headroom) for s in (0, 1)]


def _count(w: Any, s: int) -> Any:
    lo = bits.COUNT_SHIFT + s * WIDTH
    return z3.ZeroExt(WIDE - WIDTH, z3.Extract(lo + WIDTH - 1, lo, w))


def ni(wd: World, w: Any, op: OpState, a: Any) -> list[tuple[str, Any]]:
    """``NI(a)`` with word ``w`` at ``a`` and my op state ``op``: named conjuncts."""
    la = level(a)
    mine = occupies(op, a)
    held = wd.H(a)
    occupied = w & bits.OCC != 0
    one, zero = z3.BitVecVal(1, WIDE), z3.BitVecVal(0, WIDE)
    above = la < wd.max_level
    claimed = [claims_at(op, a, s, wd.max_level) for s in (0, 1)]
    r_zero = z3.And(wd.R(0, a) == 0, wd.R(1, a) == 0)
    return [
        (
            "above max_level: zero, unheld, unclaimed",
            z3.Implies(above, z3.And(w == 0, z3.Not(held), z3.Not(mine), r_zero, *map(z3.Not, claimed))),
        ),
        ("OCC iff held or occupied", z3.Implies(z3.Not(above), occupied == z3.Or(held, mine))),
        ("held or occupied by one at most", z3.Not(z3.And(held, mine))),
        ("BUSY or no status bit", z3.If(occupied, w == bits.BUSY, w & ((1 << bits.COUNT_SHIFT) - 1) == 0)),
        ("a page has nothing claimed through it", z3.Implies(la == wd.depth, r_zero)),
        *[
            (
                f"c_{'L' if s else 'R'} = the others' total + my claim",
                _count(w, s) == wd.R(s, a) + z3.If(claimed[s], one, zero),
            )
            for s in (1, 0)
        ],
    ]


def local(wd: World, op: OpState) -> Any:
    """My local facts at ``op`` (see the module docstring): a z3 Boolean."""
    pc, n = op.pc, bv(op.n)
    if pc in _IDLE:
        return z3.BoolVal(True)
    ln = level(n)
    facts = [wd.node(n), ln >= wd.max_level]
    lc = level(op.child)
    child_on_path = z3.And(bv(op.child) >= 1, lc <= ln, g.ancestor_any(n, lc, z3.If, BITS) == bv(op.child))
    if pc in _ALLOC:
        if wd.scan:
            facts += [bv(op.left) >= 1, bv(op.left) <= (z3.BitVecVal(1, BITS) << ln)]
        else:
            facts.append(bv(op.left) == 1)
    if pc == steps.A_OCC:
        facts.append(bv(op.cur) == 0)
    if pc in _CLIMBING:
        facts += [ln > wd.max_level, child_on_path, lc > wd.max_level]
    if pc == steps.C_CAS:
        facts.append(bv(op.cur) & bits.OCC == 0)
    if pc in (steps.F_RELEASE, steps.F_ULOAD, steps.F_UCAS):
        facts.append(bv(op.top) == wd.max_level)
    if pc in (steps.R_RELEASE, steps.R_ULOAD, steps.R_UCAS):
        lf = level(op.fail)
        facts += [
            bv(op.fail) >= 1,
            lf < ln,
            lf >= wd.max_level,
            g.ancestor_any(n, lf, z3.If, BITS) == bv(op.fail),
            bv(op.top) == lf + 1,
        ]
    if pc in (steps.F_RELEASE, steps.R_RELEASE):
        # The release is a CAS from the word this operation's own occupy wrote (release_cas).
        facts.append(bv(op.cur) == wd.m.transitions.occupy(0))
    if pc in _UNMARKING:
        facts += [child_on_path, lc > bv(op.top)]
    known = (steps.DONE_OK, *_ALLOC, steps.F_RELEASE, steps.F_ULOAD, steps.F_UCAS)
    if pc not in known:
        return z3.BoolVal(False)  # a pc this invariant does not know: nothing may reach it
    return z3.And(facts)


def symbolic_op(pc: int, tag: str = "") -> OpState:
    """An op state at ``pc`` whose fields are fresh symbols."""
    f = [z3.BitVec(f"{tag}{name}", BITS) for name in ("n", "child", "top", "cur", "left", "fail")]
    return OpState(pc, *f)


class Move:
    """One possible step of me: hypothesis (path and guard), next op state, accessed node and
    the word it leaves (None for a start: no access), the access."""

    def __init__(self, hyp: Any, nxt: OpState, acc: steps.Access | None, new: Any, label: str) -> None:
        self.hyp, self.nxt, self.acc, self.new, self.label = hyp, nxt, acc, new, label


def moves(wd: World, op: OpState) -> list[Move]:
    """Every step of ``op``: the machine's ``access``/``effect``/``branches`` on every path."""
    out: list[Move] = []
    m = wd.m
    if op.pc in _IDLE:
        x, order, start = z3.BitVecs("start_node order start", BITS)
        attempt = z3.And(wd.node(x), level(x) >= wd.max_level)
        for path, nxt in explore(lambda: m.attempt(x)):
            out.append(Move(z3.And(path, attempt), nxt, None, None, "start: attempt"))
        if wd.scan:
            scan = z3.And(order >= 0, order <= wd.depth - wd.max_level, start >= 0)
            for path, nxt in explore(lambda: m.alloc(order, start)):
                out.append(Move(z3.And(path, scan), nxt, None, None, "start: scan"))
        return out
    if op.pc == steps.DONE_OK:
        for path, nxt in explore(lambda: m.free(op.n)):
            out.append(Move(path, nxt, None, None, "start: free"))
        return out
    for apath, acc in explore(lambda: m.access(op)):
        assert acc is not None
        old = wd.W(acc.node)
        new = bv(steps.effect(acc, old, z3.If))
        for path, branches in explore(functools.partial(m.branches, op, old, Z)):
            for k, (guard, nxt) in enumerate(branches):
                hyp = z3.And(apath, path, term(guard))
                out.append(Move(hyp, nxt, acc, new, f"branch {k} -> {steps.PC_NAMES[nxt.pc]}"))
    return out


def _explain(wd: World, op: OpState, a0: Any, mv_list: list[Move]) -> Callable[[z3.ModelRef], str]:
    t = wd.t

    def explain(m: z3.ModelRef) -> str:
        lines = [f"  depth {val(m, wd.depth)}, max_level {val(m, wd.max_level)}"]

        def desc(o: OpState) -> str:
            parts = [steps.PC_NAMES[o.pc]]
            for name in ("n", "child", "top", "left", "fail"):
                parts.append(f"{name}={val(m, bv(getattr(o, name)))}")
            parts.append(f"cur={t.show(val(m, bv(o.cur)))}")
            return " ".join(parts)

        lines.append(f"  me before: {desc(op)}")
        for mv in mv_list:
            if z3.is_true(m.eval(mv.hyp, model_completion=True)):
                lines.append(f"  step ({mv.label}): me after: {desc(mv.nxt)}")
                if mv.acc is not None:
                    node = val(m, bv(mv.acc.node))
                    lines.append(
                        f"    {mv.acc.kind} on node {node}: {t.show(val(m, wd.W(mv.acc.node)))}"
                        f" -> {t.show(val(m, mv.new))}"
                    )
        x = val(m, a0)
        lines.append(
            f"  node a0 = {x} (level {val(m, level(a0))}): word {t.show(val(m, wd.W(a0)))}, "
            f"others: R_L={val(m, wd.R(1, a0))} R_R={val(m, wd.R(0, a0))} held={val(m, wd.H(a0))}"
        )
        return "\n".join(lines)

    return explain


@functools.cache
def _built(v: Variant, pc: int, scan: bool) -> tuple[World, OpState, Any, list[Move]]:
    wd = World(v, scan)
    op = symbolic_op(pc)
    a0 = z3.BitVec("a0", BITS)
    return wd, op, a0, moves(wd, op)


# -- what a variant writes: its invariant (the prover below is shared) ----------------------------

Words = Callable[[Any], Any]
"""The word at each node (``World.W``, or the words after a step)."""


@dataclass(frozen=True)
class Shape:
    """A variant's every-depth invariant: the pieces a new variant writes; the step (the
    machine's own code), the queries and the encoding are shared (``counted``'s is ``COUNTED_SHAPE``;
    ``topdown_every`` writes ``top-down``'s).

    ``ni(wd, W, op, a)``: the per-node invariant at ``a`` as named conjuncts, with words ``W``
    and my op state ``op``; ``local(wd, op)``: my local facts; ``share(op, a, max_level)``: my
    contribution at ``a`` (terms compared before and after a step by the frame);
    ``instances(m)``: the nodes besides ``a0`` whose ``NI`` a step accessing ``m`` assumes
    (the finite instantiation); ``touched(m)``: the nodes where such a step may change my
    contribution, named by ``where`` in the frame's claim."""

    ni: Callable[[World, Words, OpState, Any], list[tuple[str, Any]]]
    local: Callable[[World, OpState], Any]
    share: Callable[[OpState, Any, Any], list[Any]]
    instances: Callable[[Any], list[Any]]
    touched: Callable[[Any], list[Any]]
    where: str = "the accessed node"
    headroom: int = 2
    """``R < 2**WIDTH - headroom`` at every node: room for what the node's own terms and one
    more write add (``counted``: my claim and the climb's; ``R`` counts at most the pages below
    plus the threads)."""
    rank: Callable[[OpState, Any], Any] | None = None
    """Lock-freedom: an upper bound on the successful writes the current attempt (or free) may
    still make, lowered by every step but a failed CAS (``attempt_rank`` for ``counted``)."""
    attempt_writes: Callable[[Any, Any], Any] | None = None
    """The successful writes of one attempt at a node of level ``L`` at most, as a function of
    ``(L, max_level)`` (``2 (L - max_level) + 2`` for ``counted``); ``attempt_text`` says it."""
    attempt_text: str = "2 (L - max_level) + 2"
    contributes: Callable[[OpState, Any, int, Any], Any] | None = None
    """My share of side ``s``'s count at ``a`` (``contributes(op, a, s, max_level)``), what the
    others' fold adds per thread (``counted_close.Summary``); None: ``claims_at``."""
    occupant: Callable[[OpState, Any], Any] | None = None
    """``op``'s thread holds or has occupied ``a``; None: ``occupies``."""
    mu_shift: int = 6
    """The global lock-freedom measure folds ``(left, rank)`` into ``left * 2**mu_shift + rank``
    (``rank < 2**mu_shift`` is checked)."""
    fail_loads: tuple[int, ...] = (steps.C_LOAD,)
    """The loads whose "occupied" branch (into the rollback) decides that the attempt fails."""
    meaning: Callable[[World, list[tuple[Any, Any]], list[Any], Any], list[Any]] | None = None
    """What ``R``, ``H``, ``S`` mean about the other threads, as premises of the linearization
    and skip queries (``meaning(wd, pairs, nodes, others)``); None: ``_meaning``."""
    witnesses: Callable[[World, Any, Any], list[Any]] | None = None
    """A failed attempt at ``n`` deciding at node ``m``: the ways a live block may overlap ``n``
    (one must hold unless another operation is in flight); None: ``m`` itself or a ``wit``."""
    lin_facts: Callable[[World, OpState, Move, Any, Any], list[Any]] | None = None
    """Extra premises of the linearization query for one step (``lin_facts(wd, op, move, a0,
    others)``): instances of lemmas proved elsewhere (``topdown_close``)."""

    def claims(self, op: OpState, a: Any, s: int, ml: Any) -> Any:
        """My share of side ``s``'s count at ``a``."""
        return (self.contributes or claims_at)(op, a, s, ml)

    def occupies(self, op: OpState, a: Any) -> Any:
        """``op``'s thread holds or has occupied ``a``."""
        return (self.occupant or occupies)(op, a)


def _share(op: OpState, a: Any, ml: Any) -> list[Any]:
    return [occupies(op, a), *[claims_at(op, a, s, ml) for s in (0, 1)]]


COUNTED_SHAPE = Shape(
    ni=lambda wd, w, op, a: ni(wd, w(a), op, a),
    local=lambda wd, op: local(wd, op),
    share=_share,
    instances=lambda m: [m],
    touched=lambda m: [m],
)
"""``counted``'s: a count is the claims through a side, so a node's ``NI`` reads its own word."""


def _premises(wd: World, op: OpState, a0: Any, mvs: list[Move], shape: Shape = COUNTED_SHAPE) -> list[Any]:
    """The bounds, my local facts, ``Inv`` at ``a0`` and at the nodes each access needs (the
    finite instantiation), and the congruence of the node-indexed values (call last)."""
    nodes = [a0] + [x for mv in mvs if mv.acc is not None for x in shape.instances(mv.acc.node)]
    prem = [*wd.bounds(), shape.local(wd, op), wd.node(a0)]
    for a in nodes:
        prem += [z3.Implies(wd.node(a), z3.And([c for _, c in shape.ni(wd, wd.W, op, a)]))]
        prem += wd.room(a, shape.headroom)
    return prem + wd.congruence()


def _after(wd: World, mv: Move) -> Words:
    """The words after ``mv``: its access writes ``mv.new`` at its node, nothing else."""
    if mv.acc is None:
        return wd.W
    m, new = mv.acc.node, mv.new
    return lambda x: z3.If(x == m, new, wd.W(x))


def _step(v: Variant, pc: int, scan: bool = False, shape: Shape = COUNTED_SHAPE) -> Query:
    wd, op, a0, mvs = _built(v, pc, scan)
    claims: list[tuple[str, Any]] = []
    for mv in mvs:
        claims.append(
            (f"{mv.label}: my local facts hold after it", z3.Implies(mv.hyp, shape.local(wd, mv.nxt)))
        )
        for name, c in shape.ni(wd, _after(wd, mv), mv.nxt, a0):
            claims.append((f"{mv.label}: at every node: {name}", z3.Implies(z3.And(mv.hyp, wd.node(a0)), c)))
    # The premises last: their congruence must cover every node the claims read a word at.
    prem = _premises(wd, op, a0, mvs, shape)
    cases = [("some step applies", z3.Or([mv.hyp for mv in mvs]))]
    return Query(prem, claims, _explain(wd, op, a0, mvs), (), cases, split=True)


def _frame(v: Variant, pc: int, scan: bool = False, shape: Shape = COUNTED_SHAPE) -> Query:
    wd, op, a0, mvs = _built(v, pc, scan)
    claims: list[tuple[str, Any]] = []
    for mv in mvs:
        if mv.acc is not None:
            m = mv.acc.node
            claims.append(
                (
                    f"{mv.label}: the accessed node is a node of the tree at or below max_level",
                    z3.Implies(mv.hyp, z3.And(wd.node(m), level(m) >= wd.max_level)),
                )
            )
            elsewhere = z3.And(mv.hyp, wd.node(a0), *[a0 != x for x in shape.touched(m)])
        else:
            elsewhere = z3.And(mv.hyp, wd.node(a0))
        before, after = shape.share(op, a0, wd.max_level), shape.share(mv.nxt, a0, wd.max_level)
        same = z3.And([x == y for x, y in zip(before, after, strict=True)])
        claims.append(
            (f"{mv.label}: my contribution changes only at {shape.where}", z3.Implies(elsewhere, same))
        )
    cases = [("some step applies", z3.Or([mv.hyp for mv in mvs]))]
    return Query(_premises(wd, op, a0, mvs, shape), claims, _explain(wd, op, a0, mvs), (), cases, split=False)


def below_side(b: Any, a: Any, s: int) -> Any:
    """``b`` lies strictly below side ``s`` of ``a``."""
    la = level(a)
    return z3.And(
        level(b) > la,
        g.ancestor_any(b, la, z3.If, BITS) == a,
        bv(g.side(g.ancestor_any(b, la + 1, z3.If, BITS))) == s,
    )


def _safe(v: Variant) -> Query:
    """``Inv`` implies no two held blocks overlap, for every depth (``csteps_safe``'s claim)."""
    wd = World(v, scan=False)
    op = symbolic_op(steps.DONE_OK)
    a, b = z3.BitVecs("a b", BITS)

    def held(x: Any) -> Any:
        return z3.Or(wd.S(x), bv(op.n) == x)

    prem = [*wd.bounds(), local(wd, op), wd.node(a), wd.node(b)]
    for x in (a, b):
        prem += [z3.And([c for _, c in ni(wd, wd.W(x), op, x)]), *wd.room(x), z3.Implies(wd.S(x), wd.H(x))]
    # What R means: a static or held block below side s of a node at or below max_level is
    # counted there (a static block in c_s's "static blocks below", a held one by its claim,
    # which covers its whole path to max_level: ``claims`` at DONE_OK).
    prem += [
        z3.Implies(z3.And(wd.S(b), below_side(b, a, s), level(a) >= wd.max_level), wd.R(s, a) >= 1)
        for s in (0, 1)
    ]
    prem += wd.congruence()
    overlap = z3.And(held(a), held(b), level(a) < level(b), g.ancestor_any(b, level(a), z3.If, BITS) == a)

    def explain(m: z3.ModelRef) -> str:
        return (
            "\n".join(
                f"  node {val(m, x)} (level {val(m, level(x))}): word {wd.t.show(val(m, wd.W(x)))}, "
                f"static or held by another: {val(m, wd.S(x))}, "
                f"R_L={val(m, wd.R(1, x))} R_R={val(m, wd.R(0, x))}"
                for x in (a, b)
            )
            + f"\n  me: done:ok n={val(m, bv(op.n))}"
        )

    return Query(prem, [("no two held blocks overlap", z3.Not(overlap))], explain)


def pcs(v: Variant) -> list[int]:
    """The program counters a thread reaches (``counted_steps``' exploration at depth 3, where
    every pc of the attempt-mode machine appears)."""
    return counted_steps.pcs(v, 3, 2)


def obligations(scan: bool = False) -> list[Obligation]:
    """Per pc: ``cevery_frame@pc`` and ``cevery_inv@pc`` (every depth, any number of threads),
    in attempt mode, or with ``scan`` for ``Machine.alloc``'s scan (``cevery_scan_*``)."""
    from nbbs.proofs._variant import COUNTED

    out = []
    prefix = "cevery_scan" if scan else "cevery"
    mode = "scan" if scan else "attempt"
    if not scan:
        out.append(
            Obligation(
                "cevery_safe",
                "every",
                None,
                "any depth, any number of threads: Inv implies no two held blocks overlap",
                _safe,
            )
        )
    for pc in pcs(COUNTED):
        name = steps.PC_NAMES[pc]
        out.append(
            Obligation(
                f"{prefix}_frame@{name}",
                "every",
                None,
                f"any depth ({mode}): a step at {name} changes its thread's share only where it accesses",
                functools.partial(_frame, pc=pc, scan=scan),
            )
        )
        out.append(
            Obligation(
                f"{prefix}_inv@{name}",
                "every",
                None,
                f"any depth, any number of threads ({mode}): a step at {name} preserves Inv at every node",
                functools.partial(_step, pc=pc, scan=scan),
            )
        )
    return out


# -- lock-freedom -------------------------------------------------------------------------------
#
# Per step, in the same encoding: a *rank* bounds the successful writes an operation has left;
# with ``stw`` (1 at a load, 0 at a write access) the pair (rank, stw) decreases
# lexicographically at every step but a failed CAS; a CAS expects exactly the word its own
# previous step (a load of the same node) returned. So a thread's steps are finite unless it
# fails CASes, a failed CAS means another operation wrote that word since the load, and each
# operation writes a bounded number of times: in any run where no operation completes, the
# operations in flight (one per thread) write finitely often, so their CASes eventually stop
# failing and some operation completes. That last paragraph is the (standard) argument on
# paper; every fact it uses is one of the claims below.


def _attempt_writes(ln: Any, ml: Any) -> Any:
    return 2 * (ln - ml) + 2


def _attempt_budget(op: OpState, ml: Any, shape: Shape | None = None) -> Any:
    """The successful writes one attempt at ``op.n`` may make (``counted``: occupy, a climb per
    level up to ``max_level``, and a rollback: release and an unmark per level it climbed)."""
    writes = (shape.attempt_writes if shape and shape.attempt_writes else None) or _attempt_writes
    return writes(level(op.n), ml)


def attempt_rank(op: OpState, ml: Any) -> Any:
    """An upper bound on the successful writes ``op``'s current attempt (or free) still makes."""
    pc = op.pc
    ln = level(op.n)
    if pc in _IDLE or pc == steps.DONE_OK:
        return z3.BitVecVal(0, BITS)
    if pc in (steps.A_LOAD, steps.A_OCC):
        return _attempt_budget(op, ml)
    if pc in _CLIMBING:
        return (level(op.child) - ml) + 1 + (ln - ml)
    if pc in (steps.F_RELEASE, steps.R_RELEASE):
        return 1 + ln - bv(op.top)
    if pc in _UNMARKING:
        return level(op.child) - bv(op.top)
    return z3.BitVecVal(-1, BITS)  # unknown pc: the claim "not negative" fails


def measure(op: OpState, ml: Any, shape: Shape | None = None) -> tuple[Any, Any]:
    """(nodes the scan may still visit, the attempt's rank), compared lexicographically: an alloc
    makes at most ``left`` attempts of at most ``2 (L - max_level) + 2`` successful writes each
    (a product z3 would have to bit-blast as a 63-bit multiplier, hence the pair)."""
    left = bv(op.left) if steps.is_alloc(op) else z3.BitVecVal(0, BITS)
    rank = shape.rank if shape is not None and shape.rank is not None else attempt_rank
    return left, rank(op, ml)


def _below(x: tuple[Any, Any], y: tuple[Any, Any]) -> Any:
    return z3.Or(x[0] < y[0], z3.And(x[0] == y[0], x[1] < y[1]))


def _is_load(wd: World, op: OpState) -> Any:
    if steps.is_done(op):
        return z3.BoolVal(False)
    kinds = {acc.kind for _, acc in explore(lambda: wd.m.access(op)) if acc is not None}
    return z3.BoolVal(kinds == {steps.Kind.LOAD})


def bound_alloc(wd: World, shape: Shape | None = None) -> Any:
    """Successful writes of one alloc attempt at most: ``2 * (depth - max_level) + 2`` (or the
    shape's ``attempt_writes`` at the deepest level)."""
    writes = (shape.attempt_writes if shape and shape.attempt_writes else None) or _attempt_writes
    return writes(wd.depth, wd.max_level)


def bound_free(wd: World) -> Any:
    """Successful writes of one free at most: ``depth - max_level + 1``."""
    return wd.depth - wd.max_level + 1


def bound_scan(wd: World, order: Any) -> Any:
    """Successful writes of one scan of order ``order`` at most:
    ``2**(depth - order) * (2 * (depth - order - max_level) + 2)``."""
    lvl = wd.depth - order
    return (z3.BitVecVal(1, BITS) << lvl) * (2 * (lvl - wd.max_level) + 2)


def _lock_free(v: Variant, pc: int, scan: bool = False, shape: Shape = COUNTED_SHAPE) -> Query:
    wd, op, a0, mvs = _built(v, pc, scan)
    ml = wd.max_level
    r0 = measure(op, ml, shape)
    claims: list[tuple[str, Any]] = [("the measure is not negative", z3.And(r0[0] >= 0, r0[1] >= 0))]
    if pc in _ALLOC:
        claims.append(
            (
                f"an attempt makes at most {shape.attempt_text} successful writes",
                r0[1] <= _attempt_budget(op, ml, shape),
            )
        )
    load0 = _is_load(wd, op)
    for mv in mvs:
        r1 = measure(mv.nxt, ml, shape)
        if mv.acc is None:
            if op.pc == steps.DONE_OK:
                within = z3.And(r1[0] == 0, r1[1] <= bound_free(wd))
            elif mv.label == "start: scan":
                lvl = wd.depth - z3.BitVec("order", BITS)
                writes = shape.attempt_writes or _attempt_writes
                within = z3.And(r1[0] <= (z3.BitVecVal(1, BITS) << lvl), r1[1] <= writes(lvl, ml))
            else:
                within = z3.And(r1[0] == 1, r1[1] <= bound_alloc(wd, shape))
            claims.append(
                (f"{mv.label}: the new operation's measure is within its bound", z3.Implies(mv.hyp, within))
            )
            continue
        acc, old = mv.acc, wd.W(mv.acc.node)
        kind = acc.kind
        wrote = z3.BoolVal(kind != steps.Kind.LOAD)
        if kind == steps.Kind.CAS:
            wrote = old == acc.a
        failed_cas = z3.And(z3.BoolVal(kind == steps.Kind.CAS), z3.Not(wrote))
        load1 = _is_load(wd, mv.nxt)
        same = z3.And(r1[0] == r0[0], r1[1] == r0[1])
        lex = z3.Or(_below(r1, r0), z3.And(same, load0, z3.Not(load1)))
        claims += [
            (
                f"{mv.label}: a word changes only by a successful write",
                z3.Implies(mv.hyp, z3.Or(wrote, mv.new == old)),
            ),
            (
                f"{mv.label}: a successful write lowers the measure",
                z3.Implies(z3.And(mv.hyp, wrote), _below(r1, r0)),
            ),
            (
                f"{mv.label}: every step but a failed CAS lowers (measure, load)",
                z3.Implies(z3.And(mv.hyp, z3.Not(failed_cas)), lex),
            ),
        ]
        if kind == steps.Kind.LOAD and not steps.is_done(mv.nxt):
            for path, nacc in explore(functools.partial(wd.m.access, mv.nxt)):
                if nacc is not None and nacc.kind == steps.Kind.CAS and mv.nxt.pc == steps.R_RELEASE:
                    # A rollback's release (a CAS since ``release_cas``) follows the climb's load
                    # of the occupied ancestor: it expects no loaded word but the one its own
                    # occupy wrote into its own candidate, which no other operation changes.
                    claims.append(
                        (
                            f"{mv.label}: the rollback's release CAS is at its own candidate and "
                            "expects the word its occupy wrote",
                            z3.Implies(
                                z3.And(mv.hyp, path),
                                z3.And(nacc.node == bv(op.n), bv(nacc.a) == wd.m.transitions.occupy(0)),
                            ),
                        )
                    )
                elif nacc is not None and nacc.kind == steps.Kind.CAS:
                    claims.append(
                        (
                            f"{mv.label}: the CAS after a load is at its node and expects the loaded word",
                            z3.Implies(
                                z3.And(mv.hyp, path), z3.And(nacc.node == acc.node, bv(nacc.a) == old)
                            ),
                        )
                    )
    cases = [("some step applies", z3.Or([mv.hyp for mv in mvs]))]
    return Query(_premises(wd, op, a0, mvs, shape), claims, _explain(wd, op, a0, mvs), (), cases, split=True)


def lf_obligations(scan: bool = False) -> list[Obligation]:
    """Per pc: ``cevery_lockfree@pc`` (every depth), attempt mode or (``scan``) scan mode."""
    from nbbs.proofs._variant import COUNTED

    prefix = "cevery_scan" if scan else "cevery"
    return [
        Obligation(
            f"{prefix}_lockfree@{steps.PC_NAMES[pc]}",
            "every",
            None,
            f"any depth: a step at {steps.PC_NAMES[pc]} lowers the write budget unless a CAS failed",
            functools.partial(_lock_free, pc=pc, scan=scan),
        )
        for pc in pcs(COUNTED)
    ]


# -- linearizability, every depth ------------------------------------------------------------
#
# The abstract state ``A`` (``counted_lin``'s): the static blocks and every thread's live block
# (at ``DONE_OK``, or at ``F_RELEASE``: its free has not taken effect). Here ``A(a) = S(a) or
# live(me, a)``, with ``O`` "another operation is in flight" (another thread at a pc other than
# idle and ``DONE_OK``). What ``R``, ``H`` and ``S`` mean about the other threads, used as
# premises (``_meaning``; the definitions, argued by hand as the composition is):
#   S(x) => H(x)                                   a live block is held or occupied
#   S(b), b below side s of a, a at/below max_level => R_s(a) >= 1   (its claim or static count)
#   not O, R_s(a) >= 1 => wit_s(a) is live for someone else and lies below side s of a
#   not O, H(a) => S(a)                            nobody in flight: an occupied node is live


def live(op: OpState, a: Any, point: str = "release") -> Any:
    """``a`` is ``op``'s thread's live block (``point``: where a free takes effect,
    ``counted_lin.FREE_POINTS``)."""
    from nbbs.proofs.counted_lin import FREE_POINTS

    if op.pc in FREE_POINTS[point]:
        return bv(op.n) == a
    return z3.BoolVal(False)


def _meaning(wd: World, pairs: list[tuple[Any, Any]], at: list[Any], others: Any) -> list[Any]:
    out = [z3.Implies(wd.S(x), wd.H(x)) for x in at]
    for a, b in pairs:
        out += [
            z3.Implies(z3.And(wd.S(b), below_side(b, a, s), level(a) >= wd.max_level), wd.R(s, a) >= 1)
            for s in (0, 1)
        ]
    for a in at:
        out += [
            z3.Implies(
                z3.And(z3.Not(others), wd.R(s, a) >= 1),
                z3.And(wd.S(wd.wit(s, a)), below_side(wd.wit(s, a), a, s), wd.node(wd.wit(s, a))),
            )
            for s in (0, 1)
        ]
        out.append(z3.Implies(z3.And(z3.Not(others), wd.H(a)), wd.S(a)))
    return out


def _overlaps(a: Any, b: Any) -> Any:
    return z3.Or(
        g.is_ancestor_any(a, b, Z, z3.If, BITS),
        g.is_ancestor_any(b, a, Z, z3.If, BITS),
    )


def _witnesses(wd: World, m: Any, n: Any) -> list[Any]:
    """``counted``'s: the node found taken is live, or a live block below one of its sides."""
    return [z3.And(wd.S(m), _overlaps(m, n))] + [
        z3.And(wd.S(wd.wit(s, m)), _overlaps(wd.wit(s, m), n)) for s in (0, 1)
    ]


def _lin(
    v: Variant, pc: int, point: str = "release", scan: bool = False, shape: Shape | None = None
) -> Query:
    shape = shape or COUNTED_SHAPE
    wd, op, a0, mvs = _built(v, pc, scan)
    others = z3.Bool("another_op_in_flight")
    n = bv(op.n)
    claims: list[tuple[str, Any]] = []
    accessed = [mv.acc.node for mv in mvs if mv.acc is not None]
    for mv in mvs:
        before = z3.Or(wd.S(a0), live(op, a0, point))
        after = z3.Or(wd.S(a0), live(mv.nxt, a0, point))
        ends_ok = mv.nxt.pc == steps.DONE_OK and steps.is_alloc(op)
        released = pc == steps.F_RELEASE and mv.nxt.pc != steps.F_RELEASE
        if ends_ok:
            claims += [
                (
                    f"{mv.label}: the alloc's point: spec allows n (no live block overlaps it)",
                    z3.Implies(z3.And(mv.hyp, _overlaps(a0, n)), z3.Not(before)),
                ),
                (
                    f"{mv.label}: the alloc's point: A gains exactly n",
                    z3.Implies(mv.hyp, after == z3.Or(before, a0 == n)),
                ),
            ]
        elif released:
            claims += [
                (f"{mv.label}: the free's point: n was live", z3.Implies(mv.hyp, live(op, n, point))),
                (
                    f"{mv.label}: the free's point: A loses exactly n",
                    z3.Implies(mv.hyp, after == z3.And(before, a0 != n)),
                ),
            ]
        else:
            claims.append((f"{mv.label}: A is unchanged", z3.Implies(mv.hyp, after == before)))
        decides_fail = steps.is_alloc(op) and (
            (pc in (steps.A_LOAD, steps.A_OCC) and mv.nxt.pc in (*_IDLE, steps.A_LOAD))
            or (pc in shape.fail_loads and mv.nxt.pc == steps.R_RELEASE)
        )
        if decides_fail and mv.acc is not None:
            m = mv.acc.node
            witnesses = (shape.witnesses or _witnesses)(wd, m, n)
            claims.append(
                (
                    f"{mv.label}: a failed alloc's None is allowed (a live block overlaps n, or contention)",
                    z3.Implies(mv.hyp, z3.Or(others, *witnesses)),
                )
            )
    prem = [*wd.bounds(), shape.local(wd, op), wd.node(a0)]
    for a in [a0, n, *accessed]:
        prem += [
            z3.Implies(wd.node(a), z3.And([c for _, c in shape.ni(wd, wd.W, op, a)])),
            *wd.room(a, shape.headroom),
        ]
    prem += (shape.meaning or _meaning)(wd, [(n, a0)], [a0, n, *accessed], others)
    if shape.lin_facts is not None:
        for mv in mvs:
            prem += shape.lin_facts(wd, op, mv, a0, others)
    prem += wd.congruence()
    cases = [("some step applies", z3.Or([mv.hyp for mv in mvs]))]
    return Query(prem, claims, _explain(wd, op, a0, mvs), (), cases, split=True)


def lin_obligations(scan: bool = False) -> list[Obligation]:
    """Per pc: ``cevery_lin@pc`` (every depth, any number of threads), attempt mode or (``scan``)
    scan mode, where every node the scan leaves behind (a failed load or occupy, an ancestor
    found occupied) is justified the same way as an attempt's ``None``."""
    from nbbs.proofs._variant import COUNTED

    prefix = "cevery_scan" if scan else "cevery"
    return [
        Obligation(
            f"{prefix}_lin@{steps.PC_NAMES[pc]}",
            "every",
            None,
            f"any depth: a step at {steps.PC_NAMES[pc]} is its operation's linearization point exactly "
            "when it changes the abstract state, and a legal one",
            functools.partial(_lin, pc=pc, scan=scan),
        )
        for pc in pcs(COUNTED)
    ]
