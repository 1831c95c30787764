"""Opening a database, and the transaction rules every store function follows.

Two backends, one schema: PostgreSQL (through psycopg 3) for the service,
SQLite (the standard library's driver) for a single machine and for tests.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

# Every JSON column goes through this. Python's json writes a float as its
# shortest repr, which reads back to the same float: stored engine states
# continue bit for bit (see ContactState.to_json). One encoder for every
# call: json.dumps with options builds a new one each time, which cost more
# than encoding a state.
column_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


# Connections a process may open: as many as requests it runs at once (the
# 40 threads of the server's thread pool; each request holds a connection
# only while it authenticates or reads), with a few kept open between bursts.
# SQLAlchemy's default, 5 + 10, would make a burst of requests wait for one.
_POOL: dict[str, Any] = {"pool_size": 8, "max_overflow": 32}


def open_database(url: str | sa.URL) -> sa.Engine:
    """A SQLAlchemy engine for a `postgresql://` or `sqlite:///path` URL, set up
    the way the store relies on (drivers, isolation, durability, locking)."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            # SQLAlchemy's default PostgreSQL driver is psycopg2; the project ships psycopg 3.
            parsed = parsed.set(drivername="postgresql+psycopg")
        # READ COMMITTED, explicitly: each statement sees what was committed
        # before it started, so what a writer reads after taking its advisory
        # locks (see locks.py) is up to date. REPEATABLE READ would read from a
        # snapshot taken before the locks were granted.
        return sa.create_engine(
            parsed,
            isolation_level="READ COMMITTED",
            json_serializer=column_json,
            pool_pre_ping=True,
            **_POOL,
        )
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # An embedded database lives in a data directory that may not exist yet.
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        in_memory = not parsed.database or parsed.database == ":memory:"
        database = sa.create_engine(
            parsed,
            json_serializer=column_json,
            # An in-memory database lives in one connection: no pool to size.
            **({} if in_memory else _POOL),
            # A writer waits this long (seconds) for another one's BEGIN IMMEDIATE to end;
            # connections pass between threads through the pool.
            connect_args={
                "timeout": 60.0,
                "check_same_thread": False,
                "factory": _writer_lock_class(),
            },
        )
        event.listen(database, "connect", _configure_sqlite)
        event.listen(database, "begin", _begin_immediate)
        return database
    raise ValueError(f"unsupported database {parsed.drivername!r}: expected postgresql or sqlite")


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module would open transactions itself, late and deferred;
    # turn that off so that _begin_immediate decides (SQLAlchemy's recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL: readers do not block the writer nor the writer the readers.
    # synchronous=FULL: a commit is on disk when it returns, even in WAL mode
    # (whose default, NORMAL, can lose the last commits on a power cut).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(connection: sa.Connection) -> None:
    # IMMEDIATE takes the database's write lock at BEGIN: one writer at a
    # time, so what a transaction read is still true when it writes. A
    # deferred BEGIN would let two writers read the same state and the
    # second fail with SQLITE_BUSY at its first write.
    dbapi_connection = connection.connection.driver_connection
    assert isinstance(dbapi_connection, _Serialized)
    if connection.get_execution_options().get(_READ_ONLY):
        # A reader (see `reader`): a deferred BEGIN. In WAL mode it reads a
        # consistent snapshot and neither waits for the writer nor holds it up.
        dbapi_connection.execute("BEGIN")
    else:
        dbapi_connection.begin_immediate()


_READ_ONLY = "leadscore_read_only"


def reader(database: sa.Engine) -> sa.Connection:
    """A connection for transactions that only read. On SQLite they do not
    queue for the write lock (requests authenticate and look up their model
    while another commits); elsewhere it is an ordinary connection."""
    return database.connect().execution_options(**{_READ_ONLY: True})


def lookup_reader(database: sa.Engine) -> sa.Connection:
    """A reader for lookups that need no snapshot in common (each is right on
    its own when it runs: a key's check, a workspace's active model).

    On PostgreSQL it is in autocommit: no BEGIN and COMMIT, two of the round
    trips of a request's reads, for the same answers (in READ COMMITTED
    every statement of a transaction takes a snapshot of its own anyway, and
    these take no locks). On SQLite it is a `reader`: a deferred BEGIN there
    costs no I/O, and its snapshot keeps the lookups from waiting for the
    writer."""
    if database.dialect.name == "postgresql":
        return database.connect().execution_options(isolation_level="AUTOCOMMIT")
    return reader(database)


@contextmanager
def reading(source: sa.Engine | sa.Connection) -> Iterator[sa.Connection]:
    """A reader of an engine for the block, or the connection given: a request
    that reads several things (its key, its model) checks out one connection
    (on PostgreSQL each checkout also pings the server)."""
    if isinstance(source, sa.Connection):
        yield source
    else:
        with reader(source) as conn:
            yield conn


class _Serialized(sqlite3.Connection):
    """A SQLite connection whose transactions queue on a lock of its process
    (a class attribute: one per database engine) before BEGIN IMMEDIATE.

    SQLite makes a second writer wait in its busy handler, which polls with
    sleeps of up to 100 ms: under concurrent requests most of a request's
    latency would be sleeping after the lock was free. Threads of one
    process wait here instead, woken the moment the lock is released (after
    the COMMIT or ROLLBACK has returned); other processes still meet the busy
    handler.
    """

    writers: threading.Lock
    _holding = False

    def begin_immediate(self) -> None:
        self.writers.acquire()
        self._holding = True
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self.writers.release()


def _writer_lock_class() -> type[_Serialized]:
    return type("SerializedConnection", (_Serialized,), {"writers": threading.Lock()})


@contextmanager
def transaction(conn: sa.Connection) -> Iterator[sa.Connection]:
    """Run in the caller's transaction when one is open, else in a new one
    committed at the end (rolled back on an exception)."""
    if conn.in_transaction():
        yield conn
    else:
        with conn.begin():
            yield conn


def insert_new(conn: sa.Connection, table: sa.Table, *unique: str) -> sa.Insert:
    """INSERT ... ON CONFLICT (unique) DO NOTHING, which both backends have
    under the same name; with RETURNING, no row back means it existed."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(unique))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(unique))


def now() -> int:
    """The store's clock, in microseconds since the epoch: when rows were written.
    Scores never read it; their time is always an argument."""
    return time.time_ns() // 1000
