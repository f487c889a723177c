"""The Python side of PORTING.md's controlled mode: ``nbbs.impl.NBBS`` on real OS threads, one step at a time.

``python -m nbbs.conform._controlled_server [--mutant NAME]`` speaks the line protocol,
version 1, on stdin/stdout with the features ``words`` and ``controlled``: ``arena``,
sequential ``alloc`` / ``free`` and ``words`` straight through ``NBBS``, and ``spawn`` /
``step`` on one real OS thread per logical thread. Every word access goes through
``ControlledWords``: on a logical thread it announces the access (``pending``), blocks until
the harness says ``step``, performs it and reports what it did (``did``). Only one thread
runs at a time, so each access is atomic by construction.

``--mutant NAME`` runs a broken allocator under the variant the ``arena`` line names, as a
broken port would: a transition mutant (``check/mutants.py``), a code mutant
(``check/impl_mutants.py``) or ``scan_from_first`` (below). The harness must catch each.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from nbbs.impl.errors import NBBSError
from nbbs.impl.nbbs import NBBS
from nbbs.model import bits

PROTOCOL_VERSION = 1
KINDS = ("load", "cas", "cas_fail", "fetch_or", "fetch_and", "store")
"""Access kinds as the protocol spells them; the index is the scheduler's kind code."""
LOAD, CAS, CAS_FAIL, FETCH_OR, FETCH_AND, STORE = range(6)


class ScanFromFirst(NBBS):
    """Every alloc scans its level from the first node, ignoring the hint and the thread's last
    success (the crate's scan): correct, but its cost grows with the blocks held before a free one."""

    def _alloc_node(self, lvl: int, hint: int | None) -> int | None:
        return super()._alloc_node(lvl, 0)  # defect: always position 0


def mutants() -> dict[str, type[NBBS]]:
    """Every allocator ``--mutant`` may name."""
    from nbbs.check.impl_mutants import IMPL_MUTANTS
    from nbbs.check.mutants import COUNTED_MUTANTS, TRANSITION_MUTANTS, mutant_allocator

    out = {name: mutant_allocator(name) for name in (*TRANSITION_MUTANTS, *COUNTED_MUTANTS)}
    out.update({name: cls for name, (_, cls) in IMPL_MUTANTS.items()})
    out["scan_from_first"] = ScanFromFirst
    return out


class _Abandoned(BaseException):
    """The arena was replaced while this thread waited for its step: unwind without touching anything."""


_local = threading.local()
"""``worker``: the ``_Worker`` of the running logical thread (absent on the main thread)."""


class _Worker:
    """One logical thread: a real OS thread that runs one operation at a time and stops at each access.

    Hand-over is two semaphores: the main thread releases ``go`` and waits on ``ready``; the
    worker runs to its next access (or the operation's end), leaves its reply lines and
    releases ``ready``. So exactly one of them runs at any time.
    """

    def __init__(self, t: int) -> None:
        self.t = t
        self.go = threading.Semaphore(0)
        self.ready = threading.Semaphore(0)
        self.lines: list[str] = []
        self.job: Callable[[], str] | None = None
        self.pending = False
        """Stopped before an access (between ``spawn``/``step`` and the next ``step``)."""
        self.abandoned = False
        self.thread = threading.Thread(target=self._loop, name=f"nbbs-controlled-{t}", daemon=True)
        self.thread.start()

    # -- main thread ----------------------------------------------------------------------

    def start(self, job: Callable[[], str]) -> list[str]:
        """Run ``job`` up to its first access or its end; the reply lines."""
        self.job = job
        return self._hand_over()

    def step(self) -> list[str]:
        """Perform the pending access, run to the next one or the end; the reply lines."""
        return self._hand_over()

    def _hand_over(self) -> list[str]:
        self.go.release()
        self.ready.acquire()
        out, self.lines = self.lines, []
        return out

    def abandon(self) -> None:
        """Let the OS thread end (at its pending access, if it has one) without touching a word."""
        self.abandoned = True
        self.go.release()

    # -- the worker's own thread -------------------------------------------------------------

    def announce(self, kind: int, node: int) -> None:
        """About to access ``node``: say so, and wait for the harness's ``step``."""
        self.lines.append(f"pending {self.t} {KINDS[kind]} {node}")
        self.pending = True
        self.ready.release()
        self.go.acquire()
        self.pending = False
        if self.abandoned:
            raise _Abandoned

    def did(self, kind: int, node: int, old: int, new: int) -> None:
        self.lines.append(f"did {self.t} {KINDS[kind]} {node} {old} {new}")

    def _loop(self) -> None:
        _local.worker = self
        while True:
            self.go.acquire()
            if self.abandoned:
                return
            job, self.job = self.job, None
            assert job is not None
            try:
                result = job()
            except _Abandoned:
                return
            except Exception as e:  # the allocator itself broke (a mutant): say so, keep serving
                result = f"error {type(e).__name__} {e}"
            self.lines.append(f"done {self.t} {result}")
            self.ready.release()


class ControlledWords:
    """A ``Words`` backend: on a logical thread each access is announced, waited for and reported.

    On the main thread (the sequential commands) accesses run unannounced.
    """

    __slots__ = ("w",)

    def __init__(self, length: int) -> None:
        self.w = [0] * length

    def load(self, i: int) -> int:
        wk: _Worker | None = getattr(_local, "worker", None)
        if wk is not None:
            wk.announce(LOAD, i)
        v = self.w[i]
        if wk is not None:
            wk.did(LOAD, i, v, v)
        return v

    def cas(self, i: int, expected: int, new: int) -> bool:
        wk: _Worker | None = getattr(_local, "worker", None)
        if wk is not None:
            wk.announce(CAS, i)
        old = self.w[i]
        ok = old == expected
        if ok:
            self.w[i] = new
        if wk is not None:
            wk.did(CAS if ok else CAS_FAIL, i, old, new if ok else old)
        return ok

    def fetch_or(self, i: int, mask: int) -> int:
        return self._rmw(FETCH_OR, i, lambda old: old | mask)

    def fetch_and(self, i: int, mask: int) -> int:
        return self._rmw(FETCH_AND, i, lambda old: old & mask)

    def store(self, i: int, value: int) -> None:
        self._rmw(STORE, i, lambda old: value)

    def _rmw(self, kind: int, i: int, f: Callable[[int], int]) -> int:
        wk: _Worker | None = getattr(_local, "worker", None)
        if wk is not None:
            wk.announce(kind, i)
        old = self.w[i]
        self.w[i] = f(old)
        if wk is not None:
            wk.did(kind, i, old, self.w[i])
        return old

    def snapshot(self) -> tuple[int, ...]:
        return tuple(self.w)


class ProtocolError(Exception):
    """A line the server cannot parse or a command out of turn: answered ``error ProtocolError``."""


def _reply(call: Callable[[], object]) -> str:
    """Run one allocator call; its protocol reply (an address, ``none``, ``ok`` or ``error Class msg``)."""
    try:
        r = call()
    except NBBSError as e:
        return f"error {type(e).__name__} {e}"
    except (TypeError, ValueError) as e:
        return f"error ProtocolError {e}"
    if r is None:
        return "none"
    return r if isinstance(r, str) else str(r)


class Server:
    """The protocol state: the arena's allocator and its logical threads."""

    def __init__(self, mutant: str | None = None) -> None:
        self.cls = NBBS if mutant is None else mutants()[mutant]
        self.mutant = mutant
        self.nbbs: NBBS | None = None
        self.workers: dict[int, _Worker] = {}

    def handle(self, line: str) -> list[str]:
        """The reply lines to one command line (``quit`` is handled by the caller)."""
        tok = line.split()
        if not tok:
            return ["error ProtocolError empty line"]
        try:
            cmd = getattr(self, "cmd_" + tok[0], None)
            if cmd is None:
                return [f"error Unsupported {tok[0]}"]
            out: list[str] = cmd(tok[1:])
            return out
        except ProtocolError as e:
            return [f"error ProtocolError {e}"]

    def cmd_hello(self, args: list[str]) -> list[str]:
        if args != [str(PROTOCOL_VERSION)]:
            raise ProtocolError(f"this port speaks version {PROTOCOL_VERSION}")
        name = "nbbs-python-controlled" + (f"-{self.mutant}" if self.mutant else "")
        variants = "+".join(bits.VARIANTS)
        return [f"hello {PROTOCOL_VERSION} name={name} features=words,controlled,variants={variants}"]

    def cmd_arena(self, args: list[str]) -> list[str]:
        if len(args) != 5:
            raise ProtocolError("arena DEPTH PAGE_SIZE START MAX_ORDER VARIANT")
        depth, page_size, start = (_int(a) for a in args[:3])
        max_order = None if args[3] == "-" else _int(args[3])
        variant = args[4]
        self._abandon()
        self.nbbs = None
        if variant not in bits.VARIANTS:
            return [f"error ConfigurationError variant must be one of {sorted(bits.VARIANTS)}, got {variant}"]
        # A mutant keeps its own transitions: it claims the variant, as a broken port would.
        chosen = None if self.mutant else variant
        try:
            self.nbbs = self.cls(
                depth,
                page_size=page_size,
                start=start,
                max_order=max_order,
                backend=ControlledWords,
                variant=chosen,
            )
        except NBBSError as e:
            return [f"error {type(e).__name__} {e}"]
        return ["ok"]

    def _arena(self) -> NBBS:
        if self.nbbs is None:
            raise ProtocolError("no arena: send arena DEPTH PAGE_SIZE START MAX_ORDER VARIANT first")
        return self.nbbs

    def _abandon(self) -> None:
        for wk in self.workers.values():
            wk.abandon()
        self.workers.clear()

    def _job(self, args: list[str]) -> Callable[[], str]:
        """The call an ``alloc ORDER [HINT]`` or ``free ADDR [ORDER]`` names."""
        a = self._arena()
        if not args or args[0] not in ("alloc", "free") or not 2 <= len(args) <= 3:
            raise ProtocolError("expected alloc ORDER [HINT] or free ADDR [ORDER]")
        x = _int(args[1])
        y = None if len(args) < 3 or args[2] == "-" else _int(args[2])
        if args[0] == "alloc":
            return lambda: _reply(lambda: a.alloc(x, y))
        return lambda: _reply(lambda: _free(a, x, y))

    def cmd_alloc(self, args: list[str]) -> list[str]:
        return [self._job(["alloc", *args])()]

    def cmd_free(self, args: list[str]) -> list[str]:
        return [self._job(["free", *args])()]

    def cmd_words(self, args: list[str]) -> list[str]:
        return ["words " + " ".join(map(str, self._arena().words()))]

    def cmd_spawn(self, args: list[str]) -> list[str]:
        if len(args) < 3:
            raise ProtocolError("spawn T alloc ORDER [HINT] | spawn T free ADDR [ORDER]")
        t = _int(args[0])
        job = self._job(args[1:])
        wk = self.workers.get(t)
        if wk is None:
            wk = self.workers[t] = _Worker(t)
        elif wk.pending:
            raise ProtocolError(f"thread {t} is in the middle of an operation")
        return wk.start(job)

    def cmd_step(self, args: list[str]) -> list[str]:
        if len(args) != 1:
            raise ProtocolError("step T")
        t = _int(args[0])
        wk = self.workers.get(t)
        if wk is None or not wk.pending:
            raise ProtocolError(f"thread {t} has no pending access")
        return wk.step()

    def cmd_stress(self, args: list[str]) -> list[str]:
        return ["error Unsupported stress: use the Python reference port (nbbs.conform.pyport)"]


def _free(a: NBBS, address: int, order: int | None) -> str:
    a.free(address, order)
    return "ok"


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ProtocolError(f"expected a decimal integer, got {text!r}") from None


def serve(inp: TextIO, out: TextIO, mutant: str | None = None) -> None:
    """Answer protocol lines from ``inp`` on ``out`` until ``quit`` or the end of input."""
    server = Server(mutant)
    for line in inp:
        if line.strip() == "quit":
            break
        out.write("".join(r + "\n" for r in server.handle(line)))
        out.flush()
    server._abandon()


def main(argv: list[str] | None = None) -> int:
    """``python -m nbbs.conform._controlled_server [--mutant NAME]``."""
    ap = argparse.ArgumentParser(
        prog="python -m nbbs.conform._controlled_server",
        description="NBBS in the protocol's controlled mode (PORTING.md), one OS thread per logical thread",
    )
    ap.add_argument("--mutant", choices=sorted(mutants()), help="run a broken allocator (to watch it caught)")
    args = ap.parse_args(argv)
    serve(sys.stdin, sys.stdout, args.mutant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
