"""Model activation: rescoring every owner of a workspace under the model
version just made active, in the background, with progress in the database.

`workspaces.activate_model` makes a version active and records an
activation (a row of `activations`, status `running`). A runner (the
service's, `_service/activations.py`) claims it and calls `rescore`, which
works through the owners still scored under another version a chunk at a
time: under their owner locks (locks.py's order), it writes their new states
(computed as below) and the firings of their history. Firings that
history produces under the new model are recorded as carried out
(`firings.history`) and queued nowhere: activating a model must not page
sales about last year's visits. Each chunk commits with the activation's
progress, so a runner that dies loses at most a chunk; another process takes
the activation over once its lease has run out, and the owners done are not
done again (their version is already the new one).

The states come from the batch engine (bulk.py): before the chunks, one
set-at-a-time computation over the workspace's whole log on DuckDB gives
every owner's state and history firings, and each chunk then only writes
them, under the locks, for the owners no event has touched since that read
(the others, and the few the batch engine leaves to the pure engine, are
replayed from their logs there, as before). With `batch=False` every owner is
replayed (the path before issue 4, kept for comparison).

Meanwhile ingest keeps working: an owner whose state is of another version is
brought to the active one, the same way, when its next event comes
(ingest.py), and reads compute such an owner from its events. Whichever comes
first, the other finds the owner done.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from .._engine import ContactState, Engine, Firing
from .._events import Event
from .._replay import Owner
from . import bulk, firings, locks, log, owners
from .database import now, transaction
from .prepared import Prepared
from .tables import activations, models
from .tables import owners as owner_rows
from .workspaces import ModelVersion, load_model

# Owners rescored per transaction: large enough that the per-chunk statements
# are a small share of the work, small enough that a chunk's locks are held
# for well under a second and a dead runner loses little.
CHUNK = 500

# Owners written per transaction from the batch engine's states: no scoring
# happens under their locks, only reads and writes, so a chunk holds them for
# about as long as CHUNK owners replayed would.
BATCH_CHUNK = 2_000

# How long a runner's claim on an activation holds without renewal (µs). Every
# chunk renews it, and a chunk takes far less, so only a dead runner's
# activation is taken over.
LEASE = 60_000_000


@dataclass(frozen=True, slots=True)
class Activation:
    id: int
    workspace: str
    version: int
    status: str  # running, done, superseded (another version was activated since), failed
    total: int  # owners under another version when it started
    rescored: int
    created_at: int
    finished_at: int | None
    error: str | None


def score_history(
    engine: Engine, logs: Mapping[Owner, list[Event]]
) -> dict[Owner, tuple[ContactState, list[Firing]]]:
    """The one scoring step of a rescore: each owner's state and the firings
    of its history, from its events in (timestamp, id) order.

    The pure engine, owner by owner: for the owners the batch engine's
    states (bulk.py) do not cover, and for ingest meeting an owner of
    another version.
    """
    scored: dict[Owner, tuple[ContactState, list[Firing]]] = {}
    for owner, history in logs.items():
        identified, key = owner
        state, step = engine.run(
            (engine.prepare(event) for event in history), contact_id=key if identified else None
        )
        scored[owner] = (state, step.firings)
    return scored


def _row(row: sa.Row[tuple[object, ...]]) -> Activation:
    mapping = row._mapping
    return Activation(
        id=int(mapping["id"]),
        workspace=str(mapping["workspace"]),
        version=int(mapping["version"]),
        status=str(mapping["status"]),
        total=int(mapping["total"]),
        rescored=int(mapping["rescored"]),
        created_at=int(mapping["created_at"]),
        finished_at=None if mapping["finished_at"] is None else int(mapping["finished_at"]),
        error=None if mapping["error"] is None else str(mapping["error"]),
    )


def get_activation(conn: sa.Connection, *, workspace: str, activation_id: int) -> Activation | None:
    with transaction(conn):
        row = conn.execute(
            sa.select(activations).where(
                activations.c.workspace == workspace, activations.c.id == activation_id
            )
        ).first()
    return None if row is None else _row(row)


def latest_activation(conn: sa.Connection, *, workspace: str) -> Activation | None:
    with transaction(conn):
        row = conn.execute(
            sa.select(activations)
            .where(activations.c.workspace == workspace)
            .order_by(activations.c.id.desc())
            .limit(1)
        ).first()
    return None if row is None else _row(row)


def claim(conn: sa.Connection) -> Activation | None:
    """Take a running activation no live runner holds (its lease over or
    never given), for LEASE; None when there is none."""
    stamp = now()
    free = sa.or_(activations.c.lease_until.is_(None), activations.c.lease_until < stamp)
    with transaction(conn):
        candidate = conn.execute(
            sa.select(activations.c.id)
            .where(activations.c.status == "running", free)
            .order_by(activations.c.id)
            .limit(1)
        ).scalar()
        if candidate is None:
            return None
        # The condition again in the update: of two runners that picked the
        # same row, the second finds the lease taken (PostgreSQL re-checks
        # the row after the first commits) and updates nothing.
        row = conn.execute(
            activations.update()
            .where(activations.c.id == candidate, activations.c.status == "running", free)
            .values(lease_until=stamp + LEASE)
            .returning(*activations.c)
        ).first()
    return None if row is None else _row(row)


def rescore(
    conn: sa.Connection,
    activation: Activation,
    *,
    chunk: int | None = None,
    stopping: Callable[[], bool] = lambda: False,
    batch: bool = True,
    computed: bulk.Computed | None = None,
) -> Activation:
    """Rescore the activation's workspace, a chunk per transaction, until no
    owner is left under another version (done), another version was made
    active (superseded) or `stopping()` says so (left running, for a runner
    to resume). The activation as it ends.

    With `batch`, the states come from one batch-engine computation over the
    whole log (bulk.py), or from `computed`, one made before (the tests
    change the log in between); chunks are of BATCH_CHUNK owners then, CHUNK
    otherwise, unless `chunk` says."""
    if conn.in_transaction():
        raise ValueError("rescore commits each chunk: pass a connection with no transaction")
    model = load_model(conn, workspace=activation.workspace, version=activation.version)
    if computed is None and batch and not stopping():
        computed = bulk.compute(
            conn, activation.workspace, model.engine, keep_alive=lambda: _renew(conn, activation)
        )
    size = chunk if chunk is not None else BATCH_CHUNK if computed is not None else CHUNK
    # Chunks follow the owners' key order from where the last one ended, so
    # that none reads past the owners done; a pass that finds none left
    # starts once more from the first (a writer on the old version may have
    # put one back behind), and the activation is done when that finds none.
    after: Owner | None = None
    while not stopping():
        with conn.begin():
            status = _status(conn, activation)
            if status != "running":
                break
            step = _chunk(conn, activation.workspace, model, size, computed=computed, after=after)
            if step is None:
                if after is None:
                    _finish(conn, activation.id, "done")
                    break
                after = None
                continue
            done, after = step
            conn.execute(
                activations.update()
                .where(activations.c.id == activation.id)
                .values(
                    rescored=activations.c.rescored + done,
                    total=sa.func.max(activations.c.total, activations.c.rescored + done)
                    if conn.dialect.name == "sqlite"
                    else sa.func.greatest(activations.c.total, activations.c.rescored + done),
                    lease_until=now() + LEASE,
                )
            )
    found = get_activation(conn, workspace=activation.workspace, activation_id=activation.id)
    assert found is not None
    return found


def _renew(conn: sa.Connection, activation: Activation) -> None:
    """Extend the lease while the batch engine works (it writes no progress)."""
    with transaction(conn):
        conn.execute(
            activations.update()
            .where(activations.c.id == activation.id, activations.c.status == "running")
            .values(lease_until=now() + LEASE)
        )


def release(conn: sa.Connection, activation: Activation) -> None:
    """Give up the claim (a runner stopping): another may resume at once."""
    with transaction(conn):
        conn.execute(
            activations.update()
            .where(activations.c.id == activation.id, activations.c.status == "running")
            .values(lease_until=None)
        )


def fail(conn: sa.Connection, activation: Activation, error: str) -> None:
    with transaction(conn):
        _finish(conn, activation.id, "failed", error=error)


def _status(conn: sa.Connection, activation: Activation) -> str:
    status = conn.execute(
        sa.select(activations.c.status).where(activations.c.id == activation.id)
    ).scalar_one()
    active = conn.execute(
        sa.select(models.c.version).where(
            models.c.workspace == activation.workspace, models.c.active
        )
    ).scalar()
    if status == "running" and active != activation.version:
        _finish(conn, activation.id, "superseded")
        return "superseded"
    return str(status)


def _finish(conn: sa.Connection, activation_id: int, status: str, error: str | None = None) -> None:
    conn.execute(
        activations.update()
        .where(activations.c.id == activation_id)
        .values(status=status, finished_at=now(), lease_until=None, error=error)
    )


# A chunk's statements, on the driver's cursor (prepared.py): SQLAlchemy's
# rows cost more than the queries for the 2,000 owners of a batch chunk.
# Each reads one kind of owner (anonymous profiles, then contacts, the
# primary key's order) by a range of keys: PostgreSQL estimates a range of
# row values (identified, key) by its first column alone, so that for
# contacts it expected one row, read the ranking index and sorted (24-86 ms
# a chunk of 2,000 instead of 2-10).
@functools.cache
def _owners_of_kind(size: int, *, low: Literal["after", "from"] | None, high: bool) -> Prepared:
    """Up to `size` owners of a kind still under another version, in key order:
    those after the key `low` or from it on, and up to the key `high`."""
    key = owner_rows.c.key
    query = sa.select(owner_rows.c.identified, key).where(
        owner_rows.c.workspace == sa.bindparam("workspace"),
        owner_rows.c.identified == sa.bindparam("identified"),
        owner_rows.c.model_version != sa.bindparam("version"),
    )
    if low == "after":
        query = query.where(key > sa.bindparam("low"))
    elif low == "from":
        query = query.where(key >= sa.bindparam("low"))
    if high:
        query = query.where(key <= sa.bindparam("high"))
    return Prepared(query.order_by(key).limit(size))


def _owners_to_do(
    conn: sa.Connection, workspace: str, version: int, size: int, after: Owner | None
) -> list[Owner]:
    """The first `size` owners under another version than `version`, after
    `after` in key order (anonymous profiles first)."""
    found: list[Owner] = []
    for identified in (False, True):
        if after is not None and after[0] and not identified:
            continue  # past the anonymous profiles
        beyond = after is not None and after[0] == identified
        values = {"workspace": workspace, "identified": identified, "version": version}
        if beyond:
            assert after is not None
            values["low"] = after[1]
        rows = _owners_of_kind(size, low="after" if beyond else None, high=False).rows(conn, values)
        found += [(identified, str(key)) for _, key in rows[: size - len(found)]]
        if len(found) == size:
            break
    return found


def _still_to_do(
    conn: sa.Connection, workspace: str, version: int, size: int, span: tuple[Owner, Owner]
) -> list[Owner]:
    """The owners under another version in a span of keys (both ends in), under the
    chunk's locks. With a LIMIT (that planners read the primary key) of twice the
    chunk: the range holds the chunk's `size` owners and only those put in it since,
    which are not locked; were some of the chunk's cut off, the pass that starts
    again from the first owner (rescore) would find them."""
    low, high = span
    found: list[Owner] = []
    for identified in sorted({low[0], high[0]}):
        values = {"workspace": workspace, "identified": identified, "version": version}
        if identified == low[0]:
            values["low"] = low[1]
        if identified == high[0]:
            values["high"] = high[1]
        statement = _owners_of_kind(
            2 * size, low="from" if "low" in values else None, high="high" in values
        )
        found += [(identified, str(key)) for _, key in statement.rows(conn, values)]
    return found


def _chunk(
    conn: sa.Connection,
    workspace: str,
    model: ModelVersion,
    size: int,
    *,
    computed: bulk.Computed | None,
    after: Owner | None,
) -> tuple[int, Owner] | None:
    """Rescore up to `size` owners still under another version (after `after`
    in key order); how many and the last, or None when there were none left.
    With `computed`, owners it has a state for and whose log no later event
    touched take that state; the others are replayed from their logs."""
    wanted = _owners_to_do(conn, workspace, model.version, size, after)
    if not wanted:
        return None
    locks.lock_owners(conn, workspace, wanted)
    # Under the locks: what is still to do (ingest may have done some since).
    # Their versions only: the old states are not needed, and decoding them
    # would be work for nothing. By the key range the chunk spans (in the
    # database's order, as they were found), the primary key's: with the
    # keys listed, SQLite scanned the workspace's whole index each chunk.
    # An owner put in that range since is not locked: it is left out here.
    still = _still_to_do(conn, workspace, model.version, size, (wanted[0], wanted[-1]))
    locked = set(wanted)
    todo = sorted(owner for owner in still if owner in locked)
    ready: dict[Owner, tuple[ContactState, list[Firing]]] = {}
    if computed is not None:
        touched = computed.changed(conn, workspace, todo)
        for owner in todo:
            state = computed.states.get(owner)
            if state is not None and owner not in touched:
                fired = computed.firings.get(owner[1], []) if owner[0] else []
                ready[owner] = (state, fired)
    logs = log.owned_many(conn, workspace, [owner for owner in todo if owner not in ready])
    scored = score_history(model.engine, logs)
    scored.update(ready)
    record_history(conn, workspace, model, [f for _, fired in scored.values() for f in fired])
    owners.save_many(
        conn,
        workspace,
        {owner: state for owner, (state, _) in scored.items()},
        engine=model.engine,
        model_version=model.version,
        existing=set(todo),
    )
    for owner in todo:
        if owner not in scored:  # no events left (it cannot normally happen)
            owners.delete(conn, workspace, owner)
    return len(todo), wanted[-1]


def record_history(
    conn: sa.Connection, workspace: str, model: ModelVersion, fired: list[Firing]
) -> list[Firing]:
    """Record history's firings as carried out (never queued); the new ones."""
    seen = firings.known(conn, workspace, (firing.contact_id for firing in fired))
    once = firings.once_triggers(model)
    new: list[Firing] = []
    for firing in sorted(fired, key=lambda firing: firing.order_key):
        key = firings.key_of(firing, once)
        if key not in seen:
            seen.add(key)
            new.append(firing)
    firings.write(conn, workspace, model, new, now(), history=True)
    return new
