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
    t: bits.Transitions, sym: Sym, w: Sequence[Any], sides: Sequence[Any], within: Sequence[Any]
) -> list[Any]:
    """``_free_node``: mark up to where the buddy keeps a node busy, release ``n``, unmark back."""
    lg = sym.logic
    w = list(w)
    top = len(w) - 1
    going = sym.true
    for k in range(top - 1, -1, -1):  # mark
        s = sides[k + 1]
        act = lg.and_(going, within[k])
        old = w[k]
        w[k] = sym.ite(act, t.mark(old, s), old)
        going = lg.and_(act, lg.not_(t.buddy_keeps_busy(old, s)))
    w[top] = t.release(sym.word(bits.BUSY))  # release: the allocator stores release(BUSY)
    going = sym.true
    for k in range(top - 1, -1, -1):  # unmark
        s = sides[k + 1]
        act = lg.and_(going, within[k])
        cur = w[k]
        applies = t.unmark_applies(cur, s)
        new = t.unmark(cur, s)
        w[k] = sym.ite(lg.and_(act, applies), new, cur)
        going = lg.and_(act, applies, lg.not_(t.unmark_stops(new, s)))
    return w


def alloc_path(
    t: bits.Transitions, sym: Sym, w: Sequence[Any], sides: Sequence[Any], within: Sequence[Any]
) -> tuple[list[Any], Any, list[Any]]:
    """One candidate of ``_alloc_node``: occupy ``n``, climb, and roll back if an ancestor is a block.

    Returns the new path words, whether the attempt succeeded, and per level whether the climb
    failed there (the ancestor was occupied).
    """
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
    # A rollback frees n touching only the levels below the failing ancestor.
    below_failure = [lg.or_(False, *failed_at[:k]) for k in range(top)]
    rolled = free_path(t, sym, up, sides, below_failure)
    failed = lg.or_(False, *failed_at)
    return [sym.ite(failed, r, u) for r, u in zip(rolled, up, strict=True)], going, failed_at
