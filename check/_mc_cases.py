"""The counterexamples the model checker found, kept as data (``tests/data/counterexamples``).

Each case names a variant, the configuration whose shortest counterexample it is, and a
plain-English explanation. ``write_cases`` runs the checker and writes one JSON file per
case, ``<variant>-<property>.json``; a test checks that the files still match the checker.
They are found in ``scan`` mode with checked frees, so every atomic step of ``NBBS.alloc``
(with ``hint``) and ``NBBS.free`` is in the schedule and a scheduler can replay them on the
real allocator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbbs.check._mc import Config, check
from nbbs.check.modelcheck import to_json


@dataclass(frozen=True)
class Case:
    """A variant, the property it breaks, where, and why."""

    variant: str
    prop: str
    threads: int
    depth: int
    explanation: str

    def config(self) -> Config:
        return Config(
            self.threads,
            self.depth,
            variant=self.variant,
            mode="scan",
            checked_free=True,
            properties=(self.prop,),
            stop_at_first=True,
        )

    @property
    def filename(self) -> str:
        return f"{self.variant}-{self.prop}.json"


_HANDED_OVER = (
    "A rollback strands a path another free handed to it. Thread 0 scans order 0 from page 4: "
    "it occupies 4 and climbs into node 2 (sets OCC_L), then finds the root occupied by thread "
    "1's order-2 block, so it must roll back below the root (bound: level 1). Before it does, "
    "thread 1 frees the root and allocates page 5, whose climb sets OCC_R in node 2 and OCC_L "
    "in the root. Thread 1 frees 5: its mark sets COAL_R in node 2 and stops there, because the "
    "left side (thread 0's page 4, still occupied) looks occupied and not coalescing, so the "
    "left side's owner is trusted to carry the free on above node 2. Thread 0's rollback marks "
    "node 2 (COAL_L) and releases 4; thread 1 unmarks node 2's right side and stops (the left "
    "is still occupied); thread 0's unmark clears node 2's left side and stops at its bound. "
    "Nobody clears the root's OCC_L: the tree is empty, yet the root's word is 00010, so a "
    "sequential alloc of order 2 fails (block 1 is lost) until an alloc passes through node 2 "
    "and its free unmarks the root."
)

_ABA = (
    "An unmark's CAS succeeds on an equal word that is another free's mark (ABA), and the "
    "other free then stops early. Thread 0 allocates page 4 (OCC_L set in node 2 and in the "
    "root) and frees it: it marks node 2 and the root (COAL_L) and releases 4. Thread 1 "
    "allocates 4 again: its climb clears COAL_L in node 2 and in the root (it re-claims the "
    "path). Thread 1 frees 4 and marks node 2, whose word is again 01010, exactly what thread "
    "0 loaded before thread 1's alloc. Thread 0's unmark CAS on node 2 succeeds on that equal "
    "word and clears thread 1's mark and OCC_L although thread 1 has not released 4 yet; "
    "thread 0 goes on to the root, finds no COAL_L there (thread 1 has not marked it yet) and "
    "stops. Thread 1 marks the root, releases 4 and unmarks: in node 2 its COAL_L is gone, "
    "which the published unmark reads as 'an alloc re-claimed the path', so it stops. The "
    "root keeps COAL_L|OCC_L (01010) over an empty tree: a sequential alloc of order 2 fails, "
    "block 1 is lost. (The reference has this defect too; its shortest counterexample is the "
    "rollback one.)"
)

CASES = (
    Case("reference", "b", 2, 2, _HANDED_OVER),
    Case("skip-only", "b", 2, 2, "The unmark repair alone leaves the rollback defect: " + _HANDED_OVER),
    Case("rollback-only", "b", 2, 2, "The rollback repair alone leaves the unmark defect: " + _ABA),
)
"""Every counterexample kept: the reference's and each rejected candidate's."""


def case_data(case: Case) -> dict[str, Any]:
    """Run the checker on ``case`` and return its counterexample file's content."""
    cfg = case.config()
    result = check(cfg)
    if case.prop not in result.violations:
        raise AssertionError(f"{case.filename}: the checker no longer finds a violation of ({case.prop})")
    return to_json(result.violations[case.prop], cfg, case.explanation)


def write_cases(directory: Path) -> list[Path]:
    """Write every case's file into ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for case in CASES:
        path = directory / case.filename
        path.write_text(json.dumps(case_data(case), indent=1) + "\n")
        out.append(path)
    return out
