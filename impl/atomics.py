"""Word arrays with atomic access: the only way the allocator touches its status words.

The protocol has the five accesses NBBS performs and nothing else. A checker replaces the
backend to watch or schedule every access (``nbbs.check``); the allocator's code stays the
same.

``StripedWords`` is the default backend. Words are unsigned 64-bit items of an ``array``
(one byte each when the allocator says its words fit, as the five-bit variants' do);
read-modify-write accesses hold one of ``STRIPES`` locks chosen by the word's index, so two
accesses to one word are serialised, with or without the GIL, while accesses to different
stripes proceed in parallel. A load takes no lock: reading one aligned item cannot tear,
and every writer holds the stripe lock, so a load sees a value some access wrote.

``CereggiiWords`` (``pip install -e '.[fast]'``) keeps one ``cereggii.AtomicInt64`` per word:
hardware compare-and-swap, no lock anywhere; fetch-or and fetch-and are CAS loops. Why the
default is still ``StripedWords``: see the README's "Choosing a word backend".
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable
from typing import Protocol

STRIPES = 64


class Words(Protocol):
    """An array of status words, each access atomic."""

    def load(self, i: int) -> int:
        """The word at ``i``."""
        ...

    def cas(self, i: int, expected: int, new: int) -> bool:
        """If word ``i`` is ``expected``, make it ``new`` and return True; else change nothing."""
        ...

    def fetch_or(self, i: int, mask: int) -> int:
        """Set ``mask``'s bits in word ``i``; return the word before."""
        ...

    def fetch_and(self, i: int, mask: int) -> int:
        """Keep only ``mask``'s bits in word ``i``; return the word before."""
        ...

    def store(self, i: int, value: int) -> None:
        """Make word ``i`` equal ``value``."""
        ...

    def snapshot(self) -> tuple[int, ...]:
        """A copy of every word (atomic per word, not across words)."""
        ...


Backend = Callable[[int], Words]
"""Builds a word array of the given length, all zero."""


class StripedWords:
    """Bytes guarded by striped locks: correct under real threads, with or without the GIL."""

    __slots__ = ("_locks", "_w")

    def __init__(self, length: int, word_bits: int = 64) -> None:
        if not 0 < word_bits <= 64:
            raise ValueError(f"word_bits must be in 1..64, got {word_bits}")
        self._w = array("B" if word_bits <= 8 else "Q", [0]) * length  # no temporary of that size
        self._locks = [threading.Lock() for _ in range(min(STRIPES, max(length, 1)))]

    def load(self, i: int) -> int:
        return self._w[i]

    def cas(self, i: int, expected: int, new: int) -> bool:
        with self._locks[i % STRIPES]:
            if self._w[i] != expected:
                return False
            self._w[i] = new
            return True

    def fetch_or(self, i: int, mask: int) -> int:
        with self._locks[i % STRIPES]:
            old = self._w[i]
            self._w[i] = old | mask
            return old

    def fetch_and(self, i: int, mask: int) -> int:
        with self._locks[i % STRIPES]:
            old = self._w[i]
            self._w[i] = old & mask
            return old

    def store(self, i: int, value: int) -> None:
        with self._locks[i % STRIPES]:
            self._w[i] = value

    def snapshot(self) -> tuple[int, ...]:
        return tuple(self._w)

    def __len__(self) -> int:
        return len(self._w)


class CereggiiWords:
    """One ``cereggii.AtomicInt64`` per word: lock-free CAS (the ``fast`` extra)."""

    __slots__ = ("_w",)

    def __init__(self, length: int) -> None:
        import cereggii  # an optional extra: imported only when this backend is chosen

        self._w = [cereggii.AtomicInt64(0) for _ in range(length)]

    def load(self, i: int) -> int:
        return int(self._w[i].get())

    def cas(self, i: int, expected: int, new: int) -> bool:
        return bool(self._w[i].compare_and_set(expected, new))

    def fetch_or(self, i: int, mask: int) -> int:
        word = self._w[i]
        while True:
            old = int(word.get())
            if word.compare_and_set(old, old | mask):
                return old

    def fetch_and(self, i: int, mask: int) -> int:
        word = self._w[i]
        while True:
            old = int(word.get())
            if word.compare_and_set(old, old & mask):
                return old

    def store(self, i: int, value: int) -> None:
        self._w[i].set(value)

    def snapshot(self) -> tuple[int, ...]:
        return tuple(int(w.get()) for w in self._w)

    def __len__(self) -> int:
        return len(self._w)
