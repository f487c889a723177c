"""``nbbs.ports``: native ports of NBBS and the step that builds them.

The C port lives in ``ports/c/`` (``ports/c/README.md``); ``build`` compiles it with the
system's C compiler and caches the result.
"""

from nbbs.ports.build import DEFECTS, PortBuildError, build

__all__ = ["DEFECTS", "PortBuildError", "build"]
