"""``proofs/topdown_close.py``: ``top-down-node`` gets every row ``counted`` has in z3 for every
depth and any number of threads (initial state, quiescence, the fold over threads and the
composition, the lemmas and linearization points, scan mode with its skip, the global
lock-freedom measure). A sample is proved here, each family is broken by a mutant or a damaged
definition with a readable counterexample, and the lemmas the linearization points assume prune
no step. ``HYPOTHESIS_PROFILE=deep`` proves every obligation of both top-down variants (about
12 minutes of CPU, with ``topdown_arith``'s step facts) and runs every mutant."""

import dataclasses
import os
from typing import Any

import pytest
import z3

from nbbs.model import steps
from nbbs.proofs import counted_close as cc
from nbbs.proofs import counted_every as ce
from nbbs.proofs import topdown_close as tc
from nbbs.proofs import topdown_steps as ts
from nbbs.proofs._obligation import Obligation, Proof, prove
from nbbs.proofs.mutants import TOPDOWN_CLOSE_MUTANTS

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"


def _all(per_node: bool = True, subject: Any = None) -> list[Obligation]:
    return tc.obligations("scan", per_node, subject)


def _ob(name: str, subject: Any = None) -> Obligation:
    return next(ob for ob in _all(True, subject) if ob.name == name)


def _proved(p: Proof) -> None:
    assert p.proved, p.report()


def _broken(p: Proof, claim: str, *shown: str) -> None:
    assert not p.proved and not p.vacuous, p.report()
    assert any(claim in b for b in p.broken), p.report()
    for text in shown:
        assert text in p.counterexample, p.counterexample


CHEAP = [
    "tnevery_init_node",
    "tnevery_init_page",
    "tnevery_sum_empty",
    "tnevery_sum_frame",
    "tnevery_sum_add@alloc:descend-cas",
    "tnevery_compose@alloc:undo-cas",
    "tnevery_quiescent@done:ok",
    "tnevery_below_node@alloc:load",
    "tnevery_up",
    "tnevery_down",
    "tnevery_lin@alloc:load",
    "tnevery_lin@alloc:undo-cas",
    "tnevery_lfglobal@alloc:occupy",
    "tnevery_scan_skip@alloc:climb-load",
]


@pytest.mark.parametrize("name", CHEAP)
def test_a_top_down_node_closing_obligation_is_proved(name: str) -> None:
    _proved(prove(_ob(name), ts.TOP_DOWN_NODE))


@pytest.mark.deep
@pytest.mark.skipif(
    not DEEP, reason="every obligation of both variants: about 12 minutes of CPU (deep profile)"
)
@pytest.mark.parametrize("per_node", [True, False], ids=["top-down-node", "top-down"])
def test_every_closing_obligation_of_the_top_down_variants_is_proved(per_node: bool) -> None:
    subject = ts.TOP_DOWN_NODE if per_node else ts.TOP_DOWN
    failed = [p.report() for ob in _all(per_node) if not (p := prove(ob, subject)).proved]
    assert not failed, "\n".join(failed)


def test_the_levels_add_the_families_as_counted_close_does() -> None:
    frame = {ob.name for ob in tc.obligations("frame")}
    assert {"tnevery_init_node", "tnevery_compose@alloc:undo-cas", "tnevery_quiescent@done:ok"} <= frame
    assert not [n for n in frame if "_lin@" in n or "lfglobal" in n or "_scan_" in n]
    attempt = {ob.name for ob in tc.obligations("attempt")}
    assert {"tnevery_lin@alloc:descend-cas", "tnevery_lfglobal@alloc:undo-cas"} <= attempt
    assert not [n for n in attempt if "_scan_" in n]
    scan = {ob.name for ob in tc.obligations("scan", per_node=False)}
    assert {"tdevery_scan_skip@rollback:release", "tdevery_scan_lin@alloc:load"} <= scan
    assert {"tdevery_scan_inv@alloc:descend-cas", "tdevery_scan_lfglobal@alloc:load"} <= scan
    assert tc.obligations("none") == []


def test_the_lemmas_the_linearization_points_assume_prune_no_step() -> None:
    # Each lemma instance is an implication under the step's hypothesis: were one false of a
    # reachable step, the step's claims would hold vacuously. Every step satisfiable without
    # them is still satisfiable with them.
    bare = dataclasses.replace(tc.SHAPES[True], lin_facts=None)
    for pc in (steps.A_OCC, steps.A_LOAD, steps.D_CAS, steps.U_CAS) if DEEP else (steps.A_LOAD, steps.U_CAS):
        _wd, _op, _a0, mvs = ce._built(ts.TOP_DOWN_NODE, pc, False)
        with_facts = ce._lin(ts.TOP_DOWN_NODE, pc, shape=tc.SHAPES[True]).premises
        without = ce._lin(ts.TOP_DOWN_NODE, pc, shape=bare).premises
        for mv in mvs:
            s = z3.Solver()
            s.add(*without, mv.hyp)
            if s.check() != z3.sat:
                continue
            s = z3.Solver()
            s.add(*with_facts, mv.hyp)
            assert s.check() == z3.sat, (steps.PC_NAMES[pc], mv.label)


MUTANT_CASES = [
    ("node_ok_per_side", "tnevery_init_node", "c_L = the others' tokens", "child L ="),
    ("node_ok_per_side", "tnevery_quiescent@done:ok", "node_ok holds", "child L ="),
    ("load_finds_nothing_free", "tnevery_lin@alloc:load", "None is allowed", "me after"),
    ("descent_load_waits", "tnevery_lfglobal@alloc:descend-load", "the global measure", "mu "),
    ("rollback_skips_too_far", "tnevery_scan_skip@rollback:release", "jumps over lies under", "node x ="),
    ("load_passes_over_free_node", "tnevery_scan_lin@alloc:load", "None is allowed", "me after"),
    ("scan_never_gives_up", "tnevery_scan_lfglobal@alloc:load", "the global measure", "mu "),
    ("descent_skips_a_level", "tnevery_scan_frame@alloc:descend-cas", "changes only at", "me after"),
    ("uncount_never_stops", "tnevery_scan_inv@free:unmark-cas", "c_", "me after"),
    ("descent_load_waits", "tnevery_scan_lockfree@alloc:descend-load", "lowers (measure, load)", "me after"),
]
CHEAP_MUTANTS = {"node_ok_per_side", "load_finds_nothing_free", "rollback_skips_too_far"}


@pytest.mark.parametrize(
    ("mutant", "name", "claim", "shown"),
    [c for c in MUTANT_CASES if DEEP or (c[0] in CHEAP_MUTANTS and "quiescent" not in c[1])],
    ids=lambda x: x if isinstance(x, str) and "@" in x else None,
)
def test_a_top_down_node_mutant_breaks_its_closing_obligation_with_a_readable_counterexample(
    mutant: str, name: str, claim: str, shown: str
) -> None:
    names, _what, variant = TOPDOWN_CLOSE_MUTANTS[mutant]
    assert name in names
    _broken(prove(_ob(name, subject=variant), variant), claim, shown, "depth")


def _with(name: str, build: Any) -> Obligation:
    ob = _ob(name)
    return Obligation(ob.name, ob.group, ob.depth, ob.claim, lambda _v: build())


def test_a_fold_that_forgets_the_static_blocks_breaks_the_empty_top_down_summary() -> None:
    ob = _with("tnevery_sum_empty", lambda: tc._sum_empty(ts.TOP_DOWN_NODE, static_counted=False))
    _broken(prove(ob, ts.TOP_DOWN_NODE), "F2: a live block below max_level counts", "static(b) = True")


def test_a_fold_that_forgets_a_held_block_s_token_breaks_adding_its_thread() -> None:
    sh = tc.SHAPES[True]
    ob = _with("tnevery_sum_add@done:ok", lambda: tc._sum_add(ts.TOP_DOWN_NODE, sh, steps.DONE_OK, False))
    _broken(prove(ob, ts.TOP_DOWN_NODE), "F2: a live block below max_level counts", "thread k: done:ok")


def test_a_top_down_composition_without_at_most_one_among_the_others_is_not_the_global_invariant() -> None:
    def build() -> Any:
        return cc._compose(
            ts.TOP_DOWN_NODE, steps.DONE_OK, False, shape=tc.SHAPES[True], glob_ni=tc.global_ni(True)
        )

    ob = _with("tnevery_compose@done:ok", build)
    _broken(prove(ob, ts.TOP_DOWN_NODE), "the global per-node invariant", "at most one holds or occupies it")


def test_a_below_witness_that_never_looks_right_breaks_the_induction_step() -> None:
    def build() -> Any:
        return tc._below(ts.TOP_DOWN_NODE, tc.SHAPES[True], steps.A_LOAD, "node", look_right=False)

    ob = _with("tnevery_below_node@alloc:load", build)
    _broken(prove(ob, ts.TOP_DOWN_NODE), "live block dw(c) in c's subtree", "dw(c) =")


def test_an_up_lemma_without_its_induction_hypothesis_fails_above_the_first_level() -> None:
    ob = _with("tnevery_up", lambda: tc._up(ts.TOP_DOWN_NODE, tc.SHAPES[True], hypothesis=False))
    _broken(prove(ob, ts.TOP_DOWN_NODE), "nothing at or above a counted node is held", "parent(x) =")


@pytest.mark.parametrize("variant", ["top_down_node", "top_down"])
@pytest.mark.parametrize(("depth", "max_order"), [(3, 3), (4, 4), (4, 2)])
def test_the_sequential_top_down_code_does_what_the_allocator_does(
    depth: int, max_order: int, variant: str
) -> None:
    import random

    from nbbs.impl.nbbs import NBBS
    from nbbs.model import bits, spec, tree
    from nbbs.model import geometry as g
    from nbbs.proofs import replay, sequential
    from nbbs.proofs._z3 import INTS

    t = bits.VARIANTS[variant]
    max_level = depth - max_order
    rng = random.Random(depth * 10 + max_order)
    a = NBBS(depth, page_size=1, max_order=max_order, variant=variant)
    live: list[int] = []
    trees = [a.words()]
    for _ in range(25):
        if live and rng.random() < 0.4:
            a.free(live.pop(rng.randrange(len(live))))
        elif (got := a.alloc(rng.randrange(max_order + 1), hint=rng.randrange(1 << depth))) is not None:
            live.append(got)
        trees.append(a.words())
    checked = 0
    for words in trees:
        assert tree.inv_quiescent(words, depth, max_level, t)
        for n in g.all_nodes(depth):
            lvl = g.level(n)
            if lvl < max_level:
                continue
            nodes = [n, *g.ancestors(n)]
            path = [words[x] for x in nodes[::-1]]
            sides = [0] + [g.side(x) for x in nodes[::-1][1:]]
            within = [k >= max_level for k in range(lvl)]
            al, rec = replay.allocator(words, depth, max_order, t)
            ok = replay.attempt(al, n)
            mine, mine_ok, _ = sequential.alloc_path(t, INTS, path, sides, within)
            assert ok == mine_ok == spec.is_free(tree.abstraction(words, depth), n)
            assert [rec.w[x] for x in nodes[::-1]] == mine
            assert all(rec.w[x] == words[x] for x in g.all_nodes(depth) if x not in nodes)
            if words[n] == bits.BUSY:
                al, rec = replay.allocator(words, depth, max_order, t)
                replay.free(al, n)
                assert [rec.w[x] for x in nodes[::-1]] == sequential.free_path(t, INTS, path, sides, within)
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("per_node", [True, False], ids=["top-down-node", "top-down"])
def test_the_top_down_sequential_refinement_holds_at_depths_1_to_3(per_node: bool) -> None:
    subject = ts.TOP_DOWN_NODE if per_node else ts.TOP_DOWN
    obs = [ob for d in (1, 2, 3) for ob in tc.refine_obligations(d, per_node)]
    failed = [p.report() for ob in obs if not (p := prove(ob, subject)).proved]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize(
    ("mutant", "name", "claim"),
    [
        ("uncount_never_stops", "tnrefine_free_L3", "after free"),
        ("node_ok_per_side", "tnrefine_alloc_L3", "on success"),
    ],
)
def test_a_top_down_node_mutant_breaks_the_sequential_refinement(mutant: str, name: str, claim: str) -> None:
    _names, _what, variant = TOPDOWN_CLOSE_MUTANTS[mutant]
    ob = next(ob for ob in tc.refine_obligations(3, True, variant) if ob.name == name)
    _broken(prove(ob, variant), claim, "path, root first")
