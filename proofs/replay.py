"""Running the real allocator on a given tree: to tie the proofs' encoding to ``impl/nbbs.py``
and to replay a counterexample on the code people run.

``RecordingWords`` is a ``Words`` backend that starts from given words and logs every
access as (access, node, old word, new word).
"""

from __future__ import annotations

from collections.abc import Sequence

from nbbs.impl.nbbs import NBBS
from nbbs.model import bits
from nbbs.model import geometry as g


class RecordingWords:
    """A sequential ``Words`` backend preloaded with ``words`` that logs each access."""

    def __init__(self, words: Sequence[int]) -> None:
        self.w = list(words)
        self.log: list[tuple[str, int, int, int]] = []

    def load(self, i: int) -> int:
        self.log.append(("load", i, self.w[i], self.w[i]))
        return self.w[i]

    def cas(self, i: int, expected: int, new: int) -> bool:
        old = self.w[i]
        if old != expected:
            self.log.append(("cas (fails)", i, old, old))
            return False
        self.w[i] = new
        self.log.append(("cas", i, old, new))
        return True

    def fetch_or(self, i: int, mask: int) -> int:
        old = self.w[i]
        self.w[i] = old | mask
        self.log.append(("fetch_or", i, old, self.w[i]))
        return old

    def fetch_and(self, i: int, mask: int) -> int:
        old = self.w[i]
        self.w[i] = old & mask
        self.log.append(("fetch_and", i, old, self.w[i]))
        return old

    def store(self, i: int, value: int) -> None:
        self.log.append(("store", i, self.w[i], value))
        self.w[i] = value

    def snapshot(self) -> tuple[int, ...]:
        return tuple(self.w)


def allocator(
    words: Sequence[int],
    depth: int,
    max_order: int | None = None,
    transitions: bits.Transitions = bits.PUBLISHED,
) -> tuple[NBBS, RecordingWords]:
    """An allocator over a copy of ``words`` running ``transitions``, and its recording backend."""
    rec = RecordingWords(words)
    cls = type("NBBSUnderProof", (NBBS,), {"transitions": transitions})
    return cls(depth, max_order=max_order, backend=lambda _size: rec), rec


def attempt(a: NBBS, n: int) -> bool:
    """One candidate of ``NBBS._alloc_node`` at node ``n``: occupy, climb, roll back on failure."""
    w, t = a._w, a.transitions
    cur = w.load(n)
    if not (t.is_free(cur) and w.cas(n, cur, t.occupy(cur))):
        return False
    if t.top_down:
        failed, wrote = a._climb_top_down(n)
        if failed is None:
            return True
        # As ``_alloc_node``: uncount from the occupied node up if the descent counted above it.
        start = failed if wrote else None
        a._free_node(n, a.max_level if wrote else g.level(n), rollback=True, start=start)
        return False
    failed = a._climb(n)
    if failed is None:
        return True
    a._free_node(n, g.level(failed) + 1)
    return False


def free(a: NBBS, n: int) -> None:
    """``NBBS.free`` of block ``n`` without the address checks (the proof already assumed it live)."""
    a._free_node(n, a.max_level)


def show_log(log: Sequence[tuple[str, int, int, int]]) -> str:
    """Each access on its own line, words in binary."""
    return "\n".join(
        f"    {acc:<12} node {i:>3}: {bits.show(old)} -> {bits.show(new)}" for acc, i, old, new in log
    )
