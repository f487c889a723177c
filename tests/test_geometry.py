"""The implicit tree's arithmetic agrees with its definition."""

from nbbs.model import geometry as g


def test_every_node_covers_its_pages_and_children_split_them() -> None:
    depth = 4
    for n in g.all_nodes(depth):
        start, size = g.first_page(depth, n), g.pages(depth, n)
        assert start % size == 0
        assert g.node_of(depth, start, g.order_of(depth, n)) == n
        if g.level(n) < depth:
            assert g.first_page(depth, g.left(n)) == start
            assert g.first_page(depth, g.right(n)) == start + size // 2
            assert g.parent(g.left(n)) == g.parent(g.right(n)) == n
            assert g.buddy(g.left(n)) == g.right(n)


def test_side_selects_left_as_one() -> None:
    assert g.side(g.left(5)) == 1 and g.side(g.right(5)) == 0
    assert g.is_left(10) and not g.is_left(11)


def test_after_subtree_is_the_first_node_right_of_the_subtree() -> None:
    assert g.after_subtree(2, 3) == 12
    assert g.after_subtree(3, 3) == 16
    assert g.after_subtree(9, 3) == 10


def test_ancestors_stop_at_the_top_level() -> None:
    assert list(g.ancestors(9)) == [4, 2, 1]
    assert list(g.ancestors(9, top_level=1)) == [4, 2]
    assert g.is_ancestor(2, 9) and g.is_ancestor(9, 9) and not g.is_ancestor(3, 9)
    assert g.overlaps(2, 9) and not g.overlaps(4, 5)


def test_the_generic_level_and_ancestry_agree_with_the_fast_forms_on_every_node_to_depth_12() -> None:
    from nbbs.model.tree import PY

    nodes = range(1, g.node_count(12))
    assert all(g.level_any(n) == g.level(n) for n in nodes)
    for n in range(1, g.node_count(6)):
        for a in range(1, g.node_count(6)):
            assert g.is_ancestor_any(a, n, PY) == g.is_ancestor(a, n), (a, n)
        for lvl in range(g.level(n) + 1):
            assert g.ancestor_any(n, lvl) == g.ancestor_at(n, lvl)
    assert all(g.in_tree(n, 5, PY) == (n in g.all_nodes(5)) for n in range(0, 80))


def test_the_generic_level_on_z3_terms_is_the_level_of_every_node_of_a_28_deep_tree() -> None:
    import z3

    n = z3.BitVec("n", 63)
    lvl = g.level_any(n, z3.If, 63)
    s = z3.Solver()
    # Some node of the tree whose computed level is not the one its bounds give.
    s.add(n >= 1, n < (1 << 29), z3.Not(z3.And(z3.ULE(1 << lvl, n), z3.ULT(n, 2 << lvl))))
    assert s.check() == z3.unsat
    broken = g.level_any(n, z3.If, 16)  # searches too few bits: wrong above level 15
    s = z3.Solver()
    s.add(n >= 1, n < (1 << 29), z3.Not(z3.And(z3.ULE(1 << broken, n), z3.ULT(n, 2 << broken))))
    assert s.check() == z3.sat
