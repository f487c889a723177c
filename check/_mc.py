"""The explicit-state model checker's machinery: state encoding, successors, BFS, cycle search.

A global state is a ``bytes``:

    [ word of node 1, ..., word of node N-1 ]   one byte per node
    [ thread 0's op id, ..., thread T-1's ]      two bytes each, sorted (thread symmetry)
    [ static set index ]                         two bytes: which initial live set

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from nbbs.model import bits, spec, steps
from nbbs.model import geometry as g
from nbbs.model.steps import Kind, Machine, OpState

IDLE = 0
_OCCUPIED_IN_FLIGHT = frozenset(
    {steps.C_LOAD, steps.C_CAS, steps.R_MARK, steps.R_RELEASE, steps.R_PLOAD, steps.R_PCAS}
    | {steps.F_MARK, steps.F_RELEASE}
)
"""Program counters at which an op's node ``n`` is occupied although not in the linearized state."""
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
    max_states: int | None = None

    @property
    def top_order(self) -> int:
        return self.depth if self.max_order is None else self.max_order

    @property
    def max_level(self) -> int:
        return self.depth - self.top_order

    def machine(self) -> Machine:
        t = self.transitions if self.transitions is not None else bits.VARIANTS[self.variant]
        return Machine(self.depth, self.max_level, t, self.gives_up)

    def describe(self) -> str:
        name = "mutant" if self.transitions is not None else self.variant
        if not self.gives_up:
            name += "+scan-forever"
        return (
            f"{self.threads} threads, depth {self.depth}, max_order {self.top_order}, variant {name}, "
            f"{self.mode} mode, initial {self.initial}"
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


class Space:
    """The interned op states and the successor function of one configuration."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.m = cfg.machine()
        self.nodes = g.node_count(cfg.depth)
        self.W = self.nodes - 1
        self.T = cfg.threads
        self.ops: list[OpState] = [OpState(steps.DONE_FAIL, 0)]
        self.ids: dict[OpState, int] = {self.ops[0]: IDLE}
        self.acc: list[tuple[int, int, int, int] | None] = [None]
        self._after: dict[int, int] = {}
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
        self.free_id = {n: self.intern(self.m.free(n)) for n in self.candidates}
        self.hold_id = {n: self.intern(OpState(steps.DONE_OK, n)) for n in self.candidates}
        self.sets = live_sets(cfg.depth, cfg.max_level) if cfg.initial == "all" else [frozenset()]

    # -- op states ------------------------------------------------------------------------------

    def intern(self, op: OpState) -> int:
        if op.pc in (steps.DONE_FAIL, steps.DONE_FREE):
            return IDLE
        i = self.ids.get(op)
        if i is None:
            i = len(self.ops)
            self.ids[op] = i
            self.ops.append(op)
            a = self.m.access(op)
            self.acc.append(None if a is None else (a.node, int(a.kind), a.a, a.b))
        return i

    def after(self, i: int, old: int) -> int:
        key = i << 5 | old
        j = self._after.get(key)
        if j is None:
            j = self._after[key] = self.intern(self.m.after(self.ops[i], old))
        return j

    def is_hold(self, i: int) -> bool:
        return self.ops[i].pc == steps.DONE_OK

    # -- encoding --------------------------------------------------------------------------------

    def encode(self, words: list[int] | bytes | bytearray, tids: list[int], static: int) -> bytes:
        out = bytearray(words)
        for t in sorted(tids):
            out += t.to_bytes(2, "big")
        out += static.to_bytes(2, "big")
        return bytes(out)

    def decode(self, s: bytes) -> tuple[bytes, list[int], int]:
        W, T = self.W, self.T
        tids = [int.from_bytes(s[W + 2 * k : W + 2 * k + 2], "big") for k in range(T)]
        return s[:W], tids, int.from_bytes(s[W + 2 * T :], "big")

    def words_of(self, s: bytes) -> tuple[int, ...]:
        """The word array indexed by node (index 0 unused)."""
        return (0, *s[: self.W])

    def initial(self) -> Iterator[tuple[bytes, int]]:
        """Each initial state: the words a sequential run leaves for each live set."""
        for k, live in enumerate(self.sets):
            words = [0] * self.nodes
            for n in sorted(live):
                done, _ = self.m.run(self.m.attempt(n), words)
                if steps.result(done) != n:
                    raise AssertionError(f"[model checker internal bug] cannot build live set {sorted(live)}")
            yield self.encode(words[1:], [IDLE] * self.T, k), k

    # -- moves -----------------------------------------------------------------------------------

    def moves(self, tid: int) -> list[int]:
        """The op ids a thread in state ``tid`` may be running when it takes its next step."""
        if tid == IDLE:
            return self.start_ids
        if self.is_hold(tid):
            return [self.free_id[self.ops[tid].n]]
        return [tid]

    def fire(self, words: bytes, op: int) -> tuple[int, int, int, int]:
        """Run op ``op``'s next access: (node, old, new, next op id)."""
        acc = self.acc[op]
        assert acc is not None
        node, kind, a, b = acc
        old = words[node - 1]
        if kind == Kind.LOAD:
            new = old
        elif kind == Kind.CAS:
            new = b if old == a else old
        elif kind == Kind.FETCH_OR:
            new = old | a
        elif kind == Kind.FETCH_AND:
            new = old & a
        else:
            new = a
        return node, old, new, self.after(op, old)

    def successors(self, s: bytes) -> Iterator[tuple[bytes, bool]]:
        """Each successor state and whether its step completed an operation."""
        W = self.W
        words = s[:W]
        tids_b = s[W : W + 2 * self.T]
        tail = s[W + 2 * self.T :]
        seen = set()
        for k in range(self.T):
            tb = tids_b[2 * k : 2 * k + 2]
            if tb in seen:
                continue
            seen.add(tb)
            tid = int.from_bytes(tb, "big")
            for op in self.moves(tid):
                node, _old, new, nxt = self.fire(words, op)
                done = nxt == IDLE or self.is_hold(nxt)
                others = [int.from_bytes(tids_b[2 * j : 2 * j + 2], "big") for j in range(self.T) if j != k]
                ws = bytearray(words)
                ws[node - 1] = new
                for t in sorted([*others, nxt]):
                    ws += t.to_bytes(2, "big")
                ws += tail
                yield bytes(ws), done


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
        self.index: dict[bytes, int] = {}
        self.states: list[bytes] = []
        self.parent = array("q")
        self.result = Result(cfg)
        self._quiescent_cache: dict[bytes, str | None] = {}

    # -- state properties ------------------------------------------------------------------------

    def check_state(self, s: bytes) -> list[tuple[str, str]]:
        """The properties (a), (b), (c) ``s`` breaks, each with a message."""
        sp, props = self.sp, self.cfg.properties
        words, tids, static = sp.decode(s)
        ops = [sp.ops[t] for t in tids]
        static_set = sp.sets[static]
        out = []
        holding = [op.n for op in ops if op.pc == steps.DONE_OK]
        if "a" in props:
            pair = _overlapping(sorted(static_set) + holding)
            if pair:
                out.append(("a", f"held blocks {pair[0]} and {pair[1]} overlap"))
        if "c" in props:
            # Alloc takes effect at its last step, free at its first: the linearized state is
            # exactly the held blocks. The words must show it, plus what is in flight: the
            # candidates of allocs between occupy and their rollback's release, and the
            # blocks of frees before their release.
            ghost = sorted(static_set) + holding
            pair = _overlapping(ghost)
            if pair:
                out.append(("c", f"an alloc took {pair[1]} while {pair[0]} is live in the linearized state"))
            else:
                inflight = [op.n for op in ops if op.pc in _OCCUPIED_IN_FLIGHT]
                occ = {n for n in range(1, sp.nodes) if words[n - 1] & bits.OCC}
                if occ != set(ghost) | set(inflight):
                    out.append(
                        (
                            "c",
                            f"OCC words {sorted(occ)} != linearized live blocks {sorted(ghost)}"
                            f" + blocks in flight {sorted(inflight)}",
                        )
                    )
        if "b" in props and all(t == IDLE or sp.is_hold(t) for t in tids):
            self.result.quiescent += 1
            if any(w & (bits.COAL_LEFT | bits.COAL_RIGHT) for w in words):
                self.result.stale_quiescent += 1
            key = words + static.to_bytes(2, "big") + bytes(sorted(holding))
            msg = self._quiescent_cache.get(key, "")
            if msg == "":
                msg = self._quiescent_cache[key] = self.quiescent_problem(
                    words, set(static_set) | set(holding)
                )
            if msg:
                out.append(("b", msg))
        return out

    def quiescent_problem(self, words: bytes, held: set[int]) -> str | None:
        """Why quiescent ``words`` with ``held`` blocks break (b), or None."""
        sp, m = self.sp, self.sp.m
        occ = {n for n in range(1, sp.nodes) if words[n - 1] & bits.OCC}
        if occ != held:
            return f"quiescent OCC words {sorted(occ)} != held blocks {sorted(held)}"
        base = list(sp.words_of(words))
        for n in sp.candidates:
            trial = list(base)
            done, _ = m.run(m.attempt(n), trial)
            free = spec.is_free(frozenset(held), n)
            if free and steps.result(done) != n:
                return f"block {n} is free but a sequential alloc of it fails: lost"
            if not free and steps.result(done) is not None:
                return f"block {n} is not free but a sequential alloc of it succeeds"
            if not free and trial != base:
                return f"a failed sequential alloc of {n} does not restore the words"
        return None

    # -- search ---------------------------------------------------------------------------------------

    def add(self, s: bytes, parent: int) -> bool:
        if s in self.index:
            return False
        self.index[s] = len(self.states)
        self.states.append(s)
        self.parent.append(parent)
        return True

    def run(self) -> Result:
        started = time.perf_counter()
        r, cfg, sp = self.result, self.cfg, self.sp
        for s, _ in sp.initial():
            self.add(s, -1)
        r.initial_states = len(self.states)
        frontier = 0
        pending = set(cfg.properties) - {"d"}
        while frontier < len(self.states):
            s = self.states[frontier]
            for prop, msg in self.check_state(s):
                if prop in pending:
                    pending.discard(prop)
                    r.violations[prop] = self.counterexample(prop, msg, frontier)
            for child, _done in sp.successors(s):
                r.transitions += 1
                self.add(child, frontier)
            frontier += 1
            if self.progress and frontier % 20000 == 0:
                r.states, r.seconds = len(self.states), time.perf_counter() - started
                self.progress(r, len(self.states) - frontier)
            if cfg.max_states and len(self.states) >= cfg.max_states:
                r.complete = False
                break
        r.states = len(self.states)
        if "d" in cfg.properties and r.complete:
            self.find_cycle()
        r.seconds = time.perf_counter() - started
        return r

    def find_cycle(self) -> None:
        """Depth-first search over the steps that complete no operation; a back edge is a livelock."""
        color = bytearray(len(self.states))  # 0 new, 1 on the stack, 2 finished
        for root in range(len(self.states)):
            if color[root]:
                continue
            stack = [(root, self._quiet(root))]
            color[root] = 1
            while stack:
                i, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    color[i] = 2
                    stack.pop()
                    continue
                if color[nxt] == 1:
                    path = [j for j, _ in stack]
                    cycle = path[path.index(nxt) :]
                    self.result.violations["d"] = self.counterexample(
                        "d", f"a cycle of {len(cycle)} steps in which no operation completes", nxt, cycle
                    )
                    return
                if color[nxt] == 0:
                    color[nxt] = 1
                    stack.append((nxt, self._quiet(nxt)))

    def _quiet(self, i: int) -> Iterator[int]:
        for child, done in self.sp.successors(self.states[i]):
            if not done:
                yield self.index[child]

    # -- counterexamples ------------------------------------------------------------------------------

    def path_to(self, i: int) -> list[int]:
        path = []
        while i >= 0:
            path.append(i)
            i = self.parent[i]
        return path[::-1]

    def counterexample(self, prop: str, msg: str, at: int, cycle: list[int] | None = None) -> Violation:
        """Replay the canonical path with concrete thread identities."""
        sp = self.sp
        path = [self.states[i] for i in self.path_to(at)]
        if cycle:
            path += [self.states[i] for i in cycle[1:]] + [self.states[cycle[0]]]
        words, _, static = sp.decode(path[0])
        v = Violation(prop, msg, sorted(sp.sets[static]), sp.words_of(path[0]), [])
        v.ops = [[] for _ in range(sp.T)]
        cur_words, tids = bytes(words), [IDLE] * sp.T
        for target in path[1:]:
            found = False
            for k in range(sp.T):
                for op in sp.moves(tids[k]):
                    node, old, new, nxt = sp.fire(cur_words, op)
                    ws = bytearray(cur_words)
                    ws[node - 1] = new
                    trial = [*tids[:k], nxt, *tids[k + 1 :]]
                    if sp.encode(ws, trial, static) != target:
                        continue
                    started = None
                    if tids[k] == IDLE or sp.is_hold(tids[k]):
                        started = self._describe_start(sp.ops[op])
                        v.ops[k].append(self._op_record(sp.ops[op]))
                    acc = sp.acc[op]
                    assert acc is not None
                    ev = steps.Event(node, Kind(acc[1]), old, new)
                    after = sp.ops[nxt]
                    v.steps.append(
                        Step(k, started, ev, steps.describe(sp.ops[op]), self._describe_after(after, nxt), ())
                    )
                    cur_words, tids = bytes(ws), trial
                    v.steps[-1].words = sp.words_of(cur_words)
                    v.schedule.append(k)
                    found = True
                    break
                if found:
                    break
            if not found:
                raise AssertionError("[model checker internal bug] cannot replay a counterexample step")
        if cycle:
            v.cycle_start = len(v.steps) - len(cycle)
        return v

    def _describe_start(self, op: OpState) -> str:
        if op.pc == steps.A_LOAD:
            order = g.order_of(self.cfg.depth, op.n)
            if self.cfg.mode == "attempt":
                return f"alloc(order {order}) trying node {op.n}"
            return f"alloc(order {order}) scanning from node {op.n}"
        return f"free({op.n})"

    def _op_record(self, op: OpState) -> dict[str, int | str]:
        if op.pc == steps.A_LOAD:
            return {"op": "alloc", "order": g.order_of(self.cfg.depth, op.n), "node": op.n}
        return {"op": "free", "node": op.n}

    def _describe_after(self, op: OpState, i: int) -> str:
        if i == IDLE:
            return "done (idle)"
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
    lines.append(render_tree(v.initial_words, depth))
    for i, st in enumerate(v.steps):
        if v.cycle_start is not None and i == v.cycle_start:
            lines.append("--- the cycle starts here and repeats forever ---")
        ev = st.event
        if st.started:
            lines.append(f"thread {st.thread} starts {st.started}")
        change = (
            f"{bits.show(ev.old)} -> {bits.show(ev.new)}"
            if ev.old != ev.new
            else f"{bits.show(ev.old)} (unchanged)"
        )
        lines.append(f"{i + 1:3}. thread {st.thread} [{st.before}] {ev.kind} node {ev.node}: {change}")
        lines.append(f"     now: {st.after}")
        lines.append(render_tree(st.words, depth))
    return "\n".join(lines)
