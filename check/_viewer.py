"""The counterexample viewer's machinery: a trace in, one self-contained HTML page out.

A trace is what any checker (or a port's harness) saw: the words before, one ``Step`` per
shared-word access (thread, node, kind, old and new word, and what the thread was doing),
each thread's program and the violated property. ``page`` turns it into one HTML file:
the data as one JSON blob embedded in ``viewer.html`` (package data), whose inline script
draws the tree, the threads and the held blocks at any step. Nothing is fetched: no server,
no network, no external script, style sheet or font.

Everything a word means is decided here, in Python, from ``model/bits.py`` (its fields, its
text), and sent as strings: a ``counted`` word has 63 bits, more than a JavaScript number
holds exactly, so the page never does arithmetic on a word.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from nbbs.impl.errors import NBBSError
from nbbs.model import bits
from nbbs.model import geometry as g

KINDS = ("load", "cas", "cas_fail", "fetch_or", "fetch_and", "store")
"""The access kinds a step may have (the line protocol's ``did`` kinds: a failed CAS is ``cas_fail``)."""

MAX_DEPTH = 8
"""The deepest tree a page draws (256 pages): deeper trees are unreadable as boxes."""

_PLACEHOLDER = "/*NBBS-VIEWER-DATA*/null"
"""Where the template takes the JSON blob."""


class ViewerError(NBBSError):
    """A trace the viewer cannot draw: the message names what is wrong with it."""


@dataclass(frozen=True)
class Step:
    """One shared-word access by one thread, and what it meant to that thread's operation.

    ``kind`` is one of ``KINDS``; ``old`` is the word found, ``new`` the word left (equal for
    ``load`` and ``cas_fail``). ``pc`` names what made the access (the step machine's program
    counter, or the operation for a trace without one). ``state`` is the thread's state after
    the access, shown in its column: the program counter and locals, or anything else as
    (name, value) text pairs. ``call`` is set on the first access of an operation (its text),
    ``ret`` on the last one (the result); ``releases`` is the block a free gives up at this
    step (held no longer from here) and ``acquires`` the block an alloc returned (held from here).
    """

    thread: int
    node: int
    kind: str
    old: int
    new: int
    pc: str = ""
    state: tuple[tuple[str, str], ...] = ()
    call: str | None = None
    ret: str | None = None
    acquires: int | None = None
    releases: int | None = None
    op: int | None = None
    """With ``call``: which of the thread's operations starts (its index in ``Trace.threads``);
    None: the one after the previous call (give it when a thread skips operations)."""


@dataclass(frozen=True)
class Violation:
    """The property that breaks, and the step after which it is broken (``len(steps)``: at the end)."""

    property: str
    message: str
    step: int
    note: str = ""
    """Anything else to say where it breaks (for example where a livelock's cycle starts)."""
    nodes: tuple[int, ...] = ()
    """The blocks or words it concerns, ringed in red on the tree from that step on."""


@dataclass(frozen=True)
class Trace:
    """Everything a page shows: the tree's shape and meaning, the words before, the threads, the steps.

    ``threads`` is each thread's program (one text per operation). ``held_before`` maps the
    blocks held before the first step to their holder (-1: the setup). ``title`` heads the
    page; ``source`` says how to reproduce the run (a command or a schedule string).
    """

    depth: int
    transitions: bits.Transitions
    words_before: Sequence[int]
    threads: Sequence[Sequence[str]]
    steps: Sequence[Step]
    violation: Violation | None = None
    held_before: Mapping[int, int] = field(default_factory=dict)
    max_level: int = 0
    title: str = "nbbs counterexample"
    source: str = ""
    variant: str = ""


def word_fields(t: bits.Transitions) -> list[tuple[str, int, int]]:
    """The fields of a word of ``t``, most significant first: (name, shift, width).

    The five-bit variants: each bit by its name (``bits.NAMES``). ``counted``: the two claim
    counts (``c_L``, ``c_R``, ``t.count_bits`` wide above ``COUNT_SHIFT``) and ``OCC``.
    """
    occ = (bits.OCC.bit_length() - 1, 1)
    if t.count_bits:
        w = t.count_bits
        return [("L", bits.COUNT_SHIFT + w, w), ("R", bits.COUNT_SHIFT, w), ("OCC", *occ)]
    return [(name, bit.bit_length() - 1, 1) for bit, name in bits.NAMES]


def _decode(w: int, t: bits.Transitions, layout: list[tuple[str, int, int]]) -> dict[str, Any]:
    """A word as the page shows it: its text and each field's value (bits for one-bit fields)."""
    fields = [[name, str((w >> shift) & ((1 << width) - 1)), width] for name, shift, width in layout]
    return {"show": t.show(w), "fields": fields, "hex": f"{w:#x}"}


def validate(trace: Trace) -> None:
    """Raise ``ViewerError`` naming the first thing in ``trace`` a page cannot show."""
    if not 0 <= trace.depth <= MAX_DEPTH:
        raise ViewerError(f"the viewer draws trees of depth 0 to {MAX_DEPTH}, got depth {trace.depth}")
    nodes = g.node_count(trace.depth)
    if len(trace.words_before) != nodes:
        raise ViewerError(
            f"words_before has {len(trace.words_before)} words, a tree of depth {trace.depth} has {nodes}"
        )
    if not trace.threads:
        raise ViewerError("a trace needs at least one thread")
    for i, st in enumerate(trace.steps):
        where = f"step {i + 1}"
        if not 0 <= st.thread < len(trace.threads):
            raise ViewerError(f"{where}: thread {st.thread} is not one of the {len(trace.threads)} threads")
        if not 1 <= st.node < nodes:
            raise ViewerError(f"{where}: node {st.node} is not a node of a tree of depth {trace.depth}")
        if st.kind not in KINDS:
            raise ViewerError(f"{where}: kind {st.kind!r} is not one of {', '.join(KINDS)}")
        for b in (st.acquires, st.releases):
            if b is not None and not 1 <= b < nodes:
                raise ViewerError(f"{where}: block {b} is not a node of a tree of depth {trace.depth}")
        if st.op is not None and not 0 <= st.op < len(trace.threads[st.thread]):
            raise ViewerError(f"{where}: thread {st.thread} has no operation {st.op}")
    for b in trace.held_before:
        if not 1 <= b < nodes:
            raise ViewerError(f"initial block {b} is not a node of a tree of depth {trace.depth}")
    v = trace.violation
    if v is not None and not 0 <= v.step <= len(trace.steps):
        raise ViewerError(f"the violation's step {v.step} is outside 0..{len(trace.steps)}")
    if v is not None and any(not 1 <= n < nodes for n in v.nodes):
        raise ViewerError(f"the violation names nodes {list(v.nodes)} outside a tree of depth {trace.depth}")


def data(trace: Trace) -> dict[str, Any]:
    """The JSON blob a page embeds: every step's words, threads and held blocks, precomputed.

    Position ``i`` (0 .. number of steps) is the state after ``i`` steps; ``steps[i - 1]`` is
    the access that led there. Words are sent as decimal strings, decoded once in ``words``.
    """
    validate(trace)
    t, depth = trace.transitions, trace.depth
    layout = word_fields(t)
    decoded: dict[str, dict[str, Any]] = {}

    def key(w: int) -> str:
        s = str(w)
        if s not in decoded:
            decoded[s] = _decode(w, t, layout)
        return s

    words = list(trace.words_before)
    held = dict(trace.held_before)
    columns: list[dict[str, Any]] = [
        {"op": None, "opIndex": -1, "status": "not started", "state": [], "last": None} for _ in trace.threads
    ]
    positions = [_position(words, held, columns, key, depth)]
    out_steps = []
    for st in trace.steps:
        col = columns[st.thread] = dict(columns[st.thread])
        if st.call is not None:
            index = col["opIndex"] + 1 if st.op is None else st.op
            col["op"], col["opIndex"], col["status"] = st.call, index, "running"
        if st.releases is not None:
            held.pop(st.releases, None)
        words[st.node] = st.new
        failed = st.kind == "cas_fail"
        col["last"] = {
            "node": st.node,
            "kind": st.kind,
            "old": key(st.old),
            "new": key(st.new),
            "pc": st.pc,
        }
        col["state"] = [list(p) for p in st.state]
        if st.ret is not None:
            col["status"] = f"returned {st.ret}"
        if st.acquires is not None:
            held[st.acquires] = st.thread
        out_steps.append(
            {
                "thread": st.thread,
                "node": st.node,
                "kind": st.kind,
                "failed": failed,
                "old": key(st.old),
                "new": key(st.new),
                "pc": st.pc,
                "call": st.call,
                "ret": st.ret,
            }
        )
        positions.append(_position(words, held, columns, key, depth))
    v = trace.violation
    return {
        "format": "nbbs-viewer",
        "version": 1,
        "title": trace.title,
        "source": trace.source,
        "variant": trace.variant,
        "depth": depth,
        "maxLevel": trace.max_level,
        "layout": [[name, width] for name, _, width in layout],
        "threads": [list(ops) for ops in trace.threads],
        "steps": out_steps,
        "positions": positions,
        "words": decoded,
        "violation": None
        if v is None
        else {
            "property": v.property,
            "message": v.message,
            "step": v.step,
            "note": v.note,
            "nodes": list(v.nodes),
        },
    }


def _position(
    words: list[int],
    held: dict[int, int],
    columns: list[dict[str, Any]],
    key: Callable[[int], str],
    depth: int,
) -> dict[str, Any]:
    """One position of the slider: the words, the held blocks as page ranges, each thread's column."""
    blocks = [
        {
            "node": n,
            "holder": holder,
            "first": g.first_page(depth, n),
            "pages": g.pages(depth, n),
        }
        for n, holder in sorted(held.items())
    ]
    occupied = [
        {"node": n, "first": g.first_page(depth, n), "pages": g.pages(depth, n)}
        for n in g.all_nodes(depth)
        if words[n] & bits.OCC
    ]
    return {
        "words": [key(w) for w in words],
        "held": blocks,
        "occupied": occupied,
        "threads": [dict(c) for c in columns],
    }


def template() -> str:
    """The page template shipped with the package (``viewer.html``)."""
    return resources.files("nbbs.check").joinpath("viewer.html").read_text(encoding="utf-8")


def page(trace: Trace) -> str:
    """The self-contained HTML page of ``trace``."""
    blob = json.dumps(data(trace), separators=(",", ":"), sort_keys=False)
    # Inside <script> the only sequence that can end the element early is "</": escape it.
    blob = blob.replace("</", "<\\/")
    html = template()
    if _PLACEHOLDER not in html:
        raise AssertionError("[viewer internal bug] the template has no data placeholder")
    return html.replace(_PLACEHOLDER, blob, 1)


def check_target(path: str | Path) -> Path:
    """``path`` as a ``Path``, or ``ViewerError`` if a page cannot be written there (a command
    checks this before its search, not after)."""
    path = Path(path)
    if path.is_dir():
        raise ViewerError(f"cannot write the page to {path}: it is a folder")
    if not path.parent.is_dir():
        raise ViewerError(f"cannot write the page to {path}: the folder {path.parent} does not exist")
    return path


def write(trace: Trace, path: str | Path) -> Path:
    """Write ``trace``'s page to ``path``; return the path. ``ViewerError`` if it cannot."""
    target = check_target(path)
    try:
        target.write_text(page(trace), encoding="utf-8")
    except OSError as e:
        raise ViewerError(f"cannot write the page to {target}: {e.strerror or e}") from e
    return target
