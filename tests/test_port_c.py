"""The C port's own tests (ports/c/): builds, transitions against bits.py, protocol errors, racing
frees, the trace replayer, the library over caller memory.

Everything that checks the port's behaviour as an allocator (the differential machine, stress
histories, the explorer's strategies over controlled mode, the kept counterexamples, the defect
flags) runs through ``nbbs conform``, the porter's harness: tests/test_port_c_conform.py.
"""

from __future__ import annotations

import ctypes
import random
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import pytest

from nbbs.conform.protocol import Port
from nbbs.impl import NBBS
from nbbs.model import bits
from nbbs.model.steps import Kind, Machine
from nbbs.ports import DEFECTS, PortBuildError, build

VARIANTS = ("counted", "reference", "top_down", "top_down_node")
"""The variants the C port implements, in the order of its ``nbbs_variant`` numbers."""
TRACED = ("counted", "reference", "top_down_node")
"""The variants with conformance traces in tests/data/traces/."""


def _port(**kw: object) -> Iterator[Port]:
    p = Port([str(build("port", **kw))])  # type: ignore[arg-type]
    assert p.name == "nbbs-c", p.transcript
    yield p
    assert p.close() == 0, p.transcript


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
    pytest.param("mcvec", False, (), False, id="mcvec"),
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
    "climb_stops": 12,
    "top_down": 13,
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
    if name in ("climb", "unmark", "buddy_keeps_busy", "unmark_applies", "climb_stops"):
        return int(getattr(t, name)(w, s)) & mask
    if name == "mark_mask":
        return t.mark_mask(s)
    if name in ("marks", "top_down"):
        return int(getattr(t, name))
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


def test_the_transition_check_covers_every_variant_s_climb_stops_and_unmark_stops() -> None:
    # top_down and top_down_node differ from counted only in these two predicates: a C port
    # that took one for the other (a side's claim vs any claim) must fail the check.
    lib = ctypes.CDLL(str(build("lib")))
    f = lib.nbbs_transition
    f.restype = ctypes.c_uint64
    f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_uint64, ctypes.c_uint]
    one_l = 1 << (bits.COUNT_SHIFT + bits.COUNT_BITS)  # a claim on the left side only
    node = VARIANTS.index("top_down_node")
    side = VARIANTS.index("top_down")
    assert f(node, _WHICH["climb_stops"], one_l, 0) == 1 and f(side, _WHICH["climb_stops"], one_l, 0) == 0
    assert f(node, _WHICH["unmark_stops"], one_l, 0) == 1 and f(side, _WHICH["unmark_stops"], one_l, 0) == 0
    assert [f(v, _WHICH["top_down"], 0, 0) for v in range(len(VARIANTS))] == [0, 0, 1, 1]
    assert f(len(VARIANTS), _WHICH["climb"], 0, 0) == (1 << 64) - 1  # no such variant


# -- sequential protocol sessions against nbbs.impl.NBBS ------------------------------------------------


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
        assert port.request(line).startswith("error ConfigurationError "), line
    assert port.request("arena 3 4096 0 - corrected").startswith("error Unsupported ")
    assert port.request("alloc 0").startswith("error ProtocolError ")  # no arena yet
    assert port.request("hello 2").startswith("error ProtocolError ")
    assert port.request("arena 3 4096 x - counted").startswith("error ProtocolError ")
    assert port.request("spawn 0 alloc 0").startswith("error ")
    assert port.request("arena 28 4096 0 - counted") == "ok"  # 4 GiB of words, mapped lazily
    assert port.request("alloc 0") == "0"


def test_controlled_mode_refuses_a_step_without_a_pending_access(cport: Port) -> None:
    assert cport.request("arena 2 1 0 - counted") == "ok"
    assert cport.request("step 0").startswith("error ProtocolError ")
    assert cport.request("spawn 0 alloc 0") == "pending 0 load 4"
    assert cport.request("spawn 0 alloc 0").startswith("error ProtocolError thread 0 is in flight")
    assert cport.request("arena 2 1 0 - counted").startswith("error ProtocolError ")


# -- the trace replayer ---------------------------------------------------------------------------------


def _replay(exe: Path, tmp_path: Path, name: str, lines: list[str]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=60, check=False)


TRACES = Path(__file__).parent / "data" / "traces"
SCHEDULES = Path(__file__).parent / "data" / "schedules"


@pytest.mark.parametrize("variant", TRACED)
def test_the_trace_reader_passes_a_good_trace_and_fails_a_doctored_one(variant: str, tmp_path: Path) -> None:
    exe = build("traces")
    lines = (TRACES / f"{variant}-d3-m3.jsonl").read_text().splitlines()
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


def test_the_trace_reader_fails_a_doctored_schedule(tmp_path: Path) -> None:
    exe = build("traces", controlled=True, defects=_release_flags())
    trace = (SCHEDULES / "schedule-short-1.jsonl").read_text().splitlines()
    k = next(i for i, x in enumerate(trace) if "did" in x)
    doctored = [*trace[:k], trace[k].replace("did", "did 9", 1), *trace[k + 1 :]]
    done = _replay(exe, tmp_path, "bad.jsonl", doctored)
    assert done.returncode == 1 and "sent 'step" in done.stdout


def test_of_two_racing_frees_of_one_block_exactly_one_succeeds(cport: Port) -> None:
    assert cport.request("arena 2 1 0 - counted") == "ok"
    assert cport.request("alloc 0") == "0"
    # Both check the block (loads 1, 2, 4 from the largest order down) before either releases.
    assert cport.request("spawn 0 free 0") == "pending 0 load 1"
    assert cport.request("spawn 1 free 0") == "pending 1 load 1"
    for t in (0, 1):
        cport.request_lines(f"step {t}", 2)
        cport.request_lines(f"step {t}", 2)
        assert cport.request_lines(f"step {t}", 2)[1] == f"pending {t} cas 4"
    assert cport.request_lines("step 0", 2) == ["did 0 cas 4 19 0", "pending 0 load 2"]
    assert cport.request_lines("step 1", 2) == [
        "did 1 cas_fail 4 0 0",
        "done 1 error DoubleFreeError " + DOUBLE_FREE_MSG,
    ]
    while (got := cport.request_lines("step 0", 2))[1].startswith("pending"):
        pass
    assert got[1] == "done 0 ok"
    assert cport.request("words") == "words " + " ".join(["0"] * 8)


DOUBLE_FREE_MSG = "no live block starts at 0: double free (or never allocated)"


def test_with_a_store_release_both_racing_frees_succeed() -> None:
    for p in _port(controlled=True, defects=["STORE_RELEASE"]):
        assert p.request("arena 2 1 0 - counted") == "ok"
        assert p.request("alloc 0") == "0"
        p.request("spawn 0 free 0"), p.request("spawn 1 free 0")
        for t in (0, 1):
            for _ in range(3):
                p.request_lines(f"step {t}", 2)
        assert p.request_lines("step 0", 2)[0] == "did 0 store 4 19 0"
        assert p.request_lines("step 1", 2)[0] == "did 1 store 4 0 0"  # the second free is not refused
        results = set()
        for t in (0, 1):
            while (got := p.request_lines(f"step {t}", 2))[1].startswith("pending"):
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


def test_the_exported_conformance_traces_replay_on_the_c_port(tmp_path: Path) -> None:
    from nbbs.conform import traces

    # The sequential ones: export may add the controlled mode's schedules (the next test's).
    files = [f for f in traces.export(tmp_path) if '"op":"spawn"' not in f.read_text()]
    assert files
    done = subprocess.run(
        [str(build("traces")), *map(str, files)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout
    assert "(0 skipped" in done.stdout


def test_the_exported_schedule_traces_replay_on_the_c_port(tmp_path: Path) -> None:
    from nbbs.conform import controlled

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


def test_every_variant_the_model_knows_is_unsupported_not_unknown_to_the_c_port(port: Port) -> None:
    # The C port lists the model's variant names it does not implement by hand: a new variant
    # in bits.VARIANTS must be added there (it is Unsupported, not a ConfigurationError).
    for name in bits.VARIANTS:
        reply = port.request(f"arena 3 4096 0 - {name}")
        assert reply == "ok" if name in VARIANTS else reply.startswith("error Unsupported "), (name, reply)
