"""Linearizability of ``counted`` (``proofs/counted_lin.py``): the linearization points hold at
every (thread, pc) for 2 threads at depths 1-2 (``tests/test_proofs_counted.py`` proves them with
the other step-level obligations), and a misplaced point is caught."""

from nbbs.proofs import counted_lin
from nbbs.proofs._obligation import prove
from nbbs.proofs._variant import COUNTED


def test_each_linearization_obligation_holds_for_two_threads_at_depth_1() -> None:
    for ob in counted_lin.obligations(1, 2):
        p = prove(ob, COUNTED)
        assert p.proved, p.report()


def test_a_free_taking_effect_at_its_end_is_no_linearization_point_and_the_counterexample_says_why() -> None:
    failed = [
        p for p in (prove(ob, COUNTED) for ob in counted_lin.obligations(1, 2, point="end")) if not p.proved
    ]
    assert failed and not any(p.vacuous for p in failed)
    alloc = [
        p for p in failed if "a successful alloc takes n exactly when spec allows it" in " ".join(p.broken)
    ]
    assert alloc, [p.broken for p in failed]
    text = alloc[0].counterexample
    assert "abstract state (live blocks) before" in text and "free:unmark" in text and "done:ok" in text
