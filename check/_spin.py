"""Running SPIN on the generated model: compile, search, parse, and read trails back.

``run(cfg)`` writes the model of ``_spin_model`` into a fresh directory, runs ``spin -a``,
compiles ``pan`` and searches:

* safety, (a)-(c): breadth-first (``-DBFS``), so a counterexample is a shortest one, as the
  model checker's; no partial-order reduction (``-DNOREDUCE``), so SPIN stores every state
  and its count can be compared with ours; ``--bitstate`` swaps the state store for SPIN's
  bit array (``-DBITSTATE -wN``), reported with its hash factor, incomplete by nature;
* (d): a second model whose never claim accepts a cycle without completion, searched
  depth-first for acceptance cycles (``-a``) with stack cycling (``-DSC``: any depth).

A trail is replayed with ``pan -r``; the model prints each move it makes, which
``_moves`` reads back, and ``violation_of`` turns into the model checker's ``Violation``
(same steps, words, schedule and JSON), checking on the way that every move is one our
successor function allows and that the last state breaks the property SPIN reported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbbs.check import _mc
from nbbs.check import _spin_model as model

INSTALL_HINT = (
    "SPIN is not installed: `apt-get install -y spin` (as root; Debian/Ubuntu), or build it "
    "from https://github.com/nimble-code/Spin; `nbbs check --engine spin` also needs a C compiler (cc)."
)


OPTIMIZE = "-O2"
"""The C compiler's optimisation for pan (the tests set -O0: on tiny models compiling dominates)."""


class SpinUnavailable(RuntimeError):
    """``spin`` or ``cc`` is not on the PATH: the message says how to install it."""


class SpinFailed(RuntimeError):
    """SPIN or the compiler failed on a generated model: ``[spin internal bug]``, with its output."""


@dataclass
class SpinRun:
    """What one SPIN search established, in the model checker's terms."""

    result: _mc.Result
    """states: the model's states (SPIN's stored count minus its pre-initial state);
    transitions: its steps (SPIN's, minus the initial choices); seconds: the whole run."""
    stored: int = 0
    """SPIN's own count: ``states, stored``."""
    spin_transitions: int = 0
    """SPIN's own count: ``transitions (= stored+matched)``."""
    depth: int = 0
    """SPIN's ``depth reached``."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per phase: generate, compile, search (safety), liveness."""
    bitstate: int | None = None
    """log2 of the bit array's size in bits, in bitstate mode."""
    hash_factor: float | None = None
    """SPIN's coverage estimate in bitstate mode: bits per state stored (best above 100)."""
    omission: float | None = None
    """Bitstate mode: the estimated chance that a new state was wrongly taken for a seen one
    when the search ended, (1 - exp(-k n / m))^k for k = 3 bits per state."""
    output: str = ""
    """pan's output (safety search)."""
    directory: Path | None = None
    """Where the model and pan were built (kept only if asked)."""
    spin_property: str | None = None
    """The property SPIN's failed assertion names (``d`` for an acceptance cycle, ``count`` for
    an access the model checker refuses)."""
    refused: _mc.Violation | None = None
    """The run to an access whose count leaves ``0 .. count_bound`` (a broken ``counted``
    bundle): the model checker raises ``AssertionError`` there; SPIN shows how it is reached.
    Its ``prop`` is a placeholder; its ``message`` says what happened."""


def available() -> bool:
    """SPIN and a C compiler are installed."""
    return shutil.which("spin") is not None and shutil.which("cc") is not None


def _run(cmd: list[str], cwd: Path, timeout: float | None = None) -> str:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    if p.returncode != 0 and cmd[0] != "./pan":
        raise SpinFailed(f"[spin internal bug] {' '.join(cmd)} failed ({p.returncode}):\n{out[-3000:]}")
    return out


def _number(pattern: str, text: str, kind: type = int) -> float:
    m = re.search(pattern, text)
    if m is None:
        raise SpinFailed(f"[spin internal bug] no {pattern!r} in pan's output:\n{text[-3000:]}")
    return float(m.group(1)) if kind is float else int(m.group(1))


def _build(
    where: Path,
    name: str,
    m: model.Model,
    flags: list[str],
    timings: dict[str, float],
    optimize: str | None = None,
) -> Path:
    d = where / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.pml").write_text(m.pml)
    (d / model.HEADER).write_text(m.header)
    started = time.perf_counter()
    _run(["spin", "-a", "model.pml"], d)
    _run(["cc", optimize or OPTIMIZE, "-w", "-include", model.HEADER, *flags, "-o", "pan", "pan.c"], d)
    timings["compile"] = timings.get("compile", 0.0) + time.perf_counter() - started
    return d


def run(
    cfg: _mc.Config,
    *,
    bitstate: int | None = None,
    hash_bits: int = 22,
    memory_mb: int = 8192,
    keep: Path | None = None,
    tables: model.Tables | None = None,
) -> SpinRun:
    """Search ``cfg`` with SPIN: (a)-(c) breadth-first, then (d) if asked and nothing failed.

    ``bitstate``: log2 of the bit array (``-w``) for a bitstate search instead of a complete
    one. ``hash_bits``: log2 of the hash table's slots of a complete search. ``keep``: build in
    this directory (created) and leave the files there. ``tables``: an already extracted (or
    deliberately broken) model. Raises ``SpinUnavailable`` if SPIN or cc is missing.
    """
    if not available():
        raise SpinUnavailable(INSTALL_HINT)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    t = tables if tables is not None else model.extract(cfg)
    timings["generate"] = time.perf_counter() - started
    r = _mc.Result(cfg)
    r.initial_states = len(t.initial_words)
    tmp = None
    if keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="nbbs-spin-")
        where = Path(tmp.name)
    else:
        where = keep
        where.mkdir(parents=True, exist_ok=True)
    try:
        flags = ["-DSAFETY", "-DNOREDUCE", "-DBFS", f"-DMEMLIM={memory_mb}"]
        if bitstate is not None:
            flags.append("-DBITSTATE")
        safety = _build(where, "safety", model.promela(t), flags, timings)
        begun = time.perf_counter()
        out = _run(["./pan", f"-w{bitstate if bitstate is not None else hash_bits}", "-c1"], safety)
        timings["search"] = time.perf_counter() - begun
        run_ = SpinRun(r, timings=timings, output=out, bitstate=bitstate, directory=keep)
        run_.stored = int(_number(r"(\d+) states, stored", out))
        run_.spin_transitions = int(_number(r"(\d+) transitions \(= stored\+matched\)", out))
        run_.depth = int(_number(r"depth reached (\d+)", out))
        errors = int(_number(r"errors: (\d+)", out))
        if any(m in out for m in ("out of memory", "MEMLIM", "max search depth too small")):
            r.complete = False
        r.states = run_.stored - 1
        r.transitions = run_.spin_transitions - 1 - len(t.initial_words)
        if bitstate is not None:
            r.complete = False
            run_.hash_factor = _number(r"hash factor: ([0-9.e+]+)", out, float)
            run_.omission = omission(run_.stored, bitstate)
        if errors:
            r.complete = False
            replay = _run(["./pan", "-r"], safety)
            code = int(_number(r"viol:\s*(\d+)", replay))
            prop = run_.spin_property = model.VIOLATIONS[code][0]
            v = violation_of(t, _moves(replay), code)
            if prop == "count":
                run_.refused = v
            else:
                r.violations[v.prop] = v
        elif "d" in cfg.properties and r.complete:
            live_flags = ["-DNOREDUCE", "-DSC", "-DNBBS_LIVENESS", f"-DMEMLIM={memory_mb}"]
            if bitstate is not None:
                live_flags.append("-DBITSTATE")
            live = _build(where, "liveness", model.promela(t, liveness=True), live_flags, timings)
            begun = time.perf_counter()
            lout = _run(["./pan", "-a", f"-w{bitstate if bitstate is not None else hash_bits}", "-c1"], live)
            timings["liveness"] = time.perf_counter() - begun
            if int(_number(r"errors: (\d+)", lout)):
                run_.spin_property = "d"
                replay = _run(["./pan", "-r"], live)
                moves = _moves(replay)
                v = violation_of(t, moves, 0)
                r.violations["d"] = v
                r.complete = False
        r.seconds = time.perf_counter() - started
        return run_
    finally:
        if tmp is not None:
            tmp.cleanup()


@dataclass
class Moves:
    """A trail as the model's moves: the initial set, then (thread, move index) per step."""

    initial: int
    steps: list[tuple[int, int]]
    cycle_start: int | None = None
    """For an acceptance cycle: the index in ``steps`` where the cycle starts."""


def _moves(replay: str) -> Moves:
    initial, moves, cycle = -1, [], None
    for line in replay.splitlines():
        if line.startswith("@init "):
            initial = int(line.split()[1])
        elif line.startswith("@ "):
            _, k, j = line.split()
            moves.append((int(k), int(j)))
        elif "START OF CYCLE" in line:
            cycle = len(moves)
    if initial < 0:
        raise SpinFailed(f"[spin internal bug] the replayed trail shows no initial choice:\n{replay[-3000:]}")
    return Moves(initial, moves, cycle)


def violation_of(t: model.Tables, mv: Moves, code: int) -> _mc.Violation:
    """SPIN's trail as the model checker's counterexample, checked against our own successors.

    Every move is replayed with ``_mc.Space`` (the model checker's successor function with
    concrete thread identities); the last state must break ``prop`` for ``_mc.Checker`` too,
    whose message the counterexample then carries. A disagreement raises ``AssertionError``.
    ``code`` is the model's ``viol`` at the end (``_spin_model.VIOLATIONS``), or 0 for an
    acceptance cycle (d).
    """
    cycle = ("d", "an acceptance cycle: no step on it completes an operation")
    prop, seen = model.VIOLATIONS[code] if code else cycle
    cfg = t.cfg
    checker = _mc.Checker(cfg)
    csp = checker.sp
    states = list(csp.initial())
    start = states[mv.initial]
    path = [start]
    tids = csp.first_tids()
    cur = start
    # A thread's trapped access (8) changed nothing in SPIN, and our successor function refuses it.
    thread_trap = prop == "count" and code == 8
    for k, j in mv.steps[:-1] if thread_trap else mv.steps:
        options = csp.moves(tids[k])
        if j >= len(options):
            raise AssertionError(f"[spin] move {j} of thread {k}: our successor function has {len(options)}")
        cur, tids, _ = csp.step_thread(cur, tids, k, options[j])
        path.append(cur)
    msg = seen
    if prop == "d":
        if mv.cycle_start is None or path[mv.cycle_start] != path[-1]:
            # SPIN's cycle closes on a state of the trail: find where it starts again.
            if path[-1] not in path[:-1]:
                raise AssertionError("[spin] the acceptance cycle does not close on a state of our search")
            mv.cycle_start = path.index(path[-1])
    elif thread_trap:
        # The model checker refuses such an access outright (AssertionError in Space.row).
        k, j = mv.steps[-1] if mv.steps else (0, 0)
        msg = f"{seen}: thread {k}'s next access is one the model checker refuses"
    elif prop == "count":
        # The tables stop at the bound; our checker runs (b)'s sequential alloc on plain ints.
        msg = f"{seen} (the model checker evaluates (b) here on unbounded ints)"
    else:
        found = dict(checker.check_state(path[-1]))
        if prop not in found:
            raise AssertionError(f"[spin] SPIN reports ({prop}) {seen}; our checker sees no ({prop}) there")
        msg = found[prop]
    v = checker.replay_path(prop if prop != "count" else "a", msg, path)
    if prop == "d":
        assert mv.cycle_start is not None
        v.cycle_start = mv.cycle_start
    return v


def cross_check(cfg: _mc.Config, tables: model.Tables | None = None) -> list[str]:
    """Run the model checker and SPIN on ``cfg`` and list where they disagree (empty: they agree).

    They agree when SPIN stores exactly our states with the thread symmetry undone (plus its
    pre-initial state) and takes exactly our transitions, or when both find a violation, at the
    same depth (both searches are breadth-first), and SPIN's last state breaks, for our
    checker, the property SPIN names. ``tables`` replaces the generated model (a test breaks it).
    """
    checker = _mc.Checker(dataclasses.replace(cfg, stop_at_first=True))
    try:
        ours = checker.run()
        refused = None
    except AssertionError as e:
        ours, refused = None, str(e)
    try:
        theirs = run(cfg, tables=tables)
    except AssertionError as e:
        return [f"SPIN's counterexample is not one of ours: {e}"]
    problems = []
    found = theirs.result.violations
    if refused is not None:
        if theirs.refused is None and not found:
            problems.append(f"the model checker refuses an access ({refused}); SPIN finds nothing")
        return problems
    assert ours is not None
    if ours.violations or found:
        if not found:
            problems.append(f"the model checker finds {sorted(ours.violations)}; SPIN finds nothing")
        elif not ours.violations:
            problems.append(f"SPIN finds {sorted(found)}; the model checker finds nothing")
        else:
            depth = min(len(v.steps) for v in ours.violations.values())
            spin_depth = min(len(v.steps) for v in found.values())
            if depth != spin_depth:
                problems.append(f"the shortest counterexample takes {depth} steps, SPIN's {spin_depth}")
        return problems
    states, transitions = model.symmetric_count(checker.sp, checker.states)
    if (theirs.result.states, theirs.result.transitions) != (states, transitions):
        problems.append(
            f"SPIN: {theirs.result.states:,} states, {theirs.result.transitions:,} transitions; the model "
            f"checker, symmetry undone: {states:,} states, {transitions:,} transitions"
        )
    return problems


@dataclass
class SwarmRun:
    """What a swarm of diversified bitstate searches established (none is complete)."""

    result: _mc.Result
    """states: the most any one search stored; violations: the first search's that found one."""
    runs: list[dict[str, float]] = field(default_factory=list)
    """Per search: seed, hash (-h), states stored, depth reached, errors, hash factor, and
    omission (``SpinRun.omission``'s estimate for that search)."""
    timings: dict[str, float] = field(default_factory=dict)


def swarm(
    cfg: _mc.Config,
    searches: int,
    *,
    bitstate: int = 24,
    jobs: int | None = None,
    max_depth: int = 1_000_000,
    tables: model.Tables | None = None,
    client: Any = None,
) -> SwarmRun:
    """``searches`` depth-first bitstate searches of (a)-(c), each with its own seed (the order
    in which it tries threads and moves: ``-DT_RAND -DP_RAND -RSn``) and hash function
    (``-hn``), ``jobs`` at a time (default: every core), as in Holzmann's swarm verification.

    Each covers a different part of a space too large for one complete search; a violation
    any of them finds is a real one (checked against our successors, as ``run``'s), though not
    a shortest. Lock-freedom (d) is not searched. Raises ``SpinUnavailable`` without SPIN.
    """
    if not available():
        raise SpinUnavailable(INSTALL_HINT)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    t = tables if tables is not None else model.extract(cfg)
    timings["generate"] = time.perf_counter() - started
    r = _mc.Result(cfg)
    r.initial_states = len(t.initial_words)
    r.complete = False
    out = SwarmRun(r, timings=timings)
    with tempfile.TemporaryDirectory(prefix="nbbs-swarm-") as tmp:
        flags = ["-DSAFETY", "-DNOREDUCE", "-DBITSTATE", "-DT_RAND", "-DP_RAND"]
        pml = model.promela(t)
        d = _build(Path(tmp), "swarm", pml, flags, timings)
        begun = time.perf_counter()
        commands = [swarm_command(i, bitstate, max_depth) for i in range(searches)]
        texts: dict[int, str] = {}
        if client is not None:
            # One task per search on the cluster's workers; each worker compiles pan once, and
            # sends back pan's output and, if it found a violation, its trail (replayed here).
            futures = [
                client.submit(swarm_search, pml, flags, cmd, f"model.pml.sw{i}", OPTIMIZE, pure=False)
                for i, cmd in enumerate(commands)
            ]
            for i, (text, trail) in enumerate(client.gather(futures)):
                texts[i] = text
                if trail is not None:
                    (d / f"model.pml.sw{i}").write_bytes(trail)
        else:
            pending = list(range(searches))
            running: list[tuple[int, subprocess.Popen[str]]] = []
            width = jobs or os.cpu_count() or 1
            while pending or running:
                while pending and len(running) < width:
                    i = pending.pop(0)
                    running.append(
                        (
                            i,
                            subprocess.Popen(
                                commands[i],
                                cwd=d,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                text=True,
                            ),
                        )
                    )
                i, p = running.pop(0)
                texts[i] = p.communicate()[0]
        timings["search"] = time.perf_counter() - begun
        for i in range(searches):
            text = texts[i]
            row = {
                "seed": i + 1,
                "hash": i % 500,
                "states": _number(r"(\d+) states, stored", text),
                "depth": _number(r"depth reached (\d+)", text),
                "errors": _number(r"errors: (\d+)", text),
                "hash_factor": _number(r"hash factor: ([0-9.e+]+)", text, float),
            }
            row["omission"] = omission(int(row["states"]), bitstate)
            out.runs.append(row)
            if row["errors"] and not r.violations:
                replay = _run(["./pan", "-r", f"model.pml.sw{i}"], d)
                code = int(_number(r"viol:\s*(\d+)", replay))
                prop = model.VIOLATIONS[code][0]
                v = violation_of(t, _moves(replay), code)
                if prop != "count":
                    r.violations[prop] = v
        r.states = int(max(row["states"] for row in out.runs)) if out.runs else 0
    r.seconds = time.perf_counter() - started
    return out


def omission(stored: int, bitstate: int) -> float:
    """A bitstate search's estimated chance that a new state was taken for a seen one when it
    ended, with ``stored`` states in ``2**bitstate`` bits: (1 - exp(-k n / m))^k, k = 3 bits
    per state (SPIN's default)."""
    k = 3
    return float((1 - math.exp(-k * stored / (1 << bitstate))) ** k)


def swarm_command(i: int, bitstate: int, max_depth: int) -> list[str]:
    """Search ``i`` of a swarm: its seed, hash function, bit array, depth bound and trail name."""
    return ["./pan", f"-RS{i + 1}", f"-h{i % 500}", f"-w{bitstate}", f"-m{max_depth}", "-c1", f"-tsw{i}"]


_SWARM_BUILDS: dict[str, tuple[tempfile.TemporaryDirectory[str], Path]] = {}
"""Per process (a cluster worker): the swarm models compiled so far, by digest of model and flags."""
_SWARM_LOCK = threading.Lock()


def swarm_search(
    m: model.Model, flags: list[str], cmd: list[str], trail: str, optimize: str = OPTIMIZE
) -> tuple[str, bytes | None]:
    """One swarm search where this runs (a cluster worker): compile ``m`` once per process (with
    the client's ``optimize``), run ``cmd``; pan's output, and the trail file's bytes if any."""
    if not available():
        raise SpinUnavailable(f"on a worker: {INSTALL_HINT}")
    key = hashlib.sha256(repr((m.pml, m.header, flags, optimize)).encode()).hexdigest()
    with _SWARM_LOCK:
        if key not in _SWARM_BUILDS:
            tmp = tempfile.TemporaryDirectory(prefix="nbbs-swarm-worker-")
            _SWARM_BUILDS[key] = (tmp, _build(Path(tmp.name), "swarm", m, flags, {}, optimize))
        d = _SWARM_BUILDS[key][1]
    with tempfile.TemporaryDirectory(prefix="nbbs-swarm-run-") as run_dir:
        # Each search in its own directory (pan writes its trail beside the model's name).
        here = Path(run_dir)
        (here / "model.pml").write_text(m.pml)
        out = subprocess.run(
            [str(d / "pan"), *cmd[1:]], cwd=here, capture_output=True, text=True, check=False
        )
        path = here / trail
        return out.stdout + out.stderr, path.read_bytes() if path.exists() else None


def on_allocator(cfg: _mc.Config, v: _mc.Violation) -> tuple[bool, str, str]:
    """Replay a counterexample on ``NBBS`` (``check/bridge.py``): reproduced?, what showed, and the
    ``nbbs replay`` schedule string of the implementation's run (empty if none)."""
    from nbbs.check._scenario import ExplorerError, schedule_string
    from nbbs.check.bridge import counterexample_of, reproduce

    if cfg.transitions is not None or not cfg.gives_up:
        return False, "a mutant or a broken machine: the allocator runs the variant's own code", ""
    cx = counterexample_of(v, cfg)
    try:
        rep = reproduce(cx)
    except ExplorerError as e:
        return False, str(e), ""
    return rep.reproduced, rep.detail, schedule_string(cx.scenario(), rep.schedule) if rep.schedule else ""
