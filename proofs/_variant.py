"""What a proof is about: the transitions, the quiescent invariant and the spec's rules, swappable.

The algorithm we ship is ``SHIPPED`` (``top_down_node``, ``bits.DEFAULT_VARIANT``), the one
with the most complete proof ``COUNTED``, the published one ``PUBLISHED``; a mutant replaces
one piece, and every obligation is built from a ``Variant`` so the same proof can be run
against each mutant and must fail.

Which variant a module's obligations are about is the module's (``counted_*``: ``COUNTED``;
``topdown_*``: ``TOP_DOWN_NODE`` and ``TOP_DOWN``; the others: the five-bit variants), never
``SHIPPED``: ``SHIPPED`` only says which of them ``nbbs prove`` runs first by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbbs.model import bits, tree
from nbbs.model.steps import Machine


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
    """One algorithm to prove: its word transitions, its quiescent invariant, its spec rules.

    A ``counted`` variant (its bundle has ``count_bits``) is proved on bundles of several count
    widths (``at``): z3 reasons about words just wide enough for the tree at hand, and the bit
    lemmas also run at the allocator's ``bits.COUNT_BITS``. ``at_width`` is the factory of
    those bundles when it is not ``bits.counted`` (a mutant of ``counted``).
    """

    name: str = "counted"
    transitions: bits.Transitions = bits.COUNTED
    node_ok: Callable[..., Any] = tree.node_ok
    spec: SpecRules = SPEC_RULES
    at_width: Callable[[int], bits.Transitions] | None = None
    machine: type[Machine] = Machine
    """The step machine (``counted_every``'s obligations run it; a mutant machine replaces it)."""

    @property
    def counted(self) -> bool:
        """The words are ``counted``'s (per-side claim counts), not the five status bits."""
        return self.at_width is not None or self.transitions.count_bits > 0

    def at(self, width: int) -> bits.Transitions:
        """The ``counted`` bundle with ``width``-bit counts (``bits.counted`` unless a mutant's)."""
        return (self.at_width or bits.counted)(width)


COUNTED = Variant("counted", transitions=bits.COUNTED)
"""Per-side claim counts (ALGORITHM.md §1): the variant with the most complete proof (the
default until ``top_down_node``). Its quiescent invariant is the bundle's own ``node_ok``; the
obligations about it are in the ``counted_*`` modules."""

TOP_DOWN = Variant("top_down", transitions=bits.TOP_DOWN, at_width=bits.top_down)
"""Issue 12's candidate, with its narrow-word bundles for z3 (``topdown_*``)."""

TOP_DOWN_NODE = Variant("top_down_node", transitions=bits.TOP_DOWN_NODE, at_width=bits.top_down_node)
"""``top-down`` with one token per child (ALGORITHM.md §1.4.3), the shipped variant: the
obligations about it are in the ``topdown_*`` modules."""

VARIANTS = {
    **{name: Variant(name, transitions=t) for name, t in bits.VARIANTS.items() if not t.count_bits},
    "counted": COUNTED,
    "top_down": TOP_DOWN,
    "top_down_node": TOP_DOWN_NODE,
}
"""The algorithms of ``bits.VARIANTS`` with obligations of their own (``reference`` is the
published one, ``corrected`` the five-bit one the model checker passes at depth 2, ``counted``
the one with the most complete proof, ``top_down_node`` the one we ship); ``stop_early`` has
none (the model checker refutes it)."""

SHIPPED = VARIANTS[bits.DEFAULT_VARIANT]
"""The variant the allocator runs by default (``top_down_node``): ``nbbs prove`` proves its
obligations first."""

CORRECTED = VARIANTS["corrected"]
"""The five-bit variant the model checker passed at depth 2 (the default until ``counted``)."""

PUBLISHED = VARIANTS["reference"]
