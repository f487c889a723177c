"""``conform(command, options)``: every conformance check of one port, as one list of results.

The modes and what each finds:

* **sequential** (always): the differential machine of ``nbbs.check.differential`` against
  ``model/spec.py`` through ``PortAllocator``, for each variant the port lists, bad inputs
  included; a failure is shrunk and shown as protocol lines (``_sequential``).
* **stress** (``Options.stress``): real-thread histories checked for overlap, refused frees,
  linearizability and loss (``_stress``).
* **controlled** (``Options.controlled``): ``nbbs.conform.controlled.run`` (the explorer's
  strategies and checks on the port's own threads), then its scan-cost check.

Each result's status is ``ok``, ``violation`` (exit 1), ``broken port`` or ``unsupported``
(exit 2): ``exit_status``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nbbs.conform import _sequential, _stress
from nbbs.conform._result import BROKEN, OK, UNSUPPORTED, VIOLATION, Result, exit_status
from nbbs.conform.protocol import Port, PortError
from nbbs.model import bits

__all__ = [
    "BROKEN",
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
    """The variants to check; empty: those of ``DOCUMENTED`` the port lists (stress: one, the
    shipped ``top_down_node`` if the port lists it, else ``counted``: a variant safe under
    concurrency)."""
    max_depth: int = 10
    """The deepest arena the sequential machine draws."""
    timeout: float = 10.0
    """How long one reply may take, in seconds (a ``stress`` history: 12 times as long)."""
    html: str | None = None
    """Controlled mode: write the first failing schedule, re-run on the port, as a viewer page here."""
    scenarios: tuple[str, ...] = ()
    """Controlled mode: scenario strings to explore, or schedule strings to replay (empty: random
    scenarios)."""
    shrink_seconds: float = _sequential.SHRINK_SECONDS
    seed: int = 0
    """Seeds the stress rounds."""


DOCUMENTED = ("top_down_node", "counted", "reference")
"""The variants PORTING.md specifies in full (the shipped one first; ``top_down``, specified as
far as it differs, is checked when asked for); by default the sequential run checks those the
port lists (or, if it lists none of them, every variant it lists)."""

SAFE = (bits.DEFAULT_VARIANT, "counted")
"""The variants a default stress run picks from, in this order: safe under concurrency."""

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
        sequential = list(options.variants) or [v for v in DOCUMENTED if v in known] or known
        stressed = list(options.variants) or ([v for v in SAFE if v in known] or known)[:1]
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
    """The controlled mode (``nbbs.conform.controlled``): the explorer's strategies on the port's
    own threads, every execution checked as ``nbbs explore`` checks ``impl/nbbs.py``, then the
    scan-cost check. The command must be the port's controlled build."""
    from nbbs.conform import controlled as mode

    variant = options.variants[0] if options.variants else None
    config = mode.ControlledConfig(seconds=seconds * 0.8, seed=options.seed, variant=variant)
    if options.scenarios:
        config = dataclasses.replace(config, scenarios=options.scenarios)
    started = time.perf_counter()
    try:
        run = mode.run(list(command), config)
    except mode.PortError as e:
        return [Result("controlled", 0, BROKEN, time.perf_counter() - started, str(e))]
    detail = (
        ""
        if run.ok
        else run.table()
        + "\n"
        + "\n\n".join(
            f"replay on the port: nbbs conform --controlled --scenario {s} -- ...\n{why}"
            for s, why in run.failures[:3]
        )
    )
    if run.failures and options.html is not None:
        written = mode.page(list(command), run.failures[0][0], options.html, config)
        detail += f"\nthe port's run as a page: {written} (open it in a browser)"
    results = [
        Result(f"controlled {run.variant}", run.schedules, OK if run.ok else VIOLATION, run.seconds, detail)
    ]
    if not run.ok:
        return results  # the cost of a port that is already wrong says nothing more
    started = time.perf_counter()
    try:
        cost = mode.scan_cost(list(command), variant=run.variant)
    except mode.PortError as e:
        return [*results, Result("scan cost", 0, BROKEN, time.perf_counter() - started, str(e))]
    results.append(
        Result(
            f"scan cost {run.variant}",
            len(cost.occupancy),
            VIOLATION if cost.flagged else OK,
            time.perf_counter() - started,
            cost.table() if cost.flagged else "",
        )
    )
    return results
