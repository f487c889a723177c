"""Thread symmetry of the bounded step-level encoding, checked by z3: thread ``k``'s queries are
thread 0's with the two threads relabelled, so proving thread 0's proves everyone's.

``counted_steps`` encodes a state as the words, the static set and per thread an op-state id
and a ``cur`` word. ``swap_k`` exchanges thread 0's id and ``cur`` with thread ``k``'s (the
transposition ``(0 k)``; words and static set stay). Per configuration (depth, threads) z3
proves, for every ``k >= 1``:

* ``csym_inv_T{t}_t{k}``: ``Inv(s) <=> Inv(swap_k(s))`` for every state ``s``;
* ``csym_step_T{t}_t{k}@{pc}``: ``step_k(s, s') <=> step_0(swap_k(s), swap_k(s'))`` at ``pc``
  (``counted_steps._step``: thread ``k`` moves from ``pc``, every other thread stays);
* ``csym_query_T{t}_t{k}@{pc}``: the whole ``csteps_T{t}_t{k}@{pc}`` query, as one formula
  (premises imply claims), equals thread 0's with the two threads' variables exchanged;
* ``csym_lin_T{t}_t{k}@{pc}``: the same for ``clin_T{t}_t{k}@{pc}``.

**Why that suffices.** A formula and its renaming are valid together, so by ``csym_query``
thread ``k``'s ``csteps`` query is proved exactly when thread 0's is, and by ``csym_lin`` the
same for ``clin``: that is the whole argument, about the obligations' own text (an extra
premise slipped into thread ``k``'s query alone would fail it). ``csym_inv`` and ``csym_step``
are the same fact split the way one reasons about it (``Inv(s)`` and ``step_k(s, s')`` give
``Inv(swap(s))`` and ``step_0(swap(s), swap(s'))``; thread 0's query gives ``Inv(swap(s'))``,
hence ``Inv(s')``): when the symmetry breaks they say whether the invariant or the step is to
blame, with a readable counterexample. ``csteps_initial``, ``csteps_safe`` and
``csteps_quiescent`` mention every thread at once and are proved as they are.

The equivalences are checked unconditionally (not only under ``Inv``): stronger, and z3
proves them from the formulas alone (thread ``k``'s formula is thread 0's with the variables
exchanged and its conjuncts in another order). A counterexample is a state (pair) where one
side holds and the other does not, printed with both states and the conjuncts that differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import steps
from nbbs.proofs import counted_lin
from nbbs.proofs import counted_steps as cs
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, term

Step = Callable[[cs.System, cs.State, cs.State, int, int], tuple[Any, list[tuple[str, Any]]]]
"""A step relation builder with ``counted_steps._step``'s signature (a mutant plugs in here)."""

Build = Callable[[Variant, int, int], Query]
"""An obligation's query for thread ``k`` at ``pc`` (``csteps``'s or ``clin``'s)."""


def swap(states: list[cs.State], k: int) -> list[tuple[Any, Any]]:
    """The substitution exchanging thread 0's and thread ``k``'s variables in each of ``states``
    (simultaneous: ``z3.substitute`` applies all pairs at once)."""
    out: list[tuple[Any, Any]] = []
    for st in states:
        out += [(st.op[0], st.op[k]), (st.op[k], st.op[0]), (st.cur[0], st.cur[k]), (st.cur[k], st.cur[0])]
    return out


def _differing(m: z3.ModelRef, named: list[tuple[str, Any]], sw: list[tuple[Any, Any]]) -> list[str]:
    """The named terms whose value at the model differs from their value at the swapped model."""
    out = []
    for name, c in named:
        here = z3.is_true(m.eval(c, model_completion=True))
        there = z3.is_true(m.eval(z3.substitute(c, *sw), model_completion=True))
        if here != there:
            verdict = f"{'holds' if here else 'fails'} here, {'holds' if there else 'fails'} swapped"
            out.append(f"{name} ({verdict})")
    return out


def _swapped_view(st: cs.State, k: int, tag: str) -> cs.State:
    """``st`` with threads 0 and ``k`` relabelled (for printing a counterexample's swapped state)."""
    view = cs.State(st.s, tag)
    view.w, view.static = st.w, st.static
    view.op, view.cur = list(st.op), list(st.cur)
    view.op[0], view.op[k] = st.op[k], st.op[0]
    view.cur[0], view.cur[k] = st.cur[k], st.cur[0]
    return view


def _inv_query(v: Variant, depth: int, threads: int, k: int, max_level: int, inv: cs.Invariant) -> Query:
    s = cs._system(v, depth, threads, max_level)
    st = cs.State(s, "")
    sw = swap([st], k)
    named = inv(st)
    whole = z3.And([c for _, c in named])

    def explain(m: z3.ModelRef) -> str:
        lines = cs._show_state(st, m, "state s")
        lines += cs._show_state(_swapped_view(st, k, ""), m, f"swap(s): threads 0 and {k} relabelled")
        lines.append("  Inv conjuncts that differ: " + "; ".join(_differing(m, named, sw)))
        return "\n".join(lines)

    return Query([], [(f"Inv(s) iff Inv(swap_{k}(s))", whole == z3.substitute(whole, *sw))], explain)


def _step_query(v: Variant, depth: int, threads: int, k: int, pc: int, max_level: int, step: Step) -> Query:
    s = cs._system(v, depth, threads, max_level)
    pre, post = cs.State(s, ""), cs.State(s, "post_")
    post.static = pre.static
    sw = swap([pre, post], k)
    mine, _ = step(s, pre, post, k, pc)
    zeros, _ = step(s, pre, post, 0, pc)
    theirs = z3.substitute(zeros, *sw)

    def explain(m: z3.ModelRef) -> str:
        here = z3.is_true(m.eval(mine, model_completion=True))
        lines = cs._show_state(pre, m, "s")
        lines += cs._show_state(post, m, "s'")
        lines.append(
            f"  thread {k} steps from s to s' at {steps.PC_NAMES[pc]}: {'yes' if here else 'no'}; "
            f"thread 0 steps from swap(s) to swap(s'): {'no' if here else 'yes'}"
        )
        return "\n".join(lines)

    return Query(
        [],
        [(f"step_{k}(s, s') iff step_0(swap_{k}(s), swap_{k}(s')) at {steps.PC_NAMES[pc]}", mine == theirs)],
        explain,
    )


def _whole(q: Query) -> Any:
    """A query as one formula: its premises imply its claims (valid iff the query is proved)."""
    return z3.Implies(z3.And([term(p) for p in q.premises]), z3.And([term(c) for _, c in q.claims]))


def _query_query(
    v: Variant, depth: int, threads: int, k: int, pc: int, max_level: int, build: Build
) -> Query:
    """Thread ``k``'s obligation (premises => claims) equals thread 0's with the threads relabelled."""
    mine, zero = build(v, k, pc), build(v, 0, pc)
    s = cs._system(v, depth, threads, max_level)
    # The builders name their variables alike (same tags), so one substitution relates them.
    pre, post = cs.State(s, ""), cs.State(s, "post_")
    sw = swap([pre, post], k)
    fk = _whole(mine)
    f0 = z3.substitute(_whole(zero), *sw)
    return Query(
        [],
        [
            (
                f"thread {k}'s query at {steps.PC_NAMES[pc]} is thread 0's with threads 0 and {k} exchanged",
                fk == f0,
            )
        ],
        mine.explain,
    )


def obligations(
    depth: int,
    threads: int,
    max_level: int = 0,
    *,
    lin: bool = True,
    inv: cs.Invariant | None = None,
    step: Step | None = None,
    prefix: str = "csym",
    subject: Variant | None = None,
) -> list[Obligation]:
    """The symmetry obligations of one configuration: for each ``k`` in ``1..threads-1``, ``Inv``'s
    and, per pc, the step's, the whole ``csteps`` query's (``{prefix}_query``) and with ``lin``
    the whole ``clin`` query's. ``inv``, ``step``, ``prefix`` and ``subject`` check another
    invariant or step (``topdown_steps``, a mutant; the whole queries use ``inv``, not ``step``)."""
    from nbbs.proofs._variant import COUNTED

    the_inv = inv or cs.invariant
    the_step = step or cs._step
    suffix = f"_T{threads}" + (f"_ml{max_level}" if max_level else "")
    pcs = cs.pcs(subject or COUNTED, depth, threads, max_level)

    def steps_query(v: Variant, k: int, pc: int) -> Query:
        return cs._step_query(v, depth, threads, k, pc, max_level, inv)

    def lin_query(v: Variant, k: int, pc: int) -> Query:
        return counted_lin._lin_query(v, depth, threads, k, pc, max_level, "release")

    builds: list[tuple[str, Build]] = [("query", steps_query)]
    if lin:
        builds.append(("lin", lin_query))
    out: list[Obligation] = []
    for k in range(1, threads):

        def by_inv(kk: int = k) -> Callable[[Variant], Query]:
            return lambda v: _inv_query(v, depth, threads, kk, max_level, the_inv)

        out.append(
            Obligation(
                f"{prefix}_inv{suffix}_t{k}",
                "steps",
                depth,
                f"{threads} threads: Inv is symmetric under exchanging threads 0 and {k}",
                by_inv(),
            )
        )
        for pc in pcs:

            def by_step(kk: int = k, p: int = pc) -> Callable[[Variant], Query]:
                return lambda v: _step_query(v, depth, threads, kk, p, max_level, the_step)

            out.append(
                Obligation(
                    f"{prefix}_step{suffix}_t{k}@{steps.PC_NAMES[pc]}",
                    "steps",
                    depth,
                    f"{threads} threads: thread {k}'s step at {steps.PC_NAMES[pc]} is thread 0's, relabelled",
                    by_step(),
                )
            )
            for family, build in builds:

                def by_query(kk: int = k, p: int = pc, b: Build = build) -> Callable[[Variant], Query]:
                    return lambda v: _query_query(v, depth, threads, kk, p, max_level, b)

                out.append(
                    Obligation(
                        f"{prefix}_{family}{suffix}_t{k}@{steps.PC_NAMES[pc]}",
                        "steps",
                        depth,
                        f"{threads} threads: thread {k}'s {family} query at {steps.PC_NAMES[pc]} is "
                        "thread 0's, relabelled",
                        by_query(),
                    )
                )
    return out
