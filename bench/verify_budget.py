"""How long ``nbbs verify --seconds N`` takes, with every check as shipped or with a failing one.

    python bench/verify_budget.py 20            # as shipped
    python bench/verify_budget.py 20 --failing  # the NBBS differential check replaced by a mutant
                                                # whose alloc_bytes rounds down (it fails, shrinks)

Prints verify's own output, then its exit code and the wall time (imports included). The
promise it measures: verify ends within N plus about ``nbbs.cli.main.MARGIN`` seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

from nbbs.check import differential  # noqa: E402
from nbbs.check.report import Task  # noqa: E402
from nbbs.cli import verify as verify_module  # noqa: E402
from nbbs.cli.main import main  # noqa: E402


def _failing_tasks() -> list[Task]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_first_hour import RoundsDown

    tasks = _shipped()
    machine = differential.machine(RoundsDown)
    name = "differential: alloc_bytes rounds down (mutant)"
    tasks[0] = Task(
        name, tasks[0].share, lambda s: differential.run_for(machine, s, name, shrink_seconds=max(2.0, s / 2))
    )
    return tasks


_shipped = verify_module.tasks

if __name__ == "__main__":
    seconds = sys.argv[1] if len(sys.argv) > 1 else "60"
    if "--failing" in sys.argv:
        verify_module.tasks = _failing_tasks
    try:
        main(["verify", "--seconds", seconds])
        code: object = 0
    except SystemExit as e:
        code = e.code
    print(f"exit {code}, wall {time.perf_counter() - STARTED:.1f} s for --seconds {seconds}")
