"""``nbbs verify`` runs the checks, prints a table, and on failure the reproducer and exit code 1."""

import pytest
from click.testing import CliRunner

from nbbs.check import differential
from nbbs.check.mutants import mutant_allocator
from nbbs.check.report import Task
from nbbs.cli import main as cli


def test_a_failing_differential_run_reports_the_shrunk_program() -> None:
    machine = differential.machine(mutant_allocator("occupy_only_occ"), max_depth=2)
    outcome = differential.run_for(machine, 30.0, "mutant")
    assert not outcome.ok
    assert "state.build(" in outcome.detail and "state.alloc" in outcome.detail, outcome.detail


def test_verify_prints_the_reproducer_and_exits_one_on_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = differential.machine(mutant_allocator("occupy_only_occ"), max_depth=2)
    broken = Task(
        "differential: mutant", 1.0, lambda s: differential.run_for(machine, s, "differential: mutant")
    )
    monkeypatch.setattr("nbbs.cli.verify.tasks", lambda: [broken])
    result = CliRunner().invoke(cli.main, ["verify", "--seconds", "5"])
    assert result.exit_code == 1
    assert "state.build(" in result.output and "FAILED" in result.output


def test_verify_passes_on_the_shipped_allocator() -> None:
    result = CliRunner().invoke(cli.main, ["verify", "--seconds", "4"])
    assert result.exit_code == 0, result.output
    assert "differential: NBBS vs spec" in result.output and "FAILED" not in result.output
