"""The spec, the abstraction and the quiescent invariant say what they claim."""

import itertools

import pytest

from nbbs.impl import NBBS
from nbbs.model import bits, spec, tree
from nbbs.model import geometry as g


def test_alloc_may_return_only_a_free_block_of_the_right_order() -> None:
    s = spec.Spec.of(2)
    ok, state = spec.step(s, spec.EMPTY, spec.Alloc(1, 2))
    assert ok and state == {2}
    assert spec.step(s, state, spec.Alloc(0, 4)) == (False, state)  # inside block 2
    assert spec.step(s, state, spec.Alloc(0, 2)) == (False, state)  # wrong level
    assert spec.step(s, state, spec.Alloc(0, 6))[0]


def test_alloc_may_fail_only_when_nothing_fits_unless_spurious_failures_are_allowed() -> None:
    s = spec.Spec.of(2)
    assert not spec.step(s, frozenset({4}), spec.Alloc(1, None))[0]  # node 3 is free
    assert spec.step(s, frozenset({4, 6}), spec.Alloc(1, None))[0]
    assert spec.step(spec.Spec.of(2, spurious_failures=True), spec.EMPTY, spec.Alloc(1, None))[0]


def test_free_is_allowed_only_for_a_live_block() -> None:
    s = spec.Spec.of(2)
    assert spec.step(s, frozenset({5}), spec.Free(5)) == (True, frozenset())
    assert not spec.step(s, frozenset({5}), spec.Free(2))[0]


def test_freeing_both_buddies_coalesces() -> None:
    s = spec.Spec.of(3)
    for live in [frozenset({8, 9}), frozenset({8, 9, 3}), frozenset({8, 9, 10})]:
        state = live - {8, 9}
        assert spec.is_free(state, g.parent(8)) and spec.coalesces(s, state, 8)
    assert not spec.is_free(frozenset({1}), 2) and spec.coalesces(s, frozenset({1}), 8)


def test_the_invariants_reject_overlap_misalignment_and_foreign_blocks() -> None:
    s = spec.Spec.of(3, max_order=2)
    assert spec.broken_invariants(s, frozenset({2, 9})) == ["inv_disjoint"]
    assert spec.broken_invariants(s, frozenset({16})) == ["inv_inside"]
    assert spec.broken_invariants(s, frozenset({1})) == ["inv_within_max_order"]
    assert spec.broken_invariants(s, frozenset({2, 12, 13})) == []


@pytest.mark.parametrize("variant", ["corrected", "counted"])
def test_every_sequentially_built_tree_satisfies_the_quiescent_invariant(variant: str) -> None:
    depth = 3
    for live in itertools.islice(itertools.combinations(g.all_nodes(depth), 3), 400):
        state = frozenset(live)
        if spec.broken_invariants(spec.Spec.of(depth), state):
            continue
        a = NBBS(depth, page_size=1, variant=variant)
        for n in sorted(state, key=g.level):
            assert a.alloc(g.order_of(depth, n), hint=n - g.first_node(g.level(n))) == g.first_page(depth, n)
        words = a.words()
        assert tree.abstraction(words, depth) == state
        assert tree.inv_quiescent(words, depth, 0, a.transitions)


def test_the_quiescent_invariant_catches_each_kind_of_bad_word() -> None:
    a = NBBS(2, page_size=1, variant="corrected")
    a.alloc(0, hint=0)  # node 4: words 1 -> OCC_L, 2 -> OCC_L, 4 -> BUSY
    good = list(a.words())
    assert tree.inv_quiescent(good, 2)
    for n, w in [
        (1, 0),
        (2, bits.OCC_LEFT | bits.COAL_LEFT),
        (5, bits.OCC),
        (3, bits.OCC_RIGHT),
        (1, bits.BUSY),
    ]:
        bad = list(good)
        bad[n] = w
        assert not tree.inv_quiescent(bad, 2), (n, bits.show(w))
    above = list(NBBS(2, page_size=1, max_order=1, variant="corrected").words())
    above[1] = bits.OCC_LEFT
    assert not tree.inv_quiescent(above, 2, max_level=1)


def test_the_counted_quiescent_invariant_catches_each_wrong_count() -> None:
    t = bits.COUNTED
    a = NBBS(2, page_size=1, variant="counted")
    a.alloc(0, hint=0)  # node 4: words 1 -> L=1, 2 -> L=1, 4 -> BUSY
    a.alloc(0, hint=3)  # node 7: words 1 -> R=1, 3 -> R=1, 7 -> BUSY
    good = list(a.words())
    assert tree.inv_quiescent(good, 2, 0, t), tree.quiescent_violations(good, 2, 0, t)
    one_l, one_r = t.climb(0, 1), t.climb(0, 0)
    for n, w in [
        (1, 0),  # the root forgets both blocks
        (1, good[1] + one_l),  # one claim too many on the left
        (2, good[2] - one_l + one_r),  # the claim on the wrong side
        (2, good[2] | bits.COAL_LEFT),  # a stray low bit
        (5, bits.OCC),  # a block that is not BUSY
        (6, one_r),  # a claim with no block below
        (1, bits.BUSY),  # a block above blocks
    ]:
        bad = list(good)
        bad[n] = w
        assert not tree.inv_quiescent(bad, 2, 0, t), (n, t.show(w))
    above = list(NBBS(2, page_size=1, max_order=1, variant="counted").words())
    above[1] = one_l
    assert not tree.inv_quiescent(above, 2, 1, t)
