"""Real OS threads: no two threads ever hold overlapping blocks, and everything comes back."""

import random
import threading
from collections.abc import Callable

import pytest
from conftest import DEEP

from nbbs.impl import NBBS
from nbbs.impl.atomics import CereggiiWords, StripedWords

ARENAS: dict[str, Callable[[int], NBBS]] = {
    "striped": lambda depth: NBBS(depth, page_size=1, backend=StripedWords),
    "cereggii": lambda depth: NBBS(depth, page_size=1, backend=CereggiiWords),
    "c": lambda depth: NBBS(depth, page_size=1, engine="c"),
    "c-top_down_node": lambda depth: NBBS(depth, page_size=1, engine="c", variant="top_down_node"),
}
"""The Python engine on each word backend, and the C engine (which releases the GIL in every call),
also running issue 12's cheap candidate (ALGORITHM.md §1.4.3)."""


@pytest.mark.parametrize("engine", list(ARENAS))
def test_threads_never_hold_overlapping_blocks_and_free_everything(engine: str) -> None:
    depth, threads, rounds = 6, (8 if DEEP else 4), (3000 if DEEP else 400)
    a = ARENAS[engine](depth)
    owner = [-1] * (1 << depth)  # who holds each page; a claim over a held page is an overlap
    owner_lock = threading.Lock()  # guards only the test's bookkeeping, not the allocator
    overlaps: list[str] = []

    def worker(tid: int) -> None:
        rng = random.Random(tid)
        held: list[tuple[int, int]] = []

        def give_back(address: int, order: int) -> None:
            with owner_lock:
                for p in range(address, address + (1 << order)):
                    owner[p] = -1
            a.free(address)

        for _ in range(rounds):
            if held and rng.random() < 0.5:
                give_back(*held.pop(rng.randrange(len(held))))
                continue
            order = rng.randrange(0, 4)
            address = a.alloc(order)
            if address is None:
                continue
            with owner_lock:
                for p in range(address, address + (1 << order)):
                    if owner[p] != -1:
                        overlaps.append(f"thread {tid} got page {p}, held by thread {owner[p]}")
                    owner[p] = tid
            held.append((address, order))
        for block in held:
            give_back(*block)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not overlaps, overlaps[:5]
    assert a.live_blocks() == []
    assert not any(a.words())  # no claim left behind either (a lost token would block a subtree)
