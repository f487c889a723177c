"""The vectorized model checker: the same search as ``_mc``, a whole BFS level at a time.

``_mc.Checker`` keeps states as Python ints in a dict and steps them one by one. This engine
keeps the same states, packed into fixed-width fields, in sorted numpy arrays, and steps a
whole bucket of a BFS level at once with lookup tables:

    tables      ``_mc.Space`` interns the op states and computes the rows (op state, word
                found -> word left, next op state, done) from ``model/steps.py``; here they
                are stored as arrays. Nothing here decides what a step does. By default a row
                is computed when a state first needs it (``Tables(lazy=True)``: 5,229 of the
                closure's 219,708 rows at 2 threads, depth 3), before the bucket is stepped; a row
                ``_mc`` refuses (a count out of bounds) is stored as an error and raised, with
                ``_mc``'s own message, only if a reachable state takes it.
    values      each node's word values, coded by their index in the order they are found.
                ``lazy=False`` computes the closure first (every row of every op state at
                every value of its node; the distributed engine numbers op states that way).
    key         a state is one field per node (its word's code), the sorted op ids of the
                threads (thread symmetry, as in ``_mc``) and the static set's index, packed
                into 64 bits (``lo``) and, when they do not fit, a second word (``hi``) of 1,
                2, 4 or 8 bytes, as few as those fields need. Arrays are sorted by ``h = lo ^
                mix(hi)`` (``lo`` itself when there is no ``hi``), then ``hi``: ``lo`` is
                recovered from ``h`` and ``hi``. With lazy rows the widths are fixed before
                the values are known: those known at the start, each with room to spare, and
                the key's spare bits shared out (``Tables._plan``); a row that overflows a
                field raises ``Relayout``, and every state kept so far is re-packed.
    dedup       per level, a bucket at a time (a sixty-fourth of the states seen), the
                successors are sorted, made unique, and looked up in the seen runs (sorted
                arrays, merged like a binary counter so there are few, each merge in place in
                the larger run's memory); what is left is merged into the next level. Runs past
                the memory budget are written to disk and memory-mapped; every level is
                written to disk too (for the counterexamples).
    properties  (a), (c) and the quiescent test of (b) are expressions over the fields
                (``Tables.props``); each distinct quiescent (words, held blocks) pair is judged
                once by ``_mc.Checker.quiescent_problem``; with racing double frees every state
                is judged by ``_mc.Checker.check_state``. Each violation is reported as soon as
                its level is checked (``on_violation``), and the search goes on.
    (d)         lock-freedom, during the search: in each state, each thread's rows are
                followed at the state's words while they complete nothing and write nothing
                (``Tables.spin``); coming back is a cycle. After the search the op state graph
                of one thread's non-completing steps is cut into components (``components``):
                a cycle of the state graph only takes steps inside one (the op ids it moves
                form a circulation). If none of those steps writes a word (so in every
                variant here), a cycle's words never change and each of its moving threads
                goes round alone: ``spin`` has decided. Otherwise a second pass (rounds over
                the states with such a step, keeping those with a predecessor and a successor
                among them) finds a cycle or shows there is none.
    C           the loops over states are in ports/c/mc_vec.c (``native()``): a bucket's step
                (unpack, look the row up, re-sort the op ids, pack), the rows it still lacks,
                galloping lookups, the in-place merge, the properties, the lone-thread walks.
                They only read the tables; without a compiler the numpy code here runs instead.
    shortest    no parent pointers: a violating state found at level L is traced back by
                stepping level L-1 again and picking a state with it as a successor, and so
                on to level 0. The path is then replayed by ``_mc.Checker.replay_path`` with
                concrete thread identities, so a counterexample prints as ``_mc``'s do.

The state counts equal ``_mc``'s (one state per orbit under thread permutations, whatever
the op ids), and so do the verdicts and the counterexample lengths of (a)-(c) (both are
breadth-first); a cycle of (d) is any cycle, as in ``_mc``.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nbbs.check._mc import Checker, Config, CountRangeError, Result, Space, Violation
from nbbs.model import bits
from nbbs.model import geometry as g

Arr = npt.NDArray[Any]

MIN_BUCKET, MAX_BUCKET = 1 << 13, 1 << 20
"""States stepped at once: a sixty-fourth of the states seen, within these bounds, so a
bucket's successors (up to 40 bytes each) stay small beside the seen states (8-16 bytes each).
``VecChecker(bucket=...)`` fixes it instead."""
BUCKET = 1 << 17
"""The fixed bucket of earlier versions (kept for callers that name it)."""

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(hi: Arr) -> Arr:
    """A 64-bit hash of ``hi`` (splitmix64's finalizer): spreads ``h = lo ^ mix(hi)`` evenly."""
    x = hi.astype(np.uint64)
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


_C_ARRAYS = (
    "word",
    "shift",
    "mask",
    "mv_cnt",
    "mv_off",
    "mv_flat",
    "bad_move",
    "acc_col",
    "nxt",
    "newc",
    "done",
    "scc",
)
"""The array members of ``_CTables``, in ports/c/mc_vec.c's order."""


class _CTables(ctypes.Structure):
    """``mcv_tables`` of ports/c/mc_vec.c: the layout and the rows, as pointers into numpy arrays."""

    _fields_ = [
        ("F", ctypes.c_int32),
        ("tc", ctypes.c_int32),
        ("T", ctypes.c_int32),
        ("K", ctypes.c_int32),
        ("has_hi", ctypes.c_int32),
        ("_pad", ctypes.c_int32),
        *[(name, ctypes.c_void_p) for name in _C_ARRAYS],
    ]


@functools.cache
def native() -> ctypes.CDLL | None:
    """The hot loops in C (ports/c/mc_vec.c, built by ``nbbs.ports.build``), or None without a
    compiler (the numpy code then runs: the same results, slower)."""
    from nbbs.ports.build import PortBuildError, build  # check needs ports only for this

    try:
        lib = ctypes.CDLL(str(build("mcvec")))
    except (PortBuildError, OSError):
        return None
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.mcv_expand.argtypes = [ctypes.POINTER(_CTables), i64, p, p, p, p, p, p, i64, p, ctypes.c_int]
    lib.mcv_expand.restype = i64
    lib.mcv_lower_bound.argtypes = [p, i64, p, i64, p]
    lib.mcv_lower_bound.restype = None
    lib.mcv_merge_into.argtypes = [p, p, i64, p, p, i64, ctypes.c_int]
    lib.mcv_merge_into.restype = i64
    lib.mcv_find.argtypes = [p, p, i64, p, p, i64, ctypes.c_int, p, p]
    lib.mcv_find.restype = ctypes.c_int
    lib.mcv_spin.argtypes = [ctypes.POINTER(_CTables), i64, p, p, p, i64, p]
    lib.mcv_spin.restype = i64
    lib.mcv_missing.argtypes = [ctypes.POINTER(_CTables), i64, p, p, p, i64]
    lib.mcv_missing.restype = i64
    lib.mcv_props.argtypes = [ctypes.POINTER(_CTables), i64, p, p, p, p, p, p, p, p, p, p, i64, p]
    lib.mcv_props.restype = None
    return lib


@functools.cache
def _fixed_mmap_threshold() -> None:
    """Ask glibc to serve every allocation of 128 KiB or more with its own mapping, always.

    By default glibc raises that threshold each time such a block is freed, after which the
    search's buckets come from the heap, whose freed memory is not given back: at 2 threads,
    depth 3 the peak resident memory was a fifth higher. Process-wide, harmless elsewhere;
    nothing happens without glibc."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(128 * 1024))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _ptr(a: Arr | None) -> int | None:
    return None if a is None else int(a.ctypes.data)


def _width(count: int) -> int:
    """Bits for a field of ``count`` values."""
    return max(1, (count - 1).bit_length())


@dataclass
class Keys:
    """States as packed keys: ``h`` (uint64) and, when the state needs more than 64 bits, ``hi``."""

    h: Arr
    hi: Arr | None

    def __len__(self) -> int:
        return len(self.h)

    def take(self, idx: Arr) -> Keys:
        return Keys(self.h[idx], None if self.hi is None else self.hi[idx])

    def nbytes(self) -> int:
        return int(self.h.nbytes + (0 if self.hi is None else self.hi.nbytes))


def _concat(parts: list[Keys], has_hi: bool) -> Keys:
    if not parts:
        return Keys(np.empty(0, np.uint64), np.empty(0, np.uint64) if has_hi else None)
    h = np.concatenate([p.h for p in parts])
    hi = np.concatenate([p.hi for p in parts if p.hi is not None]) if has_hi else None
    return Keys(h, hi)


def sort_unique(k: Keys) -> Keys:
    """``k`` sorted by (h, hi) with duplicates removed."""
    if len(k) == 0:
        return k
    if k.hi is None:
        h = np.sort(k.h)
        keep = np.empty(len(h), bool)
        keep[0] = True
        np.not_equal(h[1:], h[:-1], out=keep[1:])
        return Keys(h[keep], None)
    # Two words: numpy's argsort and two gathers (a radix sort in C, 16-bit or 8-bit digits,
    # was 2-3 times slower here: its scattered writes miss the caches).
    order = np.argsort(k.h)
    h, hi = k.h[order], k.hi[order]
    same_h = h[1:] == h[:-1]
    if bool((same_h & (hi[1:] != hi[:-1])).any()):
        # Two states share h (rare): order by hi within h, exactly.
        order = np.lexsort((hi, h))
        h, hi = h[order], hi[order]
        same_h = h[1:] == h[:-1]
    keep = np.empty(len(h), bool)
    keep[0] = True
    keep[1:] = ~(same_h & (hi[1:] == hi[:-1]))
    return Keys(h[keep], hi[keep])


def _lower_bound(run: Arr, q: Arr, ascending: bool) -> Arr:
    """``np.searchsorted(run, q, "left")``; in C, galloping, when ``q`` is ``ascending``."""
    lib = native()
    if lib is None or len(q) < 64 or run.dtype != np.uint64 or not run.flags.c_contiguous:
        return np.searchsorted(run, q, "left")
    order = None if ascending else np.argsort(q)
    q = np.ascontiguousarray(q if order is None else q[order], np.uint64)
    out = np.empty(len(q), np.int64)
    lib.mcv_lower_bound(_ptr(run), len(run), _ptr(q), len(q), _ptr(out))
    if order is None:
        return out
    back = np.empty_like(out)
    back[order] = out
    return back


def find(run: Keys, k: Keys, ascending: bool = False) -> tuple[Arr, Arr]:
    """For each key of ``k``: whether ``run`` (sorted by (h, hi)) holds it, and where.
    ``ascending``: ``k`` is sorted by h too (the search then gallops, in C)."""
    lib = native()
    if ascending and lib is not None and len(k) and run.h.dtype == np.uint64 and run.h.flags.c_contiguous:
        w = 0 if run.hi is None or k.hi is None else run.hi.itemsize
        if w == 0 or (run.hi is not None and run.hi.flags.c_contiguous):
            qh = np.ascontiguousarray(k.h, np.uint64)
            qhi = None if w == 0 or run.hi is None else np.ascontiguousarray(k.hi, run.hi.dtype)
            found = np.empty(len(k), np.bool_)
            at = np.empty(len(k), np.int64)
            rhi = None if w == 0 else run.hi
            if lib.mcv_find(
                _ptr(run.h), _ptr(rhi), len(run), _ptr(qh), _ptr(qhi), len(k), w, _ptr(found), _ptr(at)
            ):
                raise AssertionError("[vec model checker internal bug] a key width the lookup lacks")
            return found, at
    left = _lower_bound(run.h, k.h, ascending)
    if len(run) == 0:
        return np.zeros(len(k), bool), left
    at = np.minimum(left, len(run) - 1)
    found = run.h[at] == k.h
    if run.hi is None or k.hi is None:
        return found, left
    after = np.minimum(left + 1, len(run) - 1)
    many = np.nonzero(found & (left + 1 < len(run)) & (run.h[after] == k.h))[0]
    found &= run.hi[at] == k.hi
    for i in many:  # several states share this h (rare): search their hi
        lo, hi = int(left[i]), int(np.searchsorted(run.h, k.h[i], "right"))
        j = lo + int(np.searchsorted(run.hi[lo:hi], k.hi[i]))
        found[i] = j < hi and run.hi[j] == k.hi[i]
        left[i] = j
    return found, left


def merge(a: Keys, b: Keys) -> Keys:
    """The sorted union of the sorted runs ``a`` and ``b``: in C, in ``a``'s own arrays grown in
    place (no third array), when ``a`` owns them and nothing else looks at them."""
    lib = native()
    w = 0 if a.hi is None else a.hi.itemsize
    if lib is not None and len(b) and (a.hi is None) == (b.hi is None):
        na = len(a)
        try:
            # refcheck: a view of a's memory would dangle after a realloc; then copy instead.
            a.h.resize(na + len(b), refcheck=True)
            if a.hi is not None:
                try:
                    a.hi.resize(na + len(b), refcheck=True)
                except ValueError:
                    a.h.resize(na, refcheck=False)
                    raise
        except ValueError:
            pass
        else:
            hb = np.ascontiguousarray(b.h)
            hib = (
                None if b.hi is None else np.ascontiguousarray(b.hi, a.hi.dtype if a.hi is not None else None)
            )
            got = int(lib.mcv_merge_into(_ptr(a.h), _ptr(a.hi), na, _ptr(hb), _ptr(hib), len(b), w))
            if got < 0:
                raise AssertionError("[vec model checker internal bug] a key width the merge lacks")
            a.h.resize(got, refcheck=False)
            if a.hi is not None:
                a.hi.resize(got, refcheck=False)
            return a
    return sort_unique(_concat([a, b], a.hi is not None))


def _check_run(k: Keys) -> None:
    """A run must be strictly increasing by (h, hi): else every lookup in it is wrong (one
    pass over it, a nanosecond a key)."""
    if len(k) < 2:
        return
    up = k.h[1:] > k.h[:-1]
    if k.hi is not None:
        up |= (k.h[1:] == k.h[:-1]) & (k.hi[1:] > k.hi[:-1])
    if not bool(up.all()):
        raise AssertionError("[vec model checker internal bug] a run of seen states is not sorted and unique")


class Runs:
    """Sorted runs merged like a binary counter (two runs of similar length are merged in
    place), so there are few and no merge copies much."""

    def __init__(self) -> None:
        self.runs: list[Keys] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs)

    def add(self, k: Keys) -> None:
        self.runs.append(k)
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            b, a = self.runs.pop(), self.runs.pop()
            self.runs.append(merge(a, b))

    def merged(self, has_hi: bool) -> Keys:
        """Every key once, in one sorted run."""
        if not self.runs:
            return _concat([], has_hi)
        while len(self.runs) > 1:
            b, a = self.runs.pop(), self.runs.pop()
            self.runs.append(merge(a, b) if len(a) >= len(b) else merge(b, a))
        return self.runs[0]


class Store:
    """The seen states: sorted runs merged like a binary counter, large ones spilled to disk."""

    def __init__(self, directory: Path, has_hi: bool, memory_budget: int | None) -> None:
        self.dir, self.has_hi, self.budget = directory, has_hi, memory_budget
        self.runs: list[Keys] = []
        self.files = 0
        self.disk_bytes = 0

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs)

    def contains(self, k: Keys) -> Arr:
        """Which keys of ``k`` (sorted, as ``sort_unique`` leaves them) are seen."""
        seen = np.zeros(len(k), bool)
        for run in self.runs:
            seen |= find(run, k, ascending=True)[0]
        return seen

    def add(self, k: Keys) -> None:
        """Add ``k`` (sorted, unique, disjoint from the seen states) as a run."""
        _check_run(k)
        self.runs.append(k)
        while (
            len(self.runs) > 1
            and len(self.runs[-2]) <= 2 * len(self.runs[-1])
            and not isinstance(self.runs[-2].h, np.memmap)
        ):
            b, a = self.runs.pop(), self.runs.pop()
            self.runs.append(merge(a, b))
        if self.budget is not None:
            in_ram = [i for i, r in enumerate(self.runs) if not isinstance(r.h, np.memmap)]
            if sum(self.runs[i].nbytes() for i in in_ram) > self.budget:
                big = max(in_ram, key=lambda i: len(self.runs[i]))
                self.spill_run(big)

    def recode(self, f: Callable[[Keys], Keys], has_hi: bool) -> None:
        """Every run through ``f`` (another key layout: sorted anew), kept as ``add`` keeps runs."""
        runs, self.runs, self.has_hi = self.runs, [], has_hi
        for run in runs:
            self.add(f(run))
            for a in (run.h, run.hi):
                if isinstance(a, np.memmap) and a.filename:
                    Path(a.filename).unlink(missing_ok=True)  # the old layout's spilled run

    def spill_run(self, i: int) -> None:
        """Write run ``i`` to disk, let its memory go, then map it back: the run is never in
        memory and mapped at once (at 3 threads, depth 3 that was 2 GB more address space,
        which a ``prlimit --as`` cap counts)."""
        paths = self._write(self.runs[i])
        self.runs[i] = Keys(np.empty(0, np.uint64), None)  # the last reference, as a rule
        self.runs[i] = self._map(paths)

    def _write(self, k: Keys) -> tuple[Path, Path | None]:
        self.files += 1
        h_path = self.dir / f"run{self.files}-h.npy"
        np.save(h_path, k.h)
        self.disk_bytes += k.h.nbytes
        hi_path = None
        if k.hi is not None:
            hi_path = self.dir / f"run{self.files}-hi.npy"
            np.save(hi_path, k.hi)
            self.disk_bytes += k.hi.nbytes
        return h_path, hi_path

    @staticmethod
    def _map(paths: tuple[Path, Path | None]) -> Keys:
        h_path, hi_path = paths
        hi = None if hi_path is None else np.load(hi_path, mmap_mode="r")
        return Keys(np.load(h_path, mmap_mode="r"), hi)

    def compact(self) -> list[Keys]:
        """The runs, those in memory merged (in place) into one, those on disk as they are."""
        ram = Runs()
        ram.runs = [r for r in self.runs if not isinstance(r.h, np.memmap)]
        disk = [r for r in self.runs if isinstance(r.h, np.memmap)]
        self.runs = ([ram.merged(self.has_hi)] if ram.runs else []) + disk
        return list(self.runs)

    def merged(self) -> Keys:
        """Every state in one sorted run (runs on disk are read into memory)."""
        every = Runs()
        every.runs = list(self.runs)
        k = self.runs[0] if len(self.runs) == 1 else every.merged(self.has_hi)
        self.runs = [k]
        return k


MISSING = -2
"""``Tables.nxt`` of a row not computed yet (``lazy``); -1 is a row ``_mc`` refuses."""


class Relayout(Exception):
    """A lazily computed row gave a field more values than its width holds: the search widens
    the fields (``Tables.relayout``) and re-packs the states it keeps; the rows stay."""


class Tables:
    """The rows of the op states, the key layout and the property lookups of one configuration.

    ``lazy=False``: every row of every op state and every word value its node can hold (the
    closure), computed up front; the key's fields are as wide as the closure needs. ``lazy``:
    each row is computed when a state first needs it (``ensure``), as ``_mc`` does, and the
    fields' widths are fixed before: from the values and op states known at the start, with
    room to spare (``_plan``); a row that overflows one raises ``Relayout``."""

    def __init__(self, checker: Checker, lazy: bool = False) -> None:
        self.checker = checker
        sp = self.sp = checker.sp
        self.N, self.T = sp.nodes, sp.T
        self.lazy = lazy
        self.scc: Arr | None = None
        """Per op id, its component (``components``), once the lock-freedom pass asks."""
        self.values: list[list[int]] = [[] for _ in range(self.N)]
        """Each node's values (a word's code is its index here)."""
        self.code: list[dict[int, int]] = [{} for _ in range(self.N)]
        self.initial: list[tuple[tuple[int, ...], list[int], int]] = []
        self.moves: dict[int, list[int] | None] = {}
        self.access: dict[int, tuple[int, Any]] = {}
        self.rows_computed = 0
        """Rows asked of ``_mc.Space`` (lazy: as states reach them)."""
        if lazy:
            self._start()
        else:
            self._close()
        self._layout()
        self._property_tables()

    # -- rows computed when first reached --------------------------------------------------------------

    def _start(self) -> None:
        sp = self.sp
        for s in sp.initial():
            w = sp.words_of(s)
            self.initial.append((w, sp.tids(s), sp.static(s)))
            for n in range(1, self.N):
                self._value(n, w[n])
        self.nops = 0
        self.nxt = np.full((0, 0), MISSING, np.int32)
        self.new = np.zeros((0, 0), np.int32)
        self.done = np.zeros((0, 0), bool)
        self._sync()

    def _value(self, n: int, v: int) -> int:
        c = self.code[n].get(v)
        if c is None:
            c = self.code[n][v] = len(self.values[n])
            self.values[n].append(v)
        return c

    def _take_op(self, i: int) -> None:
        """Note op state ``i``'s moves (None for a bad scenario's: raised again if reached) and
        the node it accesses, if any."""
        sp = self.sp
        try:
            self.moves[i] = sp.moves(i)
        except ValueError:
            self.moves[i] = None
        acc = sp.m.access(sp.ops[i])
        if acc is not None:
            self.access[i] = (acc.node, acc)

    def _sync(self) -> None:
        """Take in the op states ``_mc.Space`` interned since (their moves and accesses) and the
        values found since: the arrays grow (their capacity doubles) and are filled for them."""
        sp = self.sp
        i = was = self.nops
        while i < len(sp.ops):
            self._take_op(i)
            i += 1
        K = max(len(v) for v in self.values[1:])
        ops_cap, k_cap = self.nxt.shape
        self.nops = i
        if i > ops_cap or k_cap < K:
            o2 = max(i, 2 * ops_cap, 64) if i > ops_cap else ops_cap
            k2 = max(K, 2 * k_cap, 8) if k_cap < K else k_cap
            nxt = np.full((o2, k2), MISSING, np.int32)
            new, done = np.zeros((o2, k2), np.int32), np.zeros((o2, k2), bool)
            nxt[:ops_cap, :k_cap] = self.nxt
            new[:ops_cap, :k_cap] = self.new
            done[:ops_cap, :k_cap] = self.done
            self.nxt, self.new, self.done = nxt, new, done
            self._moves_arrays(o2)
            if hasattr(self, "hold"):
                self._property_tables()
            if hasattr(self, "_c"):
                del self._c  # the C tables point at the old arrays
            return
        if i > was:
            self._more_moves(was)
        if hasattr(self, "hold"):
            self._more_properties()

    def _moves_arrays(self, size: int) -> None:
        """Per op id (``size`` of them, the capacity): its access's field and its moves."""
        self.acc_col = np.full(size, -1, np.int64)
        self.bad_move = np.zeros(size, bool)
        self.mv_cnt, self.mv_off = np.zeros(size, np.int64), np.zeros(size, np.int64)
        self.mv_flat = np.zeros(max(64, 4 * size), np.int64)
        self._flat = 0
        self._more_moves(0)

    def _more_moves(self, start: int) -> None:
        for i in range(start, self.nops):
            if i in self.access:
                self.acc_col[i] = self.access[i][0] - 1
            mv = self.moves.get(i)
            self.mv_off[i] = self._flat
            if mv is None:
                self.bad_move[i] = True
                continue
            if self._flat + len(mv) > len(self.mv_flat):
                self.mv_flat = np.concatenate([self.mv_flat, np.zeros(len(self.mv_flat) + len(mv), np.int64)])
                if hasattr(self, "_c"):
                    del self._c
            self.mv_cnt[i] = len(mv)
            self.mv_flat[self._flat : self._flat + len(mv)] = mv
            self._flat += len(mv)

    def _fill(self, rows: Arr) -> None:
        """Compute the rows ``rows`` (``op * K + code``, K the row width they were asked with)."""
        K = self.nxt.shape[1]
        for r in np.unique(rows).tolist():
            op, c = divmod(int(r), K)
            if self.nxt[op, c] != MISSING:
                continue
            node, acc = self.access[op]
            self.rows_computed += 1
            try:
                row = self.sp.row(op, acc, self.values[node][c])
            except AssertionError:
                self.nxt[op, c] = -1  # out of bounds: raised again, by _mc, if reached
                continue
            self.nxt[op, c], self.new[op, c], self.done[op, c] = row[1], self._value(node, row[0]), row[2]
        self._sync()  # the op states and values met: the arrays grow (the rows keep their places)
        self._check_widths()

    def _check_widths(self) -> None:
        counts = [len(self.values[n]) for n in range(1, self.N)] + [self.nops]
        room = [1 << w for w in self.widths[: self.tc]] + [1 << self.widths[self.tc]]
        if any(c > r for c, r in zip(counts, room, strict=True)):
            raise Relayout(f"{counts} values and op states, room for {room}")

    def ensure(self, k: Keys) -> None:
        """Compute every row the successors of ``k`` need (lazy tables; else nothing to do)."""
        if not self.lazy or len(k) == 0:
            return
        c = self._c_tables()
        lib = native()
        if c is None or lib is None:
            return  # the numpy code computes them as it meets them
        h = np.ascontiguousarray(k.h, np.uint64)
        hi = None if k.hi is None else np.ascontiguousarray(k.hi, np.uint64)
        cap = 1 << 16
        out = np.empty(cap, np.int64)
        while True:
            got = int(lib.mcv_missing(ctypes.byref(c), len(k), _ptr(h), _ptr(hi), _ptr(out), cap))
            if got == 0:
                return
            self._fill(out[:got])
            c = self._c_tables()
            assert c is not None

    def relayout(self) -> None:
        """Wider fields for the values and op states known now (the rows stay)."""
        self._layout()
        self._property_tables()
        if hasattr(self, "_c"):
            del self._c

    # -- the closure of op states and word values ----------------------------------------------------

    def _close(self) -> None:
        sp = self.sp
        # Each node's values in the order they are found (a row of every op at that node is
        # computed once per value: ``upto[i]`` of them so far); the rows go to flat columns,
        # not a dict of tuples (a tenth of the memory at 2 threads, depth 3: 220,000 rows).
        found: list[list[int]] = [[] for _ in range(self.N)]
        known: list[set[int]] = [set() for _ in range(self.N)]
        for s in sp.initial():
            w = sp.words_of(s)
            self.initial.append((w, sp.tids(s), sp.static(s)))
            for n in range(1, self.N):
                if w[n] not in known[n]:
                    known[n].add(w[n])
                    found[n].append(w[n])
        r_op, r_old, r_new, r_nxt, r_done = array("q"), array("q"), array("q"), array("q"), array("b")
        upto: list[int] = []
        changed = True
        while changed:
            changed = False
            i = 0
            while i < len(sp.ops):
                if i == len(upto):
                    upto.append(0)
                    self._take_op(i)
                if i in self.access:
                    node, acc = self.access[i]
                    vals, seen = found[node], known[node]
                    while upto[i] < len(vals):
                        v = vals[upto[i]]
                        upto[i] += 1
                        changed = True
                        try:
                            row: tuple[int, int, bool] | None = sp.row(i, acc, v)
                        except AssertionError:
                            row = None  # out of bounds: raised again, by _mc, if reached
                        r_op.append(i)
                        r_old.append(v)
                        if row is None:
                            r_new.append(v)
                            r_nxt.append(-1)
                            r_done.append(0)
                            continue
                        r_new.append(row[0])
                        r_nxt.append(row[1])
                        r_done.append(row[2])
                        if row[0] not in seen:
                            seen.add(row[0])
                            vals.append(row[0])
                i += 1
        self.rows_computed = len(r_op)
        self.values = [sorted(v) for v in found]
        code = [{v: c for c, v in enumerate(vs)} for vs in self.values]
        nops = self.nops = len(sp.ops)
        K = max(len(v) for v in self.values[1:])
        self.acc_col = np.full(nops, -1, np.int64)
        for i, (node, _) in self.access.items():
            self.acc_col[i] = node - 1
        self.nxt = np.full((nops, K), -1, np.int32)
        self.new = np.zeros((nops, K), np.int32)
        self.done = np.zeros((nops, K), bool)
        ops = np.frombuffer(r_op, np.int64)
        node_of = self.acc_col[ops] + 1
        old_c, new_c = np.empty(len(ops), np.int64), np.empty(len(ops), np.int64)
        olds, news = np.frombuffer(r_old, np.int64), np.frombuffer(r_new, np.int64)
        for n in range(1, self.N):
            at = node_of == n
            vs = np.array(self.values[n], np.int64)
            old_c[at] = np.searchsorted(vs, olds[at])
            new_c[at] = np.searchsorted(vs, news[at])
        self.nxt[ops, old_c] = np.frombuffer(r_nxt, np.int64)
        self.new[ops, old_c] = new_c
        self.done[ops, old_c] = np.frombuffer(r_done, np.int8) != 0
        counts = np.zeros(nops, np.int64)
        flat: list[int] = []
        self.bad_move = np.zeros(nops, bool)
        offsets = np.zeros(nops, np.int64)
        for i in range(nops):
            mv = self.moves.get(i)
            offsets[i] = len(flat)
            if mv is None:
                self.bad_move[i] = True
                continue
            counts[i] = len(mv)
            flat.extend(mv)
        self.mv_cnt, self.mv_off, self.mv_flat = counts, offsets, np.array(flat, np.int64)
        self.code = code

    # -- the key -----------------------------------------------------------------------------------

    def _plan(self) -> list[int]:
        """Lazy tables: widths for the values and op states known, each field with a bit to
        spare (ops two), then the key's spare bits (up to its 64, 72, 80, 96 or 128) given
        one at a time to the fields fullest for their width."""
        counts = [len(self.values[n]) for n in range(1, self.N)]
        exact = [_width(c) for c in counts] + [_width(self.nops)] * self.T + [_width(len(self.sp.sets))]
        nodes = [_width(c) + 1 for c in counts]
        ops = _width(self.nops) + 2
        fixed = _width(len(self.sp.sets))
        total = sum(nodes) + self.T * ops + fixed
        size = next((b for b in (64, 72, 80, 96, 128) if total <= b), None)
        if size is None:
            return exact
        while True:
            # The fullest field: values (or op states) known over its room.
            fill = [c / (1 << w) for c, w in zip(counts, nodes, strict=True)]
            worst = max(range(len(fill)), key=lambda i: fill[i]) if fill else -1
            if self.nops / (1 << ops) >= (fill[worst] if fill else 0):
                if total + self.T > size:
                    break
                ops += 1
                total += self.T
            else:
                if total + 1 > size:
                    break
                nodes[worst] += 1
                total += 1
        return nodes + [ops] * self.T + [fixed]

    def _layout(self) -> None:
        """Fields: each node's value index, then the T sorted op ids, then the static set's index."""
        sp = self.sp
        if self.lazy:
            widths = self._plan()
        else:
            widths = [_width(len(self.values[n])) for n in range(1, self.N)]
            widths += [_width(self.nops)] * self.T + [_width(len(sp.sets))]
        self.widths = widths
        self.F = len(widths)
        self.tc = self.N - 1
        """Column of the first thread's op id."""
        self.sc = self.tc + self.T
        """Column of the static set's index."""
        self.word = np.zeros(self.F, np.int64)
        self.shift = np.zeros(self.F, np.uint64)
        used = [0, 0]
        w = 0
        for f, b in enumerate(widths):
            if w == 0 and used[0] + b > 64:
                w = 1
            if used[w] + b > 64:
                raise ValueError(
                    f"{sp.cfg.describe()}: a state needs {sum(widths)} bits, more than the vec engine's 128"
                )
            self.word[f], self.shift[f] = w, used[w]
            used[w] += b
        self.bits = sum(widths)
        self.has_hi = used[1] > 0
        self.hi_dtype: Any = next(
            d for d in (np.uint8, np.uint16, np.uint32, np.uint64) if used[1] <= 8 * d().itemsize
        )
        """``hi`` is stored in as few bytes as its fields need (1 at 4 threads, depth 2; 4 at 2
        threads, depth 3; 8 at 3 threads, depth 3)."""
        self.fmask = [np.uint64((1 << b) - 1) for b in widths]

    def encode(self, D: Arr) -> Keys:
        lo = np.zeros(len(D), np.uint64)
        hi = np.zeros(len(D), np.uint64) if self.has_hi else None
        for f in range(self.F):
            v = D[:, f].astype(np.uint64) << self.shift[f]
            if self.word[f] == 0:
                lo |= v
            else:
                assert hi is not None
                hi |= v
        if hi is None:
            return Keys(lo, None)
        return Keys(lo ^ _mix(hi), hi.astype(self.hi_dtype))

    def decode(self, k: Keys) -> Arr:
        lo = k.h if k.hi is None else k.h ^ _mix(k.hi)
        D = np.empty((len(k), self.F), np.int32)
        for f in range(self.F):
            src = lo if self.word[f] == 0 else k.hi
            assert src is not None
            D[:, f] = (src >> self.shift[f]) & self.fmask[f]
        return D

    def state_int(self, row: Arr) -> int:
        """A decoded state as ``_mc``'s packed int (for its checks and its replay)."""
        words = [0] + [self.values[n][int(row[n - 1])] for n in range(1, self.N)]
        tids = [int(t) for t in row[self.tc : self.sc]]
        return self.sp.encode(words, tids, int(row[self.sc]))

    def initial_rows(self) -> Arr:
        D = np.empty((len(self.initial), self.F), np.int32)
        for r, (w, tids, static) in enumerate(self.initial):
            D[r, : self.tc] = [self.code[n][w[n]] for n in range(1, self.N)]
            D[r, self.tc : self.sc] = sorted(tids)
            D[r, self.sc] = static
        return D

    # -- successors --------------------------------------------------------------------------------

    def _c_tables(self) -> _CTables | None:
        """The tables as ports/c/mc_vec.c reads them (None: no compiler, numpy runs)."""
        if not hasattr(self, "_c"):
            self._c: _CTables | None = None
            if native() is not None and self.T <= 16:
                keep: dict[str, Arr] = {
                    "word": np.ascontiguousarray(self.word, np.int8),
                    "shift": np.ascontiguousarray(self.shift, np.uint8),
                    "mask": np.array([int(m) for m in self.fmask], np.uint64),
                    "mv_cnt": np.ascontiguousarray(self.mv_cnt, np.int64),
                    "mv_off": np.ascontiguousarray(self.mv_off, np.int64),
                    "mv_flat": np.ascontiguousarray(
                        self.mv_flat if len(self.mv_flat) else np.zeros(1), np.int64
                    ),
                    # Views, not copies: rows computed later (lazy) are seen by C at once.
                    "bad_move": np.ascontiguousarray(self.bad_move).view(np.uint8),
                    "acc_col": np.ascontiguousarray(self.acc_col, np.int64),
                    "nxt": np.ascontiguousarray(self.nxt, np.int32),
                    "newc": np.ascontiguousarray(self.new, np.int32),
                    "done": np.ascontiguousarray(self.done).view(np.uint8),
                    "scc": np.ascontiguousarray(self.scc if self.scc is not None else np.zeros(1), np.int32),
                }
                self._c = _CTables(
                    self.F,
                    self.tc,
                    self.T,
                    self.nxt.shape[1],
                    int(self.has_hi),
                    0,
                    *[_ptr(keep[name]) for name in _C_ARRAYS],
                )
                self._c_keep = keep  # the struct points into these arrays: keep them alive
        return self._c

    def expand(self, k: Keys, sources: bool = True, intra: bool = False) -> tuple[Keys, Arr, Arr]:
        """``successors`` of the states ``k``, in C when it is built (``native()``), else numpy.
        Without ``sources`` the two arrays after the keys are left empty (the search needs
        neither: less memory). ``intra``: only the steps a cycle of the lock-freedom pass can
        take (``successors``; ``components`` must have run)."""
        self.ensure(k)
        c = self._c_tables()
        lib = native()
        if c is None or lib is None:
            return self.successors(self.decode(k), k, intra)
        n = len(k)
        h = np.ascontiguousarray(k.h, np.uint64)
        hi = None if k.hi is None else np.ascontiguousarray(k.hi, np.uint64)
        # Room for the usual number of successors (2-5 per state); more is asked for in turn.
        cap = (self.T + 2) * n + int(self.mv_cnt.max(initial=0)) * self.T
        err = np.zeros(4, np.int64)
        parts: list[tuple[Keys, Arr, Arr]] = []
        at = 0
        while at < n or not parts:
            oh = np.empty(cap, np.uint64)
            ohi = np.empty(cap, np.uint64) if self.has_hi else None
            done = np.empty(cap if sources else 0, np.bool_)
            src = np.empty(cap if sources else 0, np.int64)
            hh = h[at:]
            got = int(
                lib.mcv_expand(
                    ctypes.byref(c),
                    n - at,
                    _ptr(hh),
                    None if hi is None else _ptr(hi[at:]),
                    _ptr(oh),
                    _ptr(ohi),
                    _ptr(done) if sources else None,
                    _ptr(src) if sources else None,
                    cap,
                    _ptr(err),
                    int(intra),
                )
            )
            if got == -1:
                op, code = int(err[0]), int(err[1])
                node, acc = self.access[op]
                self.sp.row(op, acc, self.values[node][code])  # raises _mc's own error
                raise AssertionError("[vec model checker internal bug] a missing row")
            if got == -2:
                self.sp.moves(int(err[0]))  # raises the scenario's own error
                raise AssertionError("[vec model checker internal bug] a bad move that does not raise")
            if sources:
                src[:got] += at
            keys = Keys(oh[:got], None if ohi is None else ohi[:got].astype(self.hi_dtype))
            parts.append((keys, done[:got], src[:got]))
            at += int(err[3])
        if len(parts) == 1:
            return parts[0]
        return (
            _concat([p[0] for p in parts], self.has_hi),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )

    def successors(self, D: Arr, k: Keys, intra: bool = False) -> tuple[Keys, Arr, Arr]:
        """Every successor of the states ``k`` (``D``: the same, decoded): their keys, whether the
        step completed an operation, and the index in ``k`` of the state each comes from.
        ``intra``: only the steps that complete nothing and keep the stepping thread's op state
        in its component (``components``): the steps a cycle of the lock-freedom pass can take.

        Only two fields change per step, the accessed node's and the stepping thread's: each
        successor's key is its source's with those two fields replaced and the op ids re-sorted
        (a sorting network over the T columns), so no state is decoded and encoded again.
        """
        tc, T = self.tc, self.T
        tids = D[:, tc : tc + T]
        if bool(self.bad_move[tids].any()):
            t = int(tids[self.bad_move[tids]][0])
            self.sp.moves(t)  # raises the scenario's own error
        # The sources' keys with every op id field cleared.
        base_lo = k.h.copy() if k.hi is None else k.h ^ _mix(k.hi)
        base_hi = None if k.hi is None else np.array(k.hi, np.uint64)
        for j in range(T):
            f = tc + j
            b = base_lo if self.word[f] == 0 else base_hi
            assert b is not None
            b &= ~(self.fmask[f] << self.shift[f])
        shift_of = self.shift[: self.tc]
        lo_node = self.word[: self.tc] == 0
        keys, dones, srcs = [], [], []
        for kk in range(T):
            tid = tids[:, kk]
            cnt = self.mv_cnt[tid]
            if kk:
                cnt = np.where(tid == tids[:, kk - 1], 0, cnt)  # the same state as the previous thread
            total = int(cnt.sum())
            if total == 0:
                continue
            src = np.repeat(np.arange(len(D)), cnt)
            first = np.cumsum(cnt) - cnt
            ops = self.mv_flat[np.repeat(self.mv_off[tid] - first, cnt) + np.arange(total)]
            col = self.acc_col[ops]
            old = D[src, col]
            nxt = self.nxt[ops, old]
            if bool((nxt == MISSING).any()):
                # Lazy tables: compute the rows met, then step the states again.
                self._fill((ops * self.nxt.shape[1] + old)[nxt == MISSING])
                return self.successors(D, k, intra)
            if bool((nxt < 0).any()):
                self._raise(ops, old, nxt)
            if intra:
                assert self.scc is not None
                keep = ~self.done[ops, old] & (self.scc[tid[src]] == self.scc[nxt])
                src, ops, col, old, nxt = src[keep], ops[keep], col[keep], old[keep], nxt[keep]
            new = self.new[ops, old]
            sh = shift_of[col]
            change = (old ^ new).astype(np.uint64) << sh
            lo = base_lo[src]
            hi = None if base_hi is None else base_hi[src]
            if hi is None:
                lo ^= change
            else:
                in_lo = lo_node[col]
                lo ^= np.where(in_lo, change, np.uint64(0))
                hi ^= np.where(in_lo, np.uint64(0), change)
            cols = [D[src, tc + j] if j != kk else nxt for j in range(T)]
            for a in range(T - 1):  # bubble the new op id into place: the others are sorted
                for i in range(T - 1 - a):
                    x, y = cols[i], cols[i + 1]
                    cols[i], cols[i + 1] = np.minimum(x, y), np.maximum(x, y)
            for j in range(T):
                f = tc + j
                v = cols[j].astype(np.uint64) << self.shift[f]
                if self.word[f] == 0:
                    lo |= v
                else:
                    assert hi is not None
                    hi |= v
            keys.append(
                Keys(lo if hi is None else lo ^ _mix(hi), None if hi is None else hi.astype(self.hi_dtype))
            )
            dones.append(self.done[ops, old])
            srcs.append(src)
        if not keys:
            return _concat([], self.has_hi), np.empty(0, bool), np.empty(0, np.int64)
        return _concat(keys, self.has_hi), np.concatenate(dones), np.concatenate(srcs)

    def spin(self, k: Keys) -> Arr:
        """Per state of ``k``: 1 + the slot of a thread that can step forever on its own,
        completing nothing and changing no word (0: none). Such a thread is a cycle of (d).

        From each thread's op id the rows at the state's words are followed while they
        complete nothing and leave their word as it was: the words stay, so that is the
        thread's only future while it runs alone; it is a cycle if it comes back to where it
        started (within as many steps as there are op states)."""
        self.ensure(k)
        c = self._c_tables()
        lib = native()
        out = np.zeros(len(k), np.uint8)
        if c is not None and lib is not None:
            err = np.zeros(2, np.int64)
            h = np.ascontiguousarray(k.h, np.uint64)
            hi = None if k.hi is None else np.ascontiguousarray(k.hi, np.uint64)
            while True:
                got = int(
                    lib.mcv_spin(ctypes.byref(c), len(k), _ptr(h), _ptr(hi), _ptr(out), self.nops, _ptr(err))
                )
                if got >= -1:
                    return out
                # A walk met a row not computed yet (lazy): compute it, walk again.
                self._fill(np.array([err[0] * self.nxt.shape[1] + err[1]]))
                c = self._c_tables()
                assert c is not None
        D = self.decode(k)
        words = D[:, : self.tc]
        for slot in range(self.T - 1, -1, -1):  # the lowest slot wins, as in C
            tid = D[:, self.tc + slot].astype(np.int64)
            cur, alive = tid.copy(), np.ones(len(k), bool)
            if slot:
                alive &= tid != D[:, self.tc + slot - 1]
            found = np.zeros(len(k), bool)
            for _ in range(self.nops):
                col = self.acc_col[cur]
                alive &= (col >= 0) & (self.mv_cnt[cur] == 1)
                alive &= self.mv_flat[np.minimum(self.mv_off[cur], len(self.mv_flat) - 1)] == cur
                if not alive.any():
                    break
                code = words[np.arange(len(k)), np.maximum(col, 0)]
                nxt = self.nxt[cur, code]
                if bool((alive & (nxt == MISSING)).any()):
                    self._fill((cur * self.nxt.shape[1] + code)[alive & (nxt == MISSING)])
                    return self.spin(k)
                alive &= (nxt >= 0) & ~self.done[cur, code] & (self.new[cur, code] == code)
                cur = np.where(alive, nxt, cur)
                back = alive & (cur == tid)
                found |= back
                alive &= ~back
            out[found] = 1 + slot
        return out

    def spin_cycle(self, row: Arr, slot: int) -> list[Arr]:
        """The states of the cycle ``spin`` found in decoded state ``row`` (thread ``slot``),
        from ``row`` on (``row`` itself not repeated at the end)."""
        tid = cur = int(row[self.tc + slot])
        out = [row]
        others = [int(x) for j, x in enumerate(row[self.tc : self.sc]) if j != slot]
        while True:
            code = int(row[int(self.acc_col[cur])])
            cur = int(self.nxt[cur, code])
            if cur == tid:
                return out
            nxt = row.copy()
            nxt[self.tc : self.sc] = sorted([*others, cur])
            out.append(nxt)

    def props(self, k: Keys) -> Arr:
        """Per state of ``k``: bit 0 (a) two held blocks overlap (or one and a static block);
        bit 1 (c) that, or the OCC bits are not the linearized live blocks plus those in
        flight; bit 2 every thread is between operations (quiescent: (b) judges those). In C
        when it is built, else numpy; the same expressions."""
        c = self._c_tables()
        lib = native()
        if c is not None and lib is not None:
            out = np.empty(len(k), np.uint8)
            h = np.ascontiguousarray(k.h, np.uint64)
            hi = None if k.hi is None else np.ascontiguousarray(k.hi, np.uint64)
            lib.mcv_props(
                ctypes.byref(c),
                len(k),
                _ptr(h),
                _ptr(hi),
                *[_ptr(a) for a in self._props_c()],
                self.N,
                _ptr(out),
            )
            return out
        D = self.decode(k)
        tids = D[:, self.tc : self.sc]
        static = D[:, self.sc]
        holds = self.hold[tids]
        clash = np.zeros(len(D), bool)
        so = self.static_overlap[static]
        for t in range(self.T):
            held = holds[:, t]
            clash |= (held > 0) & (((so >> held.astype(np.uint64)) & np.uint64(1)) != 0)
            for j in range(t + 1, self.T):
                clash |= self.overlap[held, holds[:, j]]
        want = self.static_live[static].copy()
        for t in range(self.T):
            want |= self.bit[np.where(holds[:, t] > 0, holds[:, t], self.flight[tids[:, t]])]
        occ = np.zeros(len(D), np.uint64)
        for n in range(1, self.N):
            occ |= self.occ[n, D[:, n - 1]]
        quiet = self.between[tids].all(axis=1)
        flags: Arr = (clash | ((clash | (occ != want)) << 1) | (quiet << 2)).astype(np.uint8)
        return flags

    def _props_c(self) -> list[Arr]:
        """The property tables as ``mcv_props`` reads them (views where the types agree)."""
        return [
            np.ascontiguousarray(self.hold, np.int64),
            np.ascontiguousarray(self.flight, np.int64),
            np.ascontiguousarray(self.between).view(np.uint8),
            np.ascontiguousarray(self.static_live, np.uint64),
            np.ascontiguousarray(self.static_overlap, np.uint64),
            np.ascontiguousarray(self.overlap).view(np.uint8),
            np.ascontiguousarray(self.occ, np.uint64),
            np.ascontiguousarray(self.bit, np.uint64),
        ]

    def components(self) -> Arr:
        """Each op id's strongly connected component in the graph of one thread's steps that
        complete nothing (op id -> next op id, over every row known), numbered; kept in ``scc``.

        A cycle of global steps that complete nothing brings the threads' op ids back to the
        same multiset, so the op id steps it takes form a circulation (as many in as out at
        each op id): each lies on a cycle of this graph, inside one component. A step between
        two components (the successful CAS that ends a retry loop, the first step of an
        operation) is on no cycle, and the lock-freedom pass leaves it out."""
        nops = self.nops
        succ: list[set[int]] = [set() for _ in range(nops)]
        for tid in range(nops):
            for op in self.moves.get(tid) or []:
                ok = (self.nxt[op] >= 0) & ~self.done[op]
                succ[tid].update(self.nxt[op][ok].tolist())
        # Tarjan's algorithm, iteratively (no recursion limit).
        index, low = [-1] * nops, [0] * nops
        on, stack, comp = [False] * nops, [], np.full(nops, -1, np.int32)
        counter = ncomp = 0
        for root in range(nops):
            if index[root] >= 0:
                continue
            work = [(root, iter(succ[root]))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on[root] = True
            while work:
                v, it = work[-1]
                w = next(it, None)
                if w is not None:
                    if index[w] < 0:
                        index[w] = low[w] = counter
                        counter += 1
                        stack.append(w)
                        on[w] = True
                        work.append((w, iter(succ[w])))
                    elif on[w]:
                        low[v] = min(low[v], index[w])
                    continue
                work.pop()
                if work:
                    u = work[-1][0]
                    low[u] = min(low[u], low[v])
                if low[v] == index[v]:
                    while True:
                        w = stack.pop()
                        on[w] = False
                        comp[w] = ncomp
                        if w == v:
                            break
                    ncomp += 1
        self.scc = comp
        if hasattr(self, "_c"):
            del self._c  # the C tables point at the components: rebuilt when next asked
        return comp

    def intra_writes(self) -> bool:
        """Whether a step that keeps its thread in its op state's component (``components``)
        changes a word, in some known row."""
        assert self.scc is not None
        for tid in range(self.nops):
            for op in self.moves.get(tid) or []:
                nxt = self.nxt[op]
                keep = (nxt >= 0) & ~self.done[op] & (self.scc[np.maximum(nxt, 0)] == self.scc[tid])
                if bool((keep & (self.new[op] != np.arange(len(nxt)))).any()):
                    return True
        return False

    def _raise(self, ops: Arr, old: Arr, nxt: Arr) -> None:
        j = int(np.nonzero(nxt < 0)[0][0])
        i = int(ops[j])
        node, acc = self.access[i]
        self.sp.row(i, acc, self.values[node][int(old[j])])  # raises _mc's own error
        raise AssertionError("[vec model checker internal bug] a missing row")

    # -- properties --------------------------------------------------------------------------------

    def _property_tables(self) -> None:
        sp = self.sp
        N = self.N
        ops, K = self.nxt.shape
        ops = max(ops, self.nops)
        self.hold = np.zeros(ops, np.int64)
        self.between = np.zeros(ops, bool)
        self.flight = np.zeros(ops, np.int64)
        self.occ = np.zeros((N, K), np.uint64)
        self.coal = np.zeros((N, K), bool)
        self._props = [0] * N
        """How many op states (index 0) and values of each node the tables above cover."""
        self._more_properties()
        self.static_live = np.array([sum(1 << n for n in live) for live in sp.sets], np.uint64)
        self.static_overlap = np.array([int(x) for x in sp.static_overlap], np.uint64)
        self.overlap = np.array([[n and m and g.overlaps(n, m) for m in range(N)] for n in range(N)], bool)
        self.bit = np.array([0] + [1 << n for n in range(1, N)], np.uint64)

    def _more_properties(self) -> None:
        sp, ch, done = self.sp, self.checker, self._props
        for t in range(done[0], self.nops):
            self.hold[t] = sp.hold[t]
            self.between[t] = sp.idle[t] or sp.hold[t] != 0
            self.flight[t] = ch.inflight(t)
        done[0] = self.nops
        for n in range(1, self.N):
            for c in range(done[n], len(self.values[n])):
                v = self.values[n][c]
                self.occ[n, c] = np.uint64(1 << n) if v & bits.OCC else np.uint64(0)
                self.coal[n, c] = bool(v & (bits.COAL_LEFT | bits.COAL_RIGHT))
            done[n] = len(self.values[n])


@dataclass
class Found:
    """The first states of a level that break a property."""

    prop: str
    row: Arr


class VecChecker:
    """Breadth-first search a level at a time, then the lock-freedom pass."""

    def __init__(
        self,
        cfg: Config,
        progress: Callable[[Result, int], None] | None = None,
        *,
        workdir: str | Path | None = None,
        memory_budget: int | None = None,
        bucket: int | None = None,
        on_violation: Callable[[Violation], None] | None = None,
        lazy: bool = True,
    ) -> None:
        self.cfg = cfg
        self.checker = Checker(cfg)
        self.sp: Space = self.checker.sp
        self.progress = progress
        self.result = self.checker.result
        self.workdir, self.budget, self.fixed_bucket = workdir, memory_budget, bucket
        self.bucket = bucket or MIN_BUCKET
        self.quiescent_cache: dict[tuple[int, int, int], str | None] = {}
        self.per_state = cfg.scenario is not None and any(
            w == "dfree" for ops in cfg.scenario for w, _ in ops
        )
        """Racing double frees: each state is judged by ``_mc.Checker.check_state``."""
        self.levels: list[Path] = []
        self.level_sizes: list[int] = []
        """States per BFS level (for the record)."""
        self.disk_bytes = 0
        self.on_violation = on_violation
        self.phase = "search"
        """What the run is doing: ``search`` (the BFS), ``lock-freedom`` (its second pass,
        when it needs one), ``done``."""
        self.lock_freedom_by = ""
        """How (d) was decided: ``spin`` (every state's lone-thread walks: exact when no step
        that keeps a thread in its component writes a word), ``rounds`` (the second pass)."""
        self.lock_freedom_rounds: list[int] = []
        self._deferred: Violation | None = None
        self.lazy = lazy
        """Rows computed when first reached (``Tables(lazy=True)``); else the whole closure first."""
        self.relayouts = 0
        """How often a lazily computed row overflowed the key's fields (every state kept so far
        is then re-packed, ``_relayout``)."""

    # -- levels on disk ------------------------------------------------------------------------------

    def _save_level(self, k: Keys, i: int | None = None) -> None:
        """Write a level (the next one; or level ``i`` again, re-packed)."""
        path = self.dir / f"level{len(self.levels) if i is None else i}"
        np.save(path.with_suffix(".h.npy"), k.h)
        self.disk_bytes += k.h.nbytes
        if k.hi is not None:
            np.save(path.with_suffix(".hi.npy"), k.hi)
            self.disk_bytes += k.hi.nbytes
        if i is None:
            self.levels.append(path)

    def _level(self, i: int, has_hi: bool | None = None) -> Keys:
        path = self.levels[i]
        h = np.load(path.with_suffix(".h.npy"), mmap_mode="r")
        two = self.tb.has_hi if has_hi is None else has_hi
        hi = np.load(path.with_suffix(".hi.npy"), mmap_mode="r") if two else None
        return Keys(h, hi)

    def _buckets(self, k: Keys) -> Iterator[tuple[int, Keys]]:
        for start in range(0, len(k), self.bucket):
            part = Keys(
                np.asarray(k.h[start : start + self.bucket]),
                None if k.hi is None else np.asarray(k.hi[start : start + self.bucket]),
            )
            yield start, part

    # -- the search ----------------------------------------------------------------------------------

    def run(self) -> Result:
        _fixed_mmap_threshold()
        started = time.perf_counter()
        tmp = tempfile.TemporaryDirectory(prefix="nbbs-vec-", dir=self.workdir)
        try:
            self.dir = Path(tmp.name)
            self.tb = Tables(self.checker, lazy=self.lazy)
            self._search(started)
        finally:
            tmp.cleanup()
        self.result.seconds = time.perf_counter() - started
        return self.result

    def _relayout(self, level: Keys) -> Keys:
        """A lazily computed row overflowed a field of the key: widen the fields and re-pack
        every state kept so far (the seen runs, the levels on disk, ``level``); the rows stay."""
        self.relayouts += 1
        tb = self.tb
        old = copy.copy(tb)  # the old layout, to read the old keys
        tb.relayout()

        def recode(k: Keys) -> Keys:
            parts = []
            for start in range(0, len(k), MAX_BUCKET):
                part = Keys(
                    np.asarray(k.h[start : start + MAX_BUCKET]),
                    None if k.hi is None else np.asarray(k.hi[start : start + MAX_BUCKET]),
                )
                parts.append(tb.encode(old.decode(part)))
            return sort_unique(_concat(parts, tb.has_hi))

        self.store.recode(recode, tb.has_hi)
        for i in range(len(self.levels)):
            self._save_level(recode(self._level(i, old.has_hi)), i)
        self.quiescent_cache.clear()  # its keys are packed words: the old layout's
        return recode(level)

    def _search(self, started: float) -> None:
        r, cfg = self.result, self.cfg
        tb = self.tb
        store = self.store = Store(self.dir, tb.has_hi, self.budget)
        level = sort_unique(tb.encode(tb.initial_rows()))
        r.initial_states = len(level)
        pending = set(cfg.properties) - {"d"}
        states = 0
        while len(level):
            store.add(level)
            self._save_level(level)
            states += len(level)
            r.states = states
            self.level_sizes.append(len(level))
            found = self._check_level(level, pending)
            for f in found:
                pending.discard(f.prop)
                self._report(self._violation(f))
            while "d" in cfg.properties and "d" not in r.violations and self._deferred is None:
                try:
                    self._spin_level(level)
                    break
                except Relayout:
                    level = self._relayout(level)
            if r.violations and cfg.stop_at_first:
                r.complete = False
                break
            if cfg.max_states and states >= cfg.max_states:
                r.complete = False
                break
            if self.fixed_bucket is None:
                self.bucket = max(MIN_BUCKET, min(MAX_BUCKET, states // 64))
            while True:
                try:
                    nxt = self._step_level(level, started)
                    break
                except Relayout:
                    level = self._relayout(level)  # and the level is stepped again
            if not r.complete:
                break
            level = nxt.merged(tb.has_hi)
        r.states = states
        if "d" in cfg.properties and r.complete:
            if self._deferred is not None:
                self._report(self._deferred)
            elif "d" not in r.violations:
                self.phase = "lock-freedom"
                self._lock_freedom()
        self.phase = "done"
        self.disk_bytes += store.disk_bytes

    def _step_level(self, level: Keys, started: float) -> Runs:
        """The states one step past ``level`` not seen yet, as runs (``Relayout``: none kept, the
        transitions counted since the level began taken back)."""
        r, cfg, tb, store = self.result, self.cfg, self.tb, self.store
        nxt = Runs()
        transitions = r.transitions
        try:
            for start, part in self._buckets(level):
                try:
                    succ = tb.expand(part, sources=False)[0]
                except CountRangeError:
                    # A broken variant pushed a count out of range: (b), as _mc reports it.
                    self._corrupting_step(part)
                    r.complete = False
                    break
                r.transitions += len(succ)
                new = sort_unique(succ)
                del succ
                nxt.add(new.take(np.nonzero(~store.contains(new))[0]))
                if self.progress:
                    r.seconds = time.perf_counter() - started
                    self.progress(r, len(level) - start - len(part))
                if cfg.seconds is not None and time.perf_counter() - started > cfg.seconds:
                    r.complete = False
                    break
            del part  # a view of the level: the store may grow that memory in place
        except Relayout:
            r.transitions = transitions
            raise
        return nxt

    def _report(self, v: Violation) -> None:
        self.result.violations[v.prop] = v
        if self.on_violation:
            self.on_violation(v)

    def _spin_level(self, level: Keys) -> None:
        """(d) on each state of a level: a thread that steps forever on its own (``Tables.spin``).
        Reported at once, unless the search stops at the first violation: then, as ``_mc``
        does, only once the search is complete."""
        for _, part in self._buckets(level):
            slots = self.tb.spin(part)
            hit = np.nonzero(slots)[0]
            if len(hit) == 0:
                continue
            row = self.tb.decode(part.take(hit[:1]))[0]
            cycle = self.tb.spin_cycle(row, int(slots[hit[0]]) - 1)
            path = self._path_to(row, len(self.levels) - 1)
            ints = [self.tb.state_int(x) for x in path + cycle[1:] + [row]]
            msg = f"a cycle of {len(cycle)} steps in which no operation completes"
            v = self.checker.replay_path("d", msg, ints)
            v.cycle_start = len(v.steps) - len(cycle)
            if self.cfg.stop_at_first:
                self._deferred = v
            else:
                self._report(v)
            return

    # -- properties on a level -------------------------------------------------------------------------

    def _check_level(self, level: Keys, pending: set[str]) -> list[Found]:
        """Count the quiescent states, and return the first state of each pending property it breaks."""
        tb, props = self.tb, self.cfg.properties
        first: dict[str, Arr] = {}
        for _, part in self._buckets(level):
            if self.per_state:
                self._check_each(tb.decode(part), pending, first)
                continue
            flags = tb.props(part)
            bad: dict[str, Arr] = {}
            if "a" in props:
                bad["a"] = flags & 1
            if "c" in props:
                bad["c"] = flags & 3
            if "b" in props:
                q = np.nonzero(flags & 4)[0]
                bad["b"] = np.zeros(len(part), bool)
                if len(q):
                    bad["b"][q] = self._quiescent(tb.decode(part.take(q)))
            for p, mask in bad.items():
                if p in pending and p not in first:
                    hit = np.nonzero(mask)[0]
                    if len(hit):
                        first[p] = tb.decode(part.take(hit[:1]))[0]
        return [Found(p, row) for p, row in sorted(first.items())]

    def _check_each(self, D: Arr, pending: set[str], first: dict[str, Arr]) -> None:
        """``_mc``'s own check of each state (racing double frees: which free won is in the op
        states' context, which the array expressions do not read; such scenarios are small)."""
        for row in D:
            for p, _ in self.checker.check_state(self.tb.state_int(row)):
                if p in pending and p not in first:
                    first[p] = row.copy()

    def _quiescent(self, Q: Arr) -> Arr:
        """Count the quiescent states ``Q`` (decoded); which of them break (b)."""
        tb, r = self.tb, self.result
        r.quiescent += len(Q)
        r.stale_quiescent += int(tb.coal[np.arange(1, tb.N), Q[:, : tb.tc]].any(axis=1).sum())
        held = tb.static_live[Q[:, tb.sc]].copy()
        holds = tb.hold[Q[:, tb.tc : tb.sc]]
        for k in range(tb.T):
            held |= tb.bit[holds[:, k]]
        words = Keys(*self._words_key(Q))
        key = np.stack([words.h, words.hi if words.hi is not None else np.zeros(len(Q), np.uint64), held], 1)
        uniq, index, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        verdict = np.zeros(len(uniq), bool)
        for u, (wl, wh, hm) in enumerate(uniq.tolist()):
            ck = (wl, wh, hm)
            if ck not in self.quiescent_cache:
                s = tb.state_int(Q[int(index[u])])
                live = frozenset(n for n in range(1, tb.N) if hm >> n & 1)
                self.quiescent_cache[ck] = self.checker.quiescent_problem(s, live)
            verdict[u] = self.quiescent_cache[ck] is not None
        return verdict[inverse.ravel()]

    def _words_key(self, Q: Arr) -> tuple[Arr, Arr | None]:
        """The word fields of ``Q`` alone, packed (the rest zero)."""
        W = Q.copy()
        W[:, self.tb.tc :] = 0
        k = self.tb.encode(W)
        return k.h, k.hi

    # -- counterexamples ---------------------------------------------------------------------------------

    def _corrupting_step(self, part: Keys) -> None:
        """Report the first state of ``part`` whose next step takes a count out of range as a
        corruption of the words ((b)), with the path to it, as ``_mc.Checker.run`` does."""
        for i in range(len(part)):
            one = part.take(np.array([i]))
            try:
                self.tb.expand(one)
            except CountRangeError as e:
                if "b" not in self.result.violations:
                    row = self.tb.decode(one)[0]
                    path = [self.tb.state_int(x) for x in self._path_to(row, len(self.levels) - 1)]
                    msg = f"the next step corrupts a word: {e}"
                    self.result.violations["b"] = self.checker.replay_path("b", msg, path)
                return
        raise AssertionError("[vec model checker internal bug] no state of the bucket corrupts a word")

    def _violation(self, f: Found) -> Violation:
        s = self.tb.state_int(f.row)
        saved = (self.result.quiescent, self.result.stale_quiescent)
        msgs = dict(self.checker.check_state(s))
        self.result.quiescent, self.result.stale_quiescent = saved
        msg = msgs.get(f.prop, "")
        path = self._path_to(f.row, len(self.levels) - 1)
        return self.checker.replay_path(f.prop, msg, [self.tb.state_int(row) for row in path])

    def _path_to(self, row: Arr, at: int) -> list[Arr]:
        """A shortest path of decoded states from an initial state to ``row``, found at level ``at``."""
        tb = self.tb
        path = [row]
        target = tb.encode(row[None, :])
        for lvl in range(at - 1, -1, -1):
            for _, part in self._buckets(self._level(lvl)):
                D = tb.decode(part)
                k, _, src = tb.successors(D, part)
                hit = k.h == target.h[0]
                if k.hi is not None and target.hi is not None:
                    hit &= k.hi == target.hi[0]
                j = np.nonzero(hit)[0]
                if len(j):
                    row = D[src[j[0]]]
                    break
            else:
                raise AssertionError("[vec model checker internal bug] no predecessor one level up")
            path.append(row)
            target = tb.encode(row[None, :])
        return path[::-1]

    def _level_of(self, k: Keys) -> int:
        for i in range(len(self.levels)):
            if bool(find(self._level(i), k)[0][0]):
                return i
        raise AssertionError("[vec model checker internal bug] a state in no level")

    # -- lock-freedom ------------------------------------------------------------------------------------

    def _intra_targets(self, part: Keys, within: Keys) -> tuple[Arr, Arr, Arr]:
        """The steps of ``part`` a cycle can take (``Tables.components``) that end in ``within``
        (sorted): (index in ``part`` of the source, index in ``within`` of the target), and
        per state of ``part`` whether it has such a step."""
        succ, _, src = self.tb.expand(part, intra=True)
        order = np.argsort(succ.h)  # by h alone: the lookup scans the keys sharing an h
        found, at = find(within, succ.take(order), ascending=True)
        src = src[order][found]
        return src, at[found], np.bincount(src, minlength=len(part)) > 0

    def _lock_freedom(self) -> None:
        """(d): is there a cycle of steps that complete no operation? Found, it is reported.

        Only the steps that keep the stepping thread inside its op state's component
        (``Tables.components``) can lie on such a cycle: the rest are left out. The first
        round keeps the states that take such a step (one stepping of every state, no
        lookup); each later round keeps, of the states kept, those with a predecessor and a
        successor among them (their steps looked up among them alone), until a round keeps
        them all. A cycle's states are always kept; conversely every state kept
        has a predecessor kept, so following predecessors from any of them runs into a
        cycle."""
        tb = self.tb
        tb.components()
        if not tb.intra_writes():
            # Every step a cycle can take leaves the words as they are: a cycle's moving
            # threads each go round on their own at those words, which ``spin`` looked for
            # in every state. None found: there is no cycle.
            self.lock_freedom_by = "spin"
            return
        self.lock_freedom_by = "rounds"
        outs = Runs()
        for run in self.store.compact():
            taking: list[Keys] = []
            for _, part in self._buckets(run):
                src = tb.expand(part, intra=True)[2]
                taking.append(part.take(np.nonzero(np.bincount(src, minlength=len(part)))[0]))
                if self.progress:
                    self.progress(self.result, 0)
            if taking:
                outs.add(_concat(taking, tb.has_hi))  # a run's buckets in order: sorted
        left = outs.merged(tb.has_hi)
        del outs
        self.lock_freedom_rounds = [len(left)]
        """The states kept after each round (for the record: the README's figures)."""
        while len(left):
            has_pred = np.zeros(len(left), bool)
            has_succ = np.zeros(len(left), bool)
            for start, part in self._buckets(left):
                _, dst, has = self._intra_targets(part, left)
                has_pred[dst] = True
                has_succ[start : start + len(part)] = has
                if self.progress:
                    self.progress(self.result, 0)
            keep = has_pred & has_succ
            if bool(keep.all()):
                break
            left = left.take(np.nonzero(keep)[0])
            self.lock_freedom_rounds.append(len(left))
        if len(left) == 0:
            return
        # Every state left has a predecessor left: walk back until a state repeats.
        pred = np.full(len(left), -1, np.int64)
        for start, part in self._buckets(left):
            src, dst, _ = self._intra_targets(part, left)
            pred[dst] = start + src
        walk, seen = [0], {0: 0}
        while True:
            p = int(pred[walk[-1]])
            if p in seen:
                cycle = walk[seen[p] :][::-1]  # forward order: pred[x] -> x
                break
            seen[p] = len(walk)
            walk.append(p)
        keys = [left.take(np.array([i])) for i in cycle]
        rows = tb.decode(_concat(keys, tb.has_hi))
        lvls = [self._level_of(k) for k in keys]
        at = int(np.argmin(lvls))
        rows = np.concatenate([rows[at:], rows[:at]])
        path = self._path_to(rows[0], lvls[at])
        ints = [tb.state_int(x) for x in path + list(rows[1:]) + [rows[0]]]
        msg = f"a cycle of {len(rows)} steps in which no operation completes"
        v = self.checker.replay_path("d", msg, ints)
        v.cycle_start = len(v.steps) - len(rows)
        self.result.violations["d"] = v


def check(
    cfg: Config,
    progress: Callable[[Result, int], None] | None = None,
    *,
    workdir: str | Path | None = None,
    memory_budget: int | None = None,
    on_violation: Callable[[Violation], None] | None = None,
) -> Result:
    """Explore every state of ``cfg`` with the vectorized engine and check its properties.

    ``on_violation`` is called with each violation as soon as it is found (the search goes on).

    ``workdir``: where the levels (and runs past ``memory_budget`` bytes) are written, a
    temporary directory removed at the end (default: the system's, ``$TMPDIR``).

    Everything ``_mc.check`` does: racing double frees (``dfree`` scenario ops: each state is
    judged by ``_mc``'s own check), a time budget (``Config.seconds``, checked after each
    bucket), and a broken variant that takes a count out of range reported as (b) with the
    path to the state whose next step does it (the search then stops, incomplete).
    """
    return VecChecker(
        cfg, progress, workdir=workdir, memory_budget=memory_budget, on_violation=on_violation
    ).run()


def key_bits(cfg: Config) -> int:
    """Bits of one packed state of ``cfg`` (more than 64: two words)."""
    return Tables(Checker(cfg)).bits


__all__ = ["check", "key_bits"]
