"""Lemmas about the abstract allocator of ``model/spec.py``, encoded in z3 for one depth at a time.

Encoding. A spec state (a set of live blocks) is one z3 Bool per node, ``live[x]``, all
symbolic, so one query covers every state; ``max_level`` is symbolic too (every
``max_order``). Two blocks overlap exactly when one is an ancestor of the other
(``geometry.overlaps``), so::

    up[x]   = live[x] or up[parent(x)]              some live block is x or an ancestor of x
    down[x] = live[x] or down[2x] or down[2x+1]     some live block is x or a descendant
    is_free(x) = not up[x] and not down[x]          (spec.is_free)

The block an operation acts on is the *leftmost node of each level*, one claim per level.
That covers every node by symmetry: for a node ``n`` of level ``L``, swapping the two
children of each ancestor of ``n`` that ``n`` descends to the right of maps the tree onto
itself, keeps every level, parent and ancestor relation (hence overlaps, ``is_free`` and
disjointness), and sends ``n`` to the leftmost node of level ``L``; a counterexample at ``n``
would be one at the leftmost node. (A symbolic ``n`` was tried first: it is exact without
the symmetry argument but took 150 s at depth 10 against 0.1 s.) The page arithmetic (inside
the arena, aligned) is checked for a symbolic node of any level.

``tests/test_proofs_spec.py`` checks this encoding against ``model/spec.py`` on concrete states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import z3

from nbbs.model import geometry as g
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import SpecRules, Variant
from nbbs.proofs._z3 import Query, val

_LEVEL_BITS = 8


@dataclass(frozen=True)
class SpecState:
    """A symbolic spec state of a tree of ``depth``: ``live[x]`` for every node ``x`` (index 0 unused).

    A state made from ``base`` by changing a few nodes reuses ``base``'s terms wherever their
    inputs are the very same terms, so building the state after one operation costs a path,
    not a tree (z3 term construction from Python is the bottleneck at depth 10).
    """

    depth: int
    live: Sequence[Any]
    base: SpecState | None = None
    _memo: dict[str, list[Any]] = field(default_factory=dict, compare=False, repr=False)

    def nodes(self) -> range:
        """Every node of the tree."""
        return g.all_nodes(self.depth)

    @cached_property
    def up(self) -> list[Any]:
        """``up[x]``: some live block is ``x`` or an ancestor of ``x``."""
        b = self.base
        up: list[Any] = [z3.BoolVal(False)] * len(self.live)
        for x in self.nodes():
            if x == g.ROOT:
                up[x] = self.live[x]
            elif b is not None and self.live[x] is b.live[x] and up[g.parent(x)] is b.up[g.parent(x)]:
                up[x] = b.up[x]
            else:
                up[x] = z3.Or(self.live[x], up[g.parent(x)])
        return up

    @cached_property
    def down(self) -> list[Any]:
        """``down[x]``: some live block is ``x`` or a descendant of ``x``."""
        b = self.base
        down: list[Any] = [z3.BoolVal(False)] * len(self.live)
        for x in reversed(self.nodes()):
            if g.level(x) == self.depth:
                down[x] = self.live[x]
            elif (
                b is not None
                and self.live[x] is b.live[x]
                and down[g.left(x)] is b.down[g.left(x)]
                and down[g.right(x)] is b.down[g.right(x)]
            ):
                down[x] = b.down[x]
            else:
                down[x] = z3.Or(self.live[x], down[g.left(x)], down[g.right(x)])
        return down

    def no_live_under_live(self, rules: SpecRules) -> list[Any]:
        """Per node ``x``: not (``x`` is live and so is one of its proper ancestors)."""
        key = rules.disjoint
        if key in self._memo:
            return self._memo[key]
        b = self.base
        above = self.up if key == "ancestors" else self.live  # a mutant looks at the parent only
        out: list[Any] = [z3.BoolVal(True)] * len(self.live)
        for x in self.nodes():
            if x == g.ROOT:
                continue
            p = g.parent(x)
            if (
                b is not None
                and self.live[x] is b.live[x]
                and above[p] is (b.up if key == "ancestors" else b.live)[p]
            ):
                out[x] = b.no_live_under_live(rules)[x]
            else:
                out[x] = z3.Not(z3.And(self.live[x], above[p]))
        self._memo[key] = out
        return out

    def changed(self, changes: dict[int, bool]) -> SpecState:
        """This state with some nodes set live (True) or not (False)."""
        live = list(self.live)
        for x, v in changes.items():
            live[x] = z3.BoolVal(v)
        return SpecState(self.depth, live, self)


def fresh_state(depth: int, name: str) -> SpecState:
    """A state with one free Bool per node."""
    live = [z3.BoolVal(False)] + [z3.Bool(f"{name}{x}") for x in g.all_nodes(depth)]
    return SpecState(depth, live)


def node_var(depth: int, name: str) -> z3.BitVecRef:
    """A symbolic node of a tree of ``depth`` (wide enough for every index)."""
    return z3.BitVec(name, depth + 2)


def level_var(name: str) -> z3.BitVecRef:
    """A symbolic level (``max_level``)."""
    return z3.BitVec(name, _LEVEL_BITS)


def _bv(x: int, width: int) -> z3.BitVecRef:
    return z3.BitVecVal(x, width)


def is_node(depth: int, n: z3.BitVecRef) -> z3.BoolRef:
    """``n`` is a node of the tree: ``1 <= n < node_count(depth)``."""
    w = n.size()
    return z3.And(z3.UGE(n, _bv(g.ROOT, w)), z3.ULT(n, _bv(g.node_count(depth), w)))


def inv_disjoint(st: SpecState, rules: SpecRules) -> z3.BoolRef:
    """``spec.inv_disjoint``, in its linear form: no live block has a live proper ancestor.

    Two blocks overlap exactly when one is an ancestor of the other, so this says no two
    live blocks overlap; ``spec_disjoint_forms`` proves it equal to the pairwise form.
    """
    return z3.And(st.no_live_under_live(rules)[g.ROOT + 1 :] or [True])


def inv_within(st: SpecState, max_level: z3.BitVecRef) -> z3.BoolRef:
    """``spec.inv_within_max_order``: no live block above ``max_level``."""
    return z3.And(
        [
            z3.Implies(
                z3.ULT(z3.BitVecVal(lvl, _LEVEL_BITS), max_level),
                z3.Not(z3.Or([st.live[x] for x in g.nodes_at(lvl)])),
            )
            for lvl in range(st.depth + 1)
        ]
    )


def aligned_inside(depth: int, n: z3.BitVecRef) -> z3.BoolRef:
    """``spec.inv_inside`` and ``inv_aligned`` for block ``n``: its pages lie in the arena and start at
    a multiple of its size (``geometry.first_page_at`` on the symbolic node, per level)."""
    w = n.size() + depth + 2
    wide = z3.ZeroExt(depth + 2, n)
    cases = []
    for lvl in range(depth + 1):
        on_level = z3.And(
            z3.UGE(n, _bv(g.first_node(lvl), n.size())), z3.ULT(n, _bv(2 * g.first_node(lvl), n.size()))
        )
        start = g.first_page_at(depth, wide, lvl)
        size = _bv(1 << (depth - lvl), w)
        cases.append(
            z3.Implies(on_level, z3.And(z3.URem(start, size) == 0, z3.ULE(start + size, _bv(1 << depth, w))))
        )
    return z3.And(is_node(depth, n), *cases)


def is_free(st: SpecState, rules: SpecRules, x: int) -> z3.BoolRef:
    """``spec.is_free(state, x)``, as the rules check it."""
    checks = []
    if "ancestors" in rules.alloc_checks:
        checks.append(z3.Not(st.up[x]))
    if "descendants" in rules.alloc_checks:
        checks.append(z3.Not(st.down[x]))
    return z3.And(checks)


def after_alloc(st: SpecState, rules: SpecRules, n: int) -> SpecState:
    """The state after ``Alloc(order, n)`` (``state | {n}``)."""
    # A mutant may hand out the parent's range instead.
    return st.changed({n if rules.alloc_effect == "add" else g.parent(n): True})


def after_free(st: SpecState, rules: SpecRules, n: int) -> SpecState:
    """The state after ``Free(n)`` (``state - {n}``)."""
    if rules.free_effect == "keep":
        return st
    if rules.free_effect == "merge" and n != g.ROOT:  # a mutant: the parent's range becomes live instead
        return st.changed({n: False, g.parent(n): True})
    return st.changed({n: False})


def _live(m: z3.ModelRef, st: SpecState) -> list[int]:
    return sorted(x for x in st.nodes() if z3.is_true(m.eval(st.live[x], model_completion=True)))


def _explain(
    st: SpecState, ml: z3.BitVecRef, posts: Callable[[], dict[str, SpecState]]
) -> Callable[[z3.ModelRef], str]:
    def explain(m: z3.ModelRef) -> str:
        lines = [f"  depth {st.depth}, max_level {val(m, ml)}", f"  live blocks before: {_live(m, st)}"]
        lines += [f"  {name}: {_live(m, post)}" for name, post in posts().items()]
        return "\n".join(lines)

    return explain


def representatives(depth: int, lowest: int = 0) -> list[int]:
    """The leftmost node of each level from ``lowest`` down: every node is one of these up to symmetry."""
    return [g.first_node(lvl) for lvl in range(lowest, depth + 1)]


def _level_ok(x: int, ml: z3.BitVecRef) -> z3.BoolRef:
    return z3.ULE(ml, z3.BitVecVal(g.level(x), _LEVEL_BITS))


def _setup(depth: int, rules: SpecRules) -> tuple[SpecState, z3.BitVecRef, list[Any]]:
    st, ml = fresh_state(depth, "live"), level_var("max_level")
    return st, ml, [z3.ULE(ml, depth), inv_disjoint(st, rules), inv_within(st, ml)]


def _alloc(depth: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        st, ml, premises = _setup(depth, v.spec)
        n_any = node_var(depth, "n")
        cases, claims, posts = [], [], {}
        for n in representatives(depth):
            ok = z3.And(_level_ok(n, ml), is_free(st, v.spec, n))
            post = posts[f"after alloc of {n}"] = after_alloc(st, v.spec, n)
            cases.append((f"alloc of {n} allowed", ok))
            claims.append((f"alloc of {n}: blocks stay disjoint", z3.Implies(ok, inv_disjoint(post, v.spec))))
            claims.append(
                (f"alloc of {n}: blocks stay within max_order", z3.Implies(ok, inv_within(post, ml)))
            )
        claims.append(
            (
                "every node lies inside the arena, aligned to its size",
                z3.Implies(is_node(depth, n_any), aligned_inside(depth, n_any)),
            )
        )
        return Query(
            premises, claims, _explain(st, ml, lambda: posts), [z3.Not(z3.Or(list(st.live[1:])))], cases
        )

    return build


def _free(depth: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        st, ml, premises = _setup(depth, v.spec)
        cases, claims, posts = [], [], {}
        for n in representatives(depth):
            post = posts[f"after free of {n}"] = after_free(st, v.spec, n)
            cases.append((f"{n} live", st.live[n]))
            claims.append(
                (f"free of {n}: blocks stay disjoint", z3.Implies(st.live[n], inv_disjoint(post, v.spec)))
            )
            claims.append(
                (f"free of {n}: blocks stay within max_order", z3.Implies(st.live[n], inv_within(post, ml)))
            )
        return Query(premises, claims, _explain(st, ml, lambda: posts), (), cases)

    return build


def _coalesce(depth: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        st, ml, premises = _setup(depth, v.spec)
        above = st.up
        cases, claims, posts = [], [], {}
        for n in representatives(depth, 1):
            b, p = g.buddy(n), g.parent(n)
            post = posts[f"after freeing {n} and {b}"] = after_free(after_free(st, v.spec, n), v.spec, b)
            hyp = z3.And(st.live[n], st.live[b], _level_ok(p, ml))
            cases.append((f"{n} and {b} live", hyp))
            claims.append(
                (f"after freeing {n} and {b}, {p} is allocatable", z3.Implies(hyp, is_free(post, v.spec, p)))
            )
        claims.append(
            (
                "spec.coalesces: two free buddies under no live block have a free parent",
                z3.And(
                    [
                        z3.Implies(
                            z3.And(
                                is_free(st, v.spec, x),
                                is_free(st, v.spec, g.buddy(x)),
                                z3.Not(above[g.parent(x)]),
                            ),
                            is_free(st, v.spec, g.parent(x)),
                        )
                        for x in st.nodes()
                        if x != g.ROOT
                    ]
                    or [True]
                ),
            )
        )
        return Query(premises, claims, _explain(st, ml, lambda: posts), (), cases)

    return build


def _split(depth: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        st, ml, premises = _setup(depth, v.spec)
        cases, claims, posts = [], [], {}
        for p in representatives(depth)[:-1]:
            hyp = z3.And(_level_ok(p, ml), is_free(st, v.spec, p))
            cases.append((f"{p} allocatable", hyp))
            for n in (g.left(p), g.right(p)):
                post = posts[f"after alloc of {n}"] = after_alloc(st, v.spec, n)
                claims.append(
                    (f"child {n} of free {p} is allocatable", z3.Implies(hyp, is_free(st, v.spec, n)))
                )
                claims.append(
                    (
                        f"after allocating {n}, its buddy {g.buddy(n)} is allocatable",
                        z3.Implies(hyp, is_free(post, v.spec, g.buddy(n))),
                    )
                )
                claims.append(
                    (
                        f"after allocating {n}, blocks stay disjoint",
                        z3.Implies(hyp, inv_disjoint(post, v.spec)),
                    )
                )
        return Query(
            premises, claims, _explain(st, ml, lambda: posts), [z3.Not(z3.Or(list(st.live[1:])))], cases
        )

    return build


def _forms(depth: int) -> Callable[[Variant], Query]:
    def build(v: Variant) -> Query:
        st = fresh_state(depth, "live")
        pairwise = z3.And(
            [z3.Not(z3.And(st.live[x], st.live[a])) for x in st.nodes() for a in g.ancestors(x)] or [True]
        )
        return Query(
            [],
            [
                (
                    "no live block under a live block == no two live blocks overlap",
                    inv_disjoint(st, v.spec) == pairwise,
                )
            ],
            _explain(st, level_var("max_level"), dict),
        )

    return build


def obligations(depth: int) -> list[Obligation]:
    """The spec lemmas for a tree of ``depth``."""
    return [
        Obligation(
            "spec_alloc",
            "spec",
            depth,
            "allocating a block the spec allows keeps blocks disjoint, aligned, inside",
            _alloc(depth),
        ),
        Obligation("spec_free", "spec", depth, "freeing a live block keeps blocks disjoint", _free(depth)),
        Obligation(
            "spec_coalesce",
            "spec",
            depth,
            "freeing both buddies makes the parent's range allocatable as one block",
            _coalesce(depth),
        ),
        Obligation(
            "spec_split",
            "spec",
            depth,
            "allocating a child of a free block leaves its buddy allocatable",
            _split(depth),
        ),
        Obligation(
            "spec_disjoint_forms",
            "spec",
            depth,
            "the linear disjointness used here equals the spec's pairwise one",
            _forms(depth),
        ),
    ]
