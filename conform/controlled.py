"""Controlled mode: a port's own threads, scheduled by the explorer, checked as ``nbbs explore`` checks NBBS.

A port built with the controlled atomics shim (PORTING.md, "Controlled mode") is one more
allocator behind the explorer: its threads are the runtime's *remote threads*
(``check/_sched.RemoteThreads``), driven over a pipe by ``_port.ControlledPort``. The same
strategies (random, PCT, bounded exhaustive with sleep sets), the same checks (no overlap at
every alloc return, quiescent exactness, linearizability) and, for a port that names its
variant, the same refinement against ``model/steps.py``; a failure prints a schedule string
that replays on the port (``replay``) and on the Python allocator (``nbbs replay``).

Public surface::

    run(port_command, config) -> ControlledResult      # what `nbbs conform --controlled` calls
    replay(port_command, text, config) -> (Outcome, str)
    reproduce(port_command, counterexample) -> Reproduction   # the bridge, for ports
    scan_cost(port_command, ...) -> ScanCost
    export_schedules(out_dir) -> list[Path]; replay_trace(port_command, path) -> list[str]
    reference_port(mutant=None) -> the Python reference port's command
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nbbs.check._checks import Checker
from nbbs.check._sched import CALL, Outcome
from nbbs.check.bridge import Counterexample, Reproduction
from nbbs.check.bridge import reproduce as _bridge
from nbbs.check.explore import (
    ExploreConfig,
    ExplorerError,
    Report,
    Scenario,
    explain,
    explore,
    parse,
    random_scenario,
    schedule_string,
)
from nbbs.conform._port import COUNTEREXAMPLES, ControlledPort, reference_port, variant_of
from nbbs.conform._scancost import ScanCost, scan_cost
from nbbs.conform._schedtrace import Follow, export_schedules, replay_trace
from nbbs.conform.protocol import PortError
from nbbs.model import bits, steps, tree

__all__ = [
    "COUNTEREXAMPLES",
    "ControlledConfig",
    "ControlledPort",
    "ControlledResult",
    "Counterexample",
    "PortError",
    "ScanCost",
    "export_schedules",
    "page",
    "reference_port",
    "replay",
    "replay_trace",
    "reproduce",
    "run",
    "scan_cost",
]


@dataclass(frozen=True)
class ControlledConfig:
    """Every bound of a controlled-mode run, with its default.

    ``strategy``          random, pct (default) or exhaustive, as ``nbbs explore``.
    ``seconds``           time for the whole run, shared equally by the scenarios (None: no limit).
    ``schedules``         most executions per scenario (default 300).
    ``scenarios``         how many random scenarios (default 3), or scenario strings
                          (``d3-m3-counted:a0@0+f0,a0@1``), explored; a schedule string (with its
                          third field) is replayed instead, one checked execution. The allocator
                          field names the variant.
    ``threads``, ``ops``, ``depth``   the random scenarios' shape (2 threads of 2 operations, depth 3).
    ``seed``              every random choice (scenarios and strategy) derives from it.
    ``variant``           the variant to run (None: ``counted`` if the port lists it, else its first).
    ``refinement``        compare every access with ``model/steps.py`` (only if the port lists the variant).
    ``pct_depth``, ``preemption_bound``, ``quiescent``, ``max_steps``, ``lin_timeout``: as ``ExploreConfig``.
    ``page_size``, ``start``: the arena the port is given.
    ``stop_on_failure``   stop a scenario at its first failing execution (default True).
    """

    strategy: Literal["random", "pct", "exhaustive"] = "pct"
    seconds: float | None = None
    schedules: int = 300
    scenarios: int | tuple[str, ...] = 3
    threads: int = 2
    ops: int = 2
    depth: int = 3
    seed: int = 0
    variant: str | None = None
    refinement: bool = True
    pct_depth: int = 3
    preemption_bound: int = 2
    quiescent: Literal["obtainable", "strict", "stale_coal", "off"] = "obtainable"
    max_steps: int = 20_000
    lin_timeout: float = 5.0
    page_size: int = 4096
    start: int = 0
    stop_on_failure: bool = True

    def explore_config(self, seconds: float | None, refinement: bool) -> ExploreConfig:
        """The explorer's config for one scenario."""
        return ExploreConfig(
            strategy=self.strategy,
            seed=self.seed,
            max_schedules=self.schedules,
            seconds=seconds,
            pct_depth=self.pct_depth,
            preemption_bound=self.preemption_bound,
            max_steps=self.max_steps,
            lin_timeout=self.lin_timeout,
            quiescent=self.quiescent,
            refinement=refinement,
            stop_on_failure=self.stop_on_failure,
        )


@dataclass
class ControlledResult:
    """What a controlled-mode run did and found."""

    port: str
    """The port's name (from its handshake)."""
    variant: str
    refinement: bool
    """Whether accesses were compared with the step machine (the port lists the variant)."""
    reports: list[Report] = field(default_factory=list)
    """One explorer report per scenario."""
    seconds: float = 0.0
    restarts: int = 0
    """Times the port was restarted (a thread left mid-operation that would not finish)."""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    @property
    def schedules(self) -> int:
        return sum(r.schedules for r in self.reports)

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(schedule string, explanation) of every failing execution."""
        return [f for r in self.reports for f in r.failures]

    def table(self) -> str:
        """A summary table, one row per scenario."""
        rows = [f"{'scenario':<44} {'schedules':>9} {'per s':>7}  result"]
        for r in self.reports:
            result = "ok" if r.ok else r.failures[0][1].split(":", 1)[0]
            if r.exhausted:
                result += " (exhausted)"
            rows.append(f"{r.scenario.code():<44} {r.schedules:>9} {r.rate:>7.0f}  {result}")
        check = "every access vs model/steps.py" if self.refinement else "no refinement (variant not listed)"
        rows.append(
            f"port {self.port}, variant {self.variant}, {check}: {self.schedules} schedules "
            f"in {self.seconds:.1f} s, {'ok' if self.ok else f'{len(self.failures)} failure(s)'}"
        )
        return "\n".join(rows)

    def as_json(self) -> dict[str, Any]:
        """The result as plain data (``--json``)."""
        return {
            "port": self.port,
            "variant": self.variant,
            "refinement": self.refinement,
            "ok": self.ok,
            "schedules": self.schedules,
            "seconds": round(self.seconds, 3),
            "restarts": self.restarts,
            "scenarios": [
                {
                    "scenario": r.scenario.code(),
                    "strategy": r.strategy,
                    "schedules": r.schedules,
                    "seconds": round(r.seconds, 3),
                    "exhausted": r.exhausted,
                    "failures": [{"schedule": s, "explanation": e} for s, e in r.failures],
                }
                for r in self.reports
            ],
        }


def _choose_variant(port: ControlledPort, config: ControlledConfig) -> tuple[str, bool]:
    """The variant to run and whether refinement applies."""
    if config.variant is not None:
        if config.variant not in bits.VARIANTS:
            raise ExplorerError(f"unknown variant {config.variant!r}; known: {sorted(bits.VARIANTS)}")
        return config.variant, config.refinement and config.variant in port.variants
    known = [v for v in port.variants if v in bits.VARIANTS]
    variant = bits.DEFAULT_VARIANT if not known or bits.DEFAULT_VARIANT in known else known[0]
    return variant, config.refinement and variant in known


def _scenarios(config: ControlledConfig, variant: str) -> list[tuple[Scenario, list[int] | None]]:
    """The scenarios to run, each with the schedule to replay (None: explore it): random ones of
    ``variant``, or the given strings (their own variant unless ``config.variant`` names one)."""
    name = variant
    if isinstance(config.scenarios, int):
        rng = random.Random(config.seed)
        return [
            (random_scenario(rng, config.threads, config.ops, config.depth, name), None)
            for _ in range(config.scenarios)
        ]
    out: list[tuple[Scenario, list[int] | None]] = []
    for text in config.scenarios:
        sc, schedule = parse(text)
        keep = config.variant is None
        out.append(
            (
                sc if keep else dataclasses.replace(sc, allocator=name),
                schedule if text.count(":") == 2 else None,
            )
        )
    return out


def run(
    port_command: Sequence[str],
    config: ControlledConfig = ControlledConfig(),
    progress: Callable[[str], None] | None = None,
) -> ControlledResult:
    """Explore schedules of the port's own threads, scenario by scenario, checking every execution.

    ``progress`` gets a line per scenario as it finishes.
    """
    started = time.perf_counter()
    with ControlledPort(port_command, config.page_size, config.start) as port:
        variant, refinement = _choose_variant(port, config)
        result = ControlledResult(port.name, variant, refinement)
        scenarios = _scenarios(config, variant)
        share = None if config.seconds is None else config.seconds / max(len(scenarios), 1)
        for sc, schedule in scenarios:
            # Refinement needs the port to say it implements the scenario's variant.
            own = variant_of(sc.allocator)
            ecfg = config.explore_config(share, refinement and (own == variant or own in port.variants))
            if schedule is None:
                report = explore(sc, ecfg, remote=port)
                report.failures = [(s, _on_port(port, s, ecfg)[1]) for s, _ in report.failures]
            else:
                report = _replayed(port, sc, schedule, ecfg)
            result.reports.append(report)
            if progress is not None:
                progress(f"{sc.code()}: {report.schedules} schedules, {'ok' if report.ok else 'FAILED'}")
        result.restarts = port.restarts
    result.seconds = time.perf_counter() - started
    return result


def _replayed(port: ControlledPort, sc: Scenario, schedule: list[int], config: ExploreConfig) -> Report:
    """One given schedule of ``sc`` on the port, as a report of one execution."""
    started = time.perf_counter()
    report = Report(sc, "replay", schedules=1)
    out, why = _on_port(port, schedule_string(sc, schedule), config)
    if out.failure is not None:
        report.failures = [(schedule_string(sc, out.schedule), why)]
        report.failed_at = [1]
        report.first_failure_at = 1
    report.seconds = time.perf_counter() - started
    return report


def replay(
    port_command: Sequence[str], text: str, config: ControlledConfig = ControlledConfig()
) -> tuple[Outcome, str]:
    """Re-run a schedule string on the port: the checked outcome and its explanation."""
    scenario, _ = parse(text)
    with ControlledPort(port_command, config.page_size, config.start) as port:
        variant = variant_of(scenario.allocator)
        ecfg = config.explore_config(None, config.refinement and variant in port.variants)
        return _on_port(port, text, ecfg)


def page(
    port_command: Sequence[str], text: str, path: str | Path, config: ControlledConfig = ControlledConfig()
) -> Path:
    """Re-run schedule ``text`` on the port and write what the port did, access by access, as a
    counterexample page (``nbbs conform --html``, ``check/viewer.py``): the path written."""
    from nbbs.check import viewer

    scenario, _ = parse(text)
    with ControlledPort(port_command, config.page_size, config.start) as port:
        port.log = []
        variant = variant_of(scenario.allocator)
        ecfg = config.explore_config(None, config.refinement and variant in port.variants)
        out, _ = _on_port(port, text, ecfg)
        log, name = port.log, port.name
    transcript = [x for cmd, replies in log for x in (f"> {cmd}", *(f"< {r}" for r in replies))]
    f = out.failure
    violation = None if f is None else viewer.Violation(f.kind, " ".join(f.message.splitlines()[:2]), f.step)
    trace = viewer.from_protocol(transcript, violation, title=f"nbbs conform: {name}", source=text)
    return viewer.write(trace, path)


def _on_port(port: ControlledPort, text: str, config: ExploreConfig) -> tuple[Outcome, str]:
    """A schedule string re-run on the port, checked and explained; a refinement failure gets both trees."""
    scenario, schedule = parse(text)
    checker = config.checker(scenario, port)
    out = checker.run(Follow(schedule, stop=False))
    if out.failure is None:
        return (
            out,
            f"all checks passed on the port ({len(out.schedule)} steps, {out.preemptions} preemption(s))",
        )
    lines = [explain(scenario, out), f"on the port: nbbs.conform.controlled.replay(COMMAND, {text!r})"]
    if out.failure.kind == "refinement":
        lines.append(_both_trees(port, checker, scenario, out))
    return out, "\n".join(lines)


def _both_trees(port: ControlledPort, checker: Checker, scenario: Scenario, out: Outcome) -> str:
    """The port's tree right after its first differing access (from ``words``) and the model's."""
    assert out.failure is not None
    step = out.failure.step
    accesses = [ev for ev in out.trace if ev[2] < CALL]
    before = list(out.initial_words)
    for ev in accesses[:step]:
        before[ev[1]] = ev[4]
    model = list(before)
    acc = checker.mismatch
    if acc is not None:
        model[acc.node] = steps.effect(acc, before[acc.node])
    # Re-run up to and including the differing access, then ask the port for its words.
    checker.execution().run(Follow(out.schedule[: step + 1], stop=True))
    got = port.words()
    if got is None:
        _, node, _, _, new = accesses[step]
        got = tuple(new if n == node else w for n, w in enumerate(before))
        source = "from its reported accesses (no words feature)"
    else:
        source = "from `words`"
    return "\n".join(
        [
            f"the port's tree after step {step}, {source}:",
            tree.render(tuple(got), scenario.depth),
            f"the model's tree after step {step} (model/steps.py):",
            tree.render(tuple(model), scenario.depth),
        ]
    )


def reproduce(port_command: Sequence[str] | ControlledPort, cx: Counterexample | Path | str) -> Reproduction:
    """Replay a model-checker counterexample on the port (``check/bridge.py`` over controlled mode).

    Only counterexamples whose frees check their argument (``checked_free``) apply: a port's
    free always does.
    """
    if not isinstance(cx, Counterexample):
        cx = Counterexample.load(cx)
    if not cx.checked_free:
        raise ExplorerError("this counterexample's frees skip the argument check, which a port's free makes")
    if isinstance(port_command, ControlledPort):
        return _bridge(cx, remote=port_command)
    with ControlledPort(port_command) as port:
        return _bridge(cx, remote=port)
