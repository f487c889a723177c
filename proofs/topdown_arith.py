"""``top-down-node``'s and ``top-down``'s last hand-argued pieces in z3, as ``counted``'s are:
lock-freedom's arithmetic, the inductions of the lemmas ``below``, ``up``, ``down`` unrolled, and
the thread symmetry of the bounded queries. Nothing here is a new prover: each family is the
``counted`` module's, instantiated with the top-down shape.

**Lock-freedom's arithmetic** (``counted_lfarith`` with ``topdown_every``'s shape). The step
facts ``tnevery_lfbound@{pc}`` / ``tdevery_lfbound@{pc}`` (scan mode: ``{p}_scan_lfbound@{pc}``)
are ``counted_lfarith._step_facts`` in the top-down encoding: the measure ``(left, rank)`` with
``topdown_every.rank`` is never negative; an alloc in flight has ``max_level <= level(n) <= D``,
``1 <= left <= 2**level(n)`` (attempt mode ``left = 1``), ``rank <= 4 (level(n) - max_level) +
4``; a free ``left = 0``, ``rank <= D - max_level + 1``; ``mu = 128 left + rank <= mu_max =
128 * 2**D + 4 (D - max_level) + 4`` (attempt mode ``128 + ...``); every step of an operation
in flight leaves the measure no higher (a failed CAS included: the descent's lost CAS at the
anchor goes back to the ascent one level higher, a lower rank), a successful write strictly
lower from ``rank >= 1``; a completing alloc ends at ``(0, 0)``; an alloc stays on its level; a
start is within the bounds. The counter abstractions ``tlf_*`` are ``clf_*`` with the top-down
budget ``B = 4 (L - max_level) + 4`` in ``tlf_op_bounds`` (an attempt makes at most ``4 (D -
max_level) + 4`` successful writes, a free ``D - max_level + 1``, a scan of order ``o``
``2**(D-o) (4 (D - o - max_level) + 4)``); the other five hold for any ``B >= 2`` and any
``mu_max >= 0`` and are the same queries as ``counted``'s, listed again so the top-down
families stand alone. The global measure's steps (``{p}_lfglobal@{pc}``, ``nu <= 2``) are
``cc._lf_global`` with the shape, as for ``counted``: ``tlf_run_*`` turns them into the bound of
``T`` starts and fewer than ``(T + 1)(T mu_max + 1)(2T + 1)`` steps with no completion.

**The inductions, unrolled** (``counted_induction.unrolled``, an uninterpreted ``P``, heights or
path lengths ``0 .. 28``, ``QF_UFBV``):

* ``tind_below``: induction on subtree height ``D - level(x)`` over every node (``below``'s base
  is a page, ``tnevery_below_page@*``; its step reads both children, ``tnevery_below_node@*``);
* ``tind_up``: induction on ``level(x) - max_level`` over the nodes at or below ``max_level``
  (``tnevery_up``: the case ``level(x) = max_level`` needs no hypothesis, a deeper ``x`` uses it
  at ``parent(x)``);
* ``tind_down``: for a symbolic node ``b``, induction on ``level(b) - level(x) - 1`` (0 when
  ``x`` is at most one level above ``b``) over the nodes ``x`` at or below ``max_level``
  (``tnevery_down``: at distance 0 no hypothesis, further the hypothesis at the child of ``x``
  towards ``b``, ``ancestor_any(b, level(x) + 1)``).

Each measure is 0 exactly where the lemma's query uses no hypothesis, so the query is the
base and the step at once.

The top-down initial state needs no induction: ``{p}_init_node`` assumes each node's own
quiescent invariant (``node_ok`` reads a node and its children), which is what a quiescent tree
is, so nothing is chained (``counted``'s ``cind_height`` chains ``cevery_init_node`` because its
``NI`` counts whole subtrees). Left as rules of inference, as for ``counted``: chaining the
unrolled implications (universal instantiation, modus ponens) and instantiating ``P`` with the
lemma (``P(x)``: "in an ``Inv`` state, the lemma's conclusion at ``x``"; ``up``'s ``y`` and
``down``'s ``b`` are fixed parameters of ``P``).

**Thread symmetry** (``counted_sym`` with ``topdown_steps.invariant``): ``tnsym_*`` /
``tsym_*`` prove, per configuration, ``Inv`` symmetric under exchanging threads 0 and ``k``,
each step of thread ``k`` thread 0's relabelled, and each whole ``tnsteps_T{t}_t{k}@{pc}`` query
thread 0's relabelled: so thread 0's queries stand for every thread's
(``topdown_steps.obligations(..., symmetric=True)`` lists thread 0's only, with these;
``python bench/topdown_steps_run.py --symmetry`` runs that list). The top-down bounded encoding has no
linearization queries (``clin`` is ``counted``'s only), so ``lin=False``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import geometry as g
from nbbs.proofs import counted_induction as ci
from nbbs.proofs import counted_lfarith as lf
from nbbs.proofs import counted_sym
from nbbs.proofs import topdown_every as te
from nbbs.proofs import topdown_steps as ts
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, Z, val
from nbbs.proofs.counted_every import BITS, MAX_DEPTH, level

# -- lock-freedom's arithmetic -----------------------------------------------------------------


def _names(per_node: bool, subject: Variant | None) -> tuple[Variant, str, str]:
    v = subject or (ts.TOP_DOWN_NODE if per_node else ts.TOP_DOWN)
    return v, ("tnevery" if per_node else "tdevery"), ("top-down-node" if per_node else "top-down")


def shape(per_node: bool) -> Any:
    """The variant's every-depth shape (its rank, attempt budget and ``mu_shift``)."""
    return te.TOP_DOWN_NODE_SHAPE if per_node else te.TOP_DOWN_SHAPE


def lfbound_obligations(
    per_node: bool = True,
    scan: bool = False,
    subject: Variant | None = None,
    mu_bound: lf.MuBound | None = None,
) -> list[Obligation]:
    """``{p}_lfbound@{pc}`` (``{p}_scan_lfbound@{pc}`` in scan mode): the step facts the
    arithmetic uses, in the top-down encoding (``mu_bound``: a wrong ``mu_max``, for a test)."""
    v, p, fam = _names(per_node, subject)
    return lf.step_obligations(scan, mu_bound, shape=shape(per_node), prefix=p, subject=v, family=fam)


def arith_obligations() -> list[Obligation]:
    """``tlf_*``: the counter abstractions with the top-down budget (both top-down variants share
    their rank, hence one family)."""
    return lf.arith_obligations(te.TOP_DOWN_NODE_SHAPE, "tlf")


# -- the inductions, unrolled ------------------------------------------------------------------

Preds = Callable[[Any], tuple[Any, ...]]
"""The nodes whose ``lemma_h`` a step uses (a test passes a circular one)."""


def _p() -> Any:
    return z3.Function("P", z3.BitVecSort(BITS), z3.BoolSort())


def _prem(d: Any, ml: Any) -> list[Any]:
    return [d >= 1, d <= MAX_DEPTH, ml >= 0, ml <= d]


def _induction(
    d: Any,
    ml: Any,
    domain: Callable[[Any], Any],
    measure: Callable[[Any], Any],
    steps: Preds,
    texts: tuple[str, str, str],
    shown: tuple[tuple[str, Any], ...] = (),
    prem: tuple[Any, ...] = (),
) -> Query:
    """``counted_induction.unrolled`` for an uninterpreted ``P`` at a symbolic node ``x`` under
    ``prem`` (with ``D`` and ``max_level`` in range); a counterexample shows ``shown`` (the depth,
    and what else the lemma is about), ``x`` and the nodes the step used."""
    x = z3.BitVec("x", BITS)
    claims = ci.unrolled(_p(), x, domain, measure, steps, texts)
    used = steps(x)

    def explain(m: z3.ModelRef) -> str:
        about = [f"{name} {val(m, t)}" for name, t in (("depth", d), *shown)]
        return (
            f"  {', '.join(about)}, node x = {val(m, x)} (level {val(m, level(x))}), step uses nodes "
            + ", ".join(str(val(m, y)) for y in used)
        )

    return Query([*_prem(d, ml), *prem], claims, explain, split=True, logic="QF_UFBV")


def _below(preds: Preds | None = None) -> Query:
    d, ml = z3.BitVecs("D max_level", BITS)
    return _induction(
        d,
        ml,
        lambda y: g.in_tree(y, d, Z),
        lambda y: d - level(y),
        preds or (lambda y: (g.left(y), g.right(y))),
        (
            "height 0: below's base gives P at every page",
            "height {k}: below's step and height {h} at both children give P",
            f"every node has a height in 0..{MAX_DEPTH}",
        ),
    )


def _up(preds: Preds | None = None) -> Query:
    d, ml = z3.BitVecs("D max_level", BITS)
    return _induction(
        d,
        ml,
        lambda y: z3.And(g.in_tree(y, d, Z), level(y) >= ml),
        lambda y: level(y) - ml,
        preds or (lambda y: (g.parent(y),)),
        (
            "distance 0: up at a node of level max_level needs no hypothesis",
            "distance {k}: up's step and distance {h} at the parent give P",
            f"every node at or below max_level is 0..{MAX_DEPTH} levels below it",
        ),
        (("max_level", ml),),
    )


def _down(preds: Preds | None = None) -> Query:
    d, ml, b = z3.BitVecs("D max_level b", BITS)
    lb = level(b)

    def distance(y: Any) -> Any:
        # tnevery_down uses its hypothesis exactly when level(b) - level(x) >= 2.
        return z3.If(lb - level(y) >= 2, lb - level(y) - 1, z3.BitVecVal(0, BITS))

    return _induction(
        d,
        ml,
        lambda y: z3.And(g.in_tree(y, d, Z), level(y) >= ml),
        distance,
        preds or (lambda y: (g.ancestor_any(b, level(y) + 1, z3.If, BITS),)),
        (
            "distance 0: down at most one level above b needs no hypothesis",
            "distance {k}: down's step and distance {h} at the child towards b give P",
            f"every node at or below max_level has a distance in 0..{MAX_DEPTH}",
        ),
        (("max_level", ml), ("block b", b), ("of level", lb)),
        (g.in_tree(b, d, Z),),
    )


INDUCTIONS: dict[str, tuple[str, Callable[[Preds | None], Query]]] = {
    "tind_below": (f"below's induction on subtree height, unrolled over heights 0..{MAX_DEPTH}", _below),
    "tind_up": (f"up's induction on level(x) - max_level, unrolled over 0..{MAX_DEPTH}", _up),
    "tind_down": (f"down's induction on the distance to the block, unrolled over 0..{MAX_DEPTH}", _down),
}


def induction_obligations(preds: dict[str, Preds] | None = None) -> list[Obligation]:
    """``tind_below``, ``tind_up``, ``tind_down`` (``preds``: a wrong step instance per name, for
    the mutant test). Shared by both top-down variants: the lemmas' queries are per variant, the
    induction principle is about an uninterpreted ``P``."""
    wrong = preds or {}

    def by(f: Callable[[Preds | None], Query], name: str) -> Callable[[Variant], Query]:
        return lambda v: f(wrong.get(name))

    return [Obligation(name, "every", None, claim, by(f, name)) for name, (claim, f) in INDUCTIONS.items()]


# -- thread symmetry of the bounded queries ----------------------------------------------------


def sym_obligations(depth: int, threads: int, max_level: int = 0, per_node: bool = True) -> list[Obligation]:
    """``tnsym_*`` (``top-down-node``) / ``tsym_*`` (``top-down``): ``counted_sym``'s ``inv``,
    ``step`` and ``query`` checks with ``topdown_steps.invariant`` (no ``lin``: the top-down
    bounded encoding has no linearization queries)."""
    v = ts.TOP_DOWN_NODE if per_node else ts.TOP_DOWN
    prefix = "tnsym" if per_node else "tsym"
    return counted_sym.obligations(
        depth, threads, max_level, lin=False, inv=ts.invariant, prefix=prefix, subject=v
    )


# -- what topdown_close hooks ------------------------------------------------------------------


def obligations(
    every: str = "scan", per_node: bool = True, subject: Variant | None = None
) -> list[Obligation]:
    """What this module adds at ``topdown_close.obligations``' level ``every``: ``frame``: the
    cheap arithmetic ``tlf_*`` and the unrolled inductions ``tind_*`` (with ``per_node`` only:
    both variants share them); ``attempt``: also ``{p}_lfbound@*``; ``scan``: also
    ``{p}_scan_lfbound@*``."""
    if every == "none":
        return []
    out: list[Obligation] = arith_obligations() + induction_obligations() if per_node else []
    if every in ("attempt", "scan"):
        out += lfbound_obligations(per_node, False, subject)
    if every == "scan":
        out += lfbound_obligations(per_node, True, subject)
    return out
