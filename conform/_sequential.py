"""The sequential conformance run: the differential machine against ``model/spec.py``, through a port.

The machine is ``nbbs.check.differential.machine``, unchanged but for its factory, which
sends ``arena ...`` to the port and remembers where in the transcript the example began.
Hypothesis replays the shrunk failing example last, so the transcript from that mark is the
failure as protocol lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hypothesis.internal.conjecture import engine
from hypothesis.reporting import with_reporter
from hypothesis.stateful import run_state_machine_as_test

from nbbs.check.differential import chunk_settings, machine
from nbbs.conform._result import BROKEN, OK, VIOLATION, Result
from nbbs.conform.protocol import Port, PortAllocator, PortError
from nbbs.impl import NBBS

CHUNK = 10
"""Examples per Hypothesis run; the budget is checked between runs."""

STEPS = 40
"""Rules per example, as in the project's default Hypothesis profile."""

SHRINK_SECONDS = 20.0
"""How long shrinking one failure may take (Hypothesis's own bound is 300 s)."""


@contextmanager
def _shrink_bound(seconds: float) -> Iterator[None]:
    """Bound Hypothesis's shrinking to ``seconds``, and keep its reports (warnings) off the console.

    ``MAX_SHRINKING_SECONDS`` is internal, but its comment says it is there to be monkeypatched.
    """
    saved = engine.MAX_SHRINKING_SECONDS
    engine.MAX_SHRINKING_SECONDS = seconds  # type: ignore[assignment]
    try:
        with with_reporter(lambda _: None):
            yield
    finally:
        engine.MAX_SHRINKING_SECONDS = saved


def run(
    port: Port,
    variant: str,
    examples: int,
    seconds: float,
    max_depth: int = 10,
    tick: Callable[[int], None] | None = None,
    shrink_seconds: float = SHRINK_SECONDS,
) -> Result:
    """Up to ``examples`` random programs (bad inputs included) within about ``seconds``, on ``variant``.

    Stops at the first failure, shrinks it (at most 500 shrinks, Hypothesis's bound, within
    ``shrink_seconds``), and returns it as protocol lines. ``tick(n)`` reports examples done so far.
    """
    name = f"sequential {variant}"
    marks = [port.mark()]

    def factory(depth: int, **shape: object) -> PortAllocator:
        if port.dead is not None:
            raise port.dead  # keep the mark of the example in which the port died
        marks.append(port.mark())
        return PortAllocator(port, depth, variant=variant, **shape)  # type: ignore[arg-type]

    factory.__name__ = f"port_{variant.replace('-', '_')}"
    state_machine = machine(factory, max_depth)
    search = chunk_settings(CHUNK, stateful_step_count=STEPS)
    started = time.perf_counter()
    done = 0
    while done < examples and (done == 0 or time.perf_counter() - started < seconds):
        try:
            with _shrink_bound(shrink_seconds):
                run_state_machine_as_test(state_machine, settings=search)  # type: ignore[no-untyped-call,unused-ignore]
        except Exception as e:  # the failure is the result
            elapsed = time.perf_counter() - started
            if port.dead is not None:
                detail = f"{port.reproducer(marks[-1], tail=10)}\n{port.dead}"
                return Result(name, done + CHUNK, BROKEN, elapsed, detail)
            if isinstance(e, PortError):
                return Result(name, done + CHUNK, BROKEN, elapsed, f"{port.reproducer(marks[-1])}\n{e}")
            detail = f"{port.reproducer(marks[-1])}\n{_describe(e)}"
            return Result(name, done + CHUNK, VIOLATION, elapsed, detail)
        done += CHUNK
        if tick is not None:
            tick(done)
    mark = port.mark()
    try:
        wrong = deep_probe(port, variant)
    except PortError as e:
        return Result(name, done, BROKEN, time.perf_counter() - started, f"{port.reproducer(mark)}\n{e}")
    if wrong:
        detail = f"{port.reproducer(mark)}\n{wrong}"
        return Result(name, done, VIOLATION, time.perf_counter() - started, detail)
    return Result(name, done, OK, time.perf_counter() - started)


PROBE_DEPTH = 20
"""The deep probe's tree: past 16 levels, where a 16-bit node or page index wraps."""


def deep_probe(port: Port, variant: str, depth: int = PROBE_DEPTH) -> str:
    """A fixed program on a deep arena, every reply compared with ``nbbs.impl.NBBS``'s.

    The random programs draw small trees (their words go over the pipe after every rule), so a
    port whose index arithmetic overflows only on deep trees would pass them. Here, page-sized
    blocks at both ends and the middle of the deepest level, a mid-sized one, then their frees:
    the reply that differs, or "" when all agree.
    """
    start = 1 << 40  # above 32 bits: an address computed in a narrow type shows it
    ref = NBBS(depth, page_size=4096, start=start, variant=variant)
    width = 1 << depth
    program = [f"alloc 0 {h}" for h in (0, width - 1, width // 2 + 3, 70_000)]
    program += ["alloc 5 1000", "alloc 12 200"]
    command = f"arena {depth} 4096 {start} - {variant}"
    reply = port.request(command)
    if reply != "ok":
        return f"{command!r}: the port answered {reply!r}, expected 'ok'"
    addresses: list[int] = []
    for line in program:
        _, order, hint = line.split()
        got = port.request(line)
        a = ref.alloc(int(order), int(hint))
        want = "none" if a is None else str(a)
        if got != want:
            return f"deep probe {line!r} on depth {depth}: the port answered {got!r}, NBBS {want!r}"
        if a is not None:
            addresses.append(a)
    for a in addresses:
        got = port.request(f"free {a}")
        if got != "ok":
            return f"deep probe 'free {a}' on depth {depth}: the port answered {got!r}, NBBS 'ok'"
    return ""


def _describe(e: BaseException) -> str:
    """The failure's type and message; for Hypothesis's flaky-failure group, its cause too."""
    text = f"{type(e).__name__}: {e}"
    if isinstance(e, BaseExceptionGroup):
        text += "\n(the port answered this session differently when it was replayed: its answers depend on"
        text += " more than the commands since 'arena', so the lines above may not reproduce it alone)"
        text += "".join(f"\n{type(x).__name__}: {x}" for x in e.exceptions)
    return text
