"""Sequential differential testing: an allocator and the spec, side by side, under Hypothesis.

``machine(factory)`` builds a ``RuleBasedStateMachine`` that creates an arena of random
shape (depth 0..``max_depth``, maximum order, page size, start), then allocates, frees and
frees bogus addresses at random. After every rule:

* the allocator's answer is one ``model.spec`` allows (``alloc`` returns ``None`` only if
  no block of that order is free: run alone, NBBS must never fail spuriously);
* a rejected call raised the ``NBBSError`` the spec predicts, and left every word as it was;
* ``alloc_bytes`` gets a block of the order its size needs (computed here, not by the arena);
* the abstraction of ``words()`` is the spec's set of live blocks, ``live_blocks()`` lists
  them, and the quiescent invariant holds at every node.

A failure shrinks to a short program, which Hypothesis prints ready to paste and re-run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from nbbs.check.report import Outcome, Task
from nbbs.impl import errors
from nbbs.impl.arena import Arena
from nbbs.impl.locked import LockedBuddy
from nbbs.impl.nbbs import NBBS
from nbbs.model import bits, spec, tree
from nbbs.model import geometry as g

MAX_DEPTH = 10
"""The deepest arena the default machine draws; the deep profile goes further."""


class Allocator(Protocol):
    """What the machine drives: the public API both allocators share.

    An allocator whose ``observable_words`` attribute is False (a port without the ``words``
    feature) is checked on its results and errors only, not on its words.
    """

    arena: Arena
    transitions: bits.Transitions
    """What its words mean (``LockedBuddy`` shows the default variant's)."""

    def alloc(self, order: int, hint: int | None = None) -> int | None: ...

    def alloc_bytes(self, size: int) -> int | None: ...

    def free(self, address: int, order: int | None = None) -> None: ...

    def live_blocks(self) -> list[tuple[int, int]]: ...

    def words(self) -> tuple[int, ...]: ...


Factory = Callable[..., Allocator]

NUDGES: dict[str, Callable[[int], int]] = {
    "exact": lambda page: 0,
    "next page": lambda page: page,
    "previous page": lambda page: -page,
    "one byte on": lambda page: 1,
}
"""How ``free_bogus`` moves off a known address, given the page size."""


def expected_error(
    arena: Arena, state: spec.State, address: int, order: int | None
) -> type[Exception] | None:
    """The error ``free(address, order)`` must raise in ``state``, or None if the free is valid.

    Written against the abstract state, apart from the allocator's own checks.
    """
    if not arena.start <= address < arena.start + arena.size:
        return errors.ForeignAddressError
    if (address - arena.start) % arena.page_size:
        return errors.MisalignedAddressError
    page = (address - arena.start) // arena.page_size
    if order is not None and not 0 <= order <= arena.top_order:
        return errors.OrderError
    if order is not None and page % (1 << order):
        return errors.MisalignedAddressError
    for n in state:
        if page in spec.block_pages(arena.depth, n):
            if g.first_page(arena.depth, n) != page:
                return errors.InteriorAddressError
            if order is not None and order != g.order_of(arena.depth, n):
                return errors.WrongOrderError
            return None
    return errors.DoubleFreeError


def machine(factory: Factory, max_depth: int = MAX_DEPTH) -> type[RuleBasedStateMachine]:
    """A differential state machine for the allocator that ``factory(depth, **shape)`` builds."""

    class Differential(RuleBasedStateMachine):
        blocks = Bundle("blocks")

        def __init__(self) -> None:
            super().__init__()
            self.freed: list[int] = []  # addresses freed so far: candidates for a double free

        @initialize(
            depth=st.integers(0, max_depth),
            max_order=st.none() | st.integers(0, max_depth),
            page_size=st.sampled_from([4096, 1, 64]),
            start_blocks=st.integers(0, 3),
        )
        def build(self, depth: int, max_order: int | None, page_size: int, start_blocks: int) -> None:
            """An arena of ``2**depth`` pages (``max_order`` is capped at ``depth``)."""
            max_order = None if max_order is None else min(max_order, depth)
            top = depth if max_order is None else max_order
            start = start_blocks * (page_size << top)
            self.allocator = factory(depth, page_size=page_size, start=start, max_order=max_order)
            self.arena = self.allocator.arena
            self.spec = spec.Spec.of(depth, max_order)
            self.state: spec.State = spec.EMPTY

        def words(self) -> tuple[int, ...] | None:
            """The allocator's words, or None if it does not show them (a port without ``words``)."""
            return self.allocator.words() if getattr(self.allocator, "observable_words", True) else None

        def node(self, address: int, order: int) -> int:
            page = (address - self.arena.start) // self.arena.page_size
            return g.node_of(self.arena.depth, page, order)

        @rule(
            target=blocks,
            order=st.integers(-1, max_depth + 1),
            hint=st.none() | st.integers(0, 1 << max_depth),
        )
        def alloc(self, order: int, hint: int | None) -> Any:
            """``alloc(order, hint)``; an order outside ``0..max_order`` must be rejected."""
            if not 0 <= order <= self.arena.top_order:
                before = self.words()
                try:
                    self.allocator.alloc(order, hint)
                except errors.OrderError:
                    assert self.words() == before, "a rejected alloc changed the words"
                    return multiple()
                raise AssertionError(f"alloc({order}) was accepted above max_order {self.arena.top_order}")
            address = self.allocator.alloc(order, hint)
            result = None if address is None else self.node(address, order)
            ok, self.state = spec.step(self.spec, self.state, spec.Alloc(order, result))
            assert ok, (
                f"alloc({order}) returned {address!r} (node {result}); "
                f"free blocks of that order: {list(spec.free_blocks(self.spec, self.state, order))}"
            )
            return multiple() if address is None else multiple((address, order))

        @rule(target=blocks, size=st.integers(-1, 1 << 20))
        def alloc_bytes(self, size: int) -> Any:
            """``alloc_bytes(size)``: a block of the fewest pages, a power of two, holding ``size``
            bytes; a size that is not positive or needs more than the largest block is rejected."""
            arena = self.arena
            pages = -(-size // arena.page_size) if size > 0 else 0
            order = next((o for o in range(arena.top_order + 1) if pages <= 1 << o), None)
            if size <= 0 or order is None:
                before = self.allocator.words()
                try:
                    self.allocator.alloc_bytes(size)
                except errors.SizeError:
                    assert self.allocator.words() == before, "a rejected alloc_bytes changed the words"
                    return multiple()
                raise AssertionError(
                    f"alloc_bytes({size}) was accepted (largest block {arena.largest_block})"
                )
            address = self.allocator.alloc_bytes(size)
            result = None if address is None else self.node(address, order)
            ok, self.state = spec.step(self.spec, self.state, spec.Alloc(order, result))
            assert ok, f"alloc_bytes({size}) (order {order}) returned {address!r} (node {result})"
            return multiple() if address is None else multiple((address, order))

        @rule(block=consumes(blocks), give_order=st.booleans())
        def free(self, block: tuple[int, int], give_order: bool) -> None:
            address, order = block
            self.attempt_free(address, order if give_order else None)

        @rule(
            pick=st.integers(0, 255),
            nudge=st.sampled_from(list(NUDGES)),
            order=st.none() | st.integers(-1, max_depth + 1),
        )
        def free_bogus(self, pick: int, nudge: str, order: int | None) -> None:
            """Free an address near a live, freed or boundary one: foreign, misaligned, interior, ..."""
            arena = self.arena
            near = [arena.address(n) for n in sorted(self.state)] + self.freed
            near += [arena.start, arena.start + arena.size, arena.start - 1]
            self.attempt_free(near[pick % len(near)] + NUDGES[nudge](arena.page_size), order)

        def attempt_free(self, address: int, order: int | None) -> None:
            """``free(address, order)``: done if the spec holds such a block, else rejected as predicted.

            A rejected free must raise the predicted ``NBBSError`` and leave every word as it was.
            """
            expected = expected_error(self.arena, self.state, address, order)
            if expected is None:
                n = next(n for n in self.state if self.arena.address(n) == address)
                self.allocator.free(address, order)
                ok, self.state = spec.step(self.spec, self.state, spec.Free(n))
                assert ok
                self.freed.append(address)
                return
            before = self.words()
            try:
                self.allocator.free(address, order)
            except errors.NBBSError as e:
                assert type(e) is expected, f"free({address:#x}, {order}) raised {e!r}, expected {expected}"
                assert self.words() == before, "a rejected free changed the words"
            else:
                raise AssertionError(f"free({address:#x}, {order}) accepted; expected {expected.__name__}")

        @invariant()
        def agrees_with_the_spec(self) -> None:
            if not hasattr(self, "allocator"):
                return
            assert not spec.broken_invariants(self.spec, self.state)
            words = self.words()
            if words is None:
                return
            depth = self.arena.depth
            live = tree.abstraction(words, depth)
            assert live == self.state, (
                f"words abstract to {sorted(live)}, spec holds {sorted(self.state)}\n"
                f"{tree.render(words, depth, self.allocator.transitions)}"
            )
            broken = tree.quiescent_violations(words, depth, self.arena.max_level, self.allocator.transitions)
            assert not broken, "quiescent invariant broken at\n  " + "\n  ".join(broken)
            expected = sorted((self.arena.address(n), g.order_of(depth, n)) for n in self.state)
            assert self.allocator.live_blocks() == expected

    name = f"Differential_{getattr(factory, '__name__', 'alloc')}"
    Differential.__name__ = Differential.__qualname__ = name
    return Differential


def c_engine(variant: str | None = None) -> Factory:
    """A factory of ``NBBS(..., engine="c", variant=variant)``, for ``machine`` (the extension is built
    on the first arena)."""

    def factory(depth: int, **shape: Any) -> Allocator:
        return NBBS(depth, engine="c", variant=variant, **shape)

    factory.__name__ = f"NBBS_c_{variant or bits.DEFAULT_VARIANT}"
    return factory


NBBSMachine = machine(NBBS)
LockedMachine = machine(LockedBuddy)


class _OutOfTime(BaseException):
    """Raised inside a shrinking run when its time is up: a BaseException, so Hypothesis does
    not take it for a failure of the allocator but lets it through at once."""


def _timed(
    state_machine: type[RuleBasedStateMachine], deadline: list[float], started: list[int]
) -> type[RuleBasedStateMachine]:
    """The machine, refusing to start another example after ``deadline[0]`` (same printed name);
    each example it starts is counted in ``started[0]``."""

    class Timed(state_machine):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            if time.perf_counter() > deadline[0]:
                raise _OutOfTime
            started[0] += 1
            super().__init__()

    Timed.__name__ = Timed.__qualname__ = state_machine.__name__
    return Timed


def _program(e: BaseException) -> str:
    """Hypothesis's program for a failure, and what failed."""
    program = "\n".join(getattr(e, "__notes__", []))
    return f"{program}\n{type(e).__name__}: {e}"


SEARCH = (Phase.explicit, Phase.generate)
"""The phases that look for a failure; shrinking (``Phase.shrink``) runs after, bounded."""


def chunk_settings(max_examples: int, **changes: Any) -> settings:
    """Settings for one chunk of a search that runs chunk after chunk until its time is up.

    Each chunk must draw new examples: ``derandomize`` is off whatever the loaded profile says.
    (Hypothesis loads its ``ci`` profile, which derandomizes, when it sees a CI environment;
    profiles registered after that inherit it. A derandomized chunk draws the same examples
    every time, so a search of 8,000 examples tried 5: CI missed two mutants for 120 s each.)
    """
    common: dict[str, Any] = {
        "deadline": None,
        "database": None,
        "derandomize": False,
        "suppress_health_check": list(HealthCheck),
        "report_multiple_bugs": False,
    }
    return settings(max_examples=max_examples, **{**common, **changes})


def run_for(
    state_machine: type[RuleBasedStateMachine],
    seconds: float,
    name: str,
    chunk: int = 5,
    shrink_seconds: float | None = None,
    steps: int | None = None,
) -> Outcome:
    """Run the machine in chunks of ``chunk`` examples until ``seconds`` pass or it fails.

    On failure the outcome's detail is the failing program, ready to paste and re-run: shrunk
    if shrinking ends within ``shrink_seconds`` (default: ``seconds``, at least 2 s), else the
    first failing program as found, with a note. One failure is reported (not "Hypothesis found
    2 distinct failures"), so the whole run takes at most about ``seconds + shrink_seconds``.
    ``steps`` bounds the rules per program (the profile's ``stateful_step_count`` if None).
    """
    started = time.perf_counter()
    common: dict[str, Any] = {} if steps is None else {"stateful_step_count": steps}
    search = chunk_settings(chunk, phases=SEARCH, **common)
    count, deadline = [0], [float("inf")]
    # Counted, never cut short inside a chunk: an interrupted search reads to Hypothesis as a skip.
    timed = _timed(state_machine, deadline, count)
    while True:
        try:
            run_state_machine_as_test(timed, settings=search)  # type: ignore[no-untyped-call,unused-ignore]
        except Exception as e:  # the failure is the result; Hypothesis put the program in its notes
            found = _program(e)
            break
        if time.perf_counter() - started >= seconds:
            return Outcome(name, count[0], True, time.perf_counter() - started)
    # Search again and shrink, until the time is up. (Hypothesis does not shrink an example it
    # replays from the database, so the second run finds the defect anew: the first did it
    # quickly. Its explain phase, which traces coverage, is left out: it took most of the time.)
    budget = max(seconds if shrink_seconds is None else shrink_seconds, 2.0)
    shrink = chunk_settings(10_000, phases=(*SEARCH, Phase.shrink), **common)
    detail = found + "\n(not shrunk: shrinking did not end within the time budget)"
    try:
        deadline[0] = time.perf_counter() + budget
        run_state_machine_as_test(timed, settings=shrink)  # type: ignore[no-untyped-call,unused-ignore]
    except _OutOfTime:
        pass
    except Exception as e:
        # Cut short mid-shrink, Hypothesis may report its own confusion (a "flaky" run) instead
        # of the program: keep the first program then.
        if time.perf_counter() <= deadline[0] and getattr(e, "__notes__", None):
            detail = _program(e)
    return Outcome(name, count[0], False, time.perf_counter() - started, detail)


def verify_tasks() -> list[Task]:
    """The differential checks of ``nbbs verify``."""
    nbbs, locked = "differential: NBBS vs spec", "differential: locked buddy vs spec"
    return [
        Task(nbbs, 1.2, lambda s: run_for(NBBSMachine, s, nbbs, shrink_seconds=max(2.0, s / 2))),
        Task(locked, 0.3, lambda s: run_for(LockedMachine, s, locked, shrink_seconds=max(2.0, s / 2))),
    ]
