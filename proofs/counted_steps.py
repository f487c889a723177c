"""The step-level invariant of ``counted``: a hand-written inductive invariant, one z3 query per
(thread, program counter).

The system: ``threads`` threads on a tree of ``depth`` (``max_level`` 0 unless told), each
running ``steps.Machine`` in attempt mode forever (an alloc attempt at any node of level
``>= max_level``, then, if it got the block, a free of it), plus a ghost *static* set of live
blocks held by threads that never run (every initial allocation). The state in z3: every
word (``bits.counted(width)`` words), the static set (one Bool per node), and per thread an
op-state id (an index into every ``OpState`` the machine can reach, ``cur`` excluded) and its
``cur`` word. The step is the machine's own ``access`` / ``effect`` / ``branches`` on a
symbolic word, not a table.

**The invariant** ``Inv`` (ghost: the *held* set = the static blocks plus the node of each
thread at ``DONE_OK``; a thread's *claims* = the ancestors whose count its block currently
adds to, computed from its op state by ``claims``)::

    each node a: OCC(w[a])  iff  a is static, or some thread holds a or has occupied it and
                 not yet released it (``occupier``); at most one of those; then w[a] == BUSY
    a page:      w[a] in {0, BUSY}
    above max_level: w[a] == 0
    an inner node a at or below max_level, side s with child c:
                 no status bit unless BUSY, and
                 c_s(w[a]) == #static blocks under c (c included)
                              + #threads whose op's block lies under c and that claim a
    per thread:  its op state is one the machine reaches; at A_OCC cur == 0; at C_CAS
                 cur is no block; at a release (a CAS) cur == BUSY, the word occupy wrote,
                 so the occupier's release always succeeds; at any pc whose next access
                 uses no cur, cur == 0

A climb that has incremented the ancestors strictly below ``parent(child)`` claims those; a
free or rollback unmarking ``parent(child)`` still claims it and every ancestor above it up to
its ``top``; a free about to release, and a thread at ``DONE_OK``, claim the whole path up to
``max_level``; a rollback about to release claims the levels above the failed ancestor.

Obligations, per (depth, threads): ``csteps_initial`` (every quiescent tree satisfying
``COUNTED.node_ok`` with its blocks as the static set and every thread idle satisfies
``Inv``), ``csteps_T{k}@{pc}`` (a step of thread ``k`` at ``pc`` from any state satisfying
``Inv`` leads to one satisfying ``Inv``), ``csteps_safe`` (``Inv`` implies no two held blocks
overlap), ``csteps_quiescent`` (with no operation in flight, ``Inv`` holds iff the words
satisfy the quiescent invariant and their blocks are the held set).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from nbbs.model import bits, steps, tree
from nbbs.model import geometry as g
from nbbs.model.steps import Machine, OpState
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, Z, term, val

IDLE = OpState(steps.DONE_FAIL, 0)
"""A thread between operations (a failed alloc and a finished free end here)."""

_CLIMBING = (steps.C_LOAD, steps.C_CAS)
_UNMARKING = (steps.F_ULOAD, steps.F_UCAS, steps.R_ULOAD, steps.R_UCAS)
_HAS_CUR = (steps.A_OCC, steps.C_CAS, steps.F_UCAS, steps.R_UCAS, steps.F_RELEASE, steps.R_RELEASE)
_RELEASING = (steps.F_RELEASE, steps.R_RELEASE)


def width_for(depth: int, threads: int) -> int:
    """The count width of the step-level proof: a side of the root counts at most one static
    block per node below it (``2**depth - 1``; the invariant itself then shows they are
    disjoint) plus one claim per thread, so no count can wrap by counting alone."""
    return ((1 << depth) - 1 + threads).bit_length()


def occupier(op: OpState) -> int:
    """The node ``op``'s thread holds or has occupied and not yet released (0: none)."""
    if op.pc in (steps.DONE_OK, *_CLIMBING, steps.F_RELEASE, steps.R_RELEASE):
        return op.n
    return 0


def claims(op: OpState, max_level: int) -> frozenset[int]:
    """The ancestors of ``op.n`` whose count (on ``op.n``'s side) includes ``op``'s claim."""
    pc, n = op.pc, op.n
    if pc in (steps.DONE_OK, steps.F_RELEASE):
        lo, hi = max_level, g.level(n) - 1
    elif pc in _CLIMBING:
        lo, hi = g.level(op.child), g.level(n) - 1
    elif pc == steps.R_RELEASE:
        lo, hi = op.top, g.level(n) - 1
    elif pc in _UNMARKING:
        lo, hi = op.top, g.level(op.child) - 1
    else:
        return frozenset()
    return frozenset(a for a in g.ancestors(n) if lo <= g.level(a) <= hi)


def _normal(op: OpState) -> OpState:
    """The op state without its ``cur`` (a separate variable), finished ops made idle."""
    if op.pc in (steps.DONE_FAIL, steps.DONE_FREE):
        return IDLE
    return op._replace(cur=0)


@dataclass(eq=False)
class System:
    """The encoding of one configuration: machine, op states, and the z3 state variables."""

    depth: int
    threads: int
    max_level: int
    t: bits.Transitions
    m: Machine
    ops: list[OpState]
    ids: dict[OpState, int]

    @property
    def nodes(self) -> range:
        return g.all_nodes(self.depth)

    @property
    def candidates(self) -> list[int]:
        return [n for n in self.nodes if g.level(n) >= self.max_level]

    def starts(self, op: OpState) -> list[OpState]:
        """What a thread between operations starts next (no shared access)."""
        if op == IDLE:
            return [self.m.attempt(n) for n in self.candidates]
        return [self.m.free(op.n)]


def system(v: Variant, depth: int, threads: int, max_level: int = 0) -> System:
    """Every op state the machine reaches from an idle thread, by exploring ``branches`` on a
    symbolic word (the guards are not solved: an unreachable branch only adds states)."""
    t = v.at(width_for(depth, threads))
    m = Machine(depth, max_level, t)
    cur = z3.BitVec("cur", t.word_bits)
    old = z3.BitVec("old", t.word_bits)
    ops: list[OpState] = [IDLE]
    ids = {IDLE: 0}
    todo = [IDLE]
    sysm = System(depth, threads, max_level, t, m, ops, ids)
    while todo:
        op = todo.pop()
        if steps.is_done(op):
            nxt = sysm.starts(op)
        else:
            nxt = [b for _, b in m.branches(op._replace(cur=cur), old, Z)]
        for b in map(_normal, nxt):
            if b not in ids:
                ids[b] = len(ops)
                ops.append(b)
                todo.append(b)
    return sysm


class State:
    """One symbolic global state: words, static set, per-thread op id and ``cur``."""

    def __init__(self, s: System, tag: str) -> None:
        self.s = s
        self.id_bits = max(1, (len(s.ops) - 1).bit_length())
        self.w: list[Any] = [None] + [z3.BitVec(f"{tag}w{x}", s.t.word_bits) for x in s.nodes]
        self.static: list[Any] = [None] + [z3.Bool(f"static{x}") for x in s.nodes]
        self.op = [z3.BitVec(f"{tag}op{i}", self.id_bits) for i in range(s.threads)]
        self.cur = [z3.BitVec(f"{tag}cur{i}", s.t.word_bits) for i in range(s.threads)]

    def at(self, i: int, op: OpState) -> Any:
        """Thread ``i`` is in op state ``op``."""
        return self.op[i] == self.s.ids[op]

    def among(self, i: int, ops: list[OpState]) -> Any:
        return z3.Or([self.at(i, o) for o in ops]) if ops else z3.BoolVal(False)


def _field(w: Any, s: int, width: int) -> Any:
    lo = bits.COUNT_SHIFT + s * width
    return z3.Extract(lo + width - 1, lo, w)


@functools.cache
def _tables(s: System) -> tuple[dict[int, list[OpState]], dict[tuple[int, int], list[OpState]]]:
    """Which op states occupy each node, and which claim each (node, side)."""
    occ: dict[int, list[OpState]] = {x: [] for x in s.nodes}
    through: dict[tuple[int, int], list[OpState]] = {}
    for op in s.ops:
        o = occupier(op)
        if o:
            occ[o].append(op)
        for a in claims(op, s.max_level):
            side = g.side(g.ancestor_at(op.n, g.level(a) + 1))
            through.setdefault((a, side), []).append(op)
    return occ, through


def cur_facts(st: State, i: int, has_cur: tuple[int, ...]) -> list[tuple[str, Any]]:
    """Thread ``i``'s ``cur`` where it holds no loaded word: at a release (a CAS since
    ``release_cas``) the word its own occupy wrote, elsewhere outside ``has_cur`` zero. Shared by
    every invariant over this system (``topdown_steps`` too)."""
    s = st.s
    releasing = [o for o in s.ops if o.pc in _RELEASING]
    no_cur = [o for o in s.ops if o.pc not in has_cur]
    return [
        (
            f"thread {i}: at release, cur == BUSY",
            z3.Implies(st.among(i, releasing), st.cur[i] == s.t.occupy(0)),
        ),
        (f"thread {i}: cur == 0 where unused", z3.Implies(st.among(i, no_cur), st.cur[i] == 0)),
    ]


def word_shape(st: State, a: int, occ: dict[int, list[OpState]]) -> tuple[list[tuple[str, Any]], bool]:
    """Node ``a``'s word as a block or not: zero above ``max_level``; OCC iff it is held (static
    or by a thread, ``occ[a]``: the op states occupying it), by one at most; a page is 0 or BUSY,
    an inner node BUSY or without status bits. The second value: whether its counts remain to
    be said (an inner node at or below ``max_level``)."""
    s = st.s
    lvl, w = g.level(a), st.w[a]
    if lvl < s.max_level:
        return [(f"node {a}: zero above max_level, not static", z3.And(w == 0, z3.Not(st.static[a])))], False
    holders = [st.static[a]] + [st.among(i, occ[a]) for i in range(s.threads)]
    occupied = w & bits.OCC != 0
    out = [
        (f"node {a}: OCC iff held or occupied", occupied == z3.Or(holders)),
        (f"node {a}: held or occupied by one at most", z3.AtMost(*holders, 1)),
    ]
    if lvl == s.depth:
        return [*out, (f"node {a}: a page is 0 or BUSY", tree.leaf_ok(w, Z))], False
    busy = z3.If(occupied, w == bits.BUSY, w & ((1 << bits.COUNT_SHIFT) - 1) == 0)
    return [*out, (f"node {a}: BUSY or no status bit", busy)], True


def invariant(st: State) -> list[tuple[str, Any]]:
    """``Inv`` of state ``st`` as named conjuncts."""
    s = st.s
    t = s.t
    width = t.count_bits
    wide = width + 2
    occ, through = _tables(s)
    out: list[tuple[str, Any]] = []
    for i in range(s.threads):
        out.append((f"thread {i}: a reachable op state", z3.ULT(st.op[i], len(s.ops))))
        at_occ = [o for o in s.ops if o.pc == steps.A_OCC]
        at_cas = [o for o in s.ops if o.pc == steps.C_CAS]
        out.append((f"thread {i}: at occupy, cur == 0", z3.Implies(st.among(i, at_occ), st.cur[i] == 0)))
        out.append(
            (
                f"thread {i}: at climb-cas, cur is no block",
                z3.Implies(st.among(i, at_cas), st.cur[i] & bits.OCC == 0),
            )
        )
        out += cur_facts(st, i, _HAS_CUR)
    for a in s.nodes:
        w = st.w[a]
        shape, more = word_shape(st, a, occ)
        out += shape
        if not more:
            continue
        for side, c in ((1, g.left(a)), (0, g.right(a))):
            below = [b for b in s.nodes if g.is_ancestor(c, b) and g.level(b) >= s.max_level]
            terms = [z3.If(st.static[b], z3.BitVecVal(1, wide), z3.BitVecVal(0, wide)) for b in below]
            mine = through.get((a, side), [])
            terms += [
                z3.If(st.among(i, mine), z3.BitVecVal(1, wide), z3.BitVecVal(0, wide))
                for i in range(s.threads)
            ]
            total = functools.reduce(lambda x, y: x + y, terms, z3.BitVecVal(0, wide))
            name = "c_L" if side else "c_R"
            out.append(
                (
                    f"node {a}: {name} = static blocks under {c} + claims through it",
                    z3.ZeroExt(2, _field(w, side, width)) == total,
                )
            )
    return out


Invariant = Callable[[State], list[tuple[str, Any]]]
"""A step-level invariant as named conjuncts (``invariant`` here; ``topdown_steps`` has its own)."""


def _inv(st: State, inv: Invariant | None = None) -> Any:
    return z3.And([c for _, c in (inv or invariant)(st)])


def _held(st: State) -> list[tuple[int, Any]]:
    """(node, "it is held") for each node: static, or a thread at ``DONE_OK`` holds it."""
    s = st.s
    out = []
    for x in s.candidates:
        done = [o for o in s.ops if o.pc == steps.DONE_OK and o.n == x]
        out.append((x, z3.Or(st.static[x], *[st.among(i, done) for i in range(s.threads)])))
    return out


def _show_state(st: State, m: z3.ModelRef, title: str) -> list[str]:
    s = st.s
    words = [0] + [val(m, st.w[x]) for x in s.nodes]
    lines = [f"  {title}:", tree.render(words, s.depth, s.t)]
    static = [x for x in s.nodes if z3.is_true(m.eval(st.static[x], model_completion=True))]
    lines.append(f"    static blocks {static}")
    for i in range(s.threads):
        k = val(m, st.op[i])
        op = s.ops[k] if k < len(s.ops) else None
        desc = "(no op state)" if op is None else steps.describe(op._replace(cur=val(m, st.cur[i])))
        lines.append(f"    thread {i}: {desc}  cur={s.t.show(val(m, st.cur[i]))}")
    return lines


def _explain_one(st: State) -> Callable[[z3.ModelRef], str]:
    def explain(m: z3.ModelRef) -> str:
        return "\n".join(_show_state(st, m, "state"))

    return explain


def _step(s: System, pre: State, post: State, k: int, pc: int) -> tuple[Any, list[tuple[str, Any]]]:
    """The transition of thread ``k`` at ``pc``: a formula over ``pre`` and ``post``, and the cases."""
    options = []
    cases = []
    for op in s.ops:
        if op.pc != pc:
            continue
        here = pre.at(k, op)
        if steps.is_done(op):
            for start in s.starts(op):
                # A free starts with cur = the word its release will expect.
                nxt = _normal(start)
                options.append(
                    z3.And(
                        here,
                        post.op[k] == s.ids[nxt],
                        post.cur[k] == start.cur,
                        *[post.w[x] == pre.w[x] for x in s.nodes],
                    )
                )
            cases.append((f"thread {k} at {steps.describe(op)}", here))
            continue
        me = op._replace(cur=pre.cur[k])
        acc = s.m.access(me)
        assert acc is not None
        old = pre.w[acc.node]
        new = steps.effect(acc, old, z3.If)
        if not z3.is_expr(new):
            new = z3.BitVecVal(new, s.t.word_bits)
        frame = [post.w[x] == pre.w[x] for x in s.nodes if x != acc.node]
        for guard, nxt in s.m.branches(me, old, Z):
            nc = nxt.cur if z3.is_expr(nxt.cur) else z3.BitVecVal(nxt.cur, s.t.word_bits)
            options.append(
                z3.And(
                    here,
                    term(guard),
                    post.op[k] == s.ids[_normal(nxt)],
                    post.cur[k] == nc,
                    post.w[acc.node] == new,
                    *frame,
                )
            )
        cases.append((f"thread {k} at {steps.describe(op)}", here))
    others = [z3.And(post.op[j] == pre.op[j], post.cur[j] == pre.cur[j]) for j in range(s.threads) if j != k]
    return z3.And(z3.Or(options), *others), cases[:1]


def _step_query(
    v: Variant, depth: int, threads: int, k: int, pc: int, max_level: int, inv: Invariant | None = None
) -> Query:
    inv = inv or invariant
    s = _system(v, depth, threads, max_level)
    pre, post = State(s, ""), State(s, "post_")
    post.static = pre.static
    move, cases = _step(s, pre, post, k, pc)

    def explain(m: z3.ModelRef) -> str:
        lines = _show_state(pre, m, f"before (Inv holds), thread {k} steps at {steps.PC_NAMES[pc]}")
        lines += _show_state(post, m, "after")
        broken = [name for name, c in inv(post) if z3.is_false(m.eval(c, model_completion=True))]
        lines.append("  Inv broken after the step at: " + "; ".join(broken))
        return "\n".join(lines)

    return Query([_inv(pre, inv), move], inv(post), explain, (), cases)


@functools.lru_cache(maxsize=64)
def _system(v: Variant, depth: int, threads: int, max_level: int) -> System:
    return system(v, depth, threads, max_level)


def _initial(v: Variant, depth: int, threads: int, max_level: int, inv: Invariant | None = None) -> Query:
    inv = inv or invariant
    s = _system(v, depth, threads, max_level)
    st = State(s, "")
    assert s.t.node_ok is not None
    prem: list[Any] = [st.at(i, IDLE) for i in range(threads)] + [st.cur[i] == 0 for i in range(threads)]
    prem += _quiescent(st)
    prem += [(st.w[x] & bits.OCC != 0) == st.static[x] for x in s.candidates]
    prem += _no_static_above(st)
    return Query(prem, inv(st), _explain_one(st), [*(st.w[x] == 0 for x in s.nodes)])


def _no_static_above(st: State) -> list[Any]:
    """The static blocks are blocks (of level ``>= max_level``)."""
    return [z3.Not(st.static[x]) for x in st.s.nodes if g.level(x) < st.s.max_level]


def _quiescent(st: State) -> list[Any]:
    """The counted quiescent invariant of the words, with the blocks (OCC words) as the held set."""
    s = st.s
    assert s.t.node_ok is not None
    out = []
    for x in s.nodes:
        lvl = g.level(x)
        w = st.w[x]
        if lvl < s.max_level:
            out.append(w == 0)
        elif lvl == s.depth:
            out.append(tree.leaf_ok(w, Z))
        else:
            out.append(s.t.node_ok(w, st.w[g.left(x)], st.w[g.right(x)], Z))
    return out


def _safe(v: Variant, depth: int, threads: int, max_level: int, inv: Invariant | None = None) -> Query:
    s = _system(v, depth, threads, max_level)
    st = State(s, "")
    held = _held(st)
    apart = [
        z3.Not(z3.And(hx, hy))
        for i, (x, hx) in enumerate(held)
        for y, hy in held[i + 1 :]
        if g.overlaps(x, y)
    ]
    return Query([_inv(st, inv)], [("no two held blocks overlap", z3.And(apart or [True]))], _explain_one(st))


def _quiescent_exact(
    v: Variant, depth: int, threads: int, max_level: int, inv: Invariant | None = None
) -> Query:
    s = _system(v, depth, threads, max_level)
    st = State(s, "")
    resting = [o for o in s.ops if o.pc in (steps.DONE_OK, steps.DONE_FAIL)]
    prem = [st.among(i, resting) for i in range(threads)] + [st.cur[i] == 0 for i in range(threads)]
    prem += _no_static_above(st)
    held = dict(_held(st))
    blocks_are_held = z3.And([(st.w[x] & bits.OCC != 0) == h for x, h in held.items()])
    once = z3.And(
        [
            z3.AtMost(st.static[x], *[st.among(i, done) for i in range(threads)], 1)
            for x, done in (
                (x, [o for o in s.ops if o.pc == steps.DONE_OK and o.n == x]) for x in s.candidates
            )
        ]
    )
    return Query(
        prem,
        [
            ("Inv implies the quiescent invariant", z3.Implies(_inv(st, inv), z3.And(_quiescent(st)))),
            ("Inv implies the blocks are the held set", z3.Implies(_inv(st, inv), blocks_are_held)),
            (
                "the quiescent invariant with the blocks as held set (each held once) implies Inv",
                z3.Implies(z3.And(*_quiescent(st), blocks_are_held, once), _inv(st, inv)),
            ),
        ],
        _explain_one(st),
    )


def pcs(v: Variant, depth: int, threads: int, max_level: int = 0) -> list[int]:
    """The program counters a thread can be at (each gets one query per thread)."""
    return sorted({o.pc for o in _system(v, depth, threads, max_level).ops})


def obligations(
    depth: int,
    threads: int,
    max_level: int = 0,
    *,
    inv: Invariant | None = None,
    prefix: str = "csteps",
    subject: Variant | None = None,
    symmetric: bool = False,
) -> list[Obligation]:
    """The step-level obligations of ``counted`` for ``threads`` threads on a tree of ``depth``.

    ``inv``, ``prefix`` and ``subject`` (whose program counters get a query each) prove
    another counted-word variant with its own invariant instead (``topdown_steps``).
    ``symmetric``: only thread 0's per-pc queries (the other threads' follow from them by
    ``counted_sym``'s obligations, which the caller adds).
    """
    suffix = f"_T{threads}" + (f"_ml{max_level}" if max_level else "")

    def by(f: Callable[..., Query], *args: int) -> Callable[[Variant], Query]:
        return lambda v: f(v, *args, inv)

    out = [
        Obligation(
            f"{prefix}_initial{suffix}",
            "steps",
            depth,
            f"{threads} threads: every quiescent tree with idle threads satisfies Inv",
            by(_initial, depth, threads, max_level),
        )
    ]
    from nbbs.proofs._variant import COUNTED

    for k in range(1 if symmetric else threads):
        for pc in pcs(subject or COUNTED, depth, threads, max_level):
            out.append(
                Obligation(
                    f"{prefix}{suffix}_t{k}@{steps.PC_NAMES[pc]}",
                    "steps",
                    depth,
                    f"{threads} threads: a step of thread {k} at {steps.PC_NAMES[pc]} preserves Inv",
                    by(_step_query, depth, threads, k, pc, max_level),
                )
            )
    out.append(
        Obligation(
            f"{prefix}_safe{suffix}",
            "steps",
            depth,
            f"{threads} threads: Inv implies no two held blocks overlap",
            by(_safe, depth, threads, max_level),
        )
    )
    out.append(
        Obligation(
            f"{prefix}_quiescent{suffix}",
            "steps",
            depth,
            f"{threads} threads, none in flight: Inv iff the quiescent invariant with the blocks held",
            by(_quiescent_exact, depth, threads, max_level),
        )
    )
    return out
