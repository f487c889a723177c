"""The spec, the abstraction and the quiescent invariant say what they claim."""

import itertools

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


def test_every_sequentially_built_tree_satisfies_the_quiescent_invariant() -> None:
    depth = 3
    for live in itertools.islice(itertools.combinations(g.all_nodes(depth), 3), 400):
        state = frozenset(live)
        if spec.broken_invariants(spec.Spec.of(depth), state):
            continue
        a = NBBS(depth, page_size=1)
        for n in sorted(state, key=g.level):
            assert a.alloc(g.order_of(depth, n), hint=n - g.first_node(g.level(n))) == g.first_page(depth, n)
        words = a.words()
        assert tree.abstraction(words, depth) == state
        assert tree.inv_quiescent(words, depth)


def test_the_quiescent_invariant_catches_each_kind_of_bad_word() -> None:
    a = NBBS(2, page_size=1)
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
    above = list(NBBS(2, page_size=1, max_order=1).words())
    above[1] = bits.OCC_LEFT
    assert not tree.inv_quiescent(above, 2, max_level=1)
