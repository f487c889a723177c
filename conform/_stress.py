"""The stress conformance run: real-thread histories from ``stress THREADS OPS SEED``, checked.

Each round builds a fresh arena, asks the port for a history, and checks it for:

* **overlap**: two blocks whose pages intersect and that were both certainly held at once.
  A block is certainly held from its alloc's return to its free's call (or to the end), so
  intervals that intersect there overlap in every linearization;
* **results**: an address inside the arena, aligned to its order; a free of a block its
  thread holds answered ``ok``;
* **linearizability** against ``model/spec.py`` with the concurrent failure contract
  (``nbbs.check.linearizability.check_allocator``), on the longest prefix of at most
  ``LIN_OPS`` operations that ends where none is in flight;
* **loss**: after freeing every block still held, the port must hand out the whole arena
  again as blocks of ``max_order``, then take them back (and, with ``words``, show an
  empty, quiescent tree).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbbs.check.linearizability import Operation, check_allocator
from nbbs.conform._result import BROKEN, OK, UNSUPPORTED, VIOLATION, Result
from nbbs.conform.protocol import Port, PortAllocator, PortError
from nbbs.impl import errors
from nbbs.model import geometry as g
from nbbs.model import spec, tree

LIN_OPS = 2_000_000
"""The longest history prefix checked for linearizability. The checker cuts the history where
no operation is in flight and is near-linear (``bench/lin_bench.py``: a million-operation
2-thread history in about 30 s), so every history a round asks for is checked whole."""

SHAPES = ((3, 3, 2, 100), (5, 3, 3, 150), (6, 6, 2, 200), (4, 2, 4, 150))
"""(depth, max_order, threads, ops per thread) of the rounds, taken in turn."""

KEYS = ["thread", "op", "args", "result", "call", "ret"]


class Violation(Exception):
    """The history or the port's answers break the spec."""


@dataclass(frozen=True)
class Record:
    """One line of a stress history."""

    thread: int
    op: str
    args: list[int]
    result: Any
    call: int
    ret: int
    line: str


def parse(port: Port, lines: list[str], threads: int) -> list[Record]:
    """The history's records; ``PortError`` for a line outside the protocol."""
    out = []
    for line in lines:
        try:
            obj = json.loads(line)
            ok = isinstance(obj, dict) and list(obj) == KEYS
            rec = Record(**obj, line=line) if ok else None
        except (ValueError, TypeError):
            rec = None
        if (
            rec is None
            or not (isinstance(rec.thread, int) and 0 <= rec.thread < threads)
            or not (isinstance(rec.call, int) and isinstance(rec.ret, int) and rec.call <= rec.ret)
            or not isinstance(rec.args, list)
            or not all(isinstance(a, int) for a in rec.args)
            or (rec.op, len(rec.args)) not in (("alloc", 1), ("free", 2))
            or (rec.op == "alloc" and not (rec.result is None or isinstance(rec.result, int)))
            or (rec.op == "free" and not isinstance(rec.result, str))
        ):
            raise port.garbled(f"a stress line must be JSON with keys {','.join(KEYS)} in that order", line)
        out.append(rec)
    return out


def check_history(
    alloc: PortAllocator, history: list[Record]
) -> tuple[list[tuple[int, int]], tuple[str, int, int]]:
    """Check overlap and results; the blocks still held (address, order), and the linearizability
    verdict with the operations checked and recorded.

    Raises ``Violation`` naming the records at fault.
    """
    arena, depth = alloc.arena, alloc.depth
    held: dict[tuple[int, int, int], Record] = {}  # (thread, address, order) -> its alloc
    spans: list[tuple[int, int, int, Record]] = []  # (node, from, to, alloc record)
    ops: list[Operation] = []
    end = max((r.ret for r in history), default=0) + 1
    for r in history:
        if r.op == "alloc":
            order = r.args[0]
            if r.result is None:
                ops.append(Operation(r.thread, spec.Alloc(order, None), r.call, r.ret))
                continue
            offset = r.result - arena.start
            if not 0 <= order <= arena.top_order or not 0 <= offset < arena.size:
                raise Violation(f"alloc returned an address outside the arena:\n  {r.line}")
            if offset % (arena.page_size << order):
                raise Violation(f"alloc returned an address not aligned to its order:\n  {r.line}")
            node = g.node_of(depth, offset // arena.page_size, order)
            held[(r.thread, r.result, order)] = r
            ops.append(Operation(r.thread, spec.Alloc(order, node), r.call, r.ret))
        else:
            address, order = r.args
            got = held.pop((r.thread, address, order), None)
            if got is None:
                raise Violation(f"thread {r.thread} freed a block it does not hold:\n  {r.line}")
            if r.result != "ok":
                raise Violation(f"a free of a held block was refused:\n  {got.line}\n  {r.line}")
            node = g.node_of(depth, (address - arena.start) // arena.page_size, order)
            spans.append((node, got.ret, r.call, got))
            ops.append(Operation(r.thread, spec.Free(node), r.call, r.ret))
    for got in held.values():
        node = g.node_of(depth, (got.result - arena.start) // arena.page_size, got.args[0])
        spans.append((node, got.ret, end, got))
    spans.sort(key=lambda s: s[1])
    for i, (a, _a_from, a_to, ra) in enumerate(spans):
        for b, b_from, _b_to, rb in spans[i + 1 :]:
            if b_from >= a_to:
                break
            if g.overlaps(a, b):
                raise Violation(f"two blocks held at the same time overlap:\n  {ra.line}\n  {rb.line}")
    checked = _quiescent_prefix(ops, LIN_OPS)
    result = check_allocator(checked, spec.Spec.of(depth, arena.top_order, spurious_failures=True))
    if result.verdict.value == "illegal":
        raise Violation("the history is not linearizable:\n" + result.explain())
    note = (result.verdict.value, len(checked), len(ops))
    return sorted((r.result, r.args[0]) for r in held.values()), note


def _quiescent_prefix(ops: list[Operation], limit: int) -> list[Operation]:
    """The longest prefix (by call) of at most ``limit`` operations after which none is in flight.

    The state there is fixed by the recorded results, so the prefix is a history of its own.
    Without such a cut the first ``limit`` operations are taken anyway, and the checker may
    then answer "unknown".
    """
    ops = sorted(ops, key=lambda o: o.call)
    if len(ops) <= limit:
        return ops
    best, latest = 0, float("-inf")
    for i, o in enumerate(ops[:limit]):
        latest = max(latest, o.ret)
        if i + 1 < len(ops) and latest < ops[i + 1].call:
            best = i + 1
    return ops[: best or limit]


def check_loss(alloc: PortAllocator, still_held: list[tuple[int, int]]) -> None:
    """Free what is held; the whole arena must then come back as ``max_order`` blocks."""
    for address, order in still_held:
        alloc.free(address, order)
    arena = alloc.arena
    expected = 1 << (arena.depth - arena.top_order)
    got: list[int] = []
    while len(got) <= expected:
        a = alloc.alloc(arena.top_order)
        if a is None:
            break
        got.append(a)
    if len(got) != expected or len(set(got)) != expected:
        raise Violation(
            f"after freeing every block, {len(got)} blocks of order {arena.top_order} could be allocated "
            f"({len(set(got))} distinct), expected {expected}: blocks were lost"
        )
    for a in got:
        alloc.free(a, arena.top_order)
    if alloc.observable_words:
        words = alloc.words()
        if tree.abstraction(words, arena.depth):
            raise Violation(f"after freeing everything the words still show blocks: {words}")
        broken = tree.quiescent_violations(words, arena.depth, arena.max_level, alloc.transitions)
        if broken:
            raise Violation("after freeing everything the tree is not quiescent:\n  " + "\n  ".join(broken))


def run(
    port: Port,
    variant: str,
    seconds: float,
    rounds: int = 0,
    seed: int = 0,
    tick: Callable[[int], None] | None = None,
    stress_timeout: float = 120.0,
) -> Result:
    """Stress rounds within about ``seconds`` (at least one; exactly ``rounds`` if given) on ``variant``."""
    name = f"stress {variant}"
    if "stress" not in port.features:
        return Result(name, 0, UNSUPPORTED, 0.0, "the port does not list the 'stress' feature")
    rng = random.Random(seed)
    started = time.perf_counter()
    done = 0
    notes: list[tuple[str, int, int]] = []
    while (rounds and done < rounds) or (
        not rounds and (done == 0 or time.perf_counter() - started < seconds)
    ):
        depth, max_order, threads, ops = SHAPES[done % len(SHAPES)]
        start = rng.randrange(4) * (4096 << max_order)
        round_seed = rng.randrange(1 << 31)
        mark = port.mark()
        try:
            alloc = PortAllocator(
                port, depth, page_size=4096, start=start, max_order=max_order, variant=variant
            )
            lines = port.request_until(f"stress {threads} {ops} {round_seed}", timeout=stress_timeout)
            if lines and lines[0].startswith("error "):
                raise port.garbled("expected a stress history", lines[0])
            held, note = check_history(alloc, parse(port, lines, threads))
            check_loss(alloc, held)
        except PortError as e:
            return Result(name, done + 1, BROKEN, time.perf_counter() - started, f"{_shown(port, mark)}\n{e}")
        except (Violation, errors.NBBSError) as e:
            what = f"{type(e).__name__}: {e}" if isinstance(e, errors.NBBSError) else str(e)
            detail = f"{_shown(port, mark)}\n{what}"
            return Result(name, done + 1, VIOLATION, time.perf_counter() - started, detail)
        notes.append(note)
        done += 1
        if tick is not None:
            tick(done)
    verdicts = sorted({v for v, _, _ in notes})
    checked, recorded = sum(n[1] for n in notes), sum(n[2] for n in notes)
    summary = (
        f"linearizability {'/'.join(verdicts)} on {checked} of {recorded} operations in {done} histories"
    )
    return Result(name, done, OK, time.perf_counter() - started, summary)


def _shown(port: Port, mark: int) -> str:
    """The round's protocol lines; a history's lines are left out of the exchange (they are many)."""
    session = port.transcript[mark:]
    history = [t for t in session if t.startswith("< {")]
    kept = [t for t in session if not t.startswith("< {")]
    port.transcript[mark:] = kept
    text = port.reproducer(mark, tail=30)
    port.transcript[mark:] = session
    return text + f"\n    ({len(history)} history lines not shown)"
