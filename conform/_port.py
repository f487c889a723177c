"""A port's controlled mode over a pipe: the line protocol's client, as the explorer's ``RemoteThreads``.

``ControlledPort(command)`` starts the port's executable through ``protocol.Port`` (the one
client of the protocol: handshake, timeouts, the stderr tail in errors) and then turns the
runtime's calls into protocol lines: ``arena`` for a fresh arena, ``alloc`` for the
sequential setup, ``spawn`` / ``step`` for the scheduled operations, ``words``. Pages and nodes
on the runtime's side, addresses on the port's (``page_size``, ``start``).

A run may stop with port threads mid-operation (a failure, a counterexample's schedule that
ends mid-flight, ``max_steps``). Before the next arena those threads are stepped to their end
without preemption (``drain``); if they do not end, the port is restarted, so a stuck port
never poisons the next run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from nbbs.check._sched import Access, Done, Pending, RemoteError
from nbbs.check.explore import Scenario
from nbbs.conform.protocol import Port, PortError
from nbbs.model import bits

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
        self.restarts = 0
        self._port: Port | None = None
        self._mid: set[int] = set()
        """Threads between spawn and done."""
        self._open()

    # -- process --------------------------------------------------------------------------

    def _open(self) -> None:
        self._mid.clear()
        # Controlled runs make millions of exchanges: keep only the last lines (errors show them).
        self._port = Port(self.command, timeout=self.timeout, transcript=False)
        if "controlled" not in self._port.features:
            self.close()
            raise PortError(f"the port {self.name or self.command} does not list the feature controlled")

    @property
    def name(self) -> str:
        """The name the port gave in its handshake."""
        return "" if self._port is None else self._port.name

    @property
    def features(self) -> frozenset[str]:
        """The features the port listed in its handshake."""
        return frozenset() if self._port is None else self._port.features

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants the port says it implements (``variants=`` feature), in its order."""
        return () if self._port is None else self._port.variants

    def close(self) -> None:
        """Ask the port to quit; kill it if it does not."""
        port, self._port = self._port, None
        if port is not None:
            port.close()

    def restart(self) -> None:
        """A fresh port process (after a thread that would not finish, a crash, or a hang)."""
        self.close()
        self.restarts += 1
        self._open()

    def __enter__(self) -> ControlledPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lines ----------------------------------------------------------------------------

    def exchange(self, line: str, replies: int = 1) -> list[str]:
        """Send one command line; its reply lines (``replies`` of them, or one ``error`` line)."""
        if self._port is None:
            raise PortError("the port is not running")
        out = self._port.request_lines(line, replies)
        if self.log is not None:
            self.log.append((line, out))
        return out

    def request(self, line: str) -> str:
        """Send one sequential command; its one reply line."""
        return self.exchange(line)[0]

    # -- RemoteThreads --------------------------------------------------------------------

    def arena(self, scenario: Scenario) -> None:
        self.drain()
        if self._port is None or self._port.dead is not None:
            self.restart()  # it hung or died in the last run: a PortError said so there
        line = (
            f"arena {scenario.depth} {self.page_size} {self.start} {scenario.top_order} "
            f"{variant_of(scenario.allocator)}"
        )
        reply = self.request(line)
        if reply != "ok":
            raise PortError(f"the port refused `{line}`: {reply}")

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
