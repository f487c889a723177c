"""One arena in a shared-memory segment, many processes: no overlap, nothing lost, dead holders recovered."""

import multiprocessing as mp
import os
import random
import signal
import threading
from collections.abc import Iterator
from multiprocessing import shared_memory

import pytest
from conftest import DEEP

from nbbs.impl import NBBS, ConfigurationError
from nbbs.impl.shared import SegmentError, SharedNBBS, segment_bytes
from nbbs.model import bits

DEPTH, MAX_ORDER = 8, 3  # 256 pages, blocks of 1 to 8 pages: small, so processes meet often
SPAWN = mp.get_context("spawn")  # children share nothing with the test but the segments' names


@pytest.fixture
def heap() -> Iterator[SharedNBBS]:
    with SharedNBBS.create(None, DEPTH, page_size=1, max_order=MAX_ORDER) as h:
        try:
            yield h
        finally:
            h.unlink()


def hammer(
    name: str,
    bitmap_name: str,
    start: "mp.synchronize.Barrier",
    worker: int,
    threads: int,
    rounds: int,
    private: bool,
) -> None:
    """A process: ``threads`` threads allocating and freeing at random on arena ``name``.

    Every page of a block handed out is set in the shared page bitmap (an already-set page
    is an overlap: another holder has it) and checked and cleared before the free (a clear
    page is a block someone else freed under us). The process exits 1 on either.
    ``private``: the broken setup the bitmap must catch, each process on an arena of its own.
    """
    heap = NBBS(DEPTH, page_size=1, max_order=MAX_ORDER, engine="c") if private else SharedNBBS.attach(name)
    bitmap = shared_memory.SharedMemory(name=bitmap_name)
    pages = bitmap.buf
    faults: list[str] = []

    def run(tid: int) -> None:
        rng = random.Random(worker * 100 + tid)
        mark = worker * 16 + tid + 1  # who holds the page, for the message
        held: list[tuple[int, int]] = []
        for _ in range(rounds):
            if held and (len(held) > 12 or rng.random() < 0.5):
                address, order = held.pop(rng.randrange(len(held)))
                for p in range(address, address + (1 << order)):
                    if pages[p] != mark:
                        faults.append(f"page {p} of my block {address}/{order} shows holder {pages[p]}")
                    pages[p] = 0
                heap.free(address, order)
                continue
            order = rng.randrange(MAX_ORDER + 1)
            address = heap.alloc(order)
            if address is None:
                continue
            for p in range(address, address + (1 << order)):
                if pages[p] != 0:
                    faults.append(f"page {p} handed to {mark}, held by {pages[p]}")
                pages[p] = mark
            held.append((address, order))
        for address, order in held:
            for p in range(address, address + (1 << order)):
                pages[p] = 0
            heap.free(address, order)

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    start.wait(60)  # every process ready: they run at once, not one after the other
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    bitmap.close()
    heap.close()  # type: ignore[attr-defined]
    if faults:
        print("\n".join(faults[:10]), flush=True)
        os._exit(1)


def test_four_processes_hammering_one_arena_never_overlap_and_lose_nothing(heap: SharedNBBS) -> None:
    bitmap = shared_memory.SharedMemory(create=True, size=1 << DEPTH)
    try:
        rounds = 20_000 if DEEP else 3_000
        start = SPAWN.Barrier(4)
        args = [(heap.name, bitmap.name, start, w, 2, rounds, False) for w in range(4)]
        procs = [SPAWN.Process(target=hammer, args=a) for a in args]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        assert heap.live_blocks() == [] and heap.consistent() == []
        whole = [heap.alloc(MAX_ORDER) for _ in range(1 << (DEPTH - MAX_ORDER))]
        assert None not in whole and heap.alloc(0) is None  # the whole arena, as the largest blocks
    finally:
        bitmap.close()
        bitmap.unlink()


def test_the_bitmap_catches_processes_that_do_not_share_one_arena(heap: SharedNBBS) -> None:
    bitmap = shared_memory.SharedMemory(create=True, size=1 << DEPTH)
    try:
        procs = [
            SPAWN.Process(target=hammer, args=(heap.name, bitmap.name, w, 1, 2000, True)) for w in range(2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        assert 1 in [p.exitcode for p in procs]
    finally:
        bitmap.close()
        bitmap.unlink()


def hold_and_wait(name: str, ready: "mp.synchronize.Event", out: "mp.queues.Queue[list[int]]") -> None:
    """A process that takes blocks, says which, and waits to be killed."""
    heap = SharedNBBS.attach(name)
    out.put([heap.alloc(o) for o in (0, 1, 2, 0)])  # type: ignore[misc]
    ready.set()
    threading.Event().wait(60)


def test_a_killed_process_leaves_its_blocks_allocated_and_they_can_be_recovered(heap: SharedNBBS) -> None:
    mine = heap.alloc(3)
    ready, out = SPAWN.Event(), SPAWN.Queue()
    child = SPAWN.Process(target=hold_and_wait, args=(heap.name, ready, out))
    child.start()
    theirs = out.get(timeout=60)
    assert ready.wait(60)
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join()
    assert child.exitcode == -signal.SIGKILL
    live = heap.live_blocks()
    assert sorted(a for a, _ in live) == sorted([mine, *theirs])  # still allocated, nothing else
    assert heap.consistent() == []
    for address, order in live:  # the recovery: free what the dead process held
        if address != mine:
            heap.free(address, order)
    heap.free(mine)
    assert (
        len([heap.alloc(MAX_ORDER) for _ in range(1 << (DEPTH - MAX_ORDER))]) == 32 and heap.alloc(0) is None
    )


def test_attach_reads_the_shape_from_the_header(heap: SharedNBBS) -> None:
    other = SharedNBBS.attach(heap.name, depth=DEPTH, page_size=1)
    try:
        assert (other.depth, other.max_order, other.arena.page_size, other.variant) == (
            DEPTH,
            3,
            1,
            "top_down_node",  # the default variant, recorded in the header by create
        )
        address = other.alloc(1)
        assert heap.live_blocks() == [(address, 1)]
    finally:
        other.close()


def test_a_top_down_node_arena_is_attached_as_top_down_node_and_shares_its_words() -> None:
    # The header's variant number (native.VARIANTS) names issue 12's candidate: an attach that
    # read it as counted would walk the words with the wrong predicates.
    with SharedNBBS.create(None, DEPTH, page_size=1, max_order=MAX_ORDER, variant="top_down_node") as h:
        try:
            a = h.alloc(0, hint=0)
            with SharedNBBS.attach(h.name) as other:
                assert other.variant == "top_down_node" and other.words() == h.words()
                b = other.alloc(0, hint=1)  # its buddy: counted at their parent only
                py = NBBS(DEPTH, page_size=1, max_order=MAX_ORDER, variant="top_down_node")
                assert (py.alloc(0, hint=0), py.alloc(0, hint=1)) == (a, b)
                assert h.words() == py.words()
                other.free(a)
            h.free(b)
            assert not any(h.words())
        finally:
            h.unlink()


def test_a_segment_made_under_another_default_is_attached_as_the_variant_its_header_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A process of the code before the switch (default counted) makes the segment; this one,
    # whose default is top_down_node, attaches it by name alone: it must run counted on it, whose
    # quiescent words differ (two buddies: counted counts both at every ancestor, top_down_node
    # hands one claim up from their parent).
    monkeypatch.setattr(bits, "DEFAULT_VARIANT", "counted")
    old = SharedNBBS.create(None, DEPTH, page_size=1, max_order=MAX_ORDER)
    monkeypatch.undo()
    try:
        assert bits.DEFAULT_VARIANT == "top_down_node" and old.variant == "counted"
        a, b = old.alloc(0, hint=0), old.alloc(0, hint=1)
        counted, shipped = (
            NBBS(DEPTH, page_size=1, max_order=MAX_ORDER, variant=v) for v in ("counted", None)
        )
        assert [(h.alloc(0, hint=0), h.alloc(0, hint=1)) for h in (counted, shipped)] == [(a, b)] * 2
        assert counted.words() != shipped.words()
        with SharedNBBS.attach(old.name) as other:
            assert other.variant == "counted" and other.transitions is bits.COUNTED
            assert other.words() == counted.words() and not other.consistent()
            other.free(a)
        old.free(b)
        assert not any(old.words())
        with pytest.raises(SegmentError, match="variant='counted', not 'top_down_node'"):
            SharedNBBS.attach(old.name, variant="top_down_node")
    finally:
        old.close()
        old.unlink()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"depth": 9}, "depth=8, not 9"),
        ({"variant": "reference"}, "variant='top_down_node', not 'reference'"),
        ({"variant": "counted"}, "variant='top_down_node', not 'counted'"),
    ],
)
def test_attach_with_a_shape_the_header_does_not_hold_is_refused(
    heap: SharedNBBS, kwargs: dict[str, object], words: str
) -> None:
    with pytest.raises(SegmentError, match=words):
        SharedNBBS.attach(heap.name, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size", "header", "words"),
    [
        (16, b"", "less than the 64-byte header"),
        (4096, b"not an arena", "holds no nbbs arena"),
        (200, None, "needs " + str(segment_bytes(DEPTH))),
    ],
    ids=["smaller-than-header", "foreign", "too-small-for-its-depth"],
)
def test_a_segment_that_is_not_an_arena_is_refused(
    heap: SharedNBBS, size: int, header: bytes | None, words: str
) -> None:
    seg = shared_memory.SharedMemory(create=True, size=size)
    try:
        assert seg.buf is not None and heap._segment.buf is not None
        seg.buf[: len(header or b"")] = header or b""
        if header is None:  # a real header, cut short
            seg.buf[:64] = heap._segment.buf[:64]
        with pytest.raises(SegmentError, match=words):
            SharedNBBS.attach(seg.name)
    finally:
        seg.close()
        seg.unlink()


def test_create_checks_the_shape_and_direct_construction_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="power of two"):
        SharedNBBS.create(None, 4, page_size=3)
    with pytest.raises(TypeError, match=r"SharedNBBS\.create"):
        SharedNBBS(4)


def test_a_closed_mapping_refuses_calls_and_the_arena_lives_on(heap: SharedNBBS) -> None:
    other = SharedNBBS.attach(heap.name)
    address = other.alloc(0)
    other.close()
    other.close()
    with pytest.raises(ValueError, match="closed"):
        other.alloc(0)
    assert heap.live_blocks() == [(address, 0)]
