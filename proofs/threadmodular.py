"""A thread-modular (rely-guarantee) invariant of the NBBS step machines, for any number of threads.

This is the step-level part of the proofs, and it is explicit-state, not z3 (see
``proofs/README.md`` for why and for what it does and does not establish).

The invariant is a set ``R`` of pairs (shared state, one thread's local state), the
Flanagan-Qadeer / Owicki-Gries "Cartesian" abstraction of the system with any number of
threads, each running the model checker's scenario (``check/_mc.py``, attempt mode: alloc
one node it picks, then free it, forever) from every set of live blocks:

* the shared state is the words plus a ghost: the set of *held* blocks (the initial live
  blocks, and each block whose alloc returned and whose free has not started). The ghost
  is updated in the same atomic step as the thread's own transition (alloc's last step
  adds its block, free's first step removes it);
* a thread's local state is its ``steps.OpState`` (program counter and locals, interned as
  in the model checker).

``R`` is the least set that contains (initial shared state, idle) and is closed under
(1) *guarantee*: a thread in ``(s, l)`` takes a step to ``(s', l')``, and (2) *rely*: for
``(s, l)`` and ``(s, l2)`` both in ``R``, the thread in ``l2`` steps from ``s`` to ``s'``
and ``(s', l)`` joins ``R``. Any reachable global state of any number of threads has
every thread's (shared, local) pair in ``R`` (induction on the run). Safety is checked on
the steps themselves: whenever an alloc returns a block, it must overlap no held block
of the ghost (which holds every other thread's blocks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from nbbs.check._mc import IDLE, Config, Space
from nbbs.model import bits, steps
from nbbs.model import geometry as g


@dataclass
class TMResult:
    """What the fixpoint found for one configuration."""

    depth: int
    variant: str
    pairs: int
    """(shared state, local state) pairs in the invariant."""
    shared_states: int
    seconds: float
    violation: str | None
    """The first alloc that returned a block overlapping a held one, as text (None: safe)."""
    complete: bool
    invariant: dict[int, set[int]] = field(default_factory=dict, repr=False)
    """``R``: shared state -> the local states (op ids of ``space``) a thread may be in with it."""
    space: Space | None = field(default=None, repr=False)
    initial: list[int] = field(default_factory=list, repr=False)
    """The initial shared states (every live set, nothing claimed but it, every thread idle)."""

    @property
    def ok(self) -> bool:
        """The fixpoint was reached and no overlap was found."""
        return self.complete and self.violation is None


CLAIMING = frozenset(
    {steps.C_LOAD, steps.C_CAS, steps.R_MARK, steps.R_RELEASE, steps.R_PLOAD, steps.R_PCAS}
    | {steps.F_CHECK, steps.F_MARK, steps.F_RELEASE, steps.DONE_OK}
)
"""Program counters at which an operation has claimed its node ``n`` (its occupy CAS succeeded,
or it is freeing ``n``) and not yet released it."""

UNMARKING = frozenset({steps.F_ULOAD, steps.F_UCAS, steps.R_ULOAD, steps.R_UCAS})
"""Also claimed there in a variant that releases after its unmark (``release_last``)."""


def claims(sp: Space, tid: int) -> int:
    """The node the operation in local state ``tid`` has claimed (0: none)."""
    op = sp.ops[tid]
    if tid == IDLE:
        return 0
    if op.pc in CLAIMING or (sp.m.transitions.release_last and op.pc in UNMARKING):
        return int(op.n)
    return 0


def ghost_step(
    claimed: Any, held: Any, mine: int, after: int, hold_before: int, hold_after: int, overlaps: int
) -> tuple[Any, Any, list[tuple[str, Any]]]:
    """The ghost sets after one step, and what the step must not do (generic over ints and z3).

    ``mine``/``after``: the node the thread claims before/after the step (0: none);
    ``hold_before``/``hold_after``: the block it holds; ``overlaps``: the mask of nodes that
    overlap ``hold_after``. Returns the new claimed and held sets and the safety checks
    (name, must-be-true) of the step.
    """
    checks: list[tuple[str, Any]] = []
    if mine and not after:
        claimed = claimed & ~(1 << mine)  # release
    if after and not mine:  # occupy succeeded
        checks.append((f"node {after} is claimed by one operation only", (claimed >> after) & 1 == 0))
        claimed = claimed | 1 << after
    if hold_before and not hold_after:
        held = held & ~(1 << hold_before)  # the free's first step
    if hold_after and not hold_before:  # the alloc returns
        checks.append((f"the returned block {hold_after} overlaps no held block", held & overlaps == 0))
        held = held | 1 << hold_after
    return claimed, held, checks


def fixpoint(
    depth: int,
    variant: str = "corrected",
    transitions: bits.Transitions | None = None,
    max_pairs: int = 2_000_000,
) -> TMResult:
    """Compute ``R`` for a tree of ``depth`` (every initial live set), checking safety on the way."""
    started = time.perf_counter()
    sp = Space(Config(1, depth, variant=variant, transitions=transitions))
    nodes = g.node_count(depth)
    word_mask = (1 << sp.WB) - 1
    claim_shift, held_shift = sp.WB, sp.WB + nodes
    node_mask = (1 << nodes) - 1
    overlap_mask = [0] + [sum(1 << m for m in range(1, nodes) if g.overlaps(n, m)) for n in range(1, nodes)]

    def claim(tid: int) -> int:
        return claims(sp, tid)

    R: dict[int, set[int]] = {}
    todo: list[tuple[int, int]] = []
    violation: list[str] = []

    def add(key: int, tid: int) -> None:
        got = R.setdefault(key, set())
        if tid not in got:
            got.add(tid)
            todo.append((key, tid))

    def report(what: str, key: int, tid: int) -> None:
        if not violation:
            w = sp.words_of(key & word_mask)
            held = [m for m in range(1, nodes) if key >> held_shift >> m & 1]
            violation.append(
                f"{what} (thread at {steps.describe(sp.ops[tid])}, held {held}); words "
                + " ".join(f"{m}:{w[m]:05b}" for m in range(1, len(w)))
            )

    memo: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def steps_of(key: int, tid: int) -> list[tuple[int, int]]:
        """Each (new shared state, new local state) of one step of a thread in ``tid``."""
        got = memo.get((key, tid))
        if got is None:
            got = memo[key, tid] = _steps_of(key, tid)
        return got

    def _steps_of(key: int, tid: int) -> list[tuple[int, int]]:
        out = []
        words = key & word_mask
        claimed = (key >> claim_shift) & node_mask
        held = key >> held_shift
        mine = claim(tid)
        for op in sp.moves(tid):
            shift, _, rows = sp.table(op)
            old = (words >> shift) & bits.WORD_MASK
            new, nxt, _done = rows[old]
            after = claim(nxt)
            h_after = sp.hold[nxt]
            c2, h2, checks = ghost_step(
                claimed, held, mine, after, sp.hold[tid], h_after, overlap_mask[h_after] if h_after else 0
            )
            for what, ok in checks:
                if not ok:
                    report(f"violated: {what}", key, tid)
            out.append(((words ^ ((old ^ new) << shift)) | c2 << claim_shift | h2 << held_shift, nxt))
        return out

    def compatible(a: int, b: int) -> bool:
        """Two distinct threads never hold a claim on the same node (checked as they claim)."""
        ca = claim(a)
        return not ca or ca != claim(b)

    initial = []
    for s0 in sp.initial():
        live = sum(1 << n for n in sp.sets[sp.static(s0)])
        initial.append((s0 & word_mask) | live << claim_shift | live << held_shift)
        add(initial[-1], IDLE)
    complete = True
    pairs = 0
    while todo:
        if pairs > max_pairs:
            complete = False
            break
        key, tid = todo.pop()
        pairs += 1
        for key2, nxt in steps_of(key, tid):  # guarantee: the thread's own step
            add(key2, nxt)
            for other in list(R[key]):  # ... is interference for every other thread at key
                if (other != tid and compatible(other, tid)) or (other == tid and not claim(tid)):
                    add(key2, other)
        for other in list(R[key]):  # rely: every other thread's steps from key, seen by tid
            if (other != tid and compatible(other, tid)) or (other == tid and not claim(tid)):
                for key3, _ in steps_of(key, other):
                    add(key3, tid)
    return TMResult(
        depth,
        variant if transitions is None else "mutant",
        sum(len(v) for v in R.values()),
        len(R),
        time.perf_counter() - started,
        violation[0] if violation else None,
        complete,
        R,
        sp,
        initial,
    )
