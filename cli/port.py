"""``nbbs port build``: compile the C port (ports/c/) and print the path of what was built."""

from __future__ import annotations

import sys

import click


@click.group()
def port() -> None:
    """Native ports of NBBS (ports/c/README.md)."""


@port.command("build")
@click.option("--controlled", is_flag=True, help="The controlled-mode shim (PORTING.md: spawn, step).")
@click.option(
    "--defect",
    "defects",
    multiple=True,
    metavar="NAME",
    help="Build with a defect flag (repeatable): SET_NOT_CLEAR, WRONG_SHIFT, NO_CAS_RETRY, STORE_CLIMB, "
    "NO_ARG_CHECKS, NARROW_INDEX, IGNORE_START, STORE_RELEASE.",
)
@click.option(
    "--lib", "kind", flag_value="lib", help="The shared library libnbbs.so instead of the executable."
)
@click.option("--traces", "kind", flag_value="traces", help="The trace replayer (test_traces) instead.")
@click.option(
    "--ext", "kind", flag_value="ext", help='The CPython extension behind NBBS(..., engine="c") instead.'
)
@click.option(
    "--mcvec",
    "kind",
    flag_value="mcvec",
    help="The model checker's vec engine kernel (libnbbs_mcvec.so, ports/c/mc_vec.c) instead.",
)
@click.option("--count-atomics", is_flag=True, help="Per-thread counters of word accesses (benchmarks).")
def build_cmd(controlled: bool, defects: tuple[str, ...], kind: str | None, count_atomics: bool) -> None:
    """Compile with $CC (else cc), cached under ports/c/build/; print the path.

    Without --lib or --traces it builds the protocol executable, which speaks PORTING.md's
    line protocol on stdin/stdout (`nbbs conform -- PATH`).
    """
    from nbbs.ports import PortBuildError, build

    try:
        path = build(
            kind if kind in ("lib", "traces", "ext", "mcvec") else "port",  # type: ignore[arg-type]
            controlled=controlled,
            defects=[d.upper() for d in defects],
            count_atomics=count_atomics,
        )
    except PortBuildError as e:
        click.echo(f"nbbs port build: {e}", err=True)
        sys.exit(2)
    click.echo(str(path))
