"""Issue 12's variants: ``stop-early`` (unsafe, kept with its counterexample) and ``top-down``.

``top-down`` passes the model checker here at the small configurations (the larger ones are in
the deep profile and ``bench/modelcheck_figures.py --variant top-down``); each test next to it
shows a broken neighbour caught by the same check, so none of them passes vacuously.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from nbbs.check import differential
from nbbs.check._allocators import allocator_classes
from nbbs.check._mc import Config, check
from nbbs.check.bridge import Counterexample, reproduce
from nbbs.check.trace import Tracing
from nbbs.impl.nbbs import NBBS
from nbbs.model import bits, steps, tree
from nbbs.model.steps import Kind
from nbbs.proofs import topdown_steps
from nbbs.proofs._obligation import Obligation, prove

DATA = Path(__file__).parent / "data" / "counterexamples"
SMALL = [(2, 1), (3, 1), (2, 2)]


SAFE = ["top_down", "top_down_node"]


@pytest.mark.parametrize("variant", SAFE)
@pytest.mark.parametrize(("threads", "depth"), SMALL, ids=[f"{t}threads-depth{d}" for t, d in SMALL])
def test_the_top_down_variants_pass_every_property(variant: str, threads: int, depth: int) -> None:
    result = check(Config(threads, depth, variant=variant))
    assert result.ok, {p: v.message for p, v in result.violations.items()}
    assert result.complete and result.quiescent > 0


@pytest.mark.parametrize("variant", SAFE)
def test_the_top_down_variants_pass_below_a_max_order(variant: str) -> None:
    result = check(Config(2, 2, max_order=1, variant=variant))
    assert result.ok, {p: v.message for p, v in result.violations.items()}


if os.environ.get("HYPOTHESIS_PROFILE") == "deep":
    DEEP_CONFIGS = [(3, 2), (2, 3)]

    @pytest.mark.parametrize(
        ("threads", "depth"), DEEP_CONFIGS, ids=[f"{t}threads-depth{d}" for t, d in DEEP_CONFIGS]
    )
    @pytest.mark.parametrize("variant", SAFE)
    def test_the_top_down_variants_pass_the_larger_configurations(
        variant: str, threads: int, depth: int
    ) -> None:
        result = check(Config(threads, depth, variant=variant))
        assert result.ok, {p: v.message for p, v in result.violations.items()}

    @pytest.mark.parametrize("variant", SAFE)
    def test_the_top_down_variants_pass_in_scan_mode_with_checked_frees(variant: str) -> None:
        # About 30 s on the shared machine: deep profile only.
        result = check(Config(2, 2, variant=variant, mode="scan", checked_free=True))
        assert result.ok, {p: v.message for p, v in result.violations.items()}


def test_the_same_checker_finds_the_stop_early_overlap() -> None:
    # top-down's neighbour without the descent: the checker must not pass it.
    result = check(Config(2, 2, variant="stop_early", stop_at_first=True, properties=("a",)))
    assert "a" in result.violations


def test_a_top_down_descent_that_never_gives_back_a_surplus_claim_loses_blocks() -> None:
    # With climb_stops never true, the ascent always goes to max_level and the descent never
    # sees that another one claimed a side first, so it never takes back its claim above:
    # the counts keep claims the free (which stops where a count stays non-zero) never removes.
    broken = dataclasses.replace(bits.TOP_DOWN, climb_stops=bits.never)
    result = check(Config(2, 2, transitions=broken, stop_at_first=True, properties=("b",)))
    assert "b" in result.violations


def test_the_stop_early_counterexample_does_not_reproduce_on_top_down() -> None:
    cx = Counterexample.load(DATA / "stop-early-a.json")
    fixed = Counterexample(
        "top_down", cx.depth, cx.max_order, cx.initial_live, cx.threads, cx.schedule, cx.property
    )
    assert not reproduce(fixed).reproduced


def test_the_three_thread_stop_early_overlap_from_the_empty_tree() -> None:
    # ALGORITHM.md 1.4.1's second schedule: no rollback needed, a climb still in progress.
    ops = ((("alloc", 8),), (("alloc", 9),), (("alloc", 1),))
    for variant, fails in (("stop_early", True), ("top_down", False)):
        cfg = Config(3, 3, variant=variant, scenario=ops, initial="empty", properties=("a",))
        assert ("a" in check(cfg).violations) == fails, variant


@pytest.mark.parametrize("variant", SAFE)
def test_the_top_down_allocators_agree_with_the_spec_sequentially(variant: str) -> None:
    run_state_machine_as_test(
        differential.machine(allocator_classes()[variant.replace("-", "_")], 5),
        settings=settings(max_examples=20, database=None, suppress_health_check=list(HealthCheck)),
    )


def test_top_down_quiescent_words_are_stop_early_s_canonical_ones() -> None:
    a = NBBS(4, page_size=1, variant="top_down")
    got = [a.alloc(0, hint=p) for p in (0, 1, 5, 9)]
    assert got == [0, 1, 5, 9]
    assert tree.inv_quiescent(a.words(), 4, 0, a.transitions)
    # Root: left side counts node 2's two claimed sides, right side node 3's one.
    show = a.transitions.show
    assert show(a.words()[1]) == "L=2 R=1"
    broken = list(a.words())
    broken[1] = bits.TOP_DOWN.climb(broken[1], 0)
    assert not tree.inv_quiescent(broken, 4, 0, a.transitions)


def test_top_down_touches_nothing_above_the_first_claimed_ancestor() -> None:
    # Page 0 is held. Page 1 (node 1025) is its buddy: the parent (512) has page 1's side
    # unclaimed, the grandparent (256) has node 512's side claimed. The alloc of page 1
    # loads 512 and 256, counts 256 and 512 (top down), and reads nothing above 256.
    tracing = Tracing()
    a = NBBS(10, page_size=1, variant="top_down", backend=tracing)
    assert a.alloc(0, hint=0) == 0
    assert tracing.words is not None
    tracing.words.events.clear()
    assert a.alloc(0, hint=1) == 1
    assert {e.node for e in tracing.events} == {1025, 512, 256}
    assert [(e.node, e.kind) for e in tracing.events if e.kind == Kind.CAS] == [
        (1025, Kind.CAS),
        (256, Kind.CAS),
        (512, Kind.CAS),
    ]
    # counted, for contrast, counts every ancestor up to the root.
    counted = Tracing()
    c = NBBS(10, page_size=1, variant="counted", backend=counted)
    c.alloc(0, hint=0)
    assert counted.words is not None
    counted.words.events.clear()
    c.alloc(0, hint=1)
    assert 1 in {e.node for e in counted.events}


TOP_DOWN_STEPS = topdown_steps.obligations(1, 2)


@pytest.mark.parametrize("ob", TOP_DOWN_STEPS, ids=[ob.name for ob in TOP_DOWN_STEPS])
def test_the_top_down_step_invariant_holds_for_two_threads_at_depth_one(ob: Obligation) -> None:
    # Depths 2 and 3 and 3 threads: bench figures in ALGORITHM.md 1.4.2 (minutes each).
    p = prove(ob, topdown_steps.TOP_DOWN)
    assert p.proved and not p.vacuous, p.counterexample


def test_a_top_down_invariant_that_forgets_the_surplus_claim_is_not_inductive() -> None:
    """Forget the claim a descent that joined must take back: the undo's CAS breaks Inv."""
    original = topdown_steps.tokens

    def damaged(op: steps.OpState, max_level: int) -> list[tuple[int, int]]:
        got = original(op, max_level)
        return got[1:] if op.pc in (steps.U_LOAD, steps.U_CAS) else got

    topdown_steps._tables.cache_clear()
    try:
        topdown_steps.tokens = damaged  # type: ignore[assignment]
        # Depth 2: at depth 1 the anchor is the root, right above every page, so nothing joins.
        wanted = {"tsteps_T2_t0@alloc:descend-cas", "tsteps_T2_t0@alloc:undo-cas"}
        obs = [ob for ob in topdown_steps.obligations(2, 2) if ob.name in wanted]
        assert len(obs) == 2
        proofs = [prove(ob, topdown_steps.TOP_DOWN) for ob in obs]
    finally:
        topdown_steps.tokens = original
        topdown_steps._tables.cache_clear()
    failed = {p.obligation for p in proofs if not p.proved}
    assert failed & wanted, failed


def test_top_down_node_counts_only_the_parent_when_the_buddy_is_held() -> None:
    # One token per child: page 1's parent (512) already has a claim (page 0), so it is the
    # anchor. The alloc occupies 1025 and counts 512; the free uncounts 512 and stops there.
    tracing = Tracing()
    a = NBBS(10, page_size=1, variant="top_down_node", backend=tracing)
    assert a.alloc(0, hint=0) == 0
    assert tracing.words is not None
    tracing.words.events.clear()
    assert a.alloc(0, hint=1) == 1
    a.free(1)
    # (The free's argument check loads the nodes at page 1's address from the root down.)
    assert [(e.node, e.kind) for e in tracing.events if e.kind != Kind.LOAD] == [
        (1025, Kind.CAS),
        (512, Kind.CAS),
        (1025, Kind.CAS),  # the release: a CAS from the word occupy wrote (one of racing frees wins)
        (512, Kind.CAS),
    ]
    assert tree.inv_quiescent(a.words(), 10, 0, a.transitions)
