"""From status words to live blocks: the abstraction function and the quiescent invariant.

The words live in an array indexed by node (``geometry``); ``words[0]`` is unused. Climbs
and marks stop at ``max_level = depth - max_order``: nodes above it are never written.

**Abstraction.** The live blocks are the nodes whose word has ``OCC``::

    abstraction(words) = { n | words[n] & OCC }

**Quiescent invariant** (no operation in flight), a formula over each node ``n`` and its
children ``l = 2n``, ``r = 2n + 1``, with ``taken(x) = x & (OCC | OCC_LEFT | OCC_RIGHT) != 0``::

    level(n) < max_level:   w[n] == 0                                    (never touched)
    level(n) == depth:      w[n] in {0, BUSY}                            (a page)
    otherwise:              no COAL bit in w[n], and
                            OCC(w[n])     ->  w[n] == BUSY and w[l] == 0 and w[r] == 0
                            not OCC(w[n]) ->  OCC_LEFT(w[n])  == taken(w[l])
                                              and OCC_RIGHT(w[n]) == taken(w[r])

By induction from the leaves, ``taken(w[n])`` then says exactly whether ``n``'s subtree
holds a live block, and below an allocated block every word is zero, so live blocks are
pairwise disjoint. The formula is written once, generically (``node_ok``), over a small
``Logic`` of connectives: the checkers evaluate it on ints, the proofs on z3 terms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nbbs.model import bits
from nbbs.model import geometry as g
from nbbs.model.spec import State

SUBTREE_BITS = bits.OCC | bits.OCC_LEFT | bits.OCC_RIGHT
COAL_BITS = bits.COAL_LEFT | bits.COAL_RIGHT


@dataclass(frozen=True)
class Logic:
    """The connectives a formula is built from: Python's on bools, z3's on terms."""

    and_: Callable[..., Any]
    or_: Callable[..., Any]
    not_: Callable[[Any], Any]
    implies: Callable[[Any, Any], Any]


PY = Logic(
    and_=lambda *xs: all(xs),
    or_=lambda *xs: any(xs),
    not_=lambda x: not x,
    implies=lambda a, b: (not a) or b,
)


def taken(w: int) -> bool:
    """The node's subtree holds something allocated (or the node is a block)."""
    return w & SUBTREE_BITS != 0


def abstraction(words: Sequence[int], depth: int) -> State:
    """The set of live blocks the words stand for."""
    return frozenset(n for n in g.all_nodes(depth) if words[n] & bits.OCC)


def live_walk(load: Callable[[int], int], depth: int, max_level: int, t: bits.Transitions) -> list[int]:
    """The live blocks, by node, found by walking down from the nodes at ``max_level`` into the
    sides whose word shows a claim (``t.side_claimed``), reading each visited word once with ``load``.

    On quiescent words (``inv_quiescent``) this is ``abstraction``: every side with a block
    below shows a claim. It reads ``2**max_level`` words plus about ``depth`` per live block,
    where ``abstraction`` reads all ``2**(depth + 1)``. With operations in flight it may miss a
    candidate whose climb has not yet reached the top, which no caller holds yet anyway.
    """
    found: list[int] = []
    todo = list(reversed(g.nodes_at(max_level)))
    while todo:
        n = todo.pop()
        w = load(n)
        if t.is_occupied(w):
            found.append(n)
        elif g.level(n) < depth:
            # Right first onto the stack, so the left subtree (lower addresses) comes out first.
            if t.side_claimed(w, 0):
                todo.append(g.right(n))
            if t.side_claimed(w, 1):
                todo.append(g.left(n))
    return found


def leaf_ok(w: int, logic: Logic = PY) -> Any:
    """A page's word: free or a block."""
    return logic.or_(w == 0, w == bits.BUSY)


def untouched_ok(w: int, logic: Logic = PY) -> Any:
    """A word above ``max_level``: never written."""
    return w == 0


def node_ok(w: int, wl: int, wr: int, logic: Logic = PY) -> Any:
    """The quiescent invariant of an inner node at or below ``max_level``, given its children's words."""
    occupied = w & bits.OCC != 0
    return logic.and_(
        w & COAL_BITS == 0,
        logic.implies(occupied, logic.and_(w == bits.BUSY, wl == 0, wr == 0)),
        logic.implies(
            logic.not_(occupied),
            logic.and_((w & bits.OCC_LEFT != 0) == taken(wl), (w & bits.OCC_RIGHT != 0) == taken(wr)),
        ),
    )


def quiescent_violations(
    words: Sequence[int], depth: int, max_level: int = 0, transitions: bits.Transitions = bits.PUBLISHED
) -> list[str]:
    """Each node whose word breaks the quiescent invariant, as a readable line (empty if none).

    ``transitions`` says what the words mean: the five-bit variants' (the default) or
    ``counted``'s, whose inner nodes count the blocks below (``bits.counted``).
    """
    t = transitions
    inner = t.node_ok or node_ok
    out = []
    for n in g.all_nodes(depth):
        w = words[n]
        lvl = g.level(n)
        if w >> t.word_bits:
            ok = False
        elif lvl < max_level:
            ok = untouched_ok(w)
        elif lvl == depth:
            ok = leaf_ok(w)
        else:
            ok = inner(w, words[g.left(n)], words[g.right(n)], PY)
        if not ok:
            kids = (
                ""
                if lvl >= depth
                else (
                    f" (children {g.left(n)}: {t.show(words[g.left(n)])}, "
                    f"{g.right(n)}: {t.show(words[g.right(n)])})"
                )
            )
            out.append(f"node {n} (level {lvl}): {t.show(w)}{kids}")
    return out


def inv_quiescent(
    words: Sequence[int], depth: int, max_level: int = 0, transitions: bits.Transitions = bits.PUBLISHED
) -> bool:
    """The quiescent invariant holds at every node."""
    return not quiescent_violations(words, depth, max_level, transitions)


def render(words: Sequence[int], depth: int, transitions: bits.Transitions = bits.PUBLISHED) -> str:
    """The tree's words level by level (in binary; ``counted``'s as OCC and counts), for counterexamples."""
    lines = []
    for lvl in range(depth + 1):
        if transitions.count_bits or any(words[n] >> bits.WORD_BITS for n in g.nodes_at(lvl)):
            show = transitions.show if transitions.count_bits else bits.show
            cells = "  ".join(f"{n}:[{show(words[n])}]" for n in g.nodes_at(lvl))
        else:
            cells = " ".join(f"{n}:{words[n]:05b}" for n in g.nodes_at(lvl))
        lines.append(f"  level {lvl}: {cells}")
    return "\n".join(lines)
