"""The group committer on SQLite and PostgreSQL: requests that share a
transaction do not share its failure.

A real trigger makes the database fail (not refuse: no constraint, which
ingest would reject alone) on one event id, and a transaction held open from
another connection keeps the first commit waiting, so that the requests sent
meanwhile are committed together, as one group, when it lets go.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from leadscore._service.committer import Committer
from leadscore._store import create_workspace, store_model
from leadscore._store.ingest import EventOutcome
from leadscore._store.tables import events as event_rows

from ._service import MODEL, event


def _sqlite(database: sa.Engine) -> bool:
    return database.dialect.name == "sqlite"


@contextmanager
def poisoned(database: sa.Engine, poison: str) -> Iterator[None]:
    """A trigger that makes the insert of the event `poison` fail, while in the block."""
    with database.begin() as conn:
        if _sqlite(database):
            # abs() of the smallest integer is SQLite's "integer overflow", an
            # error of the statement (OperationalError); RAISE(ABORT) would be
            # a constraint (IntegrityError), which ingest rejects alone.
            conn.execute(
                sa.text(
                    f"CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.id = '{poison}' "
                    "BEGIN SELECT abs(-9223372036854775808); END"
                )
            )
        else:  # RAISE EXCEPTION: SQLSTATE P0001 (a ProgrammingError), not a constraint
            conn.execute(
                sa.text(
                    "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"IF NEW.id = '{poison}' THEN RAISE EXCEPTION 'poison'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER poison BEFORE INSERT ON events "
                    "FOR EACH ROW EXECUTE FUNCTION poison()"
                )
            )
    try:
        yield
    finally:
        with database.begin() as conn:
            conn.execute(
                sa.text("DROP TRIGGER poison" + ("" if _sqlite(database) else " ON events"))
            )
            if not _sqlite(database):
                conn.execute(sa.text("DROP FUNCTION poison()"))


@contextmanager
def writes_held(database: sa.Engine) -> Iterator[None]:
    """Other connections' inserts of events wait until the block ends."""
    with database.connect() as conn, conn.begin():
        # On SQLite the BEGIN (IMMEDIATE) holds the database's write lock.
        if not _sqlite(database):
            conn.execute(sa.text("LOCK TABLE events IN EXCLUSIVE MODE"))
        yield


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "the committer never got there"
        time.sleep(0.005)


class _Request(threading.Thread):
    """A request's call of the committer, in a thread of its own."""

    def __init__(self, committer: Committer, ingest: dict[str, Any], events: Sequence[Any]):
        super().__init__(daemon=True)
        self._committer, self._ingest, self._events = committer, ingest, events
        self.outcomes: list[EventOutcome] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.outcomes = self._committer.ingest(**self._ingest, events=self._events)
        except BaseException as error:
            self.error = error

    def statuses(self) -> list[tuple[str | None, str]]:
        self.join(timeout=60)
        assert self.error is None, self.error
        assert self.outcomes is not None
        return [(outcome.event_id, outcome.status.value) for outcome in self.outcomes]


def _group(
    database: sa.Engine, *bodies: Sequence[dict[str, Any]]
) -> tuple[str, _Request, list[_Request]]:
    """A first request committed while writes are held, and `bodies` sent
    meanwhile, one after the other, so that they are committed as one group
    once the first's commit goes through: the workspace, the first and the
    group's requests (finished)."""
    workspace = f"w-{uuid.uuid4().hex[:12]}"
    with database.connect() as conn:
        create_workspace(conn, workspace=workspace)
        model = store_model(conn, workspace=workspace, document=MODEL, activate=True)
    committer = Committer(database)
    committer.start()
    ingest = {"workspace": workspace, "model": model}
    first = _Request(
        committer, ingest, [event("first", "demo_request", "2026-05-04T09:00:00Z", contact_id="f")]
    )
    with writes_held(database):
        first.start()
        _until(lambda: committer._leading and not committer._waiting)  # first is committing
        group: list[_Request] = []
        for body in bodies:
            group.append(_Request(committer, ingest, body))
            group[-1].start()
            _until(lambda: len(committer._waiting) == len(group))  # queued, in this order
    for request in (first, *group):
        request.join(timeout=60)
    committer.stop()
    return workspace, first, group


def _stored(database: sa.Engine, workspace: str) -> set[str]:
    with database.connect() as conn:
        rows = conn.execute(sa.select(event_rows.c.id).where(event_rows.c.workspace == workspace))
        return {row.id for row in rows}


@pytest.mark.parametrize("poison_first", [True, False])
def test_a_request_that_fails_its_group_fails_alone(
    database: sa.Engine, poison_first: bool
) -> None:
    poison = f"poison-{uuid.uuid4().hex[:8]}"

    def at(id: str, hour: int) -> dict[str, Any]:
        return event(id, "demo_request", f"2026-05-04T{hour:02}:00:00Z", contact_id="c")

    bad = [at("y", 10), at(poison, 10)]  # y is stored by a later request instead
    good = [at("x1", 11), at("x2", 11)]
    later = [at("x1", 12), at("y", 12), at("x3", 12)]  # x1: good's duplicate
    bodies = [bad, good, later] if poison_first else [good, bad, later]
    with poisoned(database, poison):
        workspace, first, group = _group(database, *bodies)
    failed, fine, last = (
        (group[0], group[1], group[2]) if poison_first else (group[1], group[0], group[2])
    )
    assert first.statuses() == [("first", "accepted")]
    assert failed.error is not None
    assert failed.outcomes is None
    # The database's own error, as the route turns it into a 500.
    assert isinstance(failed.error, sa.exc.DBAPIError)
    assert ("integer overflow" if _sqlite(database) else "poison") in str(failed.error)
    assert fine.statuses() == [("x1", "accepted"), ("x2", "accepted")]
    assert last.statuses() == [("x1", "duplicate"), ("y", "accepted"), ("x3", "accepted")]
    assert _stored(database, workspace) == {"first", "x1", "x2", "x3", "y"}


def test_requests_that_all_fail_their_group_each_get_their_error(database: sa.Engine) -> None:
    poison = f"poison-{uuid.uuid4().hex[:8]}"
    body = [event(poison, "demo_request", "2026-05-04T10:00:00Z", contact_id="c")]
    with poisoned(database, poison):
        workspace, first, group = _group(database, body, body)
    assert first.statuses() == [("first", "accepted")]
    for request in group:
        assert isinstance(request.error, sa.exc.DBAPIError)
    assert group[0].error is not group[1].error  # each its own attempt's
    assert _stored(database, workspace) == {"first"}
