"""The counterexample viewer: a run of threads over the status words as one HTML page.

``nbbs replay SCHEDULE --html out.html`` and ``nbbs check ... --html out.html`` write one
self-contained file (no server, no network, no external script or font; open it in any
browser): the tree drawn as nodes with their words (fields named, bits shown), one column per
thread with its program counter and locals, a step slider with keyboard stepping (arrows,
Home, End), the access of the current step highlighted (thread, node, old -> new, a failed
CAS marked as such), the held blocks shaded as page ranges under the tree, and the violated
property stated at the step where it breaks.

Any checker, and a port's harness, gives it a ``Trace``::

    trace = Trace(depth, transitions, words_before, threads, steps, violation)
    write(trace, "out.html")        # or page(trace) -> str, data(trace) -> the embedded JSON

with ``steps`` a list of ``Step(thread, node, kind, old, new, ...)`` (``kind`` as the line
protocol's ``did``: load, cas, cas_fail, fetch_or, fetch_and, store). The checkers' own
traces come from ``from_counterexample`` (a model checker counterexample file, shown with
the step machines' program counters and locals), ``from_violation`` (``nbbs check``'s) and
``from_outcome`` / ``from_schedule`` (an explorer run of the real allocator, shown with each
thread's operation and last access).

The machinery is in ``_viewer`` (the page) and ``_viewer_from`` (the traces); the page's
script and style are in ``viewer.html``.
"""

from __future__ import annotations

from nbbs.check._viewer import (
    KINDS,
    MAX_DEPTH,
    Step,
    Trace,
    ViewerError,
    Violation,
    check_target,
    data,
    page,
    validate,
    word_fields,
    write,
)
from nbbs.check._viewer_from import from_counterexample, from_outcome, from_schedule, from_violation

__all__ = [
    "KINDS",
    "MAX_DEPTH",
    "Step",
    "Trace",
    "ViewerError",
    "Violation",
    "check_target",
    "data",
    "from_counterexample",
    "from_outcome",
    "from_schedule",
    "from_violation",
    "page",
    "validate",
    "word_fields",
    "write",
]
