"""The C engine (``NBBS(..., engine="c")``): the Python API over the C port, and what only it refuses.

The shared checks (differential machines, real threads, bad input) are parametrized over both
engines in their own files; this file holds what is particular to the C engine.
"""

import os
import random
import subprocess
import sys
import threading

import pytest

from nbbs.check.impl_mutants import DroppedCasRetry
from nbbs.impl import NBBS, ConfigurationError, DoubleFreeError, HintError, OrderError, WrongOrderError
from nbbs.impl.native import NativeNBBS


def test_engine_c_builds_a_native_nbbs_with_the_same_answers_as_python() -> None:
    py, c = (
        NBBS(8, page_size=64, start=1 << 20, max_order=5),
        NBBS(8, page_size=64, start=1 << 20, max_order=5, engine="c"),
    )
    assert isinstance(c, NativeNBBS) and isinstance(c, NBBS) and type(py) is NBBS
    for order, hint in [(0, None), (3, 5), (5, None), (1, -3), (2, 1 << 70), (0, None), (1, 7)]:
        assert c.alloc(order, hint=hint) == py.alloc(order, hint)  # the keyword too takes the C path
        assert c.words() == py.words()
    for address, order in py.live_blocks()[::2]:
        py.free(address, order)
        c.free(address=address, order=order)
    address = py.live_blocks()[0][0]
    py.free(address)
    c.free(address)
    assert c.words() == py.words() and c.live_blocks() == py.live_blocks()


@pytest.mark.parametrize("variant", ["top_down", "top_down_node"])
def test_the_c_engine_writes_the_python_engine_s_words_for_a_top_down_variant(variant: str) -> None:
    # Word for word after every operation (random orders, hints and frees, a max_order below
    # the depth): a C predicate of the wrong variant (a side's claim for any claim) or a descent
    # that counts a level the Python one skips shows as a differing word.
    rng = random.Random(12)
    for depth, max_order in [(6, 6), (7, 4), (3, 1)]:
        py = NBBS(depth, page_size=1, max_order=max_order, variant=variant)
        c = NBBS(depth, page_size=1, max_order=max_order, variant=variant, engine="c")
        held: list[int] = []
        for _ in range(400):
            if held and rng.random() < 0.45:
                address = held.pop(rng.randrange(len(held)))
                py.free(address)
                c.free(address)
            else:
                order, hint = rng.randrange(max_order + 1), rng.randrange(1 << depth)
                got = py.alloc(order, hint)
                assert c.alloc(order, hint) == got
                if got is not None:
                    held.append(got)
            assert c.words() == py.words()
        assert c.live_blocks() == py.live_blocks()


def test_arguments_that_are_not_plain_ints_take_the_checked_path() -> None:
    class Order(int):
        pass

    heap = NBBS(4, engine="c")
    address = heap.alloc(Order(1), hint=Order(1))
    assert address == 2 * 4096
    with pytest.raises(OrderError, match="must be an int"):
        heap.alloc(True)
    with pytest.raises(HintError, match="hint must be an int"):
        heap.alloc(0, hint=1.0)  # type: ignore[arg-type]
    with pytest.raises(WrongOrderError):
        heap.free(Order(address), order=Order(0))
    heap.free(address=Order(address), order=1)
    assert heap.live_blocks() == []


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"variant": "corrected"}, "variants"),
        ({"backend": object}, "backend"),
        ({"engine": "rust"}, "engine must be one of"),
        ({"page_size": 1 << 40, "depth": 28}, "64-bit"),
    ],
    ids=["five-bit-variant", "backend", "unknown-engine", "beyond-64-bits"],
)
def test_what_only_the_c_engine_cannot_run_is_refused(kwargs: dict[str, object], words: str) -> None:
    shape: dict[str, object] = {"depth": 4, "engine": "c", **kwargs}
    with pytest.raises(ConfigurationError, match=words):
        NBBS(**shape)  # type: ignore[arg-type]


def test_a_subclass_of_the_python_engine_refuses_engine_c() -> None:
    with pytest.raises(ConfigurationError, match="only with engine='python'"):
        DroppedCasRetry(3, engine="c")


def test_a_closed_arena_refuses_every_call() -> None:
    with NBBS(3, engine="c") as heap:  # type: ignore[attr-defined]
        heap.alloc(0)
    for call in (lambda: heap.alloc(0), lambda: heap.free(0), heap.words):
        with pytest.raises(ValueError, match="closed"):
            call()


def test_racing_frees_of_one_block_free_it_exactly_once() -> None:
    heap = NBBS(6, page_size=1, engine="c")
    for _ in range(300):
        address = heap.alloc(2)
        assert address is not None
        outcomes: list[str] = []
        start = threading.Barrier(2)

        def free(
            address: int = address, start: threading.Barrier = start, outcomes: list[str] = outcomes
        ) -> None:
            start.wait()
            try:
                heap.free(address)
                outcomes.append("freed")
            except DoubleFreeError:
                outcomes.append("refused")

        pool = [threading.Thread(target=free) for _ in range(2)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert sorted(outcomes) == ["freed", "refused"]
        assert heap.live_blocks() == [] and not any(heap.words())


def test_engine_c_without_a_compiler_says_what_is_missing(tmp_path: object) -> None:
    env = {**os.environ, "CC": "no-such-cc", "NBBS_PORT_BUILD_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", "from nbbs.impl import NBBS; NBBS(3, engine='c')"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    assert "PortBuildError: no C compiler" in done.stderr, done.stderr


MUTANT = """
import importlib.machinery, importlib.util, sys
from nbbs.ports import build
path = build("ext", defects=[{defect!r}])
loader = importlib.machinery.ExtensionFileLoader("_nbbs_engine", str(path))
spec = importlib.util.spec_from_file_location("_nbbs_engine", path, loader=loader)
module = importlib.util.module_from_spec(spec)
loader.exec_module(module)
sys.modules["_nbbs_engine"] = module  # nbbs.impl._native takes the engine already loaded
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from nbbs.check import differential
run_state_machine_as_test(differential.machine(differential.c_engine(), 4), settings=settings(
    max_examples=300, stateful_step_count=15, database=None, derandomize=True,
    report_multiple_bugs=False, suppress_health_check=list(HealthCheck),
    phases=[Phase.generate]))  # unshrunk: the test only shows the catch, and shrinking took 10 s
"""


@pytest.mark.parametrize("defect", ["IGNORE_START", "WRONG_SHIFT", "NO_ARG_CHECKS"])
def test_the_differential_machine_catches_a_broken_c_engine(defect: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", MUTANT.format(defect=defect)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "state = " in done.stderr and "state.build(" in done.stderr, done.stderr[-2000:]
    print(done.stderr[-1500:])
