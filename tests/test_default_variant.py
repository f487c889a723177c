"""The shipped variant is ``top_down_node`` everywhere "the default" is meant, and ``counted`` stays
selectable by name (issue 12 item 4; ALGORITHM.md §1.4.5)."""

from __future__ import annotations

import json
import random

from click.testing import CliRunner

from nbbs.check import _mc
from nbbs.check.explore import AllocOp, Scenario, random_scenario
from nbbs.cli.main import main
from nbbs.impl import NBBS, LockedBuddy
from nbbs.model import bits
from nbbs.proofs import obligations
from nbbs.proofs._variant import COUNTED, SHIPPED, TOP_DOWN_NODE


def test_the_default_variant_is_top_down_node_and_counted_is_still_there_by_name() -> None:
    assert bits.DEFAULT_VARIANT == "top_down_node" and "counted" in bits.VARIANTS
    assert NBBS(3).transitions is bits.TOP_DOWN_NODE
    assert NBBS(3, variant="counted").transitions is bits.COUNTED


def test_the_old_spelling_nbbs_still_means_counted_not_the_new_default() -> None:
    why = bits.unknown_variant("nbbs")
    assert "did you mean 'counted'" in why and "the shipped one is 'top_down_node'" in why


def test_every_checker_runs_the_shipped_variant_unless_told() -> None:
    assert _mc.Config(2, 2).variant == "top_down_node"
    assert Scenario(2, ((AllocOp(0, 0),),)).allocator == "top_down_node"
    assert random_scenario(random.Random(0), 2, 2, 2).allocator == "top_down_node"


def test_the_locked_buddy_shows_the_words_the_shipped_variant_leaves() -> None:
    # Two buddies: counted counts both at the grandparent, top_down_node hands one claim up.
    nbbs, locked = NBBS(3), LockedBuddy(3)
    for h in (nbbs, locked):
        assert (h.alloc(0, hint=0), h.alloc(0, hint=1)) == (0, 4096)
    counted = NBBS(3, variant="counted")
    counted.alloc(0, hint=0), counted.alloc(0, hint=1)
    assert locked.words() == nbbs.words() != counted.words()


def test_the_default_prove_run_proves_the_shipped_variant_first_then_what_fits_of_counted() -> None:
    shipped, counted = obligations.plan()
    assert shipped.variant is SHIPPED is TOP_DOWN_NODE and "(shipped)" in shipped.title
    names = {ob.name for ob in shipped.obligations}
    assert {"tnevery_safe", "tnevery_frame@alloc:descend-cas", "tnevery_lockfree@alloc:undo-cas"} <= names
    assert any(n.startswith("tnsteps_T2") for n in names)
    # Preservation at every pc is minutes of CPU: behind --top-down all, not in the default run.
    assert not [n for n in names if "_inv@" in n or n.startswith(("tdevery", "cevery"))]
    assert counted.variant is COUNTED and counted.title.startswith("counted")
    depths = {ob.depth for ob in counted.obligations if ob.depth is not None}
    assert max(depths) == obligations.DEFAULT_RUN_COUNTED_DEPTH
    assert not [ob for ob in counted.obligations if ob.name.startswith("tn")]


def test_prove_variant_counted_is_the_old_default_run_and_top_down_all_adds_preservation() -> None:
    (alone,) = obligations.plan(COUNTED)
    assert alone.variant is COUNTED and max(ob.depth or 0 for ob in alone.obligations) == 10
    beside = obligations.plan(COUNTED, top_down="frame")
    assert [b.variant.name for b in beside] == ["counted", "top_down_node", "top_down"]
    (everything,) = obligations.plan(TOP_DOWN_NODE, top_down="all")
    assert "tnevery_inv@alloc:undo-cas" in {ob.name for ob in everything.obligations}


def test_nbbs_prove_says_which_variant_each_block_is_about() -> None:
    args = ["prove", "--obligation", "tnevery_safe", "--jobs", "1", "--top-down", "lockfree"]  # the default
    res = CliRunner().invoke(main, args, terminal_width=80)
    assert res.exit_code == 0, res.output
    assert "top_down_node (shipped): every depth, any number of threads (lockfree)" in res.output
    assert "top_down_node: 1 obligations, 0 not proved" in res.output and "counted" not in res.output
    res = CliRunner().invoke(main, ["prove", "--obligation", "cbits_climb", "--json", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [b["variant"] for b in out["blocks"]] == ["counted"]
    assert [(p["obligation"], p["variant"]) for p in out["proofs"]] == [("cbits_climb", "counted")]


def test_nbbs_prove_variant_top_down_node_runs_its_own_obligations_named_as_its() -> None:
    # It raised a KeyError before the switch: the proofs' VARIANTS had no top-down variant.
    args = ["prove", "--variant", "top_down_node", "--obligation", "tnevery_safe", "--json", "--jobs", "1"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["variant"] == "top_down_node"
    assert [(p["obligation"], p["variant"]) for p in out["proofs"]] == [("tnevery_safe", "top_down_node")]


def test_nbbs_prove_refuses_a_variant_with_no_obligations_saying_so() -> None:
    res = CliRunner().invoke(main, ["prove", "--variant", "stop_early"], terminal_width=200)
    assert res.exit_code == 2 and "no obligations of its own" in res.output, res.output


def test_nbbs_prove_catches_a_top_down_node_mutant_named_apart_from_counteds() -> None:
    # Three top-down mutants share a name with counted's scan mutants: the prefix keeps both.
    from nbbs.proofs.mutants import SCAN_MUTANTS, top_down_mutants

    assert "rollback_skips_too_far" in SCAN_MUTANTS
    assert "top_down_node:rollback_skips_too_far" in top_down_mutants()
    args = ["prove", "--mutant", "top_down_node:uncount_never_stops", "--top-down", "all"]
    res = CliRunner().invoke(main, [*args, "--obligation", "tnevery_inv@free:unmark-cas", "--jobs", "1"])
    assert res.exit_code == 0, res.output  # a mutant must be caught: its obligation fails
    assert "FAILED" in res.output and "me before: free:unmark-cas" in res.output


def test_prove_symmetry_gives_the_shipped_variants_step_level_to_thread_0_and_its_symmetry_proof() -> None:
    (shipped, counted) = obligations.plan(threads=3, steps_depth=1, symmetric=True)
    names = [ob.name for ob in shipped.obligations]
    assert any(n.startswith("tnsym_query_T3_t2") for n in names)
    assert not any(n.startswith("tnsteps_T3_t1") for n in names) and any(
        n.startswith("tnsteps_T3_t0") for n in names
    )
    assert any(ob.name.startswith("csym_") for ob in counted.obligations)
    everyone = [ob.name for ob in obligations.plan(threads=3, steps_depth=1)[0].obligations]
    assert any(n.startswith("tnsteps_T3_t1") for n in everyone) and not any("sym" in n for n in everyone)
