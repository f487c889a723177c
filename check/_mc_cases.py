"""The counterexamples the model checker found, kept as data (``tests/data/counterexamples``).

Each case names a variant, the configuration whose shortest counterexample it is, and a
plain-English explanation. ``write_cases`` runs the checker and writes one JSON file per
case, ``<variant>-<property>.json``; a test checks that the files still match the checker.
They are found in ``scan`` mode with checked frees (or found in ``attempt`` mode and
converted, ``as_scan_replay``), so every atomic step of ``NBBS.alloc`` (with ``hint``) and
``NBBS.free`` is in the schedule and a scheduler can replay them on the real allocator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbbs.check._mc import Config, check
from nbbs.check.modelcheck import as_scan_replay, to_json


@dataclass(frozen=True)
class Case:
    """A variant, the property it breaks, where, and why."""

    variant: str
    prop: str
    threads: int
    depth: int
    explanation: str
    search: str = "scan"
    """``scan``: searched in scan mode with checked frees; ``attempt``: searched in attempt
    mode (much smaller) and converted with ``as_scan_replay``."""
    scenario: tuple[tuple[tuple[str, int], ...], ...] | None = None
    """Search only the interleavings of these ops, from the empty tree (too large otherwise)."""

    def config(self) -> Config:
        return Config(
            self.threads,
            self.depth,
            variant=self.variant,
            mode=self.search,
            checked_free=self.search == "scan",
            properties=(self.prop,),
            stop_at_first=True,
            scenario=self.scenario,
            initial="all" if self.scenario is None else "empty",
        )

    @property
    def filename(self) -> str:
        # The kept files predate the underscores in variant names (``rollback-only-b.json``).
        return f"{self.variant.replace('_', '-')}-{self.prop}.json"


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

_THREE_THREAD_ABA = (
    "Three threads, an unmark's CAS on an equal word (ABA) clears a bit a held block needs. "
    "Threads 1 and 2 have occupied pages 4 and 5 while thread 0 allocates node 2 above them "
    "(its climb sets OCC_L in the root); their climbs will find node 2 occupied. Thread 0 "
    "frees node 2: it marks the root (COAL_L: 01010) and releases node 2. Thread 1's climb "
    "from page 4 now finds node 2 free: it sets OCC_L there and, in the root, keeps OCC_L and "
    "clears COAL_L, re-claiming the path; it holds 4. Thread 1 frees 4 and marks node 2 "
    "(COAL_L); node 2's right side is empty, so its mark goes on. Thread 2's climb from page "
    "5 sets OCC_R in node 2, then finds the root's OCC_L already set and no COAL_L: nothing to "
    "change, so it makes no write there; it holds 5. Thread 1's mark now sets COAL_L in the "
    "root, which becomes 01010 again: exactly the word thread 0's unmark expects. Thread 0's "
    "unmark CAS succeeds and clears the root (00000) although page 5 is held under its left "
    "side. Thread 0 allocates the root (order 2, the whole arena): two held blocks overlap "
    "(a), and at that alloc's linearization point page 5 is live (c)."
)

_STALE_COAL = (
    "A mark that comes after the path was cleared leaves a word holding only a COAL bit, and "
    "occupy expects 0. Thread 1 allocates page 8 (its climb sets OCC_L in nodes 4, 2 and the "
    "root) and frees it: it marks 4, 2 and the root (COAL_L) and unmarks node 4 (it releases "
    "8 last). Thread 0, which had found node 4 free, occupies it (order 2) and climbs, "
    "clearing COAL_L in node 2 and the root; it holds 4. Thread 0 frees 4 and marks node 2, "
    "whose word is 01010 again; thread 1's pending unmark CAS on node 2 succeeds on that equal "
    "word (ABA) and clears it, then finds no COAL_L in the root (thread 0's climb cleared it) "
    "and stops. Thread 1 allocates node 2 (its word is 0; block 4 below it is being freed), "
    "frees it, marks and unmarks the root (00000). Thread 0's mark only now reaches the root "
    "and sets COAL_L in a zero word (01000); its unmark finds node 2 occupied and stops. Both "
    "release. The tree is empty but the root's word is 01000: no block and nothing below, yet "
    "occupy expects 0, so block 1 is lost until an alloc passes through node 2 and its free "
    "clears the root."
)

_ONE_LEVEL_UP = (
    "The ABA of reference-a.json one level higher, which releasing after the unmark does not "
    "prevent; found by searching every interleaving of these operations at depth 3 (3 threads "
    "at depth 3 was too large for the Python engine to search with every operation). Thread 0 "
    "allocates node 4 (order 1; OCC_L in node 2 and the root) while threads 1 and 2 occupy "
    "pages 10 and 11 under node 5. "
    "Thread 0 frees 4: it marks node 2 and the root (COAL_L), and unmarks node 2 (00000); block 4 "
    "stays occupied until its release, which comes last. Thread 1's climb from 10 sets OCC_L in "
    "node 5, OCC_R in node 2 and, in the root, clears COAL_L (it re-claims the path): it holds 10. "
    "Thread 1 frees 10: its mark sets COAL_L in node 5 (the right side is still empty) and goes "
    "on. Thread 2's climb from 11 sets OCC_R in node 5, then finds node 2's OCC_R and the root's "
    "OCC_L already set with no COAL bit: no write; it holds 11. Thread 1's mark goes on to node 2 "
    "(COAL_R; its left side was cleared by thread 0) and to the root (COAL_L). Thread 0's unmark "
    "now finds COAL_L in the root, a licence thread 1 issued and would not use itself (its unmark "
    "will stop at node 5, where thread 2 is), and clears the root (00000) although page 11 is "
    "held below. Thread 0 releases 4 and allocates the root (order 3): blocks 1 and 11 are both "
    "held (a), (c)."
)

_BORROWED_COUNT = (
    "The naive stop-early climb trusts a count whose owner is about to roll back. Block 1 (the "
    "whole arena) is held from the start. Threads 0 and 1 both scan order 0 from page 4 and "
    "load it free. Thread 0 occupies 4 and climbs: node 2's left count goes 0 -> 1, so it must "
    "go on to the root, where it finds block 1 and rolls back: it releases 4 (its unmark of "
    "node 2 is still to come). Thread 1 now occupies 4 and climbs: node 2's left count is 1, "
    "not zero, so it adds its claim (1 -> 2) and stops there, trusting the owner of the first "
    "claim to hold the path up above node 2. That owner never got above node 2 and is leaving: "
    "thread 1 holds page 4 under the held block 1 (a), and at its alloc's linearization point "
    "block 1 is live (c)."
)

CASES = (
    Case("reference", "b", 2, 2, _HANDED_OVER),
    Case("skip_only", "b", 2, 2, "The unmark repair alone leaves the rollback defect: " + _HANDED_OVER),
    Case("rollback_only", "b", 2, 2, "The rollback repair alone leaves the unmark defect: " + _ABA),
    Case("reference", "a", 3, 2, _THREE_THREAD_ABA, search="attempt"),
    Case(
        "rollback_skip",
        "a",
        3,
        2,
        "Repairs 1 and 2 leave the published unmark's ABA, which three threads turn into an "
        "overlap: " + _THREE_THREAD_ABA,
        search="attempt",
    ),
    Case(
        "rollback_skip_last",
        "b",
        2,
        3,
        "Repairs 1, 2 and 3 (release after unmark) remove the overlap but leave this: " + _STALE_COAL,
        search="attempt",
    ),
    Case(
        "corrected",
        "a",
        3,
        3,
        "A KNOWN DEFECT of corrected (shipped before counted). " + _ONE_LEVEL_UP,
        search="attempt",
        scenario=((("alloc", 4), ("free", 4), ("alloc", 1)), (("alloc", 10), ("free", 10)), (("alloc", 11),)),
    ),
    Case("stop_early", "a", 2, 2, _BORROWED_COUNT),
)
"""Every counterexample kept: the reference's and each rejected candidate's."""


def case_data(case: Case) -> dict[str, Any]:
    """Run the checker on ``case`` and return its counterexample file's content."""
    cfg = case.config()
    result = check(cfg)
    if case.prop not in result.violations:
        raise AssertionError(f"{case.filename}: the checker no longer finds a violation of ({case.prop})")
    data = to_json(result.violations[case.prop], cfg, case.explanation)
    return data if case.search == "scan" else as_scan_replay(data)


def write_cases(directory: Path) -> list[Path]:
    """Write every case's file into ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for case in CASES:
        path = directory / case.filename
        path.write_text(json.dumps(case_data(case), indent=1) + "\n")
        out.append(path)
    return out
