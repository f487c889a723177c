"""Refinement of whole sequential operations for ``counted``, and why its local invariant is enough.

The quiescent invariant of ``counted`` is the bundle's ``node_ok`` (``bits.counted``): a block
is ``BUSY`` with zero children; any other inner node has no status bit and each side's count
is ``[that child is a block] + both counts of that child``. Nodes above ``max_level`` are
zero, pages are ``0`` or ``BUSY``.

The words in z3 are ``bits.counted(width)`` words with ``width = depth + 1``: a side of a node
of level ``k`` counts at most ``2**(depth - k - 1)`` blocks (the pages below it, the blocks
being disjoint), at most ``2**(depth - 1)`` at the root, and a sequential operation adds at
most one claim, so ``2**(depth - 1) + 1 < 2**(depth + 1)``: no count wraps, and the
operations do exactly what they do with the allocator's ``bits.COUNT_BITS``-bit counts.

``ctree_local_global`` (whole tree, one depth): ``node_ok`` everywhere implies (a) each
side's count is the number of blocks in that child's subtree (at most its pages), (b) no
block lies under another, (c) no block above ``max_level``; so the abstraction (the ``OCC``
words) is a set of disjoint blocks and every word is determined by it.

``crefine_alloc_L{l}`` / ``crefine_free_L{l}`` (one depth, one query per level ``l`` of the
chosen node): the tree around the path from a symbolic node ``n`` of level ``l`` to the root
(path words, each path node's buddy, ``n``'s children; each constrained by ``node_ok`` with
symbolic children and by the count bound (a) gives), a symbolic ``max_level <= l``; the
operation is ``sequential.alloc_path`` / ``free_path`` with the variant's transitions (the
allocator's code as straight-line terms, tested against ``impl/nbbs.py``). Claims: the alloc
succeeds iff ``spec.is_free(abstraction, n)``; on success every path node satisfies the
invariant again and the abstraction gains exactly ``n``; on failure every word is as before.
A free of a block keeps the invariant and the abstraction loses exactly ``n``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from nbbs.model import bits, tree
from nbbs.model import geometry as g
from nbbs.proofs import sequential
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, Z, as_shift, terms, val
from nbbs.proofs.refinement import _LEVEL_BITS, PathTree, path_obligations  # the same path, other words


def width_for(depth: int) -> int:
    """The count width the refinement uses at ``depth`` (see the module docstring)."""
    return depth + 1


def occ(w: Any) -> Any:
    """The word is a block."""
    return w & bits.OCC != 0


def count(w: Any, s: int, width: int) -> Any:
    """Side ``s``'s count (1 = left: ``c_L``, 0 = right: ``c_R``), extracted."""
    lo = bits.COUNT_SHIFT + s * width
    return z3.Extract(lo + width - 1, lo, w)


def bounded(w: Any, level: int, depth: int, width: int) -> Any:
    """The count bound of a node of ``level``: each side counts at most the pages below it."""
    if level >= depth:
        return z3.BoolVal(True)
    most = 1 << (depth - level - 1)
    return z3.And([z3.ULE(count(w, s, width), most) for s in (0, 1)])


@dataclass
class CPathTree(PathTree):
    """``refinement.PathTree`` over ``counted`` words of the bundle ``t`` (its count width)."""

    t: bits.Transitions = bits.COUNTED

    def word(self, name: str) -> Any:
        return z3.BitVec(name, self.t.word_bits)

    def counted_ok(self, w: list[Any]) -> list[tuple[str, Any]]:
        """The counted quiescent invariant at every path node, with path words ``w``."""
        assert self.t.node_ok is not None
        return self.path_ok(self.t.node_ok, w)

    def spec_free(self) -> Any:
        """``spec.is_free(abstraction, n)``: no block on the path, nothing under ``n`` (by
        ``ctree_local_global``: ``n``'s children are zero)."""
        return z3.And(*[z3.Not(occ(x)) for x in self.w], *[c == 0 for c in self.kids])


def _shape(pt: CPathTree, x: Any, level: int, name: str) -> list[Any]:
    """``x`` is the word of an untouched node of ``level`` in a tree satisfying the invariant."""
    assert pt.t.node_ok is not None
    if level == pt.depth:
        return [tree.leaf_ok(x, Z)]
    local = pt.t.node_ok(x, pt.word(f"{name}_l"), pt.word(f"{name}_r"), Z)
    return [local, bounded(x, level, pt.depth, pt.t.count_bits)]


def path_tree(v: Variant, depth: int, level: int) -> CPathTree:
    """A symbolic path tree of ``counted`` words satisfying the quiescent invariant around the path."""
    t = v.at(width_for(depth))
    n = z3.BitVec("n", level + 2)  # one spare bit: z3's >> in geometry.parent is arithmetic
    ml = z3.BitVec("max_level", _LEVEL_BITS)
    nodes = [n]
    for _ in range(level):
        nodes.append(g.parent(nodes[-1]))
    nodes = nodes[::-1]
    sides: list[Any] = [None] + [as_shift(g.side(nodes[k]), t.word_bits) for k in range(1, level + 1)]

    def mk(name: str) -> Any:
        return z3.BitVec(name, t.word_bits)

    w = [mk(f"w{k}") for k in range(level + 1)]
    buddies: list[Any] = [None] + [mk(f"b{k}") for k in range(1, level + 1)]
    kids = [] if level == depth else [mk("c_left"), mk("c_right")]
    pt = CPathTree(depth, level, n, ml, w, sides, buddies, kids, [], t)
    pt.premises += [
        z3.UGE(n, z3.BitVecVal(g.first_node(level), level + 2)),
        z3.ULT(n, z3.BitVecVal(2 * g.first_node(level), level + 2)),
        z3.ULE(ml, level),
    ]
    for k in range(1, level + 1):
        above = z3.ULT(z3.BitVecVal(k, _LEVEL_BITS), ml)
        pt.premises.append(z3.If(above, buddies[k] == 0, z3.And(_shape(pt, buddies[k], k, f"b{k}"))))
    for k, c in enumerate(kids):
        pt.premises += _shape(pt, c, level + 1, f"c{k}")
    for k in range(level + 1):
        pt.premises.append(bounded(w[k], k, depth, t.count_bits))
    pt.premises += [c for _, c in pt.counted_ok(w)]
    return pt


def _explain(pt: CPathTree, after: list[Any], op: str) -> Callable[[z3.ModelRef], str]:
    show = pt.t.show

    def explain(m: z3.ModelRef) -> str:
        nodes = [val(m, x) for x in pt.node_path_nodes()]
        lines = [
            f"  {op} at node {nodes[-1]} (level {pt.level}) of a depth-{pt.depth} tree, "
            f"max_level {val(m, pt.max_level)} (counted words, {pt.t.count_bits}-bit counts)",
            "  path, root first:        word before           word after            | buddy",
        ]
        for k in range(pt.level + 1):
            bud = "" if k == 0 else f"| {g.buddy(nodes[k])}: {show(val(m, pt.buddies[k]))}"
            lines.append(
                f"    level {k} node {nodes[k]:>4}: {show(val(m, pt.w[k])):<21} "
                f"{show(val(m, after[k])):<21} {bud}"
            )
        for c, name in zip(pt.kids, ("left", "right"), strict=False):
            lines.append(f"    {name} child of n: {show(val(m, c))}")
        return "\n".join(lines)

    return explain


def _alloc(depth: int, level: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        pt = path_tree(v, depth, level)
        after, ok, failed_at = sequential.alloc_path(pt.t, terms(pt.t.word_bits), pt.w, pt.sides, pt.within())
        same = z3.And([a == b for a, b in zip(after, pt.w, strict=True)])
        claims = [("succeeds iff the spec allows n", ok == pt.spec_free())]
        claims += [(f"on success, {name}", z3.Implies(ok, c)) for name, c in pt.counted_ok(after)]
        claims.append(
            (
                "on success, the abstraction gains exactly n",
                z3.Implies(
                    ok,
                    z3.And(
                        occ(after[level]),
                        *[occ(a) == occ(b) for a, b in zip(after[:level], pt.w, strict=False)],
                    ),
                ),
            )
        )
        claims.append(("on failure, every word is as before", z3.Implies(z3.Not(ok), same)))
        cases = [("the alloc succeeds", ok), ("n is taken", pt.w[level] != 0)]
        if level > 0:
            cases.append(
                ("an ancestor is a block: the climb rolls back", z3.Or([z3.BoolVal(False), *failed_at]))
            )
        return Query(pt.premises, claims, _explain(pt, after, "alloc"), (), cases, split=True)

    return build


def _free(depth: int, level: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        pt = path_tree(v, depth, level)
        after = sequential.free_path(pt.t, terms(pt.t.word_bits), pt.w, pt.sides, pt.within())
        claims = [(f"after free, {name}", c) for name, c in pt.counted_ok(after)]
        claims.append(
            (
                "the abstraction loses exactly n",
                z3.And(
                    z3.Not(occ(after[level])),
                    *[occ(a) == occ(b) for a, b in zip(after[:level], pt.w, strict=False)],
                ),
            )
        )
        cases = [("n is a block", occ(pt.w[level]))]
        if level > 0:
            cases.append(("n's buddy holds a block", pt.buddies[level] != 0))
        return Query(
            [*pt.premises, occ(pt.w[level])], claims, _explain(pt, after, "free"), (), cases, split=True
        )

    return build


def _whole_tree(depth: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        t = v.at(width_for(depth))
        assert t.node_ok is not None
        width = t.count_bits
        wide = depth + 2  # enough for any number of nodes of the tree
        ml = z3.BitVec("max_level", _LEVEL_BITS)
        nodes = g.all_nodes(depth)
        w: list[Any] = [None] + [z3.BitVec(f"w{x}", t.word_bits) for x in nodes]
        premises: list[Any] = [z3.ULE(ml, depth)]
        above = {lvl: z3.ULT(z3.BitVecVal(lvl, _LEVEL_BITS), ml) for lvl in range(depth + 1)}
        for x in nodes:
            lvl = g.level(x)
            local = tree.leaf_ok(w[x], Z) if lvl == depth else t.node_ok(w[x], w[g.left(x)], w[g.right(x)], Z)
            premises.append(z3.If(above[lvl], w[x] == 0, local))
        one = z3.BitVecVal(1, wide)
        zero = z3.BitVecVal(0, wide)
        blocks: list[Any] = [None] * len(w)  # blocks in x's subtree, x included
        for x in reversed(nodes):
            mine = z3.If(occ(w[x]), one, zero)
            blocks[x] = mine if g.level(x) == depth else mine + blocks[g.left(x)] + blocks[g.right(x)]
        counts, nested, bound = [], [], []
        for x in nodes:
            lvl = g.level(x)
            if lvl == depth:
                continue
            for s, child in ((1, g.left(x)), (0, g.right(x))):
                c = z3.ZeroExt(wide - width, count(w[x], s, width))
                counts.append(z3.Implies(z3.Not(above[lvl]), c == blocks[child]))
                bound.append(z3.ULE(blocks[child], 1 << (depth - lvl - 1)))
            nested.append(z3.Implies(occ(w[x]), blocks[x] == 1))
        claims = [
            ("each side's count is the number of blocks below that child", z3.And(counts or [True])),
            ("no block lies under another", z3.And(nested or [True])),
            ("a side holds at most as many blocks as it has pages", z3.And(bound or [True])),
            (
                "no block above max_level",
                z3.And([z3.Implies(above[g.level(x)], z3.Not(occ(w[x]))) for x in nodes]),
            ),
        ]

        def explain(m: z3.ModelRef) -> str:
            words = [0] + [val(m, w[x]) for x in nodes]
            return f"  max_level {val(m, ml)}\n" + tree.render(words, depth, t)

        return Query(premises, claims, explain, [*(w[x] == 0 for x in nodes)])

    return build


def obligations(depth: int) -> list[Obligation]:
    """The ``counted`` refinement obligations for a tree of ``depth``: one per level for alloc and free."""
    whole = (
        "ctree_local_global",
        "node_ok everywhere: counts = blocks below, blocks disjoint, none above max_level",
        _whole_tree,
    )
    return path_obligations(depth, "crefine", whole, _alloc, _free)
