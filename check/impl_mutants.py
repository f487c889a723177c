"""Code-level mutants of NBBS: the allocator with one step of its algorithm broken.

``check.mutants`` breaks a word transition; these break the order or the atomicity of the
accesses, which only a checker of interleavings can see. Each is an ``NBBS`` subclass
overriding one private method with the defect written in, calling the original where it can so
the rest stays that variant's code; the explorer must catch every one
(``tests/test_explore_mutants.py``, ``bench/mutant_hunt.py``). All but one break ``counted``
(``CountedNBBS``; ``release_before_mark`` runs ``corrected``: only the five-bit variants mark):
its bottom-up climb (``NBBS._climb``), rollback and unmark, written before the switch of the
default to ``top_down_node``, whose climb none of them reaches. ``descent_keeps_surplus``
breaks the shipped ``top_down_node``'s climb (``_climb_top_down``). ``reference_of(name)`` is
the unmutated allocator a mutant's failure is compared with.
"""

from __future__ import annotations

from collections.abc import Callable

from nbbs.check.mutants import TRANSITION_MUTANTS, mutant_allocator
from nbbs.impl.nbbs import NBBS
from nbbs.model import bits
from nbbs.model import geometry as g


def _climb_without_retry(alloc: NBBS, n: int, write: Callable[[int, int, int], object]) -> int | None:
    """The climb with one read and one ``write(node, expected, new)`` per ancestor, never retried."""
    w, t = alloc._w, alloc.transitions
    child = n
    while g.level(child) > alloc.max_level:
        p, s = g.parent(child), g.side(child)
        cur = w.load(p)
        if t.is_occupied(cur):
            return p
        new = t.climb(cur, s)
        if new != cur:
            write(p, cur, new)
        child = p
    return None


class CountedNBBS(NBBS):
    """``NBBS`` running ``counted`` whatever the default variant is: the base of these mutants."""

    transitions = bits.COUNTED


class DroppedCasRetry(CountedNBBS):
    """The climb gives up on a parent after one lost CAS instead of re-reading and retrying."""

    def _climb(self, n: int) -> int | None:
        # defect: a lost CAS leaves the parent without our OCC bit
        return _climb_without_retry(self, n, self._w.cas)


class MissedRollback(CountedNBBS):
    """A climb that meets an occupied ancestor moves on without undoing the candidate and its marks."""

    def _free_node(
        self,
        n: int,
        top_level: int,
        rollback: bool = False,
        expected: int | None = None,
        start: int | None = None,
    ) -> bool:
        if rollback:
            return True  # defect: the candidate stays occupied, the path below the ancestor marked
        return super()._free_node(n, top_level, rollback, expected, start)


class ClimbStopsEarly(CountedNBBS):
    """The climb stops one level below ``max_level``: the top ancestor never learns of the block."""

    def _climb(self, n: int) -> int | None:
        w, t = self._w, self.transitions
        child = n
        while g.level(child) > self.max_level + 1:  # defect: + 1
            p, s = g.parent(child), g.side(child)
            while True:
                cur = w.load(p)
                if t.is_occupied(cur):
                    return p
                new = t.climb(cur, s)
                if new == cur or w.cas(p, cur, new):
                    break
            child = p
        return None


class ReleaseBeforeMark(CountedNBBS):
    """Free stores 0 into the block before marking the path, so an alloc can take it mid-free."""

    transitions = bits.CORRECTED  # only the five-bit variants mark; this one releases last

    def _free_node(
        self,
        n: int,
        top_level: int,
        rollback: bool = False,
        expected: int | None = None,
        start: int | None = None,
    ) -> bool:
        self._w.store(n, self.transitions.release(bits.BUSY))  # defect: released before the mark phase
        # The release CAS at the end finds the word this store left (or an alloc's): either way
        # this free released the block, as the published code's second store did.
        super()._free_node(n, top_level, rollback, expected, start)
        return True


class DescentKeepsSurplus(NBBS):
    """``top_down_node``'s descent keeps its claim where another descent claimed the side first."""

    transitions = bits.TOP_DOWN_NODE

    def _climb_top_down(self, n: int) -> tuple[int | None, bool]:
        # NBBS._climb_top_down without the undo (the C port's NBBS_DEFECT_KEEP_SURPLUS).
        w, t = self._w, self.transitions
        child = n
        while g.level(child) > self.max_level:
            p, s = g.parent(child), g.side(child)
            cur = w.load(p)
            if t.is_occupied(cur):
                return p, False
            if g.level(p) > self.max_level and not t.climb_stops(cur, s):
                child = p
                continue
            top = g.level(p)
            while True:
                x, s = g.parent(child), g.side(child)
                if not w.cas(x, cur, t.climb(cur, s)):
                    cur = w.load(x)
                    if t.is_occupied(cur):
                        return x, g.level(x) != top
                    if g.level(x) == top and top > self.max_level and not t.climb_stops(cur, s):
                        break
                    continue
                # defect: below the anchor, a side another descent claimed first keeps our claim
                # above it too: one token too many, which no free takes back (a block is lost)
                if child == n:
                    return None, False
                child = g.ancestor_at(n, g.level(child) + 1)
                cur = w.load(g.parent(child))
                if t.is_occupied(cur):
                    return g.parent(child), True
            child = x
        return None, False


class DroppedUnmarkRetry(CountedNBBS):
    """The unmark gives up on an ancestor after one lost CAS: its claim (its count) stays there."""

    def _unmark(self, n: int, top_level: int) -> None:
        w, t = self._w, self.transitions
        child = n
        while g.level(child) > top_level:
            p, s = g.parent(child), g.side(child)
            cur = w.load(p)
            if not t.unmark_applies(cur, s):
                return
            new = t.unmark(cur, s)
            w.cas(p, cur, new)  # defect: a lost CAS is not retried
            if t.unmark_stops(new, s):
                return
            child = p


class PlainStoreClimb(CountedNBBS):
    """The climb writes each ancestor with a plain store after its load: a concurrent update is lost."""

    def _climb(self, n: int) -> int | None:
        # defect: not a CAS
        return _climb_without_retry(self, n, lambda p, cur, new: self._w.store(p, new))


IMPL_MUTANTS: dict[str, tuple[str, type[NBBS]]] = {
    "dropped_cas_retry": (DroppedCasRetry.__doc__ or "", DroppedCasRetry),
    "set_instead_of_clear": (
        TRANSITION_MUTANTS["unmark_sets_instead_of_clears"][0],
        mutant_allocator("unmark_sets_instead_of_clears"),
    ),
    "missed_rollback": (MissedRollback.__doc__ or "", MissedRollback),
    "climb_stops_early": (ClimbStopsEarly.__doc__ or "", ClimbStopsEarly),
    "release_before_mark": (ReleaseBeforeMark.__doc__ or "", ReleaseBeforeMark),
    "dropped_unmark_retry": (DroppedUnmarkRetry.__doc__ or "", DroppedUnmarkRetry),
    "plain_store_climb": (PlainStoreClimb.__doc__ or "", PlainStoreClimb),
    "descent_keeps_surplus": (DescentKeepsSurplus.__doc__ or "", DescentKeepsSurplus),
}
"""Name -> (what is broken, the allocator class). ``set_instead_of_clear`` is the crate's defect,
reused from the transition mutants."""


SUITE: tuple[str, ...] = (
    "d3-m3-{}:a0@0+f0,a1@0",
    "d3-m3-{}-L8:F8,a1@0",
    "d3-m3-{}-L8:F8,a0@0",
    "d3-m3-{}:a0@0,a1@0",
    "d3-m3-{}:a0@0,a0@0",
    "d3-m3-{}-L8.9:F8,F9",
    "d2-m2-{}:a0@0,a0@1,a1@0",
    "d2-m2-{}:a0@0+f0,a0@1+f0",
)
"""Small scenarios (``{}`` is the allocator's name) on which the published allocator passes every
check with at most 3 preemptions when stale COAL bits are tolerated, and ``counted`` and
``top_down_node`` pass every check, so a failure of a mutant on one of them is the mutant's own
defect (``tests/test_explore_mutants.py`` checks it). The last one (two buddies allocated and
freed) is where a surplus claim shows: once both frees are done the parent is free and the
surplus makes its alloc fail."""


def reference_of(name: str) -> str:
    """The unmutated allocator a code mutant's failure is compared with: ``top_down_node`` for the
    mutant of its climb, ``counted`` for the others (``release_before_mark`` included, as before
    the switch)."""
    return "top_down_node" if IMPL_MUTANTS[name][1].transitions is bits.TOP_DOWN_NODE else "counted"
