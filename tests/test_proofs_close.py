"""``proofs/counted_close.py``: the pieces of the every-depth argument that were argued by hand
(initial state, the scan's skip, the summary's meaning and composition, lock-freedom's global
measure) are z3 obligations; the cheap ones are proved here, each can fail (a mutant or a
broken definition gives a readable counterexample), and every scan-mode obligation family of
``counted_every`` is broken by a mutant."""

import functools
import os

import pytest
import z3

from nbbs.model import steps
from nbbs.proofs import counted_close, counted_every
from nbbs.proofs._obligation import Obligation, Proof, prove
from nbbs.proofs._variant import COUNTED
from nbbs.proofs.mutants import COUNTED_MUTANTS, EVERY_MUTANTS, SCAN_MUTANTS

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"

ALL = counted_close.obligations("scan")


def _ob(name: str) -> Obligation:
    obs = (
        ALL
        + counted_every.obligations(True)
        + counted_every.lf_obligations(True)
        + counted_every.lin_obligations(True)
    )
    return next(ob for ob in obs if ob.name == name)


def _proved(p: Proof) -> None:
    assert p.proved, p.report()


def _broken(p: Proof, claim: str, *shown: str) -> None:
    assert not p.proved and not p.vacuous, p.report()
    assert any(claim in b for b in p.broken), p.broken
    for text in shown:
        assert text in p.counterexample, p.counterexample


CHEAP = [
    "cevery_init_page",
    "cevery_init_above",
    "cevery_sum_commute",
    "cevery_sum_frame",
    "cevery_sum_static_page",
    "cevery_sum_empty",
    "cevery_sum_add@alloc:climb-cas",
    "cevery_quiescent@done:fail",
    "cevery_compose@alloc:climb-cas",
    "cevery_lfglobal@alloc:occupy",
    "cevery_scan_skip@alloc:climb-load",
]


@pytest.mark.parametrize("name", CHEAP)
def test_a_closing_obligation_is_proved(name: str) -> None:
    _proved(prove(_ob(name), COUNTED))


@pytest.mark.deep
@pytest.mark.parametrize("ob", ALL if DEEP else [], ids=lambda ob: ob.name)
def test_every_closing_obligation_is_proved(ob: Obligation) -> None:
    _proved(prove(ob, COUNTED))


def test_the_default_every_level_runs_the_cheap_closing_obligations_and_scan_adds_the_skip() -> None:
    frame = [ob.name for ob in counted_close.obligations("frame")]
    assert "cevery_init_node" in frame and "cevery_compose@free:release" in frame
    assert not [n for n in frame if "lfglobal" in n or "skip" in n]
    attempt = [ob.name for ob in counted_close.obligations("attempt")]
    assert "cevery_lfglobal@alloc:climb-load" in attempt and not [n for n in attempt if "_scan_" in n]
    scan = [ob.name for ob in counted_close.obligations("scan")]
    assert "cevery_scan_skip@rollback:unmark-cas" in scan and "cevery_scan_lfglobal@alloc:load" in scan
    assert counted_close.obligations("none") == []


@pytest.mark.parametrize(
    ("mutant", "name", "claim", "shown"),
    [
        # the initial state: a quiescent invariant that checks the wrong count
        ("node_ok_reads_left_twice", "cevery_init_node", "c_R = the others' total", "child R ="),
        # quiescence: the same broken quiescent invariant is not what Inv gives with nobody in flight
        ("node_ok_reads_left_twice", "cevery_quiescent@done:ok", "node_ok holds", "child R ="),
        # the global measure: a climb load that waits while its side is claimed
        ("climb_load_waits", "cevery_lfglobal@alloc:climb-load", "the global measure", "mu "),
        # scan mode: every family of cevery_scan_* has a mutant that breaks it
        ("rollback_skips_too_far", "cevery_scan_skip@rollback:release", "jumps over lies under", "node x ="),
        (
            "climb_skips_a_level",
            "cevery_scan_frame@alloc:climb-cas",
            "changes only at the accessed",
            "me after",
        ),
        ("climb_does_not_count", "cevery_scan_inv@alloc:climb-cas", "c_L = the others' total", "me after"),
        ("climb_load_waits", "cevery_scan_lockfree@alloc:climb-load", "lowers (measure, load)", "me after"),
        ("scan_never_gives_up", "cevery_scan_lfglobal@alloc:load", "the global measure", "mu "),
        ("load_passes_over_free_node", "cevery_scan_lin@alloc:load", "None is allowed", "me after"),
    ],
)
def test_a_mutant_breaks_its_closing_or_scan_obligation_with_a_readable_counterexample(
    mutant: str, name: str, claim: str, shown: str
) -> None:
    variant = {**SCAN_MUTANTS, **EVERY_MUTANTS, **COUNTED_MUTANTS}[mutant][1]
    _broken(prove(_ob(name), variant), claim, shown, "depth")


def _with(name: str, build: object) -> Obligation:
    ob = _ob(name)
    return Obligation(ob.name, ob.group, ob.depth, ob.claim, build)  # type: ignore[arg-type]


def test_a_fold_that_forgets_the_static_blocks_breaks_the_empty_summary() -> None:
    ob = _with("cevery_sum_empty", functools.partial(counted_close._sum_empty, static_counted=False))
    _broken(prove(ob, COUNTED), "F2: a live block below side", "static(b) = 1")


def test_a_static_witness_that_never_looks_left_breaks_the_subtree_induction() -> None:
    ob = _with(
        "cevery_sum_static_node",
        functools.partial(counted_close._sum_static, case="node", look_left=False),
    )
    _broken(prove(ob, COUNTED), "static witness", "B(c) =")


def test_an_order_dependent_two_holders_flag_breaks_the_fold_s_commutation() -> None:
    ob = _with("cevery_sum_commute", functools.partial(counted_close._sum_commute, multi_needs_h=False))
    _broken(prove(ob, COUNTED), "Multi: the order of two threads does not matter")


def test_a_composition_without_at_most_one_among_the_others_is_not_the_global_invariant() -> None:
    ob = _with(
        "cevery_compose@done:ok",
        functools.partial(counted_close._compose, pc=steps.DONE_OK, others_at_most_one=False),
    )
    _broken(prove(ob, COUNTED), "the global per-node invariant", "at most one holds or occupies it")


def test_a_held_block_that_does_not_claim_its_path_breaks_adding_its_thread_to_the_summary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = counted_every.claim_levels

    def damaged(op: steps.OpState, max_level: object, lvl: object = counted_every.level) -> object:
        return None if op.pc == steps.DONE_OK else original(op, max_level, lvl)  # type: ignore[arg-type]

    monkeypatch.setattr(counted_every, "claim_levels", damaged)
    _broken(prove(_ob("cevery_sum_add@done:ok"), COUNTED), "F2: a live block below side", "thread k: done:ok")


def test_a_contribution_that_reads_another_thread_s_state_breaks_the_summary_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = counted_every.occupies

    def damaged(op: steps.OpState, a: object) -> object:
        return z3.Or(original(op, a), z3.Bool("j_occupies"))

    monkeypatch.setattr(counted_every, "occupies", damaged)
    p = prove(_ob("cevery_sum_frame"), COUNTED)
    _broken(p, "k's contribution is a function of k's op state", "j_occupies")
