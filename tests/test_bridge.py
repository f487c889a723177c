"""The model checker's counterexamples replay on the real allocator and show the same violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbbs.check.bridge import Counterexample, reproduce

FOLDER = Path(__file__).parent / "data" / "counterexamples"
FILES = sorted(FOLDER.glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_kept_counterexample_reproduces_on_the_implementation(path: Path) -> None:
    rep = reproduce(Counterexample.load(path))
    assert rep.reproduced, rep.detail


def test_the_folder_holds_at_least_the_explorers_own_counterexample() -> None:
    assert any(p.name.startswith("explore-") for p in FILES)


def test_a_counterexample_on_the_corrected_variant_does_not_reproduce() -> None:
    # The reference variant's lost block: replayed on the corrected variant, the accesses part
    # ways (its unmark skips the side another free cleared), so the bridge must say no.
    cx = Counterexample.load(FOLDER / "explore-reference-d2-b.json")
    fixed = Counterexample(
        "corrected", cx.depth, cx.max_order, cx.initial_live, cx.threads, cx.schedule, cx.property
    )
    assert not reproduce(fixed).reproduced


def test_the_stop_early_overlap_does_not_reproduce_on_the_counted_variant() -> None:
    # On counted, thread 1's climb does not stop at node 2's borrowed count: it goes on to the
    # root, finds block 1 and rolls back, so the accesses part ways and nothing overlaps.
    cx = Counterexample.load(FOLDER / "stop-early-a.json")
    assert reproduce(cx).reproduced
    fixed = Counterexample(
        "counted", cx.depth, cx.max_order, cx.initial_live, cx.threads, cx.schedule, cx.property
    )
    assert not reproduce(fixed).reproduced
