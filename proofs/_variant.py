"""What a proof is about: the transitions, the quiescent invariant and the spec's rules, swappable.

The algorithm we ship is ``SHIPPED`` (the model checker's ``corrected`` variant), the
published one ``PUBLISHED``; a mutant replaces one piece, and every obligation
is built from a ``Variant`` so the same proof can be run against each mutant and must fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbbs.model import bits, tree


@dataclass(frozen=True)
class SpecRules:
    """How the z3 encoding of ``model/spec.py`` decides and applies an operation.

    ``alloc_checks``: which live blocks make a node unavailable ("ancestors", "descendants";
    the spec checks both, since two blocks overlap exactly when one is the other's ancestor).
    ``alloc_effect``: "add" (the spec) adds the node; a mutant may add something else.
    ``free_effect``: "remove" (the spec) removes the node; a mutant may keep or merge it.
    ``disjoint``: how the linear form of disjointness looks above a block: "ancestors" (every
    proper ancestor, right) or "parent" (a mutant that only looks one level up).
    """

    alloc_checks: frozenset[str] = frozenset({"ancestors", "descendants"})
    alloc_effect: str = "add"
    free_effect: str = "remove"
    disjoint: str = "ancestors"


SPEC_RULES = SpecRules()


@dataclass(frozen=True)
class Variant:
    """One algorithm to prove: its word transitions, its quiescent invariant, its spec rules."""

    name: str = bits.DEFAULT_VARIANT
    transitions: bits.Transitions = bits.VARIANTS[bits.DEFAULT_VARIANT]
    node_ok: Callable[..., Any] = tree.node_ok
    spec: SpecRules = SPEC_RULES


VARIANTS = {name: Variant(name, transitions=t) for name, t in bits.VARIANTS.items() if not t.count_bits}
"""Every five-bit algorithm of ``bits.VARIANTS`` (``reference`` is the published one); the
``counted`` variant's words mean something else and are not encoded here yet."""

SHIPPED = VARIANTS["corrected"]
"""The five-bit variant the model checker passed at depth 2 (the default until ``counted``)."""

PUBLISHED = VARIANTS["reference"]
