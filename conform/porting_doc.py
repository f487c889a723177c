"""``python -m nbbs.conform.porting_doc [--check] [PATH]``: PORTING.md's generated tables.

PORTING.md is written by hand except for the blocks between ``<!-- generated: NAME -->``
and ``<!-- end generated: NAME -->``, which this module writes from the code they describe:
the word layout and constants (``model/bits.py``), the tree arithmetic
(``model/geometry.py``), every transition as a formula, the program counters of each
operation and a worked access sequence (``model/steps.py``), the memory ordering of each
access, the errors (``nbbs.impl.errors``) and the checklist of porting mistakes with the
mutant or counterexample that shows each. ``tests/test_porting_doc.py`` fails when the
checked-in file differs from what this writes, and evaluates every formula row against
``bits.py`` and ``geometry.py`` on random inputs.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbbs.check.mutants import COUNTED_MUTANTS, TRANSITION_MUTANTS
from nbbs.impl import errors
from nbbs.model import bits, steps
from nbbs.model import geometry as g

DOC = Path(__file__).resolve().parent.parent / "PORTING.md"
"""The checked-in PORTING.md (in the source tree; an installed copy has none)."""

COUNTED_W = bits.COUNT_BITS

CONSTANTS: dict[str, int] = {
    "OCC": bits.OCC,
    "COAL_L": bits.COAL_LEFT,
    "COAL_R": bits.COAL_RIGHT,
    "OCC_L": bits.OCC_LEFT,
    "OCC_R": bits.OCC_RIGHT,
    "BUSY": bits.BUSY,
    "SHIFT": bits.COUNT_SHIFT,
    "W": COUNTED_W,
    "ONE_R": 1 << bits.COUNT_SHIFT,
    "FIELD_R": ((1 << COUNTED_W) - 1) << bits.COUNT_SHIFT,
}
"""The names the formulas use, with their values."""

CONSTANT_NOTES = {
    "OCC": "the node itself is a block (or being claimed)",
    "COAL_L": "`reference`: a free coalesces up through the left child",
    "COAL_R": "`reference`: ... through the right child",
    "OCC_L": "`reference`: the left subtree holds a block; both variants: part of `BUSY`",
    "OCC_R": "`reference`: the right subtree holds a block; both variants: part of `BUSY`",
    "BUSY": "the word of an allocated block: `OCC | OCC_L | OCC_R`",
    "SHIFT": "`counted`: where the counts start",
    "W": "`counted`: the width of one count",
    "ONE_R": "`counted`: one claim through the right child (`ONE_R << W`: the left)",
    "FIELD_R": "`counted`: the right count's bits (`FIELD_R << W`: the left count's)",
}


@dataclass(frozen=True)
class Formula:
    """One transition or predicate of a variant, in C syntax that is also Python syntax."""

    variant: str
    name: str
    """The ``bits.Transitions`` field it states."""
    args: tuple[str, ...]
    formula: str
    access: str
    """Where the algorithm uses it."""


S_OTHER = "(s ^ 1)"

FORMULAS: tuple[Formula, ...] = (
    Formula("reference", "is_free", ("w",), "w == 0", "scan: the candidate may be occupied"),
    Formula("reference", "occupy", ("w",), "BUSY", "occupy CAS: new word (expects `w`)"),
    Formula(
        "reference", "is_occupied", ("w",), "(w & OCC) != 0", "climb: the ancestor is a block, roll back"
    ),
    Formula(
        "reference",
        "climb",
        ("w", "s"),
        "(w | (OCC_R << s)) & ~(COAL_R << s)",
        "climb CAS (skipped if equal)",
    ),
    Formula("reference", "mark_mask", ("s",), "COAL_R << s", "mark: the fetch-or's operand"),
    Formula(
        "reference",
        "buddy_keeps_busy",
        ("old", "s"),
        f"(old & ((OCC_R | COAL_R) << {S_OTHER})) == (OCC_R << {S_OTHER})",
        "mark: stop after this ancestor (`old`: the word before the fetch-or)",
    ),
    Formula("reference", "release", ("w",), "0", "release: the store's value"),
    Formula("reference", "unmark_applies", ("w", "s"), "(w & (COAL_R << s)) != 0", "unmark: else stop"),
    Formula("reference", "unmark", ("w", "s"), "w & ~((COAL_R | OCC_R) << s)", "unmark CAS"),
    Formula(
        "reference", "unmark_stops", ("new", "s"), f"(new & (OCC_R << {S_OTHER})) != 0", "unmark: stop after"
    ),
    Formula("counted", "is_free", ("w",), "w == 0", "scan: the candidate may be occupied"),
    Formula("counted", "occupy", ("w",), "BUSY", "occupy CAS: new word (expects `w`)"),
    Formula("counted", "is_occupied", ("w",), "(w & OCC) != 0", "climb: the ancestor is a block, roll back"),
    Formula("counted", "climb", ("w", "s"), "w + (ONE_R << (W * s))", "climb CAS, at every ancestor"),
    Formula("counted", "release", ("w",), "0", "release: the store's value"),
    Formula("counted", "unmark_applies", ("w", "s"), "(w & (FIELD_R << (W * s))) != 0", "unmark: always"),
    Formula("counted", "unmark", ("w", "s"), "w - (ONE_R << (W * s))", "unmark CAS, at every ancestor"),
    Formula("counted", "unmark_stops", ("new", "s"), "0", "unmark: never stops below `max_level`"),
    Formula(
        "top_down",
        "climb_stops",
        ("w", "s"),
        "(w & (FIELD_R << (W * s))) != 0",
        "ascent: the anchor; descent: a join (undo the surplus claim)",
    ),
    Formula(
        "top_down",
        "unmark_stops",
        ("new", "s"),
        "(new & (FIELD_R << (W * s))) != 0",
        "unmark: stop after (the side keeps a claim)",
    ),
    Formula(
        "top_down_node",
        "climb_stops",
        ("w", "s"),
        "(w & (FIELD_R | (FIELD_R << W))) != 0",
        "as `top_down`, with a claim on either side",
    ),
    Formula(
        "top_down_node",
        "unmark_stops",
        ("new", "s"),
        "(new & (FIELD_R | (FIELD_R << W))) != 0",
        "unmark: stop after (the node keeps a claim)",
    ),
)
"""Every transition and predicate the documented variants run, as formulas (``top_down`` and
``top_down_node`` run ``counted``'s others: only their two rows differ)."""

TOP_DOWN_ONLY = ("alloc:descend-load", "alloc:descend-cas", "alloc:undo-load", "alloc:undo-cas")
"""The program counters only the top-down climb has; the undo is reached only when two
descents race (a join), so no sequential example shows it."""

DOCUMENTED = ("counted", "reference", "top_down_node", "top_down")
"""The variants whose program counters and worked examples the doc shows."""

_NODE_OF = "(1 << (depth - order)) + (p >> order)"
_FIRST_PAGE = "(n - (1 << l)) << (depth - l)"

GEOMETRY: tuple[tuple[str, tuple[str, ...], str, Callable[..., int]], ...] = (
    ("parent", ("n",), "n >> 1", g.parent),
    ("left child", ("n",), "n << 1", g.left),
    ("buddy", ("n",), "n ^ 1", g.buddy),
    ("side s (1: left child, 0: right)", ("n",), "(n & 1) ^ 1", g.side),
    ("level (the index of the top set bit)", ("n",), "63 - clz64(n)", g.level),
    ("first node of level l", ("l",), "1 << l", g.first_node),
    ("node of the block of `order` at page p", ("depth", "p", "order"), _NODE_OF, g.node_of),
    ("first page of node n at level l", ("depth", "n", "l"), _FIRST_PAGE, g.first_page_at),
    ("first node after a's subtree, at level l", ("a", "l"), "(a + 1) << (l - level(a))", g.after_subtree),
)  # fmt: skip
"""The tree arithmetic, as formulas (the address of node ``n`` is ``start + first_page * page_size``)."""

ROLES: dict[str, str] = {
    "alloc:load": "load the candidate `n` of the scanned level",
    "alloc:occupy": "CAS `n`: `w -> occupy(w)` if `is_free(w)`; lost or not free: next candidate",
    "alloc:climb-load": (
        "load the parent `p` of `child`; `is_occupied`: roll back below `p` (top-down: the ascent, "
        "writing nothing; `climb_stops` or `max_level`: `p` is the anchor, descend from it)"
    ),
    "alloc:climb-cas": "CAS `p`: `cur -> climb(cur, side(child))`; lost: load again",
    "free:check": "(the argument check) load the nodes that start at the address, largest order first",
    "free:mark": "fetch-or `mark_mask(side(child))` into the parent; `buddy_keeps_busy(old)`: stop after it",
    "free:release": (
        "`counted`: CAS the block `expected -> release(expected)` (expected: the word free:check "
        "loaded); lost: DoubleFreeError, nothing written. `reference`: store `release` (0)"
    ),
    "free:unmark-load": "load the parent `p`; unless `unmark_applies`, stop",
    "free:unmark-cas": "CAS `p`: `cur -> unmark(cur, side(child))`; lost: load again; `unmark_stops`: stop",
    "rollback:mark": "as free:mark, bounded below the occupied ancestor",
    "rollback:release": "as free:release, for the candidate (`counted` expects `occupy(0)`, its own word)",
    "rollback:unmark-load": "as free:unmark-load, bounded below the occupied ancestor",
    "rollback:unmark-cas": "as free:unmark-cas; then the scan resumes after the ancestor's subtree",
    "alloc:descend-load": (
        "(top-down) load the next node `x` down the path (or the one whose CAS was lost); "
        "`is_occupied`: roll back (uncounting from `x` up if above `x` was counted); the anchor "
        "without a claim any more: ascend again from it"
    ),
    "alloc:descend-cas": (
        "(top-down) CAS `x`: `cur -> climb(cur, side)`; lost: descend-load; below the anchor and "
        "`climb_stops(cur)`: another descent claimed it first, undo ours on `parent(x)`"
    ),
    "alloc:undo-load": "(top-down) load `parent(x)`, whose claim from us is one too many",
    "alloc:undo-cas": "(top-down) CAS `parent(x)`: `cur -> unmark(cur, side(x))`; lost: load again",
}
"""What each program counter of ``model/steps.py`` does, in the words of PORTING.md."""

ORDERING: dict[str, tuple[str, str]] = {
    "alloc:load": ("relaxed", "only picks a candidate: the occupy CAS compares the whole word again"),
    "alloc:occupy": (
        "acq_rel",
        "acquire: syncs with the release store (or last unmark) that freed the pages, so the previous "
        "owner's writes to the block happen before the new owner's",
    ),
    "alloc:climb-load": (
        "acquire",
        "decides a rollback; a stale free word only makes the CAS fail and the loop load again "
        "(top-down's ascent: `seq_cst`, as alloc:descend-load)",
    ),
    "alloc:climb-cas": ("acq_rel", "orders the claim with the occupy before it and the frees that read it"),
    "free:check": ("acquire", "the owner's own alloc happens before; decides the error reply"),
    "free:mark": ("acq_rel", "`reference`: the mark must be seen before the release of the block"),
    "free:release": (
        "release",
        "the owner's writes to the block happen before the next occupy (acquire) of any node over it "
        "(`counted`'s CAS: `release` on success, `relaxed` on failure, which writes nothing)",
    ),
    "free:unmark-load": ("acquire", "decides whether to stop (`reference`)"),
    "free:unmark-cas": (
        "acq_rel",
        "release: an occupy of the ancestor (acquire) then sees the block given back",
    ),
    "rollback:mark": ("acq_rel", "as free:mark"),
    "rollback:release": ("release", "as free:release"),
    "rollback:unmark-load": ("acquire", "as free:unmark-load"),
    "rollback:unmark-cas": ("acq_rel", "as free:unmark-cas"),
    "alloc:descend-load": (
        "seq_cst",
        "(top-down) decides a rollback or a new ascent on a count another descent wrote; the argument "
        "(a count is non-zero only under a claim already written above) is checked over one total order "
        "of accesses only: we argue nothing weaker",
    ),
    "alloc:descend-cas": (
        "seq_cst",
        "(top-down) writes the claim other ascents take as their anchor (load-only decisions): as "
        "alloc:descend-load",
    ),
    "alloc:undo-load": ("relaxed", "(top-down) only the undo CAS's expected word, compared again"),
    "alloc:undo-cas": ("acq_rel", "(top-down) as free:unmark-cas: gives back a claim"),
}
"""The weakest C11 order we argue each access needs (checked: ``seq_cst`` only), and why."""

RUST = {
    "relaxed": "Relaxed",
    "acquire": "Acquire",
    "release": "Release",
    "acq_rel": "AcqRel",
    "seq_cst": "SeqCst",
}


@dataclass(frozen=True)
class Mistake:
    """A mistake ports make, what it does, and the kept mutant, counterexample or trace that shows it."""

    mistake: str
    effect: str
    kind: str
    """``mutant`` (check/mutants.py or check/impl_mutants.py), ``counterexample``
    (tests/data/counterexamples/) or ``trace`` (tests/data/traces/)."""
    ref: str


CHECKLIST: tuple[Mistake, ...] = (
    Mistake(
        "Porting the published free (mark, release, unmark with COAL bits)",
        "3 threads, depth 2: two held blocks overlap",
        "counterexample",
        "reference-a.json",
    ),
    Mistake(
        "The same, 2 threads",
        "a rollback strands a path: a block is lost for good",
        "counterexample",
        "reference-b.json",
    ),
    Mistake(
        "Repairing the published free inside the five-bit word",
        "3 threads, depth 3: overlap (a COAL bit has no identity)",
        "counterexample",
        "corrected-a.json",
    ),
    Mistake(
        "Unmark sets the side's bits instead of clearing them (the Rust crate)",
        "a subtree leaks",
        "mutant",
        "unmark_sets_instead_of_clears",
    ),
    Mistake(
        "Climb clears the side's bit instead of setting it",
        "an ancestor looks free above a block",
        "mutant",
        "climb_clears_instead_of_sets",
    ),
    Mistake(
        "Occupy writes `OCC` alone instead of `BUSY`",
        "the block's subtree looks free",
        "mutant",
        "occupy_only_occ",
    ),
    Mistake(
        "`counted`: climb does not add its claim",
        "an ancestor can be occupied above a block",
        "mutant",
        "climb_does_not_count",
    ),
    Mistake(
        "`counted`: the side swapped (`s = n & 1`)",
        "the claim comes off the buddy's count",
        "mutant",
        "unmark_wrong_side",
    ),
    Mistake(
        "`counted`: occupy tests `OCC` only, not the whole word",
        "a block above blocks",
        "mutant",
        "occupy_ignores_counts",
    ),
    Mistake(
        "A lost climb CAS is not retried",
        "the parent misses the claim: overlap",
        "mutant",
        "dropped_cas_retry",
    ),
    Mistake(
        "A lost unmark CAS is not retried",
        "the claim stays: blocks are lost",
        "mutant",
        "dropped_unmark_retry",
    ),
    Mistake(
        "The climb writes with a plain store after its load",
        "a concurrent update is overwritten",
        "mutant",
        "plain_store_climb",
    ),
    Mistake(
        "No rollback when the climb meets an occupied ancestor",
        "the candidate and its path stay taken",
        "mutant",
        "missed_rollback",
    ),
    Mistake(
        "The climb stops one level below `max_level`",
        "the top ancestor never learns of the block",
        "mutant",
        "climb_stops_early",
    ),
    Mistake(
        "Five-bit variants: the block released before its path is marked",
        "an alloc takes it mid-free",
        "mutant",
        "release_before_mark",
    ),
    Mistake(
        "`start` ignored, or addresses taken as absolute",
        "wrong addresses; frees refused",
        "trace",
        "counted-d3-m3.jsonl",
    ),
    Mistake(
        "No argument checks, or the wrong error class",
        "bad frees corrupt the tree",
        "trace",
        "counted-d5-m3.jsonl",
    ),
)
"""The checklist, each entry tied to something the project keeps and `nbbs conform` runs."""


# -- evaluating formulas -----------------------------------------------------------------


def _clz64(x: int) -> int:
    return 64 - x.bit_length()


FUNCTIONS: dict[str, Callable[[int], int]] = {"clz64": _clz64, "level": lambda n: 63 - _clz64(n)}
"""The functions a formula may call: C's count of leading zeros, and the level formula."""


def evaluate(formula: str, **values: int) -> int:
    """A formula's value: its C operators, applied to Python ints (the same for these formulas)."""
    return int(eval(formula, {"__builtins__": {}}, {**CONSTANTS, **FUNCTIONS, **values}))  # ours only


def transition(f: Formula) -> Callable[..., Any]:
    """The ``bits.py`` function a formula row states."""
    return getattr(bits.VARIANTS[f.variant], f.name)  # type: ignore[no-any-return]


# -- the generated blocks -------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    # A "|" inside a cell (a formula's OR) would end the cell: GitHub reads "\|" as "|".
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def layout() -> str:
    top = bits.COUNT_SHIFT + 2 * COUNTED_W - 1
    rows = [[f"`{k}`", f"`{v:#x}`" if v > 64 else str(v), CONSTANT_NOTES[k]] for k, v in CONSTANTS.items()]
    words = (
        "```\n"
        "reference (one byte per node; bits 7..5 unused):\n"
        "    bit   4     3        2        1       0\n"
        "        OCC  COAL_L   COAL_R   OCC_L   OCC_R\n"
        f"counted (one 64-bit word per node, W = {COUNTED_W}):\n"
        f"    bit  63   {top}..{5 + COUNTED_W}   {5 + COUNTED_W - 1}..5   4     3..2   1..0\n"
        "         0    c_L      c_R     OCC   0      OCC_L|OCC_R (set only in BUSY, a block's word)\n"
        "```"
    )
    return words + "\n\n" + _table(["name", "value", "meaning"], rows)


def transitions() -> str:
    rows = [
        [f"`{f.variant}`", f"`{f.name}({', '.join(f.args)})`", f"`{f.formula}`", f.access] for f in FORMULAS
    ]
    return _table(["variant", "transition", "formula (C, unsigned 64-bit)", "used by"], rows)


def geometry() -> str:
    rows = [[name, f"`{formula}`"] for name, _args, formula, _fn in GEOMETRY]
    return _table(["quantity", "formula"], rows)


Example = tuple[str, int, tuple[int, ...], Callable[[steps.Machine], steps.OpState]]


def _reached(variant: str) -> list[int]:
    """The program counters a variant's operations reach, in ``steps.py``'s order."""
    seen: set[int] = set()
    for _title, depth, words, op in _examples(variant):
        m = steps.Machine(depth, 0, bits.VARIANTS[variant])
        state = op(m)
        w = list(words)
        while not steps.is_done(state):
            seen.add(state.pc)
            _ev, state, new = m.step(state, w)
            w[_ev.node] = new
    return sorted(seen)


def _examples(variant: str) -> list[Example]:
    """Sequences the doc shows: an alloc, a checked free of it, and an alloc whose climb fails;
    for a top-down variant also an alloc beside a held buddy (where the two top-down variants
    differ: the doc shows only that one for ``top_down``)."""
    t = bits.VARIANTS[variant]
    empty = (0,) * g.node_count(2)
    held = list(empty)
    held[4], held[2] = bits.BUSY, t.climb(0, g.side(4))
    held[1] = t.climb(0, g.side(2))
    root_taken = list(empty)
    root_taken[1] = bits.BUSY  # an alloc in flight has occupied the root
    out: list[Example] = [
        (
            "alloc(0) on an empty depth-2 tree (`max_level` 0, scan from node 4)",
            2,
            empty,
            lambda m: m.alloc(0, 0),
        ),
        ("free(4), checked, of that block", 2, tuple(held), lambda m: m.free(4, checked=True)),
        (
            "an alloc at node 5 whose climb meets the root occupied (by an alloc in flight): rollback",
            2,
            tuple(root_taken),
            lambda m: m.attempt(5),
        ),
    ]
    if not t.top_down:
        return out
    buddy = (
        "alloc(0) at node 5 while its buddy 4 is held: the anchor",
        2,
        tuple(held),
        lambda m: m.attempt(5),
    )
    return [*out, buddy]


def _passed(variant: str) -> list[int]:
    """The program counters a variant's operations pass: those the examples reach, and the
    top-down climb's own (the undo is reached only by two descents racing)."""
    seen = set(_reached(variant))
    if bits.VARIANTS[variant].top_down:
        seen |= {steps.PC_NAMES.index(name) for name in TOP_DOWN_ONLY}
    return sorted(seen)


def accesses() -> str:
    out = []
    for variant in DOCUMENTED:
        rows = []
        for pc in _passed(variant):
            name = steps.PC_NAMES[pc]
            rows.append([f"`{name}`", ROLES[name]])
        out.append(f"**`{variant}`**: the program counters (`model/steps.py`) its operations pass\n")
        out.append(_table(["program counter", "access"], rows))
        out.append("")
        t = bits.VARIANTS[variant]
        examples = _examples(variant)
        for title, depth, words, op in examples[-1:] if variant == "top_down" else examples:
            m = steps.Machine(depth, 0, t)
            state, w = op(m), list(words)
            lines = [f"{title}:", "```"]
            while not steps.is_done(state):
                name = steps.PC_NAMES[state.pc]
                ev, state, new = m.step(state, w)
                w[ev.node] = new
                change = f"{ev.old} -> {ev.new}" if ev.new != ev.old else f"{ev.old}"
                lines.append(f"  {name:<22} {ev.kind!s:<9} node {ev.node}  {change:<28} {t.show(ev.new)}")
            lines.append(
                f"  => {steps.PC_NAMES[state.pc]}"
                + (f", node {state.n}" if state.pc == steps.DONE_OK else "")
            )
            lines.append("```")
            out.append("\n".join(lines))
    return "\n".join(out)


def orderings() -> str:
    rows = [[f"`{pc}`", f"`{c}`", f"`{RUST[c]}`", why] for pc, (c, why) in ORDERING.items()]
    return _table(["access", "C11 `memory_order_`", "Rust `Ordering::`", "why"], rows)


def error_table() -> str:
    rows = []
    for name, cls in vars(errors).items():
        if isinstance(cls, type) and issubclass(cls, errors.NBBSError) and cls.__doc__:
            if cls in (errors.NBBSError, errors.AddressError):
                continue
            rows.append([f"`{name}`", cls.__doc__.strip().splitlines()[0]])
    return _table(["`<Class>`", "when"], rows)


def _mutant_doc(name: str) -> str:
    for table in (TRANSITION_MUTANTS, COUNTED_MUTANTS):
        if name in table:
            return "check/mutants.py"
    return "check/impl_mutants.py"


def checklist() -> str:
    rows = []
    for i, m in enumerate(CHECKLIST, start=1):
        where = {
            "mutant": f"mutant `{m.ref}` ({_mutant_doc(m.ref)})",
            "counterexample": f"`tests/data/counterexamples/{m.ref}`",
            "trace": f"trace `{m.ref}`",
        }[m.kind]
        rows.append([str(i), m.mistake, m.effect, where])
    return _table(["", "mistake", "what goes wrong", "shown by"], rows)


SECTIONS: dict[str, Callable[[], str]] = {
    "layout": layout,
    "geometry": geometry,
    "transitions": transitions,
    "accesses": accesses,
    "orderings": orderings,
    "errors": error_table,
    "checklist": checklist,
}

BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[a-z]+) -->\n)(?P<body>.*?)(<!-- end generated: (?P=name) -->)", re.S
)


def render(text: str) -> str:
    """``text`` with every generated block rewritten; an unknown block name is an error."""

    def fill(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in SECTIONS:
            raise ValueError(f"PORTING.md names an unknown generated block {name!r}")
        return f"{m.group(1)}{SECTIONS[name]()}\n{m.group(4)}"

    out = BLOCK.sub(fill, text)
    missing = set(SECTIONS) - set(block_names(out))
    if missing:
        raise ValueError(f"PORTING.md lacks the generated blocks {sorted(missing)}")
    return out


def block_names(text: str) -> list[str]:
    """The names of the generated blocks in ``text``, in order."""
    return [m.group("name") for m in BLOCK.finditer(text)]


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite PORTING.md's generated blocks (``--check``: exit 1 if they are out of date)."""
    p = argparse.ArgumentParser(prog="python -m nbbs.conform.porting_doc", description=main.__doc__)
    p.add_argument("path", nargs="?", default=str(DOC))
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    path = Path(args.path)
    text = path.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print(f"{path} is out of date: run python -m nbbs.conform.porting_doc", file=sys.stderr)
            return 1
        return 0
    if new != text:
        path.write_text(new)
        print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
