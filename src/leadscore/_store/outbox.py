"""The outbox, worked: claiming due actions, carrying out the local ones,
recording webhook attempts, and the deliveries log.

Ingestion writes one outbox row per action of each new firing, in the
transaction that records the firing (firings.py). Workers, in `leadscore
serve` and in `leadscore worker` processes, take rows from here:

- Local actions (assign, add_tag, remove_tag) change the database only, so
  they are carried out in the same transaction that marks them done
  (`carry_out_due`): exactly once, whatever crashes. A contact's local
  actions run in the order their rows were queued.
- `claim` leases due webhooks to one worker: `FOR UPDATE SKIP LOCKED` on
  PostgreSQL, so concurrent workers never claim the same row and never wait
  for one another; SQLite has one writer at a time. A lease that runs out
  (its worker died) makes the row claimable again.
- A webhook cannot be in a transaction: it is delivered at least once, with
  the row's id as its idempotency key, so that a receiver that keeps the
  keys it has seen acts exactly once. Its body is built at the first attempt
  and kept (`keep_payload`), so every attempt sends the same bytes.
  `record_attempt` logs each attempt and decides: done, failed (to be
  retried later) or, after the last attempt, dead.
- A webhook goes where its trigger sends it *now*, not where it did when it
  fired: at each attempt, and at a redelivery, `current_webhook` looks up
  the webhook its trigger has in the workspace's active model, and
  `retarget` keeps it in the row, so that a wrong URL fixed by a new model
  version also fixes the deliveries already queued. See `current_webhook`.
"""

from __future__ import annotations

import secrets as random_secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .._model import Model, WebhookAction
from . import actions
from .database import insert_new, transaction
from .firings import action_json
from .tables import delivery_attempts, firings, outbox, signing_secrets

PENDING = "pending"  # not tried yet, or redelivered
FAILED = "failed"  # a webhook whose last attempt failed: retried at next_attempt_at
DONE = "done"  # carried out (a webhook: answered 2xx)
DEAD = "dead"  # a webhook that failed every attempt: the dead-letter list
STATUSES = (PENDING, FAILED, DONE, DEAD)
_DUE = (PENDING, FAILED)

WEBHOOK = "webhook"
LOCAL = ("assign", "add_tag", "remove_tag")


@dataclass(frozen=True, slots=True)
class Fired:
    """The firing an outbox row carries out."""

    trigger: str
    contact_id: str
    event_id: str
    timestamp: int
    model_version: int
    recorded_at: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """An outbox row leased to a worker."""

    seq: int
    workspace: str
    kind: str
    action: dict[str, Any]
    attempts: int
    payload: str | None
    firing: Fired
    # Its place among its trigger's webhooks, counted from 0: see current_webhook.
    webhook_index: int


_FIRING_COLUMNS = (
    firings.c.trigger,
    firings.c.contact_id,
    firings.c.event_id,
    firings.c.timestamp,
    firings.c.model_version,
    firings.c.recorded_at,
)


def _fired(row: Any) -> Fired:
    return Fired(
        row.trigger, row.contact_id, row.event_id, row.timestamp, row.model_version, row.recorded_at
    )


def _webhook_index() -> sa.ScalarSelect[Any]:
    """The outbox row's place among its firing's webhook rows: among its
    trigger's webhooks in the version that fired.

    A firing queues one row for each action of its trigger, in one
    statement (`action_index` is the place among all of them), and its rows
    go only all together (erasure): so the webhook rows before this one are
    the trigger's webhooks before it. No column needs to hold it, and rows
    queued before it was needed have it too.
    """
    before = outbox.alias("before")
    return (
        sa.select(sa.func.count())
        .select_from(before)
        .where(
            before.c.firing == outbox.c.firing,
            before.c.kind == WEBHOOK,
            before.c.action_index < outbox.c.action_index,
        )
        .scalar_subquery()
    )


def current_webhook(model: Model | None, trigger: str, index: int) -> dict[str, Any] | None:
    """The webhook action (as rows store it) that the `index`-th webhook of
    `trigger` is in `model`, the workspace's active model; None when it has
    no such trigger, or fewer webhooks (or there is no active model).

    This is what makes a delivery go where its trigger sends it now. A
    marketer fixes a wrong URL, or replaces a secret, by activating a new
    model version; the deliveries already queued, failing or dead would
    otherwise keep the address and secret of the version that fired them,
    and could only die. So at each attempt, and at a redelivery, a webhook
    is sent to the webhook in the same place now: the same trigger id, the
    same place among that trigger's webhook actions (other actions added or
    removed around them move no webhook), with its URL and its `secret`
    (none: the workspace's signing secret). When the active model has no
    such webhook, the delivery keeps the one it has: nothing is sent to an
    address that was never its trigger's.
    """
    if model is None:
        return None
    for found in model.triggers:
        if found.id == trigger:
            hooks = [action for action in found.actions if isinstance(action, WebhookAction)]
            return action_json(hooks[index]) if index < len(hooks) else None
    return None


def retarget(
    conn: sa.Connection, *, seq: int, action: dict[str, Any], worker: str | None = None
) -> bool:
    """Keep `action` (current_webhook's) as webhook `seq`'s: its next attempts,
    and the deliveries log, use it. With `worker`, only while the row is
    leased to that worker; whether it was kept."""
    where = [outbox.c.seq == seq]
    if worker is not None:
        where.append(outbox.c.lease_owner == worker)
    with transaction(conn):
        done = conn.execute(outbox.update().where(*where).values(action=action))
    return done.rowcount > 0


def claim(conn: sa.Connection, *, worker: str, now: int, lease: int, limit: int) -> list[Claimed]:
    """Lease up to `limit` due webhooks (oldest due first) to `worker` until now + lease."""
    with transaction(conn):
        rows = conn.execute(
            sa.select(
                outbox.c.seq,
                outbox.c.workspace,
                outbox.c.kind,
                outbox.c.action,
                outbox.c.attempts,
                outbox.c.payload,
                *_FIRING_COLUMNS,
            )
            .join(firings, firings.c.seq == outbox.c.firing)
            .where(
                outbox.c.status.in_(_DUE),
                outbox.c.kind == WEBHOOK,
                outbox.c.next_attempt_at <= now,
                sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
            )
            .order_by(outbox.c.next_attempt_at, outbox.c.seq)
            .limit(limit)
            # Rows another worker is claiming right now are skipped, not waited for.
            .with_for_update(skip_locked=True, of=outbox)
        ).all()
        places: dict[int, int] = {}
        if rows:
            seqs = [row.seq for row in rows]
            conn.execute(
                outbox.update()
                .where(outbox.c.seq.in_(seqs))
                .values(lease_owner=worker, lease_until=now + lease)
            )
            # Apart from the claim: counted for the rows claimed only, never
            # for every due row the claim's sort goes through.
            counted = sa.select(outbox.c.seq, _webhook_index()).where(outbox.c.seq.in_(seqs))
            places = dict(conn.execute(counted).all())
    return [
        Claimed(
            row.seq,
            row.workspace,
            WEBHOOK,
            row.action,
            row.attempts,
            row.payload,
            _fired(row),
            places[row.seq],
        )
        for row in rows
    ]


def carry_out_due(conn: sa.Connection, *, now: int, limit: int) -> int:
    """Carry out the oldest `limit` due local actions, with every earlier due
    local action of the same contacts, in queue order; how many.

    All in one transaction, which applies each action and marks it done:
    exactly once. The rows are locked in one statement in increasing seq
    order (FOR UPDATE), and their status is read under the lock: two workers
    that pick the same rows take turns (never a deadlock: every worker locks
    in the same order), and the second finds the first one's rows done and
    skips them. Taking a contact's earlier rows first keeps its actions in
    order: an add_tag queued before a remove_tag of the same tag is applied
    before it. Local actions need no lease: nothing happens outside this
    transaction.
    """
    local = sa.and_(outbox.c.kind.in_(LOCAL), outbox.c.status.in_(_DUE))
    with transaction(conn):
        picked = conn.execute(
            sa.select(outbox.c.seq, outbox.c.workspace, firings.c.contact_id)
            .join(firings, firings.c.seq == outbox.c.firing)
            .where(local, outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.seq)
            .limit(limit)
        ).all()
        if not picked:
            return 0
        contacts = sorted({(row.workspace, row.contact_id) for row in picked})
        rows = conn.execute(
            sa.select(
                outbox.c.seq,
                outbox.c.action,
                firings.c.workspace,
                firings.c.contact_id,
                firings.c.trigger,
            )
            .join(firings, firings.c.seq == outbox.c.firing)
            .where(
                local,
                outbox.c.seq <= max(row.seq for row in picked),
                sa.tuple_(firings.c.workspace, firings.c.contact_id).in_(contacts),
            )
            .order_by(outbox.c.seq)
            .with_for_update(of=outbox)
        ).all()
        owners = _turns(conn, rows)
        for row in rows:
            _apply(conn, row, owner=owners.get(row.seq), now=now)
        if rows:
            conn.execute(
                outbox.update()
                .where(outbox.c.seq.in_([row.seq for row in rows]))
                .values(status=DONE, done_at=now, attempts=outbox.c.attempts + 1)
            )
    return len(rows)


def _turns(conn: sa.Connection, rows: Sequence[Any]) -> dict[int, str]:
    """The owner each assign row gets: its rotation's next turn.

    Turns are taken rotation by rotation, in the order of their keys (and in
    queue order within one): every worker then locks rotation rows in one
    global order, after all its outbox rows, so two workers assigning from
    the same rotations wait for each other but never deadlock.
    """
    assigning = [row for row in rows if "assign" in row.action]
    owners: dict[int, str] = {}

    def key(row: Any) -> tuple[str, str, str, int]:
        names = actions.rotation_key(list(row.action["assign"]["owners"]))
        return (row.workspace, row.trigger, names, row.seq)

    for row in sorted(assigning, key=key):
        names = list(row.action["assign"]["owners"])
        turn = actions.next_turn(conn, row.workspace, row.trigger, names)
        owners[row.seq] = names[turn % len(names)]
    return owners


def _apply(conn: sa.Connection, row: Any, *, owner: str | None, now: int) -> None:
    action: dict[str, Any] = row.action
    workspace, contact_id = row.workspace, row.contact_id
    if "add_tag" in action:
        actions.add_tag(conn, workspace, contact_id, action["add_tag"], now)
    elif "remove_tag" in action:
        actions.remove_tag(conn, workspace, contact_id, action["remove_tag"])
    elif "assign" in action and owner is not None:
        actions.set_owner(conn, workspace, contact_id, owner=owner, trigger=row.trigger, now=now)
    else:
        raise ValueError(f"not a local action: {sorted(action)}")


def keep_payload(conn: sa.Connection, *, seq: int, worker: str, payload: str) -> str | None:
    """Keep the body of a webhook's first attempt; the body to send (this one,
    or the one kept by an earlier attempt), or None when the row is gone or
    no longer leased to `worker`."""
    with transaction(conn):
        kept = conn.execute(
            outbox.update()
            .where(outbox.c.seq == seq, outbox.c.lease_owner == worker, outbox.c.payload.is_(None))
            .values(payload=payload)
            .returning(outbox.c.payload)
        ).scalar()
        if kept is not None:  # the common case: one statement
            return payload
        row = conn.execute(
            sa.select(outbox.c.payload, outbox.c.lease_owner).where(outbox.c.seq == seq)
        ).first()
    if row is None or row.lease_owner != worker:
        return None
    earlier: str | None = row.payload
    return earlier


def record_attempt(
    conn: sa.Connection,
    *,
    seq: int,
    worker: str,
    url: str,
    started_at: int,
    duration: int,
    status_code: int | None,
    error: str | None,
    now: int,
    max_attempts: int,
    delay: Callable[[int], int],
) -> str | None:
    """Log one attempt at delivering webhook `seq` (sent to `url`) and update
    the row; its status now, or None when the row is gone (erased).

    `error` None means it succeeded: done. Otherwise, after `max_attempts`
    attempts it is dead; before, failed, to be retried `delay(attempts)`
    microseconds from now. An attempt by a worker whose lease was taken over
    is logged but decides nothing, unless it succeeded: a delivery that got
    through is done.
    """
    with transaction(conn):
        row = conn.execute(
            sa.select(outbox.c.workspace, outbox.c.status, outbox.c.attempts, outbox.c.lease_owner)
            .where(outbox.c.seq == seq)
            .with_for_update()
        ).first()
        if row is None:
            return None
        # Numbered in the insert itself: one statement less per attempt.
        earlier = (
            sa.select(sa.func.count() + 1)
            .select_from(delivery_attempts)
            .where(delivery_attempts.c.outbox == seq)
            .scalar_subquery()
        )
        conn.execute(
            delivery_attempts.insert().values(
                outbox=seq,
                workspace=row.workspace,
                attempt=earlier,
                started_at=started_at,
                duration=duration,
                status_code=status_code,
                ok=error is None,
                error=error,
                url=url,
            )
        )
        mine = row.lease_owner == worker and row.status in _DUE
        if error is None:
            values: dict[str, Any] = {"status": DONE, "done_at": now, "last_error": None}
        elif not mine:
            return str(row.status)
        elif row.attempts + 1 >= max_attempts:
            values = {"status": DEAD, "done_at": now, "last_error": error}
        else:
            values = {
                "status": FAILED,
                "next_attempt_at": now + delay(row.attempts + 1),
                "last_error": error,
            }
        if mine:
            values["attempts"] = row.attempts + 1
            values |= {"lease_owner": None, "lease_until": None}
        conn.execute(outbox.update().where(outbox.c.seq == seq).values(**values))
    return str(values["status"])


def redeliver(
    conn: sa.Connection, *, workspace: str, seq: int, now: int, model: Model | None
) -> bool:
    """Queue webhook `seq` of the workspace again, with a fresh budget of
    attempts, whatever its status; whether there is such a delivery. It keeps
    its id, so its idempotency key and its body stay the same. It goes to the
    webhook its trigger has in `model`, the workspace's active one, when it
    has it (current_webhook), so the delivery shows where it will go."""
    with transaction(conn):
        row = conn.execute(
            sa.select(outbox.c.action, firings.c.trigger, _webhook_index().label("webhook_index"))
            .join(firings, firings.c.seq == outbox.c.firing)
            .where(outbox.c.workspace == workspace, outbox.c.seq == seq, outbox.c.kind == WEBHOOK)
        ).first()
        if row is None:
            return False
        current = current_webhook(model, row.trigger, row.webhook_index)
        if current is not None and current != row.action:
            retarget(conn, seq=seq, action=current)
        done = conn.execute(
            outbox.update()
            .where(outbox.c.workspace == workspace, outbox.c.seq == seq, outbox.c.kind == WEBHOOK)
            .values(
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                done_at=None,
                lease_owner=None,
                lease_until=None,
            )
        )
    return done.rowcount > 0


# -- the deliveries log ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    started_at: int
    duration: int  # microseconds
    status_code: int | None
    ok: bool
    error: str | None
    url: str | None  # None: logged before attempts recorded it (migration 0008)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook of a firing, and how its delivery went."""

    seq: int
    status: str
    url: str
    firing: Fired
    created_at: int
    attempts: int
    next_attempt_at: int | None  # when it is due (pending or failed)
    done_at: int | None
    last_error: str | None
    payload: str | None
    log: list[Attempt]


def _delivery_query() -> sa.Select[Any]:
    return (
        sa.select(
            outbox.c.seq,
            outbox.c.status,
            outbox.c.action,
            outbox.c.created_at,
            outbox.c.attempts,
            outbox.c.next_attempt_at,
            outbox.c.done_at,
            outbox.c.last_error,
            outbox.c.payload,
            *_FIRING_COLUMNS,
        )
        .join(firings, firings.c.seq == outbox.c.firing)
        .where(outbox.c.kind == WEBHOOK)
    )


def _delivery(row: Any, log: list[Attempt]) -> Delivery:
    return Delivery(
        seq=row.seq,
        status=row.status,
        url=row.action["webhook"]["url"],
        firing=_fired(row),
        created_at=row.created_at,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status in _DUE else None,
        done_at=row.done_at,
        last_error=row.last_error,
        payload=row.payload,
        log=log,
    )


def deliveries(
    conn: sa.Connection,
    *,
    workspace: str,
    status: str | None = None,
    trigger: str | None = None,
    contact_id: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[Delivery]:
    """The workspace's webhook deliveries, newest first (by id), filtered;
    `before` an id: those older than it. Without their attempts."""
    query = _delivery_query().where(outbox.c.workspace == workspace)
    if status is not None:
        query = query.where(outbox.c.status == status)
    if trigger is not None:
        query = query.where(firings.c.trigger == trigger)
    if contact_id is not None:
        query = query.where(firings.c.contact_id == contact_id)
    if before is not None:
        query = query.where(outbox.c.seq < before)
    with transaction(conn):
        rows = conn.execute(query.order_by(outbox.c.seq.desc()).limit(limit)).all()
    return [_delivery(row, []) for row in rows]


def delivery(conn: sa.Connection, *, workspace: str, seq: int) -> Delivery | None:
    """One delivery of the workspace with its attempts, oldest first; None when it has none."""
    with transaction(conn):
        row = conn.execute(
            _delivery_query().where(outbox.c.workspace == workspace, outbox.c.seq == seq)
        ).first()
        if row is None:
            return None
        log = [
            Attempt(a.attempt, a.started_at, a.duration, a.status_code, a.ok, a.error, a.url)
            for a in conn.execute(
                sa.select(delivery_attempts)
                .where(delivery_attempts.c.outbox == seq)
                .order_by(delivery_attempts.c.seq)
            )
        ]
    return _delivery(row, log)


def attempts_of(conn: sa.Connection, *, seqs: list[int]) -> list[dict[str, Any]]:
    """The logged attempts of these outbox rows, as rows (for a GDPR export)."""
    query = (
        sa.select(delivery_attempts)
        .where(delivery_attempts.c.outbox.in_(seqs))
        .order_by(delivery_attempts.c.seq)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def forget(conn: sa.Connection, *, fired: sa.Select[Any]) -> None:
    """Erase the outbox rows of the firings `fired` selects, with their attempts."""
    rows = sa.select(outbox.c.seq).where(outbox.c.firing.in_(fired))
    conn.execute(delivery_attempts.delete().where(delivery_attempts.c.outbox.in_(rows)))
    conn.execute(outbox.delete().where(outbox.c.firing.in_(fired)))


# -- for /metrics ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Outbox rows not done, by status."""

    pending: int  # never tried yet (or redelivered)
    failed: int  # webhooks waiting to be retried
    dead: int  # webhooks that failed every attempt


def outbox_stats(conn: sa.Connection, *, workspace: str | None = None) -> OutboxStats:
    """How many outbox rows are pending, failed (awaiting a retry) and dead,
    in one workspace or all: the outbox's depth is pending + failed."""
    query = (
        sa.select(outbox.c.status, sa.func.count())
        .where(outbox.c.status.in_((PENDING, FAILED, DEAD)))
        .group_by(outbox.c.status)
    )
    if workspace is not None:
        query = query.where(outbox.c.workspace == workspace)
    with transaction(conn):
        counts = {status: int(n) for status, n in conn.execute(query)}
    return OutboxStats(counts.get(PENDING, 0), counts.get(FAILED, 0), counts.get(DEAD, 0))


def delivery_failures(conn: sa.Connection, *, workspace: str | None = None) -> int:
    """How many webhook attempts have failed (no answer, or not a 2xx), in one
    workspace or all. It only grows, except when erasure removes a contact's
    deliveries: a Prometheus counter tolerates that as a reset."""
    query = sa.select(sa.func.count()).select_from(delivery_attempts).where(~delivery_attempts.c.ok)
    if workspace is not None:
        query = query.where(delivery_attempts.c.workspace == workspace)
    with transaction(conn):
        return int(conn.execute(query).scalar_one())


# -- signing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigningSecret:
    secret: str
    created_at: int


def signing_secret(
    conn: sa.Connection, *, workspace: str, now: int, rotate: bool = False
) -> SigningSecret:
    """The workspace's webhook signing secret, made on first use; with
    `rotate`, a new one replaces it (from the next attempt on)."""
    query = sa.select(signing_secrets.c.secret, signing_secrets.c.created_at).where(
        signing_secrets.c.workspace == workspace
    )
    if not rotate:  # the common case, read only (a write would cost SQLite's one writer)
        with transaction(conn):
            found = conn.execute(query).first()
        if found is not None:
            return SigningSecret(found.secret, found.created_at)
    fresh = "whsec_" + random_secrets.token_urlsafe(32)  # 256 random bits
    with transaction(conn):
        if rotate:
            conn.execute(signing_secrets.delete().where(signing_secrets.c.workspace == workspace))
        conn.execute(
            insert_new(conn, signing_secrets, "workspace").values(
                workspace=workspace, secret=fresh, created_at=now
            )
        )
        row = conn.execute(query).one()
    return SigningSecret(row.secret, row.created_at)
