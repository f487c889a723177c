"""SPIN, on a Promela model generated from the step machines, agrees with the model checker.

Each SPIN run compiles a ``pan`` (a few seconds on this machine, most of the cost), so the
default tests run a handful of small configurations; ``HYPOTHESIS_PROFILE=deep`` runs every
variant, every mutant and every kept counterexample. Skipped where SPIN is not installed
(``apt-get install -y spin``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbbs.check import _spin, spin
from nbbs.check._mc import Checker, Config, check
from nbbs.check._mc_cases import CASES, Case
from nbbs.check.bridge import counterexample_of, reproduce
from nbbs.check.modelcheck import to_json
from nbbs.check.mutants import COUNTED_MUTANTS, TRANSITION_MUTANTS
from nbbs.cli.main import main
from nbbs.model import bits, steps

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"
needs_spin = pytest.mark.skipif(not spin.available(), reason=spin.INSTALL_HINT)
SAFETY = ("a", "b", "c")


@pytest.fixture(autouse=True)
def _fast_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    # On models this small compiling pan dominates: do not optimise it.
    monkeypatch.setattr(_spin, "OPTIMIZE", "-O0")


def _ours(cfg: Config) -> tuple[int, int]:
    """The model checker's (states, transitions) with the thread symmetry undone."""
    c = Checker(cfg)
    assert c.run().ok
    return spin.symmetric_count(c.sp, c.states)


def _first_violation_steps(cfg: Config) -> int:
    """How many steps the model checker's shortest counterexample to any property takes."""
    r = check(dataclasses.replace(cfg, stop_at_first=True))
    assert r.violations
    return min(len(v.steps) for v in r.violations.values())


# -- the same state space -------------------------------------------------------------------

COUNTED = [
    Config(2, 2, variant="counted", properties=SAFETY),
    # 625 initial sets: more than a byte can number.
    Config(1, 3, variant="counted", max_order=1, properties=SAFETY),
    Config(2, 1, variant="corrected", mode="scan", checked_free=True, properties=SAFETY),
    Config(2, 2, properties=SAFETY),  # the shipped variant, top_down_node
]
if DEEP:
    COUNTED += [
        Config(3, 1, variant="counted", properties=SAFETY),
        Config(2, 2, variant="counted", max_order=1, properties=SAFETY),
        Config(2, 2, variant="corrected", properties=SAFETY),
        Config(2, 2, variant="counted", mode="scan", checked_free=True, properties=SAFETY),
        Config(3, 2, variant="counted", properties=SAFETY),
        Config(2, 3, variant="counted", properties=SAFETY),
    ]


@needs_spin
@pytest.mark.parametrize("cfg", COUNTED, ids=[c.label for c in COUNTED])
def test_spin_stores_exactly_our_states_with_the_thread_symmetry_undone(cfg: Config) -> None:
    run = spin.run(cfg)
    states, transitions = _ours(cfg)
    assert run.result.complete and not run.result.violations
    # SPIN also stores the state before init picks the initial blocks, and counts its choices.
    assert (run.stored, run.spin_transitions) == (states + 1, transitions + len(run_sets(cfg)) + 1)
    assert (run.result.states, run.result.transitions) == (states, transitions)


def run_sets(cfg: Config) -> list[frozenset[int]]:
    return spin.extract(cfg).space.sets


def test_symmetric_count_is_the_count_of_a_search_without_symmetry() -> None:
    cfg = Config(2, 1)
    c = Checker(cfg)
    c.run()
    sp = c.sp
    # Search the concrete states (thread k stays thread k) with the model checker's tables.
    seen = {(sp.words_of(s), tuple(sp.tids(s)), sp.static(s)) for s in sp.initial()}
    todo, edges = list(seen), 0
    while todo:
        words, tids, static = todo.pop()
        for k in range(len(tids)):
            for op in sp.moves(tids[k]):
                shift, _, rows = sp.table(op)
                node = shift // sp.word_bits + 1
                new, nxt, _ = rows[words[node]]
                nxt_words = (*words[:node], new, *words[node + 1 :])
                nxt_state = (nxt_words, (*tids[:k], nxt, *tids[k + 1 :]), static)
                edges += 1
                if nxt_state not in seen:
                    seen.add(nxt_state)
                    todo.append(nxt_state)
    assert spin.symmetric_count(sp, c.states) == (len(seen), edges)
    assert len(seen) > len(c.states)


@needs_spin
def test_a_broken_generator_makes_the_cross_check_fail() -> None:
    cfg = Config(2, 1, variant="counted", properties=SAFETY)  # counted's bottom-up climb CAS (C_CAS)
    tables = spin.extract(cfg)
    # Off by one: the first climb CAS that succeeds now writes the next value in the node's list.
    e = next(e for e, op in enumerate(tables.space.ops) if op.pc == steps.C_CAS and e in tables.rows)
    row = tables.rows[e]
    i = next(i for i, (new, _, _) in enumerate(row) if new != i)
    new, nxt, done = row[i]
    row[i] = ((new + 1) % len(tables.values[tables.access_node[e]]), nxt, done)
    assert spin.cross_check(cfg) == []
    problems = spin.cross_check(cfg, tables)
    assert problems, "the broken table went unnoticed"


# -- the same counterexamples -----------------------------------------------------------------

KEPT = CASES if DEEP else [c for c in CASES if c.filename in ("reference-b.json", "corrected-a.json")]


@needs_spin
@pytest.mark.parametrize("case", KEPT, ids=[c.filename for c in KEPT])
def test_spin_finds_every_kept_counterexample_and_it_replays_on_the_allocator(case: Case) -> None:
    cfg = case.config()
    run = spin.run(cfg)
    v = run.result.violations.get(case.prop)
    assert v is not None, run.result.violations
    # Both searches are breadth-first: SPIN's first violation is as short as ours.
    assert len(v.steps) == _first_violation_steps(cfg)
    data = to_json(v, cfg, v.message)
    assert data["property"] == case.prop
    rep = reproduce(counterexample_of(v, cfg))
    assert rep.reproduced, rep.detail


MUTANTS = {**TRANSITION_MUTANTS, **COUNTED_MUTANTS}
QUICK_MUTANTS = ["unmark_ignores_coal", "climb_does_not_count"]


@needs_spin
@pytest.mark.parametrize("name", sorted(MUTANTS) if DEEP else QUICK_MUTANTS)
def test_spin_catches_every_mutant_at_the_depth_we_do(name: str) -> None:
    depth = 2 if name in COUNTED_MUTANTS or name in ("mark_stops_early", "unmark_never_stops") else 1
    depth = 2 if name == "occupy_only_occ" else depth
    cfg = Config(2, depth, transitions=MUTANTS[name][1], properties=SAFETY)
    run = spin.run(cfg)
    try:
        ours = _first_violation_steps(cfg)
    except AssertionError as e:
        # The model checker refuses a count outside 0..count_bound; SPIN shows the way there.
        assert "[counted] a count left" in str(e)
        assert run.refused is not None or run.result.violations
        return
    # A counted mutant may drive a count out of bounds in (b)'s sequential alloc, where SPIN's
    # tables stop (refused) and our checker goes on with plain ints: the same state either way.
    found = [*run.result.violations.values()] or ([run.refused] if run.refused else [])
    assert found, name
    assert len(found[0].steps) == ours


@needs_spin
def test_spin_finds_the_livelock_of_a_scan_that_never_gives_up() -> None:
    run = spin.run(Config(2, 1, gives_up=False, properties=("d",)))
    v = run.result.violations["d"]
    assert v.cycle_start is not None and v.cycle_start < len(v.steps)
    # The cycle closes: the state after its last step is the one before its first.
    assert v.steps[-1].words == (v.steps[v.cycle_start - 1].words if v.cycle_start else v.initial_words)


# -- the engine in the CLI, bitstate, and without SPIN ---------------------------------------------


@needs_spin
def test_bitstate_mode_reports_its_coverage_estimate() -> None:
    cfg = Config(2, 1, properties=SAFETY)
    run = spin.run(cfg, bitstate=16)
    states, _ = _ours(cfg)
    assert not run.result.complete and run.hash_factor is not None and run.omission is not None
    assert run.result.states <= states and run.hash_factor > 1


@needs_spin
def test_a_swarm_of_bitstate_searches_finds_the_reference_defect() -> None:
    run = spin.swarm(Config(2, 2, variant="reference", properties=SAFETY), 2, bitstate=18, jobs=2)
    assert [row["seed"] for row in run.runs] == [1, 2]
    assert not run.result.complete and run.result.violations
    # Depth-first: a real counterexample (checked against our successors), not a shortest one.
    v = next(iter(run.result.violations.values()))
    assert len(v.steps) >= _first_violation_steps(Config(2, 2, variant="reference", properties=SAFETY))


@needs_spin
def test_the_cli_runs_spin_and_writes_the_counterexample(tmp_path: Path) -> None:
    out = tmp_path / "cx.json"
    args = ["check", "-t", "2", "-d", "2", "--variant", "reference", "--engine", "spin"]
    res = CliRunner().invoke(main, [*args, "--json", str(out)])
    assert res.exit_code == 1, res.output
    assert "nbbs check --engine spin" in res.output and "SPIN stored" in res.output
    assert "on the real allocator: reproduced" in res.output and "nbbs replay d2-m2-reference" in res.output
    assert out.exists()


def test_without_spin_the_cli_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_spin, "available", lambda: False)
    res = CliRunner().invoke(main, ["check", "-t", "2", "-d", "1", "--engine", "spin"])
    assert res.exit_code == 4
    assert "apt-get install -y spin" in res.output


@pytest.mark.parametrize("name", sorted(bits.VARIANTS) + sorted(MUTANTS))
def test_the_model_is_generated_for_every_variant_and_mutant(name: str) -> None:
    cfg = Config(2, 1, variant=name) if name in bits.VARIANTS else Config(2, 1, transitions=MUTANTS[name][1])
    model = spin.promela(spin.extract(cfg))
    assert "active proctype thread1()" in model.pml and "static const" in model.header
    live = spin.promela(spin.extract(cfg), liveness=True)
    assert "never" in live.pml and "now.prog = DONE[r];" in live.pml
