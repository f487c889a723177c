"""The scan-cost check: a port's shared accesses per operation at rising occupancy, against the model's.

NBBS's alloc scans a level round-robin from where the thread last succeeded, so with blocks
held its cost grows only as far as it must look for a free node; a port that rescans from the
level's first node, or walks the held blocks on every operation, costs more and more as the
arena fills (a defect DESIGN.md lists for the crate). For each occupancy (0% to 99% of the
pages held, chosen at random and allocated sequentially at their own positions), one
controlled thread makes ``pairs`` alloc/free pairs of a page with the port's own scan start
(no hint), and every access is counted (a port that ignores the hint holds the pages it
chooses instead); the step machine of ``model/steps.py`` makes the
same operations on the same words from the start NBBS uses (the thread's last success,
position 0 at first). The port is flagged when its cost grows by more than ``tolerance``
times the model's growth between the emptiest and the fullest arena.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from nbbs.check._sched import Done, Pending
from nbbs.check.explore import Scenario
from nbbs.conform._port import ControlledPort
from nbbs.conform.protocol import PortError
from nbbs.model import bits, steps
from nbbs.model import geometry as g

LEVELS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.99)
"""The occupancies measured: fractions of the pages held."""


@dataclass
class ScanCost:
    """Accesses per alloc/free pair, at each occupancy, of the port and of the model."""

    port: str
    variant: str
    depth: int
    tolerance: float
    occupancy: list[float] = field(default_factory=list)
    port_cost: list[float] = field(default_factory=list)
    model_cost: list[float] = field(default_factory=list)

    @property
    def port_growth(self) -> float:
        """The port's cost in the fullest arena over its cost in the emptiest."""
        return self.port_cost[-1] / self.port_cost[0]

    @property
    def model_growth(self) -> float:
        return self.model_cost[-1] / self.model_cost[0]

    @property
    def flagged(self) -> bool:
        """The port's cost grows faster than ``tolerance`` times the model's."""
        return self.port_growth > self.tolerance * self.model_growth

    def table(self) -> str:
        """One row per occupancy, then the verdict."""
        rows = [f"{'held':>6} {'port':>8} {'model':>8}  (accesses per alloc+free pair, depth {self.depth})"]
        for occ, p, m in zip(self.occupancy, self.port_cost, self.model_cost, strict=True):
            rows.append(f"{occ:>6.0%} {p:>8.1f} {m:>8.1f}")
        verdict = "FLAGGED: grows faster than the model" if self.flagged else "ok"
        rows.append(
            f"growth {self.port_growth:.2f}x (port) vs {self.model_growth:.2f}x (model), "
            f"tolerance {self.tolerance}x: {verdict}"
        )
        return "\n".join(rows)


def _count(port: ControlledPort, nxt: Pending | Done) -> tuple[int, int | None]:
    """Step thread 0 to the end of its operation: (accesses, result)."""
    n = 0
    while type(nxt) is Pending:
        _, nxt = port.step(0)
        n += 1
    assert type(nxt) is Done
    return n, nxt.result


def scan_cost(
    port_command: Sequence[str] | ControlledPort,
    *,
    depth: int = 8,
    levels: Sequence[float] = LEVELS,
    pairs: int = 16,
    seed: int = 0,
    variant: str = bits.DEFAULT_VARIANT,
    tolerance: float = 1.5,
) -> ScanCost:
    """The port's accesses per alloc/free pair at each occupancy of ``levels``, beside the model's."""
    if isinstance(port_command, ControlledPort):
        return _measure(port_command, depth, levels, pairs, seed, variant, tolerance)
    with ControlledPort(port_command) as port:
        return _measure(port, depth, levels, pairs, seed, variant, tolerance)


def _measure(
    port: ControlledPort,
    depth: int,
    levels: Sequence[float],
    pairs: int,
    seed: int,
    variant: str,
    tolerance: float,
) -> ScanCost:
    rng = random.Random(seed)
    pages = 1 << depth
    machine = steps.Machine(depth, 0, bits.VARIANTS[variant])
    leaves = g.first_node(depth)
    result = ScanCost(port.name, variant, depth, tolerance)
    for occ in levels:
        port.arena(Scenario(depth, ((),), allocator=variant.replace("-", "_")))
        words = [0] * g.node_count(depth)
        for page in rng.sample(range(pages), round(occ * pages)):
            got = port.alloc(0, page)
            if got is None:
                raise PortError(f"scan cost: `alloc 0 {page}` returned none with pages free")
            # A port may ignore the hint: hold the page it chose, the model's scan starting there.
            machine.run(machine.alloc(0, got), words)
        remote = port.words()
        if remote is not None and list(remote) != words:
            raise PortError("scan cost: after the sequential allocs the port's words differ from the model's")
        port_total = model_total = 0
        last = 0  # NBBS's first thread starts its scans at position 0, then where it last succeeded
        for _ in range(pairs):
            n, got = _count(port, port.spawn_alloc(0, 0, None))
            port_total += n
            done, trace = machine.run(machine.alloc(0, last), words)
            model_total += len(trace)
            node = steps.result(done)
            if node is not None:
                last = node - leaves
                model_total += len(machine.run(machine.free(node, checked=True), words)[1])
            if got is not None:
                n, _ = _count(port, port.spawn_free(0, got, 0))
                port_total += n
            remote = port.words()
            if remote is not None:
                words = list(remote)  # follow the port's tree if its choices differ from the model's
        result.occupancy.append(occ)
        result.port_cost.append(port_total / pairs)
        result.model_cost.append(model_total / pairs)
    return result
