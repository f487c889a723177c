"""Stress records (PORTING.md, ``stress``) read as operations on ``model.spec``.

A record is one completed call of a port's own threads::

    {"thread":0,"op":"alloc","args":[2],"result":8192,"call":1234,"ret":1301}
    {"thread":1,"op":"free","args":[8192,2],"result":"ok","call":1400,"ret":1422}

Each becomes a ``StressOp`` whose ``kind`` says how the model judges it:

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


class StressOp(NamedTuple):
    """One stress record as the model sees it."""

    line: int
    """The record's index in the input."""
    name: str
    """``alloc`` or ``free``."""
    args: tuple[int, ...]
    """The arguments, a free's order filled in."""
    result: Any
    """The result as recorded."""
    kind: str
    """``done``, ``refused``, ``noop`` or ``impossible`` (module docstring)."""
    effect: _spec.Op | None
    """The spec operation the result claims (``done``) or that was refused (``refused``)."""
    why: str = ""
    """For ``impossible``: what no state allows."""

    def __str__(self) -> str:
        result = "null" if self.result is None else self.result
        text = f"{self.name}({', '.join(map(str, self.args))}) -> {result}"
        return f"{text}: {self.why}  (record {self.line})" if self.why else f"{text}  (record {self.line})"


def stress_step(spec: _spec.Spec, state: _spec.State, op: StressOp) -> tuple[bool, _spec.State]:
    """``model.spec.step`` for a stress record."""
    if op.kind == "done":
        assert op.effect is not None
        return _spec.step(spec, state, op.effect)
    if op.kind == "refused":
        assert op.effect is not None
        allowed, _ = _spec.step(spec, state, op.effect)
        return not allowed, state
    return op.kind == "noop", state


class Row(NamedTuple):
    """A record read: who, what, when."""

    thread: int
    op: StressOp
    call: int | float
    ret: int | float


def read_records(records: Iterable[Mapping[str, Any]], arena: Arena) -> list[Row]:
    """Each record read, sorted by call time; ``HistoryError`` on a malformed one."""
    raw = []
    for i, r in enumerate(records):
        try:
            fields = (r["thread"], r["op"], r["args"], r["result"], r["call"], r["ret"])
        except (KeyError, TypeError, IndexError):
            raise HistoryError(f"record {i}: {_shape_problem(r)}") from None
        if not _well_formed(*fields):
            raise HistoryError(f"record {i}: {_field_problem(*fields)}")
        raw.append((fields[4], i, fields))
    raw.sort()
    # One answer per (address, order): the arena's checks run once per block, not per record.
    blocks: dict[tuple[int, int], int | str] = {}
    # A free without its order frees the block its own thread's latest alloc got at that address.
    held: dict[tuple[int, int], int] = {}
    out = []
    for _, i, (thread, name, args, result, call, ret) in raw:
        if name == "alloc":
            op = _alloc(i, args, result, arena, blocks)
            if op.kind == "done" and result is not None:
                held[thread, result] = args[0]
        else:
            if len(args) == 1:
                if (thread, args[0]) not in held:
                    raise HistoryError(
                        f"record {i}: free({args[0]}) gives no order and no earlier alloc of thread "
                        f"{thread} returned {args[0]}: give args [address, order]"
                    )
                args = [args[0], held[thread, args[0]]]
            op = _free(i, args, result, arena, blocks)
        out.append(Row(thread, op, call, ret))
    return out


_NUMBER = (int, float)


def _well_formed(thread: Any, name: Any, args: Any, result: Any, call: Any, ret: Any) -> bool:
    """The fast test of a record's shape (``_field_problem`` says what is wrong when it fails)."""
    if type(thread) is not int or type(call) not in _NUMBER or type(ret) not in _NUMBER or ret < call:
        return False
    if type(args) is not list or not 1 <= len(args) <= 2 or any(type(a) is not int for a in args):
        return False
    if name == "alloc":
        return result is None or type(result) is int
    return name == "free" and type(result) is str and (result == "ok" or result in ERROR_NAMES)


def _shape_problem(r: Any) -> str:
    if not isinstance(r, Mapping):
        return f"expected a JSON object, got {r!r}"
    missing = [key for key in ("thread", "op", "args", "result", "call", "ret") if key not in r]
    return f"missing {', '.join(missing)} in {dict(r)!r}"


def _field_problem(thread: Any, name: Any, args: Any, result: Any, call: Any, ret: Any) -> str:
    """What is wrong with a record that ``_well_formed`` refused."""
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


def _block(arena: Arena, address: int, order: int, blocks: dict[tuple[int, int], int | str]) -> int | str:
    """The node of the block of ``order`` at ``address``, or why there is none."""
    found = blocks.get((address, order))
    if found is None:
        if not 0 <= order <= arena.top_order:
            found = f"order {order} is outside 0..{arena.top_order}"
        else:
            try:
                page = arena.page(address)
            except AddressError as e:
                found = str(e)
            else:
                if page % (1 << order):
                    found = f"address {address} is not aligned to a block of order {order}"
                else:
                    found = g.node_of(arena.depth, page, order)
        blocks[address, order] = found
    return found


def _alloc(
    i: int, args: list[int], result: int | None, arena: Arena, blocks: dict[tuple[int, int], int | str]
) -> StressOp:
    order = args[0]
    shown = tuple(args)
    if not 0 <= order <= arena.top_order:
        why = f"order {order} is outside 0..{arena.top_order}"
        return StressOp(i, "alloc", shown, result, "impossible", None, why)
    if result is None:
        return StressOp(i, "alloc", shown, result, "done", _spec.Alloc(order, None))
    node = _block(arena, result, order, blocks)
    if isinstance(node, str):
        return StressOp(i, "alloc", shown, result, "impossible", None, node)
    return StressOp(i, "alloc", shown, result, "done", _spec.Alloc(order, node))


def _free(
    i: int, args: list[int], result: str, arena: Arena, blocks: dict[tuple[int, int], int | str]
) -> StressOp:
    address, order = args
    shown = (address, order)
    node = _block(arena, address, order, blocks)
    if isinstance(node, str):
        if result == "ok":
            return StressOp(i, "free", shown, result, "impossible", None, node)
        return StressOp(i, "free", shown, result, "noop", None)
    return StressOp(i, "free", shown, result, "done" if result == "ok" else "refused", _spec.Free(node))
