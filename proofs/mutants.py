"""Deliberately broken variants: every proof obligation must fail on at least one of them.

The word-transition mutants of ``check/mutants.py`` (shared with the other checkers), a few
more wrong masks, two broken quiescent invariants (``tree.node_ok``) and broken spec rules.
Each is a ``Variant``; ``tests/test_proofs_mutants.py`` runs every one and checks that z3
returns a counterexample.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from nbbs.check.mutants import TRANSITION_MUTANTS
from nbbs.model import bits, steps, tree
from nbbs.model import geometry as g
from nbbs.proofs._variant import SpecRules, Variant


def _t(**changes: object) -> bits.Transitions:
    return dataclasses.replace(bits.PUBLISHED, **changes)  # type: ignore[arg-type]


def _on_corrected(**changes: object) -> bits.Transitions:
    return dataclasses.replace(bits.CORRECTED, **changes)  # type: ignore[arg-type]


def _node_ok_no_empty_children(w: Any, wl: Any, wr: Any, logic: tree.Logic = tree.PY) -> Any:
    """``node_ok`` without "a block's children are zero": blocks may nest."""
    occupied = w & bits.OCC != 0
    return logic.and_(
        w & tree.COAL_BITS == 0,
        logic.implies(occupied, w == bits.BUSY),
        logic.implies(
            logic.not_(occupied),
            logic.and_(
                (w & bits.OCC_LEFT != 0) == tree.taken(wl), (w & bits.OCC_RIGHT != 0) == tree.taken(wr)
            ),
        ),
    )


def _node_ok_side_means_block(w: Any, wl: Any, wr: Any, logic: tree.Logic = tree.PY) -> Any:
    """``node_ok`` where an OCC_* bit means "that child is a block", not "something under it"."""
    occupied = w & bits.OCC != 0
    return logic.and_(
        w & tree.COAL_BITS == 0,
        logic.implies(occupied, logic.and_(w == bits.BUSY, wl == 0, wr == 0)),
        logic.implies(
            logic.not_(occupied),
            logic.and_(
                (w & bits.OCC_LEFT != 0) == (wl == bits.BUSY), (w & bits.OCC_RIGHT != 0) == (wr == bits.BUSY)
            ),
        ),
    )


MUTANTS: dict[str, tuple[str, Variant]] = {
    **{name: (doc, Variant(name, transitions=t)) for name, (doc, t) in TRANSITION_MUTANTS.items()},
    "mark_sets_occ": (
        "mark ORs the child-side OCC bit instead of the COAL bit (a wrong mask)",
        Variant("mark_sets_occ", transitions=_t(mark_mask=lambda s: bits.occ_bit(s))),
    ),
    "unmark_clears_only_coal": (
        "unmark clears the COAL bit but leaves the OCC bit (a wrong mask): the freed side stays taken",
        Variant("unmark_clears_only_coal", transitions=_t(unmark=lambda w, s: w & ~bits.coal_bit(s))),
    ),
    "climb_wrong_side": (
        "climb sets the buddy's OCC bit instead of its own",
        Variant(
            "climb_wrong_side",
            transitions=_t(climb=lambda w, s: (w | bits.occ_bit(bits.other(s))) & ~bits.coal_bit(s)),
        ),
    ),
    "release_leaves_side_bits": (
        "release stores OCC_LEFT|OCC_RIGHT instead of zero: the freed block's subtree stays taken",
        Variant(
            "release_leaves_side_bits", transitions=_t(release=lambda w: w & (bits.OCC_LEFT | bits.OCC_RIGHT))
        ),
    ),
    "unmark_skips_anything": (
        "the corrected unmark goes on past any word whose COAL bit is gone (an alloc re-claimed it)",
        Variant("unmark_skips_anything", transitions=_on_corrected(unmark_skips=lambda w, s: w == w)),
    ),
    "rollback_continues_past_block": (
        "the corrected rollback goes on past the failed ancestor even when it is a block",
        Variant(
            "rollback_continues_past_block",
            transitions=_on_corrected(rollback_continues=lambda w, s: w & bits.occ_bit(s) != 0),
        ),
    ),
    "node_ok_blocks_may_nest": (
        "the quiescent invariant forgets that a block's children are zero",
        Variant("node_ok_blocks_may_nest", transitions=bits.CORRECTED, node_ok=_node_ok_no_empty_children),
    ),
    "node_ok_side_means_block": (
        "the quiescent invariant reads an OCC_* bit as 'that child is a block'",
        Variant("node_ok_side_means_block", transitions=bits.CORRECTED, node_ok=_node_ok_side_means_block),
    ),
    "spec_alloc_checks_ancestors_only": (
        "the spec lets alloc take a node with a live block under it",
        Variant(
            "spec_alloc_checks_ancestors_only",
            transitions=bits.CORRECTED,
            spec=SpecRules(alloc_checks=frozenset({"ancestors"})),
        ),
    ),
    "spec_alloc_checks_descendants_only": (
        "the spec lets alloc take a node under a live block",
        Variant(
            "spec_alloc_checks_descendants_only",
            transitions=bits.CORRECTED,
            spec=SpecRules(alloc_checks=frozenset({"descendants"})),
        ),
    ),
    "spec_alloc_takes_parent": (
        "the spec's alloc hands out the parent's range",
        Variant("spec_alloc_takes_parent", transitions=bits.CORRECTED, spec=SpecRules(alloc_effect="parent")),
    ),
    "spec_disjoint_parent_only": (
        "the linear disjointness looks only at the parent, not every ancestor",
        Variant("spec_disjoint_parent_only", transitions=bits.CORRECTED, spec=SpecRules(disjoint="parent")),
    ),
    "spec_free_keeps_block": (
        "the spec's free does not remove the block",
        Variant("spec_free_keeps_block", transitions=bits.CORRECTED, spec=SpecRules(free_effect="keep")),
    ),
    "spec_free_merges_into_parent": (
        "the spec's free hands the parent's range out instead (eager merge)",
        Variant(
            "spec_free_merges_into_parent", transitions=bits.CORRECTED, spec=SpecRules(free_effect="merge")
        ),
    ),
}
"""Name -> (what is broken, the variant)."""


def _counted(**changes: Callable[[int], object]) -> Callable[[int], bits.Transitions]:
    """A ``counted`` mutant as a factory of widths: each change is a function of the width."""

    def at(width: int) -> bits.Transitions:
        made = {name: f(width) for name, f in changes.items()}
        return dataclasses.replace(bits.counted(width), **made)  # type: ignore[arg-type]

    return at


def _add(width: int, sign: int, flip: int) -> Callable[[Any, Any], Any]:
    def f(w: Any, s: Any) -> Any:
        side = s ^ flip
        return w + sign * (1 << bits.COUNT_SHIFT << (side * width))

    return f


COUNTED_MUTANTS: dict[str, tuple[str, Variant]] = {
    name: (doc, Variant(name, transitions=at(bits.COUNT_BITS), at_width=at))
    for name, doc, at in (
        (
            "climb_does_not_count",
            "climb leaves the word as it is (a CAS w -> w)",
            _counted(climb=lambda w: lambda x, s: x),
        ),
        (
            "unmark_does_not_uncount",
            "unmark leaves the word as it is",
            _counted(unmark=lambda w: lambda x, s: x),
        ),
        (
            "occupy_accepts_counts",
            "occupy's check accepts any word without OCC (a node with claims below it)",
            _counted(is_free=lambda w: lambda x: x & bits.OCC == 0),
        ),
        (
            "climb_ignores_occ",
            "the climb never sees an occupied ancestor: it counts through a block",
            _counted(is_occupied=lambda w: lambda x: x != x),
        ),
        (
            "unmark_wrong_side",
            "unmark takes one off the other side's count",
            _counted(unmark=lambda w: _add(w, -1, 1)),
        ),
        (
            "climb_wrong_side",
            "climb adds one to the other side's count",
            _counted(climb=lambda w: _add(w, 1, 1)),
        ),
    )
}
"""The ``counted`` mutants: name -> (what is broken, the variant); the obligations of
``counted`` must each catch one."""


class _ClimbSkipsALevel(steps.Machine):
    """A climb that, after its CAS at ``p``, goes on above ``parent(p)``: one write, two claims."""

    def _climb_from(self, op: steps.OpState, child: Any) -> steps.OpState:
        if g.level(child) > self.max_level + 1 and g.level(child) < g.level(op.n):
            child = g.parent(child)
        return super()._climb_from(op, child)


class _ClimbLoadWaits(steps.Machine):
    """A climb load that re-reads while its side is claimed by someone (a wait, not a retry)."""

    def _climb_branches(self, op: steps.OpState, old: Any, logic: tree.Logic) -> steps.Branches:
        out = super()._climb_branches(op, old, logic)
        if op.pc != steps.C_LOAD:
            return out
        t = self.transitions
        wait = logic.and_(logic.not_(t.is_occupied(old)), t.unmark_applies(old, g.side(op.child)))
        return [(logic.and_(guard, logic.not_(wait)), nxt) for guard, nxt in out] + [(wait, op)]


EVERY_MUTANTS: dict[str, tuple[str, Variant]] = {
    "climb_skips_a_level": (
        "the climb's CAS at p is followed by a climb above parent(p): one write moves the claim two levels",
        Variant("climb_skips_a_level", transitions=bits.COUNTED, machine=_ClimbSkipsALevel),
    ),
    "climb_load_waits": (
        "the climb load waits (re-reads) while its side is claimed: a loop no other write need end",
        Variant("climb_load_waits", transitions=bits.COUNTED, machine=_ClimbLoadWaits),
    ),
}
"""Step-machine mutants of ``counted``: ``counted_every``'s frame (``climb_skips_a_level``) and
lock-freedom (``climb_load_waits``) obligations must each catch one."""


class _RollbackSkipsTooFar(steps.Machine):
    """After a rollback the scan resumes one node past the failed ancestor's subtree."""

    def _finish_free(self, op: steps.OpState, rb: int) -> steps.OpState:
        if not rb:
            return super()._finish_free(op, rb)
        return self._advance(op, g.after_subtree(op.fail, g.level(op.n)) - op.n + 1)


@dataclasses.dataclass(frozen=True)
class _ScanNeverGivesUp(steps.Machine):
    """A scan that starts a new lap instead of failing when its level is used up."""

    gives_up: bool = False


class _LoadPassesOverFreeNode(steps.Machine):
    """A scan whose load moves on from its candidate while other nodes are left, free or not."""

    def branches(self, op: steps.OpState, old: Any, logic: tree.Logic = tree.PY) -> steps.Branches:
        if op.pc == steps.A_LOAD and op.left > 1:
            return [(True, self._advance(op, 1))]
        return super().branches(op, old, logic)


def _node_ok_reads_left_twice(width: int) -> Callable[..., Any]:
    base = bits.counted(width).node_ok
    assert base is not None

    def node_ok(w: Any, wl: Any, wr: Any, logic: Any) -> Any:
        return base(w, wl, wl, logic)

    return node_ok


SCAN_MUTANTS: dict[str, tuple[str, Variant]] = {
    "rollback_skips_too_far": (
        "after a rollback the scan resumes one node past the failed ancestor's subtree",
        Variant("rollback_skips_too_far", transitions=bits.COUNTED, machine=_RollbackSkipsTooFar),
    ),
    "scan_never_gives_up": (
        "a scan that has visited its whole level starts another lap instead of failing",
        Variant("scan_never_gives_up", transitions=bits.COUNTED, machine=_ScanNeverGivesUp),
    ),
    "load_passes_over_free_node": (
        "a scan's load moves on from its candidate, free or not, while other nodes are left",
        Variant("load_passes_over_free_node", transitions=bits.COUNTED, machine=_LoadPassesOverFreeNode),
    ),
    "node_ok_reads_left_twice": (
        "the quiescent invariant checks the right count against the left child's blocks",
        Variant(
            "node_ok_reads_left_twice",
            transitions=bits.COUNTED,
            at_width=_counted(node_ok=_node_ok_reads_left_twice),
        ),
    ),
}
"""Mutants of ``counted`` for ``counted_close`` and the scan-mode obligations of
``counted_every`` (``cevery_scan_*``): each of those obligation families is broken by one
(``tests/test_proofs_close.py``)."""


class _DescentSkipsALevel(steps.Machine):
    """A descent that, after its CAS at ``x``, goes on two levels down: one write hands its
    token past a node it never counted."""

    def _down(self, op: steps.OpState) -> steps.OpState:
        if op.child != op.n and g.level(op.child) + 1 < g.level(op.n):
            op = op._replace(child=g.ancestor_at(op.n, g.level(op.child) + 1))
        return super()._down(op)


def _on_top_down_node(name: str, **changes: Any) -> Variant:
    def at(width: int) -> bits.Transitions:
        return dataclasses.replace(bits.top_down_node(width), **changes)

    return Variant(name, transitions=at(bits.COUNT_BITS), at_width=at)


TOPDOWN_EVERY_MUTANTS: dict[str, tuple[str, str, Variant]] = {
    "descent_skips_a_level": (
        "tnevery_frame@alloc:descend-cas",
        "after its CAS at x the descent goes on two levels down: one write moves the token two levels",
        Variant(
            "descent_skips_a_level",
            transitions=bits.TOP_DOWN_NODE,
            at_width=bits.top_down_node,
            machine=_DescentSkipsALevel,
        ),
    ),
    "descent_keeps_surplus": (
        "tnevery_inv@alloc:descend-cas",
        "the descent never gives back its claim where another claimed the node first (climb_stops never)",
        _on_top_down_node("descent_keeps_surplus", climb_stops=bits.never),
    ),
    "uncount_never_stops": (
        "tnevery_inv@free:unmark-cas",
        "the free's uncounting goes on above a node that keeps a claim (unmark_stops never)",
        _on_top_down_node("uncount_never_stops", unmark_stops=bits.never),
    ),
}
"""Mutants of ``top-down-node``: name -> (the every-depth obligation that must fail, what is
broken, the variant); ``topdown_every``'s frame and invariant each catch one
(tests/test_proofs_topdown_every.py, with the damaged invariant that breaks ``tnevery_safe``)."""


class _DescentLoadWaits(steps.Machine):
    """A descent load that re-reads while the node it loads has a claim on some side (a wait for
    the claim to go, not a retry after a lost CAS)."""

    def _descend_branches(self, op: steps.OpState, old: Any, logic: tree.Logic) -> steps.Branches:
        out = super()._descend_branches(op, old, logic)
        if op.pc != steps.D_LOAD:
            return out
        t = self.transitions
        wait = logic.and_(logic.not_(t.is_occupied(old)), t.climb_stops(old, g.side(op.child)))
        return [(logic.and_(guard, logic.not_(wait)), nxt) for guard, nxt in out] + [(wait, op)]


TOPDOWN_EVERY_MUTANTS["descent_load_waits"] = (
    "tnevery_lockfree@alloc:descend-load",
    "the descent load waits (re-reads) while its node has a claim: a loop no other write need end",
    Variant(
        "descent_load_waits",
        transitions=bits.TOP_DOWN_NODE,
        at_width=bits.top_down_node,
        machine=_DescentLoadWaits,
    ),
)


def _on_top_down_node_machine(name: str, machine: type[steps.Machine]) -> Variant:
    return Variant(name, transitions=bits.TOP_DOWN_NODE, at_width=bits.top_down_node, machine=machine)


def _nothing_free(w: Any) -> Any:
    return w != w


def _node_ok_per_side(width: int) -> Any:
    """``top-down``'s quiescent invariant (a child hands up one per claimed side) in a
    ``top-down-node`` bundle (whose children hand up one in all)."""
    return bits.top_down(width).node_ok


TOPDOWN_CLOSE_MUTANTS: dict[str, tuple[tuple[str, ...], str, Variant]] = {
    "node_ok_per_side": (
        ("tnevery_init_node", "tnevery_quiescent@done:ok"),
        "the quiescent invariant counts a child's claimed sides, not one per child",
        Variant(
            "node_ok_per_side",
            transitions=dataclasses.replace(bits.TOP_DOWN_NODE, node_ok=_node_ok_per_side(bits.COUNT_BITS)),
            at_width=lambda w: dataclasses.replace(bits.top_down_node(w), node_ok=_node_ok_per_side(w)),
        ),
    ),
    "load_finds_nothing_free": (
        ("tnevery_lin@alloc:load",),
        "the alloc's load takes every word for taken: a None where nothing overlaps the candidate",
        _on_top_down_node("load_finds_nothing_free", is_free=_nothing_free),
    ),
    "descent_load_waits": (
        ("tnevery_lfglobal@alloc:descend-load", "tnevery_scan_lockfree@alloc:descend-load"),
        "the descent load waits (re-reads) while its node has a claim",
        _on_top_down_node_machine("descent_load_waits", _DescentLoadWaits),
    ),
    "rollback_skips_too_far": (
        ("tnevery_scan_skip@rollback:release",),
        "after a rollback the scan resumes one node past the occupied node's subtree",
        _on_top_down_node_machine("rollback_skips_too_far", _RollbackSkipsTooFar),
    ),
    "scan_never_gives_up": (
        ("tnevery_scan_lfglobal@alloc:load",),
        "a scan that has visited its whole level starts another lap instead of failing",
        _on_top_down_node_machine("scan_never_gives_up", _ScanNeverGivesUp),
    ),
    "load_passes_over_free_node": (
        ("tnevery_scan_lin@alloc:load",),
        "a scan's load moves on from its candidate, free or not, while other nodes are left",
        _on_top_down_node_machine("load_passes_over_free_node", _LoadPassesOverFreeNode),
    ),
    "descent_skips_a_level": (
        ("tnevery_scan_frame@alloc:descend-cas",),
        "after its CAS at x the descent goes on two levels down",
        _on_top_down_node_machine("descent_skips_a_level", _DescentSkipsALevel),
    ),
    "uncount_never_stops": (
        ("tnevery_scan_inv@free:unmark-cas",),
        "the free's uncounting goes on above a node that keeps a claim",
        _on_top_down_node("uncount_never_stops", unmark_stops=bits.never),
    ),
}
"""Mutants of ``top-down-node`` for ``topdown_close``: name -> (the obligations each must break,
what is broken, the variant). Every family of ``topdown_close`` (and each scan-mode family) is
broken by one, or by a damaged definition (``tests/test_proofs_topdown_close.py``)."""


def top_down_mutants() -> dict[str, tuple[str, Variant]]:
    """``TOPDOWN_EVERY_MUTANTS`` and ``TOPDOWN_CLOSE_MUTANTS`` as ``nbbs prove --mutant`` names
    them: ``top_down_node:NAME`` -> (what is broken, the variant). The prefix keeps them apart
    from ``counted``'s mutants of the same name (``SCAN_MUTANTS``' ``rollback_skips_too_far``...)."""
    out: dict[str, tuple[str, Variant]] = {}
    for name, (_, what, v) in {**TOPDOWN_EVERY_MUTANTS, **TOPDOWN_CLOSE_MUTANTS}.items():
        out[f"top_down_node:{name}"] = (what, v)
    return out
