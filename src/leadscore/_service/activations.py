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

import logging
import threading

import sqlalchemy as sa

from .._collector import rare_collections
from .._store.activation import claim, fail, release, rescore

POLL_SECONDS = 2.0

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
