"""The z3 proofs: they hold for the published algorithm, they can fail, and their encodings are
the model's and the allocator's."""

import functools
import itertools
import random

import pytest
import z3

from nbbs.impl.nbbs import NBBS
from nbbs.model import bits, spec, tree
from nbbs.model import geometry as g
from nbbs.proofs import obligations, replay, sequential, speclemmas
from nbbs.proofs._obligation import Obligation, Proof, prove
from nbbs.proofs._variant import CORRECTED, SHIPPED, SPEC_RULES, VARIANTS, Variant
from nbbs.proofs._z3 import INTS, Query
from nbbs.proofs.mutants import MUTANTS

SMALL = obligations.catalogue(depth_max=4)


@pytest.mark.parametrize("ob", SMALL, ids=[ob.label for ob in SMALL])
def test_each_obligation_is_proved_for_the_shipped_algorithm(ob: Obligation) -> None:
    p = prove(ob)
    assert p.proved, p.report()


SMALL_FIVE_BIT = obligations.catalogue(depth_max=4, variant=CORRECTED)


@pytest.mark.parametrize("ob", SMALL_FIVE_BIT, ids=[ob.label for ob in SMALL_FIVE_BIT])
def test_each_five_bit_obligation_is_proved_for_the_corrected_variant(ob: Obligation) -> None:
    p = prove(ob, CORRECTED)
    assert p.proved, p.report()


MUTATED = obligations.catalogue(depth_max=3, variant=CORRECTED)

SEQUENTIALLY_VISIBLE = {
    "unmark_sets_instead_of_clears",
    "climb_clears_instead_of_sets",
    "mark_wrong_side",
    "mark_stops_early",
    "occupy_only_occ",
    "mark_sets_occ",
    "unmark_clears_only_coal",
    "climb_wrong_side",
    "release_leaves_side_bits",
}
"""Transition mutants that break a sequential alloc or free (the others only show under concurrency,
where the bit lemmas catch them)."""


@functools.cache
def _failures(name: str) -> list[Proof]:
    _, variant = MUTANTS[name]
    return [p for p in obligations.run_all(MUTATED, variant) if not p.proved]


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_each_mutant_breaks_some_obligation_with_a_counterexample(name: str) -> None:
    failed = [p for p in _failures(name) if not p.vacuous]
    assert failed, f"no obligation caught {name}"
    assert all(p.counterexample and p.broken for p in failed)
    if name in SEQUENTIALLY_VISIBLE:
        refined = [p for p in failed if p.group == "refine"]
        assert refined, f"no refinement obligation caught {name}"
        text = refined[0].counterexample
        assert "replayed on impl/nbbs.py" in text and "BROKEN" in text and "the step that goes wrong" in text


def test_every_obligation_is_broken_by_some_mutant() -> None:
    caught = {p.obligation for name in MUTANTS for p in _failures(name)}
    assert {ob.name for ob in MUTATED} - caught == set()


def test_a_query_whose_premises_contradict_is_reported_vacuous_not_proved() -> None:
    x = z3.BitVec("x", 8)
    ob = Obligation(
        "contradiction", "test", None, "", lambda v: Query([z3.UGT(x, 1), x == 0], [("x is 5", x == 5)], str)
    )
    p = prove(ob)
    assert not p.proved and p.vacuous and p.result == "VACUOUS"


def _reachable_trees(
    depth: int, max_order: int, seed: int, steps: int = 25, variant: str = "corrected"
) -> list[tuple[int, ...]]:
    """Word arrays the allocator reaches by random sequential allocs and frees."""
    rng = random.Random(seed)
    a = NBBS(depth, page_size=1, max_order=max_order, variant=variant)
    live: list[int] = []
    out = [a.words()]
    for _ in range(steps):
        if live and rng.random() < 0.4:
            a.free(live.pop(rng.randrange(len(live))))
        else:
            got = a.alloc(rng.randrange(max_order + 1), hint=rng.randrange(1 << depth))
            if got is not None:
                live.append(got)
        out.append(a.words())
    return out


def _path(words: tuple[int, ...], n: int) -> tuple[list[int], list[int]]:
    nodes = [n, *g.ancestors(n)][::-1]
    return [words[x] for x in nodes], [0] + [g.side(x) for x in nodes[1:]]


# The proofs' sequential code (proofs/sequential.py) is the bottom-up climb: the five-bit variants'
# and counted's. The top-down variants' sequential refinement is not written (ALGORITHM.md §1.4.5).
BOTTOM_UP = sorted(name for name, v in VARIANTS.items() if not v.transitions.top_down)


@pytest.mark.parametrize("variant", BOTTOM_UP)
@pytest.mark.parametrize(("depth", "max_order"), [(3, 3), (4, 4), (4, 2)])
def test_the_proofs_sequential_code_does_what_the_allocator_does(
    depth: int, max_order: int, variant: str
) -> None:
    t = bits.VARIANTS[variant]
    max_level = depth - max_order
    # A counted allocator's words for the counted variant, a five-bit one's for the others.
    family = "counted" if t.count_bits else "corrected"
    for words in _reachable_trees(depth, max_order, seed=depth * 10 + max_order, variant=family):
        assert tree.inv_quiescent(words, depth, max_level, t)
        for n in g.all_nodes(depth):
            lvl = g.level(n)
            if lvl < max_level:
                continue
            path, sides = _path(words, n)
            within = [k >= max_level for k in range(lvl)]
            nodes = [n, *g.ancestors(n)]
            a, rec = replay.allocator(words, depth, max_order, t)
            ok = replay.attempt(a, n)
            mine, mine_ok, _ = sequential.alloc_path(t, INTS, path, sides, within)
            assert ok == mine_ok == spec.is_free(tree.abstraction(words, depth), n)
            assert [rec.w[x] for x in nodes[::-1]] == mine
            assert all(rec.w[x] == words[x] for x in g.all_nodes(depth) if x not in nodes)
            if words[n] == tree.bits.BUSY:
                a, rec = replay.allocator(words, depth, max_order, t)
                replay.free(a, n)
                assert [rec.w[x] for x in nodes[::-1]] == sequential.free_path(t, INTS, path, sides, within)
                assert all(rec.w[x] == words[x] for x in g.all_nodes(depth) if x not in nodes)


def _concrete(depth: int, state: frozenset[int]) -> speclemmas.SpecState:
    return speclemmas.SpecState(
        depth, [z3.BoolVal(False)] + [z3.BoolVal(x in state) for x in g.all_nodes(depth)]
    )


def _holds(term: z3.BoolRef) -> bool:
    return z3.is_true(z3.simplify(term))


def test_the_z3_spec_encoding_agrees_with_model_spec_on_every_state_of_depth_2() -> None:
    depth = 2
    nodes = list(g.all_nodes(depth))
    for r in range(len(nodes) + 1):
        for combo in itertools.combinations(nodes, r):
            state = frozenset(combo)
            st = _concrete(depth, state)
            assert _holds(speclemmas.inv_disjoint(st, SPEC_RULES)) == spec.inv_disjoint(
                spec.Spec.of(depth), state
            )
            for n in nodes:
                assert _holds(speclemmas.is_free(st, SPEC_RULES, n)) == spec.is_free(state, n)
                ok, after = spec.step(spec.Spec.of(depth), state, spec.Alloc(g.order_of(depth, n), n))
                if ok:
                    post = speclemmas.after_alloc(st, SPEC_RULES, n)
                    assert {x for x in nodes if _holds(post.live[x])} == after
                if n in state:
                    post = speclemmas.after_free(st, SPEC_RULES, n)
                    assert {x for x in nodes if _holds(post.live[x])} == state - {n}


def test_a_refinement_counterexample_is_a_tree_that_satisfies_the_invariant_before() -> None:
    _, variant = MUTANTS["mark_stops_early"]
    failed = [
        p for p in obligations.run_all(obligations.matching(MUTATED, "refine_free"), variant) if not p.proved
    ]
    assert failed
    assert "quiescent invariant before: holds" in failed[0].counterexample


def test_the_shipped_variant_is_what_the_allocator_runs_and_counted_the_default_proof_family() -> None:
    # SHIPPED says what nbbs prove proves first; a Variant() and the catalogue default to counted's
    # proofs, whatever the default variant is.
    assert NBBS.transitions is SHIPPED.transitions is bits.TOP_DOWN_NODE
    assert Variant().transitions is VARIANTS["counted"].transitions is bits.COUNTED
