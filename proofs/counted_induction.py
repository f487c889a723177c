"""The induction on subtree height, unrolled over its finite domain and checked by z3.

``cevery_init_page`` (base: a quiescent page has ``P``) and ``cevery_init_node`` (step: ``node_ok``
at a node of level ``>= max_level`` and ``P`` at both children give ``P`` there), symbolic node
and depth, are the two cases of an induction on the height ``h = D - level(a)`` of a node. The
depth is at most ``MAX_DEPTH = 28``, so the heights are ``0 .. 28``: the induction is a finite
chain, unrolled here. ``P`` is an uninterpreted predicate on nodes (so what is proved holds for
every ``P``, ``counted_close``'s ``P`` and invariant included), and ``lemma_h`` says "every node of
the tree at height ``h`` and level ``>= max_level`` has ``P``". ``cind_height`` claims, for a
symbolic node ``a`` and depth ``D <= 28``:

* ``lemma_0(a)`` from the base at ``a``;
* for ``h = 0 .. 27``: ``lemma_{h+1}(a)`` from the step at ``a`` and ``lemma_h`` at ``a``'s two
  children (the instances the step's premise needs; the geometry, that the children of an
  inner node are in the tree, one level down, at or below ``max_level``, is z3's, with
  ``model/geometry.py``'s generic forms);
* every node of the tree at level ``>= max_level`` has a height in ``0 .. 28``.

What stays a rule of inference: chaining the 29 implications (``lemma_h`` proved for a
symbolic node is then used at the children, i.e. universal instantiation and modus ponens),
and instantiating the uninterpreted ``P`` with ``counted_close``'s (universal instantiation
over predicates). Each claim is quantifier-free (``QF_UFBV``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import geometry as g
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, Z, val
from nbbs.proofs.counted_every import BITS, MAX_DEPTH, level

Children = Callable[[Any], tuple[Any, Any]]
"""The two nodes whose ``lemma_h`` the step uses (a test passes a wrong pair)."""


def children(a: Any) -> tuple[Any, Any]:
    """``a``'s children, as ``cevery_init_node`` names them (``geometry.left``, ``geometry.right``)."""
    return g.left(a), g.right(a)


Domain = Callable[[Any], Any]
"""The nodes an induction ranges over (a z3 Boolean of a node)."""


def unrolled(
    p: Any,
    x: Any,
    domain: Domain,
    height: Callable[[Any], Any],
    preds: Children | Callable[[Any], tuple[Any, ...]],
    texts: tuple[str, str, str],
) -> list[tuple[str, Any]]:
    """The claims of an induction on a measure ``height(x)`` in ``0 .. MAX_DEPTH`` over the nodes
    of ``domain``, for the uninterpreted predicate ``p``, unrolled at the symbolic node ``x``:
    ``lemma_0(x)`` from the base, ``lemma_{h+1}(x)`` from the step and ``lemma_h`` at each of
    ``preds(x)`` (the instances the step's premise uses), and every node of the domain has a
    measure in ``0 .. MAX_DEPTH``. ``texts``: the base's, the step's (formatted with ``h``,
    ``k = h + 1``) and the range claim's names."""

    def lemma(h: int, y: Any) -> Any:
        return z3.Implies(z3.And(domain(y), height(y) == h), p(y))

    before = preds(x)
    base = z3.Implies(z3.And(domain(x), height(x) == 0), p(x))
    step = z3.Implies(z3.And(domain(x), height(x) > 0, *[p(y) for y in before]), p(x))
    claims: list[tuple[str, Any]] = [(texts[0], z3.Implies(base, lemma(0, x)))]
    for h in range(MAX_DEPTH):
        claims.append(
            (
                texts[1].format(h=h, k=h + 1),
                z3.Implies(z3.And(step, *[lemma(h, y) for y in before]), lemma(h + 1, x)),
            )
        )
    claims.append((texts[2], z3.Implies(domain(x), z3.And(height(x) >= 0, height(x) <= MAX_DEPTH))))
    return claims


def _height(depth: Any, ml: Any, kids: Children = children) -> Query:
    p = z3.Function("P", z3.BitVecSort(BITS), z3.BoolSort())
    d, ml_ = depth, ml
    a = z3.BitVec("a", BITS)

    def counted(x: Any) -> Any:
        return z3.And(g.in_tree(x, d, Z), level(x) >= ml_)

    claims = unrolled(
        p,
        a,
        counted,
        lambda x: d - level(x),
        kids,
        (
            "height 0: the base gives P at every page",
            "height {k}: the step and height {h} at both children give P",
            f"every node at or below max_level has a height in 0..{MAX_DEPTH}",
        ),
    )
    prem = [d >= 1, d <= MAX_DEPTH, ml_ >= 0, ml_ <= d]
    left, right = kids(a)

    def explain(m: z3.ModelRef) -> str:
        return (
            f"  depth {val(m, d)}, max_level {val(m, ml_)}, node a = {val(m, a)} (level {val(m, level(a))}), "
            f"step uses nodes {val(m, left)} and {val(m, right)}"
        )

    return Query(prem, claims, explain, split=True, logic="QF_UFBV")


def obligations(kids: Children = children) -> list[Obligation]:
    """``cind_height`` (``kids``: the step's child instances, a wrong one for the mutant test)."""

    def build(v: Variant) -> Query:
        return _height(z3.BitVec("D", BITS), z3.BitVec("max_level", BITS), kids)

    return [
        Obligation(
            "cind_height",
            "every",
            None,
            f"the induction on subtree height, unrolled over heights 0..{MAX_DEPTH}",
            build,
        )
    ]
