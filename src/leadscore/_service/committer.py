"""Group commit: the events of concurrent requests stored and scored in one
transaction.

Each commit waits for the disk (an fsync on SQLite, the WAL flush on
PostgreSQL), a few milliseconds that one event at a time would pay again and
again: at a couple of hundred requests a second the commits alone would keep
the database's write lock busy, and requests would queue behind each other.
So ingestion routes hand their events to the process's `Committer`. A
request that finds nobody committing commits at once, in its own thread,
with no delay added; requests that arrive while a commit runs wait, and when
it ends the first of them (the leader) takes everything waiting, stores it
with one `ingest` call per workspace (one transaction), answers each request
with its own outcomes, and hands the lead to whoever arrived meanwhile. An
answer is still sent only after its events are committed, and each event is
still decided as if it came alone (ingest decides the events of a batch one
by one, in order).

Nor does a request's failure cost the others of its transaction: when the
commit of a group of requests fails (an event the database fails on rather
than refuses, an exception of the engine's), its requests are committed
again one at a time, in the order they came, each in a transaction of its
own, so that only a request whose own commit fails gets an error (the
routes' 500, or the store's error) and the others their outcomes. (An event
the database refuses, a constraint, is rejected alone by ingest itself and
fails no transaction.)

The leader is a request's own thread, not a thread of the committer's: a
request alone is stored without a hand-off to another thread and back (a
queue, a future, and the GIL changing hands twice per call).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence
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
    # Set with an answer (outcomes or error), or without one to take the lead.
    woken: threading.Event = field(default_factory=threading.Event)
    outcomes: list[EventOutcome] | None = None
    error: BaseException | None = None


class Committer:
    def __init__(self, database: sa.Engine, *, max_events: int = MAX_EVENTS) -> None:
        self._database = database
        self._max_events = max_events
        self._lock = threading.Lock()
        self._waiting: deque[_Job] = deque()
        self._leading = False  # a request is committing
        self._running = False

    def start(self) -> None:
        self._running = True

    def stop(self) -> None:
        self._running = False

    def ingest(
        self, *, workspace: str, model: ModelVersion, events: Sequence[Event | Mapping[str, Any]]
    ) -> list[EventOutcome]:
        """As the store's `ingest`: committed when it returns."""
        if not self._running:
            raise RuntimeError("the committer is not running")
        job = _Job(workspace, model, events)
        with self._lock:
            self._waiting.append(job)
            lead = not self._leading
            self._leading = True
        if not lead:
            job.woken.wait()
        if job.outcomes is None and job.error is None:  # not answered: woken to lead
            self._lead()
        if job.error is not None:
            raise job.error
        assert job.outcomes is not None
        return job.outcomes

    def _lead(self) -> None:
        """Commit what is waiting (this request's job first), answer it, and
        pass the lead on to the first request still waiting, if any."""
        jobs: list[_Job] = []
        try:
            with self._lock:
                count = 0
                while self._waiting and (not jobs or count < self._max_events):
                    jobs.append(self._waiting.popleft())
                    count += len(jobs[-1].events)
            groups: dict[tuple[str, int], list[_Job]] = {}
            for job in jobs:
                groups.setdefault((job.workspace, job.model.version), []).append(job)
            for group in groups.values():
                self._commit(group)
        finally:
            # A waiting request must never wait forever, whatever went wrong above.
            for job in jobs:
                if job.outcomes is None and job.error is None:
                    job.error = RuntimeError("the committer lost this request")
                job.woken.set()
            with self._lock:
                if self._waiting:
                    self._waiting[0].woken.set()
                else:
                    self._leading = False

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
            if len(group) > 1 and isinstance(error, Exception):
                # One request's events may be all that made the shared
                # transaction fail (it rolled back): commit each request
                # alone, so that the others are not answered with its error.
                # In the order they came, as the shared transaction decided
                # them: a later request's copy of an earlier one's event id
                # is still the duplicate (or, if the earlier request fails,
                # the copy stored). Each once, and a group of one not at all:
                # an error that is no request's own (the database is down)
                # fails every retry too, and each request is answered with
                # its own attempt's error. (Events that ingest's one-by-one
                # fallback had committed before the failure are answered as
                # duplicates by the retry: stored, not lost.)
                for job in group:
                    self._commit([job])
                return
            for job in group:
                job.error = error
            return
        start = 0
        for job in group:
            job.outcomes = outcomes[start : start + len(job.events)]
            start += len(job.events)
