"""The top-down variants' last hand-argued pieces in z3 (``proofs/topdown_arith.py``): lock-freedom's
arithmetic with the top-down rank and bounds, the unrolled inductions of ``below``, ``up``,
``down``, and the thread symmetry of the bounded queries; each refuted, with a readable
counterexample, when its bound is wrong, its step circular or its invariant lopsided."""

import dataclasses
from typing import Any

import pytest
import z3
from conftest import DEEP

from nbbs.model import steps
from nbbs.proofs import counted_lfarith as lf
from nbbs.proofs import obligations
from nbbs.proofs import topdown_arith as ta
from nbbs.proofs import topdown_steps as ts
from nbbs.proofs._obligation import Obligation, prove
from nbbs.proofs.mutants import TOPDOWN_CLOSE_MUTANTS

DEEP_ONLY = [pytest.mark.deep, pytest.mark.skipif(not DEEP, reason="HYPOTHESIS_PROFILE=deep")]


def _lfbound(pc: str, per_node: bool = True, scan: bool = False, **kw: Any) -> Obligation:
    (ob,) = [o for o in ta.lfbound_obligations(per_node, scan, **kw) if o.name.endswith("@" + pc)]
    return ob


def test_the_top_down_counter_abstractions_prove_the_top_down_write_and_run_bounds() -> None:
    obs = ta.arith_obligations()
    assert [o.name for o in obs] == [
        "tlf_op_write",
        "tlf_op_other",
        "tlf_op_bounds",
        "tlf_run_lex",
        "tlf_run_step",
        "tlf_run_bounds",
    ]
    for ob in obs:
        p = prove(ob, ts.TOP_DOWN_NODE)
        assert p.proved, p.report()
    (bounds,) = [o for o in obs if o.name == "tlf_op_bounds"]
    claims = [name for name, _ in bounds.build(ts.TOP_DOWN_NODE).claims]
    assert "an alloc attempt makes at most 4 (D - max_level) + 4 successful writes" in claims
    assert "a scan of order o = D - L makes at most 2**(D-o) (4 (D - o - max_level) + 4)" in claims


def test_a_top_down_attempt_bound_one_too_small_is_refuted_by_a_run_that_writes_one_more() -> None:
    sh = ta.shape(True)

    def wrong(*xs: Any, **kw: Any) -> tuple[list[Any], list[tuple[str, Any]]]:
        prem, claims = lf.op_bounds_claims(*xs, **kw)
        depth, ml, writes = xs[0], xs[1], xs[4]
        attempt = z3.And(xs[7] == 1, xs[6] == lf._q(xs[7], xs[8], 4 * (xs[2] - ml) + 4))
        return prem, [
            *claims,
            ("attempt: 4 (D - max_level) + 3", z3.Implies(attempt, writes <= 4 * (depth - ml) + 3)),
        ]

    ob = Obligation("tlf_op_bounds", "every", None, "", lambda v: lf._op_bounds(wrong, sh))
    p = prove(ob, ts.TOP_DOWN_NODE)
    assert not p.proved and not p.vacuous
    assert p.broken == ("attempt: 4 (D - max_level) + 3",)
    assert "writes = " in p.counterexample and "rank0 = " in p.counterexample


@pytest.mark.parametrize("per_node", [True, False])
@pytest.mark.parametrize("pc", ["done:fail", "alloc:occupy", "free:release"])
def test_the_top_down_step_facts_hold_at_cheap_pcs_in_attempt_mode(per_node: bool, pc: str) -> None:
    p = prove(_lfbound(pc, per_node), ts.TOP_DOWN_NODE if per_node else ts.TOP_DOWN)
    assert p.proved, p.report()


def test_counteds_attempt_budget_as_the_top_down_rank_bound_is_refuted_at_the_candidates_load() -> None:
    # An attempt's ascent loads count in the top-down rank: 2 (L - max_level) + 2 is too small.
    small = dataclasses.replace(
        ta.shape(True), attempt_writes=lambda ln, ml: 2 * (ln - ml) + 2, attempt_text="2 (L - max_level) + 2"
    )
    (ob,) = [
        o
        for o in lf.step_obligations(False, shape=small, prefix="tnevery", subject=ts.TOP_DOWN_NODE)
        if o.name.endswith("@alloc:load")
    ]
    p = prove(ob, ts.TOP_DOWN_NODE)
    assert not p.proved and not p.vacuous
    assert "rank <= 2 (level(n) - max_level) + 2" in p.broken
    assert "rank " in p.counterexample and "max_level" in p.counterexample


def test_counteds_mu_max_of_64_per_left_is_refuted_for_top_down_by_a_scan() -> None:
    def counted_mu(depth: Any, ml: Any, scan: bool) -> Any:
        return (z3.BitVecVal(1, 63) << depth) * 64 + 4 * (depth - ml) + 4

    p = prove(_lfbound("alloc:load", scan=True, mu_bound=counted_mu), ts.TOP_DOWN_NODE)
    assert not p.proved and not p.vacuous
    assert "mu = 128 left + rank <= mu_max" in p.broken
    assert "left" in p.counterexample and "mu_max" in p.counterexample


def test_a_top_down_scan_that_never_gives_up_raises_the_measure_where_its_load_moves_on() -> None:
    _names, _what, variant = TOPDOWN_CLOSE_MUTANTS["scan_never_gives_up"]
    p = prove(_lfbound("alloc:load", scan=True, subject=variant), variant)
    assert not p.proved and not p.vacuous
    assert any("the measure does not rise" in b for b in p.broken), p.broken


@pytest.mark.deep
@pytest.mark.skipif(not DEEP, reason="about 2 x 2 x 60 s of CPU: run with HYPOTHESIS_PROFILE=deep")
@pytest.mark.parametrize("per_node", [True, False])
@pytest.mark.parametrize("scan", [False, True])
def test_every_top_down_step_fact_holds_at_every_pc(per_node: bool, scan: bool) -> None:
    v = ts.TOP_DOWN_NODE if per_node else ts.TOP_DOWN
    for ob in ta.lfbound_obligations(per_node, scan):
        p = prove(ob, v)
        assert p.proved, p.report()


def test_the_inductions_of_below_up_and_down_unrolled_over_0_to_28_are_proved_for_any_p() -> None:
    obs = ta.induction_obligations()
    assert [o.name for o in obs] == ["tind_below", "tind_up", "tind_down"]
    for ob in obs:
        p = prove(ob, ts.TOP_DOWN_NODE)
        assert p.proved, p.report()
        assert len(ob.build(ts.TOP_DOWN_NODE).claims) == 30


@pytest.mark.parametrize(
    ("name", "circular"),
    [
        ("tind_below", lambda x: (x, 2 * x)),
        ("tind_up", lambda x: (x,)),
        ("tind_down", lambda x: (x,)),
    ],
)
def test_an_induction_step_that_assumes_p_at_the_node_itself_is_circular_and_refuted(
    name: str, circular: Any
) -> None:
    (ob,) = [o for o in ta.induction_obligations({name: circular}) if o.name == name]
    p = prove(ob, ts.TOP_DOWN_NODE)
    assert not p.proved and not p.vacuous
    assert p.broken[0].split(":")[0] in ("height 1", "distance 1"), p.broken
    assert "step uses nodes" in p.counterexample and "node x = " in p.counterexample


def test_with_symmetry_the_top_down_bounded_queries_are_thread_0s_and_the_symmetry_proof() -> None:
    names = [ob.name for ob in ts.obligations(1, 3, subject=ts.TOP_DOWN_NODE, symmetric=True)]
    assert "tnsteps_T3_t0@alloc:occupy" in names
    assert not any(n.startswith(("tnsteps_T3_t1", "tnsteps_T3_t2")) for n in names)
    sym = {"tnsym_inv_T3_t1", "tnsym_step_T3_t2@alloc:occupy", "tnsym_query_T3_t2@alloc:occupy"}
    assert sym <= set(names)
    assert not any("_lin_" in n for n in names)
    full = [ob.name for ob in ts.obligations(1, 3, subject=ts.TOP_DOWN)]
    assert "tsteps_T3_t2@alloc:occupy" in full and not any(n.startswith("tsym") for n in full)


@pytest.mark.parametrize("per_node", [True, pytest.param(False, marks=DEEP_ONLY)])
def test_the_top_down_symmetry_obligations_of_three_threads_at_depth_1_are_proved(per_node: bool) -> None:
    v = ts.TOP_DOWN_NODE if per_node else ts.TOP_DOWN
    obs = ta.sym_obligations(1, 3, per_node=per_node)
    assert obs
    for ob in obs:
        p = prove(ob, v)
        assert p.proved, p.report()


def test_a_top_down_invariant_that_singles_out_thread_1_fails_the_symmetry_and_names_the_conjunct() -> None:
    from nbbs.proofs import counted_sym

    def lopsided(st: Any) -> list[tuple[str, Any]]:
        cas = [o for o in st.s.ops if o.pc == steps.D_CAS]
        return [*ts.invariant(st), ("thread 1 is never at descend-cas", z3.Not(st.among(1, cas)))]

    obs = counted_sym.obligations(2, 2, lin=False, inv=lopsided, prefix="tnsym", subject=ts.TOP_DOWN_NODE)
    (ob,) = [o for o in obs if "_inv_" in o.name]
    p = prove(ob, ts.TOP_DOWN_NODE)
    assert not p.proved and not p.vacuous
    assert "Inv conjuncts that differ: thread 1 is never at descend-cas" in p.counterexample


def test_the_top_down_levels_list_the_arithmetic_and_inductions_cheaply_and_the_step_facts_from_all() -> None:
    def names(top_down: str) -> set[str]:
        return {ob.name for ob in obligations.catalogue(1, groups=("every",), top_down=top_down)}

    frame = names("frame")
    assert {"tlf_op_bounds", "tind_below", "tind_up", "tind_down"} <= frame
    assert not [n for n in frame if "_lfbound@" in n]
    everything = names("all")
    assert {"tnevery_lfbound@alloc:load", "tdevery_lfbound@alloc:load"} <= everything
    assert not [n for n in everything if "_scan_lfbound@" in n]
    assert "tnevery_scan_lfbound@alloc:load" in names("scan")
    assert len([n for n in names("scan") if n.startswith("tlf_")]) == 6
