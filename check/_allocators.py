"""The allocators a scenario may name, each built over the scheduler's words (and lock).

Each variant of ``model.bits.VARIANTS`` is available by its name there (``top_down_node``, the
shipped one, ``counted``, ``reference``, ``corrected``, ``rollback_only``, ...); ``locked`` is the
lock-based baseline with its lock replaced by a scheduled one; every transition mutant of
``check.mutants`` and code mutant of ``check.impl_mutants`` is available by its name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbbs.check._scenario import ExplorerError, Scenario
from nbbs.check._sched import AllocatorFactory, ScheduledLock, ScheduledWords
from nbbs.impl.locked import LockedBuddy
from nbbs.impl.nbbs import NBBS
from nbbs.model import bits


class ScheduledLockedBuddy(LockedBuddy):
    """``LockedBuddy`` whose one lock is a scheduling point (blocking while held)."""

    def __init__(self, depth: int, max_order: int, lock: ScheduledLock) -> None:
        super().__init__(depth, page_size=1, max_order=max_order)
        self._lock = lock  # type: ignore[assignment]


def _nbbs_family(cls: type[NBBS]) -> AllocatorFactory:
    def build(sc: Scenario, words: Callable[[int], ScheduledWords], lock: Callable[[], ScheduledLock]) -> Any:
        return cls(sc.depth, page_size=1, max_order=sc.top_order, backend=words)

    return build


def _locked(sc: Scenario, words: Callable[[int], ScheduledWords], lock: Callable[[], ScheduledLock]) -> Any:
    return ScheduledLockedBuddy(sc.depth, sc.top_order, lock())


def allocator_classes() -> dict[str, type[NBBS]]:
    """Every NBBS-family allocator by name: the shipped one and all mutants."""
    from nbbs.check.impl_mutants import IMPL_MUTANTS
    from nbbs.check.mutants import COUNTED_MUTANTS, TRANSITION_MUTANTS, mutant_allocator

    out: dict[str, type[NBBS]] = {}
    for name, transitions in bits.VARIANTS.items():
        doc = f"NBBS running the {name} variant's transitions"
        out[name] = type(f"NBBS_{name}", (NBBS,), {"transitions": transitions, "__doc__": doc})
    out.update({name: mutant_allocator(name) for name in (*TRANSITION_MUTANTS, *COUNTED_MUTANTS)})
    out.update({name: cls for name, (_, cls) in IMPL_MUTANTS.items()})
    return out


def unknown_allocator(name: str) -> str:
    """Why no allocator is called ``name``: the known names (and the new name of an old spelling)."""
    known = f"known: locked, {', '.join(sorted(allocator_classes()))}"
    hint = bits.unknown_variant(name)
    if "did you mean" in hint:
        return hint.split("? Known:")[0].replace("unknown variant", "unknown allocator") + "? " + known
    return f"unknown allocator {name!r}; {known}"


_REGISTERED: dict[str, AllocatorFactory] = {}


def register(name: str, allocator: type[NBBS] | AllocatorFactory) -> None:
    """Make an allocator available to scenarios by ``name``: an ``NBBS`` subclass, or a builder
    ``(scenario, words_factory, lock_factory) -> allocator``."""
    if not name.replace("_", "a").isalnum() or not name[0].isalpha():
        raise ExplorerError(f"an allocator name is letters, digits and _, starting with a letter: {name!r}")
    if isinstance(allocator, type) and issubclass(allocator, NBBS):
        _REGISTERED[name] = _nbbs_family(allocator)
    else:
        _REGISTERED[name] = allocator


def factory(name: str) -> AllocatorFactory:
    """The builder of the allocator called ``name``."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name == "locked":
        return _locked
    classes = allocator_classes()
    if name not in classes:
        raise ExplorerError(unknown_allocator(name))
    return _nbbs_family(classes[name])
