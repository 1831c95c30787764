"""The outbox worker: carries out the actions of triggers' firings.

It runs in a thread of `leadscore serve` (started and stopped by the app's
lifespan) and in `leadscore worker` processes; any number of them can work
on one database at once (the store's `outbox` module says how claims stay
apart). Each round carries out a batch of due local actions (assign,
add_tag, remove_tag: exactly once, in the transaction that marks them done),
then claims as many due webhooks as it delivers at a time
(`outbox_concurrency`) and delivers them, each with its idempotency key, so
that a receiver keeping the keys acts exactly once. When nothing is due it
sleeps `outbox_poll_seconds`.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import sqlalchemy as sa

from .._model import Model
from .._settings import Settings
from .._store import actions, contacts, outbox
from .._store.database import now, transaction
from .._store.outbox import Claimed
from . import webhooks
from .modelcache import ModelCache

log = logging.getLogger("leadscore.outbox")

_SECOND = 1_000_000  # the store's instants are microseconds


@dataclass(frozen=True, slots=True)
class Ready:
    """A webhook about to be sent."""

    row: Claimed
    body: bytes
    secret: str


@dataclass(frozen=True, slots=True)
class Attempted:
    """A webhook sent (or that could not be), and what came of it."""

    row: Claimed
    started: int
    finished: int
    answer: webhooks.Answer


class OutboxWorker:
    """One worker: `run_once` for a round, `start`/`stop` for a thread of rounds."""

    def __init__(
        self,
        database: sa.Engine,
        settings: Settings,
        *,
        models: ModelCache | None = None,
        name: str | None = None,
        local_batch: int = 100,
    ) -> None:
        self._database = database
        # Local actions carried out per transaction: each costs a few
        # statements, a commit (an fsync on SQLite) costs much more.
        self._local_batch = local_batch
        self._settings = settings
        self._models = models or ModelCache()
        # Unique among all workers ever: leases name their worker.
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._rng = random.Random()
        self._client = webhooks.client(
            timeout=settings.webhook_timeout_seconds, connections=settings.outbox_concurrency
        )
        self._pool = ThreadPoolExecutor(
            settings.outbox_concurrency, thread_name_prefix="leadscore-webhook"
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- rounds ------------------------------------------------------------------------

    def run_once(self) -> int:
        """Carry out what is due; how many actions were taken on."""
        settings = self._settings
        with self._database.connect() as conn:
            # Local actions first: a webhook of the same firing then shows
            # the owner and tags they give.
            local = outbox.carry_out_due(conn, now=now(), limit=self._local_batch)
            claimed = outbox.claim(
                conn,
                worker=self.name,
                now=now(),
                lease=int(settings.outbox_lease_seconds * _SECOND),
                # No more than can be delivered at once: every claimed
                # webhook starts at once, so a lease longer than the timeout
                # outlasts its call (a longer batch would wait in line while
                # its leases run out).
                limit=settings.outbox_concurrency,
            )
        if claimed:
            ready, failed = self._prepare(claimed)
            # No database connection is held during the calls: they may take
            # the whole timeout, and the pool's connections are the requests' too.
            self._record([*failed, *self._pool.map(self._send, ready)])
        return local + len(claimed)

    def drain(self, *, timeout: float = 60.0) -> None:
        """Run rounds until nothing is due now (retries scheduled later stay)."""
        deadline = time.monotonic() + timeout
        while self.run_once():
            if time.monotonic() > deadline:
                raise TimeoutError("the outbox did not drain in time")

    def _prepare(self, rows: list[Claimed]) -> tuple[list[Ready], list[Attempted]]:
        """In one transaction: where each row goes (the webhook its trigger
        has now, outbox.current_webhook), the body to send (made and kept at
        its first attempt) and the secret to sign it with; and the rows whose
        body could not be made, as failed attempts. Rows erased or taken over
        meanwhile are left out."""
        ready: list[Ready] = []
        failed: list[Attempted] = []
        active: dict[str, Model | None] = {}
        with self._database.connect() as conn, conn.begin():
            for claimed in rows:
                if claimed.workspace not in active:
                    active[claimed.workspace] = self._active(conn, claimed.workspace)
                row = self._aimed(conn, claimed, active[claimed.workspace])
                if row is None:  # erased, or another worker took over
                    continue
                body = row.payload
                if body is None:
                    try:
                        made = self._payload(conn, row)
                    except sa.exc.SQLAlchemyError:
                        raise  # the database's trouble: the round fails, leases run out
                    except Exception as error:  # a bug: a failed attempt, so that it ends
                        log.exception("webhook delivery %s: no payload", row.seq)
                        answer = webhooks.Answer(None, f"no payload: {error!r}"[:500])
                        failed.append(Attempted(row, now(), now(), answer))
                        continue
                    body = outbox.keep_payload(conn, seq=row.seq, worker=self.name, payload=made)
                    if body is None:  # erased, or another worker took over
                        continue
                secret = row.action["webhook"].get("secret") or (
                    outbox.signing_secret(conn, workspace=row.workspace, now=now()).secret
                )
                ready.append(Ready(row, body.encode(), secret))
        return ready, failed

    def _active(self, conn: sa.Connection, workspace: str) -> Model | None:
        """The workspace's active model, which says where its webhooks go now
        (None: keep the stored ones, also when it cannot be read: a bug, or a
        stored model the loader came to refuse, must not stop deliveries)."""
        try:
            found = self._models.active(conn, workspace=workspace)
        except sa.exc.SQLAlchemyError:
            raise  # the database's trouble: the round fails, leases run out
        except Exception:
            log.exception("webhooks of %s: the active model cannot be read", workspace)
            return None
        return None if found is None else found.engine.model

    def _aimed(self, conn: sa.Connection, row: Claimed, model: Model | None) -> Claimed | None:
        """The row with the webhook its trigger has now, kept in it; None
        when the row is no longer leased to this worker."""
        current = outbox.current_webhook(model, row.firing.trigger, row.webhook_index)
        if current is None or current == row.action:
            return row
        if not outbox.retarget(conn, seq=row.seq, action=current, worker=self.name):
            return None
        return replace(row, action=current)

    def _send(self, ready: Ready) -> Attempted:
        row = ready.row
        started = now()
        try:
            answer = webhooks.send(
                self._client,
                row.action["webhook"]["url"],
                ready.body,
                webhooks.headers(
                    delivery=row.seq,
                    attempt=row.attempts + 1,
                    secret=ready.secret,
                    timestamp=int(time.time()),
                    body=ready.body,
                ),
                timeout=self._settings.webhook_timeout_seconds,
            )
        except Exception as error:  # a bug: a failed attempt, so that it ends
            # Raised out of the round, it would leave every attempt of the
            # round unrecorded: the others sent again at each lease's end.
            log.exception("webhook delivery %s: the attempt failed", row.seq)
            answer = webhooks.Answer(None, f"{type(error).__name__}: {error}"[:500])
        return Attempted(row, started, now(), answer)

    def _record(self, attempted: list[Attempted]) -> None:
        """Log the round's attempts and settle their rows, in one transaction
        (a webhook sent but not recorded, when the process dies before this,
        is sent again: under the same key)."""
        settled: list[tuple[Attempted, str | None]] = []
        with self._database.connect() as conn, conn.begin():
            for item in attempted:
                status = outbox.record_attempt(
                    conn,
                    seq=item.row.seq,
                    worker=self.name,
                    url=item.row.action["webhook"]["url"],
                    started_at=item.started,
                    duration=item.finished - item.started,
                    status_code=item.answer.status_code,
                    error=item.answer.error,
                    now=item.finished,
                    max_attempts=self._settings.webhook_max_attempts,
                    delay=self._delay,
                )
                settled.append((item, status))
        for item, status in settled:
            if item.answer.error is not None:
                log.warning(
                    "webhook delivery %s (%s, trigger %s) failed: %s; now %s",
                    item.row.seq,
                    item.row.workspace,
                    item.row.firing.trigger,
                    item.answer.error,
                    status,
                )

    def _delay(self, attempts: int) -> int:
        seconds = webhooks.backoff(
            attempts,
            base=self._settings.webhook_backoff_base_seconds,
            cap=self._settings.webhook_backoff_cap_seconds,
            rng=self._rng,
        )
        return int(seconds * _SECOND)

    def _payload(self, conn: sa.Connection, row: Claimed) -> str:
        firing = row.firing
        model = self._models.version(conn, workspace=row.workspace, version=firing.model_version)
        card = contacts.at_firing(
            conn,
            workspace=row.workspace,
            model=model,
            contact_id=firing.contact_id,
            event_id=firing.event_id,
            timestamp=firing.timestamp,
        )
        with transaction(conn):
            labels = actions.labels(conn, row.workspace, [firing.contact_id]).get(
                firing.contact_id, actions.Labels()
            )
        scorecard = None if card is None else card.to_json()
        if scorecard is not None:
            scorecard.pop("anonymous_id", None)  # always null: a contact's
        body = webhooks.payload(
            row,
            scorecard=scorecard,
            tags=labels.tags,
            owner=labels.owner,
            prepared_at=now(),
        )
        return body.decode()

    # -- a thread of rounds ------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leadscore-outbox", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # the database gone, a bug: log it, keep going
                log.exception("the outbox worker's round failed; retrying")
                busy = 0
            if not busy:
                self._stop.wait(self._settings.outbox_poll_seconds)

    def run_until(
        self, stopped: threading.Event, *, gone: Callable[[], bool] | None = None
    ) -> None:
        """Rounds in a thread until `stopped` is set, or until `gone()` says
        what this process works for is gone (checked every second); then
        `stop`. What a worker process's main thread does."""
        self.start()
        try:
            while not stopped.wait(None if gone is None else 1.0):
                if gone is not None and gone():
                    break
        finally:
            self.stop()

    def stop(self) -> None:
        """Finish the round in progress (its deliveries end within their
        timeout) and stop; what is left stays queued for the next worker."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def __enter__(self) -> OutboxWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
