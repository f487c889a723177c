"""Issue 13, a newcomer's first hour: each thing a new user hit, shown fixed.

Each test below failed before its fix (the issue names the command that showed it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbbs.check.modelcheck import Config
from nbbs.check.modelcheck import check as check_model
from nbbs.cli.main import main
from nbbs.impl import NBBS, ConfigurationError
from nbbs.model import bits


class SparseWords:
    """A word backend holding only the non-zero words, counting every access (a test double)."""

    def __init__(self, length: int) -> None:
        self.length, self.w, self.loads, self.snapshots = length, dict[int, int](), 0, 0

    def load(self, i: int) -> int:
        self.loads += 1
        return self.w.get(i, 0)

    def cas(self, i: int, expected: int, new: int) -> bool:
        if self.w.get(i, 0) != expected:
            return False
        self.w[i] = new
        return True

    def fetch_or(self, i: int, mask: int) -> int:
        old = self.w.get(i, 0)
        self.w[i] = old | mask
        return old

    def fetch_and(self, i: int, mask: int) -> int:
        old = self.w.get(i, 0)
        self.w[i] = old & mask
        return old

    def store(self, i: int, value: int) -> None:
        self.w[i] = value

    def snapshot(self) -> tuple[int, ...]:
        self.snapshots += 1
        return tuple(self.w.get(i, 0) for i in range(self.length))


# -- 1. bad input to `nbbs check` is a usage error (exit 2), never a traceback ------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--scenario", "alloc 8"],
        ["--scenario", "alloc 0"],
        ["-d", "3", "--scenario", "alloc 16"],
        ["-d", "2", "--max-order", "1", "--scenario", "alloc 1"],
    ],
)
def test_a_scenario_naming_no_block_is_a_usage_error(args: list[str]) -> None:
    res = CliRunner().invoke(main, ["check", *args])
    assert res.exit_code == 2, res.output
    assert "names no block" in res.output and res.exception is not None
    assert isinstance(res.exception, SystemExit)


def test_a_json_path_in_a_missing_folder_is_refused_before_the_search(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["check", "-d", "3", "-t", "3", "--json", str(tmp_path / "no" / "x.json")])
    assert res.exit_code == 2 and "no folder" in res.output, res.output
    assert "states" not in res.output  # refused before exploring anything


def test_a_search_cut_short_exits_three_not_like_a_usage_error() -> None:
    res = CliRunner().invoke(main, ["check", "-t", "2", "-d", "2", "--max-states", "100"])
    assert res.exit_code == 3, res.output


# -- 3. `nbbs check --json` writes a file `nbbs replay` takes ----------------------------------


def test_replay_takes_the_counterexample_file_check_writes(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    res = CliRunner().invoke(
        main, ["check", "-t", "2", "-d", "2", "--variant", "reference", "--stop-at-first", "--json", str(out)]
    )
    assert res.exit_code == 1 and out.exists(), res.output
    rep = CliRunner().invoke(main, ["replay", str(out)])
    assert rep.exit_code == 1, rep.output
    assert "reproduced (" in rep.output and "nbbs replay d2-m2-reference" in rep.output


def test_a_file_that_is_no_counterexample_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"depth": 2}))
    res = CliRunner().invoke(main, ["replay", str(bad)])
    assert res.exit_code == 2 and "needs the keys" in res.output, res.output


def test_a_schedule_replayed_on_the_wrong_variant_is_a_usage_error_not_a_crash() -> None:
    # The reference's leak, replayed on counted: the schedule does not fit its accesses.
    res = CliRunner().invoke(main, ["replay", "d3-m3-counted:a0@0+f0,a0@1+f0:a19b14a2b5"])
    assert res.exit_code == 2, res.output
    assert "does not fit" in res.output and "'counted'" in res.output
    assert "Traceback" not in res.output and "crash" not in res.output


# -- 4. tables fit 80 columns ------------------------------------------------------------------


def test_the_check_table_fits_80_columns_without_cutting_a_cell() -> None:
    args = ["check", "-t", "2", "-d", "2", "--variant", "reference", "--property", "b", "--stop-at-first"]
    res = CliRunner().invoke(main, args, terminal_width=80)
    lines = res.output.splitlines()
    assert all(len(line) <= 80 for line in lines), res.output
    assert "…" not in res.output, res.output
    assert "transitions" in res.output and "FAIL" in res.output


# -- 8. one spelling of variant names ------------------------------------------------------------


def test_variant_names_are_spelled_with_underscores_and_the_shipped_one_is_top_down_node() -> None:
    # The shipped variant is top_down_node since issue 12's switch (ALGORITHM.md §1.4.5); the
    # old spelling "nbbs" meant counted and still points there (the test below).
    assert all("-" not in name for name in bits.VARIANTS)
    assert bits.DEFAULT_VARIANT == "top_down_node" and "nbbs" not in bits.VARIANTS


@pytest.mark.parametrize(
    ("command", "old", "new"),
    [
        (["check"], "rollback-only", "rollback_only"),
        (["check"], "nbbs", "counted"),
        (["explore", "--seconds", "1"], "nbbs", "counted"),
        (["explore", "--seconds", "1"], "skip-only", "skip_only"),
        (["prove"], "rollback-skip", "rollback_skip"),
    ],
)
def test_an_old_variant_spelling_is_refused_with_the_new_name(command: list[str], old: str, new: str) -> None:
    res = CliRunner().invoke(main, [*command, "--variant", old], terminal_width=200)
    assert res.exit_code == 2, res.output
    assert f"did you mean {new!r}" in res.output


def test_the_allocator_refuses_an_old_variant_spelling_with_the_list_of_names() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'rollback_only'"):
        NBBS(2, variant="rollback-only")


# -- 10. live_blocks walks only the occupied paths ------------------------------------------------


def test_live_blocks_at_depth_24_reads_only_the_paths_of_the_few_blocks_held() -> None:
    words: list[SparseWords] = []

    def backend(n: int) -> SparseWords:
        words.append(SparseWords(n))
        return words[0]

    heap = NBBS(24, page_size=1, backend=backend)
    held = sorted([(heap.alloc(0, hint=7), 0), (heap.alloc(5, hint=3), 5), (heap.alloc(20), 20)])
    w = words[0]
    w.loads = 0
    assert heap.live_blocks() == held
    # The old walk read all 2**25 words (7.8 s); this one about depth words per block.
    assert w.snapshots == 0 and w.loads <= 3 * 25, w.loads
    heap.free(held[1][0])
    assert heap.live_blocks() == [held[0], held[2]]


# -- 2. the README's check commands say what they show ---------------------------------------------


def test_the_readme_asks_for_property_a_where_it_promises_an_overlap() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    lines = [line for line in readme.splitlines() if line.startswith("nbbs check")]
    overlap = [line for line in lines if line.rstrip().endswith("an overlap")]
    assert overlap and all("--property a" in line for line in overlap), overlap


def test_stop_at_first_stops_at_whichever_property_fails_first() -> None:
    # Why the README's first reference command shows a lost block, not an overlap.
    res = CliRunner().invoke(
        main, ["check", "-t", "2", "-d", "2", "--variant", "reference", "--stop-at-first"]
    )
    assert res.exit_code == 1 and "(b) fails" in res.output and "(a) fails" not in res.output


# -- 6. the differential machines (and so `nbbs verify`) call alloc_bytes --------------------------


class RoundsDown(NBBS):
    """A mutant whose ``alloc_bytes`` rounds the pages down to a power of two, not up."""

    def alloc_bytes(self, size: int) -> int | None:
        if not isinstance(size, int) or size <= 0:
            return super().alloc_bytes(size)
        pages = -(-size // self.arena.page_size)
        return self.alloc(min(pages.bit_length() - 1, self.max_order))


def test_verify_s_differential_machine_catches_alloc_bytes_rounding_down() -> None:
    from nbbs.check import differential

    outcome = differential.run_for(differential.machine(RoundsDown), 20.0, "rounds down")
    assert not outcome.ok and "alloc_bytes" in outcome.detail, outcome.detail
    assert differential.run_for(differential.NBBSMachine, 1.0, "shipped").ok


# -- 5. `nbbs verify` keeps to its budget, and reports every failure as a row ---------------------


def test_verify_shares_out_only_the_time_that_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbbs.check.report import Outcome, Task

    given: list[float] = []

    def fake(name: str, share: float) -> Task:
        def run(seconds: float) -> Outcome:
            given.append(seconds)
            time.sleep(seconds)  # uses its whole share
            return Outcome(name, 1, True, seconds, complete=name != "b")

        return Task(name, share, run)

    monkeypatch.setattr("nbbs.cli.verify.tasks", lambda: [fake("a", 1.0), fake("b", 2.0), fake("c", 1.0)])
    res = CliRunner().invoke(main, ["verify", "--seconds", "1.2"])
    assert res.exit_code == 0, res.output
    assert sum(given) <= 1.2 and given[1] > given[0] > 0
    assert "ok*" in res.output and "budget ran out" in res.output


def test_a_fixed_size_check_stops_when_its_time_is_up() -> None:
    # 3 threads at depth 2 has 772,056 states; a quarter of a second sees a few thousand.
    r = check_model(Config(3, 2, seconds=0.25))
    assert not r.complete and not r.violations and r.states < 772_056


def test_a_count_leaving_its_range_is_a_reported_failure_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nbbs.check.modelcheck import _outcome
    from nbbs.check.mutants import COUNTED_MUTANTS
    from nbbs.check.report import Task

    broken = Config(2, 1, transitions=COUNTED_MUTANTS["unmark_wrong_side"][1])
    r = check_model(broken)
    assert "a count left" in r.violations["b"].message
    monkeypatch.setattr(
        "nbbs.cli.verify.tasks", lambda: [Task("model check mutant", 1.0, lambda s: _outcome(broken, True))]
    )
    res = CliRunner().invoke(main, ["verify", "--seconds", "5"])
    assert res.exit_code == 1 and "FAILED" in res.output and "a count left" in res.output
    assert not isinstance(res.exception, AssertionError)


def test_a_failing_differential_check_prints_one_program_not_an_exception_group() -> None:
    from nbbs.check import differential

    outcome = differential.run_for(differential.machine(RoundsDown), 10.0, "rounds down", shrink_seconds=2.0)
    assert not outcome.ok and "state.build(" in outcome.detail
    assert "ExceptionGroup" not in outcome.detail and "distinct failures" not in outcome.detail


def test_verify_help_says_what_it_runs() -> None:
    text = CliRunner().invoke(main, ["verify", "--help"]).output
    for part in ("differential", "model check", "explore", "proofs", "ok*", "double frees", "alloc_bytes"):
        assert part in text, part
