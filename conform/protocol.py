"""The client side of PORTING.md's line protocol, version 1, and the allocator interface over it.

``Port(command)`` starts a port's protocol executable, shakes hands, and then exchanges one
command line for its reply (or, for ``stress``, for the lines up to ``end``), each within a
timeout. Every line both ways goes into ``Port.transcript``, so any failure can be shown as
the protocol lines a porter pastes into the executable. A port that dies, hangs, or answers
outside the protocol raises ``PortError`` naming what was sent, what came back and the tail
of the port's stderr. It is the one client of the protocol: the controlled mode
(``nbbs.conform._port.ControlledPort``) and the C port's tests speak through it too.

``PortAllocator`` puts the ``NBBS`` interface (``alloc``, ``free``, ``words``,
``live_blocks``, ``arena``, ``transitions``) over a ``Port``: an ``error <Class>`` reply raises
the same ``nbbs.impl.errors`` class the Python allocator would, so the differential machine
of ``nbbs.check.differential`` drives a port unchanged.
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from types import TracebackType

from nbbs.check._sched import RemoteError
from nbbs.impl import errors
from nbbs.impl.arena import Arena
from nbbs.model import bits
from nbbs.model import geometry as g
from nbbs.model.tree import abstraction

PROTOCOL_VERSION = 1
"""The version of PORTING.md's line protocol this client speaks."""

ERROR_CLASSES: dict[str, type[errors.NBBSError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, errors.NBBSError) and cls is not errors.NBBSError
}
"""The ``<Class>`` names an ``error`` reply may carry, mapped to the exceptions they raise."""

STDERR_LINES = 20
"""How much of a port's stderr a ``PortError`` shows."""

SHOWN_REPLY = 300
"""Replies longer than this many characters (``words`` of a deep tree) are cut when shown."""


class PortError(RemoteError):
    """The port is dead, hung, or answered outside the protocol; the message says what it was sent.

    A ``RemoteError``: to the explorer's scheduler, a port that breaks the protocol is a remote
    allocator that failed.
    """


def _cut(line: str) -> str:
    return line if len(line) <= SHOWN_REPLY else f"{line[:SHOWN_REPLY]} ... ({len(line.split())} tokens)"


class Port:
    """A running port: handshake done, one command line at a time, every line kept.

    ``command`` is the executable and its arguments (``["./nbbs-port"]``); ``timeout`` is how
    long a reply may take, in seconds, and ``startup`` how long the handshake may (an
    interpreter's start on a loaded machine takes seconds). Use as a context manager, or call
    ``close()``.
    """

    def __init__(
        self,
        command: Sequence[str],
        timeout: float = 10.0,
        startup: float = 30.0,
        transcript: bool = True,
    ) -> None:
        self.command = list(command)
        self.timeout = timeout
        self.keep = transcript
        """False for long sessions (controlled mode's millions of steps): only the last lines are kept."""
        self.transcript: list[str] = []
        """Every line both ways, ``> `` for what the harness sent and ``< `` for the replies."""
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._buf = b""
        self.dead: PortError | None = None
        """The error that ended the port, if it has ended."""
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
            )
        except OSError as e:
            raise PortError(f"cannot start the port {' '.join(self.command)!r}: {e}") from e
        # stderr is drained by a thread so a chatty port never blocks on a full pipe; stdout
        # is read here, with select's timeout, so a hung port shows as a timeout.
        threading.Thread(target=self._read_stderr, daemon=True).start()
        reply = self.request(f"hello {PROTOCOL_VERSION}", timeout=max(startup, timeout))
        tokens = reply.split(" ")
        if tokens[:2] != ["hello", str(PROTOCOL_VERSION)]:
            raise self._fail(f"the handshake expects 'hello {PROTOCOL_VERSION} name=... features=...'", reply)
        fields = dict(t.split("=", 1) for t in tokens[2:] if "=" in t)
        self.name = fields.get("name", "?")
        self.features: frozenset[str] = frozenset()
        self.variants: tuple[str, ...] = ()
        for f in fields.get("features", "").split(","):
            if f.startswith("variants="):
                self.variants = tuple(v for v in f.removeprefix("variants=").split("+") if v)
            elif f:
                self.features |= {f}

    # -- the exchange ----------------------------------------------------------------------

    def request(self, line: str, timeout: float | None = None) -> str:
        """Send one command line and return its one reply line."""
        self._send(line)
        return self._receive(timeout)

    def request_lines(self, line: str, count: int) -> list[str]:
        """Send one command line and return its ``count`` reply lines (one if the first is an error)."""
        self._send(line)
        out = [self._receive(None)]
        if not out[0].startswith("error"):
            out += [self._receive(None) for _ in range(count - 1)]
        return out

    def request_until(self, line: str, last: str = "end", timeout: float | None = None) -> list[str]:
        """Send one command line and return the reply lines before the line ``last``.

        An ``error ...`` line in place of the first reply line is returned alone.
        """
        self._send(line)
        out: list[str] = []
        while True:
            reply = self._receive(timeout)
            if reply == last:
                return out
            out.append(reply)
            if len(out) == 1 and reply.startswith("error "):
                return out

    def _note(self, line: str) -> None:
        self.transcript.append(line)
        if not self.keep and len(self.transcript) > 2 * STDERR_LINES:
            del self.transcript[:STDERR_LINES]

    def _send(self, line: str) -> None:
        if self.dead is not None:
            raise self.dead
        self._note(f"> {line}")
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(line.encode() + b"\n")
        except (BrokenPipeError, OSError) as e:
            raise self._fail(f"the port no longer reads its stdin ({e})", None) from e

    def _receive(self, timeout: float | None) -> str:
        wait = self.timeout if timeout is None else timeout
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buf:
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                raise self._fail(f"no reply within {wait:g} s: the port hangs", None)
            chunk = os.read(fd, 65536)
            if not chunk:
                code = self._proc.wait()
                raise self._fail(f"the port exited (status {code}) instead of replying", None)
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\n")
        reply = raw.decode(errors="replace").rstrip("\r")
        self._note(f"< {reply}")
        return reply

    def _fail(self, problem: str, got: str | None) -> PortError:
        """A ``PortError`` naming the problem, the last command, the reply and the stderr tail.

        The port is ended: every later request raises the same error.
        """
        sent = next((t[2:] for t in reversed(self.transcript) if t.startswith("> ")), "(nothing)")
        lines = [f"port {' '.join(self.command)!r}: {problem}", f"  sent:     {sent}"]
        lines.append(f"  received: {_cut(got) if got is not None else '(nothing)'}")
        self._stop()
        if self._stderr:
            lines.append("  stderr (last lines):")
            lines += [f"    {e}" for e in self._stderr]
        self.dead = PortError("\n".join(lines))
        return self.dead

    def garbled(self, problem: str, reply: str) -> PortError:
        """The port answered ``reply``, which the protocol does not allow here: end it and say so."""
        return self._fail(problem, reply)

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            self._stderr.append(raw.decode(errors="replace").rstrip("\n"))

    # -- ending ----------------------------------------------------------------------------

    def close(self) -> int:
        """Send ``quit`` if the port is alive, make sure it has exited, and return its exit status."""
        if self.dead is None and self._proc.poll() is None:
            try:
                self._send("quit")
                self._proc.wait(timeout=2)
            except (PortError, subprocess.TimeoutExpired):
                pass
        self._stop()
        if self.dead is None:
            self.dead = PortError(f"port {' '.join(self.command)!r}: closed")
        return self._proc.returncode

    def _stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for f in (self._proc.stdin, self._proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass

    def __enter__(self) -> Port:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- showing a session -----------------------------------------------------------------

    def mark(self) -> int:
        """A position in the transcript, to show a session from there."""
        return len(self.transcript)

    def reproducer(self, since: int, tail: int = 30) -> str:
        """The commands sent since ``since`` (after the handshake), ready to paste, and the exchange.

        The exchange shows the last ``tail`` lines both ways, long replies cut.
        """
        session = self.transcript[since:]
        commands = [f"hello {PROTOCOL_VERSION}", *(t[2:] for t in session if t.startswith("> "))]
        shown = session[-tail:]
        lines = ["protocol lines to paste into the port:", *(f"    {c}" for c in commands)]
        lines.append("the exchange" + (f" (last {tail} lines)" if len(session) > tail else "") + ":")
        lines += [f"    {_cut(t)}" for t in shown]
        return "\n".join(lines)


class PortAllocator:
    """The ``NBBS`` interface over a port: ``arena DEPTH PAGE_SIZE START MAX_ORDER VARIANT`` on creation.

    A rejected arena raises ``ConfigurationError``; ``error <Class>`` replies raise that
    ``nbbs.impl.errors`` class; anything outside the protocol raises ``PortError``.
    ``observable_words`` is False when the port lacks the ``words`` feature: the checkers then
    skip their word-level checks.
    """

    def __init__(
        self,
        port: Port,
        depth: int,
        *,
        page_size: int = 4096,
        start: int = 0,
        max_order: int | None = None,
        variant: str = bits.DEFAULT_VARIANT,
    ) -> None:
        self.port = port
        self.variant = variant
        self.transitions = bits.VARIANTS[variant]
        mo = "-" if max_order is None else str(max_order)
        self._expect_ok(port.request(f"arena {depth} {page_size} {start} {mo} {variant}"))
        self.arena = Arena(depth, page_size, start, max_order)
        self.depth = depth
        self.observable_words = "words" in port.features
        self._words: tuple[int, ...] | None = None
        # Only this allocator's own commands change the port's words, so they are asked
        # for once between two of them (the checkers read them several times a step).

    def alloc(self, order: int, hint: int | None = None) -> int | None:
        """``alloc ORDER [HINT]``: an address, or None for ``none``."""
        self._words = None
        reply = self.port.request(f"alloc {order}" + ("" if hint is None else f" {hint}"))
        if reply == "none":
            return None
        if reply.isdigit():
            return int(reply)
        self._raise(reply)
        raise AssertionError("unreachable")

    def alloc_bytes(self, size: int) -> int | None:
        """The paper's ``bd_xx_malloc``: not a protocol command, but ``alloc`` of the order the
        Python arena rounds ``size`` to (so a port is checked on the allocs it answers)."""
        return self.alloc(self.arena.order_for_bytes(size))

    def free(self, address: int, order: int | None = None) -> None:
        """``free ADDR [ORDER]``."""
        self._words = None
        self._expect_ok(self.port.request(f"free {address}" + ("" if order is None else f" {order}")))

    def words(self) -> tuple[int, ...]:
        """``words``: the port's status words, index 0 unused."""
        if self._words is not None:
            return self._words
        reply = self.port.request("words")
        tokens = reply.split(" ")
        count = g.node_count(self.depth)
        if tokens[0] != "words" or len(tokens) != count + 1 or not all(t.isdigit() for t in tokens[1:]):
            if reply.startswith("error "):
                self._raise(reply)
            raise self.port.garbled(f"expected 'words' and {count} decimal words (index 0 first)", reply)
        self._words = tuple(int(t) for t in tokens[1:])
        return self._words

    def live_blocks(self) -> list[tuple[int, int]]:
        """(address, order) of every block the words show allocated, by address."""
        live = abstraction(self.words(), self.depth)
        return sorted((self.arena.address(n), g.order_of(self.depth, n)) for n in live)

    def _expect_ok(self, reply: str) -> None:
        if reply != "ok":
            self._raise(reply)

    def _raise(self, reply: str) -> None:
        """Raise the ``NBBSError`` an ``error <Class> <msg>`` reply names, or ``PortError``."""
        tokens = reply.split(" ", 2)
        if tokens[0] == "error" and len(tokens) >= 2 and tokens[1] in ERROR_CLASSES:
            raise ERROR_CLASSES[tokens[1]](f"(from the port) {tokens[2] if len(tokens) > 2 else ''}")
        raise self.port.garbled("expected a result or 'error <Class> <msg>' with an NBBSError class", reply)
