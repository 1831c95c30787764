"""The stored event log: encoding events, inserting them, reading an owner's.

An event is stored as the canonical JSON text of its spec form, and every
event the store works with is decoded from that text, also the one being
ingested. So an event applied on arrival and the same event read back for a
rebuild are equal by construction, whatever object the caller passed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Set
from typing import Any

import orjson
import sqlalchemy as sa

from .._errors import EventError
from .._events import Event, parse_event
from .._jsonexact import may_hold_big_integer
from .._replay import Owner
from .database import insert_new
from .prepared import Prepared, run_text
from .tables import events, identity_links

# Ids are indexed, and a PostgreSQL index entry has a size limit (about 2.7 kB);
# this bound keeps every id well inside it on both backends.
MAX_ID_BYTES = 512
_ID_FIELDS = ("id", "contact_id", "anonymous_id")
# The stored text's form: sorted keys, no spaces, UTF-8 as is, no NaN. One
# encoder for every event (json.dumps with options builds one per call).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
)
# Depth past which _plain gives up (orjson's own limit is 255).
_PLAIN_DEPTH = 200


def _plain(value: object, depth: int = 0) -> bool:
    """Whether orjson writes `value` exactly as _CANONICAL does, so that a body
    may be written by orjson (about 4 µs less per event) and stay
    byte-identical: built of dict (str keys), list, str, bool, None, integers
    orjson holds (64 bits) and finite floats whose shortest text orjson spells
    as repr does (it writes 1e-5 where repr writes 1e-05). Strings: orjson
    escapes exactly the characters json does with ensure_ascii=False (checked
    over every code point), and sorts keys by code point as sorted() does.
    Anything else (tuples, subclasses, NaN, other objects) goes to _CANONICAL,
    errors included."""
    if type(value) is str or type(value) is bool or value is None:
        return True
    if type(value) is int:
        return -(2**63) <= value < 2**64
    if type(value) is float:
        return orjson.dumps(value) == repr(value).encode()  # NaN: orjson writes null
    if depth > _PLAIN_DEPTH:
        return False
    if type(value) is dict:
        for key, item in value.items():  # loops, not all(): this runs for every event
            if type(key) is not str or (type(item) is not str and not _plain(item, depth + 1)):
                return False
        return True
    if type(value) is list:
        return all(type(item) is str or _plain(item, depth + 1) for item in value)
    return False


def encode(raw: Event | Mapping[str, Any]) -> tuple[Event, str]:
    """Validate an event for storage: the event as it will be stored, and its body.

    Raises EventError for what the spec rejects (via parse_event) and for what
    a database cannot hold: U+0000 in an id, an id over MAX_ID_BYTES, text that
    is not Unicode (a lone surrogate), a number that is not finite.
    """
    given = isinstance(raw, Event)
    event = raw if isinstance(raw, Event) else parse_event(raw)
    try:
        form = event.to_json()
    except (ValueError, OverflowError) as error:
        raise EventError("timestamp", f"not a representable instant: {error}") from None
    for name in _ID_FIELDS:
        value = form.get(name)
        if isinstance(value, str):
            if "\0" in value:
                raise EventError(name, "must not contain U+0000")
            if len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
                raise EventError(name, f"longer than {MAX_ID_BYTES} bytes of UTF-8")
    try:
        text = orjson.dumps(form, option=orjson.OPT_SORT_KEYS) if _plain(form) else None
    except orjson.JSONEncodeError:  # a lone surrogate: _CANONICAL says why
        text = None
    if text is not None:
        body = text.decode()
        # The text holds no integer orjson reads as a float (_plain): read as is.
        form = orjson.loads(text)
    else:
        try:
            body = _CANONICAL.encode(form)
            body.encode("utf-8")
        except ValueError as error:  # NaN or Infinity; UnicodeEncodeError is a ValueError too
            reason = "not Unicode text" if isinstance(error, UnicodeEncodeError) else str(error)
            raise EventError("", f"cannot be stored: {reason}") from None
        form = loads(body)
    if given:  # an Event built by the caller: validated here, as the text is read back
        return parse_event(form), body
    return _parsed(form, event.timestamp), body


def _parsed(form: dict[str, Any], timestamp: int) -> Event:
    """What parse_event makes of a form parse_event has validated and encode
    written: the same fields, without a second validation. (The timestamp is
    the one parsed, which its canonical text gives back: format_timestamp
    writes every digit.) From the text read back, so that its dicts are the
    stored ones, keys in stored order."""
    return Event(
        id=form["id"],
        type=form["type"],
        timestamp=timestamp,
        contact_id=form.get("contact_id"),
        anonymous_id=form.get("anonymous_id"),
        properties=form.get("properties", {}),
        traits=form.get("traits"),
    )


def decode(body: str) -> Event:
    return parse_event(loads(body))


# orjson reads a stored text to the same objects as json.loads, about three
# times faster (1.3 against 4.6 µs for a typical event), except an integer
# beyond 64 bits, which it reads as a float: a text with a run of 19 ASCII
# digits (every such integer has one, JSON numbers have no other digits; so
# may a string or a float's fraction) is read by json.loads instead. The run
# is looked for in the UTF-8 bytes with every ASCII digit made "1" and every
# other byte "0": 0.7 µs for an owner's state of 520 characters, against
# 10.6 µs for the regular expression \d{19} (which tried its 19 digits from
# every digit of the text's timestamps and floats) and 2.1 µs for orjson's
# reading (_jsonexact.may_hold_big_integer). Stored texts were checked when
# they came in, so json.loads reads what orjson cannot without refusing
# anything: nesting deeper than orjson's limit too.


def loads(body: str) -> Any:
    """A stored JSON text (an event's body, an owner's state) as json.loads reads it."""
    if not may_hold_big_integer(body.encode("utf-8", "surrogatepass")):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:  # nesting deeper than orjson's limit
            pass
    return json.loads(body)


def insert_many(
    conn: sa.Connection, workspace: str, encoded: list[tuple[Event, str]], now: int
) -> set[str]:
    """Store events (of distinct ids) unless their id is taken, in increasing id
    order (locks.py says why), in one statement (on SQLite, one per
    _VALUES_ROWS); the ids that were new."""
    if not encoded:
        return set()
    ordered = sorted(encoded, key=lambda pair: pair[0].id)
    if len(ordered) > 1 and conn.dialect.name == "sqlite":
        return _insert_values(conn, workspace, ordered, now)
    rows = [
        {
            "workspace": workspace,
            "id": event.id,
            "type": event.type,
            "contact_id": event.contact_id,
            "anonymous_id": event.anonymous_id,
            "timestamp": event.timestamp,
            "body": body,
            "received_at": now,
        }
        for event, body in ordered
    ]
    statement = _INSERT.get(conn.dialect.name)
    if statement is None:
        statement = _INSERT[conn.dialect.name] = Prepared(
            insert_new(conn, events, "workspace", "id")
            .values({name: sa.bindparam(name) for name in _COLUMNS})
            .returning(events.c.id)
        )
    if len(rows) == 1:  # a single row needs no executemany machinery
        return {found for (found,) in statement.rows(conn, rows[0])}
    return _insert_unnest(conn, rows)  # several rows on PostgreSQL (SQLite's went above)


# The insert of insert_many, by dialect name, built on first use.
_INSERT: dict[str, Prepared] = {}
_COLUMNS = (
    *("workspace", "id", "type", "contact_id", "anonymous_id", "timestamp", "body"),
    "received_at",
)


# One short statement with a column of values per array: a VALUES list of
# thousands of parameters costs the driver more to parse than the database to
# insert. The arrays are sent in psycopg's binary format (the `%(...)b`
# placeholders; a cursor's `binary=True` is only the results'), so that the
# JSON bodies need no array escaping: psycopg's text array dumper escapes each
# quote of a body with a regular expression's substitution, 26-27 µs of CPU
# an event in a batch of 500 against 1.3-1.5 µs in binary (measured alone on
# this machine, the same rows stored).
_UNNEST = (
    "INSERT INTO events (workspace, id, type, contact_id, anonymous_id, timestamp, body,"
    " received_at) SELECT %(workspace)s::text, u.id, u.type, u.contact_id,"
    " u.anonymous_id, u.timestamp, u.body, %(received_at)s::bigint"
    " FROM unnest(%(id)b::text[], %(type)b::text[], %(contact_id)b::text[],"
    " %(anonymous_id)b::text[], %(timestamp)b::bigint[], %(body)b::text[])"
    " AS u(id, type, contact_id, anonymous_id, timestamp, body)"
    " ON CONFLICT (workspace, id) DO NOTHING RETURNING id"
)


# SQLite: a multi-row VALUES list on the driver's cursor, in statements of at
# most this many rows (800 parameters, inside the 999 of SQLite before 3.32).
# Through SQLAlchemy's executemany the rows' parameters cost more CPU than
# SQLite took to insert them (about 8 µs an event, docs/benchmarks.md).
_VALUES_ROWS = 100
_VALUES = (
    "INSERT INTO events (workspace, id, type, contact_id, anonymous_id, timestamp, body,"
    " received_at) VALUES {} ON CONFLICT (workspace, id) DO NOTHING RETURNING id"
)


def _insert_values(
    conn: sa.Connection, workspace: str, ordered: list[tuple[Event, str]], now: int
) -> set[str]:
    new: set[str] = set()
    for start in range(0, len(ordered), _VALUES_ROWS):
        chunk = ordered[start : start + _VALUES_ROWS]
        parameters: list[Any] = []
        for event, body in chunk:
            parameters += (
                workspace, event.id, event.type, event.contact_id, event.anonymous_id,
                event.timestamp, body, now,
            )  # fmt: skip
        sql = _VALUES.format(",".join(["(?,?,?,?,?,?,?,?)"] * len(chunk)))
        new.update(found for (found,) in run_text(conn, sql, parameters))
    return new


def _insert_unnest(conn: sa.Connection, rows: list[dict[str, Any]]) -> set[str]:
    import psycopg

    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    columns = _columns_of(rows)
    try:
        with driver.cursor(binary=True) as cursor:
            cursor.execute(_UNNEST, columns)
            return {str(row[0]) for row in cursor.fetchall()}
    except psycopg.Error as error:
        # As SQLAlchemy would have raised it (IntegrityError, DataError...):
        # callers tell a refused event from a failing database by it.
        raise sa.exc.DBAPIError.instance(
            _UNNEST, columns, error, dbapi_base_err=psycopg.Error
        ) from error


def _columns_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    first = rows[0]
    columns: dict[str, Any] = {"workspace": first["workspace"], "received_at": first["received_at"]}
    for name in ("id", "type", "contact_id", "anonymous_id", "timestamp", "body"):
        columns[name] = [row[name] for row in rows]
    return columns


def stored(conn: sa.Connection, workspace: str, event_id: str) -> Event:
    return stored_many(conn, workspace, [event_id])[event_id]


_STORED = Prepared(
    sa.select(events.c.id, events.c.body).where(
        events.c.workspace == sa.bindparam("workspace"),
        events.c.id.in_(sa.bindparam("ids", expanding=True)),
    )
)


def stored_many(conn: sa.Connection, workspace: str, event_ids: list[str]) -> dict[str, Event]:
    """The stored copies of these ids."""
    if not event_ids:
        return {}
    rows = _STORED.rows(conn, {"workspace": workspace, "ids": event_ids})
    return {event_id: decode(body) for event_id, body in rows}


def all_events(conn: sa.Connection, workspace: str) -> list[Event]:
    """The whole log of a workspace, in arrival order."""
    return [decode(body) for body in bodies(conn, workspace)]


def bodies(conn: sa.Connection, workspace: str) -> Iterator[str]:
    """The whole log of a workspace as its stored canonical JSON texts (one
    line each: JSON escapes line breaks in strings), in arrival order."""
    rows = conn.execute(
        sa.select(events.c.body).where(events.c.workspace == workspace).order_by(events.c.seq)
    )
    yield from rows.scalars()


def has_anonymous_only(
    conn: sa.Connection, workspace: str, anonymous_id: str, *, besides: Set[str] = frozenset()
) -> bool:
    """Whether some event carries this anonymous id and no contact id, other
    than the events of `besides` (a batch's events not yet applied)."""
    query = (
        sa.select(events.c.id)
        .where(*_anonymous_only(workspace, anonymous_id))
        .limit(len(besides) + 1)
    )
    return any(found not in besides for found in conn.execute(query).scalars())


def owned(conn: sa.Connection, workspace: str, owner: Owner, at: int | None = None) -> list[Event]:
    """An owner's events in (timestamp, id) order; with `at`, as of that instant.

    A contact owns its events and the anonymous-only events of every id whose
    link it won; an anonymous profile, the anonymous-only events of its id
    while that id has no link. As of `at`, events and links after `at` do not
    exist (spec 1). A link is never replaced by a later one, so the winner as
    of `at` is the stored winner if its link is not after `at`, else none.
    """
    identified, key = owner
    values: dict[str, Any] = {"workspace": workspace, "key": key}
    if at is not None:
        values["at"] = at
    lateral = conn.dialect.name == "postgresql"
    query = _owned_query(identified, as_of=at is not None, lateral=lateral)
    found = [decode(body) for (body,) in query.rows(conn, values)]
    if at is not None:
        found = [event for event in found if event.timestamp <= at]
    # Sorted here, not in SQL: ids compare by code point (spec 1), which a
    # PostgreSQL collation other than "C" would not do.
    found.sort(key=lambda event: event.order_key)
    return found


@functools.cache
def _owned_query(identified: bool, *, as_of: bool, lateral: bool) -> Prepared:
    """`owned`'s query for one kind of owner, with or without `at`, built once
    (rebuilds run it often): bound parameters workspace, key and at. With
    `lateral` (PostgreSQL), a contact's linked ids' events are a LATERAL
    subquery of its links."""
    workspace: sa.BindParameter[str] = sa.bindparam("workspace")
    key: sa.BindParameter[str] = sa.bindparam("key")
    at: sa.BindParameter[int] = sa.bindparam("at")
    link = identity_links
    joined = events.join(
        link,
        sa.and_(
            link.c.workspace == events.c.workspace, link.c.anonymous_id == events.c.anonymous_id
        ),
        isouter=not identified,
    )
    parts: list[sa.Select[Any]]
    if identified:
        own = events.c.contact_id == key
        # sa.true() leaves link conditions out of the current owner's query.
        linked = sa.true() if not as_of else link.c.timestamp <= at
        # The ids it won, as a list to look up in the anonymous-only index:
        # as a join, SQLite's planner walks every anonymous-only event of the
        # workspace instead (hundreds of milliseconds in a log of a million).
        won = sa.select(link.c.anonymous_id).where(
            link.c.workspace == workspace, link.c.contact_id == key, linked
        )
        theirs = sa.select(events.c.body).where(
            *_anonymous_only(workspace, None), events.c.anonymous_id.in_(won)
        )
        if lateral:
            # PostgreSQL without statistics on these tables (a new database,
            # or autovacuum off, as on the development machine) plans the IN
            # above as a join that walks every anonymous-only event of the
            # workspace, as SQLite's planner did: 4.8 ms against 0.1 ms with
            # 3,600 of them, and growing with the log. So each link's events
            # are looked up in the anonymous-only index, in a LATERAL
            # subquery whatever the planner knows: OFFSET 0 keeps PostgreSQL
            # from flattening it back into the same join.
            per_link = (
                sa.select(events.c.body)
                .where(
                    events.c.workspace == link.c.workspace,
                    events.c.contact_id.is_(None),
                    events.c.anonymous_id == link.c.anonymous_id,
                )
                .offset(sa.literal_column("0", sa.Integer))
                .lateral()
            )
            theirs = (
                sa.select(per_link.c.body)
                .select_from(link.join(per_link, sa.true()))
                .where(link.c.workspace == workspace, link.c.contact_id == key, linked)
            )
        parts = [sa.select(events.c.body).where(events.c.workspace == workspace, own), theirs]
    else:
        unlinked: sa.ColumnElement[bool] = link.c.contact_id.is_(None)
        if as_of:
            unlinked = sa.or_(unlinked, link.c.timestamp > at)
        parts = [
            sa.select(events.c.body)
            .select_from(joined)
            .where(*_anonymous_only(workspace, key), unlinked)
        ]
    if as_of:
        # In SQL for the first part only: on a contact's linked ids' part,
        # SQLite would range over the contact index again (contact_id IS
        # NULL, timestamp <= at). Their few events are filtered in `owned`.
        parts = [parts[0].where(events.c.timestamp <= at), *parts[1:]]
    return Prepared(parts[0] if len(parts) == 1 else sa.union_all(*parts))


def owned_many(
    conn: sa.Connection, workspace: str, wanted: list[Owner]
) -> dict[Owner, list[Event]]:
    """The current logs of several owners (as `owned` without `at`), in a
    query per kind of owner; owners without events are left out."""
    contacts = sorted({key for identified, key in wanted if identified})
    anonymous = sorted({key for identified, key in wanted if not identified})
    link = identity_links
    joined = sa.and_(
        link.c.workspace == events.c.workspace, link.c.anonymous_id == events.c.anonymous_id
    )
    queries: list[sa.Select[Any]] = []
    if contacts:
        queries.append(
            sa.select(sa.true(), events.c.contact_id, events.c.body).where(
                events.c.workspace == workspace, events.c.contact_id.in_(contacts)
            )
        )
        won = sa.select(link.c.anonymous_id).where(
            link.c.workspace == workspace, link.c.contact_id.in_(contacts)
        )
        queries.append(
            sa.select(sa.true(), link.c.contact_id, events.c.body)
            .select_from(events.join(link, joined))
            .where(
                events.c.workspace == workspace,
                events.c.contact_id.is_(None),
                events.c.anonymous_id.in_(won),  # as in `owned`: the links first
            )
        )
    if anonymous:
        queries.append(
            sa.select(sa.false(), events.c.anonymous_id, events.c.body)
            .select_from(events.join(link, joined, isouter=True))
            .where(
                events.c.workspace == workspace,
                events.c.contact_id.is_(None),
                events.c.anonymous_id.in_(anonymous),
                link.c.contact_id.is_(None),
            )
        )
    found: dict[Owner, list[Event]] = {}
    for query in queries:
        for row in conn.execute(query):
            identified, key, body = row[0], row[1], row[2]
            found.setdefault((bool(identified), str(key)), []).append(decode(body))
    for history in found.values():
        history.sort(key=lambda event: event.order_key)  # by code point, as in `owned`
    return found


def anonymous_as_of(conn: sa.Connection, workspace: str, at: int) -> list[str]:
    """Anonymous ids that are a profile as of `at` only: their link comes later."""
    link = identity_links
    query = (
        sa.select(events.c.anonymous_id)
        .distinct()
        .join(
            link,
            sa.and_(
                link.c.workspace == events.c.workspace,
                link.c.anonymous_id == events.c.anonymous_id,
            ),
        )
        .where(
            events.c.workspace == workspace,
            events.c.contact_id.is_(None),
            events.c.timestamp <= at,
            link.c.timestamp > at,
        )
    )
    return [anonymous for anonymous in conn.execute(query).scalars() if anonymous is not None]


def _anonymous_only(
    workspace: str | sa.BindParameter[Any], anonymous_id: str | sa.BindParameter[Any] | None
) -> tuple[sa.ColumnElement[bool], ...]:
    """Events with no contact id (of one anonymous id, unless None)."""
    found = (events.c.workspace == workspace, events.c.contact_id.is_(None))
    if anonymous_id is None:
        return found
    return (*found, events.c.anonymous_id == anonymous_id)
