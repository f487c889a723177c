"""``python -m nbbs.conform.pyport``: PORTING.md's line protocol over ``nbbs.impl.NBBS``.

The protocol's reference implementation, and the harness's own test subject: run with a
mutant (``--mutant NAME``, a transition mutant of ``check/mutants.py`` or a code mutant of
``check/impl_mutants.py``) or a port defect (``--defect``, ``--crash-after``, ``--hang-after``)
it becomes a broken port that ``nbbs conform`` must catch. ``--controlled`` serves the
controlled mode (``nbbs.conform._controlled_server``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

from nbbs.check.impl_mutants import IMPL_MUTANTS
from nbbs.check.mutants import COUNTED_MUTANTS, TRANSITION_MUTANTS, mutant_allocator
from nbbs.conform.protocol import PROTOCOL_VERSION
from nbbs.impl import errors
from nbbs.impl.nbbs import NBBS
from nbbs.model import bits

MUTANTS = sorted({*TRANSITION_MUTANTS, *COUNTED_MUTANTS, *IMPL_MUTANTS})
"""Every mutant ``--mutant`` accepts."""

DEFECTS = ("wrong-error", "leak")
"""Port defects ``--defect`` writes in: ``wrong-error`` answers a double free with
``InteriorAddressError``; ``leak`` acknowledges every third valid free without freeing."""


def _allocator_class(mutant: str | None) -> tuple[type[NBBS], tuple[str, ...]]:
    """The allocator class to run and the variants it implements."""
    if mutant is None:
        return NBBS, tuple(bits.VARIANTS)
    cls = IMPL_MUTANTS[mutant][1] if mutant in IMPL_MUTANTS else mutant_allocator(mutant)
    t = cls.transitions
    named = [name for name, v in bits.VARIANTS.items() if v is t]
    # A mutated bundle is a copy of the variant it breaks: counted has no mark phase.
    return cls, (named[0] if named else "reference" if t.marks else "counted",)


def _leaky(cls: type[NBBS]) -> type[NBBS]:
    """``cls`` whose every third valid free is acknowledged and not done (the ``leak`` defect)."""

    class Leaky(cls):  # type: ignore[valid-type,misc]
        def free(self, address: int, order: int | None = None) -> None:
            with self._leak_lock:
                self._frees = getattr(self, "_frees", 0) + 1  # counted per arena: repeatable
                leak = self._frees % 3 == 0
            if leak:
                # defect: the block is checked, acknowledged and never given back
                self.arena.block_to_free(
                    address, order, lambda n: bool(self.transitions.is_occupied(self._w.load(n)))
                )
                return
            super().free(address, order)

    Leaky._leak_lock = threading.Lock()
    return Leaky


class Server:
    """One session of the protocol: reads commands from ``inp``, writes replies to ``out``."""

    def __init__(self, args: argparse.Namespace, inp: TextIO, out: TextIO) -> None:
        self.cls, self.variants = _allocator_class(args.mutant)
        if args.defect == "leak":
            self.cls = _leaky(self.cls)
        self.args = args
        self.inp, self.out = inp, out
        self.alloc: NBBS | None = None
        self.commands = 0

    def reply(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def serve(self) -> int:
        """Answer commands until ``quit`` or the end of input; the exit status."""
        for raw in self.inp:
            line = raw.rstrip("\n")
            self.commands += 1
            if self.args.crash_after is not None and self.commands > self.args.crash_after:
                print(f"pyport: crashing on purpose at command {self.commands}: {line}", file=sys.stderr)
                sys.stderr.flush()
                return 3
            if self.args.hang_after is not None and self.commands > self.args.hang_after:
                time.sleep(3600)
            if line == "quit":
                return 0
            try:
                self.command(line.split(" "))
            except errors.NBBSError as e:
                name = type(e).__name__
                if self.args.defect == "wrong-error" and isinstance(e, errors.DoubleFreeError):
                    name = "InteriorAddressError"  # defect: the wrong class
                self.reply(f"error {name} {e}")
            except (ValueError, IndexError) as e:
                self.reply(f"error ProtocolError cannot parse {line!r}: {e}")
        return 0

    def command(self, tokens: list[str]) -> None:
        """Answer one command line, split into tokens."""
        verb, args = tokens[0], tokens[1:]
        if verb == "hello":
            if args != [str(PROTOCOL_VERSION)]:
                self.reply(f"error ProtocolError this port speaks version {PROTOCOL_VERSION} only")
                return
            features = ["stress", "variants=" + "+".join(self.variants)]
            if not self.args.no_words:
                features.insert(0, "words")
            self.reply(f"hello {PROTOCOL_VERSION} name={self.args.name} features={','.join(features)}")
        elif verb == "arena":
            depth, page_size, start, max_order, variant = args
            if variant not in self.variants:
                raise errors.ConfigurationError(
                    f"this port implements {'+'.join(self.variants)}, not {variant}"
                )
            mo = None if max_order == "-" else int(max_order)
            kw: dict[str, str] = (
                {} if self.cls is not NBBS and len(self.variants) == 1 else {"variant": variant}
            )
            self.alloc = self.cls(
                int(depth),
                page_size=int(page_size),
                start=int(start),
                max_order=mo,
                variant=kw.get("variant"),
            )
            self.reply("ok")
        elif verb == "alloc":
            a = self.allocator().alloc(int(args[0]), int(args[1]) if len(args) > 1 else None)
            self.reply("none" if a is None else str(a))
        elif verb == "free":
            if len(args) not in (1, 2):
                raise ValueError("free takes ADDR [ORDER]")
            order = int(args[1]) if len(args) > 1 and args[1] != "-" else None
            self.allocator().free(int(args[0]), order)
            self.reply("ok")
        elif verb == "words" and not self.args.no_words:
            self.reply("words " + " ".join(map(str, self.allocator().words())))
        elif verb == "stress":
            threads, ops, seed = (int(x) for x in args)
            for record in stress(self.allocator(), threads, ops, seed):
                self.reply(json.dumps(record, separators=(",", ":")))
            self.reply("end")
        else:
            self.reply(f"error Unsupported {verb}")

    def allocator(self) -> NBBS:
        if self.alloc is None:
            raise ValueError("no arena yet: send 'arena DEPTH PAGE_SIZE START MAX_ORDER VARIANT' first")
        return self.alloc


def stress(alloc: NBBS, threads: int, ops: int, seed: int) -> list[dict[str, object]]:
    """``threads`` real threads doing ``ops`` random allocs and frees each; the history by call time.

    Thread ``t`` draws from ``random.Random(seed * 1_000_003 + t)``: an alloc of an order up to
    ``max_order``, or (about half the time, when it holds blocks) a free of one it holds.
    """
    if threads < 1 or ops < 0:
        raise ValueError("stress needs THREADS >= 1 and OPS >= 0")
    start = threading.Barrier(threads)
    records: list[list[dict[str, object]]] = [[] for _ in range(threads)]

    def worker(t: int) -> None:
        rng = random.Random(seed * 1_000_003 + t)
        held: list[tuple[int, int]] = []
        out = records[t]
        start.wait()
        for _ in range(ops):
            if held and rng.random() < 0.5:
                address, order = held.pop(rng.randrange(len(held)))
                call = time.monotonic_ns()
                try:
                    alloc.free(address, order)
                    result: object = "ok"
                except errors.NBBSError as e:
                    result = type(e).__name__
                ret = time.monotonic_ns()
                out.append(
                    {
                        "thread": t,
                        "op": "free",
                        "args": [address, order],
                        "result": result,
                        "call": call,
                        "ret": ret,
                    }
                )
            else:
                order = rng.randint(0, alloc.max_order)
                call = time.monotonic_ns()
                a = alloc.alloc(order)
                ret = time.monotonic_ns()
                if a is not None:
                    held.append((a, order))
                out.append(
                    {"thread": t, "op": "alloc", "args": [order], "result": a, "call": call, "ret": ret}
                )

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sorted((r for rs in records for r in rs), key=lambda r: int(r["call"]))  # type: ignore[call-overload]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nbbs.conform.pyport", description=__doc__.splitlines()[0])
    p.add_argument("--name", default="pyport", help="the name the handshake gives")
    p.add_argument(
        "--mutant", choices=MUTANTS, help="run a broken allocator (check/mutants.py, impl_mutants.py)"
    )
    p.add_argument("--defect", choices=DEFECTS, help="a port defect to write in")
    p.add_argument("--crash-after", type=int, metavar="N", help="exit with status 3 on command N + 1")
    p.add_argument("--hang-after", type=int, metavar="N", help="stop answering at command N + 1")
    p.add_argument("--no-words", action="store_true", help="do not offer the words feature")
    p.add_argument("--controlled", action="store_true", help="serve the controlled mode instead")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the protocol on stdin/stdout; the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--controlled" in argv:
        # The controlled build: the same allocator, its threads stepped by the harness.
        from nbbs.conform import _controlled_server

        return _controlled_server.main([a for a in argv if a != "--controlled"])
    return Server(parser().parse_args(argv), sys.stdin, sys.stdout).serve()


if __name__ == "__main__":
    sys.exit(main())
