"""The service's runner of model activations: a background thread that claims
activations recorded in the database and rescores their workspaces
(leadscore._store.activation).

Every server process runs one. An activation is claimed with a lease, so
with several processes each activation is worked on by one at a time, and one
whose process died is resumed by another once the lease is over. The route
that activates a model wakes its own process's runner; the others look every
`POLL_SECONDS`.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from .._store.activation import claim, fail, release, rescore

POLL_SECONDS = 2.0

# The collector's thresholds while an activation runs (see rare_collections).
RARE_THRESHOLDS = (100_000, 50, 100)

_log = logging.getLogger("leadscore.activations")


class ActivationRunner:
    def __init__(self, database: sa.Engine, *, poll: float = POLL_SECONDS) -> None:
        self._database = database
        self._poll = poll
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leadscore-activations", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for work now (a model was just activated)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._work()
            except Exception:  # the database is away: try again at the next poll
                _log.exception("the activation runner could not reach the database")
            self._wake.wait(self._poll)

    def _work(self) -> None:
        with self._database.connect() as conn:
            while not self._stop.is_set():
                found = claim(conn)
                if found is None:
                    return
                try:
                    with rare_collections():
                        ended = rescore(conn, found, stopping=self._stop.is_set)
                except Exception as error:
                    _log.exception("activation %s failed", found.id)
                    fail(conn, found, f"{type(error).__name__}: {error}")
                    continue
                if ended.status == "running":  # stopping: let another process resume it
                    release(conn, ended)
                else:
                    _log.info(
                        "activation %s of version %s %s: %s rescored",
                        ended.id,
                        ended.version,
                        ended.status,
                        ended.rescored,
                    )


@contextmanager
def rare_collections() -> Iterator[None]:
    """An activation builds hundreds of thousands of small objects that hold no
    reference cycles (the batch engine's rows, a state and its dicts per
    owner, the rows written); with the default thresholds the cyclic
    collector scans them again and again, eleven full collections for a
    million events: 1.0-1.7 s of the 10-12 s of CPU the activation took
    (measured on the bench's workspace, docs/benchmarks.md). The runner asks
    for rare collections while it rescores, as the command line does while
    it scores (_cli.py). The thresholds are the process's: meanwhile the
    server's requests too collect their young objects every 100,000
    allocations instead of 700 (a few MB held a little longer, pauses of a
    few ms instead of many shorter ones). Nothing is frozen here:
    the server froze its start-up objects (server.py), and an unfreeze would
    hand those back to the collector."""
    previous = gc.get_threshold()
    gc.set_threshold(*RARE_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
