"""The allocators agree with the spec step by step, and the machine catches broken transitions."""

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import DEEP
from hypothesis import settings

from nbbs.check import differential
from nbbs.check.mutants import COUNTED_MUTANTS, SEQUENTIALLY_VISIBLE, TRANSITION_MUTANTS, mutant_allocator
from nbbs.impl import NBBS, LockedBuddy

DEPTH = 16 if DEEP else differential.MAX_DEPTH

TestNBBSAgreesWithTheSpec = differential.machine(NBBS, DEPTH).TestCase
TestLockedBuddyAgreesWithTheSpec = differential.machine(LockedBuddy, DEPTH).TestCase
# The C engine's machines check the binding (argument paths, errors, words) more than the C
# code, which tests/test_port_c.py and `nbbs conform` check at length: fewer examples by default
# (their time goes to the checker's invariants, not to the engine).
TestTheCEngineAgreesWithTheSpec = differential.machine(differential.c_engine(), DEPTH).TestCase
TestTheCEngineReferenceAgreesWithTheSpec = differential.machine(
    differential.c_engine("reference"), DEPTH
).TestCase
# top_down_node in C (ALGORITHM.md §1.4.3; its accesses are checked against the step machine by
# tests/test_port_c_conform.py): the extension's variant number and its words through the binding.
TestTheCEngineTopDownNodeAgreesWithTheSpec = differential.machine(
    differential.c_engine("top_down_node"), DEPTH
).TestCase
if not DEEP:
    TestTheCEngineTopDownNodeAgreesWithTheSpec.settings = settings(
        TestNBBSAgreesWithTheSpec.settings, max_examples=15
    )
    TestTheCEngineAgreesWithTheSpec.settings = settings(TestNBBSAgreesWithTheSpec.settings, max_examples=40)
    TestTheCEngineReferenceAgreesWithTheSpec.settings = settings(
        TestNBBSAgreesWithTheSpec.settings, max_examples=20
    )


@pytest.mark.parametrize("name", [*SEQUENTIALLY_VISIBLE, *COUNTED_MUTANTS])
def test_the_machine_catches_a_broken_transition(name: str) -> None:
    machine = differential.machine(mutant_allocator(name), max_depth=4)
    # As nbbs verify runs it: search until a failure (every mutant shows within 15 rules), then
    # shrink for at most 5 s (unbounded shrinking took up to 167 s per mutant on a loaded machine).
    outcome = differential.run_for(machine, 120.0, name, shrink_seconds=5.0, steps=15)
    assert not outcome.ok, f"{name} was not caught"
    # The reproducer is a program one can paste: it builds the arena and replays the rules.
    assert "state = " in outcome.detail and "state.build(" in outcome.detail, outcome.detail
    doc = {**TRANSITION_MUTANTS, **COUNTED_MUTANTS}[name][0]
    print(f"{name}: {doc}\n{outcome.detail}")


@pytest.fixture
def derandomizing_profile() -> Iterator[None]:
    """The profile Hypothesis loads by itself in a CI environment derandomizes; load one like it."""
    before = settings.get_current_profile_name()
    settings.register_profile("derandomized", settings.get_profile(before), derandomize=True)
    settings.load_profile("derandomized")
    try:
        yield
    finally:
        settings.load_profile(before)


def test_a_time_bounded_search_draws_new_examples_in_every_chunk_even_where_ci_derandomizes(
    derandomizing_profile: None,
) -> None:
    # Under CI's derandomizing profile every chunk drew the same 5 programs: two mutants went
    # uncaught for 120 s each. The shapes the machine builds show whether chunks differ.
    shapes: set[tuple[object, ...]] = set()

    def recording(depth: int, **shape: Any) -> NBBS:
        shapes.add((depth, *sorted(shape.items())))
        return NBBS(depth, **shape)

    outcome = differential.run_for(differential.machine(recording, max_depth=4), 4.0, "shapes", chunk=5)
    # Derandomized, the chunks built 6 to 11 shapes in all (of 360); drawing anew, most examples
    # build one not seen before (62 shapes in 86 examples, 2 s).
    assert outcome.ok, outcome
    assert len(shapes) > 20, f"{outcome.examples} examples built only {len(shapes)} arena shapes"
