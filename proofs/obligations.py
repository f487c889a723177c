"""The catalogue of obligations ``nbbs prove`` runs, and running them.

Groups, in order: ``bits`` (word transitions touch only their bits), ``param`` (per-node
lemmas for a node of any level: the refinement argument for every depth), ``spec`` (the
abstract allocator's lemmas, per depth), ``refine`` (whole sequential operations against
the spec, per depth, one query per level of the chosen node) and ``steps`` (the step-level
invariant: the thread-modular invariant of ``threadmodular`` checked inductive by z3, one
query per (role, program counter), for any number of threads; see ``proofs/README.md``).

Each module's obligations are about its own variant (``_variant``): ``catalogue`` builds those
of one variant's family, and ``plan`` gathers ``nbbs prove``'s run as ``Block``s, each naming
the variant it is about: by default the shipped ``top_down_node`` first, then what fits of
``counted``'s.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from nbbs.check.report import Outcome, Task
from nbbs.proofs import _variant, bitlemmas, counted_bits, counted_refine, parametric, refinement, speclemmas
from nbbs.proofs._obligation import Obligation, Proof, prove
from nbbs.proofs._variant import COUNTED, SHIPPED, Variant

GROUPS = ("bits", "param", "spec", "refine", "every")

EVERY = ("none", "frame", "attempt", "scan")
"""How much of ``counted_every`` (every depth, any number of threads) to run: nothing (the
catalogue's default); the frame, ``cevery_safe`` and ``counted_close``'s initial state, summary
and composition, lock-freedom's arithmetic (``counted_lfarith``'s ``clf_*``) and the unrolled
height induction (``cind_height``) (``nbbs prove``'s default: cheap); frame, invariant,
lock-freedom (per thread and global, and the step facts the arithmetic uses) in attempt mode;
and also in scan mode, with the scan's skip."""

TOP_DOWN = ("none", "frame", "lockfree", "all", "scan")
"""How much of a top-down variant's every-depth obligations (``topdown_every``, ``topdown_close``)
to run: nothing; the frame and safety, the initial state, quiescence, the fold over threads, the
composition and the lemmas of the linearization points (seconds); also lock-freedom per thread
and the linearization points at every pc (``nbbs prove``'s default for the shipped variant: under
a minute of CPU); also preservation of the invariant and the global lock-freedom measure at every
pc (minutes of CPU more); also all of that in scan mode, with the skip (longer)."""


def top_down_every(
    per_node: bool = True, level: str = "all", subject: Variant | None = None
) -> list[Obligation]:
    """``top_down_node``'s (``per_node``) or ``top_down``'s obligations for every depth and any
    number of threads at ``level`` (one of ``TOP_DOWN``): ``topdown_every``'s (``tnevery_*``,
    ``tdevery_*``; ``frame``: the frame and safety only; ``lockfree``: and lock-freedom per
    thread) and ``topdown_close``'s (``frame``: its cheap family and ``topdown_arith``'s ``tlf_*``,
    ``tind_*``; ``lockfree``: and the linearization points; ``all``: its attempt mode; ``scan``:
    and scan mode). ``subject``: what they prove instead of that variant (a mutant of it)."""
    if level == "none":
        return []
    from nbbs.proofs import topdown_close, topdown_every

    kept = {"frame": ("_frame@", "_safe"), "lockfree": ("_frame@", "_safe", "_lockfree@")}.get(level)
    obs = [
        ob
        for ob in topdown_every.obligations(per_node, subject)
        if kept is None or any(k in ob.name for k in kept)
    ]
    if level in ("frame", "lockfree"):
        from nbbs.proofs import topdown_arith

        obs += topdown_close.close_obligations(per_node, subject)
        obs += topdown_arith.obligations("frame", per_node, subject)
        return obs + (topdown_close.lin_obligations(per_node, subject) if level == "lockfree" else [])
    return obs + topdown_close.obligations("attempt" if level == "all" else "scan", per_node, subject)


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
    variant: Variant = COUNTED,
    threads: int | None = None,
    steps_max_level: int = 0,
    every: str = "none",
    top_down: str = "none",
    symmetric: bool = False,
) -> list[Obligation]:
    """Every obligation of the chosen groups for depths ``depth_min .. depth_max``, for
    ``variant``'s family of words (``counted``'s, the top-down ones' or the five-bit ones); with
    ``steps_depth``, also the step-level checks for a tree of that depth (the counting variants:
    for ``threads`` threads, every depth from ``depth_min`` up to ``steps_depth``, climbs
    stopping at ``steps_max_level``); ``every`` (one of ``EVERY``) says which of
    ``counted_every``'s every-depth obligations run (``counted``), ``top_down`` (one of
    ``TOP_DOWN``) which of ``top_down_every``'s: for a top-down ``variant`` its own, beside
    ``counted`` both top-down variants' (they prove their own subject whatever ``variant`` is);
    ``symmetric``: the step-level checks of thread 0 only, plus the proof that the others' are
    thread 0's relabelled (``counted_sym``'s; the top-down variants' ``topdown_arith``'s).

    A top-down variant's per-depth group is ``refine`` (``topdown_close.refine_obligations``:
    its sequential refinement against the spec); the spec's lemmas are ``counted``'s catalogue's,
    and it has no ``bits``/``param`` lemmas of its own (its words are ``counted``'s layout).
    """
    chosen = set(groups)
    out: list[Obligation] = []
    if variant.transitions.top_down:
        # Every top-down mutant is one of top_down_node (proofs/mutants.py): only top_down is not.
        per_node = variant.name != "top_down"
        if "every" in chosen:
            out += top_down_every(per_node, top_down, variant)
        if "refine" in chosen:
            from nbbs.proofs import topdown_close

            for depth in range(depth_min, depth_max + 1):
                out += topdown_close.refine_obligations(depth, per_node, variant)
        if steps_depth is not None:
            from nbbs.proofs import topdown_steps

            for depth in range(max(min(depth_min, steps_depth), steps_max_level, 1), steps_depth + 1):
                out += topdown_steps.obligations(
                    depth, threads or 2, steps_max_level, subject=variant, symmetric=symmetric
                )
        return out
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
        if "every" in chosen:
            for per_node in (True, False):
                out += top_down_every(per_node, top_down)
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


@dataclass(frozen=True)
class Block:
    """Obligations about one variant: proved with it (``run_all``) and reported under its name."""

    variant: Variant
    title: str
    obligations: list[Obligation]


DEFAULT_RUN_COUNTED_DEPTH = 6
"""How far ``counted``'s per-depth groups go in ``nbbs prove``'s default run, after the shipped
variant's block. Depths 7-10 add about 20 s of CPU (their sequential refinement grows with the
depth): without them the default run stays within a minute of wall time on 2 cores with room
for the shipped variant's block (whose sequential refinement goes as deep). ``counted``'s whole
catalogue, to depth 10, is ``nbbs prove --variant counted``."""


def plan(
    variant: Variant | None = None,
    depth_max: int | None = None,
    depth_min: int = 1,
    *,
    capped: bool = True,
    steps_depth: int | None = None,
    threads: int | None = None,
    steps_max_level: int = 0,
    every: str | None = None,
    top_down: str | None = None,
    symmetric: bool = False,
) -> list[Block]:
    """``nbbs prove``'s run as blocks, each about one variant.

    With ``variant`` None (the default run): the shipped variant's block (``top_down_node``: its
    every-depth obligations at ``top_down``, default ``lockfree``, its sequential refinement to
    ``DEFAULT_RUN_COUNTED_DEPTH``, and its step-level invariant
    for ``threads`` (2) threads at depths up to ``steps_depth`` (2)), then ``counted``'s, the
    variant with the most complete proof: per-depth groups up to ``depth_max`` (default
    ``DEFAULT_RUN_COUNTED_DEPTH``), its step-level invariant for 2 threads to depth 2, and
    ``every`` (default none: the run stays within a minute for the shipped variant's sake;
    ``symmetric``: the step levels for thread 0, with their symmetry proofs). With a
    ``variant``: that variant's catalogue
    (``counted``: to depth 10 by default, step level for 2 threads to depth 2 unless told, and
    with ``top_down`` a block for each top-down variant after it; a top-down variant: its
    every-depth obligations, default ``all``, and its refinement to depth 10; five-bit: the step
    level only with ``threads``).
    """
    if variant is None:
        deepest = depth_max or DEFAULT_RUN_COUNTED_DEPTH
        shipped = plan(
            SHIPPED,
            deepest,
            depth_min,
            steps_depth=steps_depth or 2,
            threads=threads,
            top_down=top_down or "lockfree",
            symmetric=symmetric,
        )
        counted = catalogue(
            deepest,
            depth_min,
            capped=capped,
            variant=COUNTED,
            steps_depth=2,
            threads=2,
            every=every or "none",
            symmetric=symmetric,
        )
        title = f"counted (most complete proof): depths {depth_min}-{deepest}, steps 2 threads depths 1-2"
        title += f", every depth ({every})" if every not in (None, "none") else ""
        return [*shipped, Block(COUNTED, title, counted)]
    if variant.transitions.top_down:
        level = top_down or "all"
        shipped_mark = " (shipped)" if variant is SHIPPED else ""
        refined = depth_max or DEFAULT_DEPTH_MAX
        title = f"{variant.name}{shipped_mark}: every depth, any number of threads ({level})"
        title += f"; refinement depths {depth_min}-{refined}"
        if steps_depth is not None:
            title += f"; steps {threads or 2} threads depths {depth_min}-{steps_depth}"
            title += " (thread 0, and symmetry)" if symmetric else ""
        obs = catalogue(
            refined,
            depth_min,
            groups=("every", "refine"),
            variant=variant,
            steps_depth=steps_depth,
            threads=threads,
            steps_max_level=steps_max_level,
            top_down=level,
            symmetric=symmetric,
        )
        return [Block(variant, title, obs)]
    deepest = depth_max or DEFAULT_DEPTH_MAX
    if variant.counted:
        # The counted family's step-level invariant runs by default (2 threads, depths 1-2).
        at: int | None = steps_depth or 2
        title = f"{variant.name}: depths {depth_min}-{deepest}, steps {threads or 2} threads depths 1-{at}"
        title += f", every depth ({every or 'frame'})"
    else:
        at = (steps_depth or 1) if threads else None
        title = f"{variant.name} (five-bit): depths {depth_min}-{deepest}"
        title += "" if at is None else f", step level depth {at}"
    obs = catalogue(
        deepest,
        depth_min,
        capped=capped,
        steps_depth=at,
        variant=variant,
        threads=threads or 2,
        steps_max_level=steps_max_level,
        every=every or "frame",
        symmetric=symmetric,
    )
    out = [Block(variant, title, obs)]
    if variant.counted and top_down not in (None, "none"):
        for beside in (_variant.TOP_DOWN_NODE, _variant.TOP_DOWN):
            out += plan(beside, top_down=top_down)
    return out


def matching(obligations: Iterable[Obligation], name: str | None) -> list[Obligation]:
    """The obligations whose name starts with ``name`` (all of them for None)."""
    return [ob for ob in obligations if name is None or ob.name.startswith(name)]


def run_all(obligations: Iterable[Obligation], variant: Variant = COUNTED, jobs: int = 1) -> Iterator[Proof]:
    """Prove each obligation (one fresh solver each), in order; with ``jobs > 1``, that many
    forked processes prove them side by side (Linux; elsewhere, or with ``jobs == 1``, in turn).

    Each process builds its own z3 terms: an obligation's builder is a closure, so the
    processes are forked with the list in memory and are handed indices, not obligations.
    """
    todo = list(obligations)
    yield from _run([(ob, variant) for ob in todo], jobs)


def run_blocks(blocks: Iterable[Block], jobs: int = 1) -> Iterator[tuple[Block, Proof]]:
    """``run_all`` over every block's obligations, each proved with its block's variant, in one
    pool: a block's slowest query overlaps the next block's (the blocks are not run in turn)."""
    pairs = [(b, ob) for b in blocks for ob in b.obligations]
    proofs = _run([(ob, b.variant) for b, ob in pairs], jobs)
    for (b, _), p in zip(pairs, proofs, strict=True):
        yield b, p


def _run(todo: list[tuple[Obligation, Variant]], jobs: int) -> Iterator[Proof]:
    if jobs <= 1 or len(todo) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for ob, v in todo:
            yield prove(ob, v)
        return
    global _FORKED
    _FORKED = todo
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            yield from pool.imap(_prove_forked, range(len(todo)), chunksize=1)
    finally:
        _FORKED = None


_FORKED: list[tuple[Obligation, Variant]] | None = None
"""The obligations, each with its variant, ``_run`` hands to its forked processes."""


def _prove_forked(i: int) -> Proof:
    assert _FORKED is not None, "[proofs internal bug] no obligations were handed to this process"
    ob, variant = _FORKED[i]
    return prove(ob, variant)


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
    """``nbbs verify``'s share of the proofs: the shipped ``top_down_node``'s every-depth frame
    and safety and its step-level invariant for 2 threads at depth 1; every obligation of
    ``counted`` (the most complete proof) up to depth 4 (its step-level invariant for 2 threads
    up to depth 2), the five-bit ones for ``corrected``, every mutant caught at depths up to 2,
    ``counted``'s every-depth frame and ``cevery_safe``, and the step-machine mutants caught by
    the every-depth obligations."""
    from nbbs.proofs._variant import CORRECTED

    return [
        _task(
            f"proofs ({SHIPPED.name}, every depth): the frame at every pc, safety; steps 2 threads depth 1",
            # The frame level's closing family (initial state, fold, lemmas) stays in nbbs
            # prove's default run, as counted's does: verify's minute has room for these.
            lambda: [
                ob
                for ob in catalogue(
                    1, groups=("every",), variant=SHIPPED, steps_depth=1, threads=2, top_down="frame"
                )
                if "_frame@" in ob.name or ob.name.endswith("_safe") or ob.name.startswith("tnsteps")
            ],
            SHIPPED,
            share=2.0,  # 41 queries, about 10 s of CPU (the frame at descend-cas: 3 s)
        ),
        _task(
            "proofs (counted): all obligations, depths 1-4, steps 2 threads depths 1-2",
            lambda: catalogue(4, steps_depth=2, threads=2),
            COUNTED,
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
            COUNTED,
            mutants="counted",
        ),
        _task(
            "proofs (five-bit): every mutant caught (depths 1-2)",
            lambda: catalogue(2, variant=CORRECTED),
            CORRECTED,
            mutants="five-bit",
        ),
        _task(
            "proofs (counted, every depth): the frame at every pc, cevery_safe",
            # counted_close's closing obligations (about 16 s of CPU) stay in nbbs prove's default
            # run: since the switch, verify's minute goes to the shipped variant's proofs first.
            lambda: [
                ob
                for ob in catalogue(1, groups=("every",), every="frame")
                if "_frame@" in ob.name or ob.name == "cevery_safe"
            ],
            COUNTED,
            share=1.5,  # 23 queries (about 15 s of CPU)
        ),
        _task(
            "proofs (counted, every depth): every step-machine mutant caught",
            lambda: (
                matching(catalogue(1, groups=("every",), every="attempt"), "cevery_frame@alloc:climb-cas")
                + matching(
                    catalogue(1, groups=("every",), every="attempt"), "cevery_lockfree@alloc:climb-load"
                )
            ),
            COUNTED,
            mutants="every",
        ),
    ]
