"""The exceptions of both allocators: one root, ``NBBSError``, and one class per mistake.

Every check runs before the first word is written, so a call that raises leaves the
allocator exactly as it was.
"""

from __future__ import annotations


class NBBSError(Exception):
    """Something the caller asked for is wrong; the allocator's state is unchanged."""


class ConfigurationError(NBBSError, ValueError):
    """The arena cannot be built: bad depth, page size, start or maximum order."""


class OrderError(NBBSError, ValueError):
    """An order that is not an int, negative, or above the allocator's maximum order."""


class HintError(NBBSError, TypeError):
    """A scan hint that is not an int (or None)."""


class SizeError(NBBSError, ValueError):
    """A byte size that is not a positive int, or needs a block above the maximum order."""


class AddressError(NBBSError, ValueError):
    """An address the allocator did not hand out."""


class ForeignAddressError(AddressError):
    """The address is not an int, or lies outside ``[start, start + arena size)``."""


class MisalignedAddressError(AddressError):
    """The address is not on a page boundary, or not aligned to the block size asked for."""


class InteriorAddressError(AddressError):
    """The address lies inside a live block but is not its start."""


class DoubleFreeError(NBBSError, ValueError):
    """No live block starts at the address: it was freed already (or never allocated)."""


class WrongOrderError(NBBSError, ValueError):
    """A live block starts at the address, but its order is not the one given to ``free``."""
