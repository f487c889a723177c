"""The C port (ports/c/) against the Python model: builds, transitions, protocol, stress, controlled mode.

The full conformance runs (the Hypothesis differential machine, the explorer's strategies over
controlled mode) drive the same executable through ``nbbs conform``; these tests are the port's
own: fast, and each shown to catch a defect flag or a doctored input.
"""

from __future__ import annotations

import ctypes
import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import DEEP

from nbbs.impl import NBBS
from nbbs.impl.errors import NBBSError
from nbbs.model import bits, steps
from nbbs.model import geometry as g
from nbbs.model.steps import Kind, Machine, OpState
from nbbs.ports import DEFECTS, PortBuildError, build

VARIANTS = ("counted", "reference")


class Port:
    """The protocol executable on a pipe: one line out, its reply lines back."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def send(self, line: str, replies: int = 1) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return [self.proc.stdout.readline().rstrip("\n") for _ in range(replies)]

    def one(self, line: str) -> str:
        return self.send(line)[0]

    def until(self, line: str, last: str) -> list[str]:
        """Send ``line``; read reply lines up to and including the line ``last``."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = []
        while (got := self.proc.stdout.readline().rstrip("\n")) != last:
            assert got, f"the port ended while answering {line!r}"
            out.append(got)
        return out

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _port(**kw: object) -> Iterator[Port]:
    p = Port(build("port", **kw))  # type: ignore[arg-type]
    assert p.one("hello 1").startswith("hello 1 name=nbbs-c features=")
    yield p
    p.close()


@pytest.fixture
def port() -> Iterator[Port]:
    yield from _port()


@pytest.fixture
def cport() -> Iterator[Port]:
    yield from _port(controlled=True)


# -- builds ---------------------------------------------------------------------------------------

CONFIGS = [
    pytest.param("port", False, (), False, id="port"),
    pytest.param("port", True, (), False, id="port-controlled"),
    pytest.param("port", False, (), True, id="port-count-atomics"),
    pytest.param("lib", False, (), False, id="lib"),
    pytest.param("lib", True, (), True, id="lib-controlled-count-atomics"),
    pytest.param("traces", False, (), False, id="traces"),
    pytest.param("traces", True, (), False, id="traces-controlled"),
    pytest.param("ext", False, (), False, id="ext"),
    pytest.param("bench", False, (), False, id="bench"),
    pytest.param("bench", False, (), True, id="bench-count-atomics"),
    *(pytest.param("port", False, (d,), False, id=f"defect-{d}") for d in DEFECTS),
    *(
        pytest.param("port", True, (d,), False, id=f"controlled-defect-{d}")
        for d in ("NO_CAS_RETRY", "STORE_CLIMB", "STORE_RELEASE")
    ),
]


@pytest.fixture(scope="module", autouse=True)
def _built() -> None:
    """Build every configuration up front, two at a time (a cold cache costs 10-40 s otherwise)."""
    with ThreadPoolExecutor(2) as pool:
        for f in [
            pool.submit(
                build, p.values[0], controlled=p.values[1], defects=p.values[2], count_atomics=p.values[3]
            )
            for p in CONFIGS
        ]:
            with suppress(PortBuildError):
                f.result()  # a failure: the configuration's own test reports it


@pytest.mark.parametrize(("kind", "controlled", "defects", "count"), CONFIGS)
def test_every_build_configuration_compiles_warning_free(
    kind: str, controlled: bool, defects: tuple[str, ...], count: bool
) -> None:
    path = build(kind, controlled=controlled, defects=defects, count_atomics=count)  # type: ignore[arg-type]
    assert path.is_file()
    assert build(kind, controlled=controlled, defects=defects, count_atomics=count) == path  # type: ignore[arg-type]


def test_a_build_error_names_the_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PortBuildError, match="unknown defect 'NOPE'"):
        build("port", defects=["NOPE"])
    with pytest.raises(PortBuildError, match="kind must be one of"):
        build("exe")  # type: ignore[arg-type]
    monkeypatch.setenv("CC", "no-such-compiler-here")
    with pytest.raises(PortBuildError, match="no C compiler: \\$CC = 'no-such-compiler-here'"):
        build("port")


def test_two_processes_building_at_once_get_one_whole_file(tmp_path: Path) -> None:
    code = "from nbbs.ports import build; print(build('lib'))"
    env = {**__import__("os").environ, "NBBS_PORT_BUILD_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outs = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert len(outs) == 1 and all(p.returncode == 0 for p in procs)
    assert [f.name for f in tmp_path.iterdir()] == [Path(outs.pop()).name]  # no temp file left


# -- transitions against bits.py --------------------------------------------------------------------

_WHICH = {
    "is_free": 0,
    "is_occupied": 1,
    "occupy": 2,
    "climb": 3,
    "mark_mask": 4,
    "buddy_keeps_busy": 5,
    "release": 6,
    "unmark_applies": 7,
    "unmark": 8,
    "unmark_stops": 9,
    "marks": 10,
    "release_cas": 11,
}


def _random_words(rng: random.Random, n: int) -> list[int]:
    """Words of every shape: any 64 bits, five-bit words, and counted words with small counts."""
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(rng.getrandbits(64))
        elif kind == 1:
            out.append(rng.getrandbits(5))
        else:
            c_l, c_r = rng.randrange(4 if kind == 2 else 1 << 20), rng.randrange(4 if kind == 2 else 1 << 20)
            out.append(
                c_l << (bits.COUNT_SHIFT + bits.COUNT_BITS) | c_r << bits.COUNT_SHIFT | rng.getrandbits(5)
            )
    return out


def _model(t: bits.Transitions, name: str, w: int, s: int) -> int:
    """bits.py's answer for one transition, as the C function returns it (64-bit, bools as 0/1)."""
    mask = (1 << 64) - 1
    if name == "unmark_stops":
        return int(t.unmark_stops(t.unmark(w, s) & mask, s))
    if name in ("climb", "unmark", "buddy_keeps_busy", "unmark_applies"):
        return int(getattr(t, name)(w, s)) & mask
    if name == "mark_mask":
        return t.mark_mask(s)
    if name == "marks":
        return int(t.marks)
    if name == "release_cas":
        # bits.py's flag (from the newcomer branch); on main the variants say it in words.
        return int(getattr(t, "release_cas", t is bits.COUNTED))
    return int(getattr(t, name)(w))


def _transition_mismatch(lib_path: Path, seed: int = 1, n: int = 2000) -> str | None:
    """The first word where libnbbs's transitions differ from bits.py's, or None."""
    lib = ctypes.CDLL(str(lib_path))
    f = lib.nbbs_transition
    f.restype = ctypes.c_uint64
    f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_uint64, ctypes.c_uint]
    rng = random.Random(seed)
    for v, variant in enumerate(VARIANTS):
        t = bits.VARIANTS[variant]
        for w in _random_words(rng, n):
            for s in (0, 1):
                for name, which in _WHICH.items():
                    if name in ("unmark", "unmark_stops") and not t.unmark_applies(w, s):
                        continue  # bits.py unmarks only where unmark applies (a count never borrows)
                    # unmark_stops is asked of the word unmark leaves, on both sides.
                    arg = f(v, _WHICH["unmark"], w, s) if name == "unmark_stops" else w
                    got, want = f(v, which, arg, s), _model(t, name, w, s)
                    if got != want:
                        return f"{variant} {name}(w={w:#x}, s={s}): C {got:#x}, bits.py {want:#x}"
    return None


def test_the_c_transitions_equal_bits_py_on_random_words() -> None:
    assert _transition_mismatch(build("lib")) is None


def test_the_transition_check_catches_an_unmark_that_sets_where_it_should_clear() -> None:
    found = _transition_mismatch(build("lib", defects=["SET_NOT_CLEAR"]))
    assert found is not None and " unmark(" in found


# -- sequential protocol sessions against nbbs.impl.NBBS ------------------------------------------------


def _expected(call: Callable[[], object]) -> str:
    """The protocol reply NBBS gives for one call: an address, none, ok, or error <Class>."""
    try:
        got = call()
    except NBBSError as e:
        return f"error {type(e).__name__}"
    return "none" if got is None else "ok" if got == "ok" else str(got)


def _free(heap: NBBS, address: int, order: int | None) -> str:
    heap.free(address, order)
    return "ok"


def _same(want: str, got: str) -> bool:
    return got == want or (want.startswith("error ") and got.split(" ")[:2] == want.split(" "))


SHAPES = [(3, 4096, 0, None), (4, 4096, 1 << 16, 2), (5, 1, 64, 3), (2, 8, 0, 0), (0, 4096, 4096, None)]


def _next_command(
    rng: random.Random, shape: tuple[int, int, int, int], held: list[tuple[int, int]], freed: list[int]
) -> str:
    """One random command, bad inputs included, given the blocks held and freed so far."""
    depth, page, start, max_order = shape
    size = page << depth
    r = rng.random()
    if r < 0.4:
        order = rng.choice([*range(max_order + 1), -1, max_order + 1])
        hint = rng.choice(["", f" {rng.randrange(-5, 1 << (depth + 1))}", " -"])
        return f"alloc {order}{hint}"
    if r < 0.7 and held:
        addr, order = held.pop(rng.randrange(len(held)))
        freed.append(addr)
        return f"free {addr} {order}" if rng.random() < 0.5 else f"free {addr}"
    addr = rng.choice(
        [
            start - page,
            start + size,
            start + rng.randrange(size),
            start + page * rng.randrange(1 << depth),
            *(freed[-1:] or [start]),
            *(a + page for a, o in held[-1:] if o > 0),
        ]
    )
    return f"free {addr}" + rng.choice(["", f" {rng.randrange(-1, max_order + 2)}"])


def _run_session(port: Port, variant: str, seed: int, ops: int = 100) -> str | None:
    """A random session on the port and on NBBS, reply by reply: the first difference, or None."""
    rng = random.Random(seed)
    for depth, page, start, mo in SHAPES:
        heap = NBBS(depth, page_size=page, start=start, max_order=mo, variant=variant)
        shape = (depth, page, start, depth if mo is None else mo)
        arena = f"arena {depth} {page} {start} {'-' if mo is None else mo} {variant}"
        if (got := port.one(arena)) != "ok":
            return f"{arena}: {got}"
        sent = [arena]
        held: list[tuple[int, int]] = []
        freed: list[int] = []
        for _ in range(ops):
            for line in (_next_command(rng, shape, held, freed), "words"):
                sent.append(line)
                cmd, *args = line.split(" ")
                if cmd == "words":
                    want = "words " + " ".join(map(str, heap.words()))
                elif cmd == "alloc":
                    hint = None if len(args) < 2 or args[1] == "-" else int(args[1])
                    want = _expected(partial(heap.alloc, int(args[0]), hint))
                    if want.isdigit():
                        held.append((int(want), int(args[0])))
                else:
                    order = int(args[1]) if len(args) > 1 else None
                    want = _expected(partial(_free, heap, int(args[0]), order))
                reply = port.one(line)
                if not _same(want, reply):
                    return "\n".join(
                        [*sent[:1], "...", *sent[-5:], f"NBBS: {want[:200]}", f"C:    {reply[:200]}"]
                    )
    return None


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_protocol_session_answers_as_nbbs_does(port: Port, variant: str) -> None:
    for seed in range(3):
        assert _run_session(port, variant, seed) is None


def test_arena_errors_are_configuration_errors(port: Port) -> None:
    for line in [
        "arena 29 4096 0 - counted",
        "arena -1 4096 0 - counted",
        "arena 3 3000 0 - counted",
        "arena 3 0 0 - counted",
        "arena 3 4096 4096 - counted",
        "arena 3 4096 0 4 counted",
        "arena 3 4096 -4096 - counted",
        "arena 3 4096 0 - nosuch",
    ]:
        assert port.one(line).startswith("error ConfigurationError "), line
    assert port.one("arena 3 4096 0 - corrected").startswith("error Unsupported ")
    assert port.one("alloc 0").startswith("error ProtocolError ")  # no arena yet
    assert port.one("hello 2").startswith("error ProtocolError ")
    assert port.one("arena 3 4096 x - counted").startswith("error ProtocolError ")
    assert port.one("spawn 0 alloc 0").startswith("error ")
    assert port.one("arena 28 4096 0 - counted") == "ok"  # 4 GiB of words, mapped lazily
    assert port.one("alloc 0") == "0"


@pytest.mark.parametrize("defect", ["SET_NOT_CLEAR", "WRONG_SHIFT", "NO_ARG_CHECKS", "IGNORE_START"])
def test_the_session_comparison_catches_a_sequentially_visible_defect(defect: str) -> None:
    for p in _port(defects=[defect]):
        assert any(_run_session(p, "counted", seed) is not None for seed in range(3))


def test_a_narrow_node_index_is_caught_at_depth_16() -> None:
    for p in _port(defects=["NARROW_INDEX"]):
        assert p.one("arena 16 1 0 - counted") == "ok"
        assert p.one("alloc 0") != "0"  # NBBS(16).alloc(0) == 0
    for p in _port():
        assert p.one("arena 16 1 0 - counted") == "ok"
        assert p.one("alloc 0") == "0"


# -- stress -----------------------------------------------------------------------------------------


def _stress(
    port: Port, depth: int, max_order: int, variant: str, threads: int, ops: int, seed: int
) -> list[dict]:
    """One stress run on a fresh arena (pages of 1 byte): the history, checked to be well formed."""
    assert port.one(f"arena {depth} 1 0 {max_order} {variant}") == "ok"
    history = [json.loads(x) for x in port.until(f"stress {threads} {ops} {seed}", "end")]
    assert len(history) == threads * ops
    assert all(list(h) == ["thread", "op", "args", "result", "call", "ret"] for h in history)
    assert all(h["call"] <= h["ret"] for h in history)
    assert sorted({h["thread"] for h in history}) == list(range(threads))
    return history


def _overlap(history: list[dict], depth: int, max_order: int) -> tuple[str | None, list[tuple[int, int]]]:
    """Two blocks sharing a page both surely held (from alloc's return to free's call), or None;
    and the blocks (address, order) still held at the end.

    Also checks each free names a block its thread holds, with its order, and gets ``ok``.
    """
    held: dict[tuple[int, int], tuple[int, int]] = {}  # (thread, address) -> (order, alloc returned)
    spans: dict[int, list[tuple[int, int, int]]] = {}  # page -> (from, to, address)
    for h in sorted(history, key=lambda h: h["call"]):
        key = (h["thread"], h["args"][0])
        if h["op"] == "alloc":
            assert 0 <= h["args"][0] <= max_order
            if h["result"] is not None:
                assert h["result"] % (1 << h["args"][0]) == 0 and 0 <= h["result"] < 1 << depth
                held[(h["thread"], h["result"])] = (h["args"][0], h["ret"])
        else:
            assert h["result"] == "ok", h
            order, got = held.pop(key)
            assert order == h["args"][1]
            for page in range(key[1], key[1] + (1 << order)):
                spans.setdefault(page, []).append((got, h["call"], key[1]))
    for (_, addr), (order, got) in held.items():
        for page in range(addr, addr + (1 << order)):
            spans.setdefault(page, []).append((got, 1 << 62, addr))
    for page, held_spans in spans.items():
        held_spans.sort()
        for (s1, e1, a1), (s2, _, a2) in pairwise(held_spans):
            if s2 <= e1:
                return f"page {page}: blocks at {a1} and {a2} held at once ({s1}..{e1} and from {s2})", []
    return None, [(a, o) for (_, a), (o, _) in held.items()]


def _gives_everything_back(port: Port, depth: int, max_order: int, held: list[tuple[int, int]]) -> bool:
    """Free what the stress left held; then the whole arena must come back as max-order blocks."""
    for a, o in held:
        assert port.one(f"free {a} {o}") == "ok"
    got = sorted(int(port.one(f"alloc {max_order}")) for _ in range(1 << (depth - max_order)))
    return (
        got == [i << max_order for i in range(1 << (depth - max_order))]
        and port.one(f"alloc {max_order}") == "none"
    )


def test_stress_gives_a_well_formed_history_and_loses_nothing(port: Port) -> None:
    history = _stress(port, 6, 3, "counted", 2, 300, 7)
    bad, held = _overlap(history, 6, 3)
    assert bad is None
    assert _gives_everything_back(port, 6, 3, held)


def test_stress_under_contention_holds_no_overlapping_blocks_and_loses_nothing(port: Port) -> None:
    # 4 threads on 8 pages: nearly every operation contends. (Not run on reference: whether its
    # real threads happen to interleave into its overlap is up to timing, so the test would flake.)
    history = _stress(port, 3, 3, "counted", 4, 5000, 11)
    bad, held = _overlap(history, 3, 3)
    assert bad is None
    assert _gives_everything_back(port, 3, 3, held)


def test_reference_stress_gives_a_well_formed_history(port: Port) -> None:
    _stress(port, 3, 3, "reference", 4, 2000, 11)


@pytest.mark.deep
@pytest.mark.skipif(not DEEP, reason="about a minute: HYPOTHESIS_PROFILE=deep")
def test_a_million_operation_stress_holds_no_overlapping_blocks_and_loses_nothing(port: Port) -> None:
    history = _stress(port, 4, 2, "counted", 4, 250_000, 3)
    bad, held = _overlap(history, 4, 2)
    assert bad is None
    assert _gives_everything_back(port, 4, 2, held)


def test_the_overlap_check_sees_two_blocks_held_at_once() -> None:
    history = [
        {"thread": 0, "op": "alloc", "args": [1], "result": 0, "call": 0, "ret": 5},
        {"thread": 1, "op": "alloc", "args": [0], "result": 1, "call": 6, "ret": 7},
        {"thread": 0, "op": "free", "args": [0, 1], "result": "ok", "call": 8, "ret": 9},
    ]
    assert _overlap(history, 2, 1)[0] == "page 1: blocks at 0 and 1 held at once (5..8 and from 7)"
    history[1]["call"], history[1]["ret"] = 9, 10
    assert _overlap(history, 2, 1) == (None, [(1, 0)])


# -- controlled mode against model/steps.py -----------------------------------------------------------


@dataclass
class Logical:
    """One logical thread of a controlled scenario, on both sides."""

    program: list[str]
    op: OpState | None = None
    cmd: str = ""
    got: list[int] = field(default_factory=list)  # blocks it holds (nodes)


_RELEASES = (steps.F_RELEASE, steps.R_RELEASE)


def _translated(op: OpState, kind: Kind, translate: bool) -> bool:
    """Whether the model's access is a release the port makes as a CAS where the model stores."""
    return translate and kind == Kind.STORE and op.pc in _RELEASES


def _c_event(m: Machine, op: OpState, ev: steps.Event, translate: bool) -> str:
    """The ``did`` line the port must print for the model's event.

    ``translate``: the port releases ``counted`` blocks with a CAS (from the word the free found,
    or ``BUSY`` in a rollback) while the model on main still stores: a store of 0 over ``BUSY``
    is read as that CAS succeeding. Once steps.py has ``release_cas`` nothing is translated.
    """
    acc = m.access(op)
    assert acc is not None
    kind = str(ev.kind)
    if ev.kind == Kind.CAS and ev.old != acc.a:
        kind = "cas_fail"
    if _translated(op, ev.kind, translate):
        kind = "cas" if ev.old == bits.BUSY else "cas_fail"
    return f"{kind} {ev.node} {ev.old} {ev.new if kind != 'cas_fail' else ev.old}"


def _c_pending(m: Machine, op: OpState, translate: bool) -> str:
    acc = m.access(op)
    assert acc is not None
    return f"{'cas' if _translated(op, acc.kind, translate) else acc.kind} {acc.node}"


@dataclass
class Run:
    """The end of a controlled run: the first difference from the model, and the blocks held."""

    mismatch: str | None
    held: list[int] = field(default_factory=list)  # nodes, from the port's replies
    in_flight: int = 0


def controlled_run(
    port: Port,
    variant: str,
    depth: int,
    programs: list[list[str]],
    schedule: int | list[int],
    trace: list[str] | None = None,
    cas_release: bool = True,
) -> Run:
    """Run the threads' programs on the port's controlled mode and on the step machines, under a
    random schedule (``schedule`` a seed) or a given one (the thread of every access): the first
    line where the port differs from the model (``Run.mismatch``).

    A program is a list of ``alloc ORDER [HINT]``, ``free`` (the thread's oldest block) and
    ``free NODE``. ``trace`` collects the run as PORTING.md trace lines (the model's expectations).
    """
    translate = cas_release and variant == "counted"  # the port's counted releases are CASes
    rng = random.Random(schedule if isinstance(schedule, int) else 0)
    given = None if isinstance(schedule, int) else list(schedule)
    m = Machine(depth, 0, bits.VARIANTS[variant])
    words = [0] * g.node_count(depth)
    assert port.one(f"arena {depth} 1 0 - {variant}") == "ok"
    threads = [Logical(list(p)) for p in programs]
    tids: dict[int, int] = {}
    last: dict[tuple[int, int], int] = {}
    held: list[int] = []

    def finish(i: int, t: Logical) -> str:
        assert t.op is not None
        if t.cmd.startswith("alloc"):
            n = steps.result(t.op)
            if n is None:
                return "none"
            t.got.append(n)
            held.append(n)
            if len(t.cmd.split()) == 2:
                last[(i, g.level(n))] = n - g.first_node(g.level(n))
            return str(g.first_page(depth, n))
        if t.op.pc == steps.DONE_FREE:
            held.remove(t.op.n)
            return "ok"
        return "error DoubleFreeError"

    def expect_next(i: int, t: Logical) -> str:
        assert t.op is not None
        if steps.is_done(t.op):
            return f"done {i} {finish(i, t)}"
        return f"pending {i} {_c_pending(m, t.op, translate)}"

    def start(i: int, t: Logical) -> bool:
        """Begin thread i's next operation on the model; False if there is nothing to free."""
        word, *arg = t.program.pop(0).split()
        if word == "alloc":
            order = int(arg[0])
            lvl = g.level_of_order(depth, order)
            if len(arg) > 1:
                pos = int(arg[1])
            else:
                tid = tids.setdefault(i, len(tids))
                spread = int(format(tid % (1 << lvl), f"0{lvl}b")[::-1], 2) if lvl else 0
                pos = last.setdefault((i, lvl), spread)
            t.cmd, t.op = " ".join(["alloc", *arg]), m.alloc(order, pos)
            return True
        if not arg and not t.got:
            return False  # its alloc got none (contention may cause that): nothing to free
        n = int(arg[0]) if arg else t.got.pop(0)
        t.cmd, t.op = f"free {g.first_page(depth, n)}", m.free(n, checked=True)
        return True

    def exchange(line: str, want: list[str], i: int, t: Logical) -> str | None:
        got = port.send(line, len(want))
        if trace is not None:
            spawn = {"op": "spawn", "thread": i, "cmd": t.cmd}
            trace.append(
                json.dumps(
                    {
                        **(spawn if line.startswith("spawn") else {"op": "step", "thread": i}),
                        "expect": "|".join(want),
                    },
                    separators=(",", ":"),
                )
            )
        if got != want:
            return f"schedule {schedule}, {line}: model {want}, port {got}"
        if port.one("words") != "words " + " ".join(map(str, words)):
            return f"schedule {schedule}, after {line}: words differ"
        return None

    while any(t.program or t.op is not None for t in threads):
        if given is not None:
            if not given:
                break
            i = given.pop(0)
        else:
            i = rng.choice([i for i, t in enumerate(threads) if t.op is not None or t.program])
        t = threads[i]
        if t.op is None:
            if not t.program or not start(i, t):
                continue
            if bad := exchange(f"spawn {i} {t.cmd}", [expect_next(i, t)], i, t):
                return Run(bad)
        if t.op is not None and not steps.is_done(t.op):
            op = t.op
            ev, t.op, new = m.step(op, words)
            words[ev.node] = new
            if bad := exchange(
                f"step {i}", [f"did {i} {_c_event(m, op, ev, translate)}", expect_next(i, t)], i, t
            ):
                return Run(bad)
        if steps.is_done(t.op):
            t.op = None
    return Run(None, held, sum(t.op is not None for t in threads))


SCENARIOS = [
    (2, [["alloc 0", "free"], ["alloc 0", "free"]]),
    (2, [["alloc 1", "free", "alloc 0", "free"], ["alloc 0", "alloc 0", "free", "free"]]),
    (3, [["alloc 0", "alloc 2", "free", "free"], ["alloc 1", "alloc 0", "free", "free"]]),
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_controlled_accesses_equal_the_step_machines_under_random_schedules(
    cport: Port, variant: str
) -> None:
    for k, (depth, programs) in enumerate(SCENARIOS):
        for seed in range(25):
            assert controlled_run(cport, variant, depth, programs, seed + 100 * k).mismatch is None


@pytest.mark.parametrize("defect", ["NO_CAS_RETRY", "STORE_CLIMB"])
def test_the_controlled_comparison_catches_a_broken_climb(defect: str) -> None:
    depth, programs = SCENARIOS[1]
    for p in _port(controlled=True, defects=[defect]):
        assert any(controlled_run(p, "counted", depth, programs, seed).mismatch for seed in range(20))


def _counterexample(name: str) -> tuple[int, list[list[str]], list[int]]:
    """A kept model-checker counterexample (scan mode, checked frees) as programs and a schedule."""
    path = Path(__file__).parent / "data" / "counterexamples" / f"{name}.json"
    cx = json.loads(path.read_text())
    assert cx["mode"] == "scan" and cx["checked_free"] and not cx["initial_live"]
    programs = [
        [
            f"alloc {op['order']} {op['node'] - g.first_node(g.level(op['node']))}"
            if op["op"] == "alloc"
            else f"free {op['node']}"
            for op in ops
        ]
        for ops in cx["threads"]
    ]
    return cx["depth"], programs, cx["schedule"]


def test_the_published_algorithm_loses_a_block_in_c_on_the_kept_schedule(cport: Port) -> None:
    depth, programs, schedule = _counterexample("reference-b")
    run = controlled_run(cport, "reference", depth, programs, schedule)
    assert run.mismatch is None and run.in_flight == 0 and run.held == []
    assert cport.one("alloc 2") == "none"  # nothing is held, yet the whole arena cannot be had
    # counted, on the same operations under random schedules, gives the arena back every time.
    for seed in range(10):
        run = controlled_run(cport, "counted", depth, programs, seed)
        assert run.mismatch is None and run.in_flight == 0
        for n in run.held:
            assert cport.one(f"free {g.first_page(depth, n)}") == "ok"
        assert cport.one("alloc 2") == "0"


def test_the_published_algorithm_hands_out_overlapping_blocks_in_c_on_the_kept_schedule(cport: Port) -> None:
    depth, programs, schedule = _counterexample("reference-a")
    run = controlled_run(cport, "reference", depth, programs, schedule)
    assert run.mismatch is None
    assert any(g.overlaps(a, b) for i, a in enumerate(run.held) for b in run.held[i + 1 :]), run.held


def test_controlled_mode_refuses_a_step_without_a_pending_access(cport: Port) -> None:
    assert cport.one("arena 2 1 0 - counted") == "ok"
    assert cport.one("step 0").startswith("error ProtocolError ")
    assert cport.one("spawn 0 alloc 0") == "pending 0 load 4"
    assert cport.one("spawn 0 alloc 0").startswith("error ProtocolError thread 0 is in flight")
    assert cport.one("arena 2 1 0 - counted").startswith("error ProtocolError ")


# -- the trace replayer ---------------------------------------------------------------------------------


def _sequential_trace(variant: str, seed: int, depth: int = 3, start: int = 4096 * 8) -> list[str]:
    """A trace from nbbs.impl.NBBS: random allocs and frees, bad ones included, words after each."""
    rng = random.Random(seed)
    heap = NBBS(depth, page_size=4096, start=start, variant=variant)
    lines = [
        json.dumps(
            {"format": "nbbs-trace", "version": 1, "depth": depth, "page_size": 4096, "start": start,
             "max_order": None, "variant": variant},
            separators=(",", ":"),
        )
    ]  # fmt: skip
    held: list[int] = []
    for _ in range(60):
        if held and rng.random() < 0.4:
            addr = held.pop(rng.randrange(len(held)))
            rec: dict[str, object] = {"op": "free", "addr": addr, "order": None}
            call: Callable[[], object] = partial(_free, heap, addr, None)
        elif rng.random() < 0.2:
            addr = start + 4096 * rng.randrange(-1, 9)
            order = rng.choice([None, 0, 1])
            rec = {"op": "free", "addr": addr, "order": order}
            call = partial(_free, heap, addr, order)
        else:
            order, hint = rng.randrange(-1, depth + 2), rng.choice([None, rng.randrange(8)])
            rec = {"op": "alloc", "order": order, "hint": hint}
            call = partial(heap.alloc, order, hint)
        want = _expected(call)
        if rec["op"] == "alloc" and want.isdigit():
            held.append(int(want))
        rec["expect"] = int(want) if want.isdigit() else None if want == "none" else want
        lines.append(json.dumps(rec, separators=(",", ":")))
        lines.append(json.dumps({"op": "words", "expect": list(heap.words())}, separators=(",", ":")))
    return lines


def _replay(exe: Path, tmp_path: Path, name: str, lines: list[str]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_trace_reader_passes_a_good_trace_and_fails_a_doctored_one(variant: str, tmp_path: Path) -> None:
    exe = build("traces")
    lines = _sequential_trace(variant, seed=3)
    done = _replay(exe, tmp_path, "good.jsonl", lines)
    assert done.returncode == 0, done.stdout
    k = next(i for i, x in enumerate(lines) if '"op":"alloc"' in x and '"expect":' in x and x[-2].isdigit())
    doctored = [*lines[:k], lines[k].replace('"expect":', '"expect":1'), *lines[k + 1 :]]
    done = _replay(exe, tmp_path, "bad.jsonl", doctored)
    assert done.returncode == 1
    assert f"bad.jsonl:{k + 1}: sent 'alloc" in done.stdout
    # A variant the port does not implement is skipped, and said so.
    other = [lines[0].replace(f'"variant":"{variant}"', '"variant":"corrected"'), *lines[1:]]
    done = _replay(exe, tmp_path, "corrected.jsonl", other)
    assert done.returncode == 0 and "corrected.jsonl: skipped" in done.stdout


def test_the_trace_reader_replays_a_controlled_schedule(tmp_path: Path) -> None:
    header = json.dumps(
        {"format": "nbbs-trace", "version": 1, "depth": 2, "page_size": 1, "start": 0, "max_order": None,
         "variant": "counted"},
        separators=(",", ":"),
    )  # fmt: skip
    trace: list[str] = []
    for p in _port(controlled=True):
        assert controlled_run(p, "counted", 2, SCENARIOS[0][1], 5, trace=trace).mismatch is None
    exe = build("traces", controlled=True)
    assert _replay(exe, tmp_path, "schedule.jsonl", [header, *trace]).returncode == 0
    k = next(i for i, x in enumerate(trace) if "did" in x)
    doctored = [*trace[:k], trace[k].replace("did", "did 9", 1), *trace[k + 1 :]]
    done = _replay(exe, tmp_path, "bad.jsonl", [header, *doctored])
    assert done.returncode == 1 and "sent 'step" in done.stdout


def test_of_two_racing_frees_of_one_block_exactly_one_succeeds(cport: Port) -> None:
    assert cport.one("arena 2 1 0 - counted") == "ok"
    assert cport.one("alloc 0") == "0"
    # Both check the block (loads 1, 2, 4 from the largest order down) before either releases.
    assert cport.one("spawn 0 free 0") == "pending 0 load 1"
    assert cport.one("spawn 1 free 0") == "pending 1 load 1"
    for t in (0, 1):
        cport.send(f"step {t}", 2)
        cport.send(f"step {t}", 2)
        assert cport.send(f"step {t}", 2)[1] == f"pending {t} cas 4"
    assert cport.send("step 0", 2) == ["did 0 cas 4 19 0", "pending 0 load 2"]
    assert cport.send("step 1", 2) == [
        "did 1 cas_fail 4 0 0",
        "done 1 error DoubleFreeError " + DOUBLE_FREE_MSG,
    ]
    while (got := cport.send("step 0", 2))[1].startswith("pending"):
        pass
    assert got[1] == "done 0 ok"
    assert cport.one("words") == "words " + " ".join(["0"] * 8)


DOUBLE_FREE_MSG = "no live block starts at 0: double free (or never allocated)"


def test_with_a_store_release_both_racing_frees_succeed() -> None:
    for p in _port(controlled=True, defects=["STORE_RELEASE"]):
        assert p.one("arena 2 1 0 - counted") == "ok"
        assert p.one("alloc 0") == "0"
        p.one("spawn 0 free 0"), p.one("spawn 1 free 0")
        for t in (0, 1):
            for _ in range(3):
                p.send(f"step {t}", 2)
        assert p.send("step 0", 2)[0] == "did 0 store 4 19 0"
        assert p.send("step 1", 2)[0] == "did 1 store 4 0 0"  # the second free is not refused
        results = set()
        for t in (0, 1):
            while (got := p.send(f"step {t}", 2))[1].startswith("pending"):
                pass
            results.add(got[1])
        assert results == {"done 0 ok", "done 1 ok"}


def _release_flags() -> list[str]:
    """The defect flags whose build releases as ``model/steps.py`` does: none once its free's
    release is a CAS (the port's own), ``STORE_RELEASE`` while it is still a store."""
    m = Machine(1, 0, bits.COUNTED)
    acc = m.access(m.free(2))  # counted has no mark phase: a free's first access is its release
    assert acc is not None
    return ["STORE_RELEASE"] if acc.kind == Kind.STORE else []


def test_the_build_that_releases_as_the_step_machines_do_needs_no_translation() -> None:
    for p in _port(controlled=True, defects=_release_flags()):
        for variant in VARIANTS:
            for seed in range(10):
                depth, programs = SCENARIOS[seed % len(SCENARIOS)]
                assert controlled_run(p, variant, depth, programs, seed, cas_release=False).mismatch is None


def test_the_exported_conformance_traces_replay_on_the_c_port(tmp_path: Path) -> None:
    traces = pytest.importorskip("nbbs.conform.traces", reason="nbbs trace export (the conform branch)")
    # The sequential ones: export may add the controlled mode's schedules (the next test's).
    files = [f for f in traces.export(tmp_path) if '"op":"spawn"' not in f.read_text()]
    assert files
    done = subprocess.run(
        [str(build("traces")), *map(str, files)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout
    assert "(0 skipped" in done.stdout


def test_the_exported_schedule_traces_replay_on_the_c_port(tmp_path: Path) -> None:
    controlled = pytest.importorskip(
        "nbbs.conform.controlled", reason="schedule traces (the controlled branch)"
    )
    files = controlled.export_schedules(tmp_path)
    exe = build("traces", controlled=True, defects=_release_flags())
    done = subprocess.run([str(exe), *map(str, files)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
    # The counterexamples of the variants the port implements replay: reference-a and -b at least.
    assert sum("reference" in f.name for f in files) >= 2


def test_the_library_keeps_its_words_in_caller_memory_shared_by_two_handles() -> None:
    lib = ctypes.CDLL(str(build("lib")))
    depth = 4
    lib.nbbs_words_bytes.restype = ctypes.c_size_t
    size = lib.nbbs_words_bytes(depth)
    assert size == 8 * (2 << depth)
    words = (ctypes.c_uint64 * (size // 8))(*([0xDEAD] * (size // 8)))
    handle = (ctypes.c_uint8 * 256)()  # room for an nbbs_t
    other = (ctypes.c_uint8 * 256)()
    lib.nbbs_init.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_uint64,
        ctypes.c_uint64,
    ]
    lib.nbbs_init.argtypes += [ctypes.c_int, ctypes.c_int]
    lib.nbbs_attach.argtypes = lib.nbbs_init.argtypes
    lib.nbbs_alloc.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.POINTER(ctypes.c_uint64),
    ]
    lib.nbbs_free.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int64]
    assert lib.nbbs_init(handle, words, depth, 4096, 1 << 20, -1, 0) == 0
    assert list(words) == [0] * (size // 8)  # init zeroes the caller's words
    assert lib.nbbs_attach(other, words, depth, 4096, 1 << 20, -1, 0) == 0
    addr = ctypes.c_uint64()
    no_hint = -(1 << 63)
    assert lib.nbbs_alloc(handle, 2, no_hint, ctypes.byref(addr)) == 0 and addr.value == 1 << 20
    heap = NBBS(depth, start=1 << 20)
    heap.alloc(2)
    assert tuple(words) == heap.words()
    assert lib.nbbs_free(other, addr.value, 2) == 0  # freed through the other handle
    assert lib.nbbs_free(handle, addr.value, 2) == 8  # NBBS_E_DOUBLE_FREE
    assert lib.nbbs_init(handle, words, 29, 4096, 0, -1, 0) == 2  # NBBS_E_CONFIGURATION
    assert list(words) == [0] * (size // 8)
