"""Schedule traces: PORTING.md's ``spawn`` / ``step`` trace lines, written from a run and replayed on a port.

The exported files are kept in ``tests/data/schedules/`` (a test re-exports them and
compares, so they cannot drift from the reference). A trace file is what a port's own unit
tests replay without Python: the header (the arena),
then every protocol exchange of one controlled execution, each as a flat JSON line with the
expected reply. ``export_schedules`` writes one per kept counterexample (replayed through
``check/bridge.py``) and one per ``SHORT_SCHEDULES`` entry, with the replies of the Python
reference port; ``replay_trace`` sends a file's commands to a port and lists every reply
that differs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nbbs.check._sched import Execution
from nbbs.check.bridge import Counterexample
from nbbs.check.bridge import reproduce as _bridge
from nbbs.check.explore import ExploreConfig, ExplorerError, parse
from nbbs.conform._port import COUNTEREXAMPLES, ControlledPort, reference_port
from nbbs.conform.protocol import PortError

SHORT_SCHEDULES = (
    "d3-m3-counted:a0@0+f0,a0@0+f0:ab2a3b2a2baba2bab2a2b2a11b8",
    "d2-m2-counted:a0@0,a0@1,a1@0:c2a2c2bab3a3b4a4b5",
    "d3-m3-counted-L8:F8,a1@0:abab2a2ba2bababa3",
)
"""Short schedules of ``counted`` (the shipped variant when they were drawn) with many
preemptions (random walks, seeds 1-3), exported as ``schedule-short-<i>.jsonl``."""


class Follow:
    """A strategy following a schedule; at its end it stops (``stop``) or runs without preemption."""

    def __init__(self, schedule: Sequence[int], stop: bool) -> None:
        self.schedule, self.stop = schedule, stop

    def pick(self, ex: Execution, me: int) -> int:
        step = len(ex.schedule)
        if step >= len(self.schedule):
            if self.stop:
                return -1
            return me if me >= 0 and me in ex.enabled else ex.enabled[0]
        t = self.schedule[step]
        if t not in ex.enabled:
            raise ExplorerError(f"step {step} names thread {t}, but only threads {ex.enabled} can run there")
        return t


def _dumps(d: dict[str, Any]) -> str:
    return json.dumps(d, separators=(",", ":"))


def _expect(reply: str) -> int | str | None:
    """An alloc's reply as a trace's ``expect``: the address, null for none, else the reply text."""
    if reply == "none":
        return None
    return int(reply) if reply.isdigit() else reply


def trace_lines(log: list[tuple[str, list[str]]]) -> list[str]:
    """The trace lines of a recorded exchange (``ControlledPort.log``), header first."""
    out: list[str] = []
    for cmd, replies in log:
        tok = cmd.split()
        if tok[0] == "arena":
            depth, page, start, top = (int(x) for x in tok[1:5])
            out.append(
                _dumps(
                    {
                        "format": "nbbs-trace",
                        "version": 1,
                        "depth": depth,
                        "page_size": page,
                        "start": start,
                        "max_order": top,
                        "variant": tok[5],
                    }
                )
            )
        elif tok[0] == "alloc":
            hint = int(tok[2]) if len(tok) > 2 else None
            out.append(
                _dumps({"op": "alloc", "order": int(tok[1]), "hint": hint, "expect": _expect(replies[0])})
            )
        elif tok[0] == "free":
            order = int(tok[2]) if len(tok) > 2 else None
            out.append(_dumps({"op": "free", "addr": int(tok[1]), "order": order, "expect": replies[0]}))
        elif tok[0] == "words":
            line = _dumps({"op": "words", "expect": [int(x) for x in replies[0].split()[1:]]})
            if not out or out[-1] != line:  # a second look at unchanged words adds nothing
                out.append(line)
        elif tok[0] == "spawn":
            rest = cmd.split(maxsplit=2)[2]
            out.append(_dumps({"op": "spawn", "thread": int(tok[1]), "cmd": rest, "expect": replies[0]}))
        elif tok[0] == "step":
            out.append(_dumps({"op": "step", "thread": int(tok[1]), "expect": "|".join(replies)}))
    return out


def _record(port: ControlledPort, path: Path, run: Any) -> Path:
    port.drain()
    port.log = []
    try:
        run()
        lines = trace_lines(port.log)
    finally:
        port.log = None
    path.write_text("".join(line + "\n" for line in lines))
    return path


def export_schedules(out_dir: Path | str, port_command: Sequence[str] | None = None) -> list[Path]:
    """Write the schedule traces (kept counterexamples, ``SHORT_SCHEDULES``) into ``out_dir``.

    The expected replies are the Python reference port's (``port_command`` to record another).
    Counterexamples whose frees skip the argument check are left out (a port's free checks).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    with ControlledPort(port_command or reference_port()) as port:
        for f in sorted(COUNTEREXAMPLES.glob("*.json")):
            cx = Counterexample.load(f)
            if cx.checked_free:
                paths.append(
                    _record(port, out / f"schedule-{f.stem}.jsonl", lambda cx=cx: _bridge(cx, remote=port))
                )
        for i, text in enumerate(SHORT_SCHEDULES, 1):
            sc, sched = parse(text)
            checker = ExploreConfig().checker(sc, port)
            paths.append(
                _record(
                    port, out / f"schedule-short-{i}.jsonl", lambda c=checker, s=sched: c.run(Follow(s, True))
                )
            )
    return paths


def replay_trace(port_command: Sequence[str], path: Path | str) -> list[str]:
    """Send a trace file's commands to the port; every reply that differs from the expected one."""
    lines = Path(path).read_text().splitlines()
    head = json.loads(lines[0])
    if head.get("format") != "nbbs-trace" or head.get("version") != 1:
        raise PortError(f"{path}: not an nbbs-trace version 1 file")
    bad: list[str] = []
    with ControlledPort(port_command, head["page_size"], head["start"]) as port:
        arena = (
            f"arena {head['depth']} {head['page_size']} {head['start']} {head['max_order']} {head['variant']}"
        )
        if (r := port.request(arena)) != "ok":
            return [f"line 1: `{arena}` answered {r!r}"]
        for k, text in enumerate(lines[1:], 2):
            d = json.loads(text)
            op = d["op"]
            if op == "words":
                if "words" not in port.features:
                    continue
                cmd, want = "words", "words " + " ".join(map(str, d["expect"]))
            elif op == "alloc":
                cmd = f"alloc {d['order']}" + ("" if d["hint"] is None else f" {d['hint']}")
                want = "none" if d["expect"] is None else str(d["expect"])
            elif op == "free":
                cmd = f"free {d['addr']}" + ("" if d["order"] is None else f" {d['order']}")
                want = d["expect"]
            elif op == "spawn":
                cmd, want = f"spawn {d['thread']} {d['cmd']}", d["expect"]
            elif op == "step":
                cmd, want = f"step {d['thread']}", d["expect"]
            else:
                bad.append(f"line {k}: unknown op {op!r}")
                continue
            got = "|".join(port.exchange(cmd, 2 if op == "step" else 1))
            if got != want:
                bad.append(f"line {k}: `{cmd}` answered {got!r}, expected {want!r}")
                break  # the rest of a schedule depends on this reply
    return bad
