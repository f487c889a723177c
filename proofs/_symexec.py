"""Run the step machine's own code on symbolic nodes, levels and depths: one run per path.

``steps.Machine`` branches with Python ``if`` on its locals (``level(child) > max_level``,
``left - by <= 0``) and computes levels with ``int.bit_length``. To reason about a node of
a symbolic level in a tree of a symbolic depth, ``explore(f)`` runs ``f`` (e.g. a call of
``Machine.branches`` on an ``OpState`` whose nodes are z3 bit-vectors) once per *path*: while
it runs, a z3 bit-vector gets ``bit_length`` (``geometry.level_any`` plus one: the tree's
arithmetic written once), a z3 Boolean's ``bool()`` answers from a list of decisions
instead of raising, and a bit-vector's ``bool()`` is the decision "not zero", as an int's;
every decision not yet taken is explored both ways (depth first). Each
path comes back with the conjunction of the conditions it assumed, so the machine's code is
not copied: a change to ``steps.py`` (another branch, another pc) is picked up as it is.

Only decisions z3 cannot settle by ``simplify`` fork; an infeasible path (its conditions
unsatisfiable) is harmless, as every obligation is an implication under the path condition.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import z3

from nbbs.model import geometry as g

T = TypeVar("T")

MAX_PATHS = 256
"""More paths than this from one call means the explored code loops on a symbolic value."""


class _Run:
    def __init__(self, prefix: list[bool]) -> None:
        self.prefix = prefix
        self.taken: list[bool] = []
        self.conds: list[Any] = []

    def decide(self, c: z3.BoolRef) -> bool:
        s = z3.simplify(c)
        if z3.is_true(s):
            return True
        if z3.is_false(s):
            return False
        k = len(self.taken)
        d = self.prefix[k] if k < len(self.prefix) else True
        self.taken.append(d)
        self.conds.append(c if d else z3.Not(c))
        return d


@contextlib.contextmanager
def _patched(run: _Run) -> Iterator[None]:
    bool_before = z3.BoolRef.__bool__
    bv_bool_before = z3.BitVecRef.__dict__.get("__bool__")
    had_bit_length = hasattr(z3.BitVecRef, "bit_length")
    z3.BoolRef.__bool__ = lambda self: run.decide(self)
    # An int's truth value (``op.child and ...``: is there a node) is "not zero".
    z3.BitVecRef.__bool__ = lambda self: run.decide(self != 0)
    z3.BitVecRef.bit_length = lambda self: g.level_any(self, z3.If, self.size()) + 1
    try:
        yield
    finally:
        z3.BoolRef.__bool__ = bool_before
        if bv_bool_before is None:
            del z3.BitVecRef.__bool__
        else:
            z3.BitVecRef.__bool__ = bv_bool_before
        if not had_bit_length:
            del z3.BitVecRef.bit_length


def explore(f: Callable[[], T]) -> list[tuple[Any, T]]:
    """Every path of ``f()``: (the conjunction of the conditions it assumed, what it returned)."""
    out: list[tuple[Any, T]] = []
    todo: list[list[bool]] = [[]]
    while todo:
        run = _Run(todo.pop())
        with _patched(run):
            res = f()
        for k in range(len(run.prefix), len(run.taken)):
            todo.append([*run.taken[:k], False])
        out.append((z3.And(run.conds) if run.conds else z3.BoolVal(True), res))
        if len(out) > MAX_PATHS:
            raise RuntimeError(
                f"[proofs internal bug] more than {MAX_PATHS} paths: a loop on a symbolic value"
            )
    return out
