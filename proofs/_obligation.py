"""An obligation (a named claim at a depth, built as a z3 query) and its proof."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from nbbs.proofs._variant import COUNTED, Variant
from nbbs.proofs._z3 import Query, ask


@dataclass(frozen=True)
class Obligation:
    """A claim to prove with z3: ``build(variant)`` gives the query for one algorithm variant.

    ``depth`` is the tree depth the query is about, or None if it holds for every depth at
    once (a bit lemma, a per-node lemma).
    """

    name: str
    group: str
    depth: int | None
    claim: str
    build: Callable[[Variant], Query]

    @property
    def label(self) -> str:
        """``name`` with its depth, e.g. ``refine_alloc@d3``."""
        return self.name if self.depth is None else f"{self.name}@d{self.depth}"


@dataclass(frozen=True)
class Proof:
    """The outcome of one obligation for one variant."""

    obligation: str
    group: str
    depth: int | None
    variant: str
    proved: bool
    vacuous: bool
    broken: tuple[str, ...]
    counterexample: str
    seconds: float
    cpu_seconds: float = 0.0
    """CPU time of building the query and asking z3 (in the process that proved it)."""

    @property
    def result(self) -> str:
        """``proved``, ``VACUOUS`` or ``FAILED``."""
        return "proved" if self.proved else "VACUOUS" if self.vacuous else "FAILED"

    def report(self) -> str:
        """The failure as text: which claims broke, and the counterexample."""
        where = "" if self.depth is None else f" at depth {self.depth}"
        head = f"{self.obligation}{where} ({self.variant}): {self.result}"
        if self.proved:
            return head
        return "\n".join([head, "broken: " + ", ".join(self.broken), self.counterexample])


def prove(ob: Obligation, variant: Variant = COUNTED) -> Proof:
    """Build the obligation's query for ``variant`` (by default ``counted``, whose catalogue is
    the default one: ``obligations.catalogue``) and ask z3."""
    cpu = time.process_time()
    a = ask(ob.build(variant))
    return Proof(
        ob.name,
        ob.group,
        ob.depth,
        variant.name,
        a.proved,
        a.vacuous,
        a.broken,
        a.counterexample,
        a.seconds,
        time.process_time() - cpu,
    )
