"""``nbbs conform``: the reference port passes, broken ports are caught with protocol lines to paste."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbbs.cli.main import main
from nbbs.conform import Port, PortAllocator, PortError, _stress
from nbbs.conform.harness import BROKEN, OK, VIOLATION, Options, conform, exit_status
from nbbs.conform.traces import export, replay
from nbbs.impl import errors
from nbbs.impl.arena import Arena

PYPORT = [sys.executable, "-m", "nbbs.conform.pyport"]

QUICK = Options(examples=20, seconds=4.0, max_depth=4, shrink_seconds=1.0, timeout=5.0)
"""Small budgets: each broken port below fails in its first examples."""


def quick(**changes: object) -> Options:
    return Options(**{**vars(QUICK), **changes})  # type: ignore[arg-type]


def pasted(detail: str) -> list[str]:
    """The protocol lines a report tells the porter to paste."""
    lines = detail.split("\n")
    start = lines.index("protocol lines to paste into the port:") + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("    "))
    return [line.strip() for line in lines[start:end]]


def test_the_reference_port_passes_the_sequential_and_stress_runs() -> None:
    results = conform(PYPORT, quick(stress=True, variants=("counted",), seconds=4.0))
    assert [r.check for r in results] == ["sequential counted", "stress counted"]
    assert all(r.status == OK for r in results), [r.detail for r in results]
    assert exit_status(results) == 0
    assert "linearizability ok" in results[1].detail


def test_by_default_a_port_is_checked_as_the_shipped_variant_first_and_stressed_as_it() -> None:
    # The reference port lists every variant: the sequential run takes the documented ones, the
    # shipped top_down_node first, and the stress run (one variant) the shipped one.
    results = conform(PYPORT, quick(stress=True, seconds=3.0))
    assert [r.check for r in results] == [
        "sequential top_down_node",
        "sequential counted",
        "sequential reference",
        "stress top_down_node",
    ]
    assert all(r.status == OK for r in results), [r.detail for r in results]


def test_a_transition_mutant_is_caught_and_its_pasted_lines_reproduce_it() -> None:
    port = [*PYPORT, "--mutant", "unmark_sets_instead_of_clears"]
    (result,) = conform(port, quick(variants=("reference",)))
    assert result.status == VIOLATION
    assert "quiescent invariant broken" in result.detail
    lines = pasted(result.detail)
    assert lines[0] == "hello 1" and lines[1].startswith("arena ") and "free 0" in lines
    # Pasted into a fresh port, the lines give the same replies as in the report's exchange.
    replies = subprocess.run(port, input="\n".join(lines) + "\n", capture_output=True, text=True).stdout
    assert replies.splitlines()[-1] in result.detail


def test_a_code_mutant_is_caught_sequentially() -> None:
    (result,) = conform([*PYPORT, "--mutant", "climb_stops_early"], quick())
    assert result.status == VIOLATION
    assert "alloc " in result.detail and "protocol lines to paste" in result.detail


def test_a_port_answering_the_wrong_error_class_is_caught() -> None:
    (result,) = conform([*PYPORT, "--defect", "wrong-error"], quick(variants=("counted",)))
    assert result.status == VIOLATION
    assert "raised InteriorAddressError" in result.detail and "DoubleFreeError" in result.detail
    assert pasted(result.detail)[-1].startswith("free ")


def test_a_port_that_leaks_a_block_is_caught_by_the_stress_run_without_words() -> None:
    with Port([*PYPORT, "--defect", "leak", "--no-words"]) as port:
        assert "words" not in port.features
        result = _stress.run(port, "counted", seconds=1.0, rounds=2)
    assert result.status == VIOLATION
    assert "blocks were lost" in result.detail and pasted(result.detail)[2].startswith("stress 2 100 ")


def test_a_port_that_leaks_a_block_is_caught_sequentially_by_its_words() -> None:
    (result,) = conform([*PYPORT, "--defect", "leak"], quick(variants=("counted",)))
    assert result.status == VIOLATION and "words abstract to" in result.detail
    assert sum(line.startswith("free ") for line in pasted(result.detail)) >= 3  # the third free leaks


def test_a_port_that_crashes_mid_session_is_a_broken_port_with_its_stderr() -> None:
    results = conform([*PYPORT, "--crash-after", "25"], quick(stress=True))
    assert [r.status for r in results] == [BROKEN]
    assert exit_status(results) == 2
    assert "the port exited (status 3)" in results[0].detail
    assert "crashing on purpose at command 26" in results[0].detail
    assert "protocol lines to paste" in results[0].detail


def test_a_port_that_hangs_is_a_broken_port() -> None:
    results = conform([*PYPORT, "--hang-after", "3"], quick(timeout=0.5))
    assert [r.status for r in results] == [BROKEN] and "the port hangs" in results[0].detail
    assert pasted(results[0].detail)[:2] == ["hello 1", pasted(results[0].detail)[1]]
    assert pasted(results[0].detail)[1].startswith("arena ")


def test_a_garbled_reply_is_a_port_error_naming_what_was_sent() -> None:
    with Port(PYPORT) as port:
        alloc = PortAllocator(port, 2)
        with pytest.raises(errors.DoubleFreeError):
            alloc.free(0)
        with pytest.raises(PortError, match=r"sent:     bogus"):
            PortAllocator(port, 2)._raise(port.request("bogus"))


def test_the_cli_exits_1_on_a_violation_and_prints_the_lines_and_the_table() -> None:
    out = CliRunner().invoke(
        main,
        ["conform", "--seconds", "3", "--max-depth", "3", "--shrink-seconds", "1", "--variant", "reference",
         "--", *PYPORT, "--mutant", "occupy_only_occ"],
    )  # fmt: skip
    assert out.exit_code == 1, out.output
    assert "protocol lines to paste" in out.output and "violation" in out.output


def test_the_cli_asks_for_a_command() -> None:
    assert CliRunner().invoke(main, ["conform"]).exit_code == 2


TRACES = Path(__file__).parent / "data" / "traces"


def test_the_checked_in_traces_are_what_trace_export_writes(tmp_path: Path) -> None:
    # Sequential traces are kept in data/traces, the controlled mode's schedule traces in data/schedules.
    kept = {p.name: p for d in (TRACES, TRACES.parent / "schedules") for p in d.glob("*.jsonl")}
    written = export(tmp_path)
    assert sorted(p.name for p in written) == sorted(kept)
    for path in written:
        assert path.read_text() == kept[path.name].read_text(), (
            f"regenerate: nbbs trace export --out {TRACES}"
        )


def test_the_reference_port_replays_every_trace_and_a_code_mutant_does_not() -> None:
    with Port(PYPORT) as port:
        for path in sorted(TRACES.glob("*.jsonl")):
            assert replay(path, port) == [], path.name
    with Port([*PYPORT, "--mutant", "climb_stops_early"]) as port:
        assert replay(TRACES / "counted-d3-m3.jsonl", port)


def test_trace_replay_on_the_cli_passes_the_reference_port_and_fails_a_mutant() -> None:
    trace = str(TRACES / "counted-d2-m2.jsonl")
    ok = CliRunner().invoke(main, ["trace", "replay", trace, "--port", " ".join(PYPORT)])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(
        main, ["trace", "replay", trace, "--port", " ".join(PYPORT) + " --mutant occupy_only_occ"]
    )
    assert bad.exit_code == 1 and "mismatches" in bad.output


def test_the_controlled_mode_passes_the_reference_port_and_catches_a_code_mutant() -> None:
    options = Options(controlled=True, examples=5, seconds=10.0, variants=("counted",), shrink_seconds=1.0)
    good = conform([*PYPORT, "--controlled"], options)
    assert [r.check for r in good] == ["sequential counted", "controlled counted", "scan cost counted"]
    assert exit_status(good) == 0, [r.detail for r in good]
    bad = conform([*PYPORT, "--controlled", "--mutant", "climb_counts_twice"], options)
    failed = [r for r in bad if r.status == VIOLATION]
    assert exit_status(bad) == 1 and failed
    # The controlled failure names a schedule that replays on the port.
    controlled_failure = next((r for r in failed if r.check == "controlled counted"), None)
    if controlled_failure is not None:
        assert "nbbs conform --controlled --scenario" in controlled_failure.detail


def history(*rows: tuple[int, str, list[int], object, int, int]) -> list[_stress.Record]:
    keys = _stress.KEYS
    return [_stress.Record(**dict(zip(keys, r, strict=True)), line=str(r)) for r in rows]  # type: ignore[arg-type]


class _Shape:
    """What ``check_history`` reads of a ``PortAllocator``: the arena."""

    def __init__(self, depth: int) -> None:
        self.arena = Arena(depth, 4096, 0, None)
        self.depth = depth


def test_the_stress_check_finds_two_blocks_held_at_once_that_overlap() -> None:
    overlapping = history(
        (0, "alloc", [1], 0, 10, 20),  # pages 0-1, held from 20 on
        (1, "alloc", [0], 4096, 15, 30),  # page 1, inside it, returned while it is held
    )
    with pytest.raises(_stress.Violation, match="overlap"):
        _stress.check_history(_Shape(2), overlapping)  # type: ignore[arg-type]


def test_the_stress_check_accepts_a_block_reused_after_its_free_was_called() -> None:
    reused = history(
        (0, "alloc", [1], 0, 10, 20),
        (0, "free", [0, 1], "ok", 25, 40),
        (1, "alloc", [0], 4096, 30, 50),  # overlaps the free in time: the free may come first
    )
    held, (verdict, checked, recorded) = _stress.check_history(_Shape(2), reused)  # type: ignore[arg-type]
    assert held == [(4096, 0)] and verdict == "ok" and checked == recorded == 3
