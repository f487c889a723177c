"""Refinement of whole sequential operations, and why the local quiescent invariant is enough.

``tree_local_global`` (whole tree, one depth): if every node satisfies ``tree.node_ok`` (pages
``leaf_ok``, nodes above ``max_level`` zero), then (a) ``taken(w[x])`` says exactly whether
``x``'s subtree holds a live block, (b) no live block lies under another (the live blocks
are disjoint), and (c) the words are exactly the canonical encoding of the live-block set:
the abstraction loses nothing.

``refine_alloc`` / ``refine_free`` (one depth, one query per level ``L`` of the chosen
node): the tree is described by the path from a symbolic node ``n`` of level ``L`` up to the
root (its words), the buddy of each path node and ``n``'s two children (their words, each
with symbolic children of its own so that ``node_ok`` constrains it), and a symbolic
``max_level <= L``. The operation is ``sequential.alloc_path`` / ``free_path`` with the
variant's transitions; it writes only path words, so every other word, and with it every
other node's ``node_ok`` and the abstraction off the path, is unchanged. Claims:

* alloc: it succeeds iff the spec allows ``n`` (no block on the path, nothing under ``n``;
  by ``tree_local_global`` "nothing under ``n``" is "``n``'s children are not taken"); on
  success the path satisfies ``node_ok`` again and the abstraction gains exactly ``n``; on
  failure (``n`` taken, or an ancestor is a block and the climb is rolled back) every path
  word is as before.
* free of a live ``n``: the path satisfies ``node_ok`` again (no COAL bit left anywhere) and
  the abstraction loses exactly ``n``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from nbbs.model import bits, tree
from nbbs.model import geometry as g
from nbbs.proofs import replay, sequential
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import TERMS, Query, Z, as_shift, show, val, word

_LEVEL_BITS = 8


def _occ(w: Any) -> Any:
    return w & bits.OCC != 0


@dataclass
class PathTree:
    """The symbolic neighbourhood of the path from a node ``n`` of ``level`` up to the root."""

    depth: int
    level: int
    n: Any
    max_level: Any
    w: list[Any]  # path words by level
    sides: list[Any]  # side of the path node on level k (k >= 1)
    buddies: list[Any]  # word of the path node's buddy on level k (k >= 1)
    kids: list[Any]  # n's children's words (left, right), empty for a page
    premises: list[Any]

    def within(self) -> list[Any]:
        """Per level above ``n``: may the operation write it (``k >= max_level``)."""
        return [z3.ULE(self.max_level, z3.BitVecVal(k, _LEVEL_BITS)) for k in range(self.level)]

    def children(self, w: list[Any], k: int) -> tuple[Any, Any]:
        """(left, right) words of the path node on level ``k < level``, given path words ``w``."""
        mine, theirs = w[k + 1], self.buddies[k + 1]
        is_left = self.sides[k + 1] == 1
        return z3.If(is_left, mine, theirs), z3.If(is_left, theirs, mine)

    def node_path_nodes(self) -> list[Any]:
        out = [self.n]
        for _ in range(self.level):
            out.append(g.parent(out[-1]))
        return out[::-1]

    def path_ok(self, node_ok: Callable[..., Any], w: list[Any]) -> list[tuple[str, Any]]:
        """The quiescent invariant (inner nodes: ``node_ok``) at every path node, with path words ``w``."""
        out = []
        for k in range(self.level):
            out.append(
                (
                    f"level {k}: node_ok (or zero above max_level)",
                    z3.If(
                        z3.ULT(z3.BitVecVal(k, _LEVEL_BITS), self.max_level),
                        w[k] == 0,
                        node_ok(w[k], *self.children(w, k), Z),
                    ),
                )
            )
        if self.level == self.depth:
            out.append((f"level {self.level}: leaf_ok", tree.leaf_ok(w[self.level], Z)))
        else:
            out.append((f"level {self.level}: node_ok", node_ok(w[self.level], *self.kids, Z)))
        return out

    def spec_free(self) -> Any:
        """``spec.is_free(abstraction, n)``: no block on the path, nothing under ``n``."""
        under = [z3.Not(tree.taken(c)) for c in self.kids]
        return z3.And(*[z3.Not(_occ(x)) for x in self.w], *under)


def _shape(v: Variant, x: Any, level: int, depth: int, name: str) -> Any:
    """``x`` is the word of an untouched node of ``level`` in a tree satisfying the invariant."""
    if level == depth:
        return tree.leaf_ok(x, Z)
    return v.node_ok(x, word(f"{name}_l"), word(f"{name}_r"), Z)


def path_tree(v: Variant, depth: int, level: int) -> PathTree:
    """A symbolic path tree satisfying the quiescent invariant around the path."""
    # One spare bit keeps the sign bit clear, so z3's (arithmetic) >> in geometry.parent is exact.
    n = z3.BitVec("n", level + 2)
    ml = z3.BitVec("max_level", _LEVEL_BITS)
    nodes = [n]
    for _ in range(level):
        nodes.append(g.parent(nodes[-1]))
    nodes = nodes[::-1]  # by level
    sides: list[Any] = [None] + [as_shift(g.side(nodes[k])) for k in range(1, level + 1)]
    w = [word(f"w{k}") for k in range(level + 1)]
    buddies: list[Any] = [None] + [word(f"b{k}") for k in range(1, level + 1)]
    kids = [] if level == depth else [word("c_left"), word("c_right")]
    premises: list[Any] = [
        z3.UGE(n, z3.BitVecVal(g.first_node(level), level + 2)),
        z3.ULT(n, z3.BitVecVal(2 * g.first_node(level), level + 2)),
        z3.ULE(ml, level),
    ]
    for k in range(1, level + 1):
        above = z3.ULT(z3.BitVecVal(k, _LEVEL_BITS), ml)
        premises.append(z3.If(above, buddies[k] == 0, _shape(v, buddies[k], k, depth, f"b{k}")))
    for c, name in zip(kids, ("c_left", "c_right"), strict=False):
        premises.append(_shape(v, c, level + 1, depth, name))
    pt = PathTree(depth, level, n, ml, w, sides, buddies, kids, premises)
    pt.premises += [c for _, c in pt.path_ok(v.node_ok, w)]
    return pt


def concrete_tree(pt: PathTree, m: z3.ModelRef) -> tuple[list[int], int, int]:
    """A whole tree realising a counterexample: its words, the node ``n`` and ``max_level``.

    Path, buddy and children words come from the model; under each buddy and child, a
    subtree consistent with its word is filled in (a taken side gets a block right below).
    """
    words = [0] * g.node_count(pt.depth)
    nodes = [val(m, x) for x in pt.node_path_nodes()]
    for k, x in enumerate(nodes):
        words[x] = val(m, pt.w[k])
    filled = [(g.buddy(nodes[k]), val(m, pt.buddies[k])) for k in range(1, pt.level + 1)]
    if pt.kids:
        filled += [(g.left(nodes[-1]), val(m, pt.kids[0])), (g.right(nodes[-1]), val(m, pt.kids[1]))]
    for x, wx in filled:
        words[x] = wx
        if g.level(x) < pt.depth and not wx & bits.OCC:
            for child, bit in ((g.left(x), bits.OCC_LEFT), (g.right(x), bits.OCC_RIGHT)):
                if wx & bit:
                    words[child] = bits.BUSY
    return words, nodes[-1], val(m, pt.max_level)


def replayed(v: Variant, pt: PathTree, m: z3.ModelRef, op: str) -> str:
    """The counterexample run on the real allocator (``impl/nbbs.py``) with the variant's
    transitions, beside the published ones: the tree before, each access, the tree after,
    what the quiescent invariant says, and the first access where the two runs differ."""
    words, n, ml = concrete_tree(pt, m)
    depth = pt.depth
    logs = {}
    for name, t in (("variant", v.transitions), ("published", bits.PUBLISHED)):
        a, rec = replay.allocator(words, depth, depth - ml, t)
        if op == "alloc":
            result = replay.attempt(a, n)
        else:
            replay.free(a, n)
            result = True
        logs[name] = (rec, result)
    rec, result = logs["variant"]
    good = logs["published"][0]
    broken = tree.quiescent_violations(rec.w, depth, ml)
    lines = [
        f"  replayed on impl/nbbs.py (depth {depth}, max_order {depth - ml}), {op} of node {n}"
        + (f" -> {'success' if result else 'no block'}" if op == "alloc" else ""),
        "  before:",
        tree.render(words, depth),
        "  quiescent invariant before: "
        + ("holds" if not tree.quiescent_violations(words, depth, ml) else "broken (encoding bug)"),
        "  accesses:",
        replay.show_log(rec.log),
        "  after:",
        tree.render(rec.w, depth),
        "  quiescent invariant after: " + ("holds" if not broken else "BROKEN at " + "; ".join(broken)),
        f"  live blocks before {sorted(tree.abstraction(words, depth))}, "
        f"after {sorted(tree.abstraction(rec.w, depth))}",
    ]
    for i, (mine, theirs) in enumerate(itertools.zip_longest(rec.log, good.log)):
        if mine != theirs:
            did = (
                "nothing"
                if mine is None
                else f"{mine[0]} on node {mine[1]}: {bits.show(mine[2])} -> {bits.show(mine[3])}"
            )
            should = (
                "nothing"
                if theirs is None
                else f"{theirs[0]} on node {theirs[1]}: {bits.show(theirs[2])} -> {bits.show(theirs[3])}"
            )
            lines.append(f"  the step that goes wrong: access {i + 1} does {did};")
            lines.append(f"  the published transitions do {should}")
            break
    return "\n".join(lines)


def _explain(v: Variant, pt: PathTree, after: list[Any], op: str) -> Callable[[z3.ModelRef], str]:
    def explain(m: z3.ModelRef) -> str:
        nodes = [val(m, x) for x in pt.node_path_nodes()]
        lines = [
            f"  {op} at node {nodes[-1]} (level {pt.level}) of a depth-{pt.depth} tree, "
            f"max_level {val(m, pt.max_level)}",
            "  path, root first:        word before           word after            | buddy",
        ]
        for k in range(pt.level + 1):
            bud = "" if k == 0 else f"| {g.buddy(nodes[k])}: {show(m, pt.buddies[k])}"
            lines.append(
                f"    level {k} node {nodes[k]:>4}: {show(m, pt.w[k]):<21} {show(m, after[k]):<21} {bud}"
            )
        for c, name in zip(pt.kids, ("left", "right"), strict=False):
            lines.append(f"    {name} child of n: {show(m, c)}")
        lines.append(replayed(v, pt, m, op))
        return "\n".join(lines)

    return explain


def _alloc(depth: int, level: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        pt = path_tree(v, depth, level)
        after, ok, failed_at = sequential.alloc_path(v.transitions, TERMS, pt.w, pt.sides, pt.within())
        same = z3.And([a == b for a, b in zip(after, pt.w, strict=True)])
        claims = [("succeeds iff the spec allows n", ok == pt.spec_free())]
        claims += [(f"on success, {name}", z3.Implies(ok, c)) for name, c in pt.path_ok(v.node_ok, after)]
        claims.append(
            (
                "on success, the abstraction gains exactly n",
                z3.Implies(
                    ok,
                    z3.And(
                        _occ(after[level]),
                        *[_occ(a) == _occ(b) for a, b in zip(after[:level], pt.w, strict=False)],
                    ),
                ),
            )
        )
        claims.append(("on failure, every word is as before", z3.Implies(z3.Not(ok), same)))
        cases = [("the alloc succeeds", ok), ("n is taken", z3.Not(pt.w[level] == 0))]
        if level > 0:
            cases.append(
                ("an ancestor is a block: the climb rolls back", z3.Or([z3.BoolVal(False), *failed_at]))
            )
        return Query(pt.premises, claims, _explain(v, pt, after, "alloc"), (), cases)

    return build


def _free(depth: int, level: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        pt = path_tree(v, depth, level)
        after = sequential.free_path(v.transitions, TERMS, pt.w, pt.sides, pt.within())
        claims = [(f"after free, {name}", c) for name, c in pt.path_ok(v.node_ok, after)]
        claims.append(
            (
                "the abstraction loses exactly n",
                z3.And(
                    z3.Not(_occ(after[level])),
                    *[_occ(a) == _occ(b) for a, b in zip(after[:level], pt.w, strict=False)],
                ),
            )
        )
        cases = [("n is a block whose buddy is free", _occ(pt.w[level]))]
        if level > 0:
            cases.append(("n's buddy is taken", tree.taken(pt.buddies[level])))
        return Query([*pt.premises, _occ(pt.w[level])], claims, _explain(v, pt, after, "free"), (), cases)

    return build


def _whole_tree(depth: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        ml = z3.BitVec("max_level", _LEVEL_BITS)
        nodes = g.all_nodes(depth)
        w: list[Any] = [None] + [word(f"w{x}") for x in nodes]
        premises: list[Any] = [z3.ULE(ml, depth)]
        above = {lvl: z3.ULT(z3.BitVecVal(lvl, _LEVEL_BITS), ml) for lvl in range(depth + 1)}
        for x in nodes:
            lvl = g.level(x)
            local = tree.leaf_ok(w[x], Z) if lvl == depth else v.node_ok(w[x], w[g.left(x)], w[g.right(x)], Z)
            premises.append(z3.If(above[lvl], w[x] == 0, local))
        occ = [None] + [_occ(w[x]) for x in nodes]
        down: list[Any] = [None] * len(w)
        for x in reversed(nodes):
            down[x] = occ[x] if g.level(x) == depth else z3.Or(occ[x], down[g.left(x)], down[g.right(x)])
        up: list[Any] = [None] * len(w)
        for x in nodes:
            up[x] = occ[x] if x == g.ROOT else z3.Or(occ[x], up[g.parent(x)])
        exact, meaning, disjoint = [], [], []
        for x in nodes:
            lvl = g.level(x)
            if lvl == depth:
                canon = z3.If(
                    occ[x], z3.BitVecVal(bits.BUSY, bits.WORD_BITS), z3.BitVecVal(0, bits.WORD_BITS)
                )
            else:
                canon = z3.If(
                    occ[x],
                    z3.BitVecVal(bits.BUSY, bits.WORD_BITS),
                    z3.If(
                        down[g.left(x)],
                        z3.BitVecVal(bits.OCC_LEFT, bits.WORD_BITS),
                        z3.BitVecVal(0, bits.WORD_BITS),
                    )
                    | z3.If(
                        down[g.right(x)],
                        z3.BitVecVal(bits.OCC_RIGHT, bits.WORD_BITS),
                        z3.BitVecVal(0, bits.WORD_BITS),
                    ),
                )
            if x != g.ROOT:
                canon = z3.If(up[g.parent(x)], z3.BitVecVal(0, bits.WORD_BITS), canon)
                disjoint.append(z3.Not(z3.And(occ[x], up[g.parent(x)])))
            exact.append(z3.Implies(z3.Not(above[lvl]), w[x] == canon))
            meaning.append(z3.Implies(z3.Not(above[lvl]), tree.taken(w[x]) == down[x]))
        claims = [
            ("taken(w[x]) iff x's subtree holds a live block", z3.And(meaning)),
            ("no live block lies under another", z3.And(disjoint or [True])),
            ("the words are exactly the canonical encoding of the live blocks", z3.And(exact)),
            (
                "no live block above max_level",
                z3.And([z3.Implies(above[g.level(x)], z3.Not(occ[x])) for x in nodes]),
            ),
        ]

        def explain(m: z3.ModelRef) -> str:
            words = [0] + [val(m, w[x]) for x in nodes]
            return f"  max_level {val(m, ml)}\n" + tree.render(words, depth)

        return Query(premises, claims, explain, [*(w[x] == 0 for x in nodes)])

    return build


Builder = Callable[[int, int], Callable[[Variant], Query]]
"""``(depth, level) -> build``: one refinement query of a tree of ``depth``, a node of ``level``."""


def path_obligations(
    depth: int,
    prefix: str,
    whole: tuple[str, str, Callable[[int], Callable[[Variant], Query]]],
    alloc: Builder,
    free: Builder,
) -> list[Obligation]:
    """The refinement obligations of one word family for a tree of ``depth``: the whole-tree one
    (``whole``: name, claim, builder), then per level ``{prefix}_alloc_L{l}`` and ``{prefix}_free_L{l}``
    (``refinement``'s five-bit words and ``counted_refine``'s counted ones share this list)."""
    name, claim, build = whole
    out = [Obligation(name, "refine", depth, claim, build(depth))]
    for lvl in range(depth + 1):
        out.append(
            Obligation(
                f"{prefix}_alloc_L{lvl}",
                "refine",
                depth,
                f"a sequential alloc attempt at a node of level {lvl} refines spec.step(Alloc)",
                alloc(depth, lvl),
            )
        )
        out.append(
            Obligation(
                f"{prefix}_free_L{lvl}",
                "refine",
                depth,
                f"a sequential free of a block of level {lvl} refines spec.step(Free)",
                free(depth, lvl),
            )
        )
    return out


def obligations(depth: int) -> list[Obligation]:
    """The refinement obligations for a tree of ``depth``: one per level for alloc and free."""
    whole = (
        "tree_local_global",
        "node_ok everywhere implies disjoint blocks and an exact abstraction",
        _whole_tree,
    )
    return path_obligations(depth, "refine", whole, _alloc, _free)
