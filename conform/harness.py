"""``conform(command, options)``: every conformance check of one port, as one list of results.

The modes and what each finds:

* **sequential** (always): the differential machine of ``nbbs.check.differential`` against
  ``model/spec.py`` through ``PortAllocator``, for each variant the port lists, bad inputs
  included; a failure is shrunk and shown as protocol lines (``_sequential``).
* **stress** (``Options.stress``): real-thread histories checked for overlap, refused frees,
  linearizability and loss (``_stress``).
* **controlled** (``Options.controlled``): ``nbbs.conform.controlled.run``, built on the
  controlled branch; until it is there the result says "not built".

Each result's status is ``ok``, ``violation`` (exit 1), ``broken port`` (exit 2), ``not
built`` or ``unsupported`` (exit 2): ``exit_status``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nbbs.conform import _sequential, _stress
from nbbs.conform._result import BROKEN, MISSING, OK, UNSUPPORTED, VIOLATION, Result, exit_status
from nbbs.conform.protocol import Port, PortError
from nbbs.model import bits

__all__ = [
    "BROKEN",
    "MISSING",
    "OK",
    "UNSUPPORTED",
    "VIOLATION",
    "Options",
    "Result",
    "conform",
    "exit_status",
]


@dataclass(frozen=True)
class Options:
    """What to run, and its bounds."""

    stress: bool = False
    controlled: bool = False
    examples: int = 200
    """Sequential examples per variant, at most."""
    seconds: float = 60.0
    """The whole budget, shared by the modes run (sequential variants split their share)."""
    variants: tuple[str, ...] = ()
    """The variants to check; empty: those of ``DOCUMENTED`` the port lists (stress: ``counted``
    only, the one variant safe under concurrency)."""
    max_depth: int = 10
    """The deepest arena the sequential machine draws."""
    timeout: float = 10.0
    """How long one reply may take, in seconds (a ``stress`` history: 12 times as long)."""
    shrink_seconds: float = _sequential.SHRINK_SECONDS
    seed: int = 0
    """Seeds the stress rounds."""


DOCUMENTED = ("counted", "reference")
"""The variants PORTING.md specifies; by default the sequential run checks those the port lists
(or, if it lists neither, every variant it lists)."""

Progress = Callable[[str, int, int], None]
"""``progress(check, done, total)``: called as a check advances (``total`` 0 when unknown)."""


def conform(command: Sequence[str], options: Options, progress: Progress | None = None) -> list[Result]:
    """Run the checks ``options`` asks for against the port ``command`` starts; one result per check.

    A port that cannot be started or fails the handshake gives one ``broken port`` result.
    """
    tell: Progress = progress or (lambda check, done, total: None)
    started = time.perf_counter()
    try:
        port = Port(command, timeout=options.timeout)
    except PortError as e:
        return [Result("handshake", 0, BROKEN, time.perf_counter() - started, str(e))]
    results: list[Result] = []
    with port:
        known = [v for v in port.variants if v in bits.VARIANTS] or [bits.DEFAULT_VARIANT]
        unknown = [v for v in options.variants if v not in port.variants and port.variants]
        if unknown:
            why = f"the port lists variants {'+'.join(port.variants)}, not {', '.join(unknown)}"
            return [Result("variants", 0, UNSUPPORTED, 0.0, why)]
        sequential = list(options.variants) or [v for v in known if v in DOCUMENTED] or known
        stressed = list(options.variants) or (
            [bits.DEFAULT_VARIANT] if bits.DEFAULT_VARIANT in known else known[:1]
        )
        modes = 1 + options.stress + options.controlled
        share = options.seconds / modes
        for v in sequential:
            name = f"sequential {v}"
            tell(name, 0, options.examples)
            r = _sequential.run(
                port,
                v,
                options.examples,
                share / len(sequential),
                options.max_depth,
                tick=lambda n, name=name: tell(name, n, options.examples),  # type: ignore[misc]
                shrink_seconds=options.shrink_seconds,
            )
            results.append(r)
            if r.status == BROKEN:
                return results
        if options.stress:
            for v in stressed:
                name = f"stress {v}"
                tell(name, 0, 0)
                r = _stress.run(
                    port,
                    v,
                    share / len(stressed),
                    seed=options.seed,
                    tick=lambda n, name=name: tell(name, n, 0),  # type: ignore[misc]
                    stress_timeout=12 * options.timeout,
                )
                results.append(r)
                if r.status == BROKEN:
                    return results
    if options.controlled:
        tell("controlled", 0, 0)
        results += controlled(command, options, share)
    return results


def controlled(command: Sequence[str], options: Options, seconds: float) -> list[Result]:
    """The controlled mode, ``nbbs.conform.controlled.run(command, seconds=..., variants=...)``.

    It is built on another branch; until it is merged this says so (status ``not built``).
    It may return one result or a list; objects with ``check``, ``ok``, ``seconds`` (and
    ``examples`` or ``runs``, ``detail``) are taken as results too.
    """
    try:
        mode = importlib.import_module("nbbs.conform.controlled")
    except ModuleNotFoundError as e:
        if e.name != "nbbs.conform.controlled":
            raise
        return [Result("controlled", 0, MISSING, 0.0, "controlled mode not built (nbbs.conform.controlled)")]
    out = mode.run(list(command), seconds=seconds, variants=options.variants)
    return [_as_result(o) for o in (out if isinstance(out, list) else [out])]


def _as_result(o: Any) -> Result:
    if isinstance(o, Result):
        return o
    status = getattr(o, "status", OK if o.ok else VIOLATION)
    runs = getattr(o, "runs", getattr(o, "examples", 0))
    return Result(o.check, runs, status, o.seconds, getattr(o, "detail", ""))
