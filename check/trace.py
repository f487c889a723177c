"""A word backend that records every access: ``(node, kind, old, new)`` per access.

``TracingWords`` wraps any ``Words``. Give ``Tracing(inner_backend)`` to an allocator as its
``backend`` and read its ``events`` afterwards; the records are ``model.steps.Event``s, the same
records the step machine produces, so a test can compare the two access by access.

A CAS's old word is read just before the CAS: exact when accesses are serialised (a
sequential run, or a deterministic scheduler that runs one access at a time), which is
what the comparison needs.
"""

from __future__ import annotations

from nbbs.impl.atomics import Backend, StripedWords, Words
from nbbs.model.steps import Event, Kind


class TracingWords:
    """``inner`` with every access appended to ``events``."""

    def __init__(self, inner: Words) -> None:
        self.inner = inner
        self.events: list[Event] = []

    def load(self, i: int) -> int:
        w = self.inner.load(i)
        self.events.append(Event(i, Kind.LOAD, w, w))
        return w

    def cas(self, i: int, expected: int, new: int) -> bool:
        old = self.inner.load(i)
        ok = self.inner.cas(i, expected, new)
        self.events.append(Event(i, Kind.CAS, old, new if ok else old))
        return ok

    def fetch_or(self, i: int, mask: int) -> int:
        old = self.inner.fetch_or(i, mask)
        self.events.append(Event(i, Kind.FETCH_OR, old, old | mask))
        return old

    def fetch_and(self, i: int, mask: int) -> int:
        old = self.inner.fetch_and(i, mask)
        self.events.append(Event(i, Kind.FETCH_AND, old, old & mask))
        return old

    def store(self, i: int, value: int) -> None:
        old = self.inner.load(i)
        self.inner.store(i, value)
        self.events.append(Event(i, Kind.STORE, old, value))

    def snapshot(self) -> tuple[int, ...]:
        return self.inner.snapshot()


class Tracing:
    """A backend (``Backend``) building ``TracingWords`` over ``inner``; ``words`` is the last one built."""

    def __init__(self, inner: Backend = StripedWords) -> None:
        self.inner = inner
        self.words: TracingWords | None = None

    def __call__(self, length: int) -> TracingWords:
        self.words = TracingWords(self.inner(length))
        return self.words

    @property
    def events(self) -> list[Event]:
        """The accesses recorded so far."""
        return [] if self.words is None else self.words.events
