"""The native contention benchmark (``nbbs.ports.run_contention``, ``bench.c``'s ``contention``):
it runs on tiny configurations, its counters agree with the Python allocator's traced accesses,
and its end-of-run check catches what it is there to catch (each with a broken build or a
doctored end state showing it can fail)."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest

from nbbs.check.trace import Tracing
from nbbs.impl import NBBS
from nbbs.model.steps import Kind
from nbbs.ports import Contention, ContentionError, end_state_problems, run_contention
from nbbs.ports._contention import VARIANTS, driver, time_overlap

COUNTED_KINDS = {"load": Kind.LOAD, "cas": Kind.CAS, "fetch_or": Kind.FETCH_OR, "store": Kind.STORE}


def traced_totals(config: Contention) -> dict[str, int]:
    """The word accesses the Python allocator makes doing, alone, the pairs the driver's thread
    does for a deterministic configuration (one order, every scan from the level's first node)."""
    lo, hi = config.orders
    assert lo == hi and config.hint == "same" and config.fill == 0
    tracing = Tracing()
    heap = NBBS(config.depth, variant=config.variant, backend=tracing)
    assert tracing.words is not None
    tracing.words.events.clear()
    held: list[int | None] = [None] * config.hold
    for i in range(config.pairs):
        if config.hold == 0:
            got = heap.alloc(lo, hint=0)
            if got is not None:
                heap.free(got, lo)
            continue
        slot = i % config.hold
        if (old := held[slot]) is not None:
            heap.free(old, lo)
        held[slot] = heap.alloc(lo, hint=0)
    kinds = Counter(e.kind for e in tracing.words.events)
    return {name: kinds[kind] for name, kind in COUNTED_KINDS.items()}


def driver_totals(out: dict[str, Any]) -> dict[str, int]:
    return {name: sum(t["accesses"][name] for t in out["per_thread"]) for name in COUNTED_KINDS}


DETERMINISTIC = [
    pytest.param(
        Contention(v, 3, threads=1, pairs=40, lo=o, hi=o, hint="same", hold=h), id=f"{v}-order{o}-hold{h}"
    )
    for v in VARIANTS
    for o, h in ((2, 0), (1, 1), (1, 3))
]


@pytest.mark.parametrize("config", DETERMINISTIC)
def test_one_thread_makes_exactly_the_word_accesses_the_python_allocator_makes(config: Contention) -> None:
    out = run_contention(config)
    assert out["figures"]["failed_cas_per_pair"] == 0
    assert driver_totals(out) == traced_totals(config)


def test_a_port_that_releases_with_a_store_does_not_match_the_trace() -> None:
    # The comparison can fail: counted's release is a CAS; the STORE_RELEASE build stores.
    config = Contention("counted", 3, threads=1, pairs=40, lo=1, hi=1, hint="same", hold=1)
    out = run_contention(config, driver(["STORE_RELEASE"]))
    mine, python = driver_totals(out), traced_totals(config)
    assert mine != python
    assert mine["store"] == python["store"] + 39 and mine["cas"] == python["cas"] - 39


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_thread_on_a_tiny_tree_fails_no_cas_and_ends_clean(variant: str) -> None:
    out = run_contention(Contention(variant, 4, threads=1, pairs=3000, fill=0.25))
    fig = out["figures"]
    assert out["problems"] == [] and fig["failed_cas_per_pair"] == 0 and fig["time_overlap"] == 0
    assert fig["atomic_ops_per_pair"] > 0 and fig["pairs_per_s"] > 0
    # The fill's 4 pages, then the thread's last block unless its last alloc found none.
    assert [order for _, order in out["held"][:4]] == [0] * 4 and len(out["held"]) in (4, 5)


@pytest.mark.parametrize("variant", ("counted", "top_down_node"))
def test_threads_in_lockstep_on_the_same_blocks_end_clean(variant: str) -> None:
    config = Contention(variant, 3, threads=2, pairs=2000, lo=2, hi=2, hint="same", hold=1, sync=1)
    out = run_contention(config)  # raises on any end-state problem
    assert [t["pairs"] for t in out["per_thread"]] == [2000, 2000]
    assert out["figures"]["time_overlap"] > 0.5  # both loops were running; whether on two cores, CAS tell


@pytest.mark.parametrize("variant", VARIANTS)
def test_threads_taking_turns_at_every_access_do_collide_and_end_clean(variant: str) -> None:
    # Strict round-robin: both load the left block's word, one CAS wins and the other fails,
    # every pair, whatever else the machine is doing.
    config = Contention(variant, 3, threads=2, pairs=200, lo=2, hi=2, hint="same", hold=0, interleave=True)
    out = run_contention(config, check=variant != "reference")
    assert out["interleave"] is True and out["figures"]["failed_cas_per_pair"] >= 0.2


def test_interleaving_needs_the_controlled_build_and_no_lockstep() -> None:
    config = Contention("counted", 3, threads=2, pairs=10, interleave=True)
    with pytest.raises(ContentionError, match="needs the controlled build"):
        run_contention(config, driver())
    with pytest.raises(ContentionError, match="no sync"):
        run_contention(Contention("counted", 3, threads=2, pairs=10, interleave=True, sync=1))


def test_the_end_check_catches_an_unmark_that_leaks_its_subtree() -> None:
    config = Contention("counted", 3, threads=1, pairs=50)
    with pytest.raises(ContentionError, match="not quiescent"):
        run_contention(config, driver(["SET_NOT_CLEAR"]))


def test_the_end_check_catches_overlapping_blocks_and_words_that_disagree() -> None:
    config = Contention("top_down_node", 3, threads=1, pairs=20, lo=1, hi=1, hint="same", hold=1)
    out = run_contention(config)
    assert out["problems"] == [] and out["held"] == [[0, 1]]
    overlapping = copy.deepcopy(out)
    overlapping["held"].append([4096, 0])  # page 1, inside the held block of pages 0-1
    problems = end_state_problems(overlapping, config)
    assert any("inv_disjoint" in p for p in problems)
    assert any("words show blocks [4], expected [4, 9]" in p for p in problems)
    twice = copy.deepcopy(out)
    twice["held"].append([0, 1])
    assert any("held twice" in p for p in end_state_problems(twice, config))
    lost = copy.deepcopy(out)
    lost["words_after"][2] = out["words"][2]  # a count left behind after every free
    assert any("after freeing every block" in p for p in end_state_problems(lost, config))
    refused = copy.deepcopy(out)
    refused["per_thread"][0]["free_errors"] = 1
    assert any("frees refused" in p for p in end_state_problems(refused, config))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (Contention("corrected", 3), "variant must be one of"),
        (Contention("counted", 13), "depth must be 1..12"),
        (Contention("counted", 3, lo=2, hi=1), "lo <= hi"),
        (Contention("counted", 3, hint="left"), "hint must be one of"),
        (Contention("counted", 3, threads=0), "threads must be >= 1"),
        (Contention("counted", 3, fill=1.5), "fill must be"),
    ],
)
def test_a_bad_configuration_is_refused_naming_the_problem(config: Contention, message: str) -> None:
    with pytest.raises(ContentionError, match=message):
        run_contention(config)


def test_time_overlap_is_the_share_of_the_run_with_two_threads_inside() -> None:
    assert time_overlap([(0, 10)]) == 0
    assert time_overlap([(0, 10), (5, 15)]) == pytest.approx(5 / 15)
    assert time_overlap([(0, 10), (0, 10), (20, 30)]) == pytest.approx(10 / 30)
    assert time_overlap([(0, 4), (6, 10)]) == 0
