"""Loading the C engine: the extension module ``_nbbs_engine`` that ``nbbs.ports.build("ext")`` compiles.

The module is built (or found in the build cache) and loaded on the first import of this
module, so ``nbbs.impl`` itself never needs a compiler: only ``NBBS(..., engine="c")`` does,
and without one it raises ``nbbs.ports.PortBuildError`` saying what is missing.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING

MODULE = "_nbbs_engine"
"""The extension's module name (its ``PyInit__nbbs_engine``)."""


def load() -> ModuleType:
    """The extension module, built by ``nbbs.ports.build("ext")`` if the cache lacks it."""
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    from nbbs.ports.build import build  # impl needs ports only for the C engine

    path = build("ext")
    loader = importlib.machinery.ExtensionFileLoader(MODULE, str(path))
    spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[MODULE] = module
    return module


if TYPE_CHECKING:

    class Engine:
        """The extension type ``_nbbs_engine._Engine`` (ports/c/nbbs_pyext.c), as mypy sees it."""

        _open: bool

        def __init__(
            self,
            buffer: object,
            offset: int,
            depth: int,
            page_size: int,
            start: int,
            max_order: int,
            variant: int,
            fresh: bool,
        ) -> None: ...

        def alloc(self, order: int, hint: int | None = None) -> int | None: ...

        def free(self, address: int, order: int | None = None) -> None: ...

        def words(self) -> tuple[int, ...]: ...

        def _alloc_checked(self, order: int, hint: int | None) -> int | None: ...

        def _free_checked(self, address: int, order: int | None) -> str | None: ...

        def _word(self, node: int) -> int: ...

        def _pairs(self, order: int, hint: int | None, pairs: int) -> int: ...

        def _release_buffer(self) -> None: ...

else:
    Engine = load()._Engine
