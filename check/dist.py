"""The model checker on a Dask cluster (``nbbs check --engine dist``): the same search, one slice per worker.

``check(cfg, workers=2)`` starts a local cluster of 2 worker processes and runs on it;
``check(cfg, workers="tcp://host:8786")`` uses the cluster whose scheduler listens there; an
existing ``distributed.Client`` may be passed as ``client=``. The states, transitions,
verdicts of (a)-(d) and the lengths of the counterexamples are ``modelcheck.check``'s (its
successor function and property checks run on the workers, unchanged; ``_dist`` says how the
search is split)::

    r = check(Config(2, 2), workers=2)     # the model checker's Result
    r = check(Config(2, 2, variant="reference"), client=client)

``swarm(cfg, K, client)`` runs SPIN's swarm (``spin.swarm``) with its K searches as tasks on the
cluster. ``available()`` says whether Dask's ``distributed`` is installed (``INSTALL_HINT``
says how otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbbs.check._dist import DEFECTS, DistChecker, DistError, local_client, owner
from nbbs.check._mc import Config, Result

INSTALL_HINT = "the distributed engine needs Dask: pip install -e '.[dist]' (distributed>=2026.8)"


def available() -> bool:
    """Dask's ``distributed`` is importable."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def connect(workers: int | str) -> Any:
    """A ``distributed.Client``: of a new local cluster of ``workers`` processes, or of the
    scheduler at address ``workers`` (``tcp://host:8786``). Raises ``DistError`` without Dask."""
    if not available():
        raise DistError(INSTALL_HINT)
    if isinstance(workers, int):
        if workers < 1:
            raise DistError(f"a cluster needs at least one worker, not {workers}")
        return local_client(workers)
    from distributed import Client

    return Client(workers)  # type: ignore[no-untyped-call]


def check(
    cfg: Config,
    progress: Callable[[Result, int], None] | None = None,
    *,
    workers: int | str = 2,
    client: Any = None,
    defect: str | None = None,
) -> Result:
    """Explore every state of ``cfg`` on a cluster and check its properties.

    ``client``: a ``distributed.Client`` to use (left open); otherwise one is made from
    ``workers`` (``connect``) and closed at the end. ``progress(result, queue)`` is called after
    each BFS level (``queue``: the successors sent to the next level, before deduplication).
    ``defect``: a deliberate engine bug of ``DEFECTS`` (the tests show each caught).
    """
    own = client is None
    if own:
        client = connect(workers)
    try:
        return DistChecker(cfg, client, progress, defect=defect).run()
    finally:
        if own:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


__all__ = ["DEFECTS", "INSTALL_HINT", "DistChecker", "DistError", "available", "check", "connect", "owner"]
