"""The thread-modular invariant: safe for the shipped variant at depth 1, and it can fail."""

from nbbs.check.mutants import TRANSITION_MUTANTS
from nbbs.model import bits
from nbbs.proofs.threadmodular import fixpoint


def test_the_shipped_variant_keeps_held_blocks_disjoint_for_any_number_of_threads_at_depth_1() -> None:
    r = fixpoint(1)
    assert r.complete and r.violation is None and r.ok
    assert r.pairs > 100


def test_the_published_variant_keeps_held_blocks_disjoint_at_depth_1() -> None:
    assert fixpoint(1, "reference").ok


def test_mutants_that_only_break_under_concurrency_give_an_overlap() -> None:
    for name in ("climb_keeps_coal", "unmark_ignores_coal"):
        r = fixpoint(1, transitions=TRANSITION_MUTANTS[name][1])
        assert r.violation is not None and "overlapping a held block" in r.violation, name


def test_a_fixpoint_cut_short_is_not_ok() -> None:
    r = fixpoint(1, bits.DEFAULT_VARIANT, max_pairs=10)
    assert not r.complete and not r.ok
