"""The step machine performs exactly the allocator's accesses, in the same order."""

from __future__ import annotations

import random

import pytest

from nbbs.check.mutants import TRANSITION_MUTANTS, mutant_allocator
from nbbs.check.trace import Tracing
from nbbs.impl.errors import NBBSError
from nbbs.impl.nbbs import NBBS
from nbbs.model import bits, steps
from nbbs.model import geometry as g
from nbbs.model.steps import Kind, Machine

SHAPES = [(0, 0), (1, 1), (2, 2), (3, 3), (3, 1), (4, 4), (4, 2), (5, 3)]
VARIANTS = sorted(bits.VARIANTS)


class Tally:
    """What a comparison run exercised."""

    def __init__(self) -> None:
        self.allocs = self.failures = self.rollbacks = self.frees = 0


def _compare(
    depth: int,
    max_order: int,
    seed: int,
    ops: int,
    allocator: type[NBBS] = NBBS,
    transitions: bits.Transitions | None = None,
    tally: Tally | None = None,
    variant: str | None = None,
) -> str | None:
    """Random allocs (with hints) and frees on both, trace compared op by op: the first difference.

    The allocator runs ``variant`` (its class's transitions if None), the machine runs
    ``transitions`` (the variant's if None).
    """
    tally = tally or Tally()
    rng = random.Random(seed)
    rec = Tracing()
    impl = allocator(depth, page_size=1, max_order=max_order, backend=rec, variant=variant)
    if transitions is None:
        transitions = impl.transitions
    m = Machine(depth, depth - max_order, transitions)
    words = [0] * g.node_count(depth)
    live: list[int] = []
    for i in range(ops):
        before = len(rec.events)
        if live and rng.random() < 0.4:
            n = live.pop(rng.randrange(len(live)))
            try:
                impl.free(g.first_page(depth, n), g.order_of(depth, n))
                refused = False
            except NBBSError:  # only a mutant's words can make the argument check fail
                refused = True
            done, trace = m.run(m.free(n, checked=True), words)
            tally.frees += 1
            what = f"free({n})"
            if refused != (done.pc == steps.DONE_FAIL):
                return f"seed {seed}, op {i}: {what}: impl refused {refused}, model {steps.describe(done)}"
        else:
            order, hint = rng.randint(0, max_order), rng.randrange(1 << depth)
            address = impl.alloc(order, hint)
            done, trace = m.run(m.alloc(order, hint), words)
            got = steps.result(done)
            if got is not None:
                live.append(got)
            tally.allocs += 1
            tally.failures += got is None
            # A rollback releases its candidate: a CAS from an occupied word to the released one.
            tally.rollbacks += any(
                e.kind in (Kind.CAS, Kind.STORE)
                and transitions.is_occupied(e.old)
                and e.new == transitions.release(e.old)
                for e in trace
            )
            what = f"alloc(order={order}, hint={hint}) -> impl {address}, model {got}"
        if trace != rec.events[before:]:
            return f"seed {seed}, op {i}: {what}\n  model: {trace}\n  impl:  {rec.events[before:]}"
        if tuple(words) != impl.words():
            return f"seed {seed}, op {i}: {what}: words differ"
    return None


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("depth", "max_order"), SHAPES, ids=[f"depth{d}-max{o}" for d, o in SHAPES])
def test_step_machine_and_allocator_make_the_same_accesses(depth: int, max_order: int, variant: str) -> None:
    tally = Tally()
    for seed in range(30):
        assert _compare(depth, max_order, seed, 60, tally=tally, variant=variant) is None
    assert tally.frees > 0 and tally.allocs > 0
    if depth - max_order < depth - 1:  # two levels below max_level: an alloc can land under a block
        assert tally.rollbacks > 0 and tally.failures > 0


def test_the_comparison_sees_a_machine_that_differs_from_the_allocator() -> None:
    _, broken = TRANSITION_MUTANTS["occupy_only_occ"]
    assert _compare(3, 3, 0, 60, transitions=broken) is not None
    broken_impl = mutant_allocator("unmark_sets_instead_of_clears")
    assert _compare(2, 2, 0, 60, allocator=broken_impl, transitions=bits.PUBLISHED) is not None
    # The two variants differ in what a rollback does, which sequential runs reach.
    assert any(
        _compare(3, 3, seed, 60, variant="corrected", transitions=bits.PUBLISHED) is not None
        for seed in range(10)
    )


@pytest.mark.parametrize("name", sorted(TRANSITION_MUTANTS))
def test_a_mutant_bundle_changes_the_machine_as_it_changes_the_allocator(name: str) -> None:
    _, t = TRANSITION_MUTANTS[name]
    for seed in range(5):
        assert _compare(3, 3, seed, 40, allocator=mutant_allocator(name), transitions=t) is None


def test_sequential_runs_include_rollbacks() -> None:
    # An order-0 scan that lands under a live order-1 block climbs into it and rolls back.
    m = Machine(2, transitions=bits.PUBLISHED)
    words = [0] * g.node_count(2)
    m.run(m.alloc(1, 0), words)
    done, trace = m.run(m.alloc(0, 0), words)
    assert steps.result(done) == 6
    first = [(e.node, e.kind) for e in trace][:4]
    assert first == [(4, Kind.LOAD), (4, Kind.CAS), (2, Kind.LOAD), (4, Kind.STORE)]
    rec = Tracing()
    impl = NBBS(2, page_size=1, backend=rec, variant="reference")
    impl.alloc(1, 0)
    start = len(rec.events)
    impl.alloc(0, 0)
    assert rec.events[start:] == trace


def test_a_single_attempt_fails_where_the_scan_moves_on() -> None:
    m = Machine(2)
    words = [0] * g.node_count(2)
    m.run(m.alloc(1, 0), words)
    done, _ = m.run(m.attempt(4), words)
    assert done.pc == steps.DONE_FAIL
    assert steps.result(m.run(m.attempt(6), words)[0]) == 6


def test_the_corrected_rollback_looks_above_its_bound_and_releases_last() -> None:
    # A page under a live root: the climb sets OCC_L in node 2, finds the root occupied and
    # rolls back. Its mark reaches its bound at node 2 and would go on, so the corrected
    # rollback loads the root (a block: it stops there), its unmark loads it again, and the
    # release comes last; the published rollback releases first and stops at its bound.
    traces = {}
    for variant in ("reference", "corrected"):
        m = Machine(2, transitions=bits.VARIANTS[variant])
        words = [0] * g.node_count(2)
        m.run(m.alloc(2, 0), words)
        done, trace = m.run(m.attempt(4), words)
        assert done.pc == steps.DONE_FAIL and words == [0, bits.BUSY, 0, 0, 0, 0, 0, 0]
        traces[variant] = [(e.node, e.kind) for e in trace][5:]
    L, C, F, S = Kind.LOAD, Kind.CAS, Kind.FETCH_OR, Kind.STORE
    assert traces["reference"] == [(2, F), (4, S), (2, L), (2, C)]
    assert traces["corrected"] == [(2, F), (1, L), (2, L), (2, C), (1, L), (4, S)]


def test_a_checked_free_refuses_what_the_allocator_refuses() -> None:
    m = Machine(2)
    words = [0] * g.node_count(2)
    m.run(m.alloc(1, 0), words)
    assert m.run(m.free(4, checked=True), list(words))[0].pc == steps.DONE_FAIL
    assert m.run(m.free(3, checked=True), list(words))[0].pc == steps.DONE_FAIL
    assert m.run(m.free(2, checked=True), words)[0].pc == steps.DONE_FREE
    assert words == [0] * g.node_count(2)


@pytest.mark.parametrize("variant", VARIANTS)
def test_branches_are_exclusive_and_exhaustive_for_every_word(variant: str) -> None:
    m = Machine(3, 1, bits.VARIANTS[variant])
    seen = set()
    todo = [m.alloc(o, s) for o in range(3) for s in range(8)] + [m.free(n) for n in range(2, 16)]
    todo += [m.free(n, checked=True) for n in range(2, 16)]
    while todo:
        op = todo.pop()
        if op in seen or steps.is_done(op):
            continue
        seen.add(op)
        for old in range(1 << bits.WORD_BITS):
            taken = [nxt for guard, nxt in m.branches(op, old) if guard]
            assert len(taken) == 1, (steps.describe(op), old)
            todo.append(taken[0])
    assert len(seen) > 100
