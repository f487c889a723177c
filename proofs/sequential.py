"""A sequential alloc attempt and a free along one path, generic over ints and z3 terms.

This is ``impl/nbbs.py``'s ``_alloc_node`` (one candidate), ``_climb`` and ``_free_node``
with nothing else in flight, written as straight-line code over the words of the path from
the chosen node ``n`` up to the root, with every ``if``/``break`` of the allocator turned
into a flag and an if-then-else. Run on Python ints (``_z3.INTS``) it must produce what the
allocator produces (``tests/test_proofs_refinement.py`` checks it node by node); run on z3
terms (``_z3.TERMS``) it is what the refinement proofs reason about. Every word transition
comes from the ``bits.Transitions`` bundle it is given, so a mutant plugs in unchanged.

Conventions: ``w[k]`` is the word of the path node on level ``k`` (``w[L]`` is ``n``'s own
word, ``w[0]`` the root's); ``sides[k]`` (``1 <= k <= L``) is the side of the path node on
level ``k`` in its parent; ``within[k]`` says whether level ``k`` may be written (``k >=
max_level``, or above the failing ancestor for a rollback). Only path words are returned:
the allocator writes no other word (the same test checks that too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbbs.model import bits
from nbbs.proofs._z3 import Sym


def free_path(
    t: bits.Transitions,
    sym: Sym,
    w: Sequence[Any],
    sides: Sequence[Any],
    within: Sequence[Any],
    rollback: bool = False,
    max_within: Sequence[Any] | None = None,
) -> list[Any]:
    """``_free_node``: mark up to where the buddy keeps a node busy, release ``n``, unmark back
    (or, with ``release_last``, unmark and then release).

    For a ``rollback`` (``within`` then ends just below the failed ancestor) with a bundle
    whose ``rollback_extends`` is set, the mark that reaches its bound looks at the failed
    ancestor and may go on marking up to ``max_level`` (``_extend``; ``max_within`` says which
    levels are at or below ``max_level``), and the unmark may go on up to ``max_level``.
    """
    lg = sym.logic
    w = list(w)
    top = len(w) - 1
    max_within = within if max_within is None else max_within
    extends = rollback and t.rollback_extends
    going = sym.true  # the free's own mark is under way
    pending: Any = False  # a rollback's mark reached its bound: look at the failed ancestor here
    extra: Any = False  # the rollback goes on marking as a free
    for k in range(top - 1 if t.marks else -1, -1, -1):  # mark (``counted`` has no mark phase)
        s = sides[k + 1]
        old = w[k]
        act = lg.and_(going, within[k])
        cont = lg.and_(pending, t.rollback_continues(old, s))
        more = lg.and_(extra, max_within[k])
        w[k] = sym.ite(lg.or_(act, cont, more), t.mark(old, s), old)
        stop = t.buddy_keeps_busy(old, s)
        at_bound = act if k == 0 else lg.and_(act, lg.not_(within[k - 1]))
        pending = lg.and_(extends, at_bound, lg.not_(stop)) if extends else False
        going = lg.and_(act, lg.not_(stop))
        extra = lg.and_(lg.or_(cont, more), lg.not_(stop))
    if not t.release_last:
        w[top] = t.release(sym.word(bits.BUSY))  # release: the allocator stores release(BUSY)
    bound = max_within if extends else within
    going = sym.true
    for k in range(top - 1, -1, -1):  # unmark
        s = sides[k + 1]
        act = lg.and_(going, bound[k])
        cur = w[k]
        applies = t.unmark_applies(cur, s)
        new = t.unmark(cur, s)
        w[k] = sym.ite(lg.and_(act, applies), new, cur)
        # Finding its COAL bit gone, unmark returns, or (unmark_skips) goes on past the word.
        nxt = sym.ite(applies, new, cur)
        going = lg.and_(act, lg.or_(applies, t.unmark_skips(cur, s)), lg.not_(t.unmark_stops(nxt, s)))
    if t.release_last:  # a variant that releases only after its unmark
        w[top] = t.release(sym.word(bits.BUSY))
    return w


def alloc_path(
    t: bits.Transitions, sym: Sym, w: Sequence[Any], sides: Sequence[Any], within: Sequence[Any]
) -> tuple[list[Any], Any, list[Any]]:
    """One candidate of ``_alloc_node``: occupy ``n``, climb, and roll back if an ancestor is a block.

    Returns the new path words, whether the attempt succeeded, and per level whether the climb
    failed there (the ancestor was occupied).
    """
    if t.top_down:
        return _alloc_path_top_down(t, sym, w, sides, within)
    lg = sym.logic
    top = len(w) - 1
    claimed = t.is_free(w[top])
    up = list(w)
    up[top] = sym.ite(claimed, t.occupy(w[top]), w[top])
    going = claimed
    failed_at: list[Any] = [False] * top
    for k in range(top - 1, -1, -1):  # climb
        act = lg.and_(going, within[k])
        occupied = t.is_occupied(up[k])
        failed_at[k] = lg.and_(act, occupied)
        up[k] = sym.ite(lg.and_(act, lg.not_(occupied)), t.climb(up[k], sides[k + 1]), up[k])
        going = lg.and_(going, lg.not_(failed_at[k]))
    # A rollback frees n touching only the levels below the failing ancestor (and, in a
    # variant whose rollback extends, possibly above it).
    below_failure = [lg.or_(False, *failed_at[:k]) for k in range(top)]
    rolled = free_path(t, sym, up, sides, below_failure, rollback=True, max_within=within)
    failed = lg.or_(False, *failed_at)
    return [sym.ite(failed, r, u) for r, u in zip(rolled, up, strict=True)], going, failed_at


def _alloc_path_top_down(
    t: bits.Transitions, sym: Sym, w: Sequence[Any], sides: Sequence[Any], within: Sequence[Any]
) -> tuple[list[Any], Any, list[Any]]:
    """``NBBS._climb_top_down`` with nothing else in flight: occupy ``n``, ascend (loads) to the
    anchor (the first ancestor whose side is claimed, or the one at ``max_level``), failing at an
    occupied one having written nothing but ``n`` (released again); then count every node from
    the anchor down to ``n``'s parent. Alone, a descent never finds a node occupied or a side
    another descent claimed (the ascent read them unclaimed), so it neither rolls back nor undoes.
    """
    lg = sym.logic
    top = len(w) - 1
    claimed = t.is_free(w[top])
    going = claimed  # still ascending
    anchored: list[Any] = [False] * top
    failed_at: list[Any] = [False] * top
    for k in range(top - 1, -1, -1):  # ascend
        act = lg.and_(going, within[k])
        occupied = t.is_occupied(w[k])
        at_max = sym.true if k == 0 else lg.not_(within[k - 1])
        stops = lg.or_(at_max, t.climb_stops(w[k], sides[k + 1]))
        failed_at[k] = lg.and_(act, occupied)
        anchored[k] = lg.and_(act, lg.not_(occupied), stops)
        going = lg.and_(act, lg.not_(occupied), lg.not_(stops))
    failed = lg.or_(False, *failed_at)
    out = list(w)
    for k in range(top):  # descend: level k is counted when the anchor is at or above it
        counted = lg.or_(False, *anchored[: k + 1])
        out[k] = sym.ite(counted, t.climb(w[k], sides[k + 1]), w[k])
    # On failure the rollback releases n (back to its word before the occupy) and nothing else.
    out[top] = sym.ite(lg.and_(claimed, lg.not_(failed)), t.occupy(w[top]), w[top])
    return out, lg.and_(claimed, lg.not_(failed)), failed_at
