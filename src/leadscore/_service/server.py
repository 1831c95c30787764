"""Running the service: uvicorn, in one process or several on one port, and
the outbox worker beside them.

On PostgreSQL, `leadscore serve` carries out triggers' actions (when
`outbox_worker` is on) in a child process rather than in a thread of the
server: a round of the worker (building webhook payloads, carrying out a
batch of local actions) is Python work that held the server's interpreter
while requests waited for it. With the worker in the server, single events
sent at a steady 200 a second right after a burst of batches took 21-90 ms
at their 99th percentile; with the same worker in its own process, 7-22 ms
(docs/benchmarks.md). One child serves every server process of `--workers
N`, which had one worker thread each.

On SQLite the worker stays a thread of each server process: SQLite has one
writer at a time, which the threads of one process take in turn, each woken
the moment it is free (database.py's `_Serialized`), while a writer in
another process waits in SQLite's busy handler, which sleeps and polls. The
child made the single events' 99th percentile worse there (10-27 ms against
5-8). An app made by `create_app` inside another program (tests, a host
application) keeps the worker in a thread too.

The child stops when the server stops (SIGTERM, and within a second when the
server dies without a word, SIGKILL included: it watches its parent), after
its round in progress, as `leadscore worker` does; should it end while the
server runs, the server starts another. Nothing is lost either
way: the outbox is in the database, and a webhook sent but not recorded is
sent again with the same idempotency key.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from .._settings import Settings
from . import logs
from .app import create_app
from .signals import stop_on_signals

_log = logging.getLogger("leadscore.serve")

# How often the child checks that the server is still there (seconds).
_PARENT_CHECK_SECONDS = 1.0


def from_environment() -> FastAPI:
    """The app of a worker process: its settings come from the environment,
    where `run` put the parent's."""
    logs.configure()
    return create_app(Settings(), own_process=True)


def run(settings: Settings) -> None:
    """Serve until stopped. Several workers are separate processes (started by
    uvicorn, sharing the listening socket); each builds its app from the
    settings passed down through the environment."""
    logs.configure()
    _log.info(
        "leadscore serving on http://%s:%s with %s worker(s)",
        settings.host,
        settings.port,
        settings.workers,
    )
    with _outbox_beside(settings) as serving:
        _serve(serving)


def _serve(settings: Settings) -> None:
    if settings.workers == 1:
        uvicorn.run(
            create_app(settings, own_process=True),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=None,  # logs.configure's JSON lines
            access_log=False,  # logs.AccessLog writes one line per request
            # The client's address and scheme from these proxies' headers
            # (uvicorn's ProxyHeadersMiddleware): what sign-in limits count.
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
        return
    for name, value in settings.model_dump(exclude_none=True).items():
        os.environ[f"LEADSCORE_{name.upper()}"] = str(value)
    uvicorn.run(
        "leadscore._service.server:from_environment",
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


@contextmanager
def _outbox_beside(settings: Settings) -> Iterator[Settings]:
    """The outbox worker in a child process for the block, when the settings
    ask for one on PostgreSQL (see the module's docstring); the settings for
    the server processes (without a worker of their own then)."""
    if not settings.outbox_worker or not _separate_writers(settings):
        yield settings
        return
    child = _OutboxChild(settings)
    child.start()
    # uvicorn stops on SIGTERM, then sends it again to the process with the
    # handler it found: the default one would end the process before this
    # block's end stopped the child. This one ends it by SystemExit, through
    # the block, with status 0: stopped as asked, after a clean shutdown.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield settings.model_copy(update={"outbox_worker": False})
    finally:
        signal.signal(signal.SIGTERM, previous)
        child.stop()


class _OutboxChild:
    """The worker's process, started again should it end while the server
    runs (killed by hand, by the kernel out of memory): a thread of the
    server's would have gone on, so actions must not stop silently here."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stopping = threading.Event()
        self._process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="leadscore-outbox-watch")

    def _spawn(self) -> multiprocessing.process.BaseProcess:
        # spawn, not fork: a fresh interpreter, whatever threads this one has.
        return multiprocessing.get_context("spawn").Process(
            target=_outbox_process,
            args=(self._settings.model_dump(), os.getpid()),
            name="leadscore-outbox",
        )

    def start(self) -> None:
        self._process.start()
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(_PARENT_CHECK_SECONDS):
            # Status 0: it stopped as asked (a Ctrl-C reaches it with the
            # server, which is stopping too), not to be started again.
            if not self._process.is_alive() and self._process.exitcode != 0:
                _log.warning(
                    "the outbox worker (process %s) ended with status %s; starting another",
                    self._process.pid,
                    self._process.exitcode,
                )
                self._process = self._spawn()
                self._process.start()

    def stop(self) -> None:
        self._stopping.set()
        self._watcher.join()
        child = self._process
        child.terminate()  # SIGTERM: it finishes its round, as `leadscore worker` does
        # A round ends within the webhooks' timeout; past that, it is stuck.
        child.join(timeout=self._settings.webhook_timeout_seconds + 10)
        if child.is_alive():
            _log.warning("the outbox worker did not stop in time; killed")
            child.kill()
            child.join()


def _separate_writers(settings: Settings) -> bool:
    """Whether writers in separate processes wait for each other without
    polling: PostgreSQL's, not SQLite's."""
    return sa.make_url(settings.database()).get_backend_name() == "postgresql"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _outbox_process(values: dict[str, Any], parent: int) -> None:
    """The child: an outbox worker until SIGTERM or SIGINT, or until its
    parent (the server) is gone."""
    stopped = stop_on_signals()
    logs.configure()
    from .._store.database import open_database
    from .worker import OutboxWorker

    def gone() -> bool:
        # Killed without a word (SIGKILL, a crash), the server cannot stop
        # us: when it is gone, this process has a new parent.
        if os.getppid() == parent:
            return False
        logging.getLogger("leadscore.outbox").warning(
            "the server (process %s) is gone; the outbox worker stops", parent
        )
        return True

    settings = Settings(**values)
    database = open_database(settings.database())
    try:
        OutboxWorker(database, settings).run_until(stopped, gone=gone)
    finally:
        database.dispose()
