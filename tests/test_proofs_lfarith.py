"""Lock-freedom's arithmetic (``proofs/counted_lfarith.py``) and the unrolled height induction
(``proofs/counted_induction.py``): the counter abstractions prove the README's bounds over
symbolic ``T``, ``mu_max``, ``D``, ``max_level``; a wrong bound is refuted with the values that
break it; the step facts they rest on hold at cheap pcs (every pc: deep) and a wrong ``mu_max``
or a scan that never gives up breaks them; the height induction is proved unrolled, and a
circular step is refuted."""

from typing import Any

import pytest
import z3
from conftest import DEEP

from nbbs.proofs import counted_induction
from nbbs.proofs import counted_lfarith as lf
from nbbs.proofs._obligation import Obligation, prove
from nbbs.proofs._variant import COUNTED
from nbbs.proofs.mutants import SCAN_MUTANTS


def _ob(name: str, scan: bool = False, **kw: Any) -> Obligation:
    (ob,) = [o for o in lf.step_obligations(scan, **kw) if o.name.endswith("@" + name)]
    return ob


def test_the_counter_abstractions_prove_the_write_bounds_and_the_run_bounds_for_symbolic_parameters() -> None:
    for ob in lf.arith_obligations():
        p = prove(ob, COUNTED)
        assert p.proved, p.report()


def test_an_attempt_bound_one_too_small_is_refuted_by_a_run_that_writes_one_more() -> None:
    def wrong(*xs: Any, **kw: Any) -> tuple[list[Any], list[tuple[str, Any]]]:
        prem, claims = lf.op_bounds_claims(*xs, **kw)
        depth, ml, writes = xs[0], xs[1], xs[4]
        attempt = z3.And(xs[7] == 1, xs[6] == lf._q(xs[7], xs[8], 2 * (xs[2] - ml) + 2))
        return prem, [
            *claims,
            ("attempt: 2 (D - max_level) + 1", z3.Implies(attempt, writes <= 2 * (depth - ml) + 1)),
        ]

    p = prove(Obligation("clf_op_bounds", "every", None, "", lambda v: lf._op_bounds(wrong)), COUNTED)
    assert not p.proved and not p.vacuous
    assert p.broken == ("attempt: 2 (D - max_level) + 1",)
    assert "writes = " in p.counterexample


def test_steps_between_starts_bounded_without_the_loads_factor_is_refuted() -> None:
    def wrong(
        t: Any, mu: Any, p: Any, phi: Any, b0: Any, b: Any, s: Any, k: Any, n: Any
    ) -> list[tuple[str, Any]]:
        return [("fewer than T mu_max + 1 steps between two starts", k < t * mu + 1)]

    p = prove(Obligation("clf_run_bounds", "every", None, "", lambda v: lf._run_bounds(wrong)), COUNTED)
    assert not p.proved and not p.vacuous
    assert p.broken == ("fewer than T mu_max + 1 steps between two starts",)
    assert "k = " in p.counterexample and "T = " in p.counterexample


@pytest.mark.parametrize(
    ("mutant", "build"),
    [
        ("a write from rank 0", lambda: lf._op_write("a write starts from rank >= 1")),
        ("an alloc ending with rank left", lambda: lf._op_write("an alloc reaching left 0 has rank 0")),
        ("a step that raises the measure", lambda: lf._op_other("a step does not raise the measure")),
        ("nu up to 3, not 2", lambda: lf._run_lex(3)),
        ("a start with every thread in flight", lambda: lf._run_step(False)),
    ],
)
def test_each_counter_abstraction_step_fails_without_the_fact_it_rests_on(mutant: str, build: Any) -> None:
    p = prove(Obligation(mutant, "every", None, "", lambda v: build()), COUNTED)
    assert not p.proved and not p.vacuous, mutant
    assert " = " in p.counterexample


@pytest.mark.parametrize("pc", ["done:fail", "alloc:occupy", "free:release"])
def test_the_step_facts_the_arithmetic_uses_hold_at_cheap_pcs_in_attempt_mode(pc: str) -> None:
    p = prove(_ob(pc), COUNTED)
    assert p.proved, p.report()


def test_a_mu_max_of_64_times_2_to_the_d_minus_max_level_is_refuted_by_a_scan_of_pages() -> None:
    def readme_before(depth: Any, ml: Any, scan: bool) -> Any:
        return (z3.BitVecVal(1, 63) << (depth - ml)) * 64 + 2 * (depth - ml) + 2

    p = prove(_ob("alloc:load", True, mu_bound=readme_before), COUNTED)
    assert not p.proved and not p.vacuous
    assert "mu = 64 left + rank <= mu_max" in p.broken
    assert "mu_max" in p.counterexample and "left" in p.counterexample


def test_a_scan_that_never_gives_up_raises_the_measure_where_its_load_moves_on() -> None:
    p = prove(_ob("alloc:load", True), SCAN_MUTANTS["scan_never_gives_up"][1])
    assert not p.proved and not p.vacuous
    assert any("the measure does not rise" in b for b in p.broken), p.broken


@pytest.mark.deep
@pytest.mark.skipif(not DEEP, reason="about 60 s of CPU: run with HYPOTHESIS_PROFILE=deep")
@pytest.mark.parametrize("scan", [False, True])
def test_every_step_fact_holds_at_every_pc(scan: bool) -> None:
    for ob in lf.step_obligations(scan):
        p = prove(ob, COUNTED)
        assert p.proved, p.report()


def test_the_height_induction_unrolled_over_heights_0_to_28_is_proved_for_an_uninterpreted_p() -> None:
    (ob,) = counted_induction.obligations()
    p = prove(ob, COUNTED)
    assert p.proved, p.report()


def test_a_height_step_that_assumes_p_at_the_node_itself_is_circular_and_refuted() -> None:
    (ob,) = counted_induction.obligations(lambda a: (2 * a, a))
    p = prove(ob, COUNTED)
    assert not p.proved and not p.vacuous
    assert p.broken[0].startswith("height 1:") and "step uses nodes" in p.counterexample
