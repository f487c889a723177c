"""Thread symmetry of the bounded step-level encoding (``proofs/counted_sym.py``): proved for
``counted``'s invariant, step and linearization claims, and broken, with a readable
counterexample, by an invariant or a step that singles out one thread."""

import dataclasses
import json
from typing import Any

import pytest
import z3
from click.testing import CliRunner
from conftest import DEEP

from nbbs.cli import main as cli
from nbbs.model import steps
from nbbs.proofs import counted_lin, counted_sym, obligations
from nbbs.proofs import counted_steps as cs
from nbbs.proofs._obligation import prove
from nbbs.proofs._variant import COUNTED

DEEP_ONLY = [pytest.mark.deep, pytest.mark.skipif(not DEEP, reason="HYPOTHESIS_PROFILE=deep (about 15 s)")]


def _lopsided_invariant(st: cs.State) -> list[tuple[str, Any]]:
    """``Inv`` plus a conjunct about thread 1 alone (a mutant)."""
    cas = [o for o in st.s.ops if o.pc == steps.C_CAS]
    return [*cs.invariant(st), ("thread 1 is never at climb-cas", z3.Not(st.among(1, cas)))]


def _lopsided_step(
    s: cs.System, pre: cs.State, post: cs.State, k: int, pc: int
) -> tuple[Any, list[tuple[str, Any]]]:
    """``counted_steps``' step, except that thread 1 may not write the root (a mutant)."""
    move, cases = cs._step(s, pre, post, k, pc)
    return (z3.And(move, post.w[1] == pre.w[1]) if k == 1 else move), cases


@pytest.mark.parametrize("depth", [1, pytest.param(2, marks=DEEP_ONLY)])
def test_every_thread_of_three_is_thread_0_relabelled_in_inv_step_and_both_queries(depth: int) -> None:
    obs = counted_sym.obligations(depth, 3)
    assert len(obs) == 2 * (1 + 3 * len(cs.pcs(COUNTED, depth, 3)))
    for ob in obs:
        p = prove(ob, COUNTED)
        assert p.proved, p.report()


def test_an_invariant_that_singles_out_thread_1_fails_the_symmetry_and_names_the_conjunct() -> None:
    (ob,) = [o for o in counted_sym.obligations(2, 2, inv=_lopsided_invariant) if "_inv_" in o.name]
    p = prove(ob, COUNTED)
    assert not p.proved and not p.vacuous
    text = p.counterexample
    assert "swap(s): threads 0 and 1 relabelled" in text
    assert "Inv conjuncts that differ: thread 1 is never at climb-cas" in text
    assert "alloc:climb-cas" in text


def test_a_step_that_singles_out_thread_1_fails_the_symmetry_where_it_writes_the_root() -> None:
    obs = counted_sym.obligations(1, 2, step=_lopsided_step, lin=False)
    results = {ob.name: prove(ob, COUNTED) for ob in obs}
    failed = [p for p in results.values() if not p.proved]
    assert failed and not any(p.vacuous for p in failed)
    # done:ok writes nothing, so the mutant is symmetric there; occupy at the root is not.
    assert results["csym_step_T2_t1@done:ok"].proved
    assert not results["csym_step_T2_t1@alloc:occupy"].proved
    text = results["csym_step_T2_t1@alloc:occupy"].counterexample
    assert "thread 0 steps from swap(s) to swap(s'): yes" in text


@pytest.mark.parametrize(
    ("module", "builder", "family"), [(cs, "_step_query", "query"), (counted_lin, "_lin_query", "lin")]
)
def test_an_extra_claim_in_thread_1s_query_alone_fails_the_whole_query_symmetry_not_inv_or_step(
    monkeypatch: pytest.MonkeyPatch, module: Any, builder: str, family: str
) -> None:
    original = getattr(module, builder)

    def lopsided(v: Any, depth: int, threads: int, k: int, pc: int, ml: int, *rest: Any) -> Any:
        q = original(v, depth, threads, k, pc, ml, *rest)
        if k != 1:
            return q
        post = cs.State(cs._system(v, depth, threads, ml), "post_")
        return dataclasses.replace(q, claims=[*q.claims, ("the root stays zero", post.w[1] == 0)])

    monkeypatch.setattr(module, builder, lopsided)
    results = {ob.name: prove(ob, COUNTED) for ob in counted_sym.obligations(1, 2)}
    assert results["csym_inv_T2_t1"].proved and results["csym_step_T2_t1@alloc:occupy"].proved
    broken = results[f"csym_{family}_T2_t1@alloc:occupy"]
    assert not broken.proved and not broken.vacuous
    assert "thread 1's query at alloc:occupy is thread 0's" in broken.broken[0]
    assert "before (Inv holds), thread 1 steps at alloc:occupy" in broken.counterexample
    other = "lin" if family == "query" else "query"
    assert results[f"csym_{other}_T2_t1@alloc:occupy"].proved


def test_with_symmetry_only_thread_0s_bounded_queries_are_selected_and_the_symmetry_ones_are_added() -> None:
    names = [
        ob.name for ob in obligations.catalogue(2, 2, groups=(), steps_depth=2, threads=3, symmetric=True)
    ]
    assert "csteps_T3_t0@alloc:occupy" in names and "clin_T3_t0@alloc:occupy" in names
    assert not any(n.startswith(("csteps_T3_t1", "csteps_T3_t2", "clin_T3_t1", "clin_T3_t2")) for n in names)
    assert "csym_step_T3_t2@alloc:occupy" in names and "csym_inv_T3_t1" in names
    full = [ob.name for ob in obligations.catalogue(2, 2, groups=(), steps_depth=2, threads=3)]
    assert "csteps_T3_t2@alloc:occupy" in full and not any(n.startswith("csym") for n in full)


def test_nbbs_prove_with_symmetry_proves_thread_0_and_the_symmetry_of_three_threads_at_depth_1() -> None:

    args = [
        "prove",
        "--variant",
        "counted",
        "--symmetry",
        "--threads",
        "3",
        "--steps-depth",
        "1",
        "--depth-max",
        "1",
    ]
    result = CliRunner().invoke(cli.main, [*args, "--obligation", "cs", "--jobs", "1", "--json"])
    assert result.exit_code == 0, result.output
    names = [p["obligation"] for p in json.loads(result.output)["proofs"]]
    assert "csteps_T3_t0@alloc:occupy" in names and "csym_step_T3_t2@alloc:occupy" in names
    assert not any(n.startswith("csteps_T3_t1") for n in names)


@pytest.mark.parametrize("depth", [1, pytest.param(2, marks=DEEP_ONLY)])
def test_the_cheaper_variants_step_invariants_are_thread_symmetric_too(depth: int) -> None:
    # Generic over the variant: topdown_steps' own Inv and machine, counted_sym's queries.
    from nbbs.proofs import topdown_steps as ts

    for v in (ts.TOP_DOWN, ts.TOP_DOWN_NODE):
        for ob in counted_sym.obligations(depth, 3, lin=False, inv=ts.invariant, prefix="tsym", subject=v):
            p = prove(ob, v)
            assert p.proved, p.report()
