"""A port's controlled mode over a pipe: the line protocol's client, as the explorer's ``RemoteThreads``.

``ControlledPort(command)`` starts the port's executable, shakes hands (``hello 1``) and then
turns the runtime's calls into protocol lines: ``arena`` for a fresh arena, ``alloc`` for the
sequential setup, ``spawn`` / ``step`` for the scheduled operations, ``words``. Pages and nodes
on the runtime's side, addresses on the port's (``page_size``, ``start``).

A run may stop with port threads mid-operation (a failure, a counterexample's schedule that
ends mid-flight, ``max_steps``). Before the next arena those threads are stepped to their end
without preemption (``drain``); if they do not end, the port is restarted, so a stuck port
never poisons the next run.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from nbbs.check._sched import Access, Done, Pending, RemoteError
from nbbs.check.explore import Scenario
from nbbs.model import bits

PROTOCOL_VERSION = 1
KINDS = ("load", "cas", "cas_fail", "fetch_or", "fetch_and", "store")
"""Access kinds as the protocol spells them; the index is the scheduler's kind code."""
_KIND = {name: i for i, name in enumerate(KINDS)}
DRAIN_STEPS = 10_000
"""Steps a thread left mid-operation may take to finish before the port is restarted instead."""


COUNTEREXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data" / "counterexamples"
"""The model checker's kept counterexamples (in a source checkout)."""


def reference_port(mutant: str | None = None) -> list[str]:
    """The command of the Python reference port in controlled mode (``--mutant``: a broken one)."""
    cmd = [sys.executable, "-m", "nbbs.conform._controlled_server"]
    return [*cmd, "--mutant", mutant] if mutant else cmd


class PortError(RemoteError):
    """The port broke the protocol: a reply of the wrong shape, an exit, or no reply in time."""


def variant_of(allocator: str) -> str:
    """The ``bits.VARIANTS`` name a scenario's allocator name stands for."""
    if allocator in bits.VARIANTS:
        return allocator
    raise PortError(f"allocator {allocator!r} is no variant a port can be asked for")


class ControlledPort:
    """One running port in controlled mode (implements ``check._sched.RemoteThreads``)."""

    def __init__(
        self, command: Sequence[str], page_size: int = 4096, start: int = 0, timeout: float = 20.0
    ) -> None:
        self.command = list(command)
        self.page_size = page_size
        self.start = start
        self.timeout = timeout
        """Seconds to wait for one reply line before the port counts as hung."""
        self.log: list[tuple[str, list[str]]] | None = None
        """When a list, every command sent and its reply lines are appended (schedule traces)."""
        self.name = ""
        self.features: set[str] = set()
        self.variants: tuple[str, ...] = ()
        """The variants the port says it implements (``variants=`` feature), in its order."""
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self._mid: set[int] = set()
        """Threads between spawn and done."""
        self._arena_line = ""
        self._open()

    # -- process --------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self._proc = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
            )
        except OSError as e:
            raise PortError(f"cannot start the port {self.command}: {e}") from None
        self._buf = b""
        self._mid.clear()
        reply = self.exchange("hello 1")[0].split()
        if reply[:2] != ["hello", "1"]:
            raise PortError(f"the port does not speak protocol version 1: {' '.join(reply)}")
        for tok in reply[2:]:
            key, _, value = tok.partition("=")
            if key == "name":
                self.name = value
            elif key == "features":
                for f in value.split(","):
                    k, _, v = f.partition("=")
                    self.features.add(k)
                    if k == "variants":
                        self.variants = tuple(v.split("+"))
        if "controlled" not in self.features:
            self.close()
            raise PortError(f"the port {self.name or self.command} does not list the feature controlled")

    def close(self) -> None:
        """Ask the port to quit; kill it if it does not."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.write(b"quit\n")
            proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def restart(self) -> None:
        """A fresh port process (after a thread that would not finish, or a crash)."""
        self.close()
        self.restarts += 1
        self._open()

    def __enter__(self) -> ControlledPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lines ----------------------------------------------------------------------------

    def _readline(self) -> str:
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise PortError("the port is not running")
        fd = proc.stdout.fileno()
        while b"\n" not in self._buf:
            ready, _, _ = select.select([fd], [], [], self.timeout)
            if not ready:
                raise PortError(f"no reply from the port within {self.timeout} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                code = proc.poll()
                raise PortError(f"the port closed its output (exit status {code})")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode().rstrip("\r")

    def exchange(self, line: str, replies: int = 1) -> list[str]:
        """Send one command line; its reply lines (``replies`` of them, or one ``error`` line)."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise PortError("the port is not running")
        try:
            proc.stdin.write(line.encode() + b"\n")
        except OSError as e:
            raise PortError(f"the port does not read its input ({e}; exit status {proc.poll()})") from None
        out = [self._readline()]
        if replies > 1 and not out[0].startswith("error"):
            out += [self._readline() for _ in range(replies - 1)]
        if self.log is not None:
            self.log.append((line, out))
        return out

    def request(self, line: str) -> str:
        """Send one sequential command; its one reply line."""
        return self.exchange(line)[0]

    # -- RemoteThreads --------------------------------------------------------------------

    def arena(self, scenario: Scenario) -> None:
        self.drain()
        line = (
            f"arena {scenario.depth} {self.page_size} {self.start} {scenario.top_order} "
            f"{variant_of(scenario.allocator)}"
        )
        reply = self.request(line)
        if reply != "ok":
            raise PortError(f"the port refused `{line}`: {reply}")
        self._arena_line = line

    def drain(self) -> None:
        """Step every thread left mid-operation to its end (restart the port if one does not end)."""
        for t in sorted(self._mid):
            for _ in range(DRAIN_STEPS):
                try:
                    _, nxt = self.step(t)
                except RemoteError:
                    self.restart()
                    return
                if type(nxt) is Done:
                    break
            else:
                self.restart()
                return
        self._mid.clear()

    def alloc(self, order: int, hint: int | None) -> int | None:
        reply = self.request(f"alloc {order}" + ("" if hint is None else f" {hint}"))
        return self._page(reply, f"alloc {order} {hint}")

    def spawn_alloc(self, t: int, order: int, hint: int | None) -> Pending | Done:
        return self._spawn(t, f"alloc {order}" + ("" if hint is None else f" {hint}"))

    def spawn_free(self, t: int, page: int, order: int) -> Pending | Done:
        return self._spawn(t, f"free {self.address(page)} {order}")

    def _spawn(self, t: int, cmd: str) -> Pending | Done:
        line = f"spawn {t} {cmd}"
        reply = self.request(line)
        self._mid.add(t)
        return self._next(t, reply, cmd)

    def step(self, t: int) -> tuple[Access, Pending | Done]:
        did, nxt = (*self.exchange(f"step {t}", 2), "")[:2]
        if did.startswith("error"):
            raise PortError(f"the port answered `step {t}` with `{did}`")
        tok = did.split()
        if len(tok) != 6 or tok[0] != "did" or tok[1] != str(t) or tok[2] not in _KIND:
            raise PortError(f"`step {t}` must be answered `did {t} KIND NODE OLD NEW`, got {did!r}")
        try:
            acc = (_KIND[tok[2]], int(tok[3]), int(tok[4]), int(tok[5]))
        except ValueError:
            raise PortError(f"`did` has a number that is not a decimal integer: {did!r}") from None
        return acc, self._next(t, nxt, "step")

    def _next(self, t: int, reply: str, cmd: str) -> Pending | Done:
        tok = reply.split(maxsplit=3)
        if (
            len(tok) == 4
            and tok[0] == "pending"
            and tok[1] == str(t)
            and tok[2] in _KIND
            and tok[2] != "cas_fail"
        ):
            try:
                return Pending(_KIND[tok[2]], int(tok[3]))
            except ValueError:
                pass
        if len(tok) >= 3 and tok[0] == "done" and tok[1] == str(t):
            self._mid.discard(t)
            result = reply.split(maxsplit=2)[2]
            return Done(None if result == "ok" else self._page(result, cmd))
        if tok and tok[0] == "error":
            self._mid.discard(t)
            raise RemoteError(f"the port answered `{cmd}` with `{reply}`")
        raise PortError(f"expected `pending {t} KIND NODE` or `done {t} RESULT`, got {reply!r}")

    def words(self) -> tuple[int, ...] | None:
        if "words" not in self.features:
            return None
        reply = self.request("words").split()
        if not reply or reply[0] != "words":
            raise PortError(f"`words` must be answered `words W0 W1 ...`, got {' '.join(reply)!r}")
        return tuple(int(x) for x in reply[1:])

    # -- addresses ------------------------------------------------------------------------

    def address(self, page: int) -> int:
        """The address of ``page``."""
        return self.start + page * self.page_size

    def _page(self, reply: str, cmd: str) -> int | None:
        if reply == "none":
            return None
        if reply.startswith("error"):
            raise RemoteError(f"the port answered `{cmd}` with `{reply}`")
        try:
            addr = int(reply)
        except ValueError:
            raise PortError(
                f"`{cmd}` must be answered with an address, none or an error, got {reply!r}"
            ) from None
        page, rest = divmod(addr - self.start, self.page_size)
        if rest or page < 0:
            raise RemoteError(f"`{cmd}` returned address {addr}, which is no page of the arena")
        return page
