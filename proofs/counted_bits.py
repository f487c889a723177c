"""Bit-level lemmas of the ``counted`` variant: each word transition changes only its own field.

A ``counted`` word (``bits.counted(width)``) has the five status bits below ``COUNT_SHIFT``
(of which it uses ``OCC``, and a block's ``BUSY``), then ``c_R`` (``width`` bits) and ``c_L``
(``width`` bits) above. The transitions are read from the variant's bundle at a given width
and applied to a symbolic word; each lemma is checked for the left side, the right side and
the side of a symbolic node, at the allocator's width ``bits.COUNT_BITS`` and at a small one.
The expected effects are written with ``z3.Extract`` on the field boundaries stated in
``bits.counted``'s docstring and with z3's own ``+ 1``/``- 1`` on the extracted field, not
with ``bits.py``'s shifted ``one(s)``, so a wrong shift, a carry into the other field or a
borrow out of it shows as a difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import bits
from nbbs.model import geometry as g
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, as_shift, val

WIDTHS = (bits.COUNT_BITS, 3)
"""The allocator's count width and a small one."""


def low(w: Any) -> Any:
    """The five status bits."""
    return z3.Extract(bits.COUNT_SHIFT - 1, 0, w)


def count(w: Any, s: Any, width: int) -> Any:
    """Side ``s``'s count: ``c_R`` (bits 5 .. 5+width-1) for 0, ``c_L`` (the width bits above) for 1."""
    c_r = z3.Extract(bits.COUNT_SHIFT + width - 1, bits.COUNT_SHIFT, w)
    c_l = z3.Extract(bits.COUNT_SHIFT + 2 * width - 1, bits.COUNT_SHIFT + width, w)
    if isinstance(s, int):
        return c_l if s == 1 else c_r
    return z3.If(s == 1, c_l, c_r)


def other_count(w: Any, s: Any, width: int) -> Any:
    """The other side's count."""
    if isinstance(s, int):
        return count(w, 1 - s, width)
    return z3.If(s == 1, count(w, 0, width), count(w, 1, width))


class _Words:
    """The symbolic word, node and sides of one width."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.bits = bits.COUNT_SHIFT + 2 * width
        self.w = z3.BitVec(f"w{width}", self.bits)
        self.node = z3.BitVec(f"n{width}", self.bits)

    def sides(self) -> list[tuple[str, Any]]:
        return [("left", 1), ("right", 0), ("any side", as_shift(g.side(self.node), self.bits))]

    def top(self) -> int:
        return (1 << self.width) - 1


def _per_width(
    v: Variant, f: Callable[[bits.Transitions, _Words, str, Any], list[tuple[str, Any]]]
) -> tuple[list[tuple[str, Any]], list[_Words]]:
    claims: list[tuple[str, Any]] = []
    ws = []
    for width in WIDTHS:
        x = _Words(width)
        ws.append(x)
        t = v.at(width)
        for label, s in x.sides():
            claims += [(f"width {width}, {label}: {name}", c) for name, c in f(t, x, label, s)]
    return claims, ws


def _explain(v: Variant, ws: list[_Words], what: str) -> Callable[[z3.ModelRef], str]:
    def explain(m: z3.ModelRef) -> str:
        lines = []
        for x in ws:
            t = v.at(x.width)
            w = val(m, x.w)
            s = val(m, as_shift(g.side(x.node), x.bits))
            lines.append(
                f"  width {x.width}: word w = {t.show(w)} ({w:#x}), side {s} (node {val(m, x.node)})"
            )
            mask = (1 << x.bits) - 1
            shown = (
                ("occupy(w)", "occupy", t.occupy(w)),
                (f"climb(w, {s})", "climb", t.climb(w, s)),
                (f"unmark(w, {s})", "unmark", t.unmark(w, s)),
                ("release(w)", "release", t.release(w)),
            )
            for name, key, after in shown:
                if key in what:
                    lines.append(f"    {name:<14}= {t.show(after & mask)}")
            preds = (
                ("is_free(w)", "is_free", t.is_free(w)),
                ("is_occupied(w)", "is_occupied", t.is_occupied(w)),
                (f"unmark_applies(w, {s})", "unmark", t.unmark_applies(w, s)),
            )
            for name, key, holds in preds:
                if key in what:
                    lines.append(f"    {name} = {bool(holds)}")
        lines.append("  (the sides 'left' and 'right' are also checked with a concrete side)")
        return "\n".join(lines)

    return explain


def _occupy(v: Variant) -> Query:
    def f(t: bits.Transitions, x: _Words, label: str, s: Any) -> list[tuple[str, Any]]:
        if label != "left":  # occupy has no side
            return []
        zero = z3.BitVecVal(0, x.bits)
        return [
            ("occupy's check holds exactly on the zero word", t.is_free(x.w) == (x.w == 0)),
            ("occupy writes BUSY", z3.Implies(t.is_free(x.w), t.occupy(x.w) == bits.BUSY)),
            (
                "BUSY has no count",
                z3.And(count(t.occupy(zero), 1, x.width) == 0, count(t.occupy(zero), 0, x.width) == 0),
            ),
        ]

    claims, ws = _per_width(v, f)
    return Query([], claims, _explain(v, ws, "occupy is_free"))


def _climb(v: Variant) -> Query:
    def f(t: bits.Transitions, x: _Words, label: str, s: Any) -> list[tuple[str, Any]]:
        new = t.climb(x.w, s)
        below_max = count(x.w, s, x.width) != x.top()
        return [
            (
                "adds one to its side's count",
                z3.Implies(below_max, count(new, s, x.width) == count(x.w, s, x.width) + 1),
            ),
            (
                "keeps the other side's count",
                z3.Implies(below_max, other_count(new, s, x.width) == other_count(x.w, s, x.width)),
            ),
            ("keeps the status bits", z3.Implies(below_max, low(new) == low(x.w))),
        ]

    claims, ws = _per_width(v, f)
    return Query([], claims, _explain(v, ws, "climb"))


def _unmark(v: Variant) -> Query:
    def f(t: bits.Transitions, x: _Words, label: str, s: Any) -> list[tuple[str, Any]]:
        new = t.unmark(x.w, s)
        nonzero = count(x.w, s, x.width) != 0
        return [
            ("applies exactly when its side's count is nonzero", t.unmark_applies(x.w, s) == nonzero),
            (
                "subtracts one from its side's count",
                z3.Implies(nonzero, count(new, s, x.width) == count(x.w, s, x.width) - 1),
            ),
            (
                "keeps the other side's count",
                z3.Implies(nonzero, other_count(new, s, x.width) == other_count(x.w, s, x.width)),
            ),
            ("keeps the status bits", z3.Implies(nonzero, low(new) == low(x.w))),
            ("undoes climb", t.unmark(t.climb(x.w, s), s) == x.w),
            (
                "never stops early, never skips",
                z3.And(z3.Not(t.unmark_stops(x.w, s)), z3.Not(t.unmark_skips(x.w, s))),
            ),
        ]

    claims, ws = _per_width(v, f)
    return Query([], claims, _explain(v, ws, "unmark"))


def _release(v: Variant) -> Query:
    def f(t: bits.Transitions, x: _Words, label: str, s: Any) -> list[tuple[str, Any]]:
        if label != "left":
            return []
        return [
            ("release stores zero", t.release(x.w) == 0),
            ("is_occupied reads OCC only", t.is_occupied(x.w) == (z3.Extract(4, 4, x.w) == 1)),
            ("there is no mark phase", z3.BoolVal(not t.marks)),
            ("the word is 5 + 2 * width bits", z3.BoolVal(t.word_bits == x.bits and t.count_bits == x.width)),
        ]

    claims, ws = _per_width(v, f)
    return Query([], claims, _explain(v, ws, "release is_occupied"))


OBLIGATIONS = [
    Obligation(
        "cbits_occupy",
        "bits",
        None,
        "occupy's check holds only on the zero word; occupy writes BUSY",
        _occupy,
    ),
    Obligation(
        "cbits_climb",
        "bits",
        None,
        "climb adds one to its side's count (no carry below the maximum), nothing else",
        _climb,
    ),
    Obligation(
        "cbits_unmark",
        "bits",
        None,
        "unmark applies iff its side's count is nonzero, subtracts one from it, nothing else; undoes climb",
        _unmark,
    ),
    Obligation(
        "cbits_release", "bits", None, "release stores zero; is_occupied reads OCC; no mark phase", _release
    ),
]
"""The bit lemmas of ``counted``; they hold for every depth (a word does not know its level)."""
