"""Group commit: the events of concurrent requests stored and scored in one
transaction.

Each commit waits for the disk (an fsync on SQLite, the WAL flush on
PostgreSQL), a few milliseconds that one event at a time would pay again and
again: at a couple of hundred requests a second the commits alone would keep
the database's write lock busy, and requests would queue behind each other.
So ingestion routes hand their events to the process's `Committer`, whose
thread takes everything waiting, stores it with one `ingest` call per
workspace (one transaction), and answers each request with its own
outcomes. A request alone is stored at once, with no delay added; requests
that arrive while a commit runs share the next one. An answer is still sent
only after its events are committed, and each event is still decided as if
it came alone (ingest decides the events of a batch one by one, in order).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .._events import Event
from .._store.ingest import EventOutcome, ingest
from .._store.workspaces import ModelVersion

# Most events one transaction takes from the queue: past this, the requests
# left wait for the next round rather than make this one longer.
MAX_EVENTS = 5_000


@dataclass(slots=True)
class _Job:
    workspace: str
    model: ModelVersion
    events: Sequence[Event | Mapping[str, Any]]
    done: Future[list[EventOutcome]] = field(default_factory=Future)


class Committer:
    def __init__(self, database: sa.Engine, *, max_events: int = MAX_EVENTS) -> None:
        self._database = database
        self._max_events = max_events
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="leadscore-committer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)

    def ingest(
        self, *, workspace: str, model: ModelVersion, events: Sequence[Event | Mapping[str, Any]]
    ) -> list[EventOutcome]:
        """As the store's `ingest`: committed when it returns."""
        if not self._thread.is_alive():
            raise RuntimeError("the committer is not running")
        job = _Job(workspace, model, events)
        self._queue.put(job)
        return job.done.result()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            jobs, count = [first], len(first.events)
            while count < self._max_events:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                jobs.append(more)
                count += len(more.events)
            groups: dict[tuple[str, int], list[_Job]] = {}
            for job in jobs:
                groups.setdefault((job.workspace, job.model.version), []).append(job)
            for group in groups.values():
                self._commit(group)
            # A waiting request must never wait forever, whatever went wrong above.
            for job in jobs:
                if not job.done.done():
                    job.done.set_exception(RuntimeError("the committer lost this request"))

    def _commit(self, group: list[_Job]) -> None:
        try:
            with self._database.connect() as conn:
                outcomes = ingest(
                    conn,
                    workspace=group[0].workspace,
                    model=group[0].model,
                    events=[event for job in group for event in job.events],
                )
        except BaseException as error:  # each request answers it (a 500, or the store's error)
            for job in group:
                job.done.set_exception(error)
            return
        start = 0
        for job in group:
            job.done.set_result(outcomes[start : start + len(job.events)])
            start += len(job.events)
