"""One row of a conformance report, and the exit status a list of them gives."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

OK = "ok"
VIOLATION = "violation"
"""The port broke the spec: a wrong result, error, word, overlap, loss or history."""
BROKEN = "broken port"
"""The port died, hung or answered outside the protocol."""
UNSUPPORTED = "unsupported"
"""The port does not offer the feature the mode needs."""


@dataclass(frozen=True)
class Result:
    """One check of one port: what ran, how much, the verdict and, if not ok, what to replay."""

    check: str
    runs: int
    status: str
    seconds: float
    detail: str = ""
    """On failure, the protocol lines to paste into the port, the exchange, and what went wrong."""

    @property
    def ok(self) -> bool:
        return self.status == OK

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def exit_status(results: list[Result]) -> int:
    """0 if every check passed, 1 if the port broke the spec, 2 if it broke the protocol or lacks
    the feature a mode needs."""
    if any(r.status in (BROKEN, UNSUPPORTED) for r in results):
        return 2
    return 1 if any(r.status == VIOLATION for r in results) else 0
