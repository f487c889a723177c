"""The distributed engine finds exactly what the one-process search finds, and a broken one is caught.

One local Dask cluster of 2 worker processes serves the whole module (starting it takes a few
seconds); without Dask's ``distributed`` the tests skip, saying why.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nbbs.check import _dist, _spin, dist, modelcheck, spin
from nbbs.check._mc import Checker, Config, Result
from nbbs.check.modelcheck import check, replay, to_json
from nbbs.check.mutants import COUNTED_MUTANTS, TRANSITION_MUTANTS
from nbbs.cli.main import main

pytestmark = pytest.mark.skipif(not dist.available(), reason=dist.INSTALL_HINT)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    c = dist.connect(2)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


def differences(a: Result, b: Result) -> list[str]:
    """Where the distributed result ``b`` differs from the one-process ``a`` (empty: nowhere)."""
    return modelcheck.differences(a, b, ("one process", "distributed"))


REFERENCE_B = ((("alloc", 4),), (("alloc", 1), ("free", 1), ("alloc", 5), ("free", 5)))
"""tests/data/counterexamples/reference-b.json's operations, in attempt mode."""

SAFETY = ("a", "b", "c")
"""Most cases skip (d): its peeling rounds cost time; two cases keep it, one with a livelock."""

SAME = {
    "counted-2threads-depth1": Config(2, 1, variant="counted"),
    # The shipped variant: its two-pass climb has op states counted's lacks (ascent, descent, undo).
    "top-down-node-2threads-depth1": Config(2, 1, variant="top_down_node"),
    "top-down-node-3threads-depth1": Config(3, 1, variant="top_down_node", properties=SAFETY),
    "counted-2threads-depth1-scan-checked": Config(
        2, 1, variant="counted", mode="scan", checked_free=True, properties=SAFETY
    ),
    "reference-lost-block-scenario": Config(
        2, 2, variant="reference", scenario=REFERENCE_B, properties=SAFETY
    ),
    "mutant-climb-keeps-coal": Config(
        2, 1, transitions=TRANSITION_MUTANTS["climb_keeps_coal"][1], properties=SAFETY
    ),
    # Pinned to counted, the default when these were written (the switch's helper had no Dask).
    "scan-forever-livelock": Config(2, 1, variant="counted", gives_up=False, properties=("a", "c", "d")),
    "racing-double-frees": Config(
        2, 2, variant="counted", scenario=((("dfree", 2),), (("dfree", 2),)), properties=SAFETY
    ),
}


@pytest.mark.parametrize("cfg", SAME.values(), ids=SAME.keys())
def test_the_distributed_search_finds_the_same_states_verdicts_and_shortest_counterexamples(
    cfg: Config, client: Any
) -> None:
    seen: list[tuple[int, int]] = []
    one = check(cfg)
    many = dist.check(cfg, lambda r, queue: seen.append((r.states, queue)), client=client)
    assert differences(one, many) == []
    # Progress after every level, as `nbbs check` shows it: the states so far, growing to all.
    states = [n for n, _ in seen]
    assert states == sorted(states) and states[-1] == many.states
    replayable = cfg.transitions is None and cfg.gives_up  # what to_json can say
    for p, v in many.violations.items() if replayable else ():
        # Each counterexample replays on the step machines, step for step, to its last words.
        trace, words, _ = replay(to_json(v, cfg, v.message))
        assert len(trace) == len(v.steps) and tuple(words) == v.steps[-1].words, p
    if cfg.scenario == REFERENCE_B:
        assert len(many.violations["b"].steps) == 22  # the kept counterexample's length


def test_a_count_out_of_range_is_reported_as_b_as_one_process_does(client: Any) -> None:
    cfg = Config(2, 1, transitions=COUNTED_MUTANTS["unmark_wrong_side"][1])
    a, b = check(cfg), dist.check(cfg, client=client)
    assert not a.complete and not b.complete
    assert sorted(b.violations) == sorted(a.violations) == ["b"]
    assert len(b.violations["b"].steps) == len(a.violations["b"].steps)
    assert "corrupts a word" in b.violations["b"].message


@pytest.mark.parametrize("defect", sorted(dist.DEFECTS))
def test_a_broken_partition_or_successor_function_fails_the_cross_check(defect: str, client: Any) -> None:
    cfg = Config(2, 1, variant="counted", properties=SAFETY)
    try:
        b = dist.check(cfg, client=client, defect=defect)
    except AssertionError as e:  # the engine's own consistency checks caught it
        assert "internal bug" in str(e)
        return
    assert differences(check(cfg), b) != []


def test_an_unknown_defect_is_refused(client: Any) -> None:
    with pytest.raises(ValueError, match="no defect"):
        dist.check(Config(2, 1, variant="counted"), client=client, defect="nonsense")


def test_the_cli_runs_the_distributed_engine_on_a_running_cluster(client: Any, tmp_path: Path) -> None:
    out = tmp_path / "cx.json"
    args = ["check", "-d", "2", "--variant", "reference", "--empty", "--property", "b"]
    args += ["--scenario", "alloc 4; alloc 1, free 1, alloc 5, free 5"]
    res = CliRunner().invoke(
        main, [*args, "--engine", "dist", "--workers", client.scheduler.address, "--json", str(out)]
    )
    assert res.exit_code == 1, res.output
    assert "(b) fails" in res.output and " 265 " in res.output  # the one-process search's states
    assert "nbbs check --engine dist" in res.output
    assert len(json.loads(out.read_text())["schedule"]) == 22


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "dist", "--workers", "0"], "at least one worker"),
        (["--engine", "dist", "--workers", "nowhere"], "scheduler address"),
        (["--workers", "2"], "--workers needs --engine dist"),
    ],
)
def test_the_cli_refuses_a_bad_workers_option(args: list[str], message: str) -> None:
    res = CliRunner().invoke(main, ["check", "-d", "1", *args])
    assert res.exit_code == 2 and message in res.output, res.output


@pytest.mark.skipif(not spin.available(), reason=spin.INSTALL_HINT)
def test_a_swarm_runs_its_searches_on_the_cluster_and_finds_the_reference_defect(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_spin, "OPTIMIZE", "-O0")  # tiny models: compiling dominates (sent to the workers)
    cfg = Config(2, 2, variant="reference", properties=SAFETY)
    run = spin.swarm(cfg, 2, bitstate=18, client=client)
    assert [row["seed"] for row in run.runs] == [1, 2]
    assert all(row["hash_factor"] > 1 and 0 <= row["omission"] <= 1 for row in run.runs)
    assert not run.result.complete and run.result.violations  # a real one, replayed on our successors
    # The searches ran on the workers (each compiled pan there), not in this process.
    assert not _spin._SWARM_BUILDS
    assert sum(client.run(lambda: len(_spin._SWARM_BUILDS)).values()) >= 1


def test_every_process_numbers_the_op_states_alike_only_after_the_closure() -> None:
    # Op ids are interned as a search meets them: without the closure two processes that meet
    # the op states in different orders encode one state differently (the client refuses that).
    cfg = Config(2, 2, variant="reference")
    a, b = _dist.numbered_checker(cfg), _dist.numbered_checker(cfg)
    assert _dist.numbering(a) == _dist.numbering(b)
    lazy = Checker(cfg)
    last = list(lazy.sp.initial())[-1]
    lazy.sp.successors(last)  # meets the op states in the order this one state's steps need
    assert _dist.numbering(lazy) != _dist.numbering(a)


def test_without_dask_the_cli_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist, "available", lambda: False)
    res = CliRunner().invoke(main, ["check", "-t", "2", "-d", "1", "--engine", "dist"])
    assert res.exit_code == 4 and "pip install -e '.[dist]'" in res.output, res.output


def test_a_worker_lost_during_the_search_ends_it_with_an_error_not_a_hang(client: Any) -> None:
    # Kills one of the module's workers; its nanny starts a new one (another address, owning
    # none of the run's states), which the other tests then use.
    victim = sorted(client.scheduler_info()["workers"])[1]
    pid = client.run(os.getpid, workers=[victim])[victim]
    killed: list[bool] = []

    def kill(r: Result, queue: int) -> None:
        if not killed:
            killed.append(True)
            os.kill(pid, signal.SIGKILL)

    try:
        with pytest.raises(dist.DistError, match="left the cluster"):
            dist.check(Config(2, 2, variant="counted"), kill, client=client)
    finally:
        client.wait_for_workers(2, timeout=60)
