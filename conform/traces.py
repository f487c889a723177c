"""Conformance traces, version 1 (PORTING.md): sequential runs of ``nbbs.impl.NBBS`` a port replays alone.

Each trace is a JSONL file: a header naming the arena, then one line per operation with the
reply the port must give. The operations are random (seeded, so ``export`` writes the same
files every time) and include bad inputs; ``words`` lines pin the status words. Every alloc
that is accepted carries a hint, so a port that scans as PORTING.md says (start at the hint,
round-robin, skip the subtree of an occupied ancestor) picks the same blocks whatever its
policy for a scan without a hint.

``expect`` is written as the protocol reply's meaning: an address, ``null`` for ``none``,
``"ok"``, ``"error <Class>"`` (the message is not compared), or the list of words.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nbbs.conform.protocol import Port, PortAllocator
from nbbs.impl import errors
from nbbs.impl.nbbs import NBBS

TRACE_VERSION = 1
"""The trace format's version (PORTING.md, "Conformance traces")."""

SHAPES: tuple[tuple[str, int, int, int, int | None, int], ...] = (
    # (variant, depth, page_size, start, max_order, operations)
    ("counted", 0, 4096, 0, None, 12),
    ("counted", 2, 4096, 0, None, 60),
    ("counted", 3, 64, 3 * (64 << 3), None, 120),
    ("counted", 5, 4096, 0, 3, 200),
    ("counted", 8, 1, 1 << 20, 6, 300),
    ("reference", 2, 4096, 0, None, 60),
    ("reference", 3, 64, 3 * (64 << 3), None, 120),
    ("reference", 5, 4096, 0, 3, 200),
    ("top_down_node", 3, 64, 3 * (64 << 3), None, 120),
    ("top_down_node", 5, 4096, 0, 3, 200),
    ("top_down_node", 0, 4096, 0, None, 12),
    ("top_down_node", 2, 4096, 0, None, 60),
    ("top_down_node", 8, 1, 1 << 20, 6, 300),
)
"""The traces ``export`` writes, each seeded with its position here (so a new shape goes at the
end: the files of the others stay as they are). ``top_down_node``, the shipped variant
(ALGORITHM.md §1.4.3, §1.4.5), has ``counted``'s five shapes since the switch; ``counted`` keeps
its own, ``reference`` three."""

WORDS_EVERY = 4
"""A ``words`` line after every this many operations (and after the last); ``WORDS_EVERY_DEEP``
above depth 5, where a line holds hundreds of words."""

WORDS_EVERY_DEEP = 20


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def trace_name(variant: str, depth: int, max_order: int | None) -> str:
    """The file name of a trace: ``counted-d5-m3.jsonl``."""
    return f"{variant}-d{depth}-m{depth if max_order is None else max_order}.jsonl"


def generate(
    variant: str, depth: int, page_size: int, start: int, max_order: int | None, operations: int, seed: int
) -> Iterator[str]:
    """The lines of one trace: ``operations`` random calls on a fresh ``NBBS``, replies recorded."""
    heap = NBBS(depth, page_size=page_size, start=start, max_order=max_order, variant=variant)
    arena = heap.arena
    top = arena.top_order
    yield _line(
        {
            "format": "nbbs-trace",
            "version": TRACE_VERSION,
            "depth": depth,
            "page_size": page_size,
            "start": start,
            "max_order": top,
            "variant": variant,
        }
    )
    rng = random.Random(seed)
    held: list[tuple[int, int]] = []
    freed: list[int] = []
    for i in range(operations):
        roll = rng.random()
        if roll < 0.45 or (not held and roll < 0.8):
            order = rng.choice([*range(top + 1), *range(top + 1), -1, top + 1])
            hint: int | None = rng.randrange(1 << depth) if 0 <= order <= top or rng.random() < 0.5 else None
            op: dict[str, Any] = {"op": "alloc", "order": order, "hint": hint}
            expect: Any
            try:
                expect = heap.alloc(order, hint)
            except errors.NBBSError as e:
                expect = f"error {type(e).__name__}"
            if isinstance(expect, int):
                held.append((expect, order))
        else:
            if held and roll < 0.8:
                address, order_held = held.pop(rng.randrange(len(held)))
                order_given: int | None = order_held if rng.random() < 0.5 else None
            else:
                address, order_given = _bogus(rng, heap, held, freed)
            op = {"op": "free", "addr": address, "order": order_given}
            try:
                heap.free(address, order_given)
                expect = "ok"
                freed.append(address)
            except errors.NBBSError as e:
                expect = f"error {type(e).__name__}"
            held[:] = [(a, o) for a, o in held if expect != "ok" or a != address]
        yield _line({**op, "expect": expect})
        if (i + 1) % (WORDS_EVERY if depth <= 5 else WORDS_EVERY_DEEP) == 0 or i + 1 == operations:
            yield _line({"op": "words", "expect": list(heap.words())})
    # Everything held is given back, and the tree must be all zero again.
    for address, _ in held:
        heap.free(address)
        yield _line({"op": "free", "addr": address, "order": None, "expect": "ok"})
    yield _line({"op": "words", "expect": list(heap.words())})


def _bogus(
    rng: random.Random, heap: NBBS, held: list[tuple[int, int]], freed: list[int]
) -> tuple[int, int | None]:
    """A free the allocator must refuse (or, rarely, a valid one): foreign, misaligned, interior, ..."""
    arena = heap.arena
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice([arena.start + arena.size, arena.start - 1, arena.start + 2 * arena.size]), None
    if kind == 1 and arena.page_size > 1:
        return arena.start + rng.randrange(arena.size) | 1, None
    if kind == 2 and held:
        address, order = rng.choice(held)
        if order and rng.random() < 0.5:
            return address, order - 1  # a live block's start, the wrong order
        if order:
            return address + arena.page_size * (1 << rng.randrange(order)), None
        return address, order + 1 if order < arena.top_order else -1
    if kind == 3 and freed:
        return rng.choice(freed), None
    if kind == 4:
        return arena.start + arena.page_size * rng.randrange(1 << arena.depth), rng.randrange(
            arena.top_order + 1
        )
    return arena.start + arena.page_size * rng.randrange(1 << arena.depth), None


def export(out_dir: str | Path) -> list[Path]:
    """Write every trace of ``SHAPES`` and the controlled mode's schedule traces
    (``nbbs.conform.controlled.export_schedules``) to ``out_dir``; the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for seed, (variant, depth, page_size, start, max_order, operations) in enumerate(SHAPES):
        path = out / trace_name(variant, depth, max_order)
        lines = generate(variant, depth, page_size, start, max_order, operations, seed)
        path.write_text("".join(line + "\n" for line in lines))
        written.append(path)
    from nbbs.conform import controlled  # it imports this module's neighbours: import it late

    written += [Path(p) for p in controlled.export_schedules(out)]
    return written


def replay(path: str | Path, port: Port) -> list[str]:
    """Replay a sequential trace on ``port``; the mismatches (``line N: sent ..., expected ..., got ...``)."""
    lines = Path(path).read_text().splitlines()
    head = json.loads(lines[0])
    if head.get("format") != "nbbs-trace" or head.get("version") != TRACE_VERSION:
        raise ValueError(f"{path}: not an nbbs-trace of version {TRACE_VERSION}")
    try:
        alloc = PortAllocator(
            port,
            head["depth"],
            page_size=head["page_size"],
            start=head["start"],
            max_order=head["max_order"],
            variant=head["variant"],
        )
    except errors.NBBSError as e:
        return [f"line 1: the port refused the arena: {type(e).__name__} {e}"]
    wrong = []
    for number, text in enumerate(lines[1:], start=2):
        step = json.loads(text)
        got: Any
        try:
            if step["op"] == "alloc":
                sent = f"alloc {step['order']}" + ("" if step["hint"] is None else f" {step['hint']}")
                got = alloc.alloc(step["order"], step["hint"])
            elif step["op"] == "free":
                sent = f"free {step['addr']}" + ("" if step["order"] is None else f" {step['order']}")
                alloc.free(step["addr"], step["order"])
                got = "ok"
            elif step["op"] == "words":
                sent = "words"
                alloc._words = None  # the trace asks each time
                got = list(alloc.words())
            else:
                continue  # spawn and step lines belong to the controlled build's replay
        except errors.NBBSError as e:
            got = f"error {type(e).__name__}"
        if got != step["expect"]:
            wrong.append(f"line {number}: sent {sent!r}, expected {step['expect']!r}, got {got!r}")
    return wrong
