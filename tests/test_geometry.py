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
