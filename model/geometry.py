"""Index arithmetic of the implicit buddy tree: the only place it is written.

The arena holds ``2**depth`` pages. Its blocks form a complete binary tree stored
implicitly in an array, node 1 the root::

    level 0                 1                      order = depth      (the whole arena)
                      /           \\
    level 1         2               3              order = depth - 1
                  /   \\           /   \\
    level 2      4     5         6     7           order = depth - 2
                / \\   / \\       / \\   / \\
    level 3    8   9 10  11    12 13 14  15        order = depth - 3  (one page each at depth 3)

    left(n) = 2n      right(n) = 2n + 1      parent(n) = n // 2      buddy(n) = n ^ 1
    level(n) = n.bit_length() - 1           order(n) = depth - level(n)

A node at level ``l`` covers ``2**(depth - l)`` pages starting at page
``(n - 2**l) * 2**(depth - l)``. Index 0 of the array is unused, so an array of
``2**(depth + 1)`` words holds the whole tree.

Every helper is generic where it can be: the bit operations work on Python ints and on
z3 bit-vectors alike, so the proofs use these same functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

ROOT = 1


def left(n: int) -> int:
    """The left child of ``n``."""
    return n << 1


def right(n: int) -> int:
    """The right child of ``n``."""
    return (n << 1) | 1


def parent(n: int) -> int:
    """The parent of ``n`` (``n`` is not the root)."""
    return n >> 1


def buddy(n: int) -> int:
    """The other child of ``n``'s parent (``n`` is not the root)."""
    return n ^ 1


def side(n: Any) -> Any:
    """1 if ``n`` is a left child, 0 if a right child: the shift that selects its bits in the parent.

    Written with bit operations only, so a z3 bit-vector node gets a z3 bit-vector side.
    """
    return (n & 1) ^ 1


def is_left(n: int) -> bool:
    """True if ``n`` is the left child of its parent."""
    return n & 1 == 0


def level(n: int) -> int:
    """The level of node ``n``: 0 for the root, ``depth`` for a single page."""
    return n.bit_length() - 1


def first_node(lvl: int) -> int:
    """The leftmost node of level ``lvl``."""
    return 1 << lvl


def width(lvl: int) -> int:
    """How many nodes level ``lvl`` has."""
    return 1 << lvl


def nodes_at(lvl: int) -> range:
    """All nodes of level ``lvl``, left to right."""
    return range(1 << lvl, 2 << lvl)


def node_count(depth: int) -> int:
    """Length of the word array for a tree of ``depth``: index 0 unused, nodes 1 .. 2**(depth+1)-1."""
    return 2 << depth


def all_nodes(depth: int) -> range:
    """Every node of a tree of ``depth``, root first, level by level."""
    return range(ROOT, node_count(depth))


def level_of_order(depth: int, order: int) -> int:
    """The level whose nodes are blocks of ``2**order`` pages."""
    return depth - order


def order_of(depth: int, n: int) -> int:
    """log2 of the size in pages of the block that node ``n`` stands for."""
    return depth - level(n)


def pages(depth: int, n: int) -> int:
    """How many pages node ``n`` covers."""
    return 1 << (depth - level(n))


def first_page(depth: int, n: int) -> int:
    """The first page of the block node ``n`` stands for."""
    return int(first_page_at(depth, n, level(n)))


def first_page_at(depth: int, n: Any, lvl: int) -> Any:
    """The first page of node ``n`` known to lie on level ``lvl`` (generic: ``n`` may be a z3 term)."""
    return (n - first_node(lvl)) << (depth - lvl)


def node_of(depth: int, page: int, order: int) -> int:
    """The node of order ``order`` whose block starts at (or contains) ``page``."""
    lvl = depth - order
    return (1 << lvl) + (page >> order)


def is_ancestor(a: int, n: int) -> bool:
    """True if ``a`` is ``n`` or lies on the path from ``n`` to the root."""
    d = n.bit_length() - a.bit_length()  # level(n) - level(a), inlined: the spec calls this per live block
    return d >= 0 and n >> d == a


def ancestors(n: int, top_level: int = 0) -> Iterator[int]:
    """The proper ancestors of ``n`` from its parent up to the one at ``top_level`` (inclusive)."""
    while level(n) > top_level:
        n >>= 1
        yield n


def ancestor_at(n: int, lvl: int) -> int:
    """The ancestor of ``n`` at level ``lvl`` (``n`` itself if ``lvl == level(n)``)."""
    return n >> (level(n) - lvl)


def after_subtree(a: int, lvl: int) -> int:
    """The first node of level ``lvl`` right of ``a``'s subtree (one past the level's end if none).

    This is where a scan on level ``lvl`` continues after finding ancestor ``a`` occupied.
    """
    return (a + 1) << (lvl - level(a))


def overlaps(a: int, b: int) -> bool:
    """True if the blocks of nodes ``a`` and ``b`` share a page: one is an ancestor of the other."""
    return is_ancestor(a, b) or is_ancestor(b, a)


# -- generic forms (ints and z3 bit-vectors alike) ---------------------------------------------
#
# The functions above use Python's ``bit_length`` and ``if`` (fast, and what the allocator and
# the model checker run). The ones below compute the same with operators a z3 bit-vector also
# has, plus an if-then-else passed in (z3's ``If``), as ``steps.effect`` does, so the proofs
# reason about a symbolic node of a symbolic depth with this module's arithmetic; on ints they
# agree with the fast forms (``tests/test_geometry.py`` checks every node up to depth 12).


def _ite(c: Any, a: Any, b: Any) -> Any:
    return a if c else b


def level_any(n: Any, ite: Any = _ite, bits: int = 64) -> Any:
    """The level of node ``n`` (its highest set bit) by binary search over ``bits`` bits: ``level``
    for an int or a z3 bit-vector of ``bits`` bits (``n >= 1``, and below ``2**(bits - 1)``)."""
    lvl = n & 0
    step = 1
    while step * 2 < bits:
        step *= 2
    while step:
        high = (n >> step) != 0
        lvl = ite(high, lvl + step, lvl)
        n = ite(high, n >> step, n)
        step //= 2
    return lvl


def ancestor_any(n: Any, lvl: Any, ite: Any = _ite, bits: int = 64) -> Any:
    """``ancestor_at`` for a level and node that may be z3 terms (``lvl <= level(n)``)."""
    return n >> (level_any(n, ite, bits) - lvl)


def is_ancestor_any(a: Any, n: Any, logic: Any, ite: Any = _ite, bits: int = 64) -> Any:
    """``is_ancestor`` (``a`` is ``n`` or above it) with ``logic``'s connectives, for ints or z3 terms."""
    d = level_any(n, ite, bits) - level_any(a, ite, bits)
    return logic.and_(d >= 0, (n >> ite(d >= 0, d, d & 0)) == a)


def in_tree(n: Any, depth: Any, logic: Any) -> Any:
    """``n`` is a node of a tree of ``depth`` (``1 <= n < node_count(depth)``), generic."""
    return logic.and_(n >= 1, n < (n & 0 | 2) << depth)
