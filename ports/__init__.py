"""``nbbs.ports``: native ports of NBBS and the step that builds them.

The C port lives in ``ports/c/`` (``ports/c/README.md``); ``build`` compiles it with the
system's C compiler and caches the result. ``run_contention`` runs the port's contention
benchmark once (``ports/c/bench.c``, issue 12) and checks the end of the run with the model.
"""

from nbbs.ports._contention import Contention, ContentionError, end_state_problems, run_contention
from nbbs.ports.build import DEFECTS, PortBuildError, build

__all__ = [
    "DEFECTS",
    "Contention",
    "ContentionError",
    "PortBuildError",
    "build",
    "end_state_problems",
    "run_contention",
]
