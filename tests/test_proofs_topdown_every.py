"""``top-down`` and ``top-down-node`` for every depth and any number of threads
(``proofs/topdown_every.py``): the symbolic tokens are the bounded proof's, the obligations
hold, and each kind of obligation can fail with a readable counterexample.

The default run proves both variants' safety, a few of ``top-down-node``'s frame and
preservation queries, and catches two mutants and a damaged invariant (about 10 s of CPU);
``HYPOTHESIS_PROFILE=deep`` proves every obligation of both variants (about 4 minutes of
CPU) and catches every mutant."""

import dataclasses
import os
from typing import Any

import pytest
import z3

from nbbs.model import geometry as g
from nbbs.model import steps
from nbbs.proofs import counted_every as ce
from nbbs.proofs import counted_steps
from nbbs.proofs import topdown_every as te
from nbbs.proofs import topdown_steps as ts
from nbbs.proofs._obligation import Obligation, prove
from nbbs.proofs.mutants import TOPDOWN_EVERY_MUTANTS

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"


def _ob(name: str, per_node: bool = True, subject: Any = None) -> Obligation:
    return next(ob for ob in te.obligations(per_node, subject) if ob.name == name)


def test_the_symbolic_tokens_are_the_bounded_proofs_tokens_on_every_op_state_to_depth_2() -> None:
    checked = 0
    for depth in range(1, 4 if DEEP else 3):
        for ml in range(min(depth, 2)):
            nodes = list(g.all_nodes(depth))
            for op in counted_steps.system(ts.TOP_DOWN_NODE, depth, 2, ml).ops:
                sym = op._replace(**{f: z3.BitVecVal(getattr(op, f), ce.BITS) for f in ("n", "child", "top")})
                expected = set(ts.tokens(op, ml))
                for a in nodes:
                    for s in (0, 1):
                        got = z3.simplify(
                            te.tokens_at(sym, z3.BitVecVal(a, ce.BITS), s, z3.BitVecVal(ml, ce.BITS))
                        )
                        assert z3.is_true(got) == ((a, s) in expected), (steps.describe(op), a, s)
                checked += 1
    assert checked > 50


@pytest.mark.parametrize(
    "name",
    [
        "tnevery_safe",
        "tnevery_frame@alloc:descend-cas",
        "tnevery_frame@alloc:undo-cas",
        "tnevery_frame@free:unmark-cas",
        "tnevery_inv@alloc:undo-load",
        "tnevery_lockfree@alloc:descend-load",
    ],
)
def test_a_top_down_node_obligation_for_every_depth_holds(name: str) -> None:
    p = prove(_ob(name), ts.TOP_DOWN_NODE)
    assert p.proved, p.report()


@pytest.mark.skipif(
    not DEEP, reason="every obligation of both variants: about 4 minutes of CPU (deep profile)"
)
@pytest.mark.parametrize("per_node", [True, False], ids=["top-down-node", "top-down"])
def test_every_every_depth_obligation_of_the_top_down_variants_holds(per_node: bool) -> None:
    subject = ts.TOP_DOWN_NODE if per_node else ts.TOP_DOWN
    failed = [p.report() for ob in te.obligations(per_node) if not (p := prove(ob, subject)).proved]
    assert not failed, "\n".join(failed)


def test_the_per_side_top_down_invariant_is_safe_for_every_depth() -> None:
    p = prove(_ob("tdevery_safe", per_node=False), ts.TOP_DOWN)
    assert p.proved, p.report()


# descent_keeps_surplus takes about 15 s of wall time here: deep only (its obligation is proved
# in the deep test above, so the two together show the mutant is what breaks it).
CHEAP_MUTANTS = ["descent_load_waits", "descent_skips_a_level", "uncount_never_stops"]


@pytest.mark.parametrize("mutant", sorted(TOPDOWN_EVERY_MUTANTS) if DEEP else CHEAP_MUTANTS)
def test_a_top_down_node_mutant_breaks_its_every_depth_obligation_with_a_readable_counterexample(
    mutant: str,
) -> None:
    name, _what, v = TOPDOWN_EVERY_MUTANTS[mutant]
    p = prove(_ob(name, subject=v), v)
    assert not p.proved and not p.vacuous, p.report()
    text = p.report()
    # The counterexample names the step, the word it changed and the node where NI breaks.
    assert "me before:" in text and "me after:" in text and "node a0 =" in text, text
    assert " on node " in text, text


def test_an_invariant_that_lets_a_busy_word_carry_claims_is_not_enough_for_safety() -> None:
    sh = te.TOP_DOWN_NODE_SHAPE

    def damaged(wd: ce.World, w: Any, op: steps.OpState, a: Any) -> list[tuple[str, Any]]:
        return [(n, c) for n, c in sh.ni(wd, w, op, a) if n != "BUSY or no status bit"]

    broken = dataclasses.replace(sh, ni=damaged)
    ob = Obligation("tnevery_safe", "every", None, "damaged", lambda _v: te.safe(ts.TOP_DOWN_NODE, broken))
    p = prove(ob, ts.TOP_DOWN_NODE)
    assert not p.proved and not p.vacuous, p.report()
    assert "a node at or below max_level with a count is held by nobody" in p.broken, p.report()
    assert "a = node" in p.report(), p.report()


def test_the_catalogue_adds_the_top_down_obligations_only_on_request() -> None:
    from nbbs.proofs import obligations

    def names(top_down: str) -> list[str]:
        return [ob.name for ob in obligations.catalogue(1, groups=("every",), top_down=top_down)]

    assert not [n for n in names("none") if n.startswith(("tnevery", "tdevery"))]
    frame = names("frame")
    assert {"tnevery_safe", "tdevery_safe", "tnevery_frame@alloc:descend-cas"} <= set(frame)
    assert not [n for n in frame if "_inv@" in n or "_lockfree@" in n]
    everything = set(names("all"))
    assert {
        "tnevery_inv@alloc:undo-cas",
        "tdevery_inv@alloc:undo-cas",
        "tnevery_lockfree@alloc:undo-cas",
    } <= everything


def test_top_down_needs_room_below_the_count_bound_for_two_handed_up_claims() -> None:
    # With counted's headroom (R < 2**29 - 2) a per-side count may sit at its bound: the anchor's
    # CAS then carries out of the field. The shape's headroom of 4 is what makes it hold.
    tight = dataclasses.replace(te.TOP_DOWN_SHAPE, headroom=2)
    ob = Obligation("tdevery_inv@alloc:descend-cas", "every", None, "tight", lambda _v: _tight(tight))
    p = prove(ob, ts.TOP_DOWN)
    assert not p.proved and not p.vacuous, p.report()
    assert "cas on node" in p.report(), p.report()


def _tight(sh: ce.Shape) -> Any:
    return ce._step(ts.TOP_DOWN, steps.D_CAS, False, sh)


def test_explore_decides_a_bit_vectors_truth_as_not_zero_and_restores_it() -> None:
    from nbbs.proofs._symexec import explore

    x = z3.BitVec("x", 8)
    paths = explore(lambda: "node" if x else "none")
    assert sorted(r for _, r in paths) == ["node", "none"]
    for cond, r in paths:
        s = z3.Solver()
        s.add(cond, x == (0 if r == "none" else 5))
        assert s.check() == z3.sat
    with pytest.raises(z3.Z3Exception):
        bool(x)  # outside a run, z3's own refusal again
