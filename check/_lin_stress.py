"""Stress records (PORTING.md, ``stress``) read as operations on ``model.spec``.

A record is one completed call of a port's own threads::

    {"thread":0,"op":"alloc","args":[2],"result":8192,"call":1234,"ret":1301}
    {"thread":1,"op":"free","args":[8192,2],"result":"ok","call":1400,"ret":1422}

Each is judged once per distinct (op, args, result): a ``Judged`` whose ``kind`` says how the
model treats it (the search sees only these, shared between records; a ``StressOp`` with the
record's number and text is built only for the operations a result shows):

``done``        the result says ``effect`` (a ``spec.Alloc`` or ``spec.Free``) happened: ``spec.step``.
``refused``     a free answered with an error class: legal iff ``spec.step`` refuses ``effect``
                (the block was not live then), and nothing changes.
``noop``        a free of something that is no block of the arena, refused: always legal.
``impossible``  a result no state allows (an address outside the arena or not aligned to the
                order, an order out of range, a free of a non-block that says ``ok``).

None of them makes the state depend on the order of linearization, so the search may cut
the history into segments (``state_determined``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any, NamedTuple

from nbbs.check._lin_search import HistoryError
from nbbs.impl import errors
from nbbs.impl.arena import Arena
from nbbs.impl.errors import AddressError
from nbbs.model import geometry as g
from nbbs.model import spec as _spec

ERROR_NAMES = frozenset(
    name for name, obj in vars(errors).items() if isinstance(obj, type) and issubclass(obj, errors.NBBSError)
)
"""The error words a free may answer with: the classes of ``nbbs.impl.errors``."""


class Judged(NamedTuple):
    """What a record's result means to the model."""

    kind: str
    """``done``, ``refused``, ``noop`` or ``impossible`` (module docstring)."""
    effect: _spec.Op | None
    """The spec operation the result claims (``done``) or that was refused (``refused``)."""
    why: str = ""
    """For ``impossible``: what no state allows."""


class StressOp(NamedTuple):
    """One stress record as a result shows it: ``alloc(2) -> 8192  (record 17)``."""

    line: int
    """The record's index in the input."""
    name: str
    """``alloc`` or ``free``."""
    args: tuple[int, ...]
    """The arguments, a free's order filled in."""
    result: Any
    """The result as recorded."""
    judged: Judged

    def __str__(self) -> str:
        result = "null" if self.result is None else self.result
        text = f"{self.name}({', '.join(map(str, self.args))}) -> {result}"
        why = self.judged.why
        return f"{text}: {why}  (record {self.line})" if why else f"{text}  (record {self.line})"


def stress_step(spec: _spec.Spec, state: _spec.State, op: Judged) -> tuple[bool, _spec.State]:
    """``model.spec.step`` for a judged record."""
    kind = op.kind
    if kind == "done":
        assert op.effect is not None
        return _spec.step(spec, state, op.effect)
    if kind == "refused":
        assert op.effect is not None
        allowed, _ = _spec.step(spec, state, op.effect)
        return not allowed, state
    return kind == "noop", state


class Columns(NamedTuple):
    """The records read, sorted by call time, one list per field."""

    threads: list[int]
    judged: list[Judged]
    calls: list[int | float]
    rets: list[int | float]
    lines: list[int]
    """Each one's index in the input."""
    rows: list[tuple[Any, ...]]
    """Each one's fields (thread, op, args, result, call, ret), a free's order filled in."""

    def stress_op(self, i: int) -> StressOp:
        """The ``i``-th record by call time, as a result shows it."""
        _, name, args, result, _, _ = self.rows[i]
        return StressOp(self.lines[i], name, tuple(args), result, self.judged[i])


_FIELDS = itemgetter("thread", "op", "args", "result", "call", "ret")
_NUMBER = (int, float)


def read_records(records: Iterable[Mapping[str, Any]], arena: Arena) -> Columns:
    """Each record read and judged, sorted by call time; ``HistoryError`` on a malformed one."""
    rows = []
    for i, r in enumerate(records):
        try:
            row = _FIELDS(r)
        except (KeyError, TypeError, IndexError):
            raise HistoryError(f"record {i}: {_shape_problem(r)}") from None
        thread, name, args, result, call, ret = row
        # The shape, tested inline (one record costs a few microseconds; a million are read).
        if (
            type(thread) is not int
            or type(call) not in _NUMBER
            or type(ret) not in _NUMBER
            or ret < call
            or type(args) is not list
            or not args
            or type(args[0]) is not int
            or (len(args) != 1 and (len(args) != 2 or type(args[1]) is not int))
            or not (
                (name == "alloc" and (result is None or type(result) is int))
                or (name == "free" and type(result) is str and (result == "ok" or result in ERROR_NAMES))
            )
        ):
            raise HistoryError(f"record {i}: {_field_problem(*row)}")
        rows.append(row)
    lines = sorted(range(len(rows)), key=lambda i: rows[i][4])
    rows = [rows[i] for i in lines]
    # One judgement per distinct (op, args, result): the arena's checks run once per block.
    judgements: dict[tuple[Any, ...], Judged] = {}
    # A free without its order frees the block its own thread's latest alloc got at that address.
    held: dict[tuple[int, int], int] = {}
    judged = []
    for j, (thread, name, args, result, _, _) in enumerate(rows):
        if name == "free" and len(args) == 1:
            if (thread, args[0]) not in held:
                raise HistoryError(
                    f"record {lines[j]}: free({args[0]}) gives no order and no earlier alloc of thread "
                    f"{thread} returned {args[0]}: give args [address, order]"
                )
            args = [args[0], held[thread, args[0]]]
            rows[j] = (thread, name, args, *rows[j][3:])
        second = args[1] if name == "free" else None  # an alloc's hint does not change its meaning
        key = (name, args[0], second, result)
        got = judgements.get(key)
        if got is None:
            got = judgements[key] = _judge(name, args[0], second, result, arena)
        if name == "alloc" and result is not None and got.kind == "done":
            held[thread, result] = args[0]
        judged.append(got)
    return Columns([r[0] for r in rows], judged, [r[4] for r in rows], [r[5] for r in rows], lines, rows)


def live_blocks(live: Iterable[tuple[int, int]], arena: Arena) -> _spec.State:
    """The nodes of (address, order) pairs held when a run began; ``HistoryError`` if one is no block."""
    nodes = set()
    for pair in live:
        address, order = pair
        node = _block(arena, address, order) if type(address) is int and type(order) is int else "not ints"
        if isinstance(node, str):
            raise HistoryError(f"live block {pair!r}: {node}")
        nodes.add(node)
    state = frozenset(nodes)
    if broken := _spec.broken_invariants(_spec.Spec.of(arena.depth, arena.top_order), state):
        raise HistoryError(f"the live blocks {sorted(live)} break {', '.join(broken)}")
    return state


def _shape_problem(r: Any) -> str:
    if not isinstance(r, Mapping):
        return f"expected a JSON object, got {r!r}"
    missing = [key for key in ("thread", "op", "args", "result", "call", "ret") if key not in r]
    return f"missing {', '.join(missing)} in {dict(r)!r}"


def _field_problem(thread: Any, name: Any, args: Any, result: Any, call: Any, ret: Any) -> str:
    """What is wrong with a record the shape test refused."""
    if type(thread) is not int:
        return f"thread must be an int, got {thread!r}"
    for what, t in (("call", call), ("ret", ret)):
        if type(t) not in _NUMBER:
            return f"{what} must be a number, got {t!r}"
    if ret < call:
        return f"returns at {ret}, before its call at {call}"
    if name not in ("alloc", "free"):
        return f'op must be "alloc" or "free", got {name!r}'
    if type(args) is not list or not 1 <= len(args) <= 2 or any(type(a) is not int for a in args):
        shape = "[order] or [order, hint]" if name == "alloc" else "[address] or [address, order]"
        return f"{name} takes args {shape} (ints), got {args!r}"
    if name == "alloc":
        return f"an alloc's result is an address or null, got {result!r}"
    return f'a free\'s result is "ok" or an error class of nbbs.impl.errors, got {result!r}'


def _block(arena: Arena, address: int, order: int) -> int | str:
    """The node of the block of ``order`` at ``address``, or why there is none."""
    if not 0 <= order <= arena.top_order:
        return f"order {order} is outside 0..{arena.top_order}"
    try:
        page = arena.page(address)
    except AddressError as e:
        return str(e)
    if page % (1 << order):
        return f"address {address} is not aligned to a block of order {order}"
    return g.node_of(arena.depth, page, order)


def _judge(name: str, first: int, second: int | None, result: Any, arena: Arena) -> Judged:
    """What ``alloc(first) -> result`` or ``free(first, second) -> result`` means to the model."""
    if name == "alloc":
        order = first
        if not 0 <= order <= arena.top_order:
            return Judged("impossible", None, f"order {order} is outside 0..{arena.top_order}")
        if result is None:
            return Judged("done", _spec.Alloc(order, None))
        node = _block(arena, result, order)
        if isinstance(node, str):
            return Judged("impossible", None, node)
        return Judged("done", _spec.Alloc(order, node))
    assert second is not None
    node = _block(arena, first, second)
    if isinstance(node, str):
        return Judged("impossible", None, node) if result == "ok" else Judged("noop", None)
    return Judged("done" if result == "ok" else "refused", _spec.Free(node))
