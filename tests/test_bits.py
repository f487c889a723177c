"""Every word transition gives the same answer on Python ints and on z3 bit-vectors."""

from collections.abc import Callable
from typing import Any

import pytest
import z3

from nbbs.check.mutants import TRANSITION_MUTANTS
from nbbs.model import bits

WORDS = range(1 << bits.WORD_BITS)
SIDES = (0, 1)

UNARY = ("is_free", "is_occupied", "occupy", "release")
BINARY = (
    "climb",
    "mark",
    "buddy_keeps_busy",
    "unmark_applies",
    "unmark",
    "unmark_stops",
    "unmark_skips",
    "rollback_continues",
)


def _bv(x: int) -> z3.BitVecRef:
    return z3.BitVecVal(x, bits.WORD_BITS)


def _as_int(term: Any) -> int:
    v = z3.simplify(term)
    if z3.is_bool(v):
        assert z3.is_true(v) or z3.is_false(v), f"not a constant: {v}"
        return int(z3.is_true(v))
    return int(v.as_long())


def _same_on_ints_and_terms(t: bits.Transitions) -> list[str]:
    diffs = []
    for name in UNARY:
        f: Callable[..., Any] = getattr(t, name)
        for w in WORDS:
            on_int = int(f(w)) & bits.WORD_MASK
            if on_int != _as_int(f(_bv(w))):
                diffs.append(f"{name}({w:05b})")
    for name in BINARY:
        g: Callable[..., Any] = getattr(t, name)
        for w in WORDS:
            for s in SIDES:
                on_int = int(g(w, s)) & bits.WORD_MASK
                if on_int != _as_int(g(_bv(w), _bv(s))) or on_int != _as_int(g(_bv(w), s)):
                    diffs.append(f"{name}({w:05b}, {s})")
    return diffs


def test_every_published_transition_agrees_on_ints_and_z3_terms_for_all_words_and_sides() -> None:
    assert _same_on_ints_and_terms(bits.PUBLISHED) == []


@pytest.mark.parametrize("variant", sorted(bits.VARIANTS))
def test_every_variant_transition_agrees_on_ints_and_z3_terms(variant: str) -> None:
    assert _same_on_ints_and_terms(bits.VARIANTS[variant]) == []


@pytest.mark.parametrize("name", sorted(TRANSITION_MUTANTS))
def test_every_mutant_transition_agrees_on_ints_and_z3_terms(name: str) -> None:
    assert _same_on_ints_and_terms(TRANSITION_MUTANTS[name][1]) == []


def test_the_comparison_sees_a_transition_that_branches_on_its_type() -> None:
    import dataclasses

    odd = dataclasses.replace(bits.PUBLISHED, occupy=lambda w: bits.BUSY if isinstance(w, int) else w)
    assert "occupy(00000)" in _same_on_ints_and_terms(odd)
