"""Per-node lemmas of ``counted`` for a node of any level, at the allocator's count width.

No depth, no level, no number of threads: a node's word ``w``, its side ``s`` (the side of a
symbolic node), and symbolic totals. Everything is checked on ``bits.COUNT_BITS``-bit counts
(the words the allocator runs), so the lemmas speak about every tree up to
``impl``'s ``MAX_DEPTH`` and about any number of threads that keeps a count below
``2**COUNT_BITS - 1`` (a side counts at most ``2**27`` pages plus one claim per thread).

``cparam_local_global``: the induction step from children to parent of "each side's count is
the number of blocks below that child, no block lies under a block, a subtree holds at most
as many blocks as pages"; with the leaf case (a page holds ``[OCC]`` blocks) this gives
``ctree_local_global`` for every depth.

The step lemmas are the rely-guarantee argument of the step-level invariant
(``counted_steps``) per node and side. ``NI(w, nL, nR, held)``, the node's share of ``Inv``,
says: ``OCC(w)`` iff ``held`` (the node is held or occupied by someone), a held node is
``BUSY``, otherwise no status bit, and ``c_L(w) == nL``, ``c_R(w) == nR``, where ``nL``,
``nR`` are the static blocks below plus the claims through that side. A step of one thread
writes one word ``w[a]`` and changes only its own contribution at ``a`` (``counted_steps``'
``claims``/``occupier``; checked by ``cparam_frame`` per depth). So ``Inv`` is preserved if,
for every access kind, with the *other* threads' and the static blocks' contribution a
symbolic ``R`` (per side) that the step does not change:

* ``cparam_climb``: a climb CAS through side ``s`` by a thread not yet claiming ``a``, with
  ``cur`` no block (its local fact): ``NI(w, R_s, R_o, h)`` and success give
  ``NI(climb(cur, s), R_s + 1, R_o, h)``; on failure nothing changes;
* ``cparam_unmark``: an unmark load by a claiming thread finds its side nonzero (so it never
  stops early), and the CAS: ``NI(w, R_s + 1, R_o, h)`` gives ``NI(unmark(cur, s), R_s, R_o, h)``;
* ``cparam_occupy``: occupy with ``cur == 0`` (its local fact, from the load): success needs
  the node free and unclaimed (``R = 0``, not held) and gives ``NI(BUSY, 0, 0, held)``; the
  load's check holds only on zero;
* ``cparam_release``: the occupier's release of a held ``NI(w, R_L, R_R, held)`` finds both
  totals zero and the word its CAS expects (``BUSY``: it cannot fail) and leaves
  ``NI(0, 0, 0, not held)``;
* ``cparam_climb_load``: a climb load at a held node sees ``OCC`` (the climb fails there and
  rolls back: no claim is taken through a block), at an unheld one does not.

Together: for every depth and every number of threads, a step preserves ``Inv`` at the node
it writes (z3, here) and at every other node (nothing there changes: the frame). What is not
z3-checked for every depth: the frame (per op state: z3-free enumeration at the depths
``cparam_frame`` runs; for every depth it follows from the definition of ``claims``, which
moves one level per successful CAS) and the composition (``Inv`` is the conjunction of the
nodes' ``NI`` plus the threads' local facts; an argument on paper, checked whole by z3 at
the depths ``csteps_*`` run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import bits, steps
from nbbs.model import geometry as g
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, Z, as_shift, term, val

WIDTH = bits.COUNT_BITS
WORD = bits.COUNT_SHIFT + 2 * WIDTH
WIDE = WIDTH + 8
"""Totals and block counts are compared in a wider bit-vector, so they cannot wrap there."""

_W = z3.BitVec("w", WORD)
_CUR = z3.BitVec("cur", WORD)
_NODE = z3.BitVec("node", WORD)
_S = as_shift(g.side(_NODE), WORD)


def _count(w: Any, s: int) -> Any:
    lo = bits.COUNT_SHIFT + s * WIDTH
    return z3.ZeroExt(WIDE - WIDTH, z3.Extract(lo + WIDTH - 1, lo, w))


def _low(w: Any) -> Any:
    return z3.Extract(bits.COUNT_SHIFT - 1, 0, w)


def ni(w: Any, n_left: Any, n_right: Any, held: Any) -> Any:
    """The node's share of the step-level invariant (totals as ``WIDE``-bit vectors)."""
    occupied = w & bits.OCC != 0
    return z3.And(
        occupied == held,
        z3.If(held, w == bits.BUSY, _low(w) == 0),
        _count(w, 1) == n_left,
        _count(w, 0) == n_right,
    )


def _sided(s: Any, mine: Any, theirs: Any) -> tuple[Any, Any]:
    """(left total, right total) when side ``s`` has ``mine`` and the other side ``theirs``."""
    return z3.If(s == 1, mine, theirs), z3.If(s == 1, theirs, mine)


def _room(*totals: Any) -> list[Any]:
    """Each total leaves room for one more claim (the count bound of the module docstring)."""
    return [z3.ULT(x, (1 << WIDTH) - 1) for x in totals]


def _explain(names: list[tuple[str, Any]]) -> Callable[[z3.ModelRef], str]:
    t = bits.counted(WIDTH)

    def explain(m: z3.ModelRef) -> str:
        lines = []
        for name, x in names:
            v = val(m, x)
            lines.append(f"  {name} = {t.show(v) if x.size() == WORD and x is not _S else v}")
        return "\n".join(lines)

    return explain


def _transitions(v: Variant) -> bits.Transitions:
    return v.at(WIDTH)


_R_S = z3.BitVec("R_s", WIDE)
_R_O = z3.BitVec("R_o", WIDE)
_HELD = z3.Bool("held")
_SHOWN = [("w", _W), ("cur", _CUR), ("side", _S), ("R (own side)", _R_S), ("R (other side)", _R_O)]


def _climb(v: Variant) -> Query:
    t = _transitions(v)
    pre = ni(_W, *_sided(_S, _R_S, _R_O), _HELD)
    post = ni(t.climb(_CUR, _S), *_sided(_S, _R_S + 1, _R_O), _HELD)
    return Query(
        [pre, _CUR & bits.OCC == 0, *_room(_R_S)],
        [
            ("a successful climb CAS adds exactly this thread's claim", z3.Implies(_W == _CUR, post)),
            ("the node climbed through is no block", z3.Implies(_W == _CUR, z3.Not(_HELD))),
        ],
        _explain(_SHOWN),
        cases=[("the CAS succeeds", _W == _CUR)],
    )


def _unmark(v: Variant) -> Query:
    t = _transitions(v)
    pre = ni(_W, *_sided(_S, _R_S + 1, _R_O), _HELD)
    post = ni(t.unmark(_CUR, _S), *_sided(_S, _R_S, _R_O), _HELD)
    return Query(
        [pre, *_room(_R_S)],
        [
            ("the unmark load finds its side claimed (never stops early)", t.unmark_applies(_W, _S)),
            ("a successful unmark CAS removes exactly this thread's claim", z3.Implies(_W == _CUR, post)),
        ],
        _explain(_SHOWN),
        cases=[("the CAS succeeds", _W == _CUR)],
    )


def _occupy(v: Variant) -> Query:
    t = _transitions(v)
    r_l, r_r = z3.BitVec("R_L", WIDE), z3.BitVec("R_R", WIDE)
    pre = ni(_W, r_l, r_r, _HELD)
    return Query(
        [pre],
        [
            ("the load's check holds only on zero", t.is_free(_W) == (_W == 0)),
            (
                "a successful occupy (cur == 0) finds the node unheld and unclaimed",
                z3.Implies(_W == 0, z3.And(z3.Not(_HELD), r_l == 0, r_r == 0)),
            ),
            (
                "and leaves it held, BUSY, unclaimed",
                ni(t.occupy(z3.BitVecVal(0, WORD)), z3.BitVecVal(0, WIDE), z3.BitVecVal(0, WIDE), True),
            ),
        ],
        _explain([("w", _W), ("R_L", r_l), ("R_R", r_r)]),
        cases=[("the CAS succeeds", _W == 0)],
    )


def _release(v: Variant) -> Query:
    t = _transitions(v)
    r_l, r_r = z3.BitVec("R_L", WIDE), z3.BitVec("R_R", WIDE)
    pre = ni(_W, r_l, r_r, z3.BoolVal(True))
    return Query(
        [pre],
        [
            ("nothing is claimed through a held node", z3.And(r_l == 0, r_r == 0)),
            # The release is a CAS expecting occupy's word (the occupier's cur): it succeeds.
            ("a held node's word is the one the release CAS expects", t.occupy(_W & 0) == _W),
            ("release leaves it unheld and unclaimed", ni(t.release(_W), r_l, r_r, z3.BoolVal(False))),
        ],
        _explain([("w", _W), ("R_L", r_l), ("R_R", r_r)]),
    )


def _climb_load(v: Variant) -> Query:
    t = _transitions(v)
    r_l, r_r = z3.BitVec("R_L", WIDE), z3.BitVec("R_R", WIDE)
    pre = ni(_W, r_l, r_r, _HELD)
    return Query(
        [pre],
        [("the climb load sees OCC exactly at a held node", t.is_occupied(_W) == _HELD)],
        _explain([("w", _W), ("R_L", r_l), ("R_R", r_r)]),
    )


def _local_global(v: Variant) -> Query:
    t = _transitions(v)
    assert t.node_ok is not None
    wl, wr = z3.BitVec("w_left", WORD), z3.BitVec("w_right", WORD)
    b_l, b_r = z3.BitVec("blocks_left", WIDE), z3.BitVec("blocks_right", WIDE)
    pages = z3.BitVec("pages_of_a_child", WIDE)  # of each child: the children have one level

    def one(x: Any) -> Any:
        return z3.If(x & bits.OCC != 0, z3.BitVecVal(1, WIDE), z3.BitVecVal(0, WIDE))

    def hypothesis(wc: Any, b: Any) -> Any:
        """A child (inner, or a page with no counts) whose subtree holds ``b`` blocks."""
        return z3.And(
            b == one(wc) + _count(wc, 1) + _count(wc, 0),
            z3.Implies(wc & bits.OCC != 0, z3.And(wc == bits.BUSY, b == 1)),
            z3.ULE(b, pages),
        )

    blocks = one(_W) + b_l + b_r
    return Query(
        [
            t.node_ok(_W, wl, wr, Z),
            hypothesis(wl, b_l),
            hypothesis(wr, b_r),
            z3.ULE(1, pages),
            z3.ULE(pages, 1 << (WIDTH - 2)),  # a child of any node of a tree of depth <= WIDTH - 1
        ],
        [
            ("c_L counts the blocks below the left child", _count(_W, 1) == b_l),
            ("c_R counts the blocks below the right child", _count(_W, 0) == b_r),
            (
                "the node's subtree: blocks = [OCC] + c_L + c_R",
                blocks == one(_W) + _count(_W, 1) + _count(_W, 0),
            ),
            (
                "no block lies under a block",
                z3.Implies(_W & bits.OCC != 0, z3.And(_W == bits.BUSY, blocks == 1)),
            ),
            ("at most as many blocks as pages", z3.ULE(blocks, 2 * pages)),
        ],
        _explain([("w", _W), ("w_left", wl), ("w_right", wr), ("blocks_left", b_l), ("blocks_right", b_r)]),
        witness=[_W == 0, wl == 0, wr == 0, b_l == 0, b_r == 0, pages == 1],
    )


OBLIGATIONS = [
    Obligation(
        "cparam_local_global",
        "param",
        None,
        "node_ok at a node of any level + the children's block counts give the node's",
        _local_global,
    ),
    Obligation(
        "cparam_occupy",
        "param",
        None,
        "occupy takes only an unheld, unclaimed node and leaves it held and BUSY",
        _occupy,
    ),
    Obligation("cparam_climb", "param", None, "a climb CAS adds exactly the climbing thread's claim", _climb),
    Obligation(
        "cparam_climb_load", "param", None, "a climb load sees OCC exactly at a held node", _climb_load
    ),
    Obligation(
        "cparam_unmark",
        "param",
        None,
        "an unmark finds its claim and its CAS removes exactly that claim",
        _unmark,
    ),
    Obligation(
        "cparam_release", "param", None, "a held node has no claim through it; release unholds it", _release
    ),
]
"""The per-node lemmas of ``counted``: every depth, every number of threads (see above)."""


def frame_violations(v: Variant, depth: int, threads: int = 2) -> list[str]:
    """Each op state and branch whose step changes its thread's contribution anywhere but at the
    node it accesses, or in another way than ``cparam_*`` assume (empty if none)."""
    from nbbs.proofs import counted_steps as cs

    sysm = cs.system(v, depth, threads)
    ml = sysm.max_level
    cur = z3.BitVec("cur", sysm.t.word_bits)
    old = z3.BitVec("old", sysm.t.word_bits)
    out = []
    for op in sysm.ops:
        if steps.is_done(op):
            continue
        acc = sysm.m.access(op._replace(cur=cur))
        assert acc is not None
        branches = sysm.m.branches(op._replace(cur=cur), old, Z)
        for k, (guard, nxt) in enumerate(branches):
            if z3.is_false(z3.simplify(term(guard))):
                continue  # e.g. ``climb(old) == old``: never, the word has no such value
            if op.pc in (steps.F_ULOAD, steps.R_ULOAD) and k == 0:
                continue  # the unmark finds no claim to give back: ``cparam_unmark`` shows it never does
            if op.pc in (steps.F_RELEASE, steps.R_RELEASE) and k == 1:
                continue  # the release CAS fails: ``cparam_release`` shows the occupier's never does
            b = cs._normal(nxt)
            gained = cs.claims(b, ml) - cs.claims(op, ml)
            lost = cs.claims(op, ml) - cs.claims(b, ml)
            moved = {cs.occupier(op), cs.occupier(b)} - {0} if cs.occupier(op) != cs.occupier(b) else set()
            kind = acc.kind
            ok = (gained | lost | moved) <= {acc.node}
            if gained:
                ok = ok and kind == steps.Kind.CAS and op.pc == steps.C_CAS
            if lost:
                ok = ok and kind == steps.Kind.CAS and op.pc in (steps.F_UCAS, steps.R_UCAS)
            if moved:
                ok = (
                    ok and op.pc in (steps.A_OCC, steps.F_RELEASE, steps.R_RELEASE) and kind == steps.Kind.CAS
                )
            if not ok:
                out.append(
                    f"{steps.describe(op)} -> {steps.describe(b)}: claims +{sorted(gained)} -{sorted(lost)}, "
                    f"occupier {cs.occupier(op)} -> {cs.occupier(b)}, access {acc.kind} on {acc.node}"
                )
    return out


def _frame(depth: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        bad = frame_violations(v, depth)
        return Query(
            [],
            [("a step changes its thread's claims and occupancy only at the node it accesses", not bad)],
            lambda m: "\n".join(f"  {line}" for line in bad[:10]),
        )

    return build


def frame_obligations(depth: int) -> list[Obligation]:
    """The frame of the per-node argument at ``depth`` (z3-free: an enumeration of op states)."""
    return [
        Obligation(
            "cparam_frame",
            "param",
            depth,
            "each step changes its thread's contribution only at the node it accesses",
            _frame(depth),
        )
    ]
