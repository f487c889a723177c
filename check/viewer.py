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
thread's operation and last access) and ``from_protocol`` (a port's controlled run, from
its line protocol transcript: what ``nbbs conform`` can hand over as it is).

A kept counterexample file: ``python -m nbbs.check.viewer COUNTEREXAMPLE.json OUT.html``.

The machinery is in ``_viewer`` (the page) and ``_viewer_from`` (the traces); the page's
script and style are in ``viewer.html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
from nbbs.check._viewer_from import (
    from_counterexample,
    from_outcome,
    from_protocol,
    from_schedule,
    from_violation,
)

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
    "from_protocol",
    "from_schedule",
    "from_violation",
    "page",
    "validate",
    "word_fields",
    "write",
]


def main(argv: list[str] | None = None) -> int:
    """``python -m nbbs.check.viewer COUNTEREXAMPLE.json OUT.html``: the page of a counterexample file."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m nbbs.check.viewer COUNTEREXAMPLE.json OUT.html", file=sys.stderr)
        return 2
    import json

    try:
        target = check_target(args[1])
        cx = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        write(from_counterexample(cx, f"python -m nbbs.check.viewer {args[0]}"), target)
    except (OSError, ValueError, ViewerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"page written to {target} (open it in a browser)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
