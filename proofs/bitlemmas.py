"""Bit-level lemmas: each word transition of ``model/bits.py`` touches only the bits it owns.

The transitions are read from the variant's ``bits.Transitions`` bundle (the one the
allocator runs) and applied to a symbolic 5-bit word ``w``. Each lemma is checked for the
left side, the right side, and a symbolic side ``geometry.side(n)`` of a symbolic node
``n``. The expected effect is written independently of ``bits.py``: with the named
constants picked by an if-then-else on the side, not with the shifts ``bits.py`` uses, so a
wrong shift or mask shows up as a difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import bits
from nbbs.model import geometry as g
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, as_shift, val, word

_NODE = z3.BitVec("n", bits.WORD_BITS)
_SUBTREE = bits.OCC | bits.OCC_LEFT | bits.OCC_RIGHT
_W = word("w")


def _sides() -> list[tuple[str, Any]]:
    """(label, side): left, right, and the side of a symbolic node."""
    return [("left", 1), ("right", 0), ("any side", as_shift(g.side(_NODE)))]


def _pick(s: Any, left: int, right: int) -> Any:
    """The left constant for side 1, the right one for side 0 (an ``If`` for a symbolic side)."""
    if isinstance(s, int):
        return left if s == 1 else right
    return z3.If(s == 1, z3.BitVecVal(left, bits.WORD_BITS), z3.BitVecVal(right, bits.WORD_BITS))


def own_occ(s: Any) -> Any:
    """Side ``s``'s OCC bit, spelled with the named constants."""
    return _pick(s, bits.OCC_LEFT, bits.OCC_RIGHT)


def own_coal(s: Any) -> Any:
    """Side ``s``'s COAL bit, spelled with the named constants."""
    return _pick(s, bits.COAL_LEFT, bits.COAL_RIGHT)


def other_occ(s: Any) -> Any:
    """The other side's OCC bit."""
    return _pick(s, bits.OCC_RIGHT, bits.OCC_LEFT)


def other_coal(s: Any) -> Any:
    """The other side's COAL bit."""
    return _pick(s, bits.COAL_RIGHT, bits.COAL_LEFT)


def _touches(new: Any, old: Any, sets: Any, clears: Any) -> list[tuple[str, Any]]:
    """``new`` is ``old`` with ``sets`` set, ``clears`` cleared, and every other bit kept."""
    rest = ~(sets | clears)
    return [
        ("sets its bits", new & sets == sets),
        ("clears its bits", new & clears == 0),
        ("keeps every other bit", new & rest == old & rest),
    ]


def _per_side(f: Callable[[Any], list[tuple[str, Any]]]) -> list[tuple[str, Any]]:
    return [(f"{label}: {name}", c) for label, s in _sides() for name, c in f(s)]


def _explain(v: Variant, what: str) -> Callable[[z3.ModelRef], str]:
    t = v.transitions

    def explain(m: z3.ModelRef) -> str:
        w = val(m, _W)
        s = val(m, as_shift(g.side(_NODE)))
        side = "left" if s == 1 else "right"
        lines = [f"  word w   = {bits.show(w)}", f"  side     = {s} ({side} child, node {val(m, _NODE)})"]
        words: tuple[tuple[str, Callable[[], int]], ...] = (
            ("occupy(w)", lambda: t.occupy(w)),
            (f"climb(w, {s})", lambda: t.climb(w, s)),
            (f"mark(w, {s})", lambda: t.mark(w, s)),
            (f"unmark(w, {s})", lambda: t.unmark(w, s)),
            ("release(w)", lambda: t.release(w)),
        )
        for name, f in words:
            if name.split("(")[0] in what:
                lines.append(f"  {name:<14}= {bits.show(f() & bits.WORD_MASK)}")
        preds: tuple[tuple[str, Callable[[], bool]], ...] = (
            ("is_free(w)", lambda: t.is_free(w)),
            ("is_occupied(w)", lambda: t.is_occupied(w)),
            (f"buddy_keeps_busy(w, {s})", lambda: t.buddy_keeps_busy(w, s)),
            (f"unmark_applies(w, {s})", lambda: t.unmark_applies(w, s)),
            (f"unmark_stops(w, {s})", lambda: t.unmark_stops(w, s)),
            (f"unmark_skips(w, {s})", lambda: t.unmark_skips(w, s)),
            (f"rollback_continues(w, {s})", lambda: t.rollback_continues(w, s)),
        )
        for name, p in preds:
            if name.split("(")[0] in what:
                lines.append(f"  {name} = {bool(p())}")
        lines.append("  (the side 'left' and 'right' cases are also checked with a concrete side)")
        return "\n".join(lines)

    return explain


def _occupy(v: Variant) -> Query:
    t = v.transitions
    busy = bits.OCC | bits.OCC_LEFT | bits.OCC_RIGHT
    return Query(
        premises=[t.is_free(_W)],
        claims=[
            ("a free word has nothing in or under it (no OCC, OCC_LEFT, OCC_RIGHT)", _W & _SUBTREE == 0),
            ("the zero word is free", z3.simplify(t.is_free(z3.BitVecVal(0, bits.WORD_BITS)))),
            ("occupy writes OCC|OCC_LEFT|OCC_RIGHT", t.occupy(_W) == busy),
        ],
        explain=_explain(v, "occupy is_free"),
    )


def _climb(v: Variant) -> Query:
    t = v.transitions
    return Query(
        premises=[],
        claims=_per_side(
            lambda s: [
                *_touches(t.climb(_W, s), _W, own_occ(s), own_coal(s)),
                ("is idempotent", t.climb(t.climb(_W, s), s) == t.climb(_W, s)),
            ]
        ),
        explain=_explain(v, "climb"),
    )


def _mark(v: Variant) -> Query:
    t = v.transitions
    return Query(
        premises=[],
        claims=_per_side(
            lambda s: [
                ("ORs exactly its COAL bit", t.mark_mask(s) == own_coal(s)),
                *_touches(t.mark(_W, s), _W, own_coal(s), z3.BitVecVal(0, bits.WORD_BITS)),
            ]
        ),
        explain=_explain(v, "mark"),
    )


def _buddy_keeps_busy(v: Variant) -> Query:
    t = v.transitions
    return Query(
        premises=[],
        claims=_per_side(
            lambda s: [
                (
                    "mark stops iff the other side is occupied and not coalescing",
                    t.buddy_keeps_busy(_W, s) == z3.And(_W & other_occ(s) != 0, _W & other_coal(s) == 0),
                )
            ]
        ),
        explain=_explain(v, "buddy_keeps_busy mark"),
    )


def _release(v: Variant) -> Query:
    t = v.transitions
    return Query(
        premises=[],
        claims=[
            ("release stores zero", t.release(_W) == 0),
            ("is_occupied reads OCC only", t.is_occupied(_W) == (_W & bits.OCC != 0)),
        ],
        explain=_explain(v, "release is_occupied"),
    )


def _unmark(v: Variant) -> Query:
    t = v.transitions
    zero = z3.BitVecVal(0, bits.WORD_BITS)
    return Query(
        premises=[],
        claims=_per_side(
            lambda s: [
                ("applies iff its COAL bit is set", t.unmark_applies(_W, s) == (_W & own_coal(s) != 0)),
                *_touches(t.unmark(_W, s), _W, zero, own_occ(s) | own_coal(s)),
            ]
        ),
        explain=_explain(v, "unmark"),
    )


def _unmark_stops(v: Variant) -> Query:
    t = v.transitions
    return Query(
        premises=[],
        claims=_per_side(
            lambda s: [
                (
                    "stops iff the other side is still occupied",
                    t.unmark_stops(_W, s) == (_W & other_occ(s) != 0),
                )
            ]
        ),
        explain=_explain(v, "unmark_stops unmark"),
    )


def _repairs(v: Variant) -> Query:
    t = v.transitions
    return Query(
        premises=[],
        claims=_per_side(
            lambda s: [
                (
                    "unmark skips a word only if its side is neither coalescing nor occupied",
                    z3.Implies(t.unmark_skips(_W, s), _W & (own_coal(s) | own_occ(s)) == 0),
                ),
                (
                    "a rollback goes on only past a word that is no block and shows its side occupied",
                    z3.Implies(t.rollback_continues(_W, s), z3.And(_W & bits.OCC == 0, _W & own_occ(s) != 0)),
                ),
            ]
        ),
        explain=_explain(v, "unmark_skips rollback_continues"),
    )


OBLIGATIONS = [
    Obligation(
        "bits_occupy",
        "bits",
        None,
        "occupy claims only a word with nothing in or under it, writes BUSY",
        _occupy,
    ),
    Obligation(
        "bits_climb",
        "bits",
        None,
        "climb sets the child-side OCC, clears the child-side COAL, keeps the rest",
        _climb,
    ),
    Obligation("bits_mark", "bits", None, "mark sets the child-side COAL bit and nothing else", _mark),
    Obligation(
        "bits_mark_stop",
        "bits",
        None,
        "mark stops exactly where the buddy's side is occupied, not coalescing",
        _buddy_keeps_busy,
    ),
    Obligation("bits_release", "bits", None, "release stores zero; is_occupied reads OCC", _release),
    Obligation(
        "bits_unmark",
        "bits",
        None,
        "unmark applies only when the child-side COAL is set, and clears that side's two bits only",
        _unmark,
    ),
    Obligation(
        "bits_unmark_stop",
        "bits",
        None,
        "unmark stops exactly where the other side stays occupied",
        _unmark_stops,
    ),
    Obligation(
        "bits_repairs",
        "bits",
        None,
        "the corrected variant's extra predicates fire only on the words they are meant for",
        _repairs,
    ),
]
"""The bit lemmas; they hold for every depth (a word does not know its level)."""
