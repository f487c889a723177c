"""The thread-modular invariant: safe for the shipped variant at depth 1, and it can fail."""

import os

import pytest

from nbbs.check.mutants import TRANSITION_MUTANTS
from nbbs.model import steps
from nbbs.proofs import stepinv
from nbbs.proofs._z3 import ask
from nbbs.proofs.threadmodular import TMResult, fixpoint

DEPTHS = [1, 2] if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else [1]
"""Depth 2 takes about ten minutes and 0.8 GB (``proofs/README.md``): deep profile only."""


@pytest.mark.parametrize("depth", DEPTHS)
def test_the_shipped_variant_keeps_held_blocks_disjoint_for_any_number_of_threads(depth: int) -> None:
    r = fixpoint(depth, max_pairs=5_000_000)
    assert r.complete and r.violation is None and r.ok
    assert r.pairs > 100


def test_the_published_variant_keeps_held_blocks_disjoint_at_depth_1() -> None:
    assert fixpoint(1, "reference").ok


def test_mutants_that_only_break_under_concurrency_give_an_overlap() -> None:
    for name in ("climb_keeps_coal", "unmark_ignores_coal"):
        r = fixpoint(1, transitions=TRANSITION_MUTANTS[name][1])
        assert r.violation is not None and "overlaps no held block" in r.violation, name


def test_a_fixpoint_cut_short_is_not_ok() -> None:
    r = fixpoint(1, "corrected", max_pairs=10)
    assert not r.complete and not r.ok


def test_z3_proves_the_invariant_inductive_at_every_program_counter_and_catches_a_damaged_one() -> None:
    tm = fixpoint(1)
    qs = stepinv.queries(tm)
    assert {"initial", "self@alloc:occupy", "other@free:unmark-cas"} <= set(qs)
    for name, q in qs.items():
        a = ask(q)
        assert a.proved, f"{name}: {a.broken}\n{a.counterexample}"
    # Drop one pair that a step reaches: induction must fail there, with a counterexample.
    key = next(k for k, tids in tm.invariant.items() if any(sp_pc(tm, t) == steps.C_LOAD for t in tids))
    tid = next(t for t in tm.invariant[key] if sp_pc(tm, t) == steps.C_LOAD)
    tm.invariant[key].discard(tid)
    damaged = stepinv.queries(tm)
    a = ask(damaged["self@alloc:occupy"])
    b = ask(damaged["self@alloc:climb-cas"])
    c = ask(damaged["self@alloc:climb-load"])
    assert not (a.proved and b.proved and c.proved)
    assert any("shared before" in x.counterexample for x in (a, b, c) if not x.proved)


def sp_pc(tm: TMResult, tid: int) -> int:
    assert tm.space is not None
    return int(tm.space.ops[tid].pc)
