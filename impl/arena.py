"""The arena's shape and every argument check, shared by both allocators.

Addresses are offsets: ``start`` is the address of page 0 (0 for a bare offset space, the
base of a shared-memory segment otherwise) and a block of node ``n`` lives at
``start + first_page(n) * page_size``. Nothing here writes a word, so a check that raises
leaves the allocator untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nbbs.impl.errors import (
    ConfigurationError,
    DoubleFreeError,
    ForeignAddressError,
    InteriorAddressError,
    MisalignedAddressError,
    OrderError,
    SizeError,
    WrongOrderError,
)
from nbbs.model import geometry as g

MAX_DEPTH = 28
"""The deepest tree one may build: the status words take ``2**(depth + 1)`` bytes, 512 MiB at
depth 28. Deeper trees would not fit a process on the 24 GiB machines we test on next to
their locks and the Python objects around them; a depth beyond this is a mistake, not a need."""


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_power_of_two(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


@dataclass(frozen=True)
class Arena:
    """``2**depth`` pages of ``page_size`` bytes from ``start``; blocks up to ``2**max_order`` pages."""

    depth: int
    page_size: int = 4096
    start: int = 0
    max_order: int | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.depth) or not 0 <= self.depth <= MAX_DEPTH:
            raise ConfigurationError(
                f"depth must be an int from 0 to {MAX_DEPTH} (the status words take 2**(depth+1) bytes), "
                f"got {self.depth!r}"
            )
        if not _is_int(self.page_size) or not _is_power_of_two(self.page_size):
            raise ConfigurationError(f"page_size must be a power of two, got {self.page_size!r}")
        if self.max_order is None:
            object.__setattr__(self, "max_order", self.depth)
        elif not _is_int(self.max_order) or not 0 <= self.max_order <= self.depth:
            raise ConfigurationError(
                f"max_order must be an int from 0 to depth={self.depth}, got {self.max_order!r}"
            )
        if not _is_int(self.start) or self.start < 0:
            raise ConfigurationError(f"start must be a non-negative int, got {self.start!r}")
        if self.start % self.largest_block:
            raise ConfigurationError(
                f"start {self.start:#x} is not aligned to the largest block "
                f"({self.largest_block:#x} bytes = page_size << max_order)"
            )

    @property
    def top_order(self) -> int:
        """The largest order one may ask for (``max_order`` resolved)."""
        assert self.max_order is not None  # set in __post_init__
        return self.max_order

    @property
    def max_level(self) -> int:
        """The highest tree level (nearest the root) that climbs and marks touch."""
        return self.depth - self.top_order

    @property
    def largest_block(self) -> int:
        """Bytes in a block of the maximum order."""
        return self.page_size << self.top_order

    @property
    def size(self) -> int:
        """Bytes in the whole arena."""
        return self.page_size << self.depth

    def check_order(self, order: object) -> int:
        """``order`` as an int, or ``OrderError`` naming what is wrong with it."""
        if not _is_int(order):
            raise OrderError(f"order must be an int, got {order!r}")
        assert isinstance(order, int)
        if order < 0:
            raise OrderError(f"order must not be negative, got {order}")
        if order > self.top_order:
            raise OrderError(f"order {order} is above the maximum order {self.top_order}")
        return order

    def check_hint(self, hint: object) -> int | None:
        """``hint`` as given (an int or None), or ``TypeError``: a scan position is not an argument error."""
        if hint is not None and not _is_int(hint):
            raise TypeError(f"hint must be an int or None, got {hint!r}")
        assert hint is None or isinstance(hint, int)
        return hint

    def order_for_bytes(self, size: object) -> int:
        """The smallest order whose block holds ``size`` bytes (``bd_xx_malloc``'s rounding)."""
        if not _is_int(size) or size <= 0:  # type: ignore[operator]
            raise SizeError(f"size must be a positive int of bytes, got {size!r}")
        assert isinstance(size, int)
        pages = -(-size // self.page_size)
        order = (pages - 1).bit_length()
        if order > self.top_order:
            raise SizeError(
                f"{size} bytes need a block of order {order}, above the maximum order {self.top_order} "
                f"({self.largest_block} bytes)"
            )
        return order

    def address(self, n: int) -> int:
        """The address of the block that node ``n`` stands for."""
        return self.start + g.first_page(self.depth, n) * self.page_size

    def page(self, address: object) -> int:
        """The page at ``address``, or an ``AddressError`` if it is foreign or not a page boundary."""
        if not _is_int(address):
            raise ForeignAddressError(f"address must be an int, got {address!r}")
        assert isinstance(address, int)
        if not self.start <= address < self.start + self.size:
            raise ForeignAddressError(
                f"address {address:#x} is outside the arena [{self.start:#x}, {self.start + self.size:#x})"
            )
        offset = address - self.start
        if offset % self.page_size:
            raise MisalignedAddressError(
                f"address {address:#x} is not on a page boundary (page_size {self.page_size:#x})"
            )
        return offset // self.page_size

    def block_to_free(self, address: object, order: object, is_live: Callable[[int], bool]) -> int:
        """The live block that ``free(address, order)`` names, or the error that says why there is none.

        ``is_live(n)`` tells whether node ``n`` is an allocated block. ``order=None`` means
        "whatever order the live block at ``address`` has". Under concurrency the answer is exact
        for a block the caller holds; a double free racing with other threads' allocations is
        detected only if it does not meet one of their candidates in flight.
        """
        page = self.page(address)
        want = None if order is None else self.check_order(order)
        if want is not None and page % (1 << want):
            raise MisalignedAddressError(
                f"address {address:#x} is not aligned to a block of order {want} "
                f"({self.page_size << want:#x} bytes)"
            )
        # Largest order first: a live block's ancestors are never occupied (their OCC_* bits
        # keep them non-zero), while a page under it may be, for an instant, by another
        # thread's alloc on its way to roll back; looking there first would refuse a valid free.
        for o in range(self.top_order, -1, -1):
            n = g.node_of(self.depth, page, o)
            if not is_live(n):
                continue
            if g.first_page(self.depth, n) != page:
                raise InteriorAddressError(
                    f"address {address:#x} is inside the live block at {self.address(n):#x} of order {o}, "
                    "not its start"
                )
            if want is not None and o != want:
                raise WrongOrderError(f"the live block at {address:#x} has order {o}, not {want}")
            return n
        raise DoubleFreeError(
            f"no live block starts at {address:#x}: double free (or an address alloc never returned)"
        )
