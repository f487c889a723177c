"""Lock-freedom's arithmetic in z3: the bounds ``proofs/README.md`` states (an alloc attempt
makes at most ``2 (D - max_level) + 2`` successful writes, a free ``D - max_level + 1``, a scan
of order ``o`` ``2**(D-o) (2 (D - o - max_level) + 2)``; in a run with no completion at most
``T`` starts and fewer than ``(T mu_max + 1)(2T + 1)`` steps between two starts) as z3
queries over symbolic ``T``, ``mu_max``, ``D``, ``max_level``, instead of arithmetic by hand.

Two layers.

**The facts of one step** (``cevery_lfbound@{pc}``, ``cevery_scan_lfbound@{pc}``), in
``counted_every``'s encoding (every depth, symbolic node, the machine's own step), per pc: the
measure ``(left, rank)`` (``counted_every.measure``) is never negative; an alloc in flight has
``1 <= left <= 2**level(n)`` (attempt mode: ``left = 1``), ``max_level <= level(n) <= D`` and
``rank <= 2 (level(n) - max_level) + 2``; a free has ``left = 0`` and ``rank <= D - max_level +
1``; ``mu = 64 left + rank <= mu_max`` (below); every step of an operation in flight leaves the
measure lexicographically no higher, a successful write strictly lower and starts from
``rank >= 1``; an alloc that stops being one (completes) ends with measure ``(0, 0)``; an
alloc step that does not complete stays on its level; a start gives the new operation a
measure within these bounds. These are the only facts the arithmetic below uses.

**The counter abstractions** (``clf_*``: pure integer arithmetic, symbolic everything, no
tree). One operation: its successful writes ``w`` and its measure; potential ``Q = (left - 1) B
+ rank`` while ``left >= 1`` and ``Q = rank`` at ``left = 0``, ``B = 2 (L - max_level) + 2`` for
the alloc's level ``L``. ``w + Q <= Q0`` is inductive (a write lowers ``Q`` by at least one, any
other step does not raise it: ``clf_op_write``, ``clf_op_other``), ``Q0 <= width B`` at an
alloc's start and ``Q0 <= D - max_level + 1`` at a free's, ``Q >= 0``: ``clf_op_bounds`` gives the
three bounds. The run: ``T`` threads, ``b`` in flight, ``s`` starts and ``n`` steps since the
window began (no completion in it), ``k`` steps since the last start, ``Phi = M (2T + 1) + N``
with ``0 <= M <= T mu_max``, ``0 <= N <= 2T``, ``P = T mu_max (2T + 1) + 2T``: the invariant
``s <= b - b0``, ``b <= T``, ``k <= P - Phi``, ``n <= s (P + 1) + P - Phi`` holds initially and is
preserved by a start and by any other step, which lowers ``(M, N)`` lexicographically
(``cevery_lfglobal``): ``clf_run_lex`` (such a step lowers ``Phi`` by at least one),
``clf_run_step``, ``clf_run_bounds`` (``s <= T``, ``k < (T mu_max + 1)(2T + 1)``, ``n < (T + 1)(T
mu_max + 1)(2T + 1)``: every ``(T + 1)(T mu_max + 1)(2T + 1)`` steps include a completion).
``mu_max = 64 * 2**D + 2 (D - max_level) + 2`` in scan mode (``left`` reaches ``2**L`` at
level ``L <= D``), ``64 + 2 (D - max_level) + 2`` in attempt mode.

Integer arithmetic (z3's nonlinear ``Int`` solver): the products ``(left - 1) B``, ``M (2T +
1)``, ``s (P + 1)`` are between symbols. ``2**x`` appears only as a symbolic width ``>= 1`` (the
abstraction needs nothing else of it). The step facts are bit-vector claims on values below
``2**40`` (``mu <= mu_max < 2**35``), so reading them as integers loses nothing.

Generic over ``counted_every.Shape``: ``step_obligations(shape=...)`` and
``arith_obligations(shape, prefix)`` take another variant's rank, attempt budget and
``mu_shift`` (``topdown_arith``: ``{p}_lfbound@*``, ``tlf_*`` for the top-down variants).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import z3

from nbbs.model import steps
from nbbs.proofs import counted_every as ce
from nbbs.proofs._obligation import Obligation
from nbbs.proofs._variant import Variant
from nbbs.proofs._z3 import Query, val

# -- the facts of one step, every depth -------------------------------------------------------


def attempt_writes(shape: ce.Shape) -> Callable[[Any, Any], Any]:
    """The shape's successful writes of one attempt at level ``L``, as a function of ``(L,
    max_level)`` (``counted``: ``2 (L - max_level) + 2``)."""
    return shape.attempt_writes or ce._attempt_writes


def mu_max(depth: Any, max_level: Any, scan: bool, shape: ce.Shape = ce.COUNTED_SHAPE) -> Any:
    """The largest ``2**shift left + rank`` an operation can have (``counted_close.mu``;
    ``counted``: ``64 left + rank``, the shape's ``mu_shift`` and ``attempt_writes`` otherwise)."""
    width = (z3.BitVecVal(1, ce.BITS) << depth) if scan else z3.BitVecVal(1, ce.BITS)
    return width * (1 << shape.mu_shift) + attempt_writes(shape)(depth, max_level)


def _alloc_shape(wd: ce.World, op: steps.OpState, shape: ce.Shape) -> list[tuple[str, Any]]:
    """What the arithmetic assumes of an alloc in flight at ``op``."""
    ml, ln = wd.max_level, ce.level(op.n)
    left, rank = ce.measure(op, ml, shape)
    width = z3.BitVecVal(1, ce.BITS) << ln
    text = shape.attempt_text.replace("L", "level(n)")
    return [
        ("its level is between max_level and D", z3.And(ln >= ml, ln <= wd.depth)),
        (
            "1 <= left <= 2**level(n)" if wd.scan else "left == 1",
            z3.And(left >= 1, left <= width) if wd.scan else left == 1,
        ),
        (f"rank <= {text}", rank <= attempt_writes(shape)(ln, ml)),
    ]


def _free_shape(wd: ce.World, op: steps.OpState, shape: ce.Shape) -> list[tuple[str, Any]]:
    left, rank = ce.measure(op, wd.max_level, shape)
    return [
        (
            "a free: left == 0, rank <= D - max_level + 1",
            z3.And(left == 0, rank <= wd.depth - wd.max_level + 1),
        )
    ]


MuBound = Callable[[Any, Any, bool], Any]
"""``mu_max`` as a function of ``(depth, max_level, scan)`` (a wrong one for a mutant test)."""


def _step_facts(v: Variant, pc: int, scan: bool, mu_bound: MuBound | None, shape: ce.Shape) -> Query:
    wd, op, a0, mvs = ce._built(v, pc, scan)
    ml = wd.max_level
    r0 = ce.measure(op, ml, shape)
    shift = shape.mu_shift
    claims: list[tuple[str, Any]] = [("the measure is not negative", z3.And(r0[0] >= 0, r0[1] >= 0))]
    if steps.is_alloc(op):
        claims += _alloc_shape(wd, op, shape)
    elif not steps.is_done(op):
        claims += _free_shape(wd, op, shape)
    bound = (mu_bound or (lambda d, m, sc: mu_max(d, m, sc, shape)))(wd.depth, ml, scan)
    claims.append((f"mu = {1 << shift} left + rank <= mu_max", (r0[0] << shift) + r0[1] <= bound))
    for mv in mvs:
        r1 = ce.measure(mv.nxt, ml, shape)
        if mv.acc is None:
            # A start: the new operation's measure within its bounds.
            new = (
                _alloc_shape(wd, mv.nxt, shape) if steps.is_alloc(mv.nxt) else _free_shape(wd, mv.nxt, shape)
            )
            new.append(("mu_max", (r1[0] << shift) + r1[1] <= bound))
            claims += [(f"{mv.label}: the new operation: {name}", z3.Implies(mv.hyp, c)) for name, c in new]
            continue
        old = wd.W(mv.acc.node)
        wrote = z3.BoolVal(mv.acc.kind != steps.Kind.LOAD)
        if mv.acc.kind == steps.Kind.CAS:
            wrote = old == mv.acc.a
        lower = z3.Or(r1[0] < r0[0], z3.And(r1[0] == r0[0], r1[1] < r0[1]))
        same = z3.And(r1[0] == r0[0], r1[1] == r0[1])
        claims += [
            (f"{mv.label}: the measure does not rise", z3.Implies(mv.hyp, z3.Or(lower, same))),
            (
                f"{mv.label}: a successful write lowers the measure, from rank >= 1",
                z3.Implies(z3.And(mv.hyp, wrote), z3.And(lower, r0[1] >= 1)),
            ),
        ]
        if steps.is_alloc(op) and not steps.is_alloc(mv.nxt):
            claims.append(
                (
                    f"{mv.label}: an alloc that stops being one ends with measure (0, 0)",
                    z3.Implies(mv.hyp, z3.And(r1[0] == 0, r1[1] == 0)),
                )
            )
        if steps.is_alloc(op) and steps.is_alloc(mv.nxt):
            claims.append(
                (
                    f"{mv.label}: an alloc stays on its level",
                    z3.Implies(mv.hyp, ce.level(mv.nxt.n) == ce.level(op.n)),
                )
            )
    prem = [*wd.bounds(), shape.local(wd, op), wd.node(a0)]
    # NI where each access needs it (the shape's finite instantiation; counted's: the node).
    for a in [x for mv in mvs if mv.acc is not None for x in shape.instances(mv.acc.node)]:
        prem += [
            z3.Implies(wd.node(a), z3.And([c for _, c in shape.ni(wd, wd.W, op, a)])),
            *wd.room(a, shape.headroom),
        ]
    prem += wd.congruence()
    base = ce._explain(wd, op, a0, mvs)

    def explain(m: z3.ModelRef) -> str:
        return base(m) + f"\n  left {val(m, r0[0])}, rank {val(m, r0[1])}, mu_max {val(m, bound)}"

    cases = [("some step applies", z3.Or([mv.hyp for mv in mvs]))]
    return Query(prem, claims, explain, (), cases, split=True)


def step_obligations(
    scan: bool = False,
    mu_bound: MuBound | None = None,
    *,
    shape: ce.Shape = ce.COUNTED_SHAPE,
    prefix: str = "cevery",
    subject: Variant | None = None,
    family: str = "",
) -> list[Obligation]:
    """``cevery_lfbound@{pc}`` (``cevery_scan_lfbound@{pc}`` in scan mode) for every pc
    (``mu_bound``: the ``mu_max`` claimed, a wrong one for the mutant test). ``shape``,
    ``prefix``, ``subject`` (proved whatever variant ``prove`` is handed) and ``family`` (named
    in the claim) give another variant's: ``topdown_arith``."""
    from nbbs.proofs._variant import COUNTED

    name = f"{prefix}_scan" if scan else prefix
    fam = f"{family}, " if family else ""

    def by(pc: int) -> Callable[[Variant], Query]:
        return lambda v: _step_facts(subject or v, pc, scan, mu_bound, shape)

    return [
        Obligation(
            f"{name}_lfbound@{steps.PC_NAMES[pc]}",
            "every",
            None,
            f"{fam}any depth: at {steps.PC_NAMES[pc]} the measure has the bounds and moves the lock-freedom "
            "arithmetic assumes",
            by(pc),
        )
        for pc in ce.pcs(subject or COUNTED)
    ]


# -- the counter abstractions ------------------------------------------------------------------

NIA = "QF_NIA"
"""Integer arithmetic with products of symbols."""


def _ints(names: str) -> list[Any]:
    return list(z3.Ints(names))


def _explain_ints(xs: list[Any]) -> Callable[[z3.ModelRef], str]:
    def explain(m: z3.ModelRef) -> str:
        return "  " + ", ".join(f"{x} = {m.eval(x, model_completion=True)}" for x in xs)

    return explain


def _q(left: Any, rank: Any, b: Any) -> Any:
    """One operation's potential: ``(left - 1) B + rank`` in flight, ``rank`` at ``left = 0``."""
    return z3.If(left >= 1, (left - 1) * b + rank, rank)


def _measure_ok(left: Any, rank: Any, b: Any) -> Any:
    """``cevery_lfbound``'s facts about one state: not negative, ``rank <= B`` while ``left >= 1``."""
    return z3.And(left >= 0, rank >= 0, z3.Implies(left >= 1, rank <= b))


def _ends_at_zero(left: Any, left1: Any, rank1: Any) -> Any:
    """``cevery_lfbound``: an alloc (``left >= 1``) whose ``left`` reaches 0 has completed (measure 0)."""
    return z3.Implies(z3.And(left >= 1, left1 == 0), rank1 == 0)


def _lex_lower(x: tuple[Any, Any], y: tuple[Any, Any]) -> Any:
    return z3.Or(x[0] < y[0], z3.And(x[0] == y[0], x[1] < y[1]))


def _facts(named: list[tuple[str, Any]], drop: str) -> list[Any]:
    """The premises, less the one named ``drop`` (a mutant test: each fact is needed)."""
    assert not drop or drop in [n for n, _ in named], f"no fact {drop!r}"
    return [c for n, c in named if n != drop]


def _op_write(drop: str = "") -> Query:
    left, rank, left1, rank1, b = _ints("left rank left_after rank_after B")
    prem = _facts(
        [
            ("B >= 2", b >= 2),
            ("the measure before", _measure_ok(left, rank, b)),
            ("the measure after", _measure_ok(left1, rank1, b)),
            ("an alloc reaching left 0 has rank 0", _ends_at_zero(left, left1, rank1)),
            ("a write lowers the measure", _lex_lower((left1, rank1), (left, rank))),
            ("a write starts from rank >= 1", rank >= 1),
        ],
        drop,
    )
    return Query(
        prem,
        [
            (
                "a successful write lowers the potential by at least one",
                _q(left1, rank1, b) <= _q(left, rank, b) - 1,
            )
        ],
        _explain_ints([left, rank, left1, rank1, b]),
        logic=NIA,
    )


def _op_other(drop: str = "") -> Query:
    left, rank, left1, rank1, b = _ints("left rank left_after rank_after B")
    no_rise = z3.Or(_lex_lower((left1, rank1), (left, rank)), z3.And(left1 == left, rank1 == rank))
    prem = _facts(
        [
            ("B >= 2", b >= 2),
            ("the measure before", _measure_ok(left, rank, b)),
            ("the measure after", _measure_ok(left1, rank1, b)),
            ("an alloc reaching left 0 has rank 0", _ends_at_zero(left, left1, rank1)),
            ("a step does not raise the measure", no_rise),
        ],
        drop,
    )
    return Query(
        prem,
        [("any other step does not raise the potential", _q(left1, rank1, b) <= _q(left, rank, b))],
        _explain_ints([left, rank, left1, rank1, b]),
        logic=NIA,
    )


def op_bounds_claims(
    depth: Any,
    ml: Any,
    lvl: Any,
    width: Any,
    writes: Any,
    q: Any,
    q0: Any,
    left0: Any,
    rank0: Any,
    *,
    shape: ce.Shape = ce.COUNTED_SHAPE,
) -> tuple[list[Any], list[tuple[str, Any]]]:
    """Premises and claims of ``clf_op_bounds`` (the three bounds, from ``w + Q <= Q0``), with
    ``B`` the shape's attempt budget (``counted``: ``2 (L - max_level) + 2``; ``tlf_op_bounds``:
    ``top-down``'s ``4 (L - max_level) + 4``)."""
    per = attempt_writes(shape)
    b = per(lvl, ml)
    text = shape.attempt_text
    prem = [
        depth >= 1,
        ml >= 0,
        ml <= lvl,
        lvl <= depth,
        width >= 1,
        writes >= 0,
        q >= 0,
        writes + q <= q0,
    ]
    start_alloc = z3.And(left0 >= 1, left0 <= width, rank0 >= 0, rank0 <= b, q0 == _q(left0, rank0, b))
    start_attempt = z3.And(left0 == 1, rank0 >= 0, rank0 <= b, q0 == _q(left0, rank0, b))
    start_free = z3.And(left0 == 0, rank0 >= 0, rank0 <= depth - ml + 1, q0 == _q(left0, rank0, b))
    at_depth = text.replace("L", "D")
    at_order = text.replace("L", "D - o")
    claims = [
        (f"B = {text} >= 2 (what clf_op_write and clf_op_other assume)", b >= 2),
        (
            f"an alloc attempt makes at most {at_depth} successful writes",
            z3.Implies(start_attempt, writes <= per(depth, ml)),
        ),
        ("a free makes at most D - max_level + 1", z3.Implies(start_free, writes <= depth - ml + 1)),
        (
            f"a scan of order o = D - L makes at most 2**(D-o) ({at_order})",
            z3.Implies(start_alloc, writes <= width * b),
        ),
    ]
    return prem, claims


def _op_bounds(
    claims_for: Callable[..., tuple[list[Any], list[tuple[str, Any]]]] = op_bounds_claims,
    shape: ce.Shape = ce.COUNTED_SHAPE,
) -> Query:
    xs = _ints("D max_level L width writes Q Q0 left0 rank0")
    prem, claims = claims_for(*xs, shape=shape)
    return Query(prem, claims, _explain_ints(xs), logic=NIA)


def _phi(m: Any, n: Any, t: Any) -> Any:
    return m * (2 * t + 1) + n


def _run_bounded(t: Any, mu: Any, m: Any, n: Any, nu_max: int = 2) -> Any:
    """``0 <= M <= T mu_max``, ``0 <= N <= 2T`` (a sum of ``T`` terms each within ``mu_max``, 2)."""
    return z3.And(m >= 0, m <= t * mu, n >= 0, n <= nu_max * t)


def _run_lex(nu_max: int = 2) -> Query:
    t, mu, m, n, m1, n1 = _ints("T mu_max M N M_after N_after")
    prem = [t >= 1, mu >= 0, _run_bounded(t, mu, m, n, nu_max), _run_bounded(t, mu, m1, n1, nu_max)]
    prem.append(_lex_lower((m1, n1), (m, n)))
    return Query(
        prem,
        [
            (
                "a step lowering (M, N) lowers Phi = M (2T + 1) + N by at least one",
                _phi(m1, n1, t) <= _phi(m, n, t) - 1,
            )
        ],
        _explain_ints([t, mu, m, n, m1, n1]),
        logic=NIA,
    )


def _run_inv(t: Any, p: Any, phi: Any, b0: Any, b: Any, s: Any, k: Any, n: Any) -> Any:
    return z3.And(s >= 0, s <= b - b0, b0 >= 0, b <= t, k >= 0, k <= p - phi, n <= s * (p + 1) + p - phi)


def _run_step(guarded: bool = True) -> Query:
    t, mu, p, phi, phi1, b0, b, s, k, n = _ints("T mu_max P Phi Phi_after b0 b s k n")
    p_def = p == t * mu * (2 * t + 1) + 2 * t
    prem = [
        t >= 1,
        mu >= 0,
        p_def,
        phi >= 0,
        phi <= p,
        phi1 >= 0,
        phi1 <= p,
        _run_inv(t, p, phi, b0, b, s, k, n),
    ]
    start = z3.And(b + 1 <= t, _run_inv(t, p, phi1, b0, b + 1, s + 1, 0, n + 1))
    other = _run_inv(t, p, phi1, b0, b, s, k + 1, n + 1)
    return Query(
        prem,
        [
            (
                "a start (a thread not in flight) keeps the invariant",
                z3.Implies(b + 1 <= t, start)
                if guarded
                else _run_inv(t, p, phi1, b0, b + 1, s + 1, 0, n + 1),
            ),
            (
                "any other step (Phi drops by at least one) keeps the invariant",
                z3.Implies(phi1 <= phi - 1, other),
            ),
        ],
        _explain_ints([t, mu, p, phi, phi1, b0, b, s, k, n]),
        logic=NIA,
    )


def run_bounds_claims(
    t: Any, mu: Any, p: Any, phi: Any, b0: Any, b: Any, s: Any, k: Any, n: Any
) -> list[tuple[str, Any]]:
    """The claims of ``clf_run_bounds`` (a test swaps in a wrong one)."""
    per = (t * mu + 1) * (2 * t + 1)
    return [
        ("at most T starts with no completion", s <= t),
        ("fewer than (T mu_max + 1)(2T + 1) steps between two starts", k < per),
        ("fewer than (T + 1)(T mu_max + 1)(2T + 1) steps with no completion", n < (t + 1) * per),
    ]


def _run_bounds(claims_for: Callable[..., list[tuple[str, Any]]] = run_bounds_claims) -> Query:
    xs = _ints("T mu_max P Phi b0 b s k n")
    t, mu, p, phi, b0, b, s, k, n = xs
    prem = [t >= 1, mu >= 0, p == t * mu * (2 * t + 1) + 2 * t, phi >= 0, phi <= p]
    prem.append(_run_inv(t, p, phi, b0, b, s, k, n))
    # Initially (no step yet): s = k = n = 0, and 0 <= Phi <= P, so the invariant holds.
    init = _run_inv(t, p, phi, b0, b0, 0, 0, 0)
    claims = [("the invariant holds when the window opens", z3.Implies(z3.And(b0 >= 0, b0 <= t), init))]
    return Query(prem, claims + claims_for(*xs), _explain_ints(xs), logic=NIA, split=True)


ARITH: dict[str, tuple[str, Callable[[], Query]]] = {
    "clf_op_write": ("a successful write lowers one operation's potential", _op_write),
    "clf_op_other": ("any other step does not raise one operation's potential", _op_other),
    "clf_op_bounds": ("the potential gives the attempt, free and scan write bounds", _op_bounds),
    "clf_run_lex": ("lowering (M, N) lowers Phi", _run_lex),
    "clf_run_step": ("the run's counter invariant is preserved by starts and other steps", _run_step),
    "clf_run_bounds": ("the run's counter invariant gives T starts and the step bounds", _run_bounds),
}
"""``counted``'s. Only ``clf_op_bounds`` reads the variant (its attempt budget ``B``); the others
hold for any ``B >= 2`` and any ``mu_max >= 0``."""


def arith_obligations(shape: ce.Shape = ce.COUNTED_SHAPE, prefix: str = "clf") -> list[Obligation]:
    """The counter-abstraction obligations ``clf_*`` (pure arithmetic, fractions of a second);
    with another ``shape`` and ``prefix``, the same six with that shape's attempt budget in
    ``{prefix}_op_bounds`` (``tlf_*``: ``topdown_arith``)."""

    def by(f: Callable[[], Query]) -> Callable[[Variant], Query]:
        return lambda v: f()

    out = []
    for name, (claim, f) in ARITH.items():
        g = (lambda: _op_bounds(shape=shape)) if name == "clf_op_bounds" else f
        out.append(Obligation(prefix + name.removeprefix("clf"), "every", None, claim, by(g)))
    return out


def obligations(scan: bool | None = None) -> list[Obligation]:
    """The arithmetic, plus the step facts in attempt mode, scan mode or (``None``) neither."""
    out = arith_obligations()
    if scan is not None:
        out += step_obligations(False)
        if scan:
            out += step_obligations(True)
    return out
