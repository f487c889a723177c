"""The allocators agree with the spec step by step, and the machine catches broken transitions."""

import pytest
from conftest import DEEP
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

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
if not DEEP:
    TestTheCEngineAgreesWithTheSpec.settings = settings(TestNBBSAgreesWithTheSpec.settings, max_examples=40)
    TestTheCEngineReferenceAgreesWithTheSpec.settings = settings(
        TestNBBSAgreesWithTheSpec.settings, max_examples=20
    )


@pytest.mark.parametrize("name", [*SEQUENTIALLY_VISIBLE, *COUNTED_MUTANTS])
def test_the_machine_catches_a_broken_transition(name: str) -> None:
    machine = differential.machine(mutant_allocator(name), max_depth=4)
    with pytest.raises(Exception) as failure:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=300,
                stateful_step_count=15,  # short programs shrink fast; every mutant shows within 15 rules
                database=None,
                # One failure is enough to show the mutant is caught; shrinking a second,
                # distinct one doubled the test's time.
                report_multiple_bugs=False,
                derandomize=True,  # the same search every run: its time and its catch are repeatable
                suppress_health_check=list(HealthCheck),
            ),
        )
    # The shrunk reproducer is a program one can paste: it builds the arena and replays the rules.
    # Hypothesis raises a group when it shrinks to distinct failures (here, an unmark that
    # takes the wrong side's claim: the count goes negative, or the invariant breaks first).
    found = failure.value.exceptions[0] if isinstance(failure.value, BaseExceptionGroup) else failure.value
    program = "\n".join(getattr(found, "__notes__", []))
    assert "state = " in program and "state.build(" in program, program
    doc = {**TRANSITION_MUTANTS, **COUNTED_MUTANTS}[name][0]
    print(f"{name}: {doc}\n{program}\n{failure.value!r}")
