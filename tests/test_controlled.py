"""Controlled mode: a port's real threads scheduled by the explorer (the Python reference port as the port).

Each test starts ``python -m nbbs.conform._controlled_server`` (NBBS on one OS thread per
logical thread), possibly with ``--mutant``, and drives it through ``nbbs.conform.controlled``.
"""

from __future__ import annotations

import dataclasses
import io
import sys
from pathlib import Path

import pytest
from conftest import DEEP

from nbbs.check.explore import ExploreConfig, ExplorerError, explore, parse
from nbbs.conform import controlled as c
from nbbs.conform._controlled_server import serve
from nbbs.conform._port import COUNTEREXAMPLES
from nbbs.conform.protocol import PortError

OVERLAP = "d2-m2-reference:a1@0+f0+a2@0,a0@0+f0,a0@1"
"""The scenario of ``reference-a.json``: the published algorithm's 3-thread overlap."""
LOST = "d2-m2-reference:a0@0,a2@0+f0+a0@1+f1"
"""The scenario of ``reference-b.json``: the published algorithm's 2-thread lost block."""


def test_the_reference_port_passes_every_check_for_counted() -> None:
    cfg = c.ControlledConfig(strategy="random", schedules=40, scenarios=2, seed=3, variant="counted")
    result = c.run(c.reference_port(), cfg)
    assert result.ok, result.failures[0][1] if result.failures else ""
    assert result.refinement and result.variant == "counted"
    assert result.schedules == 80


def test_a_port_explores_exactly_the_schedules_the_explorer_explores_in_process() -> None:
    # One scheduler: the bounded exhaustive search over the port's threads takes the same
    # decisions as over greenlets running NBBS, so it runs the same number of schedules.
    sc = parse("d2-m2-counted:a0@0+f0,a0@1")[0]
    local = explore(sc, ExploreConfig(strategy="exhaustive", preemption_bound=1, max_schedules=10_000))
    cfg = c.ControlledConfig("exhaustive", preemption_bound=1, schedules=10_000, scenarios=(sc.code(),))
    remote = c.run(c.reference_port(), cfg)
    assert local.exhausted and remote.reports[0].exhausted
    assert remote.schedules == local.schedules > 10
    assert remote.ok


@pytest.mark.parametrize("name", ["reference-a", "reference-b"])
def test_the_kept_counterexamples_of_the_published_algorithm_replay_on_the_port(name: str) -> None:
    rep = c.reproduce(c.reference_port(), COUNTEREXAMPLES / f"{name}.json")
    assert rep.reproduced, rep.detail
    assert ("(a)" in rep.detail) == (name == "reference-a")


def test_the_counterexamples_do_not_reproduce_on_a_counted_port() -> None:
    cx = c.Counterexample.load(COUNTEREXAMPLES / "reference-a.json")
    counted = dataclasses.replace(cx, variant="counted")
    assert not c.reproduce(c.reference_port(), counted).reproduced


def test_a_counterexample_whose_frees_skip_the_check_is_refused_for_ports() -> None:
    with pytest.raises(ExplorerError, match="argument check"):
        c.reproduce(["false"], COUNTEREXAMPLES / "explore-reference-d2-b.json")


def test_bounded_exhaustive_search_finds_the_three_thread_overlap_on_the_port_unaided() -> None:
    cfg = c.ControlledConfig(strategy="exhaustive", preemption_bound=2, schedules=1000, scenarios=(OVERLAP,))
    result = c.run(c.reference_port(), cfg)
    assert not result.ok
    text, why = result.failures[0]
    assert why.startswith("overlap:"), why
    out, again = c.replay(c.reference_port(), text)
    assert out.failure is not None and out.failure.kind == "overlap", again


def test_pct_finds_the_two_thread_lost_block_on_the_port_unaided_and_the_seed_replays_it() -> None:
    cfg = c.ControlledConfig(strategy="pct", schedules=500, scenarios=(LOST,), seed=7)
    result = c.run(c.reference_port(), cfg)
    assert not result.ok
    assert "is free but a sequential alloc of it fails" in result.failures[0][1]
    again = c.run(c.reference_port(), cfg)
    assert again.failures[0][0] == result.failures[0][0]
    assert again.reports[0].first_failure_at == result.reports[0].first_failure_at


@pytest.mark.deep
@pytest.mark.skipif(not DEEP, reason="long: run with HYPOTHESIS_PROFILE=deep")
def test_a_counted_port_passes_every_schedule_of_the_overlap_scenario_with_two_preemptions() -> None:
    # The published algorithm's overlap scenario, on the shipped variant: 1,000+ schedules (slow).
    text = OVERLAP.replace("reference", "counted")
    cfg = c.ControlledConfig("exhaustive", preemption_bound=2, schedules=100_000, scenarios=(text,))
    result = c.run(c.reference_port(), cfg)
    assert result.ok and result.reports[0].exhausted, result.failures


def test_a_code_mutant_run_as_a_port_is_caught_with_a_schedule_that_replays() -> None:
    broken = c.reference_port("dropped_cas_retry")
    cfg = c.ControlledConfig(strategy="exhaustive", schedules=500, scenarios=("d3-m3-counted:a0@0+f0,a1@0",))
    result = c.run(broken, cfg)
    assert not result.ok
    text = result.failures[0][0]
    out, _ = c.replay(broken, text)
    assert out.failure is not None
    fine, body = c.replay(c.reference_port(), text)
    assert fine.failure is None, body


def test_refinement_reports_the_first_differing_access_with_both_trees() -> None:
    # A climb that counts two claims stays safe for one alloc; only the step-by-step
    # comparison with model/steps.py sees the port's first climb CAS write the wrong word.
    out, body = c.replay(c.reference_port("climb_counts_twice"), "d3-m3-counted:a0@0:a")
    assert out.failure is not None and out.failure.kind == "refinement", body
    assert "step 3 (thread 0)" in body
    ports, models = body.split("the port's tree after step 3, from `words`:")[1].split("the model's tree")
    assert "4:[L=2 R=0]" in ports and "4:[L=1 R=0]" in models


def test_the_scan_cost_check_passes_the_reference_port_and_flags_a_rescanning_one() -> None:
    levels = (0.0, 0.5, 0.99)
    ok = c.scan_cost(c.reference_port(), depth=6, pairs=8, levels=levels)
    assert not ok.flagged, ok.table()
    assert ok.port_cost == ok.model_cost
    bad = c.scan_cost(c.reference_port("scan_from_first"), depth=6, pairs=8, levels=levels)
    assert bad.flagged, bad.table()


def test_schedule_traces_replay_against_the_server_and_catch_a_mutant(tmp_path: Path) -> None:
    paths = c.export_schedules(tmp_path)
    kept = Path(__file__).parent / "data" / "schedules"
    for p in paths:  # the kept traces are the reference's current ones
        assert p.read_text() == (kept / p.name).read_text(), f"re-export {p.name}: c.export_schedules({kept})"
    names = {p.name for p in paths}
    assert {"schedule-reference-a.jsonl", "schedule-reference-b.jsonl", "schedule-short-1.jsonl"} <= names
    assert "schedule-explore-reference-d2-b.jsonl" not in names  # its frees skip the check
    first = (tmp_path / "schedule-short-1.jsonl").read_text().splitlines()
    assert first[0].startswith('{"format":"nbbs-trace","version":1,"depth":3,')
    assert first[1] == '{"op":"words","expect":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}'
    assert first[2] == '{"op":"spawn","thread":0,"cmd":"alloc 0 0","expect":"pending 0 load 8"}'
    for p in (tmp_path / "schedule-reference-a.jsonl", tmp_path / "schedule-short-1.jsonl"):
        assert c.replay_trace(c.reference_port(), p) == []
    bad = c.replay_trace(c.reference_port("climb_counts_twice"), tmp_path / "schedule-short-1.jsonl")
    assert len(bad) == 1 and "step" in bad[0]


def _talk(*lines: str, mutant: str | None = None) -> list[str]:
    out = io.StringIO()
    serve(io.StringIO("".join(line + "\n" for line in lines)), out, mutant)
    return out.getvalue().splitlines()


def test_the_server_answers_bad_input_with_an_error_naming_it() -> None:
    replies = _talk(
        "words",
        "arena 3 4096 0 - nosuch",
        "arena 3 4096 0 - counted",
        "alloc 9",
        "step 0",
        "spawn 0 alloc x",
        "free 4096",
        "frobnicate",
        "hello 2",
    )
    assert replies[0].startswith("error ProtocolError no arena")
    assert replies[1].startswith("error ConfigurationError variant must be one of")
    assert replies[2] == "ok"
    assert replies[3].startswith("error OrderError")
    assert replies[4] == "error ProtocolError thread 0 has no pending access"
    assert replies[5].startswith("error ProtocolError expected a decimal integer")
    assert replies[6].startswith("error DoubleFreeError")
    assert replies[7] == "error Unsupported frobnicate"
    assert replies[8].startswith("error ProtocolError")


def test_the_server_steps_one_access_at_a_time_and_reports_each() -> None:
    replies = _talk("hello 1", "arena 2 4096 0 - counted", "spawn 1 alloc 0 3", "step 1", "step 1", "words")
    assert "controlled" in replies[0] and "variants=" in replies[0]
    assert replies[2:7] == [
        "pending 1 load 7",
        "did 1 load 7 0 0",
        "pending 1 cas 7",
        "did 1 cas 7 0 19",
        "pending 1 load 3",
    ]
    assert replies[7] == "words 0 0 0 0 0 0 0 19"


PROXY = r"""
import re, subprocess, sys
pattern, replacement = sys.argv[1:3]
srv = subprocess.Popen([sys.executable, "-m", "nbbs.conform._controlled_server", *sys.argv[3:]],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
for line in sys.stdin:
    srv.stdin.write(line)
    srv.stdin.flush()
    if line.strip() == "quit":
        break
    for _ in range(2 if line.startswith("step") else 1):
        reply = srv.stdout.readline()
        sys.stdout.write(re.sub(pattern, replacement, reply))
        if reply.startswith("error"):
            break
    sys.stdout.flush()
"""
"""The reference port behind a proxy rewriting its replies: ``PROXY PATTERN REPLACEMENT [SERVER ARGS]``."""


def _proxy(pattern: str, replacement: str, *server: str) -> list[str]:
    return [sys.executable, "-c", PROXY, pattern, replacement, *server]


def test_a_port_whose_reports_do_not_add_up_is_caught() -> None:
    # It misreports the word thread 0's first occupy leaves.
    liar = _proxy("did 0 cas 8 0 19", "did 0 cas 8 0 3")
    alone, body = c.replay(liar, "d3-m3-counted:a0@0:a")
    assert alone.failure is not None and alone.failure.kind == "protocol", body
    assert "differ at nodes [8]" in alone.failure.message
    both, body = c.replay(liar, "d3-m3-counted:a0@0,a0@0:a")
    assert both.failure is not None and both.failure.kind == "crash", body
    assert "some access went unreported" in both.failure.message


def test_a_port_that_is_not_one_raises_port_error() -> None:
    with pytest.raises(PortError, match=r"exited \(status|no longer reads its stdin"):
        c.ControlledPort(["true"])
    with pytest.raises(PortError, match="does not list the feature controlled"):
        c.ControlledPort([sys.executable, "-c", "print('hello 1 name=x features=words')"])


def test_a_schedule_string_given_as_a_scenario_is_replayed_on_the_port() -> None:
    text = "d3-m3-counted:a0@0+f0,a1@0:a18b5ab"
    cfg = c.ControlledConfig(scenarios=(text, text.rsplit(":", 1)[0] + ":a"))
    result = c.run(c.reference_port("dropped_cas_retry"), cfg)
    assert [r.schedules for r in result.reports] == [1, 1]
    assert result.failures[0][0] == text
    assert result.reports[1].ok


def test_a_port_that_does_not_list_the_variant_gets_every_check_but_refinement() -> None:
    nameless = _proxy(r",variants=\S*", "")
    result = c.run(nameless, c.ControlledConfig(scenarios=1, schedules=5))
    assert result.ok and result.variant == "top_down_node" and not result.refinement  # the default
    # The same climb that counts twice, which only refinement sees (above), now passes.
    broken = _proxy(r",variants=\S*", "", "--mutant", "climb_counts_twice")
    out, body = c.replay(broken, "d3-m3-counted:a0@0:a")
    assert out.failure is None, body


def test_a_port_without_words_is_checked_from_its_reported_accesses() -> None:
    wordless = _proxy("features=words,", "features=")
    cfg = c.ControlledConfig("exhaustive", scenarios=("d3-m3-counted-L8:F8,a1@0",), schedules=30)
    result = c.run(wordless, cfg)
    assert result.ok, result.failures
    out, body = c.replay(
        _proxy("features=words,", "features=", "--mutant", "climb_counts_twice"), "d3-m3-counted:a0@0:a"
    )
    assert out.failure is not None and "from its reported accesses (no words feature)" in body
