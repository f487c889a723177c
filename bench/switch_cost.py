"""What one context switch between logical threads costs: greenlet, generator, OS-thread baton.

The explorer needs to suspend a logical thread in the middle of the allocator's own call
stack at every atomic access. Three ways to do that in CPython:

* greenlet: ``g.switch()`` suspends the whole stack; the allocator's code stays unchanged;
* generator: ``gen.send()`` is cheaper but only suspends one frame, so every function on
  the way to an access would have to become a generator (``yield from``): a rewrite;
* OS threads handing a baton (one ``threading.Semaphore`` per thread): unchanged code too,
  but each hand-over is a kernel wake-up.

    python bench/switch_cost.py

Prints the cost of one switch (one direction) for each, best of 5.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

from greenlet import greenlet

N = 200_000


def greenlet_switch() -> float:
    def other() -> None:
        while True:
            main.switch()

    main = greenlet.getcurrent()
    g = greenlet(other)
    g.switch()
    t = time.perf_counter()
    for _ in range(N):
        g.switch()
    return (time.perf_counter() - t) / (2 * N)


def generator_send() -> float:
    def other() -> Generator[None, None, None]:
        while True:
            yield

    gen = other()
    next(gen)
    t = time.perf_counter()
    for _ in range(N):
        gen.send(None)
    return (time.perf_counter() - t) / (2 * N)


def thread_baton(n: int = 20_000) -> float:
    a, b = threading.Semaphore(0), threading.Semaphore(0)

    def other() -> None:
        for _ in range(n):
            a.acquire()
            b.release()

    th = threading.Thread(target=other)
    th.start()
    t = time.perf_counter()
    for _ in range(n):
        a.release()
        b.acquire()
    elapsed = time.perf_counter() - t
    th.join()
    return elapsed / (2 * n)


def main() -> None:
    for name, fn in (("greenlet switch", greenlet_switch), ("generator send", generator_send)):
        print(f"{name:20} {min(fn() for _ in range(5)) * 1e6:8.3f} us")
    print(f"{'OS thread baton':20} {min(thread_baton() for _ in range(5)) * 1e6:8.3f} us")


if __name__ == "__main__":
    main()
