"""``nbbs explore`` and ``nbbs replay`` print what to re-run and exit 1 on a failure."""

from __future__ import annotations

from click.testing import CliRunner

from nbbs.cli.main import main


def test_replay_prints_every_step_and_fails_on_the_reference_leak() -> None:
    res = CliRunner().invoke(
        main, ["replay", "d3-m3-reference:a0@0+f0,a0@1+f0:a19b14a2b5", "--quiescent", "strict"]
    )
    assert res.exit_code == 1
    assert "fetch_or" in res.output and "tree after:" in res.output and "node 1 (level 0)" in res.output


def test_replay_of_a_passing_schedule_exits_zero() -> None:
    res = CliRunner().invoke(main, ["replay", "d3-m3-counted:a0@0+f0,a0@1+f0:a19b19"])
    assert res.exit_code == 0 and "all checks passed" in res.output


def test_a_bad_schedule_string_is_a_usage_error() -> None:
    res = CliRunner().invoke(main, ["replay", "d3-m3-counted:a0@0:q"])
    assert res.exit_code == 2 and "schedule" in res.output


def test_explore_reports_a_table_and_the_first_failure() -> None:
    ok = CliRunner().invoke(
        main,
        [
            "explore",
            "--scenario",
            "d3-m3-counted:a0@0+f0,a0@1+f0",
            "--strategy",
            "exhaustive",
            "--seconds",
            "5",
        ],
    )
    assert ok.exit_code == 0 and "schedules/s" in ok.output
    bad = CliRunner().invoke(
        main,
        [
            "explore",
            "--variant",
            "plain_store_climb",
            "--strategy",
            "pct",
            "--seconds",
            "10",
            "--threads",
            "3",
        ],
    )
    assert bad.exit_code == 1 and "first failure" in bad.output and "nbbs replay" in bad.output
