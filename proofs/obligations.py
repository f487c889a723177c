"""The catalogue of obligations ``nbbs prove`` runs, and running them.

Groups, in order: ``bits`` (word transitions touch only their bits), ``param`` (per-node
lemmas for a node of any level: the refinement argument for every depth), ``spec`` (the
abstract allocator's lemmas, per depth), ``refine`` (whole sequential operations against
the spec, per depth, one query per level of the chosen node) and ``steps`` (the step-level
invariant: the thread-modular invariant of ``threadmodular`` checked inductive by z3, one
query per (role, program counter), for any number of threads; see ``proofs/README.md``).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator

from nbbs.check.report import Outcome, Task
from nbbs.proofs import bitlemmas, counted_bits, counted_refine, parametric, refinement, speclemmas
from nbbs.proofs._obligation import Obligation, Proof, prove
from nbbs.proofs._variant import SHIPPED, Variant

GROUPS = ("bits", "param", "spec", "refine", "every")

EVERY = ("none", "frame", "attempt", "scan")
"""How much of ``counted_every`` (every depth, any number of threads) to run: nothing (the
catalogue's default); the frame, ``cevery_safe`` and ``counted_close``'s initial state, summary
and composition, lock-freedom's arithmetic (``counted_lfarith``'s ``clf_*``) and the unrolled
height induction (``cind_height``) (``nbbs prove``'s default: cheap); frame, invariant,
lock-freedom (per thread and global, and the step facts the arithmetic uses) in attempt mode;
and also in scan mode, with the scan's skip."""

TOP_DOWN = ("none", "frame", "all", "scan")
"""How much of ``topdown_every`` and ``topdown_close`` (``top-down-node``'s and ``top-down``'s
every-depth invariant) to run beside a ``counted``-family catalogue: nothing; the frame and
safety, the initial state, quiescence, the fold and the composition (cheap); also preservation
of the invariant, lock-freedom per thread and global and the linearization points at every pc,
attempt mode (minutes); also all of that in scan mode, with the skip (longer)."""

DEFAULT_DEPTH_MAX = 10

CAPS = {
    "spec_disjoint_forms": 8,
    "tree_local_global": 8,
    "ctree_local_global": 4,
    "cparam_frame": 4,
    "tntree_local_global": 4,
    "tdtree_local_global": 4,
}
"""Whole-tree obligations whose z3 time grows steeply with depth (measured: depth 10 takes
12 s and 90 s; ``counted``'s: 0.15 s at depth 4, 17 s at depth 5); by default they run up to
this depth. ``param_local_global`` and ``cparam_local_global`` cover every depth by induction."""


def catalogue(
    depth_max: int = DEFAULT_DEPTH_MAX,
    depth_min: int = 1,
    capped: bool = True,
    groups: Iterable[str] = GROUPS,
    steps_depth: int | None = None,
    variant: Variant = SHIPPED,
    threads: int | None = None,
    steps_max_level: int = 0,
    every: str = "none",
    top_down: str = "none",
    symmetric: bool = False,
) -> list[Obligation]:
    """Every obligation of the chosen groups for depths ``depth_min .. depth_max``, for
    ``variant``'s family of words (``counted``'s or the five-bit ones); with ``steps_depth``,
    also the step-level checks for a tree of that depth (``counted``: for ``threads`` threads,
    every depth from ``depth_min`` up to ``steps_depth``, climbs stopping at ``steps_max_level``);
    ``every`` (one of ``EVERY``) says which of ``counted_every``'s every-depth obligations run,
    ``top_down`` (one of ``TOP_DOWN``) which of ``topdown_every``'s (they prove their own
    variants, ``top-down-node`` and ``top-down``, whatever ``variant`` is); ``symmetric``: the
    step-level checks of thread 0 only, plus ``counted_sym``'s proof that the others' are
    thread 0's relabelled."""
    chosen = set(groups)
    out: list[Obligation] = []
    if variant.counted:
        from nbbs.proofs import counted_param

        if "bits" in chosen:
            out += counted_bits.OBLIGATIONS
        if "param" in chosen:
            out += counted_param.OBLIGATIONS
        if "every" in chosen and every != "none":
            from nbbs.proofs import counted_every

            for scan in (False, True) if every == "scan" else (False,):
                obs = counted_every.obligations(scan) + counted_every.lf_obligations(scan)
                obs += counted_every.lin_obligations(scan)
                cheap = [ob for ob in obs if "_frame@" in ob.name or ob.name == "cevery_safe"]
                out += obs if every != "frame" else cheap
            from nbbs.proofs import counted_close, counted_induction, counted_lfarith

            out += counted_close.obligations(every) + counted_induction.obligations()
            out += counted_lfarith.obligations({"frame": None, "attempt": False}.get(every, True))
        if "every" in chosen and top_down != "none":
            from nbbs.proofs import topdown_close, topdown_every

            level = {"frame": "frame", "all": "attempt", "scan": "scan"}[top_down]
            for per_node in (True, False):
                obs = topdown_every.obligations(per_node)
                cheap = [ob for ob in obs if "_frame@" in ob.name or ob.name.endswith("_safe")]
                out += cheap if top_down == "frame" else obs
                out += topdown_close.obligations(level, per_node)
    else:
        if "bits" in chosen:
            out += bitlemmas.OBLIGATIONS
        if "param" in chosen:
            out += parametric.OBLIGATIONS
    for depth in range(depth_min, depth_max + 1):
        per_depth: list[Obligation] = []
        if "spec" in chosen:
            per_depth += speclemmas.obligations(depth)
        if "refine" in chosen:
            per_depth += (
                counted_refine.obligations(depth) if variant.counted else refinement.obligations(depth)
            )
            if variant.counted and top_down != "none":
                from nbbs.proofs import topdown_close

                per_depth += topdown_close.refine_obligations(depth, True)
                per_depth += topdown_close.refine_obligations(depth, False)
        out += [ob for ob in per_depth if not capped or depth <= CAPS.get(ob.name, depth)]
    if steps_depth is not None:
        if variant.counted:
            from nbbs.proofs import counted_lin, counted_steps

            for depth in range(max(min(depth_min, steps_depth), steps_max_level, 1), steps_depth + 1):
                n = threads or 2
                out += counted_steps.obligations(depth, n, steps_max_level, symmetric=symmetric)
                out += counted_lin.obligations(depth, n, steps_max_level, symmetric=symmetric)
                if symmetric:
                    from nbbs.proofs import counted_sym

                    out += counted_sym.obligations(depth, n, steps_max_level)
        else:
            from nbbs.proofs import stepinv

            out += stepinv.obligations(steps_depth)
    return out


def matching(obligations: Iterable[Obligation], name: str | None) -> list[Obligation]:
    """The obligations whose name starts with ``name`` (all of them for None)."""
    return [ob for ob in obligations if name is None or ob.name.startswith(name)]


def run_all(obligations: Iterable[Obligation], variant: Variant = SHIPPED, jobs: int = 1) -> Iterator[Proof]:
    """Prove each obligation (one fresh solver each), in order; with ``jobs > 1``, that many
    forked processes prove them side by side (Linux; elsewhere, or with ``jobs == 1``, in turn).

    Each process builds its own z3 terms: an obligation's builder is a closure, so the
    processes are forked with the list in memory and are handed indices, not obligations.
    """
    todo = list(obligations)
    if jobs <= 1 or len(todo) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for ob in todo:
            yield prove(ob, variant)
        return
    global _FORKED
    _FORKED = (todo, variant)
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            yield from pool.imap(_prove_forked, range(len(todo)), chunksize=1)
    finally:
        _FORKED = None


_FORKED: tuple[list[Obligation], Variant] | None = None
"""The obligations and variant ``run_all`` hands to its forked processes."""


def _prove_forked(i: int) -> Proof:
    assert _FORKED is not None, "[proofs internal bug] no obligations were handed to this process"
    todo, variant = _FORKED
    return prove(todo[i], variant)


def _task(
    name: str,
    obs: Callable[[], list[Obligation]],
    variant: Variant,
    mutants: str | None = None,
    share: float = 1.0,
) -> Task:
    def run(seconds: float) -> Outcome:
        # Within the budget: no obligation (or mutant) is started once the time is up, so the
        # overrun is at most the one in progress (about a second or two at these depths).
        started = time.perf_counter()
        deadline = started + seconds
        todo = obs()
        if mutants is None:
            bad, done = [], 0
            for p in run_all(todo, variant):
                done += 1
                if not p.proved:
                    bad.append(p)
                if time.perf_counter() > deadline:
                    break
            detail = "\n\n".join(p.report() for p in bad)
            took = time.perf_counter() - started
            return Outcome(name, done, not bad, took, detail, complete=done == len(todo))
        from nbbs.proofs import mutants as m

        chosen = {"counted": m.COUNTED_MUTANTS, "every": m.EVERY_MUTANTS}.get(mutants, m.MUTANTS)
        missed, tried = [], 0
        for k, (_, v) in chosen.items():
            if time.perf_counter() > deadline:
                break
            verdict = None  # caught, missed, or (None) cut short by the budget
            for p in run_all(todo, v):
                if not (p.proved or p.vacuous):
                    verdict = "caught"  # one obligation failing with a counterexample is enough
                    break
                if time.perf_counter() > deadline:
                    break
            else:
                verdict = "missed"
            if verdict is None:
                break
            tried += 1
            if verdict == "missed":
                missed.append(k)
        detail = "" if not missed else "no obligation caught: " + ", ".join(missed)
        took = time.perf_counter() - started
        return Outcome(name, tried, not missed, took, detail, complete=tried == len(chosen))

    return Task(name, share, run)


def verify_tasks() -> list[Task]:
    """``nbbs verify``'s share of the proofs: every obligation of the shipped ``counted`` variant
    up to depth 4 (its step-level invariant for 2 threads up to depth 2), the five-bit ones for
    ``corrected``, every mutant caught at depths up to 2, ``counted``'s every-depth frame, and
    the step-machine mutants caught by the every-depth obligations."""
    from nbbs.proofs._variant import CORRECTED

    return [
        _task(
            "proofs (counted): all obligations, depths 1-4, steps 2 threads depths 1-2",
            lambda: catalogue(4, steps_depth=2, threads=2),
            SHIPPED,
            share=3.0,  # the largest fixed work of verify: about 110 z3 queries
        ),
        _task(
            "proofs (corrected, five-bit): all obligations, depths 1-4",
            lambda: catalogue(4, variant=CORRECTED),
            CORRECTED,
        ),
        _task(
            "proofs (counted): every mutant caught (depths 1-2, steps depth 1)",
            lambda: catalogue(2, steps_depth=1, threads=2),
            SHIPPED,
            mutants="counted",
        ),
        _task(
            "proofs (five-bit): every mutant caught (depths 1-2)",
            lambda: catalogue(2, variant=CORRECTED),
            CORRECTED,
            mutants="five-bit",
        ),
        _task(
            "proofs (counted, every depth): the frame at every pc, cevery_safe, the closing obligations",
            lambda: catalogue(1, groups=("every",), every="frame"),
            SHIPPED,
            share=2.5,  # 57 queries since counted_close joined (about 35 s of CPU)
        ),
        _task(
            "proofs (counted, every depth): every step-machine mutant caught",
            lambda: (
                matching(catalogue(1, groups=("every",), every="attempt"), "cevery_frame@alloc:climb-cas")
                + matching(
                    catalogue(1, groups=("every",), every="attempt"), "cevery_lockfree@alloc:climb-load"
                )
            ),
            SHIPPED,
            mutants="every",
        ),
    ]
