"""Is a concurrent history linearizable with respect to a sequential model?

The search is Wing and Gong's, with Lowe's memo (as in Porcupine): a *configuration* is the
set of operations linearized so far and the model state after them. From a configuration, an
operation may be linearized next if it is not yet linearized and was called before every
not-yet-linearized operation returned (otherwise some operation finished before it began and
must come first). A configuration seen once is never expanded again: the model is a pure
function of (state, operation), so the same configuration always has the same future. The
history is linearizable iff the configuration with every operation is reachable.

The search (``_lin_search``) costs time proportional to the history's length when few
operations are in flight at once: a configuration is two ints (the first pending operation by
return time, and which of the few operations in flight at that instant are already
linearized), the operations that may come next are found without a scan, the path keeps a
model state only at every 32nd step, and for a model whose state after a set of operations
does not depend on their order (``state_determined``; ``model.spec`` is one) the history is
cut into segments wherever no operation is pending. Many operations in flight at once still
cost exponential time: the budget (``timeout``, ``budget``) then answers ``unknown``.

Contracts: ``step(state, op) -> (ok, new_state)`` is pure and states are hashable, equal
states hashing equally (``model.spec.step`` over frozensets is). Times are any totally
ordered numbers, from a logical clock (the scheduler's trace index) or from
``time.perf_counter_ns`` on real threads; an operation ``a`` precedes ``b`` in real time iff
``a.ret < b.call``.

The answer is three-valued: ``ok``, ``illegal`` (with the longest partial linearization
found, to show where every order gets stuck), or ``unknown`` when the time limit or the
configuration budget ran out. A timeout is never ``ok``.

``check_stress_history`` reads the JSONL records of a port's ``stress`` command (PORTING.md)
and checks them against ``model.spec`` under the concurrent contract.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from nbbs.check import _lin_search, _lin_stress
from nbbs.check._lin_search import HistoryError
from nbbs.impl.arena import Arena
from nbbs.model import spec as _spec

__all__ = [
    "HistoryError",
    "Operation",
    "Result",
    "Verdict",
    "check",
    "check_allocator",
    "check_stress_history",
]

SHOWN = 20
"""``explain`` lists at most this many operations of the longest order (its end)."""

S = TypeVar("S", bound=Hashable)


class Verdict(Enum):
    """The three answers of the checker."""

    OK = "ok"
    ILLEGAL = "illegal"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Operation:
    """One call in a history: who made it, what it was with its result, when it began and ended."""

    client: int
    op: Any
    call: float
    ret: float


@dataclass
class Result(Generic[S]):
    """The verdict, and on ``illegal`` the longest prefix of a linearization that the model accepts."""

    verdict: Verdict
    longest: list[Operation] = field(default_factory=list)
    """Operations in linearization order, as far as any order got."""
    stuck_state: Any = None
    """The model state after ``longest``."""
    configurations: int = 0
    segments: int = 0
    """Segments the history was cut into, up to the one that decided."""
    refused: list[Operation] = field(default_factory=list)
    """On ``illegal``: the operations that may come after ``longest``, none of which the model accepts."""

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    def explain(self) -> str:
        """A few lines saying why the history is not linearizable (empty when it is)."""
        if self.verdict is Verdict.OK:
            return ""
        if self.verdict is Verdict.UNKNOWN:
            return (
                "linearizability unknown: the time limit or the configuration budget ran out after "
                f"{self.configurations} configurations"
            )
        lines = ["no linearization exists; the longest order the model accepts:"]
        first = max(0, len(self.longest) - SHOWN)
        if first:
            lines.append(f"  ({first} operations before these)")
        lines += [f"  {i}. thread {o.client}: {o.op}" for i, o in enumerate(self.longest[first:], first)]
        state = self.stuck_state
        shown = sorted(state) if isinstance(state, set | frozenset) else "?" if state is None else state
        lines.append(f"  then state {shown}")
        lines.append("  accepts none of the operations that may come next:")
        lines += [f"    thread {o.client}: {o.op}" for o in self.refused]
        return "\n".join(lines)


def check(
    history: Sequence[Operation],
    init: S,
    step: Callable[[S, Any], tuple[bool, S]],
    timeout: float = 10.0,
    *,
    budget: int | None = None,
    state_determined: bool = False,
) -> Result[S]:
    """Decide whether ``history`` (complete operations only) is linearizable from ``init``.

    ``timeout`` (seconds) and ``budget`` (configurations) bound the search; when either runs
    out the answer is ``unknown``. ``state_determined`` promises that every order of a set of
    operations the model accepts ends in the same state; the history is then checked in
    segments cut where no operation is pending, and the memo holds no states.
    """
    ops = sorted(history, key=lambda o: o.call)
    for o in ops:
        if o.ret < o.call:
            raise HistoryError(f"{o} returns before it is called")
    found = _lin_search.search(
        [o.call for o in ops],
        [o.ret for o in ops],
        [o.op for o in ops],
        init,
        step,
        state_determined=state_determined,
        timeout=timeout,
        budget=budget,
    )
    return _result(found, ops.__getitem__)


def _result(found: _lin_search.Outcome, operation: Callable[[int], Operation]) -> Result[Any]:
    """The public answer for what the search found; ``operation(i)`` is the i-th by call time."""
    verdict = Verdict(found.verdict)
    if verdict is Verdict.OK:
        return Result(verdict, configurations=found.configurations, segments=found.segments)
    longest = [operation(i) for i in found.order]
    refused = []
    if verdict is Verdict.ILLEGAL:
        # The operations that may come next: not in longest, called by the earliest return
        # among those not in longest (at the deepest configuration the model refuses each).
        done = set(found.order)
        rest = [i for i in range(found.operations) if i not in done]
        horizon = min(operation(i).ret for i in rest)
        refused = [operation(i) for i in rest if operation(i).call <= horizon]
    return Result(verdict, longest, found.state, found.configurations, found.segments, refused)


def check_allocator(
    history: Sequence[Operation],
    spec: _spec.Spec,
    initial: _spec.State = _spec.EMPTY,
    timeout: float = 10.0,
    *,
    budget: int | None = None,
) -> Result[_spec.State]:
    """Linearizability of an allocator history (``spec.Alloc`` / ``spec.Free`` ops) against ``model.spec``."""
    # State-determined: an accepted alloc adds its block, an accepted free removes it, a failed
    # alloc changes nothing, so the live blocks after a set of operations are the initial ones
    # plus those allocated and not freed in it, whatever the order.
    return check(
        history,
        initial,
        lambda s, op: _spec.step(spec, s, op),
        timeout,
        budget=budget,
        state_determined=True,
    )


def check_stress_history(
    records: Iterable[Mapping[str, Any]],
    *,
    depth: int,
    page_size: int = 4096,
    start: int = 0,
    max_order: int | None = None,
    live: Iterable[tuple[int, int]] = (),
    timeout: float = 60.0,
    budget: int | None = None,
) -> Result[_spec.State]:
    """Linearizability of a port's ``stress`` history (PORTING.md's JSONL objects).

    The arena is ``NBBS(depth, page_size=..., start=..., max_order=...)``'s, holding the blocks
    ``live`` ((address, order) pairs) when the run began, by default none. The contract is the
    concurrent one (an alloc may fail while a block is free). Addresses become nodes; a result
    no state allows (an address outside the arena or misaligned) makes the history illegal; a
    free answered with an error class is legal only if its block was not live. A malformed
    record raises ``HistoryError``, a bad arena ``ConfigurationError``. The operations of
    ``longest`` and ``refused`` print as the records read (``alloc(2) -> 8192  (record 17)``).
    """
    arena = Arena(depth, page_size, start, max_order)
    spec = _spec.Spec.of(depth, arena.top_order, spurious_failures=True)
    initial = _lin_stress.live_blocks(live, arena)
    cols = _lin_stress.read_records(records, arena)  # sorted by call
    found = _lin_search.search(
        cols.calls,
        cols.rets,
        cols.judged,
        initial,
        lambda s, op: _lin_stress.stress_step(spec, s, op),
        state_determined=True,
        timeout=timeout,
        budget=budget,
    )
    return _result(
        found, lambda i: Operation(cols.threads[i], cols.stress_op(i), cols.calls[i], cols.rets[i])
    )
