"""The distributed model checker's machinery: ``_mc``'s search, partitioned by state hash over Dask workers.

Each worker process holds one ``Shard`` per run: its own ``_mc.Checker`` (the successor
function and the property checks, unchanged) and the slice of the seen set it owns, the
states ``s`` with ``owner(s) == its index``, each with its parent (for the shortest
counterexamples). The client drives a level-synchronous breadth-first search:

    level       one task per worker: it takes the successors the other workers sent it (with
                their parents), keeps those it has not seen (the next level's states), checks
                (a)-(c) on them with ``Checker.check_state``, expands them with
                ``Space.successors`` and splits the successors by owner, one pickled part per
                worker. The parts go from worker to worker (Dask moves a task's inputs), never
                through the client, which only gathers each level's counts.
    shortest    a violation found at level L has a path of L steps (breadth first, as ``_mc``);
                the client walks the parents back, asking each state's owner, and replays the
                path with ``Checker.replay_path`` (concrete thread identities, ``_mc``'s output).
    (d)         during the search each state's steps that complete nothing are counted (by the
                state's owner) and kept, reversed, by their target's owner (target position,
                source reference); after a complete search, Kahn's peeling on the reversed
                graph, distributed the same way: rounds remove the states none of whose such
                steps lead to a state not yet removed, and tell their predecessors' owners
                (no state is stepped again). States left over can reach a cycle; their steps
                to states left (gathered to the client) lead to one.

Op ids are interned lazily by ``_mc.Space``, in the order a search meets them, so two processes
would number them differently and one state would have two encodings. Every process (the
client and each worker) therefore first interns every op state the configuration can reach
in one fixed order, the closure that ``_mc_vec.Tables`` computes, and the client checks that
every worker's numbering is its own (``numbering``); a state that uses an op state interned
after the closure is an error.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import logging
import pickle
import resource
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import getitem
from typing import Any

import numpy as np
import numpy.typing as npt

from nbbs.check._mc import Checker, Config, CountRangeError, Result, Violation

Arr = npt.NDArray[np.int64]

ROOT = -1
"""The parent of an initial state."""

WATCH = 2.0
"""Seconds between checks, while waiting for the workers, that none of them has left."""

AHEAD = 4
"""Rounds (BFS levels, peeling rounds) submitted before the client sees the first of them."""

_MIX = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1


def owner(s: int, workers: int) -> int:
    """The worker that owns state ``s``: a multiplicative hash of ``hash(s)`` (an int's hash is the
    same in every 64-bit CPython process)."""
    return (((hash(s) * _MIX) & _M64) >> 32) % workers


def numbered_checker(cfg: Config) -> Checker:
    """A ``Checker`` whose op ids are interned in a fixed order (the same in every process)."""
    from nbbs.check._mc_vec import Tables

    checker = Checker(cfg)
    Tables(checker)  # its closure interns every reachable op state, deterministically
    return checker


def numbering(checker: Checker) -> str:
    """A digest of a checker's op ids: two processes must agree on it."""
    sp = checker.sp
    return hashlib.sha256(repr(list(zip(sp.ops, sp.ctx, strict=True))).encode()).hexdigest()


# -- the worker side ---------------------------------------------------------------------------------


@dataclass
class Shard:
    """One worker's part of one run: its checker and the states it owns."""

    index: int
    workers: int
    checker: Checker
    position: dict[int, int] = field(default_factory=dict)
    """Every state this worker owns -> its position ``i`` in ``states``; its reference is
    ``i * workers + index`` (this worker's)."""
    states: list[int] = field(default_factory=list)
    """The states in the order they were found."""
    parents: array[int] = field(default_factory=lambda: array("q"))
    """The reference of the state each was first reached from (``ROOT``: an initial state)."""
    stuck: array[int] = field(default_factory=lambda: array("q"))
    """(d): how many of each state's steps (by position) complete nothing, counted when it is
    expanded, then taken away as the peeling goes."""
    into: array[int] = field(default_factory=lambda: array("q"))
    from_: array[int] = field(default_factory=lambda: array("q"))
    """(d): the steps that complete nothing, as the owner of their target receives them: the
    target's position (``into``) and the source's reference (``from_``)."""
    out_edges: tuple[Arr, Arr] | None = None
    """(d), while peeling: ``into`` grouped by target: offsets per position, sources' references."""
    defect: str | None = None
    """A deliberate bug (``DEFECTS``), for showing that the cross-check catches a broken engine."""
    closed: int = 0
    """How many op states the closure interned (the ids every process shares)."""


_SHARDS: dict[str, Shard] = {}
"""The shards of the runs this process takes part in (module state: it lives as long as the worker)."""


DEFECTS = {
    "drop_foreign": "a worker drops the successors it does not own instead of sending them",
    "own_by_low_bits": "worker 0 partitions by the state's low bits, the others by its hash",
    "lose_successor": "the successor function loses the last successor of every state",
}
"""Deliberately broken engines (``DistChecker(defect=...)``): the tests show each caught."""


def _split(
    children: Sequence[int], srcs: Sequence[int] | None, workers: int, shard: Shard | None = None
) -> list[bytes]:
    """``children`` (with ``srcs``, the same length, if given) split by owner, one pickled part each."""
    cs: list[list[int]] = [[] for _ in range(workers)]
    rs: list[list[int]] = [[] for _ in range(workers)]
    defect = None if shard is None else shard.defect
    low = defect == "own_by_low_bits" and shard is not None and shard.index == 0
    for k, child in enumerate(children):
        j = child % workers if low else owner(child, workers)
        if defect == "drop_foreign" and shard is not None and j != shard.index:
            continue
        cs[j].append(child)
        if srcs is not None:
            rs[j].append(srcs[k])
    return [
        pickle.dumps((cs[j], rs[j] if srcs is not None else None), pickle.HIGHEST_PROTOCOL)
        for j in range(workers)
    ]


def _parts(blobs: Sequence[bytes]) -> Iterator[tuple[list[int], list[int] | None]]:
    for blob in blobs:
        if blob:
            yield pickle.loads(blob)


def w_open(
    run: str, cfg: Config, index: int, workers: int, defect: str | None = None
) -> tuple[str, int, float]:
    """Start this worker's shard of ``run``: its op numbering's digest, its resident bytes and the
    CPU seconds its process has used, now."""
    checker = numbered_checker(cfg)
    shard = _SHARDS[run] = Shard(index, workers, checker, defect=defect, closed=len(checker.sp.ops))
    return numbering(shard.checker), _rss(), _cpu()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def w_close(run: str) -> tuple[int, int, float]:
    """Forget ``run``; how many states this worker held, its process's peak resident bytes and
    the CPU seconds its process has used (every thread: the search, Dask's communication)."""
    shard = _SHARDS.pop(run, None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return (0 if shard is None else len(shard.states)), peak, _cpu()


@dataclass
class LevelStats:
    """What one worker did in one level."""

    new: int = 0
    transitions: int = 0
    quiescent: int = 0
    stale_quiescent: int = 0
    found: list[tuple[str, str, int]] = field(default_factory=list)
    """(property, message, state): the first new state of this level that breaks each property."""
    corrupt: tuple[str, int] | None = None
    """A step out of a count's range: (message, state it is taken from); the search stops."""
    seconds: float = 0.0


def w_level(run: str, pending: Sequence[str], workers: int, *incoming: bytes) -> tuple[Any, ...]:
    """Take a level's successors, keep the new ones, check and expand them.

    Returns ``(LevelStats, part for worker 0, part for worker 1, ...)``; a part holds the
    successors that worker owns and, for each, ``2 * ref + stuck``: ``ref`` its source's
    reference (``Shard.parents``), ``stuck`` 1 if the step completes no operation (kept here,
    for (d), in ``Shard.into`` and ``Shard.from_``, whether the successor is new or not).
    """
    started = time.perf_counter()
    shard = _SHARDS.get(run)
    if shard is None:  # a level submitted ahead, run after the search ended
        return (LevelStats(), *(b"" for _ in range(workers)))
    checker, position, states, parents = shard.checker, shard.position, shard.states, shard.parents
    into, from_ = shard.into, shard.from_
    base = len(states)
    for cs, rs in _parts(incoming):
        assert rs is not None
        for child, ref in zip(cs, rs, strict=True):
            i = position.get(child)
            if i is None:
                i = position[child] = len(states)
                states.append(child)
                parents.append(ref >> 1)
            if ref & 1:
                into.append(i)
                from_.append(ref >> 1)
    new = states[base:]
    sp = checker.sp
    if len(sp.ops) > shard.closed:
        # Op states interned after the closure (rows of word values no state holds, as a
        # five-bit op's table has) are harmless unless a state uses one: its id could differ
        # between processes.
        for s in new:
            if max(sp.tids(s)) >= shard.closed:
                raise AssertionError(
                    "[dist model checker internal bug] a state uses an op state outside the closure"
                )
    stats = LevelStats(new=len(new))
    r = checker.result
    q0, s0 = r.quiescent, r.stale_quiescent
    want = set(pending)
    out: list[int] = []
    refs: list[int] = []
    successors = sp.successors
    W, me = shard.workers, shard.index
    for k, s in enumerate(new):
        for prop, msg in checker.check_state(s):
            if prop in want:
                want.discard(prop)
                stats.found.append((prop, msg, s))
        try:
            succ = successors(s)
        except CountRangeError as e:
            stats.corrupt = (f"the next step corrupts a word: {e}", s)
            break
        if shard.defect == "lose_successor":
            succ = succ[:-1]
        stats.transitions += len(succ)
        ref = ((base + k) * W + me) << 1
        stuck = 0
        for child, done in succ:
            out.append(child)
            refs.append(ref if done else ref | 1)
            stuck += not done
        shard.stuck.append(stuck)
    stats.quiescent, stats.stale_quiescent = r.quiescent - q0, r.stale_quiescent - s0
    stats.seconds = time.perf_counter() - started
    return (stats, *_split(out, refs, W, shard))


def _missing(shard: Shard) -> AssertionError:
    return AssertionError(
        f"[dist model checker internal bug] worker {shard.index} does not hold a state it owns"
    )


def w_parent(run: str, state: int) -> int:
    """The reference of the parent of ``state`` (owned here; ``ROOT`` for an initial state)."""
    shard = _SHARDS[run]
    if state not in shard.position:
        raise _missing(shard)
    return shard.parents[shard.position[state]]


def w_at(run: str, i: int) -> tuple[int, int]:
    """This worker's ``i``-th state and the reference of its parent."""
    shard = _SHARDS[run]
    return shard.states[i], shard.parents[i]


def _stuck(shard: Shard, states: Sequence[int]) -> tuple[list[int], list[int]]:
    """The successor and the source of each step of ``states`` that completes no operation."""
    successors = shard.checker.sp.successors
    cs, rs = [], []
    for s in states:
        for child, done in successors(s):
            if not done:
                cs.append(child)
                rs.append(s)
    return cs, rs


def _peeled(shard: Shard, done: Arr) -> list[bytes]:
    """(d): the sources of the steps that complete nothing into the states at positions ``done``
    (just peeled), as positions split by owner: each such source has one step fewer left."""
    assert shard.out_edges is not None
    offsets, sources = shard.out_edges
    counts = offsets[done + 1] - offsets[done]
    starts = np.repeat(offsets[done] - np.cumsum(counts) + counts, counts)
    refs = sources[starts + np.arange(int(counts.sum()))]
    W = shard.workers
    return [pickle.dumps(refs[refs % W == j] // W, pickle.HIGHEST_PROTOCOL) for j in range(W)]


def w_peel_start(run: str) -> tuple[Any, ...]:
    """(d): group the steps that complete nothing by target; peel the states with none of their
    own (no such step leaves them), and tell the owners of those steps' sources."""
    shard = _SHARDS[run]
    into = np.frombuffer(shard.into, np.int64)
    order = np.argsort(into, kind="stable")
    offsets = np.zeros(len(shard.states) + 1, np.int64)
    np.cumsum(np.bincount(into, minlength=len(shard.states)), out=offsets[1:])
    shard.out_edges = (offsets, np.frombuffer(shard.from_, np.int64)[order])
    del into, order
    shard.into, shard.from_ = array("q"), array("q")
    done = np.nonzero(np.frombuffer(shard.stuck, np.int64) == 0)[0]
    return (len(done), *_peeled(shard, done))


def w_peel(run: str, *incoming: bytes) -> tuple[Any, ...]:
    """(d): each position received has one step fewer that completes nothing; those left with
    none are peeled, and the owners of their predecessors told."""
    shard = _SHARDS[run]
    left = np.frombuffer(shard.stuck, np.int64)  # a view: the decrements land in shard.stuck
    hit = [np.asarray(pickle.loads(b), np.int64) for b in incoming if b]
    pos = np.concatenate(hit) if hit else np.empty(0, np.int64)
    np.subtract.at(left, pos, 1)
    touched = np.unique(pos)
    done = touched[left[touched] == 0]
    return (len(done), *_peeled(shard, done))


def w_left_out(run: str) -> tuple[Any, ...]:
    """(d): the states peeling left (some step that completes nothing leads from each to a state
    left), with those steps split by the target's owner."""
    shard = _SHARDS[run]
    left = [shard.states[i] for i, d in enumerate(shard.stuck) if d > 0]
    return (len(left), *_split(*_stuck(shard, left), shard.workers))


def w_left_next(run: str, *incoming: bytes) -> dict[int, int]:
    """(d): for states left elsewhere, a step that completes nothing to a state left here."""
    shard = _SHARDS[run]
    nxt: dict[int, int] = {}
    for cs, rs in _parts(incoming):
        assert rs is not None
        for child, src in zip(cs, rs, strict=True):
            if shard.stuck[shard.position[child]] > 0:
                nxt.setdefault(src, child)
    return nxt


# -- the client side ---------------------------------------------------------------------------------


class DistError(RuntimeError):
    """The cluster cannot be used (Dask missing, no workers, workers that number op states differently)."""


def _quiet() -> None:
    for name in ("distributed", "distributed.worker", "distributed.scheduler", "distributed.nanny"):
        logging.getLogger(name).setLevel(logging.ERROR)


class DistChecker:
    """The client: drives the levels, collects the verdicts, builds the counterexamples."""

    def __init__(
        self,
        cfg: Config,
        client: Any,
        progress: Callable[[Result, int], None] | None = None,
        *,
        defect: str | None = None,
    ) -> None:
        if defect is not None and defect not in DEFECTS:
            raise ValueError(f"no defect {defect!r}: the defects are {', '.join(DEFECTS)}")
        self.cfg, self.client, self.progress, self.defect = cfg, client, progress, defect
        self.checker = numbered_checker(cfg)
        self.result = self.checker.result
        self.addrs = sorted(client.scheduler_info()["workers"])
        if not self.addrs:
            raise DistError("the cluster has no workers")
        self.W = len(self.addrs)
        self.run_id = f"nbbs-{time.time_ns()}-{id(self)}"
        self.levels = 0
        self.per_worker: list[int] = [0] * self.W
        """States each worker holds at the end."""
        self.cpu_at_open: list[float] = [0.0] * self.W
        self.cpu_seconds: list[float] = [0.0] * self.W
        """CPU seconds each worker process used during the run (every thread)."""
        self.baseline_rss: list[int] = [0] * self.W
        """Each worker's resident bytes when the run opened (before its states)."""
        self.peak_rss: list[int] = [0] * self.W
        """Each worker process's peak resident bytes (over its life: a fresh cluster for a figure)."""
        self.worker_seconds = 0.0
        """Seconds the workers spent in level tasks, summed."""
        self.bfs_seconds = 0.0
        """Wall seconds of the breadth-first search (from the start of ``run``)."""
        self.d_seconds = 0.0
        """Wall seconds of the lock-freedom pass (d)."""

    def _submit(self, fn: Callable[..., Any], j: int, *args: Any) -> Any:
        return self.client.submit(
            fn, self.run_id, *args, workers=[self.addrs[j]], allow_other_workers=False, pure=False
        )

    def _alive(self) -> list[str]:
        """The addresses of the workers the scheduler knows now (its view, refreshed every few seconds)."""
        return list(self.client.scheduler_info()["workers"])

    def _gather(self, futures: list[Any]) -> list[Any]:
        """The futures' results; ``DistError`` if one of this run's workers leaves the cluster
        meanwhile (its tasks are pinned to it: they are cancelled, or would wait forever)."""
        from distributed import KilledWorker, wait

        while True:
            try:
                wait(futures, timeout=WATCH)  # type: ignore[no-untyped-call]
                return list(self.client.gather(futures))
            except TimeoutError:
                if set(self.addrs) - set(self._alive()):
                    raise DistError(self._lost()) from None
            except (concurrent.futures.CancelledError, KilledWorker) as e:
                # The scheduler forgets the tasks pinned to a worker that died.
                raise DistError(self._lost()) from e

    def _lost(self) -> str:
        gone = sorted(set(self.addrs) - set(self._alive()))
        who = f"worker {gone[0]}" if gone else "a worker"
        return (
            f"{who} left the cluster during the search (its tasks were cancelled): the states it owned "
            "are lost; run the search again"
        )

    def _fanout(self, outs: list[Any]) -> tuple[list[Any], list[list[Any]]]:
        """Futures of each worker's first item, and per destination of the parts made for it."""
        c = self.client

        def item(i: int, o: Any, k: int) -> Any:
            return c.submit(getitem, o, k, workers=[self.addrs[i]], allow_other_workers=False, pure=False)

        heads = [item(i, o, 0) for i, o in enumerate(outs)]
        inbox = [[item(i, o, 1 + j) for i, o in enumerate(outs)] for j in range(self.W)]
        return heads, inbox

    def _rounds(
        self,
        fn: Callable[..., tuple[Any, ...]],
        inbox: list[list[Any]],
        args: tuple[Any, ...],
        go_on: Callable[[list[Any]], bool],
    ) -> None:
        """Rounds of ``fn`` on every worker, each fed the parts of the one before, ``AHEAD`` rounds
        submitted before the first is seen (the parts go worker to worker, no client round trip);
        ``go_on`` sees each round's first items, in order, until it says stop."""
        window: deque[list[Any]] = deque()
        spare: list[Any] = []
        try:
            while True:
                while len(window) < AHEAD:
                    outs = [self._submit(fn, j, *args, *inbox[j]) for j in range(self.W)]
                    heads, inbox = self._fanout(outs)
                    window.append(heads)
                    spare = [*outs, *(f for row in inbox for f in row)]
                if not go_on(self._gather(window.popleft())):
                    break
        finally:
            # The rounds submitted past the last one seen: drop them, and wait for any running.
            rest = [f for heads in window for f in heads] + spare
            self.client.cancel(rest)
            for heads in window:
                for f in heads:
                    with contextlib.suppress(Exception):  # cancelled: nothing to wait for
                        f.result()

    def run(self) -> Result:
        started = time.perf_counter()
        try:
            self._open()
            self._search(started)
        finally:
            # Close the shards of the workers still there (a lost one's is gone with it).
            alive = set(self._alive())
            here = [j for j in range(self.W) if self.addrs[j] in alive]
            closed = dict(zip(here, self._gather([self._submit(w_close, j) for j in here]), strict=True))
            for j, (n, peak, cpu) in closed.items():
                self.per_worker[j], self.peak_rss[j] = n, peak
                self.cpu_seconds[j] = cpu - self.cpu_at_open[j]
        self.result.seconds = time.perf_counter() - started
        return self.result

    def _open(self) -> None:
        mine = numbering(self.checker)
        theirs = self._gather(
            [self._submit(w_open, j, self.cfg, j, self.W, self.defect) for j in range(self.W)]
        )
        self.baseline_rss = [rss for _, rss, _ in theirs]
        self.cpu_at_open = [cpu for _, _, cpu in theirs]
        if any(t != mine for t, _, _ in theirs):
            raise DistError(
                "[dist model checker internal bug] a worker numbers the op states differently from the "
                "client (different nbbs versions on the workers?)"
            )

    def _search(self, started: float) -> None:
        r, cfg, sp = self.result, self.cfg, self.checker.sp
        first = list(dict.fromkeys(sp.initial()))
        r.initial_states = len(first)
        init = _split(first, [ROOT << 1] * len(first), self.W)
        inbox = [[self.client.scatter(init[j], workers=[self.addrs[j]])] for j in range(self.W)]
        pending = set(cfg.properties) - {"d"}

        def level(stats: list[LevelStats]) -> bool:
            new = sum(s.new for s in stats)
            if new == 0:
                return False
            self.levels += 1
            r.states += new
            r.transitions += sum(s.transitions for s in stats)
            r.quiescent += sum(s.quiescent for s in stats)
            r.stale_quiescent += sum(s.stale_quiescent for s in stats)
            self.worker_seconds += sum(s.seconds for s in stats)
            found = [f for st in stats for f in st.found]
            corrupt = [s.corrupt for s in stats if s.corrupt is not None]
            if corrupt:
                found.append(("b", corrupt[0][0], corrupt[0][1]))
            for prop, msg, s in found:
                if prop in pending:
                    pending.discard(prop)
                    r.violations[prop] = self.checker.replay_path(prop, msg, self.path_to(s))
            if self.progress:
                r.seconds = time.perf_counter() - started
                self.progress(r, sum(s.transitions for s in stats))
            stop = bool(corrupt) or bool(r.violations and cfg.stop_at_first)
            stop |= bool(cfg.max_states and r.states >= cfg.max_states)
            stop |= cfg.seconds is not None and time.perf_counter() - started > cfg.seconds
            if stop:
                r.complete = False
            return not stop

        self._rounds(w_level, inbox, (tuple(sorted(pending)), self.W), level)
        self.bfs_seconds = time.perf_counter() - started
        if "d" in cfg.properties and r.complete:
            self._lock_freedom()
            self.d_seconds = time.perf_counter() - started - self.bfs_seconds

    def path_to(self, s: int) -> list[int]:
        """The path of states from an initial state to ``s``, each parent asked of its owner."""

        def ask(fn: Callable[..., Any], j: int, arg: int) -> Any:
            return self._gather([self._submit(fn, j, arg)])[0]

        path = [s]
        ref = ask(w_parent, owner(s, self.W), s)
        while ref != ROOT:
            state, ref = ask(w_at, ref % self.W, ref // self.W)
            path.append(state)
        return path[::-1]

    # -- (d) -----------------------------------------------------------------------------------------

    def _lock_freedom(self) -> None:
        heads, inbox = self._fanout([self._submit(w_peel_start, j) for j in range(self.W)])
        if sum(self._gather(heads)):
            self._rounds(w_peel, inbox, (), lambda sizes: sum(sizes) > 0)
        heads, inbox = self._fanout([self._submit(w_left_out, j) for j in range(self.W)])
        left = self._gather(heads)
        if not sum(left):
            return
        nxt: dict[int, int] = {}
        for part in self._gather([self._submit(w_left_next, j, *inbox[j]) for j in range(self.W)]):
            nxt.update(part)
        # Every state left has a step that completes nothing to a state left: walk forward until
        # a state repeats.
        at = next(iter(nxt))
        walk, seen = [at], {at: 0}
        while True:
            n = nxt[walk[-1]]
            if n in seen:
                cycle = walk[seen[n] :]
                break
            seen[n] = len(walk)
            walk.append(n)
        path = self.path_to(cycle[0])
        msg = f"a cycle of {len(cycle)} steps in which no operation completes"
        v = self.checker.replay_path("d", msg, path + cycle[1:] + [cycle[0]])
        v.cycle_start = len(v.steps) - len(cycle)
        self.result.violations["d"] = v


def local_client(workers: int) -> Any:
    """A client of a fresh local cluster of ``workers`` processes, one thread each."""
    from distributed import Client, LocalCluster

    _quiet()
    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: never clash with another cluster on 8787
        silence_logs=logging.ERROR,
    )
    return Client(cluster)  # type: ignore[no-untyped-call]


__all__ = ["DistChecker", "DistError", "Violation", "local_client", "numbered_checker", "owner"]
