"""Traces for the viewer from the checkers: a model checker counterexample, an explorer run.

* ``from_counterexample(data)``: a counterexample file (``modelcheck.to_json``, the files in
  ``tests/data/counterexamples``) replayed on the step machines (``modelcheck.replay_steps``):
  each thread's column shows its ``OpState``, program counter and locals.
* ``from_violation(violation, config)``: what ``nbbs check`` found, by way of ``to_json``.
* ``from_outcome(scenario, outcome)``: an execution of the real allocator under the explorer
  (``nbbs replay``): each thread's column shows its operation and its last access.
* ``from_protocol(transcript)``: a port's controlled run, from its line protocol transcript
  (PORTING.md): each thread's column shows its operation and its pending access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from nbbs.check import modelcheck
from nbbs.check._checks import _transitions
from nbbs.check._scenario import AllocOp, DoubleFree, FreeNode, FreeOwn, Scenario, parse, schedule_string
from nbbs.check._sched import CALL, CAS_FAIL, RET, Outcome
from nbbs.check._viewer import KINDS, Step, Trace, ViewerError, Violation
from nbbs.model import bits, steps
from nbbs.model import geometry as g


def _op_text(op: dict[str, Any], mode: str) -> str:
    """A model counterexample's operation record as a person reads it."""
    n = int(op["node"])
    if op["op"] == "free":
        return f"free(node {n})"
    how = "scanning from" if mode == "scan" else "at"
    return f"alloc(order {op['order']}) {how} node {n}"


def _state(op: steps.OpState, t: bits.Transitions) -> tuple[tuple[str, str], ...]:
    """An ``OpState`` as its column shows it: the program counter, then every local."""
    return (
        ("pc", steps.PC_NAMES[op.pc]),
        ("n", str(op.n)),
        ("child", str(op.child)),
        ("top", str(op.top)),
        ("cur", t.show(op.cur)),
        ("left", str(op.left)),
        ("fail", str(op.fail)),
    )


def from_counterexample(data: dict[str, Any], source: str = "") -> Trace:
    """The trace of a model checker counterexample (the ``to_json`` format), on the step machines."""
    if not isinstance(data, dict):
        raise ViewerError(f"a counterexample is a JSON object, got {type(data).__name__}")
    missing = {"variant", "depth", "threads", "schedule", "property"} - set(data)
    if missing:
        raise ViewerError(f"a counterexample needs the keys {sorted(missing)}")
    variant = data["variant"]
    if variant not in bits.VARIANTS:
        raise ViewerError(f"unknown variant {variant!r}; known: {', '.join(sorted(bits.VARIANTS))}")
    t = bits.VARIANTS[variant]
    depth = int(data["depth"])
    norm = {
        **data,
        "max_order": depth if data.get("max_order") is None else int(data["max_order"]),
        "mode": data.get("mode", "attempt"),
        "checked_free": bool(data.get("checked_free", False)),
        "initial_live": list(data.get("initial_live", [])),
    }
    max_level = depth - norm["max_order"]
    machine = steps.Machine(depth, max_level, t)
    words = list(modelcheck.initial_words(norm))
    out: list[Step] = []
    freeing = [False] * len(norm["threads"])
    try:
        for k, spec_op, before, ev, after, _ in modelcheck.replay_steps(norm):
            acc = machine.access(before)
            assert acc is not None
            kind = str(ev.kind)
            if ev.kind == steps.Kind.CAS and ev.old != acc.a:
                kind = "cas_fail"
            if spec_op is not None:
                freeing[k] = spec_op["op"] == "free"
            ret = acquires = None
            if steps.is_done(after):
                if freeing[k]:
                    ret = "ok" if after.pc == steps.DONE_FREE else "refused"
                else:
                    acquires = steps.result(after)
                    ret = "None" if acquires is None else f"node {acquires}"
            out.append(
                Step(
                    k,
                    ev.node,
                    kind,
                    ev.old,
                    ev.new,
                    pc=steps.PC_NAMES[before.pc],
                    state=_state(after, t),
                    call=None if spec_op is None else _op_text(spec_op, norm["mode"]),
                    ret=ret,
                    acquires=acquires,
                    releases=int(spec_op["node"]) if spec_op is not None and freeing[k] else None,
                )
            )
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ViewerError(f"the counterexample's schedule does not replay on its operations: {e}") from e
    prop = str(data["property"])
    name = modelcheck.PROPERTY_NAMES.get(prop, "")
    message = str(data.get("message") or data.get("explanation") or "")
    explanation = str(data.get("explanation") or "")
    return Trace(
        depth,
        t,
        words,
        [[_op_text(op, norm["mode"]) for op in ops] for ops in norm["threads"]],
        out,
        Violation(
            f"({prop}) {name}" if name else prop,
            message,
            len(out),
            explanation if explanation != message else "",
        ),
        {n: -1 for n in norm["initial_live"]},
        max_level,
        title=f"{variant}: ({prop}) {name}".rstrip(),
        source=source,
        variant=variant,
    )


def from_violation(v: modelcheck.Violation, cfg: modelcheck.Config, source: str = "") -> Trace:
    """The trace of a counterexample ``nbbs check`` found (replayed from its ``to_json`` form)."""
    if cfg.transitions is not None:
        raise ViewerError("a mutant's counterexample has no variant name to replay it by")
    if not cfg.gives_up:
        raise ViewerError("a scan-forever machine's counterexample does not replay on the step machines")
    trace = from_counterexample(modelcheck.to_json(v, cfg, v.message), source)
    # The replay runs the variant's own bundle (``counted`` with the allocator's count width,
    # where the checker used a narrower one): the same accesses, if not the same numbers.
    if [(s.thread, s.node, s.kind.replace("cas_fail", "cas")) for s in trace.steps] != [
        (st.thread, st.event.node, str(st.event.kind)) for st in v.steps
    ]:
        raise AssertionError("[viewer internal bug] the replayed counterexample differs from the checker's")
    if v.cycle_start is not None and trace.violation is not None:
        note = (
            f"the cycle without a completion starts after step {v.cycle_start} "
            "and repeats forever from the last step"
        )
        trace = replace(trace, violation=replace(trace.violation, note=note))
    return trace


_KIND = {0: "load", 1: "cas", CAS_FAIL: "cas_fail", 3: "fetch_or", 4: "fetch_and", 5: "store"}
"""The explorer's access kinds (``_sched``) as the viewer's."""
assert set(_KIND.values()) == set(KINDS)


def _explorer_op(op: AllocOp | FreeOwn | FreeNode | DoubleFree) -> str:
    if isinstance(op, AllocOp):
        return f"alloc(order {op.order}, hint {op.hint})"
    if isinstance(op, FreeOwn):
        return f"free(the block of alloc #{op.k})"
    if isinstance(op, DoubleFree):
        # Which of the racing frees wins shows in its accesses; the page does not shade it.
        return f"racing free(node {op.node})"
    return f"free(node {op.node})"


def from_outcome(scenario: Scenario, out: Outcome, source: str = "") -> Trace:
    """The trace of one explorer execution of the real allocator (``nbbs replay``)."""
    t = _transitions(scenario.allocator)
    got: list[list[int | None]] = [[] for _ in scenario.threads]
    last: list[int | None] = [None] * len(scenario.threads)
    """Each thread's last access, as an index into ``out_steps``."""
    index = [-1] * len(scenario.threads)
    """Each thread's operation in flight, as an index into its program (a skipped free is passed)."""
    pending: list[tuple[str, int | None] | None] = [None] * len(scenario.threads)
    """An operation called but not yet at its first access: (text, the block a free gives up)."""
    current: list[str] = [""] * len(scenario.threads)
    out_steps: list[Step] = []
    for th, node, kind, old, new in out.trace:
        if kind == CALL:
            op = old
            releases = None
            if isinstance(op, FreeOwn):
                releases = got[th][op.k]
            elif isinstance(op, FreeNode):
                releases = op.node
            index[th] = next(i for i, o in enumerate(scenario.threads[th]) if i > index[th] and o == op)
            current[th] = _explorer_op(op) if releases is None else f"free(node {releases})"
            pending[th] = (current[th], releases)
        elif kind == RET:
            if isinstance(old, AllocOp):
                got[th].append(new)
            i = last[th]
            if i is not None:
                acquired = new if isinstance(old, AllocOp) else None
                text = ("None" if new is None else f"node {new}") if isinstance(old, AllocOp) else "ok"
                out_steps[i] = replace(out_steps[i], ret=text, acquires=acquired)
        elif node >= 0 and kind in _KIND:
            call = pending[th]
            pending[th] = None
            last[th] = len(out_steps)
            out_steps.append(
                Step(
                    th,
                    node,
                    _KIND[kind],
                    old,
                    new,
                    pc=current[th],
                    call=None if call is None else call[0],
                    releases=None if call is None else call[1],
                    op=None if call is None else index[th],
                )
            )
    f = out.failure
    violation = None
    if f is not None:
        inside = tuple(n for n in f.nodes if 1 <= n < 1 << (scenario.depth + 1))
        violation = Violation(f.kind, f.message, min(f.step, len(out_steps)), nodes=inside)
    name = source or schedule_string(scenario, out.schedule)
    return Trace(
        scenario.depth,
        t,
        list(out.initial_words),
        [[_explorer_op(op) for op in ops] for ops in scenario.threads],
        out_steps,
        violation,
        {n: -1 for n in scenario.initial},
        scenario.max_level,
        title=f"{scenario.allocator}: " + (f"{f.kind}" if f is not None else "all checks passed"),
        source=f"nbbs replay {name}",
        variant=scenario.allocator,
    )


def from_schedule(text: str, quiescent: str = "obtainable") -> Trace:
    """Run a schedule string (``nbbs replay``'s argument) with every check and trace it."""
    from nbbs.check.explore import ExploreConfig, run_schedule

    scenario, schedule = parse(text)
    out = run_schedule(scenario, schedule, ExploreConfig(quiescent=quiescent))  # type: ignore[arg-type]
    return from_outcome(scenario, out, text.strip())


def _block_at(held: dict[int, int], depth: int, page: int, order: int | None) -> int | None:
    """The held block starting at ``page`` (of ``order`` if given), or None."""
    for n in held:
        if g.first_page(depth, n) == page and (order is None or g.order_of(depth, n) == order):
            return n
    return None


def from_protocol(
    transcript: Sequence[str], violation: Violation | None = None, title: str = "", source: str = ""
) -> Trace:
    """The trace of a port's controlled run, from its line protocol transcript (PORTING.md, version 1).

    ``transcript`` is every line in order, the harness's commands as ``> ...`` and the port's
    replies as ``< ...``: an ``arena DEPTH PAGE_SIZE START MAX_ORDER VARIANT`` command first
    (a later one starts over), sequential ``alloc`` / ``free`` commands for the blocks held
    from the start, a ``words`` reply for the words before the first step (zero if none), then
    ``spawn`` / ``step`` commands and their ``pending`` / ``did`` / ``done`` replies. Each
    thread's column shows its operation and its pending access (a port has no program counter
    to show). ``violation.step`` counts ``did`` lines.
    """
    arena: tuple[int, int, int, int, str] | None = None
    words: list[int] | None = None
    programs: dict[int, list[str]] = {}
    out: list[Step] = []
    running: dict[int, tuple[str, str, int]] = {}
    """Per thread, its operation in flight: (text, alloc or free, the order an alloc asks for)."""
    called: dict[int, tuple[str, int | None]] = {}
    """A spawned operation not yet at its first access: (text, the block a free gives up)."""
    last: dict[int, int] = {}
    held: dict[int, int] = {}
    before: dict[int, int] = {}
    asked: list[str] = []
    """The last sequential command, waiting for its reply."""
    for i, raw in enumerate(transcript, start=1):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        if line[:2] not in ("> ", "< "):
            raise ViewerError(f"transcript line {i}: expected '> command' or '< reply', got {line!r}")
        incoming, f = line[0] == "<", line[2:].split()
        try:
            if not incoming and f[0] == "arena":
                depth = int(f[1])
                arena = (depth, int(f[2]), int(f[3]), depth if f[4] == "-" else int(f[4]), f[5])
                words, programs, out, running, called, last, held, before = None, {}, [], {}, {}, {}, {}, {}
                continue
            if arena is None:
                if f[0] in ("hello", "quit"):
                    continue
                raise ViewerError(f"transcript line {i}: {f[0]!r} before the 'arena' command")
            depth, page_size, start, _, _ = arena
            if not incoming:
                asked = f if f[0] in ("alloc", "free") else []
                if f[0] == "spawn":
                    t, what, text = int(f[1]), f[2], " ".join(f[2:])
                    programs.setdefault(t, []).append(text)
                    releases = None
                    if what == "free":
                        order = None if len(f) < 5 or f[4] == "-" else int(f[4])
                        releases = _block_at(held, depth, (int(f[3]) - start) // page_size, order)
                        if releases is not None:
                            held.pop(releases)  # held no longer from the free's call, as the checkers count
                    running[t] = (text, what, int(f[3]) if what == "alloc" else 0)
                    called[t] = (text, releases)
                continue
            kind = f[0]
            if asked and not out:
                # The reply to a sequential alloc or free: the blocks held from the start.
                if asked[0] == "alloc" and kind.isdigit():
                    n = g.node_of(depth, (int(kind) - start) // page_size, int(asked[1]))
                    held[n] = before[n] = -1
                elif asked[0] == "free" and kind == "ok":
                    order = None if len(asked) < 3 or asked[2] == "-" else int(asked[2])
                    gone = _block_at(held, depth, (int(asked[1]) - start) // page_size, order)
                    if gone is not None:
                        held.pop(gone)
                        before.pop(gone, None)
                asked = []
            elif kind == "words":
                if not out:
                    words = [int(x) for x in f[1:]]
            elif kind == "did":
                t = int(f[1])
                call = called.pop(t, None)
                last[t] = len(out)
                out.append(
                    Step(
                        t,
                        int(f[3]),
                        f[2],
                        int(f[4]),
                        int(f[5]),
                        pc=running[t][0] if t in running else "",
                        call=None if call is None else call[0],
                        releases=None if call is None else call[1],
                    )
                )
            elif kind == "pending":
                t = int(f[1])
                if last.get(t) == len(out) - 1:
                    out[-1] = replace(out[-1], state=(("pending", f"{f[2]} node {f[3]}"),))
            elif kind == "done":
                t = int(f[1])
                accessed = called.pop(t, None) is None
                text, what, order = running.pop(t, ("", "", 0))
                acquires = None
                if what == "alloc" and f[2].isdigit():
                    acquires = g.node_of(depth, (int(f[2]) - start) // page_size, order)
                    held[acquires] = t
                if accessed and t in last:
                    shown = " ".join(f[2:]) if acquires is None else f"node {acquires} (address {f[2]})"
                    j = last[t]
                    out[j] = replace(out[j], ret=shown, acquires=acquires, state=(("pending", "none: done"),))
        except (IndexError, ValueError, KeyError) as e:
            raise ViewerError(f"transcript line {i}: cannot read {line!r} ({e})") from e
    if arena is None:
        raise ViewerError("the transcript has no 'arena' command")
    depth, _, _, max_order, variant = arena
    if variant not in bits.VARIANTS:
        raise ViewerError(f"unknown variant {variant!r}; known: {', '.join(sorted(bits.VARIANTS))}")
    return Trace(
        depth,
        bits.VARIANTS[variant],
        words if words is not None else [0] * g.node_count(depth),
        [programs.get(t, []) for t in range(max(programs, default=0) + 1)],
        out,
        violation,
        before,
        depth - max_order,
        title=title or f"port, {variant}" + (f": {violation.property}" if violation else ""),
        source=source,
        variant=variant,
    )
