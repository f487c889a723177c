"""Deliberately broken word transitions: every checker must catch each one.

A mutant is a ``bits.Transitions`` bundle with one transition replaced. The same bundle
plugs into the allocator (``mutant_allocator``), the step machine and the proofs, so a test
shows each checker going red on each defect. The first two are the Rust crate's defects.
"""

from __future__ import annotations

import dataclasses

from nbbs.impl.nbbs import NBBS
from nbbs.model import bits
from nbbs.model.bits import PUBLISHED, Transitions


def _replace(**changes: object) -> Transitions:
    return dataclasses.replace(PUBLISHED, **changes)  # type: ignore[arg-type]


TRANSITION_MUTANTS: dict[str, tuple[str, Transitions]] = {
    "unmark_sets_instead_of_clears": (
        "unmark sets the child-side bits instead of clearing them (the crate's defect): a subtree leaks",
        _replace(unmark=lambda w, s: w | bits.coal_bit(s) | bits.occ_bit(s)),
    ),
    "climb_clears_instead_of_sets": (
        "climb clears the child-side OCC bit instead of setting it: an ancestor looks free under a block",
        _replace(climb=lambda w, s: w & ~(bits.occ_bit(s) | bits.coal_bit(s))),
    ),
    "climb_keeps_coal": (
        "climb sets OCC but leaves the child-side COAL bit: a pending unmark then clears a live path",
        _replace(climb=lambda w, s: w | bits.occ_bit(s)),
    ),
    "mark_wrong_side": (
        "mark sets the buddy's COAL bit instead of its own",
        _replace(mark_mask=lambda s: bits.coal_bit(bits.other(s))),
    ),
    "mark_stops_early": (
        "mark stops after the parent whatever the buddy holds",
        _replace(buddy_keeps_busy=lambda old, s: old == old),
    ),
    "unmark_ignores_coal": (
        "unmark clears the side even when its COAL bit is gone (an alloc re-claimed the path)",
        _replace(unmark_applies=lambda w, s: w == w),
    ),
    "unmark_never_stops": (
        "unmark keeps climbing although the buddy still holds the ancestor",
        _replace(unmark_stops=lambda new, s: new != new),
    ),
    "occupy_only_occ": (
        "occupy writes OCC alone, not OCC_LEFT | OCC_RIGHT: the block's subtree looks free",
        _replace(occupy=lambda w: (w & 0) | bits.OCC),
    ),
}
"""Name -> (what is broken, the mutated transitions)."""

SEQUENTIALLY_VISIBLE = (
    "unmark_sets_instead_of_clears",
    "climb_clears_instead_of_sets",
    "mark_wrong_side",
    "mark_stops_early",
    "occupy_only_occ",
)
"""The mutants a sequential run exposes. The others change only what happens when operations
overlap (alone, every COAL bit a free sets, its own unmark clears), so only the concurrent
checkers (model checker, explorer) can see them."""


def _counted(**changes: object) -> Transitions:
    return dataclasses.replace(bits.COUNTED, **changes)  # type: ignore[arg-type]


def _one(s: int) -> int:
    """One claim on side ``s`` of a ``counted`` word."""
    return bits.COUNTED.climb(0, s)


COUNTED_MUTANTS: dict[str, tuple[str, Transitions]] = {
    "climb_does_not_count": (
        "the counted climb leaves the count as it is: an ancestor looks free above a block",
        _counted(climb=lambda w, s: w | 0),
    ),
    "unmark_does_not_uncount": (
        "the counted unmark leaves the count as it is: the path stays claimed, its blocks lost",
        _counted(unmark=lambda w, s: w | 0),
    ),
    "unmark_wrong_side": (
        "the counted unmark takes the claim off the buddy's side",
        _counted(unmark=lambda w, s: w - _one(bits.other(s))),
    ),
    "occupy_ignores_counts": (
        "occupy takes a word whose counts are not zero, as long as it has no OCC: a block above blocks",
        _counted(is_free=lambda w: w & bits.OCC == 0),
    ),
    "climb_counts_twice": (
        "the counted climb adds two claims: the counts outgrow what the blocks below can explain",
        _counted(climb=lambda w, s: w + _one(s) + _one(s)),
    ),
}
"""Mutants of the ``counted`` variant (``bits.COUNTED``): name -> (what is broken, the transitions)."""


def mutant_allocator(name: str) -> type[NBBS]:
    """An ``NBBS`` subclass running the named mutant's transitions."""
    doc, transitions = {**TRANSITION_MUTANTS, **COUNTED_MUTANTS}[name]
    return type(f"NBBS_{name}", (NBBS,), {"transitions": transitions, "__doc__": doc})
