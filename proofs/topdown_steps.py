"""The step-level invariant of ``top-down``: ``counted_steps``' system and queries, another ``Inv``.

The system, the step relation and the four kinds of obligation are ``counted_steps``' (one
query per thread and program counter, the initial states, safety, quiescence); only the
invariant differs. A ``top-down`` count is a number of *tokens*: claims handed up from the
child, not claims of whole paths (``bits.top_down``, ALGORITHM.md §1.4.2).

**The invariant** ``Inv`` (held set and occupiers as in ``counted_steps``, with the descent's
and the undo's program counters among an alloc's occupied-in-flight states)::

    each node a: OCC(w[a]) iff a is static or held or occupied (at most one of those);
                 then w[a] == BUSY;  a page: w[a] in {0, BUSY};  above max_level: 0
    an inner node a at or below max_level, side s with child c:
                 no status bit unless BUSY, and
                 c_s(w[a]) == [c is static]
                              + [c_L(w[c]) != 0] + [c_R(w[c]) != 0]        (c an inner node;
                                top-down-node: + [w[c] has any claim])
                              + #threads with a token at (a, s)
    per thread:  cur == 0 where unused; at a release (a CAS) cur == BUSY; at occupy cur == 0;
                 at a descent CAS cur is no block,
                 and at the anchor (above max_level) climb_stops(cur) (it is claimed)

A thread's tokens (``tokens``): holding ``n`` or about to release it, one at ``parent(n)``;
descending towards ``child`` below the anchor, one at ``parent(parent(child))`` (the claim
written for the node it is about to count); undoing a surplus, that one and one at
``parent(child)``; uncounting from ``child`` (a free, a rollback), one at ``parent(child)``; a
rollback about to release after a descent failed at ``x``, one at ``parent(x)``.

Read bottom-up: every non-zero side count has a token above it, so every ancestor of a held
block up to ``max_level`` has a non-zero count and is no block. Obligations
``tsteps_initial``, ``tsteps_T{k}@{pc}``, ``tsteps_safe``, ``tsteps_quiescent``, built by
``counted_steps.obligations`` with this ``invariant``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import bits, steps
from nbbs.model import geometry as g
from nbbs.model.steps import OpState
from nbbs.proofs import counted_steps as cs
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import TOP_DOWN as TOP_DOWN
from nbbs.proofs._variant import TOP_DOWN_NODE as TOP_DOWN_NODE
from nbbs.proofs._variant import Variant

# TOP_DOWN_NODE (``_variant``'s, re-exported): ``top-down`` with one token per child, the same
# ``Inv`` with ``[c has any claim]`` in place of ``[c_L(w[c]) != 0] + [c_R(w[c]) != 0]``.

_DESCENDING = (steps.D_LOAD, steps.D_CAS)
_UNDOING = (steps.U_LOAD, steps.U_CAS)
_UNMARKING = (steps.F_ULOAD, steps.F_UCAS, steps.R_ULOAD, steps.R_UCAS)
_HAS_CUR = (
    steps.A_OCC,
    steps.D_CAS,
    steps.U_CAS,
    steps.F_UCAS,
    steps.R_UCAS,
    steps.F_RELEASE,
    steps.R_RELEASE,
)


def occupier(op: OpState) -> int:
    """The node ``op``'s thread holds or has occupied and not yet released (0: none)."""
    if op.pc in (steps.DONE_OK, steps.C_LOAD, *_DESCENDING, *_UNDOING, steps.F_RELEASE, steps.R_RELEASE):
        return op.n
    return 0


def _up(x: int) -> tuple[int, int]:
    """The (node, side) a token handed up from ``x`` sits at."""
    return g.parent(x), g.side(x)


def token_sources(op: OpState, max_level: Any, lvl: Callable[[Any], Any] = g.level) -> list[tuple[Any, Any]]:
    """``(condition, x)``: ``op``'s thread has a token handed up from ``x`` (at ``parent(x)``, on
    ``x``'s side) when the condition holds; for int op states and, with ``lvl`` a z3 level
    function, symbolic ones (``topdown_every``)."""
    pc, n = op.pc, op.n
    if pc in (steps.DONE_OK, steps.F_RELEASE):
        return [(lvl(n) > max_level, n)]
    if pc in _DESCENDING:
        x = g.parent(op.child)
        return [(lvl(x) > op.top, x)]
    if pc in _UNDOING:
        return [(True, g.parent(op.child)), (True, op.child)]
    if pc in _UNMARKING:
        return [(True, op.child)]
    if pc == steps.R_RELEASE:
        return [(op.child != 0, op.child)]
    return []


def tokens(op: OpState, max_level: int) -> list[tuple[int, int]]:
    """The (node, side) pairs whose count includes a token of ``op``'s thread."""
    return [_up(x) for cond, x in token_sources(op, max_level) if cond]


@functools.cache
def _tables(s: cs.System) -> tuple[dict[int, list[OpState]], dict[tuple[int, int], list[OpState]]]:
    """Which op states occupy each node, and which have a token at each (node, side)."""
    occ: dict[int, list[OpState]] = {x: [] for x in s.nodes}
    at: dict[tuple[int, int], list[OpState]] = {}
    for op in s.ops:
        o = occupier(op)
        if o:
            occ[o].append(op)
        for key in tokens(op, s.max_level):
            at.setdefault(key, []).append(op)
    return occ, at


def invariant(st: cs.State) -> list[tuple[str, Any]]:
    """``Inv`` of state ``st`` as named conjuncts."""
    s = st.s
    width = s.t.count_bits
    wide = width + 2
    occ, at = _tables(s)
    per_node = s.t.at_width is bits.top_down_node
    one, zero = z3.BitVecVal(1, wide), z3.BitVecVal(0, wide)
    out: list[tuple[str, Any]] = []
    for i in range(s.threads):
        out.append((f"thread {i}: a reachable op state", z3.ULT(st.op[i], len(s.ops))))
        at_occ = [o for o in s.ops if o.pc == steps.A_OCC]
        at_cas = [o for o in s.ops if o.pc == steps.D_CAS]
        out.append((f"thread {i}: at occupy, cur == 0", z3.Implies(st.among(i, at_occ), st.cur[i] == 0)))
        out.append(
            (
                f"thread {i}: at descend-cas, cur is no block",
                z3.Implies(st.among(i, at_cas), st.cur[i] & bits.OCC == 0),
            )
        )
        anchored = [o for o in at_cas if g.level(g.parent(o.child)) == o.top > s.max_level]
        for o in anchored:
            out.append(
                (
                    f"thread {i}: at the anchor's CAS, cur is claimed (climb_stops)",
                    z3.Implies(st.at(i, o), s.t.climb_stops(st.cur[i], g.side(o.child))),
                )
            )
        out += cs.cur_facts(st, i, _HAS_CUR)
    for a in s.nodes:
        shape, more = cs.word_shape(st, a, occ)
        out += shape
        if not more:
            continue
        w = st.w[a]
        for side, c in ((1, g.left(a)), (0, g.right(a))):
            terms = [z3.If(st.static[c], one, zero)]
            if g.level(c) < s.depth:
                claimed = [cs._field(st.w[c], k, width) != 0 for k in (1, 0)]
                if per_node:
                    terms.append(z3.If(z3.Or(claimed), one, zero))
                else:
                    terms += [z3.If(x, one, zero) for x in claimed]
            mine = at.get((a, side), [])
            terms += [z3.If(st.among(i, mine), one, zero) for i in range(s.threads)]
            total = functools.reduce(lambda x, y: x + y, terms)
            name = "c_L" if side else "c_R"
            out.append(
                (
                    f"node {a}: {name} = [{c} static] + {c}'s claimed sides + tokens",
                    z3.ZeroExt(2, cs._field(w, side, width)) == total,
                )
            )
    return out


def obligations(
    depth: int, threads: int, max_level: int = 0, subject: Variant = TOP_DOWN, symmetric: bool = False
) -> list[Obligation]:
    """The step-level obligations of ``top-down`` or ``top-down-node`` (prove them with
    ``subject`` as the variant); ``symmetric``: thread 0's per-pc queries only, plus the proof
    that every other thread's is thread 0's relabelled (``topdown_arith.sym_obligations``:
    ``tsym_*`` / ``tnsym_*``)."""
    prefix = "tsteps" if subject is TOP_DOWN else "tnsteps"
    out = cs.obligations(
        depth, threads, max_level, inv=invariant, prefix=prefix, subject=subject, symmetric=symmetric
    )
    if symmetric:
        from nbbs.proofs import topdown_arith

        out += topdown_arith.sym_obligations(depth, threads, max_level, per_node=subject is not TOP_DOWN)
    return out
