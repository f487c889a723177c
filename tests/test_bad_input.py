"""Every bad argument raises the NBBSError that names it, and leaves every word as it was."""

from collections.abc import Callable, Iterator
from functools import partial

import pytest

from nbbs.impl import (
    MAX_DEPTH,
    NBBS,
    ConfigurationError,
    DoubleFreeError,
    ForeignAddressError,
    HintError,
    InteriorAddressError,
    LockedBuddy,
    MisalignedAddressError,
    NBBSError,
    OrderError,
    SizeError,
    WrongOrderError,
)

PAGE = 4096
START = 1 << 20

ENGINES = [pytest.param(NBBS, id="python"), pytest.param(partial(NBBS, engine="c"), id="c")]
"""Both engines of ``NBBS``: every check below runs on each."""


@pytest.fixture(params=ENGINES)
def make(request: pytest.FixtureRequest) -> Callable[..., NBBS]:
    """``NBBS`` with the Python engine, or with the C one."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=[*ENGINES, pytest.param(LockedBuddy, id="locked")])
def busy(request: pytest.FixtureRequest) -> Iterator[NBBS]:
    """An arena of 16 pages from START, max order 3, holding blocks of orders 0, 1 and 2."""
    a = request.param(4, page_size=PAGE, start=START, max_order=3)
    a.blocks = [a.alloc(0, hint=0), a.alloc(1, hint=1), a.alloc(2, hint=1)]
    yield a


def rejects(a: NBBS, error: type[NBBSError], words: str, call: Callable[[], object]) -> None:
    """``call`` raises ``error`` with ``words`` in its message, and the state is unchanged."""
    before, live = a.words(), a.live_blocks()
    with pytest.raises(error, match=words):
        call()
    assert a.words() == before and a.live_blocks() == live


def test_a_negative_order_is_rejected(busy: NBBS) -> None:
    rejects(busy, OrderError, "negative", lambda: busy.alloc(-1))


def test_an_order_above_the_maximum_is_rejected(busy: NBBS) -> None:
    rejects(busy, OrderError, "above the maximum order 3", lambda: busy.alloc(4))


@pytest.mark.parametrize("order", [1.0, "2", None, True])
def test_an_order_that_is_not_an_int_is_rejected(busy: NBBS, order: object) -> None:
    rejects(busy, OrderError, "must be an int", lambda: busy.alloc(order))  # type: ignore[arg-type]


def test_a_misaligned_address_is_rejected(busy: NBBS) -> None:
    rejects(busy, MisalignedAddressError, "page boundary", lambda: busy.free(busy.blocks[0] + 8))


def test_an_address_not_aligned_to_the_order_is_rejected(busy: NBBS) -> None:
    rejects(busy, MisalignedAddressError, "order 2", lambda: busy.free(START + PAGE, 2))


def test_an_address_below_start_is_rejected(busy: NBBS) -> None:
    rejects(busy, ForeignAddressError, "outside the arena", lambda: busy.free(START - PAGE))


def test_an_address_beyond_the_arena_is_rejected(busy: NBBS) -> None:
    rejects(busy, ForeignAddressError, "outside the arena", lambda: busy.free(START + 16 * PAGE))


def test_an_address_that_is_not_an_int_is_rejected(busy: NBBS) -> None:
    rejects(busy, ForeignAddressError, "must be an int", lambda: busy.free("0x100000"))  # type: ignore[arg-type]


def test_an_address_inside_a_live_block_is_rejected(busy: NBBS) -> None:
    inside = busy.blocks[2] + PAGE
    rejects(busy, InteriorAddressError, "inside the live block", lambda: busy.free(inside))


def test_freeing_with_the_wrong_order_is_rejected(busy: NBBS) -> None:
    rejects(busy, WrongOrderError, "has order 1, not 0", lambda: busy.free(busy.blocks[1], 0))


def test_a_double_free_is_rejected(busy: NBBS) -> None:
    busy.free(busy.blocks[0])
    rejects(busy, DoubleFreeError, "double free", lambda: busy.free(busy.blocks[0]))


def test_an_address_never_allocated_is_rejected(busy: NBBS) -> None:
    free_page = next(
        START + p * PAGE
        for p in range(16)
        if not any(a <= START + p * PAGE < a + (PAGE << o) for a, o in busy.live_blocks())
    )
    rejects(busy, DoubleFreeError, "no live block", lambda: busy.free(free_page))


def test_a_size_that_is_not_positive_is_rejected(busy: NBBS) -> None:
    rejects(busy, SizeError, "positive", lambda: busy.alloc_bytes(0))


def test_a_size_above_the_largest_block_is_rejected(busy: NBBS) -> None:
    rejects(busy, SizeError, "above the maximum order", lambda: busy.alloc_bytes(8 * PAGE + 1))


def test_alloc_bytes_rounds_up_to_a_power_of_two_pages(make: Callable[..., NBBS]) -> None:
    a = make(4, page_size=PAGE)
    address = a.alloc_bytes(3 * PAGE - 1)
    assert a.live_blocks() == [(address, 2)]


@pytest.mark.parametrize("depth", [-1, MAX_DEPTH + 1, 2.0, None])
def test_a_depth_outside_the_limit_is_rejected(make: Callable[..., NBBS], depth: object) -> None:
    with pytest.raises(ConfigurationError, match=f"from 0 to {MAX_DEPTH}"):
        make(depth)  # type: ignore[arg-type]


@pytest.mark.parametrize("page_size", [0, 3, 4095, -4096, 4096.0])
def test_a_page_size_that_is_not_a_power_of_two_is_rejected(
    make: Callable[..., NBBS], page_size: object
) -> None:
    with pytest.raises(ConfigurationError, match="power of two"):
        make(3, page_size=page_size)  # type: ignore[arg-type]


@pytest.mark.parametrize("start", [PAGE, 3 * PAGE, 1])
def test_a_start_not_aligned_to_the_largest_block_is_rejected(make: Callable[..., NBBS], start: int) -> None:
    with pytest.raises(ConfigurationError, match="not aligned to the largest block"):
        make(3, page_size=PAGE, start=start, max_order=2)


@pytest.mark.parametrize("max_order", [-1, 4, 1.5])
def test_a_max_order_outside_the_tree_is_rejected(make: Callable[..., NBBS], max_order: object) -> None:
    with pytest.raises(ConfigurationError, match="max_order"):
        make(3, max_order=max_order)  # type: ignore[arg-type]


def test_a_start_aligned_to_the_largest_block_is_an_offset(make: Callable[..., NBBS]) -> None:
    a = make(3, page_size=PAGE, start=4 * PAGE, max_order=2)
    assert a.alloc(2, hint=0) == 4 * PAGE
    assert a.alloc(2, hint=0) == 8 * PAGE
    assert a.alloc(0) is None


@pytest.mark.parametrize("hint", ["5", 5.0, True, [1]])
def test_a_hint_that_is_not_an_int_is_rejected_by_both_allocators(busy: NBBS, hint: object) -> None:
    rejects(busy, HintError, "hint must be an int", lambda: busy.alloc(0, hint=hint))  # type: ignore[arg-type]


def test_the_depth_error_states_the_size_the_words_take() -> None:
    with pytest.raises(ConfigurationError, match=r"8 bytes per node, 2\*\*\(depth\+4\) bytes"):
        NBBS(MAX_DEPTH + 1)
