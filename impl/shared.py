"""One arena, several processes: ``SharedNBBS``, the C engine's words in a shared-memory segment.

A segment (``multiprocessing.shared_memory``) holds a 64-byte header, then the status words::

    offset  0  magic    b"NBBSARN\\0"
            8  version  u32 (1)        12  depth      u32
           16  page_size u64           24  start      u64
           32  max_order u32           36  variant    u32 (native.VARIANTS: 0 counted, 1 reference,
                                                  2 top_down, 3 top_down_node)
           40  words_offset u64 (64)   48  reserved (zero) up to 64
    offset 64  the words: 8 bytes per node, 2**(depth + 1) of them

``SharedNBBS.create(name, depth, ...)`` makes the segment and an empty arena in it;
``SharedNBBS.attach(name)`` (from any process, nothing pickled) reads the header and works on
the same words. Every process then allocates and frees with no lock: the words are the C
port's atomics. Addresses are ``start``-based offsets, the same in every process (each maps
the segment at its own base). ``close()`` (or leaving a ``with`` block) lets go of this
process's mapping; ``unlink()`` removes the segment's name once (mappings stay valid until
closed). If nobody unlinks it, Python's resource tracker of the creating process removes the
name when that process (and the children sharing its tracker) have ended; attaching does not
register the segment with any tracker.

**A process that dies** holding blocks leaves them allocated: the words say so, and the other
processes go on. ``live_blocks()`` lists every block of every process; an application that
records who holds what (the allocator keeps no owner per block) frees a dead process's blocks
from any other process. A process killed *inside* ``alloc`` or ``free`` (a window of a few
hundred nanoseconds per call) can leave its claim half-recorded on the path above its block;
``consistent()`` tells, with nothing in flight, whether the words are a quiescent tree.
"""

from __future__ import annotations

import struct
import sys
import threading
from multiprocessing import shared_memory
from typing import NamedTuple

from nbbs.impl._native import Engine
from nbbs.impl.errors import NBBSError
from nbbs.impl.native import VARIANTS, NativeNBBS, check_arguments, words_bytes
from nbbs.model import bits
from nbbs.model.tree import quiescent_violations

MAGIC = b"NBBSARN\0"
VERSION = 1
HEADER = struct.Struct("<8sIIQQIIQ")
"""magic, version, depth, page_size, start, max_order, variant, words_offset."""
WORDS_OFFSET = 64
"""Where the words start: after the header, 8-byte aligned (64: a cache line of its own)."""


class Header(NamedTuple):
    """The shape a segment's header records."""

    depth: int
    page_size: int
    start: int
    max_order: int
    variant: str


class SegmentError(NBBSError, ValueError):
    """A shared-memory segment that holds no arena this code can use: too small, or another header."""


def segment_bytes(depth: int) -> int:
    """Bytes a segment needs for an arena of this depth: header and words."""
    return WORDS_OFFSET + words_bytes(depth)


_ATTACH_LOCK = threading.Lock()


class _NoTracker:
    """Stands in for ``resource_tracker`` while attaching: registers nothing."""

    @staticmethod
    def register(name: str, rtype: str) -> None:
        return None


def _attach_untracked(name: str) -> shared_memory.SharedMemory:
    """Open segment ``name`` without registering it with Python's resource tracker.

    Before Python 3.13 opening registers the segment, and the tracker unlinks every segment
    it holds when it ends: an attaching process with a tracker of its own would remove the
    name under the feet of the others; and unregistering afterwards would drop the
    creator's entry when the two share a tracker (a child process). So the attach does not
    register at all (3.13's ``track=False``); the creator's tracker keeps the one entry.
    """
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)  # type: ignore[call-arg,unused-ignore]
    with _ATTACH_LOCK:
        tracker = shared_memory.resource_tracker  # type: ignore[attr-defined]
        shared_memory.resource_tracker = _NoTracker  # type: ignore[attr-defined]
        try:
            return shared_memory.SharedMemory(name=name)
        finally:
            shared_memory.resource_tracker = tracker  # type: ignore[attr-defined]


class SharedNBBS(NativeNBBS):
    """An ``NBBS`` (C engine) whose words live in a named shared-memory segment.

    Build it with ``SharedNBBS.create(...)`` or ``SharedNBBS.attach(name)``, not directly.
    """

    _segment: shared_memory.SharedMemory

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("use SharedNBBS.create(name, depth, ...) or SharedNBBS.attach(name)")

    @classmethod
    def create(
        cls,
        name: str | None,
        depth: int,
        *,
        page_size: int = 4096,
        start: int = 0,
        max_order: int | None = None,
        variant: str | None = None,
    ) -> SharedNBBS:
        """A new segment ``name`` (None: a fresh random name, see ``.name``) holding an empty arena.

        The arguments are ``NBBS``'s; ``FileExistsError`` if the name is taken.
        """
        arena = check_arguments(depth, page_size, start, max_order, None, variant, "c")
        shm = shared_memory.SharedMemory(name=name, create=True, size=segment_bytes(depth))
        try:
            heap = Engine.__new__(cls)
            heap._segment = shm
            heap._setup(arena, variant, shm.buf, WORDS_OFFSET, fresh=True)
            # The header last: a process attaching before this sees no magic and is refused.
            v = VARIANTS[variant or bits.DEFAULT_VARIANT]
            header = HEADER.pack(MAGIC, VERSION, depth, page_size, start, arena.top_order, v, WORDS_OFFSET)
            buf = shm.buf
            assert buf is not None
            buf[8 : len(header)] = header[8:]
            buf[0:8] = MAGIC
        except BaseException:
            shm.close()
            shm.unlink()
            raise
        return heap

    @classmethod
    def attach(
        cls,
        name: str,
        *,
        depth: int | None = None,
        page_size: int | None = None,
        start: int | None = None,
        max_order: int | None = None,
        variant: str | None = None,
    ) -> SharedNBBS:
        """The arena in segment ``name``, made by ``create`` in this or another process.

        The shape comes from the header; any argument given must match it (``SegmentError``
        names the first that does not). ``FileNotFoundError`` if no segment has that name.
        """
        shm = _attach_untracked(name)
        try:
            got = _read_header(shm, name)
            want = Header(depth, page_size, start, max_order, variant)  # type: ignore[arg-type]
            for key, value in want._asdict().items():
                if value is not None and getattr(got, key) != value:
                    raise SegmentError(
                        f"segment {name!r} holds an arena of {key}={getattr(got, key)!r}, not {value!r}"
                    )
            arena = check_arguments(*got[:4], None, got.variant, "c")
            heap = Engine.__new__(cls)
            heap._segment = shm
            heap._setup(arena, got.variant, shm.buf, WORDS_OFFSET, fresh=False)
        except BaseException:
            shm.close()
            raise
        return heap

    @property
    def name(self) -> str:
        """The segment's name, for ``attach`` in another process."""
        return self._segment.name

    def close(self) -> None:
        """Let go of this process's mapping (the arena lives on for the others). Idempotent."""
        self._release_buffer()
        self._segment.close()

    def unlink(self) -> None:
        """Remove the segment's name (once, from any process); mappings stay valid until closed."""
        self._segment.unlink()

    def consistent(self) -> list[str]:
        """With no operation in flight in any process: where the words break the quiescent invariant.

        Empty when the tree is consistent (in particular after a process died between calls).
        """
        return quiescent_violations(self.words(), self.depth, self.max_level, self.transitions)


def _read_header(shm: shared_memory.SharedMemory, name: str) -> Header:
    """The header's fields, or ``SegmentError`` saying why the segment is not an arena of ours."""
    if shm.size < WORDS_OFFSET:
        raise SegmentError(f"segment {name!r} has {shm.size} bytes, less than the {WORDS_OFFSET}-byte header")
    assert shm.buf is not None
    magic, version, depth, page_size, start, max_order, variant, offset = HEADER.unpack_from(shm.buf, 0)
    if magic != MAGIC:
        raise SegmentError(f"segment {name!r} holds no nbbs arena (magic {bytes(magic)!r}, not {MAGIC!r})")
    if version != VERSION:
        raise SegmentError(f"segment {name!r} has header version {version}; this code reads {VERSION}")
    names = {number: v for v, number in VARIANTS.items()}
    if variant not in names or offset != WORDS_OFFSET or not 0 <= depth <= 28:
        raise SegmentError(
            f"segment {name!r} has a corrupt header (variant {variant}, depth {depth}, words at {offset})"
        )
    if shm.size < segment_bytes(depth):
        raise SegmentError(
            f"segment {name!r} has {shm.size} bytes; an arena of depth {depth} needs {segment_bytes(depth)}"
        )
    return Header(depth, page_size, start, max_order, names[variant])
