"""The model checker passes the shipped algorithm, and each property catches a broken one."""

from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path

import pytest

from nbbs.check._mc_cases import CASES, Case, case_data
from nbbs.check.modelcheck import (
    SWEEP_SEED,
    Config,
    check,
    load_counterexample,
    random_scenario,
    render,
    replay,
)
from nbbs.check.mutants import COUNTED_MUTANTS, TRANSITION_MUTANTS
from nbbs.impl.nbbs import NBBS
from nbbs.model import bits, spec
from nbbs.model import geometry as g

DATA = Path(__file__).parent / "data" / "counterexamples"

SMALL = [(2, 1), (3, 1), (2, 2)]


@pytest.mark.parametrize(("threads", "depth"), SMALL, ids=[f"{t}threads-depth{d}" for t, d in SMALL])
def test_the_shipped_variant_passes_every_property(threads: int, depth: int) -> None:
    result = check(Config(threads, depth, variant=bits.DEFAULT_VARIANT))
    assert result.ok, {p: v.message for p, v in result.violations.items()}
    assert result.states > 100 * threads and result.quiescent > 0


if os.environ.get("HYPOTHESIS_PROFILE") == "deep":
    # A minute or more each, so only in the deep profile (4 threads at depth 2: half an
    # hour or more, bench/modelcheck_figures.py).
    DEEP_CONFIGS = [(3, 2), (2, 3)]

    @pytest.mark.parametrize(
        ("threads", "depth"), DEEP_CONFIGS, ids=[f"{t}threads-depth{d}" for t, d in DEEP_CONFIGS]
    )
    def test_the_shipped_variant_passes_the_larger_configurations(threads: int, depth: int) -> None:
        result = check(Config(threads, depth))
        assert result.ok, {p: v.message for p, v in result.violations.items()}


def test_the_shipped_variant_passes_in_scan_mode_with_checked_frees() -> None:
    result = check(Config(2, 2, mode="scan", checked_free=True))
    assert result.ok, {p: v.message for p, v in result.violations.items()}


def test_the_shipped_variant_passes_below_a_max_order() -> None:
    result = check(Config(2, 2, max_order=1))
    assert result.ok, {p: v.message for p, v in result.violations.items()}


def test_the_reference_loses_a_block_with_two_threads_at_depth_two() -> None:
    assert check(Config(2, 1, variant="reference")).ok
    result = check(Config(2, 2, variant="reference"))
    assert sorted(result.violations) == ["b"]
    assert "lost" in result.violations["b"].message


def _mutant(name: str) -> bits.Transitions:
    return TRANSITION_MUTANTS[name][1]


def test_no_overlap_catches_a_climb_that_clears_the_occupied_bit() -> None:
    result = check(
        Config(
            2, 1, transitions=_mutant("climb_clears_instead_of_sets"), properties=("a",), stop_at_first=True
        )
    )
    assert "overlap" in result.violations["a"].message


def test_quiescence_catches_an_unmark_that_sets_bits() -> None:
    result = check(
        Config(
            2, 1, transitions=_mutant("unmark_sets_instead_of_clears"), properties=("b",), stop_at_first=True
        )
    )
    assert "lost" in result.violations["b"].message


def test_quiescence_catches_an_occupy_that_leaves_the_subtree_looking_free() -> None:
    result = check(
        Config(2, 2, transitions=_mutant("occupy_only_occ"), properties=("b",), stop_at_first=True)
    )
    assert "b" in result.violations


def test_linearizability_catches_a_release_that_keeps_the_block_occupied() -> None:
    # The freed block still shows OCC after its free: no overlap ever happens (nobody can
    # take it), but the words no longer refine the linearized state.
    keeps = dataclasses.replace(bits.CORRECTED, release=lambda w: (w & 0) | bits.OCC)
    result = check(Config(2, 1, transitions=keeps, properties=("a", "c")))
    assert sorted(result.violations) == ["c"]
    assert "OCC words" in result.violations["c"].message


def test_linearizability_catches_an_alloc_that_takes_a_live_block() -> None:
    result = check(
        Config(2, 1, transitions=_mutant("unmark_ignores_coal"), properties=("c",), stop_at_first=True)
    )
    assert "linearized" in result.violations["c"].message


def test_lock_freedom_catches_a_scan_that_never_gives_up() -> None:
    result = check(Config(2, 1, gives_up=False, properties=("d",)))
    v = result.violations["d"]
    assert v.cycle_start is not None and "no operation completes" in v.message
    assert "the cycle starts here" in render(v, 1)


NEEDS_TWO_LEVELS = {"mark_stops_early", "unmark_never_stops", "occupy_only_occ"}


@pytest.mark.parametrize("name", sorted(TRANSITION_MUTANTS))
def test_every_transition_mutant_breaks_some_property(name: str) -> None:
    depth = 2 if name in NEEDS_TWO_LEVELS else 1
    result = check(Config(2, depth, transitions=_mutant(name), stop_at_first=True))
    assert result.violations, name


@pytest.mark.parametrize("name", sorted(COUNTED_MUTANTS))
def test_every_counted_mutant_breaks_some_property_or_its_counts(name: str) -> None:
    try:
        result = check(Config(2, 2, transitions=COUNTED_MUTANTS[name][1], stop_at_first=True))
    except AssertionError as e:
        # The checker refuses a count outside 0..count_bound: the mutant's counts are wrong.
        assert "[counted] a count left" in str(e), name
    else:
        assert result.violations, name


def test_the_shipped_variant_passes_the_scenario_where_corrected_overlaps() -> None:
    # corrected-a.json's operations (ALGORITHM.md 2.5) at 3 threads, depth 3, every interleaving.
    ops = ((("alloc", 4), ("free", 4), ("alloc", 1)), (("alloc", 10), ("free", 10)), (("alloc", 11),))
    bad = check(Config(3, 3, variant="corrected", scenario=ops, initial="empty", stop_at_first=True))
    assert "overlap" in bad.violations["a"].message
    good = check(Config(3, 3, scenario=ops, initial="empty"))
    assert good.ok and good.states > 1000, {p: v.message for p, v in good.violations.items()}


SWEEP = 1000 if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else 40


def test_random_three_thread_scenarios_at_depth_three_pass_for_the_shipped_variant() -> None:
    # bench/scenario_sweep.py's draw: every interleaving of each, all properties.
    rng = random.Random(SWEEP_SEED)
    for _ in range(SWEEP):
        ops = random_scenario(rng, 3, 3)
        result = check(Config(3, 3, scenario=ops, initial="empty"))
        assert result.ok, (ops, {p: v.message for p, v in result.violations.items()})


def test_the_same_draw_makes_corrected_overlap() -> None:
    # Scenario 33 of that draw: a second overlap of corrected, under node 3 this time.
    rng = random.Random(SWEEP_SEED)
    ops = [random_scenario(rng, 3, 3) for _ in range(34)][33]
    assert ops == (
        (("alloc", 14), ("free", 14)),
        (("alloc", 15), ("free", 15), ("alloc", 1)),
        (("alloc", 12),),
    )
    bad = check(Config(3, 3, variant="corrected", scenario=ops, initial="empty", stop_at_first=True))
    assert "overlap" in bad.violations["a"].message
    assert check(Config(3, 3, scenario=ops, initial="empty")).ok


def test_a_counted_counterexample_shows_the_counts() -> None:
    name = "climb_does_not_count"
    result = check(Config(2, 1, transitions=COUNTED_MUTANTS[name][1], stop_at_first=True))
    text = render(next(iter(result.violations.values())), 1)
    assert "L=" in text and "R=" in text and "BUSY" in text, text


def test_a_counterexample_prints_each_step_with_thread_node_access_and_words() -> None:
    result = check(Config(2, 2, variant="reference", properties=("b",), stop_at_first=True))
    text = render(result.violations["b"], 2)
    assert "thread 0" in text and "thread 1" in text
    assert "fetch_or node 2" in text and "level 2: 4:" in text and "COAL_L" in text


DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"
QUICK_CASES = [c for c in CASES if DEEP or c.search == "scan" or c.scenario is not None]
"""The cases found in attempt mode over every operation take a minute or more to find again:
deep profile only."""


@pytest.mark.parametrize("case", QUICK_CASES, ids=[c.filename for c in QUICK_CASES])
def test_the_kept_counterexamples_are_the_checkers_shortest(case: Case) -> None:
    stored = load_counterexample(DATA / case.filename)
    assert stored == json.loads(json.dumps(case_data(case)))


@pytest.mark.parametrize("case", CASES, ids=[c.filename for c in CASES])
def test_a_kept_counterexample_replays_to_its_violation(case: Case) -> None:
    data = load_counterexample(DATA / case.filename)
    assert (data["variant"], data["property"], data["mode"], data["checked_free"]) == (
        case.variant,
        case.prop,
        "scan",
        True,
    )
    trace, words, results = replay(data)
    assert len(trace) == len(data["schedule"])
    freed = [op["node"] for ops in data["threads"] for op in ops if op["op"] == "free"]
    got = [r for rs in results for r in rs if r is not None]
    held = sorted(set(data["initial_live"]) | {n for n in got if freed.count(n) < got.count(n)})
    if case.prop == "a":
        assert any(g.overlaps(a, b) for i, a in enumerate(held) for b in held[i + 1 :]), held
    else:
        lost = [n for n in g.all_nodes(data["depth"]) if spec.is_free(frozenset(held), n) and words[n] != 0]
        assert lost, "the replay should end with a free block whose word is not zero"


def test_the_corrected_variant_lets_three_threads_overlap_at_depth_three() -> None:
    # Why corrected is not shipped (ALGORITHM.md 2.5): beyond the bounds it passes, the
    # unmark's ABA still clears a bit a held block needs.
    data = load_counterexample(DATA / "corrected-a.json")
    assert data["variant"] == "corrected" and (data["depth"], len(data["threads"])) == (3, 3)
    _, words, results = replay(data)
    assert results == [[4, None, 1], [10], [11]]
    assert g.overlaps(1, 11) and words[1] == bits.BUSY and words[11] == bits.BUSY


def test_a_scenario_search_covers_every_interleaving_of_given_operations() -> None:
    # reference-a.json's operations at depth 2: the reference overlaps, the shipped variant not.
    ops = ((("alloc", 2), ("free", 2), ("alloc", 1)), (("alloc", 4), ("free", 4)), (("alloc", 5),))
    bad = check(Config(3, 2, variant="reference", scenario=ops, initial="empty"))
    assert "overlap" in bad.violations["a"].message
    good = check(Config(3, 2, scenario=ops))
    assert good.ok and good.initial_states == 26


def test_a_valid_free_is_not_refused_while_a_rollback_passes_under_the_block() -> None:
    # Another thread's alloc has occupied page 0 under our live order-1 block, on its way to
    # climb into it and roll back. Looking at the smallest order first would see page 0 and
    # refuse our free as "wrong order"; the check looks from the largest order down.
    a = NBBS(2, page_size=1)
    address = a.alloc(1, 0)
    assert address == 0
    a._w.store(g.node_of(2, 0, 0), bits.BUSY)
    a.free(address, 1)
    assert a.words()[2] == 0
