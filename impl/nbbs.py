"""NBBS: the non-blocking buddy system (Marotta et al., one level per node), over atomic words.

Every word transition comes from ``model.bits`` and every index from ``model.geometry``;
this module only orders the atomic accesses. The algorithm, in the paper's names:

``alloc(order)``
    Scan the nodes of level ``depth - order`` round-robin from a start position. *Occupy* a
    free candidate with one CAS (``0 -> BUSY``), then *climb* to ``max_level``, recording the
    candidate in each ancestor with a CAS. If an ancestor is itself occupied, roll back (a
    free of the candidate bounded below that ancestor) and continue the scan after the
    ancestor's subtree. One lap without success returns None.

``free(block)``
    In the published algorithm (``variant="reference"``): *mark* (fetch-or the child-side
    COAL bit into each ancestor, stopping after the first whose other side was occupied and
    not coalescing), *release* (a CAS of the block's word to 0; the published code stores),
    *unmark* (CAS-clear the child-side
    COAL and OCC bits while the COAL bit is still there, stopping where the other side stays
    occupied).

``counted`` (``ALGORITHM.md`` §1) records a climb by adding one to the ancestor's count of
claims on that side, and frees by releasing the block and then taking its claim off every
ancestor (unmark, no mark phase): no COAL licence exists that another free could consume. The
default variant, ``top_down_node`` (§1.4.3, §1.4.5), keeps its words but climbs in two passes
(``_climb_top_down``: loads up to the first ancestor with a claim, then CASes from there back
down) and stops its free where a node keeps a claim. ``corrected`` is the published algorithm
with four repairs, safe only within bounds. Each difference is a flag or transition of the
``bits.Transitions`` bundle, so the code below is the same for all of them.

No lock is taken by the algorithm; the word backend provides the atomic accesses.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from nbbs.impl.arena import Arena
from nbbs.impl.atomics import Backend, StripedWords, Words
from nbbs.impl.errors import ConfigurationError, DoubleFreeError
from nbbs.model import bits
from nbbs.model import geometry as g
from nbbs.model.tree import live_walk

ENGINES = ("python", "c")
"""What runs the algorithm: ``"python"`` (this module, the reference and the default) or ``"c"``
(the C port as a CPython extension, ``nbbs.impl.native``)."""


def _spread(tid: int, lvl: int) -> int:
    """Thread ``tid``'s first position on a level of ``2**lvl`` nodes: ``tid``'s bits reversed.

    Threads 0, 1, 2, 3, ... start at 0, 1/2, 1/4, 3/4, ... of the level, spread evenly for
    any number of threads (the C code's ``tid * width / threads`` without knowing ``threads``).
    """
    return int(format(tid % (1 << lvl), f"0{lvl}b")[::-1], 2) if lvl else 0


class NBBS:
    """A lock-free buddy allocator over ``2**depth`` pages of ``page_size`` bytes from ``start``.

    ``alloc(order)`` returns the address of a block of ``2**order`` pages, or None when none
    can be had; ``free(address)`` gives it back. Any number of threads may call both at once.
    """

    transitions: bits.Transitions = bits.VARIANTS[bits.DEFAULT_VARIANT]
    """The word transitions this allocator runs: the variant's (``bits.VARIANTS``); a checker's
    mutant overrides them in a subclass."""

    def __new__(cls, *args: Any, engine: str | None = None, **kwargs: Any) -> NBBS:
        """``engine="c"`` builds a ``nbbs.impl.native.NativeNBBS`` (a subclass): same API, C code."""
        if engine is None or engine == "python":
            return super().__new__(cls)
        if engine != "c":
            raise ConfigurationError(f"engine must be one of {ENGINES}, got {engine!r}")
        from nbbs.impl.native import NativeNBBS  # builds the extension on first use

        if not issubclass(NativeNBBS, cls):
            raise ConfigurationError(
                f"engine='c' runs the C port's code; {cls.__name__} overrides the Python engine's, "
                "so it exists only with engine='python'"
            )
        return NativeNBBS.__new__(NativeNBBS)

    def __init__(
        self,
        depth: int,
        *,
        page_size: int = 4096,
        start: int = 0,
        max_order: int | None = None,
        backend: Backend | None = None,
        variant: str | None = None,
        engine: str | None = None,
    ) -> None:
        if engine not in (None, "python"):
            raise ConfigurationError(f"engine must be one of {ENGINES}, got {engine!r}")  # __new__ took "c"
        if variant is not None:
            if not isinstance(variant, str) or variant not in bits.VARIANTS:
                raise ConfigurationError(bits.unknown_variant(variant))
            self.transitions = bits.VARIANTS[variant]
        self.arena = Arena(depth, page_size, start, max_order)
        self.depth = depth
        self.max_order = self.arena.top_order
        self.max_level = self.arena.max_level
        nodes = g.node_count(depth)
        self._w: Words = backend(nodes) if backend else StripedWords(nodes, self.transitions.word_bits)
        self._local = threading.local()
        self._thread_ids = itertools.count()  # per allocator, so one thread's scans are repeatable

    # -- public API ------------------------------------------------------------------------

    def alloc(self, order: int, hint: int | None = None) -> int | None:
        """The address of a newly allocated block of ``2**order`` pages, or None if none was found.

        ``hint`` picks the first node of the scan (taken modulo the level's width); without
        it each thread starts where its last allocation of this order succeeded. Alone, the
        allocator returns None only when no block of that order is free; with other threads
        it may also when every free block was transiently busy or freed behind the scan.
        """
        order = self.arena.check_order(order)
        hint = self.arena.check_hint(hint)
        n = self._alloc_node(g.level_of_order(self.depth, order), hint)
        return None if n is None else self.arena.address(n)

    def alloc_bytes(self, size: int) -> int | None:
        """A block of at least ``size`` bytes: ``size`` rounded up to pages, then to a power of two."""
        return self.alloc(self.arena.order_for_bytes(size))

    def free(self, address: int, order: int | None = None) -> None:
        """Give back the live block at ``address`` (its order is found when not given).

        Raises an ``NBBSError`` subclass, touching no word, if no live block of that order
        starts there. Of two frees of one block racing, exactly one succeeds: the release is a
        CAS expecting the word the argument check loaded, and the loser raises
        ``DoubleFreeError`` (under ``counted``, having written nothing).
        """
        found: dict[int, int] = {}

        def is_block(n: int) -> bool:
            found[n] = w = self._w.load(n)
            return bool(self.transitions.is_occupied(w))

        n = self.arena.block_to_free(address, order, is_block)
        if not self._free_node(n, self.max_level, expected=found[n]):
            raise DoubleFreeError(
                f"no live block starts at {address:#x} any more: another thread's free of it came first "
                "(double free)"
            )

    def live_blocks(self) -> list[tuple[int, int]]:
        """(address, order) of every allocated block, by address.

        Walks down only the sides whose words show a claim (``tree.live_walk``): the cost grows
        with the blocks held, not the arena. Exact when no operation is in flight.
        """
        live = live_walk(self._w.load, self.depth, self.max_level, self.transitions)
        return sorted((self.arena.address(n), g.order_of(self.depth, n)) for n in live)

    def words(self) -> tuple[int, ...]:
        """A copy of the status words, indexed by node (index 0 unused)."""
        return self._w.snapshot()

    # -- the algorithm ---------------------------------------------------------------------

    def _start(self, lvl: int) -> int:
        """This thread's first scan position on level ``lvl``: where it last succeeded."""
        local = self._local
        last: dict[int, int] | None = getattr(local, "last", None)
        if last is None:
            local.tid = next(self._thread_ids)
            local.last = last = {}
        if lvl not in last:
            last[lvl] = _spread(local.tid, lvl)
        return last[lvl]

    def _alloc_node(self, lvl: int, hint: int | None) -> int | None:
        """Scan level ``lvl`` once round-robin; the node occupied and climbed, or None."""
        w, t = self._w, self.transitions
        first, size = g.first_node(lvl), g.width(lvl)
        pos = (self._start(lvl) if hint is None else hint) % size
        scanned = 0
        while scanned < size:
            n = first + pos
            cur = w.load(n)
            if t.is_free(cur) and w.cas(n, cur, t.occupy(cur)):
                failed, wrote = self._climb_top_down(n) if t.top_down else (self._climb(n), True)
                if failed is None:
                    if hint is None:
                        self._local.last[lvl] = pos
                    return n
                # Undo below the occupied ancestor, then skip its whole subtree.
                if not t.top_down:
                    released = self._free_node(n, g.level(failed) + 1, rollback=True)
                elif wrote:
                    # The descent counted the path above ``failed``: uncount from there up.
                    released = self._free_node(n, self.max_level, rollback=True, start=failed)
                else:
                    released = self._free_node(n, g.level(n), rollback=True)
                if not released:
                    return None  # our own block's release lost: impossible unless the words are corrupt
                nxt = g.after_subtree(failed, lvl) - first
                scanned += nxt - pos
                pos = nxt % size
            else:
                scanned += 1
                pos = (pos + 1) % size
        return None

    def _climb(self, n: int) -> int | None:
        """Set the path from ``n`` up to ``max_level`` as occupied; the occupied ancestor that stops it."""
        w, t = self._w, self.transitions
        child = n
        while g.level(child) > self.max_level:
            p, s = g.parent(child), g.side(child)
            while True:
                cur = w.load(p)
                if t.is_occupied(cur):
                    return p
                new = t.climb(cur, s)
                if new == cur:
                    break
                if w.cas(p, cur, new):
                    if t.climb_stops(cur, s):
                        return None
                    break
            child = p
        return None

    def _climb_top_down(self, n: int) -> tuple[int | None, bool]:
        """The ``top-down`` climb: read up to the anchor, then count from there down to ``n``.

        Returns (None, _) on success, else the occupied node that stopped it and whether the
        descent had counted the path above that node (it must then be uncounted).
        """
        w, t = self._w, self.transitions
        child = n
        while g.level(child) > self.max_level:
            # Ascend (loads only) to the anchor: a side already claimed, or max_level.
            p, s = g.parent(child), g.side(child)
            cur = w.load(p)
            if t.is_occupied(cur):
                return p, False
            if g.level(p) > self.max_level and not t.climb_stops(cur, s):
                child = p
                continue
            top = g.level(p)
            # Descend: count every node from the anchor down to n's parent.
            while True:
                x, s = g.parent(child), g.side(child)
                if not w.cas(x, cur, t.climb(cur, s)):
                    cur = w.load(x)
                    if t.is_occupied(cur):
                        return x, g.level(x) != top
                    if g.level(x) == top and top > self.max_level and not t.climb_stops(cur, s):
                        break  # the anchor holds nothing up any more: ascend again from it
                    continue
                if g.level(x) != top and t.climb_stops(cur, s):
                    # Another descent claimed this side first: our claim above x is one too many.
                    q, sq = g.parent(x), g.side(x)
                    while True:
                        u = w.load(q)
                        if w.cas(q, u, t.unmark(u, sq)):
                            break
                if child == n:
                    return None, False
                child = g.ancestor_at(n, g.level(child) + 1)
                cur = w.load(g.parent(child))
                if t.is_occupied(cur):
                    return g.parent(child), True
            child = x
        return None, False

    def _free_node(
        self,
        n: int,
        top_level: int,
        rollback: bool = False,
        expected: int | None = None,
        start: int | None = None,
    ) -> bool:
        """Free block ``n``: mark (five-bit variants), release, unmark, up to level ``top_level``.

        The release is a CAS of ``n``'s word from ``expected`` (the word ``free``'s check
        loaded; by default the word occupy wrote) to zero; False if it failed, which ends the
        free there (another free of ``n`` released it first). A ``rollback`` (of an alloc whose
        climb failed) may go on above ``top_level`` in the ``corrected`` variant, when a
        climb's free handed it the path above (``_extend``); a ``top-down`` rollback uncounts
        from ``start``'s parent up (default: ``n``'s).
        """
        t = self.transitions
        if expected is None or rollback or t.release_last:
            # As model.steps: a rollback and a release after the unmark expect occupy's word.
            expected = t.occupy(0)
        if t.marks:
            self._mark(n, top_level, rollback)
        if rollback and t.rollback_extends:
            # The corrected rollback's unmark goes on above its bound like a free's.
            top_level = self.max_level
        if not t.release_last and not self._release(n, expected):
            return False
        # Released (unless release_last): the block itself is free from here on.
        self._unmark(n if start is None else start, top_level)
        return self._release(n, expected) if t.release_last else True

    def _release(self, n: int, expected: int) -> bool:
        """Give the block ``n`` back: a CAS from ``expected`` (``release_cas``), else the published store."""
        w, t = self._w, self.transitions
        if t.release_cas:
            return w.cas(n, expected, t.release(expected))
        w.store(n, t.release(bits.BUSY))
        return True

    def _mark(self, child: int, top_level: int, rollback: bool = False) -> None:
        """Announce the coalescing from ``child`` up to the first ancestor the buddy keeps busy."""
        w, t = self._w, self.transitions
        while g.level(child) > top_level:
            p, s = g.parent(child), g.side(child)
            old = w.fetch_or(p, t.mark_mask(s))
            child = p
            if t.buddy_keeps_busy(old, s):
                return
            if rollback and t.rollback_extends and g.level(child) <= top_level:
                self._extend(child)
                return

    def _unmark(self, n: int, top_level: int) -> None:
        """Take ``n``'s claim off its path: ``counted`` uncounts every ancestor up to ``top_level``;
        the five-bit variants clear while their COAL bit is there (an alloc may have re-claimed it)."""
        w, t = self._w, self.transitions
        child = n
        while g.level(child) > top_level:
            p, s = g.parent(child), g.side(child)
            while True:
                cur = w.load(p)
                if not t.unmark_applies(cur, s):
                    if t.unmark_skips(cur, s):
                        # Another free's unmark cleared our side here; ours above still wait.
                        new = cur
                        break
                    return
                new = t.unmark(cur, s)
                if w.cas(p, cur, new):
                    break
            if t.unmark_stops(new, s):
                return
            child = p

    def _extend(self, child: int) -> None:
        """A rollback's mark reached its bound at ``child`` and would go on: maybe go on.

        If the failed ancestor above is no block but shows ``child``'s side occupied, a climb
        went through after it was freed and that climb's free stopped below, trusting our
        side to carry on (the buddy kept it busy): mark it with a CAS (so a block is never
        marked), then go on marking as a free up to ``max_level``.
        """
        w, t = self._w, self.transitions
        p, s = g.parent(child), g.side(child)
        while True:
            cur = w.load(p)
            if not t.rollback_continues(cur, s):
                return
            if w.cas(p, cur, t.mark(cur, s)):
                break
        if not t.buddy_keeps_busy(cur, s):
            self._mark(p, self.max_level)
