"""The C port behind `nbbs conform`, the harness a porter runs: all three modes pass as `counted`,
the published algorithm's defects show in the C code, and every defect flag is reported.

These drive the executables of ``ports/c/`` through ``nbbs.conform`` only: the same checkers that
check the Python allocator (the differential machine, the explorer's strategies and checks, the
linearizability checker), with no checking code of their own.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from conftest import DEEP

from nbbs.conform import controlled as c
from nbbs.conform._port import COUNTEREXAMPLES
from nbbs.conform.harness import OK, VIOLATION, Options, Result, conform, exit_status
from nbbs.ports import DEFECTS, build

QUICK = Options(examples=20, seconds=6.0, shrink_seconds=1.0, variants=("counted",))

OVERLAP = "d2-m2-reference:a1@0+f0+a2@0,a0@0+f0,a0@1"
"""The scenario of ``reference-a.json``: the published algorithm's 3-thread overlap."""
LOST = "d2-m2-reference:a0@0,a2@0+f0+a0@1+f1"
"""The scenario of ``reference-b.json``: the published algorithm's 2-thread lost block."""


def port(*defects: str, controlled: bool = False) -> list[str]:
    return [str(build("port", controlled=controlled, defects=defects))]


def details(results: list[Result]) -> str:
    return "\n\n".join(f"{r.check}: {r.status}\n{r.detail}" for r in results)


def test_the_c_port_passes_the_sequential_and_stress_runs_as_counted() -> None:
    results = conform(port(), dataclasses.replace(QUICK, stress=True))
    assert [r.check for r in results] == ["sequential counted", "stress counted"]
    assert exit_status(results) == 0, details(results)


@pytest.mark.deep
@pytest.mark.skipif(not DEEP, reason="about two minutes: HYPOTHESIS_PROFILE=deep")
def test_a_long_stress_run_of_the_c_port_holds_no_overlap_loses_nothing_and_linearizes() -> None:
    options = Options(examples=200, seconds=240.0, stress=True, variants=("counted",))
    results = conform(port(), options)
    assert exit_status(results) == 0, details(results)


def test_the_c_ports_controlled_build_passes_the_controlled_mode_as_counted() -> None:
    results = conform(port(controlled=True), dataclasses.replace(QUICK, controlled=True))
    assert [r.check for r in results] == ["sequential counted", "controlled counted", "scan cost counted"]
    assert exit_status(results) == 0, details(results)
    assert results[1].runs > 0


@pytest.mark.parametrize("name", ["reference-a", "reference-b"])
def test_the_kept_counterexamples_of_the_published_algorithm_replay_on_the_c_code(name: str) -> None:
    rep = c.reproduce(port(controlled=True), COUNTEREXAMPLES / f"{name}.json")
    assert rep.reproduced, rep.detail
    assert ("(a)" in rep.detail) == (name == "reference-a")


def test_exhaustive_search_finds_the_published_overlap_in_the_c_code_unaided() -> None:
    cfg = c.ControlledConfig(strategy="exhaustive", preemption_bound=2, schedules=1000, scenarios=(OVERLAP,))
    result = c.run(port(controlled=True), cfg)
    assert not result.ok
    text, why = result.failures[0]
    assert why.startswith("overlap:"), why
    out, _ = c.replay(port(controlled=True), text)
    assert out.failure is not None and out.failure.kind == "overlap"


def test_nbbs_conform_writes_the_ports_failing_run_as_a_page(tmp_path: Path) -> None:
    page = tmp_path / "lost.html"
    options = Options(controlled=True, examples=5, seconds=10.0, variants=("reference",), html=str(page))
    options = dataclasses.replace(options, scenarios=(LOST,), seed=7)
    results = conform(port(controlled=True), options)
    caught = next(r for r in results if r.check == "controlled reference")
    assert caught.status == VIOLATION and str(page) in caught.detail
    text = page.read_text()
    # The page shows the C port's own accesses (its name from the handshake) and the lost block.
    assert "nbbs conform: nbbs-c" in text and "is free but a sequential alloc of it fails" in text
    assert "http://" not in text and "https://" not in text


def test_pct_finds_the_published_lost_block_in_the_c_code_unaided() -> None:
    cfg = c.ControlledConfig(strategy="pct", schedules=500, scenarios=(LOST,), seed=7)
    result = c.run(port(controlled=True), cfg)
    assert not result.ok
    assert "is free but a sequential alloc of it fails" in result.failures[0][1]


SEQUENTIAL = ["SET_NOT_CLEAR", "WRONG_SHIFT", "NO_ARG_CHECKS", "IGNORE_START", "NARROW_INDEX"]
"""Defects one thread shows: the sequential run (with its deep probe) must report them."""
CONCURRENT = ["NO_CAS_RETRY", "STORE_CLIMB", "STORE_RELEASE"]
"""Defects only an interleaving shows: the controlled mode must report them."""
TOP_DOWN_CONCURRENT = ["KEEP_SURPLUS"]
"""Defects of the top-down climb only an interleaving shows: the controlled mode, run as
``top_down_node``, must report them."""


def test_every_defect_flag_is_covered_by_a_test() -> None:
    assert sorted(SEQUENTIAL + CONCURRENT + TOP_DOWN_CONCURRENT) == sorted(DEFECTS)


@pytest.mark.parametrize("defect", SEQUENTIAL)
def test_nbbs_conform_reports_a_sequentially_visible_defect_with_lines_to_paste(defect: str) -> None:
    started = time.perf_counter()
    results = conform(port(defect), QUICK)
    bad = [r for r in results if r.status == VIOLATION]
    assert exit_status(results) == 1 and bad, details(results)
    assert "protocol lines to paste" in bad[0].detail, bad[0].detail
    print(f"{defect}: {bad[0].check}, {bad[0].runs} examples, {time.perf_counter() - started:.1f} s")


@pytest.mark.parametrize("defect", CONCURRENT)
def test_nbbs_conform_reports_a_concurrent_defect_in_the_controlled_mode(defect: str) -> None:
    started = time.perf_counter()
    results = conform(port(defect, controlled=True), dataclasses.replace(QUICK, controlled=True))
    by_check = {r.check: r for r in results}
    assert by_check["sequential counted"].status == OK, details(results)
    caught = by_check["controlled counted"]
    assert caught.status == VIOLATION, details(results)
    assert "nbbs conform --controlled --scenario" in caught.detail
    print(f"{defect}: controlled, {caught.runs} schedules, {time.perf_counter() - started:.1f} s")


# -- the top-down variants (issue 12): ALGORITHM.md §1.4.2-1.4.3 --------------------------------------


@pytest.mark.parametrize("variant", ["top_down", "top_down_node"])
def test_the_c_port_passes_all_three_modes_as_a_top_down_variant(variant: str) -> None:
    # The controlled mode compares every access of the C code with model/steps.py's D_LOAD,
    # D_CAS, U_LOAD, U_CAS: the ascent, the descent and the undo must be in the model's order.
    options = Options(
        examples=15, seconds=9.0, shrink_seconds=1.0, stress=True, controlled=True, variants=(variant,)
    )
    results = conform(port(controlled=True), options)
    checks = [f"sequential {variant}", f"stress {variant}", f"controlled {variant}", f"scan cost {variant}"]
    assert [r.check for r in results] == checks
    assert exit_status(results) == 0, details(results)
    assert all(r.runs > 0 for r in results)


@pytest.mark.parametrize("defect", TOP_DOWN_CONCURRENT)
def test_nbbs_conform_reports_a_concurrent_top_down_defect_in_the_controlled_mode(defect: str) -> None:
    options = dataclasses.replace(QUICK, controlled=True, variants=("top_down_node",))
    results = conform(port(defect, controlled=True), options)
    by_check = {r.check: r for r in results}
    assert by_check["sequential top_down_node"].status == OK, details(results)  # one thread never joins
    caught = by_check["controlled top_down_node"]
    assert caught.status == VIOLATION, details(results)
    assert "nbbs conform --controlled --scenario" in caught.detail
