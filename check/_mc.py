"""The explicit-state model checker's machinery: state encoding, successors, BFS, cycle search.

A global state is one Python int, packed from the low bits up:

    5 bits per node 1 .. N-1           the status words
    16 bits per thread, sorted          each thread's op id (thread symmetry: sorted ids)
    the rest                            the static set: which initial set of live blocks

An op id is an index into a table of interned ``steps.OpState``s; id 0 is ``IDLE`` (about
to start an alloc), ``DONE_OK`` with node ``n`` means "holding ``n``" (about to free it).
A thread's finished op (a failed alloc, a free) becomes ``IDLE`` again, so each thread runs
"alloc something, free it" forever. The static set is a set of live blocks held by threads
that never run: the initial allocation, one of every possible set of disjoint blocks.

Threads are interchangeable (same program, same choices), so the sorted tuple of their op
ids is a canonical representative of every permutation: each state is stored once.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbbs.model import bits, spec, steps
from nbbs.model import geometry as g
from nbbs.model.steps import Kind, Machine, OpState

IDLE = 0
TID_BITS = 16
TID_MASK = (1 << TID_BITS) - 1
_OCCUPIED_IN_FLIGHT = frozenset(
    {steps.C_LOAD, steps.C_CAS, steps.R_MARK, steps.R_RELEASE, steps.R_PLOAD, steps.R_PCAS}
    | {steps.D_LOAD, steps.D_CAS, steps.U_LOAD, steps.U_CAS}
    | {steps.F_CHECK, steps.F_MARK, steps.F_RELEASE}
)
"""Program counters at which an op's node ``n`` is occupied although not in the linearized state."""
_UNMARKING = frozenset({steps.F_ULOAD, steps.F_UCAS, steps.R_ULOAD, steps.R_UCAS})
"""Also occupied there when the free releases after its unmark."""
PROPERTIES = ("a", "b", "c", "d")
PROPERTY_NAMES = {
    "a": "no two held blocks overlap",
    "b": "quiescent: words = held blocks, every free block obtainable",
    "c": "linearizable (ghost state at the linearization points)",
    "d": "lock-free (no cycle without a completion)",
}


@dataclass(frozen=True)
class Config:
    """What to check: the tree, the threads, the algorithm, the properties and the bounds.

    ``mode``: ``attempt`` (each alloc is one attempt at a node the checker picks) or
    ``scan`` (each alloc is ``impl/nbbs.py``'s scan from a start the checker picks).
    ``initial``: ``all`` (every set of disjoint blocks, as the sequential allocator leaves
    its words) or ``empty``. ``max_states`` stops the search early (reported incomplete).
    """

    threads: int
    depth: int
    max_order: int | None = None
    variant: str = bits.DEFAULT_VARIANT
    transitions: bits.Transitions | None = None
    """Overrides the variant's bundle (a mutant)."""
    gives_up: bool = True
    properties: tuple[str, ...] = PROPERTIES
    mode: str = "attempt"
    initial: str = "all"
    stop_at_first: bool = False
    """End the search at the first violation (a test of a broken variant needs no more)."""
    scenario: tuple[tuple[tuple[str, int], ...], ...] | None = None
    """Instead of "any alloc, then free it" forever: thread ``k`` runs exactly the ops of
    ``scenario[k]`` (``("alloc", node)``, ``("free", node)`` or ``("dfree", node)``), once, in
    every interleaving; a free of a block the thread does not hold (its alloc failed) is
    skipped. ``dfree`` is a racing double free: ``NBBS.free``'s checked free of ``node``, a
    block of the initial live set (the user's), which several threads may free at once; of
    those exactly one must succeed and the others be refused (``DoubleFreeError``) leaving
    the arena intact (checked with (b)). A ``dfree`` block is not allocated in the scenario."""
    checked_free: bool = False
    """Frees start with ``NBBS.free``'s argument-check loads (``Machine.free(checked=True)``)."""
    max_states: int | None = None
    seconds: float | None = None
    """Stop the search after this many seconds (reported incomplete)."""

    def __post_init__(self) -> None:
        if self.scenario is not None:
            last = g.node_count(self.depth) - 1
            doubly = {n for ops in self.scenario for what, n in ops if what == "dfree"}
            for k, ops in enumerate(self.scenario):
                for what, n in ops:
                    if what == "alloc" and any(g.overlaps(n, d) for d in doubly):
                        raise ValueError(
                            f"thread {k}: 'alloc {n}' overlaps a block the scenario double-frees "
                            "(a dfree frees a block of the initial live set)"
                        )
                    if not 1 <= n <= last or g.level(n) < self.max_level:
                        raise ValueError(
                            f"thread {k}: '{what} {n}' names no block: at depth {self.depth} with max "
                            f"order {self.top_order} the blocks are the nodes "
                            f"{g.first_node(self.max_level)} to {last}"
                        )

    @property
    def top_order(self) -> int:
        return self.depth if self.max_order is None else self.max_order

    @property
    def max_level(self) -> int:
        return self.depth - self.top_order

    def machine(self) -> Machine:
        t = self.transitions if self.transitions is not None else bits.VARIANTS[self.variant]
        if t.at_width is not None and self.transitions is None:
            # The counts only need room for this tree and these threads (``count_bound``).
            t = t.at_width(self.count_bound.bit_length())
        return Machine(self.depth, self.max_level, t, self.gives_up)

    @property
    def count_bound(self) -> int:
        """The largest count a ``counted`` word can hold here: one claim per page under a child
        of a ``max_level`` node (the held blocks are disjoint) plus one per thread in flight."""
        return (1 << max(self.depth - self.max_level - 1, 0)) + self.threads

    @property
    def label(self) -> str:
        """A short name for tables: threads, depth, max order, variant, mode."""
        name = "mutant" if self.transitions is not None else self.variant
        extra = ("+checked" if self.checked_free else "") + ("+empty" if self.initial == "empty" else "")
        extra += "+scenario" if self.scenario is not None else ""
        return f"T={self.threads} D={self.depth} O={self.top_order} {name} {self.mode}{extra}"

    def describe(self) -> str:
        name = "mutant" if self.transitions is not None else self.variant
        if not self.gives_up:
            name += "+scan-forever"
        return (
            f"{self.threads} threads, depth {self.depth}, max_order {self.top_order}, variant {name}, "
            f"{self.mode} mode{', checked frees' if self.checked_free else ''}, initial {self.initial}"
            + (f", scenario {self.scenario}" if self.scenario is not None else "")
        )


@dataclass
class Step:
    """One atomic step of a counterexample."""

    thread: int
    started: str | None
    """The operation this step starts, if it is the first step of one."""
    event: steps.Event
    before: str
    after: str
    words: tuple[int, ...]


@dataclass
class Violation:
    """A property that fails, with the shortest run that shows it."""

    prop: str
    message: str
    initial_live: list[int]
    initial_words: tuple[int, ...]
    steps: list[Step]
    cycle_start: int | None = None
    """For lock-freedom: the index in ``steps`` where the repeating cycle starts."""
    ops: list[list[dict[str, int | str]]] = field(default_factory=list)
    schedule: list[int] = field(default_factory=list)
    transitions: bits.Transitions = bits.PUBLISHED
    """What the words mean (for printing them)."""


@dataclass
class Result:
    """What a run established."""

    config: Config
    states: int = 0
    transitions: int = 0
    quiescent: int = 0
    initial_states: int = 0
    seconds: float = 0.0
    complete: bool = True
    violations: dict[str, Violation] = field(default_factory=dict)
    stale_quiescent: int = 0
    """Quiescent states whose words carry a COAL bit (harmless or not; (b) decides)."""

    @property
    def ok(self) -> bool:
        return self.complete and not self.violations

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds else 0.0


def live_sets(depth: int, max_level: int) -> list[frozenset[int]]:
    """Every set of pairwise disjoint blocks of order <= max_order (levels >= max_level)."""

    def under(n: int) -> list[frozenset[int]]:
        if g.level(n) == depth:
            return [frozenset(), frozenset({n})]
        kids = [a | b for a in under(g.left(n)) for b in under(g.right(n))]
        return [*kids, frozenset({n})] if g.level(n) >= max_level else kids

    return sorted(under(g.ROOT), key=lambda s: (len(s), sorted(s)))


Ctx = tuple[Any, ...]
"""In a scenario, an op state's context: (thread, index of its next op, blocks its racing
double frees took); outside one, ``()``."""


class _LazyRows(dict[int, tuple[int, int, bool]]):
    """An op state's table rows for wide words, each computed when first looked up."""

    def __init__(self, space: Space, i: int, acc: steps.Access) -> None:
        super().__init__()
        self.space, self.i, self.acc = space, i, acc

    def __missing__(self, old: int) -> tuple[int, int, bool]:
        row = self[old] = self.space.row(self.i, self.acc, old)
        return row


Rows = list[tuple[int, int, bool]] | _LazyRows


class Space:
    """The interned op states, the state encoding and the successor function of one configuration."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.m = cfg.machine()
        self.nodes = g.node_count(cfg.depth)
        self.T = cfg.threads
        t = self.m.transitions
        self.word_bits, self.word_mask = t.word_bits, (1 << t.word_bits) - 1
        self.count_limit = cfg.count_bound if t.count_bits else 0
        self.WB = self.word_bits * (self.nodes - 1)
        """Bits of the word part."""
        self.SB = self.WB + TID_BITS * self.T
        """Shift of the static set index."""
        self.ops: list[OpState] = [OpState(steps.DONE_FAIL, 0)]
        self.ctx: list[Ctx] = [()]
        """In a scenario, (thread, index of its next op) of each op state id; else ()."""
        self.ids: dict[tuple[OpState, Ctx], int] = {(self.ops[0], ()): IDLE}
        self.hold: list[int] = [0]
        """The node a thread holds in this op state (0 if none)."""
        self.idle: list[bool] = [True]
        """The thread is between operations, holding nothing."""
        self.dfree_op: list[bool] = [False]
        """The op is a scenario's racing double free (``dfree``) in flight."""
        self.scenario = cfg.scenario
        if self.scenario is not None and len(self.scenario) != cfg.threads:
            raise ValueError(
                f"the scenario has {len(self.scenario)} threads, the configuration {cfg.threads}"
            )
        self._tables: list[tuple[int, int, Rows] | None] = []
        self.candidates = [n for n in g.all_nodes(cfg.depth) if g.level(n) >= cfg.max_level]
        if cfg.mode == "attempt":
            starts = [self.m.attempt(n) for n in self.candidates]
        else:
            starts = [
                self.m.alloc(o, s)
                for o in range(cfg.top_order + 1)
                for s in range(g.width(g.level_of_order(cfg.depth, o)))
            ]
        self.start_ids = [self.intern(op) for op in starts]
        self.free_id = {n: self.intern(self.m.free(n, cfg.checked_free)) for n in self.candidates}
        for n in self.candidates:
            self.intern(OpState(steps.DONE_OK, n))
        self.sets = live_sets(cfg.depth, cfg.max_level) if cfg.initial == "all" else [frozenset()]
        self.occ_mask = sum(bits.OCC << self.shift(n) for n in range(1, self.nodes))
        self.occ_of = [0] + [bits.OCC << self.shift(n) for n in range(1, self.nodes)]
        self.static_occ = [sum(self.occ_of[n] for n in live) for live in self.sets]
        self.static_overlap = [
            sum(1 << n for n in range(1, self.nodes) if any(g.overlaps(n, b) for b in live))
            for live in self.sets
        ]

    def shift(self, n: int) -> int:
        """Where node ``n``'s word sits in the packed state."""
        return self.word_bits * (n - 1)

    # -- op states ---------------------------------------------------------------------------

    def intern(self, op: OpState, ctx: Ctx = ()) -> int:
        """The id of ``op`` (a finished alloc that failed and a finished free are both idle)."""
        if op.pc in (steps.DONE_FAIL, steps.DONE_FREE):
            if not ctx:
                return IDLE
            op = self.ops[IDLE]
        i = self.ids.get((op, ctx))
        if i is None:
            i = len(self.ops)
            if i >= 1 << TID_BITS:
                raise AssertionError("[model checker internal bug] too many op states for the encoding")
            self.ids[(op, ctx)] = i
            self.ops.append(op)
            self.ctx.append(ctx)
            self.hold.append(op.n if op.pc == steps.DONE_OK else 0)
            self.idle.append(op.pc == steps.DONE_FAIL)
            script = self.scenario
            running = script is not None and bool(ctx) and ctx[1] > 0 and not steps.is_done(op)
            self.dfree_op.append(running and script is not None and script[ctx[0]][ctx[1] - 1][0] == "dfree")
        return i

    def table(self, i: int) -> tuple[int, int, Rows]:
        """Op ``i``'s next access: (its word's shift, access kind, old word -> (new word, next op, done)).

        Five-bit words get all 32 rows at once; wider (``counted``) words get each row when
        first needed, which also checks that no count leaves ``0 .. count_bound``.
        """
        while len(self._tables) <= i:
            self._tables.append(None)
        t = self._tables[i]
        if t is None:
            op = self.ops[i]
            acc = self.m.access(op)
            assert acc is not None
            rows: Rows
            if self.count_limit:
                rows = _LazyRows(self, i, acc)
            else:
                rows = [self.row(i, acc, old) for old in range(1 << self.word_bits)]
            t = self._tables[i] = (self.shift(acc.node), int(acc.kind), rows)
        return t

    def row(self, i: int, acc: steps.Access, old: int) -> tuple[int, int, bool]:
        """What op ``i``'s access does to the word ``old``: (new word, next op, done)."""
        op, ctx = self.ops[i], self.ctx[i]
        after = self.m.after(op, old)
        if self.dfree_op[i] and after.pc == steps.DONE_FREE:
            # A racing double free that succeeded: it took the user's block (recorded per thread).
            ctx = (ctx[0], ctx[1], tuple(sorted((*ctx[2], op.n))))
        nxt = self.intern(after, ctx)
        done = self.idle[nxt] or self.hold[nxt] != 0
        new = steps.effect(acc, old)
        if self.count_limit and new != old:
            w = self.m.transitions.count_bits
            counts = (new >> bits.COUNT_SHIFT & (1 << w) - 1, new >> bits.COUNT_SHIFT + w)
            if new < 0 or new >> self.word_bits or max(counts) > self.count_limit:
                raise CountRangeError(
                    f"[counted] a count left 0..{self.count_limit}: {steps.describe(self.ops[i])} turns "
                    f"{self.m.transitions.show(old)} into {new} (an algorithm bug, or a bound too small)"
                )
        return new, nxt, done

    def moves(self, tid: int) -> list[int]:
        """The op ids a thread in state ``tid`` may be running when it takes its next step."""
        between = self.idle[tid] or self.hold[tid] != 0
        if self.scenario is not None:
            if not between:
                return [tid]
            k, idx, won = self.ctx[tid]
            script = self.scenario[k]
            # A free of a block the thread does not hold (its alloc failed) is skipped.
            while idx < len(script) and script[idx][0] == "free" and script[idx][1] != self.hold[tid]:
                idx += 1
            if idx >= len(script):
                return []
            what, n = script[idx]
            if what == "alloc" and self.hold[tid]:
                raise ValueError(f"scenario thread {k} allocates again while holding {self.hold[tid]}")
            if what == "dfree":
                start = self.m.free(n, checked=True)
            elif what == "free":
                start = self.m.free(n, self.cfg.checked_free)
            elif self.cfg.mode == "attempt":
                start = self.m.attempt(n)
            else:
                start = self.m.alloc(g.order_of(self.cfg.depth, n), n - g.first_node(g.level(n)))
            return [self.intern(start, (k, idx + 1, won))]
        if tid == IDLE:
            return self.start_ids
        n = self.hold[tid]
        return [self.free_id[n]] if n else [tid]

    def first_tids(self) -> list[int]:
        """Every thread's state before its first operation."""
        if self.scenario is None:
            return [IDLE] * self.T
        return [self.intern(self.ops[IDLE], (k, 0, ())) for k in range(self.T)]

    def won(self, tids: Sequence[int]) -> list[int]:
        """The blocks the threads' racing double frees (``dfree``) released, once per success."""
        return [n for t in tids if self.ctx[t] for n in self.ctx[t][2]]

    # -- encoding ----------------------------------------------------------------------------

    def encode(self, words: Sequence[int], tids: Sequence[int], static: int) -> int:
        """Pack ``words`` (indexed by node, index 0 unused), thread op ids and the static set."""
        s = 0
        for n in range(1, self.nodes):
            s |= words[n] << self.shift(n)
        for k, t in enumerate(sorted(tids)):
            s |= t << (self.WB + TID_BITS * k)
        return s | static << self.SB

    def tids(self, s: int) -> list[int]:
        return [(s >> (self.WB + TID_BITS * k)) & TID_MASK for k in range(self.T)]

    def static(self, s: int) -> int:
        return s >> self.SB

    def words_of(self, s: int) -> tuple[int, ...]:
        """The word array indexed by node (index 0 unused)."""
        return (0, *((s >> self.shift(n)) & self.word_mask for n in range(1, self.nodes)))

    def initial(self) -> Iterator[int]:
        """Each initial state: the words a sequential run leaves for each live set."""
        for k, live in enumerate(self.sets):
            words = [0] * self.nodes
            for n in sorted(live):
                done, _ = self.m.run(self.m.attempt(n), words)
                if steps.result(done) != n:
                    raise AssertionError(f"[model checker internal bug] cannot build live set {sorted(live)}")
            yield self.encode(words, self.first_tids(), k)

    # -- steps -------------------------------------------------------------------------------

    def successors(self, s: int) -> list[tuple[int, bool]]:
        """Each successor state and whether its step completed an operation."""
        WB, T, mask = self.WB, self.T, self.word_mask
        words = s & ((1 << WB) - 1)
        static = s >> self.SB << self.SB
        tids = self.tids(s)
        out = []
        for k in range(T):
            tid = tids[k]
            if k and tid == tids[k - 1]:
                continue  # the same state as the previous thread: the same successors
            others = tids[:k] + tids[k + 1 :]
            for op in self.moves(tid):
                shift, _, rows = self.table(op)
                old = (words >> shift) & mask
                new, nxt, done = rows[old]
                w2 = words ^ ((old ^ new) << shift)
                rest = sorted([*others, nxt])
                packed = 0
                for j, t in enumerate(rest):
                    packed |= t << (TID_BITS * j)
                out.append((w2 | packed << WB | static, done))
        return out

    def step_thread(self, s: int, tids: list[int], k: int, op: int) -> tuple[int, list[int], steps.Event]:
        """Thread ``k`` (concrete identity) runs op ``op``'s next access: new state, new tids, the event."""
        shift, kind, rows = self.table(op)
        old = (s >> shift) & self.word_mask
        new, nxt, _ = rows[old]
        trial = [*tids[:k], nxt, *tids[k + 1 :]]
        words = self.words_of(s)
        w = list(words)
        node = shift // self.word_bits + 1
        w[node] = new
        return self.encode(w, trial, self.static(s)), trial, steps.Event(node, Kind(kind), old, new)


class CountRangeError(AssertionError):
    """A ``counted`` word's count left its range: a broken variant (or a bound too small)."""


def _overlapping(blocks: list[int]) -> tuple[int, int] | None:
    for i, a in enumerate(blocks):
        for b in blocks[i + 1 :]:
            if g.overlaps(a, b):
                return a, b
    return None


class Checker:
    """Breadth-first search with the property checks, then the cycle search for lock-freedom."""

    def __init__(self, cfg: Config, progress: Callable[[Result, int], None] | None = None) -> None:
        self.cfg = cfg
        self.sp = Space(cfg)
        self.progress = progress
        self.index: dict[int, int] = {}
        self.states: list[int] = []
        self.parent = array("q")
        self.edges = array("I")
        """Targets of the steps that complete no operation, state by state (for lock-freedom)."""
        self.offsets = array("Q", [0])
        self.result = Result(cfg)
        self._quiescent_cache: dict[tuple[int, frozenset[int]], str | None] = {}
        self._inflight = [0]

    # -- state properties ------------------------------------------------------------------------

    def check_state(self, s: int) -> list[tuple[str, str]]:
        """The properties (a), (b), (c) ``s`` breaks, each with a message."""
        sp, props = self.sp, self.cfg.properties
        tids = sp.tids(s)
        static = sp.static(s)
        out = []
        holding = [sp.hold[t] for t in tids if sp.hold[t]]
        won = sp.won(tids) if sp.scenario is not None else []
        if "a" in props or "c" in props:
            # Alloc takes effect at its last step, free at its first: the linearized state is
            # exactly the held blocks, so (a) is also (c)'s check at each alloc's
            # linearization point.
            bad = None
            clash = sp.static_overlap[static]
            for i, n in enumerate(holding):
                if clash >> n & 1:
                    bad = (next(b for b in sp.sets[static] if g.overlaps(b, n)), n)
                for m in holding[i + 1 :]:
                    if g.overlaps(n, m):
                        bad = (n, m)
            if bad:
                if "a" in props:
                    out.append(("a", f"held blocks {bad[0]} and {bad[1]} overlap"))
                if "c" in props:
                    out.append(
                        ("c", f"an alloc took {bad[1]} while {bad[0]} is live in the linearized state")
                    )
            elif "c" in props:
                # The words show the linearized state plus what is in flight: the candidates of
                # allocs between occupy and their rollback's release, and the blocks of frees
                # before their release.
                want = sp.static_occ[static]
                # A racing double free's block leaves the linearized state at its release.
                gone = set(won) | {sp.ops[t].n for t in tids if self.released(t)}
                for n in gone & sp.sets[static]:
                    want &= ~sp.occ_of[n]
                for t in tids:
                    n = sp.hold[t] or self.inflight(t)
                    if n:
                        want |= sp.occ_of[n]
                if s & sp.occ_mask != want:
                    occ = [n for n in range(1, sp.nodes) if s & sp.occ_of[n]]
                    ghost = sorted(sp.sets[static] - gone) + holding
                    flight = [self.inflight(t) for t in tids if self.inflight(t)]
                    out.append(
                        (
                            "c",
                            f"OCC words {occ} != linearized live blocks {sorted(ghost)}"
                            f" + blocks in flight {sorted(flight)}",
                        )
                    )
        if "b" in props and won:
            twice = sorted({n for n in won if won.count(n) > 1 or n not in sp.sets[static]})
            if twice:
                out.append(("b", f"block {twice[0]} was freed twice: two racing frees of it both succeeded"))
        if "b" in props and all(sp.idle[t] or sp.hold[t] for t in tids):
            self.result.quiescent += 1
            words = s & ((1 << sp.WB) - 1)
            if any(w & (bits.COAL_LEFT | bits.COAL_RIGHT) for w in sp.words_of(s)):
                self.result.stale_quiescent += 1
            held = (frozenset(sp.sets[static]) - frozenset(won)) | frozenset(holding)
            if sp.scenario is not None and not any(sp.moves(t) for t in tids):
                # Every thread has finished: each racing double free of a live block had a winner.
                doubly = {n for ops in sp.scenario for what, n in ops if what == "dfree"}
                kept = sorted((doubly & sp.sets[static]) - set(won))
                if kept:
                    out.append(("b", f"block {kept[0]} is still live: every racing free of it was refused"))
            key = (words, held)
            if key not in self._quiescent_cache:
                self._quiescent_cache[key] = self.quiescent_problem(s, held)
            msg = self._quiescent_cache[key]
            if msg:
                out.append(("b", msg))
        return out

    def released(self, t: int) -> bool:
        """Op ``t`` is a racing double free past its release (its unmark), not yet finished."""
        return (
            self.sp.dfree_op[t] and self.sp.ops[t].pc in _UNMARKING and not self.sp.m.transitions.release_last
        )

    def inflight(self, t: int) -> int:
        """The node op ``t`` has occupied without it being in the linearized state (0 if none)."""
        late = _UNMARKING if self.sp.m.transitions.release_last else frozenset()
        while len(self._inflight) <= t:
            op = self.sp.ops[len(self._inflight)]
            # A racing double free's block is the user's (static) until one of them wins it.
            flying = (op.pc in _OCCUPIED_IN_FLIGHT or op.pc in late) and not self.sp.dfree_op[
                len(self._inflight)
            ]
            self._inflight.append(op.n if flying else 0)
        return self._inflight[t]

    def quiescent_problem(self, s: int, held: frozenset[int]) -> str | None:
        """Why quiescent state ``s`` with ``held`` blocks breaks (b), or None."""
        sp, m = self.sp, self.sp.m
        base = list(sp.words_of(s))
        occ = {n for n in range(1, sp.nodes) if base[n] & bits.OCC}
        if occ != held:
            return f"quiescent OCC words {sorted(occ)} != held blocks {sorted(held)}"
        for n in sp.candidates:
            trial = list(base)
            done, _ = m.run(m.attempt(n), trial)
            free = spec.is_free(held, n)
            if free and steps.result(done) != n:
                return f"block {n} is free but a sequential alloc of it fails: lost"
            if not free and steps.result(done) is not None:
                return f"block {n} is not free but a sequential alloc of it succeeds"
            if not free and trial != base:
                return f"a failed sequential alloc of {n} does not restore the words"
        return None

    # -- search ---------------------------------------------------------------------------------------

    def run(self) -> Result:
        started = time.perf_counter()
        r, cfg, sp = self.result, self.cfg, self.sp
        index, states, parent = self.index, self.states, self.parent
        for s in sp.initial():
            if s not in index:
                index[s] = len(states)
                states.append(s)
                parent.append(-1)
        r.initial_states = len(states)
        want_cycles = "d" in cfg.properties
        edges, offsets = self.edges, self.offsets
        pending = set(cfg.properties) - {"d"}
        i = 0
        while i < len(states):
            s = states[i]
            for prop, msg in self.check_state(s):
                if prop in pending:
                    pending.discard(prop)
                    r.violations[prop] = self.counterexample(prop, msg, i)
            if r.violations and cfg.stop_at_first:
                r.complete = False
                break
            try:
                successors = sp.successors(s)
            except CountRangeError as e:
                # A broken variant pushed a count out of range on the next step: report it as a
                # corruption of the words ((b)) with the path here, and stop.
                if "b" not in r.violations:
                    r.violations["b"] = self.counterexample("b", f"the next step corrupts a word: {e}", i)
                r.complete = False
                break
            for child, done in successors:
                r.transitions += 1
                j = index.get(child)
                if j is None:
                    j = index[child] = len(states)
                    states.append(child)
                    parent.append(i)
                if want_cycles and not done:
                    edges.append(j)
            if want_cycles:
                offsets.append(len(edges))
            i += 1
            if self.progress and i % 50000 == 0:
                r.states, r.seconds = len(states), time.perf_counter() - started
                self.progress(r, len(states) - i)
            if cfg.max_states and len(states) >= cfg.max_states:
                r.complete = False
                break
            if cfg.seconds is not None and i % 512 == 0 and time.perf_counter() - started > cfg.seconds:
                r.complete = False
                break
        r.states = len(states)
        if want_cycles and r.complete:
            self.find_cycle()
        r.seconds = time.perf_counter() - started
        return r

    def find_cycle(self) -> None:
        """Depth-first search over the steps that complete no operation; a back edge is a livelock."""
        edges, offsets = self.edges, self.offsets
        color = bytearray(len(self.states))  # 0 new, 1 on the stack, 2 finished
        for root in range(len(self.states)):
            if color[root]:
                continue
            stack = [[root, offsets[root]]]
            color[root] = 1
            while stack:
                top = stack[-1]
                i, e = top
                if e == offsets[i + 1]:
                    color[i] = 2
                    stack.pop()
                    continue
                top[1] = e + 1
                nxt = edges[e]
                if color[nxt] == 1:
                    path = [j for j, _ in stack]
                    cycle = path[path.index(nxt) :]
                    self.result.violations["d"] = self.counterexample(
                        "d", f"a cycle of {len(cycle)} steps in which no operation completes", nxt, cycle
                    )
                    return
                if color[nxt] == 0:
                    color[nxt] = 1
                    stack.append([nxt, offsets[nxt]])

    # -- counterexamples ------------------------------------------------------------------------------

    def path_to(self, i: int) -> list[int]:
        path = []
        while i >= 0:
            path.append(i)
            i = self.parent[i]
        return path[::-1]

    def counterexample(self, prop: str, msg: str, at: int, cycle: list[int] | None = None) -> Violation:
        """The path to state ``at`` (then around ``cycle``), with concrete thread identities."""
        path = [self.states[i] for i in self.path_to(at)]
        if cycle:
            path += [self.states[i] for i in cycle[1:]] + [self.states[cycle[0]]]
        v = self.replay_path(prop, msg, path)
        if cycle:
            v.cycle_start = len(v.steps) - len(cycle)
        return v

    def replay_path(self, prop: str, msg: str, path: list[int]) -> Violation:
        """Replay a path of canonical states with concrete thread identities."""
        sp = self.sp
        start = path[0]
        v = Violation(
            prop, msg, sorted(sp.sets[sp.static(start)]), sp.words_of(start), [], transitions=sp.m.transitions
        )
        v.ops = [[] for _ in range(sp.T)]
        cur, tids = start, sp.first_tids()
        for target in path[1:]:
            found = None
            for k in range(sp.T):
                for op in sp.moves(tids[k]):
                    nxt_state, trial, ev = sp.step_thread(cur, tids, k, op)
                    if nxt_state == target:
                        found = (k, op, nxt_state, trial, ev)
                        break
                if found:
                    break
            if found is None:
                raise AssertionError("[model checker internal bug] cannot replay a counterexample step")
            k, op, cur, trial, ev = found
            started = None
            if sp.idle[tids[k]] or sp.hold[tids[k]]:
                started = self._describe_start(sp.ops[op])
                v.ops[k].append(self._op_record(sp.ops[op], sp.dfree_op[op]))
            before = steps.describe(sp.ops[op])
            tids = trial
            v.steps.append(Step(k, started, ev, before, self._describe_after(tids[k]), sp.words_of(cur)))
            v.schedule.append(k)
        return v

    def _describe_start(self, op: OpState) -> str:
        if op.pc == steps.A_LOAD:
            order = g.order_of(self.cfg.depth, op.n)
            if self.cfg.mode == "attempt":
                return f"alloc(order {order}) trying node {op.n}"
            return f"alloc(order {order}) scanning from node {op.n}"
        return f"free({op.n})"

    def _op_record(self, op: OpState, dfree: bool = False) -> dict[str, int | str]:
        if op.pc == steps.A_LOAD:
            return {"op": "alloc", "order": g.order_of(self.cfg.depth, op.n), "node": op.n}
        if dfree:
            return {"op": "dfree", "node": op.n}
        return {"op": "free", "node": op.n}

    def _describe_after(self, i: int) -> str:
        if self.sp.idle[i]:
            return "done (idle)"
        op = self.sp.ops[i]
        if op.pc == steps.DONE_OK:
            return f"done: holds {op.n}"
        return steps.describe(op)


def check(cfg: Config, progress: Callable[[Result, int], None] | None = None) -> Result:
    """Explore every state of ``cfg`` and check its properties."""
    return Checker(cfg, progress).run()


def render(v: Violation, depth: int) -> str:
    """A counterexample step by step: thread, access, words in binary."""
    from nbbs.model.tree import render as render_tree

    lines = [f"property ({v.prop}) {PROPERTY_NAMES[v.prop]} fails: {v.message}"]
    lines.append(f"initial live blocks: {v.initial_live or 'none'}")
    t = v.transitions
    lines.append(render_tree(v.initial_words, depth, t))
    for i, st in enumerate(v.steps):
        if v.cycle_start is not None and i == v.cycle_start:
            lines.append("--- the cycle starts here and repeats forever ---")
        ev = st.event
        if st.started:
            lines.append(f"thread {st.thread} starts {st.started}")
        change = (
            f"{t.show(ev.old)} -> {t.show(ev.new)}" if ev.old != ev.new else f"{t.show(ev.old)} (unchanged)"
        )
        lines.append(f"{i + 1:3}. thread {st.thread} [{st.before}] {ev.kind} node {ev.node}: {change}")
        lines.append(f"     now: {st.after}")
        lines.append(render_tree(st.words, depth, t))
    return "\n".join(lines)
