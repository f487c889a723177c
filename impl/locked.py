"""A textbook buddy allocator behind one lock: the baseline for benchmarks and differential tests.

Free lists per order (sets of tree nodes, lowest address first on alloc); alloc splits the
smallest larger free block, free merges a block with its buddy while the buddy is free.
It shares only the arena checks and the tree arithmetic with NBBS, so the two can check
each other.
"""

from __future__ import annotations

import threading

from nbbs.impl.arena import Arena
from nbbs.model import bits
from nbbs.model import geometry as g


class LockedBuddy:
    """The same API as ``NBBS``, every call serialised by one lock."""

    transitions: bits.Transitions = bits.VARIANTS[bits.DEFAULT_VARIANT]
    """Only for ``words()``: the variant whose quiescent words it shows (NBBS's default)."""

    def __init__(
        self, depth: int, *, page_size: int = 4096, start: int = 0, max_order: int | None = None
    ) -> None:
        self.arena = Arena(depth, page_size, start, max_order)
        self.depth = depth
        self.max_order = self.arena.top_order
        self.max_level = self.arena.max_level
        self._lock = threading.Lock()
        self._live: set[int] = set()
        # Free lists by order; the arena starts as free blocks of the maximum order.
        self._free: list[set[int]] = [set() for _ in range(self.max_order + 1)]
        self._free[self.max_order] = set(g.nodes_at(self.max_level))

    def alloc(self, order: int, hint: int | None = None) -> int | None:
        """The address of a free block of ``2**order`` pages (lowest first), or None if none is free.

        ``hint`` is checked as ``NBBS`` checks it (an int or None), then ignored.
        """
        order = self.arena.check_order(order)
        self.arena.check_hint(hint)
        with self._lock:
            o = order
            while o <= self.max_order and not self._free[o]:
                o += 1
            if o > self.max_order:
                return None
            n = min(self._free[o])
            self._free[o].remove(n)
            while o > order:  # split, keeping the left half, freeing the right
                o -= 1
                n = g.left(n)
                self._free[o].add(g.buddy(n))
            self._live.add(n)
            return self.arena.address(n)

    def alloc_bytes(self, size: int) -> int | None:
        """A block of at least ``size`` bytes."""
        return self.alloc(self.arena.order_for_bytes(size))

    def free(self, address: int, order: int | None = None) -> None:
        """Give back the live block at ``address``; merge it with free buddies."""
        with self._lock:
            n = self.arena.block_to_free(address, order, self._live.__contains__)
            self._live.remove(n)
            o = g.order_of(self.depth, n)
            while o < self.max_order and g.buddy(n) in self._free[o]:
                self._free[o].remove(g.buddy(n))
                n, o = g.parent(n), o + 1
            self._free[o].add(n)

    def live_blocks(self) -> list[tuple[int, int]]:
        """(address, order) of every allocated block, by address."""
        with self._lock:
            return sorted((self.arena.address(n), g.order_of(self.depth, n)) for n in self._live)

    def words(self) -> tuple[int, ...]:
        """The status words NBBS would hold quiescent with these blocks live (for comparison)."""
        with self._lock:
            words = [0] * g.node_count(self.depth)
            for n in self._live:
                words[n] = bits.BUSY
                child = n
                while g.level(child) > self.max_level:
                    p, old = g.parent(child), words[g.parent(child)]
                    words[p] = self.transitions.climb(old, g.side(child))
                    if self.transitions.climb_stops(old, g.side(child)):
                        break
                    child = p
            return tuple(words)
