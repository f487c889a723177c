"""The C engine: ``NBBS(..., engine="c")``, the C port (``ports/c/``) behind the same API.

``NativeNBBS`` derives from the extension type ``_Engine`` (``ports/c/nbbs_pyext.c``) and from
``NBBS``: ``alloc`` and ``free`` are C methods called with no Python frame in between, the
rest (``alloc_bytes``, ``live_blocks``, the checks' messages) is ``NBBS``'s and
``impl/arena.py``'s. Arguments are checked by the C code (``nbbs.c``, impl/arena.py's checks in
its order, before any word is written); every refused call and every argument that is not a
plain int comes back here, where ``Arena`` reruns its checks and raises its exception with its
message. Words are 8 bytes per node for every variant the C port has (``VARIANTS``:
``counted``, ``reference``, ``top_down``, ``top_down_node``); they live in an anonymous
``mmap`` (pages are touched only when used) or, for
``nbbs.impl.shared.SharedNBBS``, in a shared-memory segment.

Importing this module builds the extension if the build cache lacks it, which needs a C
compiler and this interpreter's headers; without them ``nbbs.ports.PortBuildError`` says
which is missing.
"""

from __future__ import annotations

import mmap
from types import TracebackType

from nbbs.impl import errors
from nbbs.impl._native import Engine
from nbbs.impl.arena import Arena
from nbbs.impl.errors import ConfigurationError
from nbbs.impl.nbbs import NBBS
from nbbs.model import bits
from nbbs.model import geometry as g
from nbbs.model.tree import abstraction

VARIANTS = {"counted": 0, "reference": 1, "top_down": 2, "top_down_node": 3}
"""The variants the C port has, by ``bits.VARIANTS`` name, with the C code's number (``nbbs_variant``)."""

NODE_BYTES = 8
"""Bytes per status word in the C engine, for every variant."""


def words_bytes(depth: int) -> int:
    """Bytes of word memory an arena of this depth takes in the C engine (index 0 included)."""
    return NODE_BYTES * g.node_count(depth)


class NativeNBBS(Engine, NBBS):
    """``NBBS`` run by the C port: build it as ``NBBS(depth, ..., engine="c")``.

    The same arguments as ``NBBS`` except ``backend`` (the words are native memory) and
    ``variant``, which may be ``"top_down_node"`` (the default), ``"counted"``, ``"reference"`` or
    ``"top_down"`` (``VARIANTS``).
    """

    def __init__(
        self,
        depth: int,
        *,
        page_size: int = 4096,
        start: int = 0,
        max_order: int | None = None,
        backend: object = None,
        variant: str | None = None,
        engine: str | None = "c",
    ) -> None:
        arena = check_arguments(depth, page_size, start, max_order, backend, variant, engine)
        self._memory = mmap.mmap(-1, words_bytes(depth))
        self._setup(arena, variant, self._memory, 0, fresh=True)

    def _setup(self, arena: Arena, variant: str | None, buffer: object, offset: int, *, fresh: bool) -> None:
        """Point the C handle at ``buffer[offset:]`` (zeroed first if ``fresh``) and set NBBS's attributes."""
        name = variant or bits.DEFAULT_VARIANT
        self.transitions = bits.VARIANTS[name]
        self.variant = name
        self.arena = arena
        self.depth = arena.depth
        self.max_order = arena.top_order
        self.max_level = arena.max_level
        Engine.__init__(
            self,
            buffer,
            offset,
            arena.depth,
            arena.page_size,
            arena.start,
            arena.top_order,
            VARIANTS[name],
            fresh,
        )

    # -- what NBBS does with its Python words, done with the C engine's ----------------------

    def live_blocks(self) -> list[tuple[int, int]]:
        """(address, order) of every allocated block, by address."""
        live = abstraction(self.words(), self.depth)
        return sorted((self.arena.address(n), g.order_of(self.depth, n)) for n in live)

    def _is_block(self, n: int) -> bool:
        return bool(self.transitions.is_occupied(self._word(n)))

    def close(self) -> None:
        """Let go of the words' memory; any later call raises ``ValueError``. Idempotent."""
        self._release_buffer()

    def __del__(self) -> None:
        # Before the attributes go: a shared segment's close() refuses while we hold its buffer.
        self._release_buffer()

    def __enter__(self) -> NativeNBBS:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the C methods' way back for anything but plain ints, and for refusals --------------

    def _alloc_slow(self, order: object, hint: object = None) -> int | None:
        """``alloc`` when the C method did not take its arguments: check them here, then run it."""
        o = self.arena.check_order(order)
        h = self.arena.check_hint(hint)
        if h is not None:
            h = int(h) % g.width(g.level_of_order(self.depth, o))
        return self._alloc_checked(int(o), h)

    def _free_slow(self, address: object, order: object = None) -> None:
        """``free`` when the C method did not take its arguments (not plain ints, or beyond 64 bits)."""
        self.arena.block_to_free(address, order, self._is_block)  # raises if the free is refused
        assert isinstance(address, int) and (order is None or isinstance(order, int))
        refused = self._free_checked(int(address), None if order is None else int(order))
        if refused is not None:
            self._free_refused(address, order, refused)

    def _free_refused(self, address: object, order: object, status: str) -> None:
        """The C code refused ``free(address, order)`` with ``status``: raise ``Arena``'s exception.

        ``Arena`` rereads the words; the C check wrote none, so alone it finds the same fault.
        If another thread changed the block in between, the C code's class is raised.
        """
        self.arena.block_to_free(address, order, self._is_block)
        raise getattr(errors, status)(
            f"free({address!r}, {order!r}) refused by the C engine ({status}); another thread changed the "
            "block before the message was made"
        )


def check_arguments(
    depth: int,
    page_size: int,
    start: int,
    max_order: int | None,
    backend: object,
    variant: str | None,
    engine: str | None,
) -> Arena:
    """impl/arena.py's shape checks, then what only the C engine refuses."""
    if engine != "c":
        raise ConfigurationError(f"NativeNBBS is the engine 'c', got engine={engine!r}")
    if backend is not None:
        raise ConfigurationError(
            "backend chooses the Python engine's word array; the C engine's words are native"
        )
    if variant is not None and variant not in VARIANTS:
        raise ConfigurationError(
            f"engine='c' runs the variants {sorted(VARIANTS)} of the C port, not {variant!r} "
            "(use engine='python' for it)"
        )
    arena = Arena(depth, page_size, start, max_order)
    if arena.size > 1 << 63 or arena.start + arena.size > 1 << 64:
        raise ConfigurationError(
            f"the C engine's addresses are 64-bit: the arena [{arena.start:#x}, "
            f"{arena.start + arena.size:#x}) must end at or below 2**64 and span at most 2**63 bytes"
        )
    return arena
