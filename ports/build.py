"""Build the C port: the protocol executable, the library or the trace replayer, cached.

``build(kind, controlled=..., defects=..., count_atomics=...)`` compiles the sources of
``ports/c/`` with ``$CC`` (else ``cc``) and the project's flags, and returns the path of the
result. The result is cached under ``ports/c/build/`` (or ``$NBBS_PORT_BUILD_DIR``) by a hash
of the compiler (and its ``--version``), the flags and every source, so a second call is a
lookup. Two processes may build at once: each compiles to a name of its own and moves it into
place with ``os.replace``, which is atomic, so a reader sees no file or a whole one.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from nbbs.impl.errors import NBBSError

SOURCE_DIR = Path(__file__).resolve().parent / "c"
"""The C sources (package data of ``nbbs.ports``)."""

FLAGS = ("-O2", "-std=c11", "-pthread", "-Wall", "-Wextra", "-Werror")
"""Every build compiles warning-free with these."""

Kind = Literal["port", "lib", "traces", "ext", "bench", "mcvec"]

_SOURCES: dict[str, tuple[str, ...]] = {
    "port": ("port_main.c", "port_proto.c", "nbbs.c"),
    "traces": ("test_traces.c", "port_proto.c", "nbbs.c"),
    "lib": ("nbbs.c",),
    "ext": ("nbbs_pyext.c", "nbbs.c"),
    "bench": ("bench.c", "nbbs.c"),
    "mcvec": ("mc_vec.c",),
}

DEFECTS: dict[str, str] = {
    "SET_NOT_CLEAR": "unmark sets the bits it should clear (counted: ORs the claim in): the subtree leaks",
    "WRONG_SHIFT": "free's node lookup shifts the page by the level instead of the order",
    "NO_CAS_RETRY": "a climb whose CAS fails goes on without retrying: its claim is not counted",
    "STORE_CLIMB": "the climb writes its word with a plain store instead of a CAS: racing claims are lost",
    "NO_ARG_CHECKS": "free checks nothing: a double, foreign, interior or wrong-order free corrupts the tree",
    "NARROW_INDEX": "the scan keeps the node index in 16 bits: from depth 16 on it wraps to inner nodes",
    "IGNORE_START": "alloc's address forgets start: with start != 0 it hands out addresses outside the arena",
    "STORE_RELEASE": "counted releases with a store, not a CAS: two racing frees of a block both succeed",
    "KEEP_SURPLUS": "top_down: a descent that joins a claimed side keeps its surplus claim: blocks are lost",
}
"""The defect flags (``-DNBBS_DEFECT_<NAME>``) the harness must catch, each with what it breaks."""


class PortBuildError(NBBSError):
    """The port could not be built: no compiler, an unknown kind or defect, or a compile error."""


def build_dir() -> Path:
    """Where built files are cached: ``$NBBS_PORT_BUILD_DIR``, else ``ports/c/build/``."""
    return Path(os.environ.get("NBBS_PORT_BUILD_DIR") or SOURCE_DIR / "build")


def compiler() -> list[str]:
    """The compiler command: ``$CC`` (split like a shell word list), else ``cc``."""
    cc = shlex.split(os.environ.get("CC", "")) or ["cc"]
    if shutil.which(cc[0]) is None:
        where = "$CC" if os.environ.get("CC") else "cc"
        raise PortBuildError(
            f"no C compiler: {where} = {cc[0]!r} is not on PATH; install one (Debian: apt-get install gcc) "
            "or set CC to a C11 compiler"
        )
    return cc


@functools.cache
def _compiler_version(cc: tuple[str, ...]) -> str:
    """What ``cc --version`` says (part of the cache key: a new compiler rebuilds)."""
    done = subprocess.run([*cc, "--version"], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def build(
    kind: Kind = "port",
    *,
    controlled: bool = False,
    defects: Iterable[str] = (),
    count_atomics: bool = False,
) -> Path:
    """Compile the C port and return the path of the result (cached by sources and flags).

    ``kind``: ``"port"`` the protocol executable (PORTING.md), ``"lib"`` the shared library
    ``libnbbs.so``, ``"traces"`` the trace replayer, ``"ext"`` the CPython extension module
    ``_nbbs_engine`` behind ``NBBS(..., engine="c")`` (built against this interpreter's
    headers; ``nbbs.impl.native`` loads it), ``"bench"`` the native benchmark
    (``ports/c/bench.c``, driven by ``bench/engine_bench.py``), ``"mcvec"`` the vectorized
    model checker's hot loops ``libnbbs_mcvec.so`` (``ports/c/mc_vec.c``, loaded by
    ``nbbs.check._mc_vec``). ``controlled`` builds the controlled-mode
    shim, ``defects`` names flags of ``DEFECTS``, ``count_atomics`` the per-thread counters.
    """
    if kind not in _SOURCES:
        raise PortBuildError(f"kind must be one of {sorted(_SOURCES)}, got {kind!r}")
    chosen = sorted(set(defects))
    unknown = [d for d in chosen if d not in DEFECTS]
    if unknown:
        raise PortBuildError(f"unknown defect {unknown[0]!r}; the defects are {', '.join(DEFECTS)}")
    cc = compiler()
    flags = list(FLAGS)
    if kind in ("lib", "ext", "mcvec"):
        flags += ["-shared", "-fPIC"]
    if kind == "ext":
        include = sysconfig.get_paths()["include"]
        if not (Path(include) / "Python.h").exists():
            raise PortBuildError(
                f"no Python.h in {include}: the C engine needs this interpreter's headers "
                "(Debian: apt-get install python3-dev)"
            )
        flags += [f"-I{include}", f"-DNBBS_PYTHON_ABI={sysconfig.get_config_var('SOABI')}"]
    if controlled:
        flags.append("-DNBBS_CONTROLLED")
    if count_atomics:
        flags.append("-DNBBS_COUNT_ATOMICS")
    flags += [f"-DNBBS_DEFECT_{d}" for d in chosen]

    digest = hashlib.sha256("\0".join([*cc, _compiler_version(tuple(cc)), *flags, kind]).encode())
    for src in sorted(SOURCE_DIR.glob("*.[ch]")):
        digest.update(src.name.encode() + b"\0" + src.read_bytes())
    name = {"lib": "libnbbs", "ext": "_nbbs_engine", "mcvec": "libnbbs_mcvec"}.get(kind, f"nbbs-{kind}")
    tags = (["controlled"] if controlled else []) + (["count"] if count_atomics else []) + chosen
    stem = "-".join([name, *[t.lower() for t in tags], digest.hexdigest()[:16]])
    out = build_dir() / (stem + {"lib": ".so", "ext": ".so", "mcvec": ".so"}.get(kind, ""))
    if out.exists():
        return out

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        cmd = [*cc, *flags, "-o", str(tmp), *(str(SOURCE_DIR / s) for s in _SOURCES[kind])]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PortBuildError(f"compiling the C port failed ({shlex.join(cmd)}):\n{done.stderr.strip()}")
        tmp.chmod(0o755)  # mkstemp made it 0600; a shared cache is read by other users' runs
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
