"""The finite model SPIN checks, extracted from the step machines, and its Promela text.

Nothing here restates the algorithm. ``extract`` asks ``_mc.Space`` (the model checker's own
interning of ``steps.Machine`` op states, so the same ``after``/``effect`` and the same bundle)
for every op state a thread can reach and, per node, every word value the accesses to it can
produce from the initial words (a closure: a superset of what a run reaches); it tabulates
each access on each such word. ``promela`` writes those tables as C arrays, in a header the
compiler includes (outside SPIN's state vector), and a table-driven process per thread:

* the state vector is exactly the model checker's state with the thread symmetry undone:
  ``stat`` (which initial set of live blocks), ``w[node]`` (each word, as its index in the
  node's list of values) and ``op[thread]`` (each thread's ``Space`` op id), plus the
  processes' program counters, which never change after the first step;
* ``init`` picks the initial set (one ``d_step`` per set), so SPIN stores one state more
  than the model checker: the state before that choice;
* thread ``k`` is one ``do`` loop with one ``d_step`` per possible move ``j``: the op its
  state lets it start (or continue), then that op's one shared access, looked up in the
  tables; every move checks properties (a)-(c) on the state it reaches, in C, and asserts
  the result. (b) runs each candidate's sequential alloc on a copy of the words with the
  same tables, so it shares no code with ``_mc.Checker.quiescent_problem``;
* (d) is a separate model (``liveness=True``): each step sets ``prog`` to whether it
  completed an operation, and a never claim accepts a cycle on which ``prog`` stays 0.

Every move prints ``@ k j`` (and ``init`` prints ``@init set``) when ``pan -r`` replays a
trail: that is what ``_spin._moves`` reads back, with the final ``viol`` (which property).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from nbbs.check import _mc
from nbbs.model import bits
from nbbs.model import geometry as g

TRAP = 0xFFFF
"""The next-op entry of an access the model checker refuses (a count leaves its bounds)."""

VIOLATIONS = {
    1: ("a", "held blocks overlap"),
    2: ("c", "an alloc took a block that is live in the linearized state"),
    3: ("c", "the OCC words are not the linearized live blocks plus the blocks in flight"),
    4: ("b", "quiescent OCC words are not the held blocks"),
    5: ("b", "a free block cannot be had by a sequential alloc: lost"),
    6: ("b", "a sequential alloc of a block that is not free succeeds"),
    7: ("b", "a failed sequential alloc does not restore the words"),
    8: ("count", "a thread's access drives a count out of 0..count_bound"),
    9: ("b", "a sequential alloc does not finish"),
    10: ("count", "property (b)'s sequential alloc of a candidate drives a count out of 0..count_bound"),
}
"""The code ``nbbs_check`` returns -> (property, what SPIN saw)."""


@dataclass
class Tables:
    """The configuration as tables: every op state's moves and every access on every word it can find."""

    cfg: _mc.Config
    space: _mc.Space
    values: dict[int, list[int]]
    """Per node, every word value the model can write there (index = what ``w[node]`` holds)."""
    access_node: dict[int, int]
    """Op id -> the node its next access touches (ops in flight only)."""
    rows: dict[int, list[tuple[int, int, bool]]]
    """Op id -> per value index of its node: (new value index, next op id or TRAP, done)."""
    moves: dict[int, list[int]]
    """Thread state (op id) -> the op ids it may run next (``Space.moves``)."""
    attempts: list[int]
    """Per candidate node, the op id of one sequential attempt at it (for property (b))."""
    initial_words: list[tuple[int, ...]]
    """Per initial set of live blocks, the words the sequential allocator leaves."""

    @property
    def op_count(self) -> int:
        return len(self.space.ops)

    @property
    def max_moves(self) -> int:
        return max(len(m) for m in self.moves.values())


def extract(cfg: _mc.Config) -> Tables:
    """Tabulate ``cfg``: close the op states and per-node word values under every access."""
    sp = _mc.Space(cfg)
    init_words = [sp.words_of(s) for s in sp.initial()]
    values: dict[int, list[int]] = {n: [0] for n in range(1, sp.nodes)}
    index: dict[int, dict[int, int]] = {n: {0: 0} for n in range(1, sp.nodes)}
    for words in init_words:
        for n in range(1, sp.nodes):
            if words[n] not in index[n]:
                index[n][words[n]] = len(values[n])
                values[n].append(words[n])
    access_node: dict[int, int] = {}
    raw: dict[int, dict[int, tuple[int, int, bool] | None]] = {}
    by_node: dict[int, list[tuple[int, bool]]] = {n: [] for n in range(1, sp.nodes)}
    moves: dict[int, list[int]] = {}
    attempts = [sp.intern(sp.m.attempt(n)) for n in sp.candidates]
    # (op id, whether a thread can be in it): the attempts of property (b) only need rows.
    todo_ops = [(i, True) for i in sp.first_tids()] + [(i, False) for i in attempts]
    todo_vals: list[tuple[int, int]] = []
    seen: set[tuple[int, bool]] = set()

    def tabulate(e: int, v: int, threads: bool) -> None:
        op = sp.ops[e]
        acc = sp.m.access(op)
        assert acc is not None
        try:
            new, nxt, done = sp.row(e, acc, v)
        except AssertionError:
            raw[e][v] = None  # the model checker refuses this access: SPIN traps on it
            return
        raw[e][v] = (new, nxt, done)
        n = acc.node
        if new not in index[n]:
            index[n][new] = len(values[n])
            values[n].append(new)
            todo_vals.append((n, new))
        todo_ops.append((nxt, threads))

    while todo_ops or todo_vals:
        while todo_vals:
            n, v = todo_vals.pop()
            for e, threads in list(by_node[n]):
                tabulate(e, v, threads)
        if not todo_ops:
            continue
        i, threads = todo_ops.pop()
        if (i, threads) in seen:
            continue
        seen.add((i, threads))
        acc = sp.m.access(sp.ops[i])
        if acc is not None:
            access_node[i] = acc.node
            by_node[acc.node].append((i, threads))
            raw.setdefault(i, {})
            for v in list(values[acc.node]):
                tabulate(i, v, threads)
        if threads and (sp.idle[i] or sp.hold[i] or acc is not None):
            moves[i] = sp.moves(i)
            todo_ops.extend((j, True) for j in moves[i])
    rows = {
        e: [
            (TRAP, TRAP, False) if (r := raw[e][v]) is None else (index[access_node[e]][r[0]], r[1], r[2])
            for v in values[access_node[e]]
        ]
        for e in access_node
    }
    if len(sp.ops) >= TRAP:
        raise AssertionError("[spin internal bug] too many op states for the tables")
    return Tables(cfg, sp, values, access_node, rows, moves, attempts, init_words)


def _c_array(ctype: str, name: str, items: list[int]) -> str:
    body = ",".join(str(x) for x in items) or "0"
    return f"static const {ctype} {name}[] = {{{body}}};"


def _mask(nodes: object) -> int:
    return sum(1 << n for n in nodes)  # type: ignore[attr-defined]


HEADER = "nbbs_tables.h"
"""The C header of the model's tables, passed to the compiler (``cc -include``) with pan.c:
SPIN's inline C (``c_decl``) is too short for them, and its preprocessor would expand an
``#include`` itself."""


@dataclass(frozen=True)
class Model:
    """A generated model: the Promela text and the C header of its tables (``HEADER``)."""

    pml: str
    header: str


def promela(t: Tables, liveness: bool = False) -> Model:
    """The Promela model of ``t``: safety (a)-(c) as asserts, or (``liveness``) (d) as a never claim."""
    sp, cfg = t.space, t.cfg
    K, N, T = t.op_count, sp.nodes, sp.T
    props = set(cfg.properties)
    # Flat tables: per op, its rows start at ROW[op]; per thread state, its moves at MOFF[state].
    row_at = [0] * K
    flat_new: list[int] = []
    flat_nxt: list[int] = []
    flat_done: list[int] = []
    for e in range(K):
        row_at[e] = len(flat_new)
        for new, nxt, done in t.rows.get(e, []):
            flat_new.append(new if new != TRAP else 0)
            flat_nxt.append(nxt)
            flat_done.append(int(done))
    moff, nmov = [0] * K, [0] * K
    mov: list[int] = []
    for i in range(K):
        moff[i] = len(mov)
        nmov[i] = len(t.moves.get(i, []))
        mov.extend(t.moves.get(i, []))
    node_of = [t.access_node.get(e, 0) for e in range(K)]
    hold = sp.hold[:K]
    between = [int(sp.idle[i] or sp.hold[i] != 0) for i in range(K)]
    late = _mc._UNMARKING if sp.m.transitions.release_last else frozenset()
    inflight = [
        sp.hold[i] or (op.n if op.pc in _mc._OCCUPIED_IN_FLIGHT or op.pc in late else 0)
        for i, op in enumerate(sp.ops)
    ]
    voff = [0] * N
    isocc: list[int] = []
    for n in range(1, N):
        voff[n] = len(isocc)
        isocc.extend(int(v & bits.OCC != 0) for v in t.values[n])
    ovm = [0] + [_mask(m for m in range(1, N) if m == n or g.overlaps(n, m)) for n in range(1, N)]
    static_held = [_mask(live) for live in sp.sets]
    static_ovl = [_mask(m for m in range(1, N) if any(g.overlaps(m, b) for b in live)) for live in sp.sets]
    init_idx = [[t.values[n].index(w[n]) if n else 0 for n in range(N)] for w in t.initial_words]
    wide = max(len(v) for v in t.values.values()) > 255
    wtype, wctype = ("int", "int") if wide else ("byte", "unsigned char")
    optype = "short" if K < 1 << 15 else "int"
    u64 = "unsigned long long"
    c = [
        f"/* {cfg.describe()}; {K} op states, {len(flat_new)} table rows. */",
        f"#define NBBS_T {T}",
        f"#define NBBS_N {N}",
        f"#define NBBS_TRAP {TRAP}",
        f"#define PROP_A {int('a' in props)}",
        f"#define PROP_B {int('b' in props)}",
        f"#define PROP_C {int('c' in props)}",
        _c_array("unsigned int", "ROW", row_at),
        _c_array(wctype, "NEW", flat_new),
        _c_array("unsigned short", "NXT", flat_nxt),
        _c_array("unsigned char", "DONE", flat_done),
        _c_array("unsigned int", "MOFF", moff),
        _c_array("unsigned short", "MOV", mov),
        _c_array("unsigned char", "NMOV", nmov),
        _c_array("unsigned char", "NODE", node_of),
        _c_array("unsigned char", "HOLD", hold),
        _c_array("unsigned char", "BETWEEN", between),
        _c_array("unsigned char", "INFL", inflight),
        _c_array("unsigned int", "VOFF", voff),
        _c_array("unsigned char", "ISOCC", isocc),
        _c_array(u64, "OVM", [*ovm]),
        _c_array(u64, "SHELD", static_held),
        _c_array(u64, "SOVL", static_ovl),
        _c_array("unsigned short", "CAND", list(sp.candidates)),
        _c_array("unsigned short", "ATT", t.attempts),
        f"#define NBBS_NCAND {len(sp.candidates)}",
        _c_array(wctype, "INITW", [x for row in init_idx for x in row]),
        _c_array("unsigned short", "FIRST", sp.first_tids()),
    ]
    out = ["/* Generated by nbbs.check.spin from model/steps.py and model/bits.py: do not edit. */"]
    out.append(f"/* {cfg.describe()}; {K} op states, {len(flat_new)} table rows. */")
    out.append(f"/* The tables: compile pan.c with -include {HEADER} (SPIN's inline C is too short). */")
    # (The preprocessor SPIN runs on the model would drop an #ifdef here: choose in Python.)
    prog = "now.prog = DONE[r];" if liveness else "/* (d) is checked by the liveness model */"
    out.append(_C_FUNCTIONS.replace("WTYPE", wctype).replace("PROG", prog))
    out += [
        "byte ready;",
        # The initial set's index: more than 255 sets from depth 3 on.
        f"{'byte' if len(sp.sets) < 256 else 'short'} stat;",
        f"{wtype} w[{N}];",
        f"{optype} op[{T}];",
        "byte viol;",
    ]
    if liveness:
        out.append("bit prog;")
    # One assert keeps pan small; which property failed is viol's value (VIOLATIONS) in the trail.
    assert_all = "assert(viol == 0)"
    out.append("init {")
    out.append("  if")
    for k in range(len(t.initial_words)):
        out.append(
            f'  :: d_step {{ printf("@init {k}\\n"); c_code {{ now.viol = nbbs_init({k}); }}; {assert_all} }}'
        )
    out.append("  fi;")
    out.append("end_init: (false)")
    out.append("}")
    for k in range(T):
        out.append(f"active proctype thread{k}() {{")
        out.append("end: do")
        for j in range(t.max_moves):
            out.append(
                f"  :: d_step {{ c_expr {{ now.ready && NMOV[now.op[{k}]] > {j} }} -> "
                f'printf("@ {k} {j}\\n"); c_code {{ now.viol = nbbs_step({k}, {j}); }}; {assert_all} }}'
            )
        out.append("  od")
        out.append("}")
    if liveness:
        out += [
            "never {  /* (d): a cycle of steps none of which completes an operation */",
            "T0_init: do :: (1) :: (ready && !prog) -> goto accept_np od;",
            "accept_np: do :: (!prog) od",
            "}",
        ]
    return Model("\n".join(out) + "\n", "\n".join(c) + "\n")


_C_FUNCTIONS = r"""
c_code {
/* The properties (a)-(c) of the state just reached, or 0: see _spin_model.VIOLATIONS. */
int nbbs_check(void) {
  unsigned long long held = SHELD[now.stat], want = SHELD[now.stat], near = SOVL[now.stat], occ = 0;
  int t, x, quiet = 1, bad = 0;
  for (t = 0; t < NBBS_T; t++) {
    int h = HOLD[now.op[t]], f = INFL[now.op[t]];
    if (h) {
      /* near: every node that overlaps a block held so far (from the start or by a thread) */
      if (near & (1ULL << h)) bad = 1;
      near |= OVM[h];
      held |= 1ULL << h;
    }
    if (f) want |= 1ULL << f;
    if (!BETWEEN[now.op[t]]) quiet = 0;
  }
  if (bad) return PROP_A ? 1 : (PROP_C ? 2 : 0);
  for (x = 1; x < NBBS_N; x++) if (ISOCC[VOFF[x] + now.w[x]]) occ |= 1ULL << x;
  if (PROP_C && occ != want) return 3;
  if (PROP_B && quiet) {
    int ci;
    if (occ != held) return 4;
    for (ci = 0; ci < NBBS_NCAND; ci++) {
      WTYPE c[NBBS_N];
      int n = CAND[ci], e = ATT[ci], nx, steps = 0, got, free = (OVM[n] & held) == 0;
      memcpy(c, now.w, sizeof c);
      for (;;) {
        unsigned int r;
        if (++steps > 100000) return 9;
        x = NODE[e];
        r = ROW[e] + c[x];
        nx = NXT[r];
        if (nx == NBBS_TRAP) return 10;
        c[x] = NEW[r];
        if (BETWEEN[nx]) break;
        e = nx;
      }
      got = HOLD[nx];
      if (free && got != n) return 5;
      if (!free && got) return 6;
      if (!free && memcmp(c, now.w, sizeof c)) return 7;
    }
  }
  return 0;
}

/* Thread k makes its j-th move: the op it runs (MOV), that op's one access (ROW, NEW, NXT). */
int nbbs_step(int k, int j) {
  int e = MOV[MOFF[now.op[k]] + j], x = NODE[e];
  unsigned int r = ROW[e] + now.w[x];
  if (NXT[r] == NBBS_TRAP) return 8;
  now.w[x] = NEW[r];
  now.op[k] = NXT[r];
  PROG
  return nbbs_check();
}

/* The initial state of set s: the words the sequential allocator leaves, every thread idle. */
int nbbs_init(int s) {
  int t, x;
  for (t = 0; t < NBBS_T; t++) now.op[t] = FIRST[t];
  for (x = 0; x < NBBS_N; x++) now.w[x] = INITW[s * NBBS_N + x];
  now.stat = s;
  now.ready = 1;
  return nbbs_check();
}
}
"""


def symmetric_count(space: _mc.Space, states: list[int]) -> tuple[int, int]:
    """(states, transitions) of the model checker's reduced states with the thread symmetry undone.

    A reduced state stands for every distinct permutation of its threads' op ids (T! over the
    product of the multiplicities' factorials); each of those has one transition per move of
    each thread. In a scenario, op ids carry their thread, so each state stands for itself.
    """
    total = edges = 0
    for s in states:
        tids = space.tids(s)
        orbit = 1
        if space.scenario is None:
            orbit = math.factorial(len(tids))
            for m in Counter(tids).values():
                orbit //= math.factorial(m)
        total += orbit
        edges += orbit * sum(len(space.moves(t)) for t in tids)
    return total, edges
