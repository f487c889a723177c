"""The allocators users run: ``NBBS`` (lock-free) and ``LockedBuddy`` (the baseline)."""

from nbbs.impl.arena import MAX_DEPTH, Arena
from nbbs.impl.atomics import Backend, StripedWords, Words
from nbbs.impl.errors import (
    AddressError,
    ConfigurationError,
    DoubleFreeError,
    ForeignAddressError,
    HintError,
    InteriorAddressError,
    MisalignedAddressError,
    NBBSError,
    OrderError,
    SizeError,
    WrongOrderError,
)
from nbbs.impl.locked import LockedBuddy
from nbbs.impl.nbbs import NBBS

__all__ = [
    "MAX_DEPTH",
    "NBBS",
    "AddressError",
    "Arena",
    "Backend",
    "ConfigurationError",
    "DoubleFreeError",
    "ForeignAddressError",
    "HintError",
    "InteriorAddressError",
    "LockedBuddy",
    "MisalignedAddressError",
    "NBBSError",
    "OrderError",
    "SizeError",
    "StripedWords",
    "Words",
    "WrongOrderError",
]
