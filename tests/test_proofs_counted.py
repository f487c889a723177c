"""The z3 proofs of the ``counted`` variant: they hold, they can fail, and the step-level invariant
holds on the states the model checker reaches."""

import functools
import os

import pytest
import z3

from nbbs.check._mc import Checker, Config
from nbbs.model import bits, steps
from nbbs.proofs import counted_param, counted_steps, obligations
from nbbs.proofs._obligation import Proof, prove
from nbbs.proofs._variant import COUNTED, SHIPPED
from nbbs.proofs.mutants import COUNTED_MUTANTS

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"

STEPS = (
    obligations.catalogue(
        depth_max=2 if not DEEP else 3,
        groups=(),
        steps_depth=2 if not DEEP else 3,
        variant=COUNTED,
        threads=2,
    )
    + obligations.catalogue(
        depth_max=1, groups=(), steps_depth=1 if not DEEP else 3, variant=COUNTED, threads=3
    )
    + counted_steps.obligations(2, 2, max_level=1)
)
"""The step-level obligations: 2 threads at depths 1-2 and 3 threads at depth 1 (deep: 2 and 3
threads at depths 1-3), and 2 threads at depth 2 with ``max_order`` 1."""


def test_counted_is_no_longer_the_shipped_variant_but_its_proofs_still_default_to_counted() -> None:
    assert SHIPPED.name == bits.DEFAULT_VARIANT == "top_down_node" and SHIPPED is not COUNTED
    ob = STEPS[0]
    assert prove(ob).variant == "counted" and prove(ob).proved


@pytest.mark.parametrize("ob", STEPS, ids=[ob.label for ob in STEPS])
def test_each_step_level_obligation_is_proved(ob: obligations.Obligation) -> None:
    p = prove(ob)
    assert p.proved, p.report()


MUTATED = obligations.catalogue(2, variant=COUNTED, steps_depth=1, threads=2)


@functools.cache
def _failures(name: str) -> list[Proof]:
    _, variant = COUNTED_MUTANTS[name]
    return [p for p in obligations.run_all(MUTATED, variant) if not p.proved]


@pytest.mark.parametrize("name", sorted(COUNTED_MUTANTS))
def test_each_counted_mutant_breaks_a_bit_lemma_and_a_step_with_a_counterexample(name: str) -> None:
    failed = [p for p in _failures(name) if not p.vacuous]
    assert any(p.group == "bits" or p.group == "param" for p in failed), name
    stepped = [p for p in failed if p.group == "steps"]
    assert stepped, f"no step-level obligation caught {name}"
    text = stepped[0].counterexample
    assert "before (Inv holds)" in text and "after" in text and "Inv broken after the step at" in text
    assert all(p.counterexample and p.broken for p in failed)


def test_a_sequentially_visible_counted_mutant_breaks_the_refinement() -> None:
    refined = [p for p in _failures("climb_does_not_count") if p.group == "refine" and not p.vacuous]
    assert refined and "path, root first" in refined[0].counterexample


def _recode(w: int, src: int, dst: int) -> int:
    """A counted word with ``src``-bit counts as one with ``dst``-bit counts."""
    low = w & ((1 << bits.COUNT_SHIFT) - 1)
    c_r = (w >> bits.COUNT_SHIFT) & ((1 << src) - 1)
    c_l = w >> (bits.COUNT_SHIFT + src)
    return low | c_r << bits.COUNT_SHIFT | c_l << (bits.COUNT_SHIFT + dst)


def _inv_fails_on(cfg: Config, every: int) -> tuple[int, list[int]]:
    """Evaluate ``Inv`` on (every ``every``-th of) the model checker's reachable states of
    ``cfg``: how many were evaluated, and the indices of those where it does not hold."""
    c = Checker(cfg)
    c.run()
    sp = c.sp
    s = counted_steps.system(COUNTED, cfg.depth, cfg.threads, cfg.max_level)
    st = counted_steps.State(s, "")
    inv = z3.And([x for _, x in counted_steps.invariant(st)])
    src, dst = sp.m.transitions.count_bits, s.t.count_bits
    checked, bad = 0, []
    for k, state in enumerate(c.states):
        if k % every and not DEEP:
            continue
        words = sp.words_of(state)
        live = sp.sets[sp.static(state)]
        subst = [(st.w[x], z3.BitVecVal(_recode(words[x], src, dst), s.t.word_bits)) for x in s.nodes]
        subst += [(st.static[x], z3.BoolVal(x in live)) for x in s.nodes]
        for i, tid in enumerate(sp.tids(state)):
            op = sp.ops[tid]
            has_cur = op.pc in counted_steps._HAS_CUR
            cur = _recode(op.cur, src, dst) if has_cur else 0
            subst.append((st.op[i], z3.BitVecVal(s.ids[counted_steps._normal(op)], st.id_bits)))
            subst.append((st.cur[i], z3.BitVecVal(cur, s.t.word_bits)))
        if not z3.is_true(z3.simplify(z3.substitute(inv, *subst))):
            bad.append(k)
        checked += 1
    return checked, bad


@pytest.mark.parametrize(("depth", "threads", "every"), [(1, 2, 1), (2, 2, 41)])
def test_the_step_invariant_holds_on_the_model_checkers_reachable_states(
    depth: int, threads: int, every: int
) -> None:
    cfg = Config(threads=threads, depth=depth, variant="counted", properties=("a",))
    checked, bad = _inv_fails_on(cfg, every)
    assert checked > 10 and bad == []


def test_the_step_invariant_holds_on_the_scenario_that_breaks_corrected() -> None:
    """3 threads, depth 3 (ALGORITHM.md 2.5): every state the checker reaches, run with counted."""
    scenario = ((("alloc", 4), ("free", 4), ("alloc", 1)), (("alloc", 10), ("free", 10)), (("alloc", 11),))
    cfg = Config(threads=3, depth=3, variant="counted", initial="empty", properties=("a",), scenario=scenario)
    checked, bad = _inv_fails_on(cfg, 23)
    assert checked > 100 and bad == []


def test_the_state_check_sees_a_state_that_breaks_the_invariant() -> None:
    """The same evaluation on a broken run (a climb that does not count) finds states outside Inv."""
    from nbbs.proofs.mutants import COUNTED_MUTANTS

    broken = COUNTED_MUTANTS["climb_does_not_count"][1].at(3)
    _, bad = _inv_fails_on(Config(threads=2, depth=2, properties=("a",), transitions=broken), 41)
    assert bad


def test_a_damaged_invariant_is_not_inductive() -> None:
    """Forget that a free about to release still claims its path: the release step breaks Inv."""
    original = counted_steps.claims

    def damaged(op: steps.OpState, max_level: int) -> frozenset[int]:
        return frozenset() if op.pc == steps.F_RELEASE else original(op, max_level)

    counted_steps._tables.cache_clear()
    counted_steps._system.cache_clear()
    try:
        counted_steps.claims = damaged  # type: ignore[assignment]
        proofs = [prove(ob) for ob in counted_steps.obligations(1, 2)]
    finally:
        counted_steps.claims = original
        counted_steps._tables.cache_clear()
        counted_steps._system.cache_clear()
    failed = {p.obligation for p in proofs if not p.proved}
    assert "csteps_T2_t0@done:ok" in failed or "csteps_T2_t0@free:release" in failed


def test_the_frame_check_catches_a_step_that_claims_where_it_does_not_write() -> None:
    original = counted_steps.claims

    def damaged(op: steps.OpState, max_level: int) -> frozenset[int]:
        extra = frozenset({1}) if op.pc == steps.C_LOAD and op.n != 1 else frozenset()
        return original(op, max_level) | extra

    try:
        counted_steps.claims = damaged  # type: ignore[assignment]
        bad = counted_param.frame_violations(COUNTED, 2)
    finally:
        counted_steps.claims = original
    assert bad and counted_param.frame_violations(COUNTED, 2) == []


def test_forked_processes_prove_the_same_obligations_in_the_same_order() -> None:
    todo = obligations.catalogue(2, steps_depth=1)
    alone = [(p.obligation, p.depth, p.proved) for p in obligations.run_all(todo)]
    forked = [(p.obligation, p.depth, p.proved) for p in obligations.run_all(todo, jobs=2)]
    assert forked == alone and all(proved for *_, proved in alone)
    _, broken = COUNTED_MUTANTS["climb_does_not_count"]
    failed = [p for p in obligations.run_all(todo, broken, jobs=2) if not p.proved]
    assert failed and failed[0].counterexample
