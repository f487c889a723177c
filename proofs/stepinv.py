"""The thread-modular invariant of ``threadmodular`` checked inductive by z3, one query per
(role, program counter), with the step machines' *symbolic* semantics.

``threadmodular.fixpoint`` computes the invariant ``R`` by running the step machines on
ints. Here each local state's invariant is the z3 predicate ``Inv_l(S)`` = "the shared
state ``S`` (words, ghost claimed set, ghost held set, one bit-vector) is one of those
``R`` pairs with ``l``", and z3 checks, for every program counter ``pc``:

* *guarantee* (role "self"): a thread in any local state ``l`` whose next step is at ``pc``,
  from any ``S`` with ``Inv_l(S)``, reaches an ``(S', l')`` with ``Inv_l'(S')``, and the
  step's safety checks hold (a claimed node is claimed once; a returned block overlaps no
  held block);
* *rely* (role "other"): for any two compatible local states ``l``, ``l2`` (distinct claims)
  with ``Inv_l(S)`` and ``Inv_l2(S)``, the step of ``l2`` at ``pc`` leads to ``S'`` with
  ``Inv_l(S')``.

The step is ``steps.Machine.access`` / ``steps.effect`` with z3's ``If`` and
``Machine.branches`` with a z3 ``Logic`` on a symbolic old word, not the integer tables the
fixpoint used. Together with "every initial state is in ``R``" this is an inductive
invariant of the system with any number of threads (for the tree depth it was computed
for) that implies no two held blocks overlap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import z3

from nbbs.check._mc import IDLE, Space
from nbbs.model import bits, steps
from nbbs.model import geometry as g
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, Z
from nbbs.proofs.threadmodular import TMResult, claims, fixpoint, ghost_step

OUTSIDE = (1 << 16) - 1
"""A local-state id no invariant pair has: where a step to an unseen local state goes."""


class _Encoding:
    def __init__(self, tm: TMResult) -> None:
        assert tm.space is not None
        self.sp: Space = tm.space
        self.R = tm.invariant
        self.nodes = g.node_count(tm.depth)
        self.width = self.sp.WB + 2 * self.nodes
        self.S = z3.BitVec("shared", self.width)
        self.keys_of: dict[int, list[int]] = defaultdict(list)
        for key, tids in self.R.items():
            for tid in tids:
                self.keys_of[tid].append(key)
        self.overlap = [0] + [
            sum(1 << m for m in range(1, self.nodes) if g.overlaps(n, m)) for n in range(1, self.nodes)
        ]

    def inv(self, tid: int, s: Any) -> Any:
        keys = self.keys_of.get(tid, [])
        return z3.Or([s == z3.BitVecVal(k, self.width) for k in keys]) if keys else z3.BoolVal(False)

    def claim(self, tid: int) -> int:
        return claims(self.sp, tid)

    def successors(self, tid: int) -> list[tuple[int, Any, int, Any, list[tuple[str, Any]]]]:
        """Each (op moving, guard, next local id, S', checks) of one step of a thread in ``tid``."""
        sp, S = self.sp, self.S
        out: list[tuple[int, Any, int, Any, list[tuple[str, Any]]]] = []
        for op_id in sp.moves(tid):
            op = sp.ops[op_id]
            acc = sp.m.access(op)
            assert acc is not None
            lo = sp.shift(acc.node)
            old = z3.Extract(lo + bits.WORD_BITS - 1, lo, S)
            new = steps.effect(acc, old, z3.If)
            if not z3.is_expr(new):  # a store's value is a constant
                new = z3.BitVecVal(new, bits.WORD_BITS)
            words2 = (
                S & ~z3.BitVecVal(bits.WORD_MASK << lo, self.width)
                | z3.ZeroExt(self.width - bits.WORD_BITS, new) << lo
            )
            claimed = z3.Extract(sp.WB + self.nodes - 1, sp.WB, S)
            held = z3.Extract(self.width - 1, sp.WB + self.nodes, S)
            for guard, nxt in sp.m.branches(op, old, Z):
                cases = [(guard, nxt)]
                if z3.is_expr(nxt.cur):  # the branch keeps the word it found: split on its value
                    # Only values that give a local state the fixpoint met can be in the invariant;
                    # every other value goes to a local state outside it (the proof must exclude it).
                    seen = [c for c in range(1 << bits.WORD_BITS) if (nxt._replace(cur=c), ()) in sp.ids]
                    cases = [(z3.And(guard, old == c), nxt._replace(cur=c)) for c in seen]
                    out.append((op_id, z3.And(guard, *[old != c for c in seen]), OUTSIDE, S, []))
                for gd, st in cases:
                    nid = sp.intern(st)
                    h_after = sp.hold[nid]
                    c2, h2, checks = ghost_step(
                        claimed,
                        held,
                        self.claim(tid),
                        self.claim(nid),
                        sp.hold[tid],
                        h_after,
                        self.overlap[h_after] if h_after else 0,
                    )
                    s2 = z3.Extract(sp.WB - 1, 0, words2)
                    shared2 = z3.Concat(h2, c2, s2)
                    out.append((op_id, gd, nid, shared2, checks))
        return out

    def compatible(self, a: int, b: int) -> bool:
        ca = self.claim(a)
        return not ca or ca != self.claim(b)


def _pc_of(sp: Space, op_id: int) -> int:
    return int(sp.ops[op_id].pc)


_LOCAL_BITS = 16


def queries(tm: TMResult) -> dict[str, Query]:
    """One query per (role, pc), plus the initial states.

    The local states are symbolic too (``L``, ``L2``: op ids), so each query covers every
    local state at that pc: ``Inv(L, S)`` is the invariant as one predicate, and the step is
    a relation between ``(L, S)`` and fresh ``(L', S')``.
    """
    enc = _Encoding(tm)
    sp, S = enc.sp, enc.S
    L, L2, L1 = (z3.BitVec(name, _LOCAL_BITS) for name in ("local", "other_local", "local_after"))
    S1 = z3.BitVec("shared_after", enc.width)
    ok = z3.Bool("step_checks_hold")
    pairs = [(k, t) for k, tids in tm.invariant.items() for t in tids]

    def lid(t: int) -> z3.BitVecRef:
        return z3.BitVecVal(t, _LOCAL_BITS)

    built: dict[tuple[int, int], Any] = {}

    def inv(loc: Any, sh: Any) -> Any:
        key = (loc.get_id(), sh.get_id())
        if key not in built:  # the same four instances serve every query
            built[key] = z3.Or([z3.And(sh == z3.BitVecVal(k, enc.width), loc == lid(t)) for k, t in pairs])
        return built[key]

    claims_of = [(t, enc.claim(t)) for t in sorted(enc.keys_of) if enc.claim(t)]

    def claim_of(loc: Any) -> Any:
        out: Any = z3.BitVecVal(0, _LOCAL_BITS)
        for t, c in claims_of:
            out = z3.If(loc == lid(t), z3.BitVecVal(c, _LOCAL_BITS), out)
        return out

    by_pc: dict[int, list[Any]] = defaultdict(list)
    for tid in sorted(enc.keys_of):
        for op_id, gd, nid, s2, checks in enc.successors(tid):
            by_pc[_pc_of(sp, op_id)].append((tid, gd, nid, s2, z3.And([c for _, c in checks] or [True])))

    def explain(m: z3.ModelRef) -> str:
        lines = []
        for name, x in (("before", S), ("after", S1)):
            v = m.eval(x, model_completion=True).as_long()
            w = sp.words_of(v & ((1 << sp.WB) - 1))
            claimed = [n for n in range(1, enc.nodes) if v >> sp.WB >> n & 1]
            held = [n for n in range(1, enc.nodes) if v >> (sp.WB + enc.nodes) >> n & 1]
            lines.append(
                f"  shared {name}: "
                + " ".join(f"{n}:{w[n]:05b}" for n in range(1, enc.nodes))
                + f"  claimed {claimed} held {held}"
            )
        for name, x in (("thread", L), ("other thread", L2), ("thread after", L1)):
            t = m.eval(x, model_completion=True).as_long()
            if t < len(sp.ops):
                lines.append(f"  {name}: {steps.describe(sp.ops[t])}")
        return "\n".join(lines)

    out: dict[str, Query] = {}
    for pc, succ in sorted(by_pc.items()):
        name = steps.PC_NAMES[pc]
        # The thread itself (L) takes the step at pc: to (L1, S1).
        mine = z3.Or(
            [z3.And(lid(t) == L, gd, lid(nid) == L1, s2 == S1, ok == chk) for t, gd, nid, s2, chk in succ]
        )
        out[f"self@{name}"] = Query(
            [inv(L, S), mine],
            [("the step keeps the invariant", inv(L1, S1)), ("the step's safety checks hold", ok)],
            explain,
        )
        # Another thread (L2) takes the step; the thread L, compatible with it, is still in R.
        theirs = z3.Or([z3.And(lid(t) == L2, gd, s2 == S1) for t, gd, _nid, s2, _chk in succ])
        cl, cl2 = claim_of(L), claim_of(L2)
        compatible = z3.Or(cl == 0, cl != cl2)
        out[f"other@{name}"] = Query(
            [inv(L, S), inv(L2, S), compatible, theirs],
            [("the other thread's step keeps this thread in the invariant", inv(L, S1))],
            explain,
        )
    start = [z3.Or([z3.BitVecVal(k, enc.width) == S for k in tm.initial]), lid(IDLE) == L]
    out["initial"] = Query(start, [("every initial state is in the invariant", inv(L, S))], explain)
    return out


def obligations(depth: int = 1) -> list[Obligation]:
    """The z3 inductiveness checks of the thread-modular invariant for ``depth`` (computed once)."""
    cache: dict[str, dict[str, Query]] = {}

    def build_for(name: str) -> Callable[[Variant], Query]:
        def build(v: Variant) -> Query:
            if v.name not in cache:
                tm = fixpoint(depth, transitions=v.transitions)
                if not tm.ok:
                    x = z3.BitVec("x", 1)
                    return Query(
                        [],
                        [(f"the fixpoint is safe and complete: {tm.violation}", x != x)],
                        lambda m: tm.violation or "",
                    )
                cache[v.name] = queries(tm)
            got = cache[v.name].get(name)
            if got is None:  # this variant never steps at that pc: nothing to prove, said so
                return Query(
                    [], [("the variant steps here", z3.BoolVal(False))], str, cases=[("reached", False)]
                )
            return got

        return build

    tm = fixpoint(depth)
    names = sorted(queries(tm)) if tm.ok else ["initial"]
    return [
        Obligation(
            f"steps_tm_{name}", "steps", depth, "the thread-modular invariant is inductive", build_for(name)
        )
        for name in names
    ]
