"""The vectorized engine finds exactly what the Python engine finds, and a broken one is caught."""

from __future__ import annotations

import numpy as np
import pytest

from nbbs.check import _mc, _mc_vec, modelcheck
from nbbs.check._mc import Config
from nbbs.check.modelcheck import check, check_vec
from nbbs.check.mutants import COUNTED_MUTANTS, TRANSITION_MUTANTS


def differences(cfg: Config, **vec_options: object) -> list[str]:
    """What the two engines disagree on for ``cfg`` (empty: they agree)."""
    a = check(cfg)
    try:
        b = check_vec(cfg, **vec_options)  # type: ignore[arg-type]
    except AssertionError as e:  # the vec engine's own consistency checks
        return [f"vec engine: {e}"]
    return modelcheck.differences(a, b, ("python", "vec"))


SAME = {
    "counted-2threads-depth1": Config(2, 1, variant="counted"),
    "counted-3threads-depth1": Config(3, 1, variant="counted"),
    "counted-2threads-depth2": Config(2, 2, variant="counted"),
    "counted-2threads-depth2-max-order-1": Config(2, 2, variant="counted", max_order=1),
    "counted-2threads-depth2-scan-checked": Config(2, 2, variant="counted", mode="scan", checked_free=True),
    "counted-3threads-depth1-empty": Config(3, 1, variant="counted", initial="empty"),
    "reference-2threads-depth1": Config(2, 1, variant="reference"),
    "reference-2threads-depth2": Config(2, 2, variant="reference"),
    "reference-3threads-depth1": Config(3, 1, variant="reference"),
    "corrected-2threads-depth2": Config(2, 2, variant="corrected"),
    "scan-forever-2threads-depth1": Config(2, 1, gives_up=False, properties=("a", "c", "d")),
    "corrected-a-scenario-3threads-depth3": Config(
        3,
        3,
        variant="corrected",
        initial="empty",
        scenario=((("alloc", 4), ("free", 4), ("alloc", 1)), (("alloc", 10), ("free", 10)), (("alloc", 11),)),
    ),
}


@pytest.mark.parametrize("cfg", SAME.values(), ids=SAME.keys())
def test_the_vec_engine_finds_the_same_states_and_verdicts_as_the_python_engine(cfg: Config) -> None:
    assert differences(cfg) == []


@pytest.mark.parametrize(
    "name", ["climb_keeps_coal", "mark_wrong_side", "unmark_ignores_coal", "occupy_only_occ"]
)
def test_the_vec_engine_agrees_on_transition_mutants(name: str) -> None:
    depth = 2 if name == "occupy_only_occ" else 1
    assert differences(Config(2, depth, transitions=TRANSITION_MUTANTS[name][1])) == []


def test_the_vec_engine_finds_the_three_thread_overlap_of_the_reference_at_depth_two() -> None:
    # The Python engine's shortest counterexample here has 23 steps too (measured: it needs
    # minutes to get there, too long for the default tests).
    cfg = Config(3, 2, variant="reference", properties=("a",), stop_at_first=True)
    v = check_vec(cfg).violations["a"]
    assert len(v.steps) == 23 and "overlap" in v.message


@pytest.mark.parametrize("props", [("a", "b", "c", "d"), ("a", "c")], ids=["all", "a-c"])
def test_a_count_out_of_bounds_is_reported_as_b_by_both_engines_alike(props: tuple[str, ...]) -> None:
    # With (b) checked, both see the initial words fail it first; without, both stop at the
    # step that corrupts a word and report that as (b), with the same path length. Their
    # state counts differ (incomplete: the Python engine counts states found, not yet checked).
    cfg = Config(2, 2, transitions=COUNTED_MUTANTS["climb_counts_twice"][1], properties=props)
    a, b = check(cfg), check_vec(cfg)
    assert not a.complete and not b.complete
    assert a.violations["b"].message == b.violations["b"].message
    assert len(a.violations["b"].steps) == len(b.violations["b"].steps)
    if props == ("a", "c"):
        assert (
            "corrupts a word" in b.violations["b"].message
            and "a count left 0..4" in b.violations["b"].message
        )


DFREE = {
    "dfree-2threads-depth2-root": Config(2, 2, scenario=((("dfree", 1),), (("dfree", 1),))),
    "dfree-3threads-depth2-node2": Config(3, 2, scenario=((("dfree", 2),),) * 3),
    "dfree-2threads-depth3-page9-max-order1": Config(2, 3, max_order=1, scenario=((("dfree", 9),),) * 2),
}


@pytest.mark.parametrize("cfg", DFREE.values(), ids=DFREE.keys())
def test_the_vec_engine_checks_racing_double_frees_as_the_python_engine(cfg: Config) -> None:
    assert differences(cfg) == []


def test_the_vec_engine_catches_a_release_that_is_a_plain_store(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_double_free import StoreRelease  # the published release: a plain store

    monkeypatch.setattr(_mc, "Machine", StoreRelease)
    cfg = Config(2, 2, scenario=((("dfree", 2),), (("dfree", 2),)))
    assert differences(cfg) == []
    assert "freed twice" in check_vec(cfg).violations["b"].message


def test_a_time_budget_cuts_the_vec_search_short_and_says_so() -> None:
    full = check_vec(Config(2, 2))
    cut = check_vec(Config(2, 2, seconds=0.0))  # stops after the first bucket it steps
    assert full.complete and not cut.complete and cut.states < full.states


def test_a_kept_counterexample_of_the_vec_engine_replays_like_the_python_engines() -> None:
    cfg = Config(2, 2, variant="reference")
    v = check_vec(cfg).violations["b"]
    assert "lost" in v.message and v.schedule and len(v.schedule) == len(v.steps)


def test_a_lock_freedom_cycle_of_the_vec_engine_comes_back_to_its_start() -> None:
    v = check_vec(Config(2, 1, gives_up=False, properties=("d",))).violations["d"]
    assert v.cycle_start is not None and v.cycle_start < len(v.steps)
    start = v.steps[v.cycle_start - 1].words if v.cycle_start else v.initial_words
    assert v.steps[-1].words == start


def test_seen_runs_spilled_to_disk_give_the_same_search(tmp_path: object) -> None:
    assert differences(Config(2, 2, variant="reference"), memory_budget=1, workdir=tmp_path) == []


def test_two_word_keys_that_share_h_are_told_apart() -> None:
    # Force every h equal: dedup and lookup must then use hi alone.
    h = np.zeros(6, np.uint64)
    hi = np.array([5, 3, 5, 1, 3, 9], np.uint64)
    u = _mc_vec.sort_unique(_mc_vec.Keys(h, hi))
    assert u.hi is not None and u.hi.tolist() == [1, 3, 5, 9]
    found, _ = _mc_vec.find(u, _mc_vec.Keys(np.zeros(3, np.uint64), np.array([3, 4, 9], np.uint64)))
    assert found.tolist() == [True, False, True]


# -- the cross-check catches a broken engine ----------------------------------------------------------


@pytest.mark.parametrize("path", ["expand", "successors"], ids=["c-kernel", "numpy"])
def test_a_successor_function_that_drops_a_thread_is_caught(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path == "successors":
        monkeypatch.setattr(_mc_vec, "native", lambda: None)  # the numpy code steps the states
    real = getattr(_mc_vec.Tables, path)

    def drops_some(
        self: _mc_vec.Tables, *args: object, **kw: object
    ) -> tuple[_mc_vec.Keys, _mc_vec.Arr, _mc_vec.Arr]:
        out, done, src = real(self, *args, **kw)
        keep = np.arange(len(out)) % 5 != 0  # every fifth successor is lost
        return out.take(np.nonzero(keep)[0]), done[keep[: len(done)]], src[keep[: len(src)]]

    monkeypatch.setattr(_mc_vec.Tables, path, drops_some)
    found = differences(Config(2, 2, properties=("a", "b", "c")))
    assert any(d.startswith("states") for d in found), found


@pytest.mark.skipif(_mc_vec.native() is None, reason="no C compiler: the numpy code is the only one")
@pytest.mark.parametrize("lazy", [False, True], ids=["every-row", "rows-when-reached"])
@pytest.mark.parametrize(
    "cfg", [Config(3, 2), Config(4, 2)], ids=["3threads-depth2-one-word", "4threads-depth2-two-words"]
)
def test_the_c_kernel_steps_states_exactly_as_the_numpy_code(cfg: Config, lazy: bool) -> None:
    tb = _mc_vec.Tables(_mc_vec.Checker(cfg), lazy=lazy)
    level = _mc_vec.sort_unique(tb.encode(tb.initial_rows()))
    for _ in range(6):  # a few BFS levels deep, where every kind of step has happened
        c_keys, c_done, c_src = tb.expand(level)
        n_keys, n_done, n_src = tb.successors(tb.decode(level), level)
        c = sorted(zip(c_src.tolist(), c_keys.h.tolist(), c_done.tolist(), strict=True))
        n = sorted(zip(n_src.tolist(), n_keys.h.tolist(), n_done.tolist(), strict=True))
        assert c == n
        level = _mc_vec.sort_unique(c_keys)


def test_a_dedup_that_keeps_duplicates_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _mc_vec.sort_unique

    def keeps_some(k: _mc_vec.Keys) -> _mc_vec.Keys:
        u = real(k)
        return _mc_vec._concat([u, u.take(np.arange(0, len(u), 7))], u.hi is not None)

    monkeypatch.setattr(_mc_vec, "sort_unique", keeps_some)
    found = differences(Config(2, 1))
    assert found, "a dedup that keeps duplicates went unnoticed"


def test_a_lookup_that_misses_the_seen_states_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_mc_vec.Store, "contains", lambda self, k: np.zeros(len(k), bool))
    # Without the seen set the search never ends: cut at max_states, it is incomplete.
    found = differences(Config(2, 1, max_states=20_000))
    assert any(d.startswith("complete") for d in found), found


def test_nbbs_check_runs_the_vec_engine_and_prints_its_counterexample() -> None:
    from click.testing import CliRunner

    from nbbs.cli.check import check_command

    ok = CliRunner().invoke(check_command, ["-t", "2", "-d", "1", "--engine", "vec"])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(
        check_command, ["-t", "2", "-d", "2", "--variant", "reference", "--engine", "vec"]
    )
    assert bad.exit_code == 1 and "(b)" in bad.output and "lost" in bad.output, bad.output
    # Said as soon as found, before the search ends and prints the counterexample.
    assert "fails: block 1 is free" in bad.output.split("counterexample")[0], bad.output


# -- rows computed when first reached ------------------------------------------------------------------

LAZY = {
    "counted-2threads-depth2": Config(2, 2),
    "counted-2threads-depth2-scan-checked": Config(2, 2, mode="scan", checked_free=True),
    "reference-2threads-depth2": Config(2, 2, variant="reference"),
    "dfree-3threads-depth2-node2": Config(3, 2, scenario=((("dfree", 2),),) * 3),
    "scan-forever-2threads-depth1": Config(2, 1, gives_up=False, properties=("a", "c", "d")),
}


@pytest.mark.parametrize(
    ("cfg", "c_kernel"),
    [
        pytest.param(cfg, c_kernel, id=f"{name}-{'c-kernel' if c_kernel else 'numpy'}")
        for name, cfg in LAZY.items()
        for c_kernel in (
            [True, False] if name in ("counted-2threads-depth2", "dfree-3threads-depth2-node2") else [True]
        )
    ],
)
def test_rows_computed_when_first_reached_give_the_search_every_row_gives(
    cfg: Config, c_kernel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not c_kernel:
        monkeypatch.setattr(_mc_vec, "native", lambda: None)
    lazy = _mc_vec.VecChecker(cfg)
    every = _mc_vec.VecChecker(cfg, lazy=False)
    assert modelcheck.differences(every.run(), lazy.run(), ("every row", "lazy")) == []
    assert lazy.tb.rows_computed < int((every.tb.nxt >= 0).sum()) // 3


def _narrowest_plan(self: _mc_vec.Tables) -> list[int]:
    """Fields exactly as wide as the values known at the start: new values overflow them."""
    return (
        [_mc_vec._width(len(v)) for v in self.values[1:]]
        + [_mc_vec._width(self.nops)] * self.T
        + [_mc_vec._width(len(self.sp.sets))]
    )


def test_a_row_that_overflows_a_field_repacks_every_state_and_the_search_agrees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fields exactly as wide as the values known at the start: new values overflow them at
    # once, again and again, in the middle of levels.
    monkeypatch.setattr(_mc_vec.Tables, "_plan", _narrowest_plan)
    cfg = Config(2, 2, variant="reference", max_order=1)
    vc = _mc_vec.VecChecker(cfg, memory_budget=1)  # seen runs on disk are re-packed too
    assert modelcheck.differences(check(cfg), vc.run()) == []
    assert vc.relayouts >= 3


def test_a_relayout_that_forgets_the_seen_states_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_mc_vec.Tables, "_plan", _narrowest_plan)
    monkeypatch.setattr(_mc_vec.Store, "recode", lambda self, f, has_hi: setattr(self, "runs", []))
    found = differences(Config(2, 2, variant="reference", max_order=1, max_states=50_000))
    assert found, "a relayout that drops the seen states went unnoticed"


# -- lock-freedom ------------------------------------------------------------------------------------

LIVELOCKS = {
    "scan-forever-2threads-depth1": Config(2, 1, gives_up=False, properties=("d",)),
    "scan-forever-3threads-depth1": Config(3, 1, gives_up=False, properties=("a", "c", "d")),
    "scan-forever-2threads-depth2-scan": Config(2, 2, gives_up=False, mode="scan", properties=("d",)),
}


def _no_spin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The search's lone-thread walks find nothing: (d) is left to the second pass."""
    monkeypatch.setattr(_mc_vec.Tables, "spin", lambda self, k: np.zeros(len(k), np.uint8))


def _comes_back(v: _mc.Violation) -> bool:
    assert v.cycle_start is not None and v.cycle_start < len(v.steps)
    start = v.steps[v.cycle_start - 1].words if v.cycle_start else v.initial_words
    return v.steps[-1].words == start and len(v.schedule) == len(v.steps)


# Each livelock with the C kernel; the numpy code on the small ones (the third takes 3 s).
KERNELS = [
    pytest.param(cfg, c_kernel, id=f"{name}-{'c-kernel' if c_kernel else 'numpy'}")
    for name, cfg in LIVELOCKS.items()
    for c_kernel in ([True] if "depth2" in name else [True, False])
]


@pytest.mark.parametrize(("cfg", "c_kernel"), KERNELS)
def test_a_livelock_is_found_during_the_search_by_a_thread_that_steps_forever_alone(
    cfg: Config, c_kernel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not c_kernel:
        monkeypatch.setattr(_mc_vec, "native", lambda: None)
    seen: list[str] = []
    vc = _mc_vec.VecChecker(cfg, on_violation=lambda v: seen.append(f"{v.prop} {vc.phase}"))
    r = vc.run()
    assert modelcheck.differences(check(cfg), r) == []
    assert seen == ["d search"] and _comes_back(r.violations["d"])


@pytest.mark.parametrize(("cfg", "c_kernel"), KERNELS)
def test_a_livelock_no_lone_thread_shows_is_found_by_the_second_pass(
    cfg: Config, c_kernel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scan-forever's retry loops write words (occupy), so the lone-thread walks do not decide
    # (d) there: the rounds over the states with a step inside a component do.
    if not c_kernel:
        monkeypatch.setattr(_mc_vec, "native", lambda: None)
    _no_spin(monkeypatch)
    vc = _mc_vec.VecChecker(cfg)
    r = vc.run()
    assert modelcheck.differences(check(cfg), r) == []
    assert vc.lock_freedom_by == "rounds" and _comes_back(r.violations["d"])


LOCK_FREE = {
    "counted-2threads-depth2": Config(2, 2),
    "reference-2threads-depth2": Config(2, 2, variant="reference"),
    "corrected-2threads-depth2": Config(2, 2, variant="corrected"),
    "counted-2threads-depth2-scan-checked": Config(2, 2, mode="scan", checked_free=True),
    "counted-3threads-depth1-dfree": Config(3, 1, scenario=((("dfree", 1),),) * 3),
}


@pytest.mark.parametrize("cfg", LOCK_FREE.values(), ids=LOCK_FREE.keys())
def test_no_step_inside_a_retry_loop_writes_a_word_so_the_lone_thread_walks_decide_lock_freedom(
    cfg: Config,
) -> None:
    vc = _mc_vec.VecChecker(cfg)
    r = vc.run()
    assert "d" not in r.violations and r.complete and vc.lock_freedom_by == "spin"
    # The components are retry loops: each a load and its CASes, none the whole operation.
    assert vc.tb.scc is not None and len(set(vc.tb.scc.tolist())) > 10


def test_the_second_pass_agrees_where_the_walks_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_mc_vec.Tables, "intra_writes", lambda self: True)
    vc = _mc_vec.VecChecker(Config(2, 2, variant="reference"))
    assert "d" not in vc.run().violations and vc.lock_freedom_by == "rounds"
    assert vc.lock_freedom_rounds[0] > 0 and vc.lock_freedom_rounds[-1] == 0


def test_a_lock_freedom_shortcut_taken_where_it_does_not_hold_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Were the walks trusted although scan-forever's loops write words, and did they miss
    # its livelock, the cross-check would see it.
    _no_spin(monkeypatch)
    monkeypatch.setattr(_mc_vec.Tables, "intra_writes", lambda self: False)
    found = differences(LIVELOCKS["scan-forever-2threads-depth1"])
    assert any(d.startswith("violations") for d in found), found


def test_a_second_pass_that_loses_the_steps_a_cycle_takes_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_spin(monkeypatch)
    real = _mc_vec.Tables.expand

    def drops(self: _mc_vec.Tables, k: _mc_vec.Keys, sources: bool = True, intra: bool = False) -> object:
        out, done, src = real(self, k, sources, intra)
        if not intra:
            return out, done, src
        keep = np.nonzero(np.zeros(len(out), bool))[0]  # every step a cycle can take is lost
        return out.take(keep), done[keep], src[keep]

    monkeypatch.setattr(_mc_vec.Tables, "expand", drops)
    found = differences(LIVELOCKS["scan-forever-2threads-depth1"])
    assert any(d.startswith("violations") for d in found), found


def test_violations_are_reported_as_soon_as_found_and_the_search_goes_on() -> None:
    seen: list[tuple[str, int, str]] = []
    vc = _mc_vec.VecChecker(
        Config(2, 2, variant="reference"),
        on_violation=lambda v: seen.append((v.prop, len(vc.level_sizes), vc.phase)),
    )
    r = vc.run()
    assert [p for p, _, _ in seen] == sorted(r.violations) and all(ph == "search" for _, _, ph in seen)
    assert r.complete and seen[0][1] < len(vc.level_sizes)
