"""The z3 side of the model's generic code: connectives, words, sides, and one way to ask a question.

``model.bits`` and ``model.tree`` are written over ``&``, ``|``, ``~``, ``<<``, ``==`` and a
``tree.Logic`` of connectives, so handing them z3 bit-vectors and ``Z`` below turns the very
functions the allocator runs into z3 terms. ``Sym`` adds the one thing a straight-line
encoding of a loop needs besides connectives: an if-then-else on words.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import z3

from nbbs.model import bits
from nbbs.model.tree import PY, Logic

SEED = 0
"""z3's random seed: fixed, so times and counterexamples repeat."""

Z = Logic(and_=z3.And, or_=z3.Or, not_=z3.Not, implies=z3.Implies)
"""``tree.Logic`` over z3 terms."""


@dataclass(frozen=True)
class Sym:
    """Connectives plus an if-then-else and word constants: what a loop unrolled over terms needs."""

    logic: Logic
    ite: Callable[[Any, Any, Any], Any]
    word: Callable[[int], Any]
    true: Any


INTS = Sym(logic=PY, ite=lambda c, a, b: a if c else b, word=lambda x: x, true=True)
"""Evaluate on Python ints and bools (what the allocator does)."""


def terms(word_bits: int = bits.WORD_BITS) -> Sym:
    """Build z3 terms over words of ``word_bits`` bits (``Transitions.word_bits``)."""
    return Sym(logic=Z, ite=z3.If, word=lambda x: z3.BitVecVal(x, word_bits), true=z3.BoolVal(True))


TERMS = terms()
"""Build z3 terms over the five-bit words."""


def word(name: str, word_bits: int = bits.WORD_BITS) -> z3.BitVecRef:
    """A symbolic status word (five bits unless told: a ``counted`` word is wider)."""
    return z3.BitVec(name, word_bits)


def as_shift(x: z3.BitVecRef, word_bits: int = bits.WORD_BITS) -> z3.BitVecRef:
    """A 0/1 side computed on a node bit-vector of any width, resized to a word's width.

    ``geometry.side`` returns a term as wide as the node; shifting a word needs the word's width.
    """
    width = x.size()
    if width == word_bits:
        return x
    if width > word_bits:
        return z3.Extract(word_bits - 1, 0, x)
    return z3.ZeroExt(word_bits - width, x)


def solver(logic: str = "QF_BV") -> z3.Solver:
    """A fresh solver with the fixed seed (one per obligation: no state leaks between proofs)."""
    s = z3.SolverFor(logic)
    s.set("random_seed", SEED)
    return s


@dataclass(frozen=True)
class Query:
    """One proof obligation as z3 terms: under ``premises``, every ``claims`` entry holds.

    ``witness`` is a satisfiable refinement of the premises (e.g. "the tree is the empty one")
    checked for non-vacuity; each of ``cases`` (a claim's own hypothesis, e.g. "the alloc
    succeeds") must also be satisfiable with the premises. ``explain`` turns a model of a
    counterexample into readable text.
    """

    premises: Sequence[Any]
    claims: Sequence[tuple[str, Any]]
    explain: Callable[[z3.ModelRef], str]
    witness: Sequence[Any] = ()
    cases: Sequence[tuple[str, Any]] = ()
    split: bool = False
    """Check each claim with a fresh solver of its own instead of their conjunction in the
    non-vacuity checks' solver (faster for ``counted``'s path queries: measured 3x, slower for
    its step queries); the first claim found broken gives the model."""
    logic: str = "QF_BV"
    """The solver's logic (``counted_lfarith``'s counter abstractions are ``QF_NIA``)."""


@dataclass(frozen=True)
class Answer:
    """What z3 said about a ``Query``."""

    proved: bool
    vacuous: bool
    broken: tuple[str, ...]
    """The claims a counterexample breaks (empty if proved)."""
    counterexample: str
    seconds: float
    """z3 time (both checks)."""


def ask(q: Query) -> Answer:
    """Check the premises are satisfiable (with the witness), then that no model breaks a claim."""
    claims = [(name, term(c)) for name, c in q.claims]
    s = solver(q.logic)
    s.add(*[term(p) for p in q.premises])
    started = time.perf_counter()
    s.push()
    s.add(*q.witness)
    sat = s.check()
    s.pop()
    if sat != z3.sat:
        return Answer(False, True, ("premises are unsatisfiable",), "", time.perf_counter() - started)
    for name, hyp in q.cases:
        s.push()
        s.add(term(hyp))
        sat = s.check()
        s.pop()
        if sat != z3.sat:
            return Answer(False, True, (f"case never happens: {name}",), "", time.perf_counter() - started)
    if not q.split:
        s.add(z3.Not(z3.And([c for _, c in claims])))
        res = s.check()
    else:
        # Each claim gets a fresh solver (one that has seen push/pop stays incremental and
        # skips preprocessing that helps these path queries; measured 3x on counted's).
        for _, goal in claims:
            s = solver(q.logic)
            s.add(*[term(p) for p in q.premises])
            s.add(z3.Not(goal))
            res = s.check()
            if res != z3.unsat:
                break
    seconds = time.perf_counter() - started
    if res == z3.unsat:
        return Answer(True, False, (), "", seconds)
    if res != z3.sat:
        return Answer(False, False, (f"z3 returned {res}",), "", seconds)
    m = s.model()
    broken = tuple(name for name, c in claims if z3.is_false(m.eval(c, model_completion=True)))
    return Answer(False, False, broken, q.explain(m), seconds)


def term(c: Any) -> z3.BoolRef:
    """A claim as a z3 term (a claim about concrete values is already a Python bool)."""
    return c if z3.is_expr(c) else z3.BoolVal(bool(c))


def val(m: z3.ModelRef, x: Any) -> int:
    """The integer value of a bit-vector term (or bool) in model ``m``."""
    v = m.eval(x, model_completion=True)
    if z3.is_bool(v):
        return int(z3.is_true(v))
    return int(v.as_long())


def show(m: z3.ModelRef, x: Any) -> str:
    """A word's value in ``m``, in binary with its bits named."""
    return bits.show(val(m, x))
