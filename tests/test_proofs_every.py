"""``counted``'s invariant for every depth and any number of threads (``proofs/counted_every.py``):
its pieces agree with the bounded proof's, its obligations hold, and each kind can fail."""

import os

import pytest
import z3

from nbbs.model import geometry as g
from nbbs.model import steps
from nbbs.proofs import counted_close, counted_every, counted_steps
from nbbs.proofs._obligation import Obligation, Proof, prove
from nbbs.proofs._symexec import explore
from nbbs.proofs._variant import COUNTED
from nbbs.proofs.mutants import COUNTED_MUTANTS, EVERY_MUTANTS

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"


def _ob(name: str) -> Obligation:
    scan = name.startswith("cevery_scan")
    obs = (
        counted_every.obligations(scan)
        + counted_every.lf_obligations(scan)
        + counted_every.lin_obligations(scan)
    )
    return next(ob for ob in obs if ob.name == name)


def test_claim_levels_name_exactly_the_claims_counted_steps_computes_on_every_op_state_to_depth_4() -> None:
    checked = 0
    for depth in range(1, 5):
        for ml in range(min(depth, 2)):
            for op in counted_steps.system(COUNTED, depth, 2, ml).ops:
                rng = counted_every.claim_levels(op, ml, g.level)
                mine = (
                    frozenset()
                    if rng is None
                    else frozenset(a for a in g.ancestors(op.n) if rng[0] <= g.level(a) <= rng[1])
                )
                assert mine == counted_steps.claims(op, ml), steps.describe(op)
                checked += 1
    assert checked > 1000


def test_explore_runs_every_path_of_python_ifs_on_a_symbolic_value_once() -> None:
    x = z3.BitVec("x", 8)

    def f() -> str:
        if x > 3:
            return "big" if x > 10 else "middle"
        return "small"

    paths = explore(f)
    assert sorted(r for _, r in paths) == ["big", "middle", "small"]
    for cond, r in paths:  # each path's condition picks exactly its values
        s = z3.Solver()
        s.add(cond, x == {"big": 11, "middle": 5, "small": 0}[r])
        assert s.check() == z3.sat
    assert not hasattr(z3.BitVecRef, "bit_length")  # the patch is gone afterwards


def test_the_symbolic_machine_runs_the_int_machine_on_a_concrete_node() -> None:
    # The same code on a symbolic node of a symbolic depth: fixing them gives the int step.
    m_int = steps.Machine(3, 0, COUNTED.at(counted_every.WIDTH))
    wd = counted_every.World(COUNTED, scan=False)
    op = counted_every.symbolic_op(steps.C_CAS)
    moves = counted_every.moves(wd, op)
    concrete = steps.OpState(steps.C_CAS, 9, child=9, cur=0, left=1)
    fix = [wd.depth == 3, wd.max_level == 0, op.n == 9, op.child == 9, op.cur == 0, op.left == 1]
    for word in (0, 1 << 5):
        want = m_int.after(concrete, word)
        s = z3.Solver()
        s.add(*fix, wd.W(g.parent(op.child)) == word)
        hits = [mv for mv in moves if s.check(mv.hyp) == z3.sat]
        assert len(hits) == 1
        s.add(hits[0].hyp)
        assert s.check() == z3.sat
        m = s.model()
        got = hits[0].nxt
        assert got.pc == want.pc
        assert m.eval(counted_every.bv(got.n)).as_long() == want.n
        assert m.eval(counted_every.bv(got.child)).as_long() == want.child


def _proved(p: Proof) -> None:
    assert p.proved, p.report()


FAST = [
    "cevery_lin@free:release",
    "cevery_safe",
    "cevery_frame@alloc:climb-cas",
    "cevery_inv@alloc:occupy",
    "cevery_lockfree@alloc:occupy",
]


@pytest.mark.parametrize("name", FAST)
def test_an_every_depth_obligation_is_proved(name: str) -> None:
    _proved(prove(_ob(name), COUNTED))


EVERY = (
    counted_every.lin_obligations()
    + counted_every.obligations(False)
    + counted_every.lf_obligations(False)
    + counted_every.obligations(True)
    + counted_every.lf_obligations(True)
    + counted_every.lin_obligations(True)
    if DEEP
    else []
)
"""Deep: every every-depth obligation, attempt and scan mode (z3 alone: about 7 minutes attempt
mode, more for scan mode; see proofs/README.md)."""


@pytest.mark.deep
@pytest.mark.parametrize("ob", EVERY, ids=lambda ob: ob.name)
def test_every_every_depth_obligation_is_proved(ob: Obligation) -> None:
    _proved(prove(ob, COUNTED))


@pytest.mark.parametrize(
    ("mutant", "name", "claim"),
    [
        (
            "climb_skips_a_level",
            "cevery_frame@alloc:climb-cas",
            "my contribution changes only at the accessed node",
        ),
        (
            "climb_load_waits",
            "cevery_lockfree@alloc:climb-load",
            "every step but a failed CAS lowers (measure, load)",
        ),
        ("climb_does_not_count", "cevery_inv@alloc:climb-cas", "c_L = the others' total + my claim"),
    ],
)
def test_a_mutant_breaks_its_every_depth_obligation_with_a_readable_counterexample(
    mutant: str, name: str, claim: str
) -> None:
    variant = {**EVERY_MUTANTS, **COUNTED_MUTANTS}[mutant][1]
    p = prove(_ob(name), variant)
    assert not p.proved and not p.vacuous
    assert any(claim in b for b in p.broken), p.broken
    assert (
        "me before:" in p.counterexample and "me after:" in p.counterexample and "depth" in p.counterexample
    )


def test_the_catalogue_runs_every_depth_obligations_only_on_request() -> None:
    from nbbs.proofs import obligations

    assert not [ob for ob in obligations.catalogue(1) if ob.group == "every"]
    default = [ob.name for ob in obligations.catalogue(1, groups=("every",), every="frame")]
    from nbbs.proofs import counted_induction, counted_lfarith

    added = counted_lfarith.arith_obligations() + counted_induction.obligations()
    closing = {ob.name for ob in counted_close.obligations("frame") + added}
    assert default and "cevery_safe" in default
    assert all("_frame@" in n for n in default if n != "cevery_safe" and n not in closing)
    attempt = [ob.name for ob in obligations.catalogue(1, groups=("every",), every="attempt")]
    assert any("_inv@" in n for n in attempt) and any("_lockfree@" in n for n in attempt)
    scan = [ob.name for ob in obligations.catalogue(1, groups=("every",), every="scan")]
    assert any(n.startswith("cevery_scan_inv@") for n in scan)


def test_a_held_block_that_does_not_claim_its_path_breaks_the_every_depth_safety(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = counted_every.claim_levels

    def damaged(op: steps.OpState, max_level: object, lvl: object = counted_every.level) -> object:
        return None if op.pc == steps.DONE_OK else original(op, max_level, lvl)  # type: ignore[arg-type]

    monkeypatch.setattr(counted_every, "claim_levels", damaged)
    p = prove(_ob("cevery_safe"), COUNTED)
    assert not p.proved and not p.vacuous and p.broken == ("no two held blocks overlap",)
    assert "static or held by another: 1" in p.counterexample and "me: done:ok" in p.counterexample


def test_a_free_taking_effect_at_its_end_breaks_the_every_depth_linearization() -> None:
    import functools

    ob = _ob("cevery_lin@free:unmark-cas")
    moved = Obligation(
        ob.name,
        ob.group,
        ob.depth,
        ob.claim,
        functools.partial(counted_every._lin, pc=steps.F_UCAS, point="end"),
    )
    p = prove(moved, COUNTED)
    assert not p.proved and not p.vacuous
    assert any("A is unchanged" in b for b in p.broken), p.broken
    assert "me before: free:unmark-cas" in p.counterexample
