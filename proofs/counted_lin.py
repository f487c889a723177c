"""Linearizability of ``counted``, bounded: a ghost abstract state and linearization points,
one z3 query per (thread, program counter), in ``counted_steps``' encoding (reused: its
system, state, step and ``Inv``).

**Abstract state** ``A`` (the spec's set of live blocks, ``model/spec.py``): the static
blocks, and the block of every thread at ``DONE_OK`` (its alloc returned it) or at
``F_RELEASE`` (its free has not taken effect yet).

**Linearization points.**

* A successful alloc takes effect at the step that ends it (``DONE_OK``: its last climb CAS,
  or its occupy when the block is at ``max_level``): there ``spec``'s alloc of ``n`` is allowed
  (no live block overlaps ``n``) and ``A`` gains exactly ``n``.
* A free takes effect at its first step, the release of its block: ``n`` is live and ``A``
  loses exactly ``n``.
* A failed alloc (``None``) takes effect where it decides to fail: its load or occupy finds
  the node taken (the step to ``DONE_FAIL``), or its climb load finds an ancestor occupied (the
  step into the rollback). There the README's contract must allow ``None``: ``n`` is not free
  in ``A``, or another operation is in flight (contention).
* Every other step leaves ``A`` unchanged.

Each claim is checked from every state satisfying ``Inv`` (proved inductive by
``counted_steps``), so together they say every execution is linearizable with these points:
the sequence of ``A`` changes is a legal spec history and each operation's result is the one
its point allows. Bounded: the configurations ``counted_steps`` runs (threads, depth), attempt
mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import geometry as g
from nbbs.model import steps
from nbbs.proofs import counted_steps as cs
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query

FREE_POINTS = {
    "release": (steps.DONE_OK, steps.F_RELEASE),
    "end": (steps.DONE_OK, steps.F_RELEASE, steps.F_ULOAD, steps.F_UCAS),
}
"""Which pcs still count a thread's block as live: ``release`` is the free's point above;
``end`` (a misplaced point, for the mutant test) keeps the block live until the free ends."""


def abstract(st: cs.State, live_pcs: tuple[int, ...]) -> dict[int, Any]:
    """``A`` of state ``st``: node -> "it is a live block"."""
    s = st.s
    out = {}
    for x in s.candidates:
        holders = [o for o in s.ops if o.pc in live_pcs and o.n == x]
        out[x] = z3.Or(st.static[x], *[st.among(i, holders) for i in range(s.threads)])
    return out


def _is_free(a: dict[int, Any], n: int) -> Any:
    """``spec.is_free``: no live block overlaps ``n``."""
    return z3.And([z3.Not(v) for x, v in a.items() if g.overlaps(x, n)] or [True])


def _lin_query(v: Variant, depth: int, threads: int, k: int, pc: int, max_level: int, point: str) -> Query:
    s = cs._system(v, depth, threads, max_level)
    pre, post = cs.State(s, ""), cs.State(s, "post_")
    post.static = pre.static
    move, cases = cs._step(s, pre, post, k, pc)
    live = FREE_POINTS[point]
    a0, a1 = abstract(pre, live), abstract(post, live)
    same = z3.And([a0[x] == a1[x] for x in s.candidates])
    idle = [o for o in s.ops if o.pc in (steps.DONE_FAIL, steps.DONE_OK)]
    others_busy = z3.Or([z3.Not(pre.among(j, idle)) for j in range(threads) if j != k] or [False])
    claims: list[tuple[str, Any]] = []
    effects = []
    for op in s.ops:
        if op.pc != pc:
            continue
        here = pre.at(k, op)
        n = op.n
        if steps.is_alloc(op):
            done = [o for o in s.ops if o.pc == steps.DONE_OK and o.n == n]
            ok = z3.And(here, post.among(k, done))
            gains = z3.And(
                _is_free(a0, n), z3.Not(a0[n]), *[a1[x] == z3.Or(a0[x], x == n) for x in s.candidates]
            )
            effects.append(ok)
            claims.append(
                (
                    f"{steps.describe(op)}: a successful alloc takes n exactly when spec allows it",
                    z3.Implies(ok, gains),
                )
            )
            fails = z3.And(here, post.at(k, cs.IDLE))
            if pc == steps.C_LOAD:
                rolling = [o for o in s.ops if o.pc == steps.R_RELEASE and o.n == n]
                fails = z3.And(here, post.among(k, rolling))
            if pc in (steps.A_LOAD, steps.A_OCC, steps.C_LOAD):
                claims.append(
                    (
                        f"{steps.describe(op)}: a failed alloc's None is allowed (n taken, or contention)",
                        z3.Implies(fails, z3.Or(z3.Not(_is_free(a0, n)), others_busy)),
                    )
                )
        if pc == steps.F_RELEASE:
            freed = z3.And(here, z3.Not(post.at(k, op)))
            loses = z3.And(a0[n], *[a1[x] == z3.And(a0[x], x != n) for x in s.candidates])
            effects.append(freed)
            claims.append(
                (
                    f"{steps.describe(op)}: a free takes effect at its release: n was live and only n goes",
                    z3.Implies(freed, loses),
                )
            )
    claims.append(
        (
            "every other step leaves the abstract state unchanged",
            z3.Implies(z3.Not(z3.Or(effects or [False])), same),
        )
    )

    def explain(m: z3.ModelRef) -> str:
        lines = cs._show_state(pre, m, f"before (Inv holds), thread {k} steps at {steps.PC_NAMES[pc]}")
        lines += cs._show_state(post, m, "after")
        live0 = [x for x in s.candidates if z3.is_true(m.eval(a0[x], model_completion=True))]
        live1 = [x for x in s.candidates if z3.is_true(m.eval(a1[x], model_completion=True))]
        lines.append(f"  abstract state (live blocks) before {live0}, after {live1}")
        return "\n".join(lines)

    return Query([cs._inv(pre), move], claims, explain, (), cases)


def obligations(
    depth: int, threads: int, max_level: int = 0, point: str = "release", *, symmetric: bool = False
) -> list[Obligation]:
    """``clin_T{threads}_t{k}@{pc}`` for every thread and pc (``point``: where a free takes effect;
    ``symmetric``: thread 0 only, the others following by ``counted_sym``)."""
    from nbbs.proofs._variant import COUNTED

    suffix = (
        f"_T{threads}"
        + (f"_ml{max_level}" if max_level else "")
        + ("" if point == "release" else f"_{point}")
    )

    def by(k: int, pc: int) -> Callable[[Variant], Query]:
        return lambda v: _lin_query(v, depth, threads, k, pc, max_level, point)

    return [
        Obligation(
            f"clin{suffix}_t{k}@{steps.PC_NAMES[pc]}",
            "steps",
            depth,
            f"{threads} threads: a step of thread {k} at {steps.PC_NAMES[pc]} is a linearization point "
            "exactly when it changes the abstract state, and a legal one",
            by(k, pc),
        )
        for k in range(1 if symmetric else threads)
        for pc in cs.pcs(COUNTED, depth, threads, max_level)
    ]
