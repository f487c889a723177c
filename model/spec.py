"""The abstract buddy allocator: what is true, with no bits and no concurrency.

The abstract state is an immutable set of live blocks. A block is a node of the implicit
tree (``geometry``), so it is at once a page range ``[first_page, first_page + 2**order)``
aligned to its size, and the set can be compared directly with the abstraction of the
status words (``tree.abstraction``).

One shape serves every checker (the Hypothesis oracle, the linearizability checker, the
model checker): ``step(spec, state, op) -> (ok, new_state)``, where ``ok`` says whether the
operation with its observed result is allowed in ``state``.

The allocation contract:

* ``alloc(order)`` may return any free block of that order: a block none of whose pages is
  in a live block. Which one is the allocator's business.
* ``alloc(order)`` may return "no block" (``None``) when no free block of that order exists.
  Under concurrency NBBS may also fail while one exists (``Spec.spurious_failures``); a
  linearizable *sequential* run never may.
* ``free(block)`` is allowed only for a live block, and removes exactly it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from nbbs.model import geometry as g

State = frozenset[int]
"""Live blocks, each a tree node."""

EMPTY: State = frozenset()


class Alloc(NamedTuple):
    """``alloc(order)`` that returned ``result``: a node, or None for "no block"."""

    order: int
    result: int | None


class Free(NamedTuple):
    """``free`` of the block at ``node``."""

    node: int


Op = Alloc | Free


@dataclass(frozen=True)
class Spec:
    """The arena's shape and the failure contract.

    ``max_order`` is the largest order one may ask for; ``spurious_failures`` allows an
    alloc to report "no block" while one is free (the concurrent contract of NBBS).
    """

    depth: int
    max_order: int
    spurious_failures: bool = False

    @classmethod
    def of(cls, depth: int, max_order: int | None = None, spurious_failures: bool = False) -> Spec:
        """The spec of an arena of ``2**depth`` pages."""
        return cls(depth, depth if max_order is None else max_order, spurious_failures)

    def orders(self) -> range:
        """The orders an alloc may ask for."""
        return range(self.max_order + 1)


def block_pages(depth: int, n: int) -> range:
    """The pages of block ``n``."""
    start = g.first_page(depth, n)
    return range(start, start + g.pages(depth, n))


def is_free(state: State, n: int) -> bool:
    """No page of ``n`` is in a live block: no live block is ``n``, an ancestor or a descendant."""
    return not any(g.overlaps(n, b) for b in state)


def free_blocks(spec: Spec, state: State, order: int) -> Iterator[int]:
    """The blocks of ``order`` an alloc may return in ``state``, left to right."""
    lvl = g.level_of_order(spec.depth, order)
    return (n for n in g.nodes_at(lvl) if is_free(state, n))


def can_alloc(spec: Spec, state: State, order: int) -> bool:
    """Some block of ``order`` is free."""
    return next(free_blocks(spec, state, order), None) is not None


def step(spec: Spec, state: State, op: Op) -> tuple[bool, State]:
    """Apply ``op`` with its observed result; ``ok`` is False if the spec forbids it."""
    if isinstance(op, Alloc):
        if not 0 <= op.order <= spec.max_order:
            return False, state
        if op.result is None:
            return spec.spurious_failures or not can_alloc(spec, state, op.order), state
        n = op.result
        lvl = g.level_of_order(spec.depth, op.order)
        if g.level(n) != lvl or not is_free(state, n):
            return False, state
        return True, state | {n}
    if op.node not in state:
        return False, state
    return True, state - {op.node}


# -- invariants of the abstract state ---------------------------------------------------


def _inside(spec: Spec, n: int) -> bool:
    return 1 <= n < g.node_count(spec.depth)


def inv_inside(spec: Spec, state: State) -> bool:
    """Every block is a node of the tree, so it lies inside the arena."""
    return all(_inside(spec, n) for n in state)


def inv_aligned(spec: Spec, state: State) -> bool:
    """Every block (inside the arena) starts at a multiple of its own size."""
    return all(g.first_page(spec.depth, n) % g.pages(spec.depth, n) == 0 for n in state if _inside(spec, n))


def inv_within_max_order(spec: Spec, state: State) -> bool:
    """No block is larger than the largest order one may ask for."""
    return all(g.order_of(spec.depth, n) <= spec.max_order for n in state)


def inv_disjoint(spec: Spec, state: State) -> bool:
    """No two live blocks share a page."""
    blocks = sorted(state)
    return not any(g.overlaps(a, b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])


INVARIANTS = (inv_inside, inv_aligned, inv_within_max_order, inv_disjoint)


def broken_invariants(spec: Spec, state: State) -> list[str]:
    """The names of the invariants ``state`` breaks (empty if none)."""
    return [inv.__name__ for inv in INVARIANTS if not inv(spec, state)]


def coalesces(spec: Spec, state: State, n: int) -> bool:
    """Coalescing: if ``n`` and its buddy are free and nothing above them is live, their parent is free.

    Freeing both buddies thus makes the parent's range allocatable as one block.
    """
    p = g.parent(n)
    premise = is_free(state, n) and is_free(state, g.buddy(n)) and not any(g.is_ancestor(b, p) for b in state)
    return not premise or is_free(state, p)


def pages_in_use(spec: Spec, state: Iterable[int]) -> int:
    """How many pages the live blocks cover."""
    return sum(g.pages(spec.depth, n) for n in state)
