"""Per-node obligations for a node of any level: the refinement argument for every depth.

The quiescent invariant is local (``tree.node_ok`` of a node and its two children), and a
sequential operation changes the words of one path, one node at a time, bottom-up. So the
whole-tree claims of ``refinement`` follow, for every depth, from the lemmas below about a
node with symbolic words: the node ``x``, its path child before and after the step
(``c``, ``c2``), the child's buddy ``b``, and a symbolic side (that of a symbolic node).
Nothing here mentions a level or a depth; "leaf or inner node" is a symbolic choice.

How they compose (by induction on the height of a subtree, and on the length of the path):

* ``param_local_global``: ``leaf_ok``/``node_ok`` at a node, and "``taken(child)`` iff the
  child's subtree holds a block" at its children, give the same at the node, plus "no block
  under a block", plus the node's word is the canonical one. Induction from the pages up
  gives ``tree_local_global`` for every depth.
* ``param_occupy``: ``occupy`` succeeds exactly on an untaken node and re-establishes
  ``node_ok`` there.
* ``param_climb``: one climb step at an ancestor that is not a block re-establishes its
  ``node_ok`` after its child became taken, and the ancestor is taken afterwards, which is
  the premise of the next step up (the guarantee its parent relies on).
* ``param_free``: one mark-then-unmark of an ancestor whose path child was taken and is now
  zero: unmark applies; it stops at the ancestor iff mark stopped there; ``node_ok`` holds
  again; the ancestor is zero afterwards iff the walk continues (the premise of the next step
  up), and stays taken iff it stops (so its own parent's ``node_ok`` is untouched).
* ``param_rollback``: below a block every word is zero; climbing a zero word and then marking
  and unmarking it (the rollback) gives zero back, and the walk continues up to the bound;
  at the block itself (``BUSY``) the corrected variant's rollback does not extend and its
  unmark stops.
* ``param_parent_frame``: a step that does not change whether a node is taken, and leaves it
  a word some node may have, preserves its parent's ``node_ok`` when the parent is not a
  block (the rely condition of every step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import bits, tree
from nbbs.model import geometry as g
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, Z, as_shift, show, val, word

_NODE = z3.BitVec("node", bits.WORD_BITS)
_S = as_shift(g.side(_NODE))
"""The side of the path child in its parent: symbolic (the low bit of a symbolic node)."""


def _occ(w: Any) -> Any:
    return w & bits.OCC != 0


def _kids(c: Any, b: Any) -> tuple[Any, Any]:
    """(left, right) of a parent whose path child (word ``c``) is on side ``_S``, buddy ``b``."""
    return z3.If(_S == 1, c, b), z3.If(_S == 1, b, c)


def _some_node_ok(v: Variant, x: Any, name: str) -> Any:
    """``x`` is the word of some node satisfying the invariant: a page, or an inner node with
    symbolic children."""
    return z3.Or(tree.leaf_ok(x, Z), v.node_ok(x, word(f"{name}_l"), word(f"{name}_r"), Z))


def _explain(named: dict[str, Any]) -> Callable[[z3.ModelRef], str]:
    def explain(m: z3.ModelRef) -> str:
        lines = [f"  side of the path child: {val(m, _S)} ({'left' if val(m, _S) == 1 else 'right'})"]
        for name, x in named.items():
            lines.append(f"  {name:<28} {show(m, x) if z3.is_bv(x) else val(m, x)}")
        return "\n".join(lines)

    return explain


def _local_global(v: Variant) -> Query:
    w, wl, wr = word("w"), word("w_left"), word("w_right")
    dl, dr = z3.Bool("left_holds_a_block"), z3.Bool("right_holds_a_block")
    premises = [
        v.node_ok(w, wl, wr, Z),
        tree.taken(wl) == dl,
        tree.taken(wr) == dr,
        _some_node_ok(v, wl, "wl"),
        _some_node_ok(v, wr, "wr"),
    ]
    busy, zero = z3.BitVecVal(bits.BUSY, bits.WORD_BITS), z3.BitVecVal(0, bits.WORD_BITS)
    canon = z3.If(
        _occ(w),
        busy,
        z3.If(dl, z3.BitVecVal(bits.OCC_LEFT, bits.WORD_BITS), zero)
        | z3.If(dr, z3.BitVecVal(bits.OCC_RIGHT, bits.WORD_BITS), zero),
    )
    leaf = word("page")
    return Query(
        premises,
        [
            (
                "a page: taken iff it is a block",
                z3.Implies(tree.leaf_ok(leaf, Z), tree.taken(leaf) == _occ(leaf)),
            ),
            ("taken(w) iff the subtree holds a block", tree.taken(w) == z3.Or(_occ(w), dl, dr)),
            ("no block under a block", z3.Implies(_occ(w), z3.And(z3.Not(dl), z3.Not(dr)))),
            ("the word is the canonical one", w == canon),
            (
                "under a block or an untaken node every word is zero",
                z3.Implies(z3.Or(_occ(w), w == 0), z3.And(wl == 0, wr == 0)),
            ),
        ],
        _explain(
            {"w": w, "left child": wl, "right child": wr, "left holds a block": dl, "right holds a block": dr}
        ),
        cases=[("w is a block", _occ(w)), ("w is split", z3.And(z3.Not(_occ(w)), dl, dr))],
    )


def _occupy(v: Variant) -> Query:
    t = v.transitions
    w, wl, wr = word("w"), word("w_left"), word("w_right")
    page = z3.Bool("w_is_a_page")
    ok_before = z3.If(page, tree.leaf_ok(w, Z), v.node_ok(w, wl, wr, Z))
    after = t.occupy(w)
    ok_after = z3.If(page, tree.leaf_ok(after, Z), v.node_ok(after, wl, wr, Z))
    return Query(
        [ok_before, _some_node_ok(v, wl, "wl"), _some_node_ok(v, wr, "wr")],
        [
            (
                "the occupy check holds iff nothing is in or under the node",
                t.is_free(w) == z3.Not(tree.taken(w)),
            ),
            ("after occupy node_ok holds", z3.Implies(t.is_free(w), ok_after)),
            ("after occupy the node is a block", z3.Implies(t.is_free(w), _occ(after))),
        ],
        _explain({"w": w, "occupy(w)": after, "left child": wl, "right child": wr, "w is a page": page}),
        cases=[("the node is free", t.is_free(w)), ("the node is an inner node", z3.Not(page))],
    )


def _climb(v: Variant) -> Query:
    t = v.transitions
    x, c, c2, b = word("x"), word("child_before"), word("child_after"), word("buddy")
    after = t.climb(x, _S)
    return Query(
        [v.node_ok(x, *_kids(c, b), Z), _some_node_ok(v, b, "b"), tree.taken(c2)],
        [
            ("the climb stops exactly at a block", t.is_occupied(x) == _occ(x)),
            (
                "climbing a node that is not a block re-establishes node_ok",
                z3.Implies(z3.Not(_occ(x)), v.node_ok(after, *_kids(c2, b), Z)),
            ),
            (
                "the climbed node is taken (its parent's next step relies on it)",
                z3.Implies(z3.Not(_occ(x)), tree.taken(after)),
            ),
            ("the climb keeps OCC (the abstraction does not change)", _occ(after) == _occ(x)),
        ],
        _explain({"x": x, "climb(x)": after, "child before": c, "child after": c2, "buddy": b}),
        cases=[("x is not a block", z3.Not(_occ(x))), ("x was not taken", z3.Not(tree.taken(x)))],
    )


def _free(v: Variant) -> Query:
    t = v.transitions
    x, c, b = word("x"), word("child_before"), word("buddy")
    c2 = z3.BitVecVal(0, bits.WORD_BITS)
    stop = t.buddy_keeps_busy(x, _S)
    marked = t.mark(x, _S)
    after = t.unmark(marked, _S)
    return Query(
        [v.node_ok(x, *_kids(c, b), Z), _some_node_ok(v, b, "b"), tree.taken(c)],
        [
            ("release of a block stores zero", t.release(z3.BitVecVal(bits.BUSY, bits.WORD_BITS)) == 0),
            ("unmark applies after our mark", t.unmark_applies(marked, _S)),
            ("unmark stops where mark stopped", t.unmark_stops(after, _S) == stop),
            ("node_ok holds again with the child now zero", v.node_ok(after, *_kids(c2, b), Z)),
            (
                "the node is zero iff the walk goes on, else still taken",
                z3.If(stop, tree.taken(after), after == 0),
            ),
            ("mark and unmark keep OCC", _occ(after) == _occ(x)),
        ],
        _explain({"x": x, "mark(x)": marked, "unmark(mark(x))": after, "child before": c, "buddy": b}),
        cases=[("mark stops here", stop), ("mark goes on", z3.Not(stop))],
    )


def _rollback(v: Variant) -> Query:
    t = v.transitions
    climbed = t.climb(z3.BitVecVal(0, bits.WORD_BITS), _S)
    marked = t.mark(climbed, _S)
    after = t.unmark(marked, _S)
    block = t.release(t.occupy(z3.BitVecVal(0, bits.WORD_BITS)))
    return Query(
        [],
        [
            ("occupy then release gives zero back", block == 0),
            ("the climb passes a zero word", z3.Not(t.is_occupied(z3.BitVecVal(0, bits.WORD_BITS)))),
            ("mark goes on past a word with an empty buddy side", z3.Not(t.buddy_keeps_busy(climbed, _S))),
            ("unmark applies", t.unmark_applies(marked, _S)),
            ("unmark gives zero back", after == 0),
            ("unmark goes on", z3.Not(t.unmark_stops(after, _S))),
            (
                "a rollback does not go on past the block that stopped the climb",
                z3.Not(t.rollback_continues(z3.BitVecVal(bits.BUSY, bits.WORD_BITS), _S)),
            ),
            (
                "an unmark stops at that block (it neither applies nor skips)",
                z3.Not(
                    z3.Or(
                        t.unmark_applies(z3.BitVecVal(bits.BUSY, bits.WORD_BITS), _S),
                        t.unmark_skips(z3.BitVecVal(bits.BUSY, bits.WORD_BITS), _S),
                    )
                ),
            ),
        ],
        _explain(
            {"climb(0)": climbed, "mark(climb(0))": marked, "unmark(...)": after, "release(occupy(0))": block}
        ),
    )


def _parent_frame(v: Variant) -> Query:
    x, c, c2, b = word("x"), word("child_before"), word("child_after"), word("buddy")
    return Query(
        # Sequentially nothing writes under a block except a rollback, which restores zeros
        # (param_rollback), so the parent here is not a block.
        [
            v.node_ok(x, *_kids(c, b), Z),
            z3.Not(_occ(x)),
            tree.taken(c2) == tree.taken(c),
            _some_node_ok(v, c2, "c2"),
        ],
        [("the parent's node_ok is preserved", v.node_ok(x, *_kids(c2, b), Z))],
        _explain({"x": x, "child before": c, "child after": c2, "buddy": b}),
        cases=[("the child changes", c != c2)],
    )


OBLIGATIONS = [
    Obligation(
        "param_local_global",
        "param",
        None,
        "node_ok at a node of any level gives subtree meaning, disjointness, canonical words",
        _local_global,
    ),
    Obligation(
        "param_occupy", "param", None, "occupy succeeds exactly on an untaken node, keeps node_ok", _occupy
    ),
    Obligation("param_climb", "param", None, "one climb step keeps node_ok and hands 'taken' up", _climb),
    Obligation(
        "param_free",
        "param",
        None,
        "one mark+unmark step keeps node_ok; unmark stops where mark stopped",
        _free,
    ),
    Obligation(
        "param_rollback", "param", None, "a rolled-back climb over zero words gives zeros back", _rollback
    ),
    Obligation(
        "param_parent_frame",
        "param",
        None,
        "a step that keeps 'taken' keeps the parent's node_ok",
        _parent_frame,
    ),
]
"""The per-node lemmas; they hold for every depth and level."""
