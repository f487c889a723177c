"""What an exploration runs: a scenario (arena, allocator, per-thread operations) and its schedule string.

A *schedule string* names one execution completely, scenario included, so ``nbbs replay``
needs nothing else. Three fields separated by ``:``::

    d3-m3-counted-L9.12 : a0@0+f0,a0@1+F9 : a8b19a11
    ^ header           ^ threads           ^ schedule

* header: ``d<depth>``, ``m<max_order>``, the allocator's name (``counted``, ``reference``,
  ``corrected``, a mutant, ``locked``), optionally ``L<node>.<node>...``, blocks allocated
  before the threads start, and optionally ``U``: frees skip the argument check (as the model's);
* threads, separated by ``,``, each a ``+``-separated list of operations: ``a<order>@<hint>``
  (alloc with that scan start), ``f<k>`` (free the block this thread's ``k``-th alloc
  returned; skipped if that alloc returned None), ``F<node>`` (free a live block by node),
  ``D<node>`` (a racing double free of an initial block: several threads free it at once);
* schedule: which thread performs each atomic access, run-length encoded with thread ``0``
  as ``a``, ``1`` as ``b`` ...: ``a8b19a11`` is eight accesses by thread 0, nineteen by thread
  1, eleven by thread 0.

The string has no spaces or shell metacharacters, so it can be pasted as one argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nbbs.model import bits
from nbbs.model import geometry as g


class ExplorerError(Exception):
    """The explorer was asked for something it cannot do (a bad scenario, schedule or config)."""


class InternalBug(AssertionError):
    """The explorer contradicted itself: a bug in nbbs.check, not in the allocator under test."""

    def __init__(self, message: str) -> None:
        super().__init__(f"[nbbs internal bug] {message}")


@dataclass(frozen=True)
class AllocOp:
    """``alloc(order, hint)``: scan level ``depth - order`` from position ``hint``."""

    order: int
    hint: int

    def code(self) -> str:
        return f"a{self.order}@{self.hint}"


@dataclass(frozen=True)
class FreeOwn:
    """Free the block returned by this thread's ``k``-th alloc (nothing if it returned None)."""

    k: int

    def code(self) -> str:
        return f"f{self.k}"


@dataclass(frozen=True)
class FreeNode:
    """Free the live block ``node`` (one of the scenario's initial blocks, or one this thread holds)."""

    node: int

    def code(self) -> str:
        return f"F{self.node}"


@dataclass(frozen=True)
class DoubleFree:
    """A racing double free: ``NBBS.free`` of the initial block ``node``, which other threads free
    too. Exactly one of them must succeed; the others must raise ``DoubleFreeError`` (recorded,
    not a crash) having changed nothing, and the arena must be intact at the end."""

    node: int

    def code(self) -> str:
        return f"D{self.node}"


Op = AllocOp | FreeOwn | FreeNode | DoubleFree


@dataclass(frozen=True)
class Scenario:
    """An arena of ``2**depth`` pages, an allocator, initial blocks and one operation list per thread.

    Every alloc names its scan start (``hint``): the allocator's per-thread default lives in a
    ``threading.local`` that all logical threads of one OS thread share, so leaving it to the
    allocator would make runs depend on each other.
    """

    depth: int
    threads: tuple[tuple[Op, ...], ...]
    max_order: int | None = None
    allocator: str = bits.DEFAULT_VARIANT
    initial: tuple[int, ...] = ()
    checked_free: bool = True
    """False: a free calls ``_free_node`` directly, skipping ``NBBS.free``'s argument check (its
    loads), as the model checker's free does (``check.bridge``). Header flag ``U``."""

    def __post_init__(self) -> None:
        if self.max_order is None:
            object.__setattr__(self, "max_order", self.depth)
        self.validate()

    @property
    def top_order(self) -> int:
        """The largest order one may ask for."""
        assert self.max_order is not None
        return self.max_order

    @property
    def max_level(self) -> int:
        """The highest level climbs and marks touch."""
        return self.depth - self.top_order

    def validate(self) -> None:
        """Raise ``ExplorerError`` naming the first thing wrong with this scenario."""
        if not 0 <= self.depth <= 10:
            raise ExplorerError(f"depth must be from 0 to 10 for exploration, got {self.depth}")
        if not 0 <= self.top_order <= self.depth:
            raise ExplorerError(f"max_order must be from 0 to depth={self.depth}, got {self.max_order}")
        if not 1 <= len(self.threads) <= 26:
            raise ExplorerError(f"a scenario has 1 to 26 threads, got {len(self.threads)}")
        for n in self.initial:
            if not (1 <= n < g.node_count(self.depth)) or g.level(n) < self.max_level:
                raise ExplorerError(f"initial block {n} is not a node at or below level {self.max_level}")
        init = sorted(self.initial)
        for i, a in enumerate(init):
            for b in init[i + 1 :]:
                if g.overlaps(a, b):
                    raise ExplorerError(f"initial blocks {a} and {b} overlap")
        freed: set[int] = set()
        for t, ops in enumerate(self.threads):
            allocs = 0
            for op in ops:
                if isinstance(op, AllocOp):
                    if not 0 <= op.order <= self.top_order:
                        raise ExplorerError(f"thread {t}: order {op.order} outside 0..{self.top_order}")
                    allocs += 1
                elif isinstance(op, FreeOwn):
                    if not 0 <= op.k < allocs:
                        raise ExplorerError(f"thread {t}: f{op.k} frees an alloc the thread has not made yet")
                elif isinstance(op, DoubleFree):
                    if op.node not in self.initial:
                        raise ExplorerError(
                            f"thread {t}: D{op.node} double-frees a block that is not initial"
                        )
                elif op.node in self.initial:
                    if op.node in freed:
                        raise ExplorerError(f"initial block {op.node} is freed twice")
                    freed.add(op.node)

    def ops(self) -> int:
        """How many operations all threads perform."""
        return sum(len(t) for t in self.threads)

    def header(self) -> str:
        """The header field of the schedule string."""
        head = f"d{self.depth}-m{self.top_order}-{self.allocator}"
        if self.initial:
            head += "-L" + ".".join(map(str, self.initial))
        if not self.checked_free:
            head += "-U"
        return head

    def code(self) -> str:
        """Header and threads: the schedule string without its schedule."""
        threads = ",".join("+".join(op.code() for op in ops) for ops in self.threads)
        return f"{self.header()}:{threads}"


def encode_schedule(schedule: list[int] | tuple[int, ...]) -> str:
    """Run-length encode thread indices: ``[0, 0, 1]`` -> ``a2b``."""
    out = []
    i, n = 0, len(schedule)
    while i < n:
        t = schedule[i]
        j = i + 1
        while j < n and schedule[j] == t:
            j += 1
        out.append(chr(97 + t) + (str(j - i) if j - i > 1 else ""))
        i = j
    return "".join(out)


def decode_schedule(text: str) -> list[int]:
    """The thread indices a run-length encoded schedule stands for."""
    if not re.fullmatch(r"([a-z]\d*)*", text):
        raise ExplorerError(f"a schedule is letters with optional counts (a8b19a11), got {text!r}")
    out: list[int] = []
    for letter, count in re.findall(r"([a-z])(\d*)", text):
        out.extend([ord(letter) - 97] * (int(count) if count else 1))
    return out


_OP = re.compile(r"a(\d+)@(\d+)|f(\d+)|F(\d+)|D(\d+)")


def parse(text: str) -> tuple[Scenario, list[int]]:
    """The scenario and schedule a schedule string names (the schedule may be empty)."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3):
        raise ExplorerError(f"a schedule string is HEADER:THREADS:SCHEDULE, got {text!r}")
    header, threads = parts[0], parts[1]
    sched = decode_schedule(parts[2]) if len(parts) == 3 else []
    m = re.fullmatch(r"d(\d+)-m(\d+)-([A-Za-z_][A-Za-z0-9_]*)(?:-L([\d.]+))?(-U)?", header)
    if not m:
        raise ExplorerError(f"header must look like d3-m3-counted or d3-m3-counted-L9.12, got {header!r}")
    initial = tuple(int(x) for x in m.group(4).split(".")) if m.group(4) else ()
    ops: list[tuple[Op, ...]] = []
    for chunk in threads.split(","):
        thread: list[Op] = []
        for code in chunk.split("+") if chunk else []:
            om = _OP.fullmatch(code)
            if not om:
                raise ExplorerError(
                    f"operation must be a<order>@<hint>, f<k>, F<node> or D<node>, got {code!r}"
                )
            if om.group(1) is not None:
                thread.append(AllocOp(int(om.group(1)), int(om.group(2))))
            elif om.group(3) is not None:
                thread.append(FreeOwn(int(om.group(3))))
            elif om.group(4) is not None:
                thread.append(FreeNode(int(om.group(4))))
            else:
                thread.append(DoubleFree(int(om.group(5))))
        ops.append(tuple(thread))
    scenario = Scenario(int(m.group(1)), tuple(ops), int(m.group(2)), m.group(3), initial, not m.group(5))
    if any(not 0 <= t < len(ops) for t in sched):
        raise ExplorerError(f"the schedule names a thread outside 0..{len(ops) - 1}")
    return scenario, sched


def schedule_string(scenario: Scenario, schedule: list[int] | tuple[int, ...]) -> str:
    """The self-contained name of one execution."""
    return f"{scenario.code()}:{encode_schedule(schedule)}"
