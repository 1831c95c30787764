"""Instants as integer microseconds since the Unix epoch, UTC.

Integers keep ordering and equality exact (the spec orders events by instant
and allows microseconds at most) and make a timestamp cheap to store, compare
and spill to disk. Only decay needs seconds as a float.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

MICROS = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICRO = timedelta(microseconds=1)
# RFC 3339 date-time with a mandatory offset and at most six fraction digits.
# The offset's minutes are 00-59 and its hours 00-23 (RFC 3339's
# time-numoffset): datetime would read +05:60 as +06:00.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?"
    r"(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
)


# The instants a datetime can hold, years 1 to 9999 in UTC: those that
# format_timestamp can write, and so the only ones an input may give.
FIRST_MICROS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _ONE_MICRO
LAST_MICROS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _ONE_MICRO


def parse_timestamp(text: str) -> int:
    """Parse an RFC 3339 timestamp with offset into microseconds since the epoch.

    Raises ValueError with a message fit for a user when the text is not one.
    """
    if not _RFC3339.fullmatch(text):
        raise ValueError(
            "expected an RFC 3339 timestamp with offset, such as 2026-05-04T10:00:00Z, "
            f"got {text!r}"
        )
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            # RFC 3339 allows a lower-case t and z (and the expression above
            # lets them through), which fromisoformat refuses; the batch
            # engine reads them too.
            moment = datetime.fromisoformat(text.upper())
        except ValueError:
            raise ValueError(f"not a valid date or time: {text!r}") from None
    delta = moment - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * MICROS + delta.microseconds
    if not FIRST_MICROS <= micros <= LAST_MICROS:
        # 9999-12-31T23:00:00-01:00 is in year 10000 in UTC: an instant no
        # output could write (format_timestamp), which failed later, after
        # the work, with an OverflowError.
        raise ValueError(f"out of range: {text!r} is not between years 1 and 9999 in UTC")
    return micros


def parse_instant(text: str) -> int:
    """An RFC 3339 timestamp, or a date meaning 00:00 UTC of that day.

    What people type for "as of" times (`--at 2026-05-04`, `updated_since`).
    Raises ValueError with a message fit for a user.
    """
    try:
        return parse_timestamp(text)
    except ValueError:
        if _RFC3339.fullmatch(text):  # a timestamp, but no valid one: say why
            raise
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "expected an RFC 3339 time such as 2026-05-04T10:00:00Z or a date such as "
            f"2026-05-04, got {text!r}"
        ) from None
    return from_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC))


def from_datetime(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("expected a datetime with a time zone")
    return (moment - _EPOCH) // _ONE_MICRO


def to_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


# Naive, for format_timestamp: isoformat() of an aware datetime appends its
# offset, which a naive one has none of to strip again.
_NAIVE_EPOCH = datetime(1970, 1, 1)


def format_timestamp(micros: int) -> str:
    """UTC with `Z`; a fraction only when non-zero, without trailing zeros (spec section 3)."""
    moment = _NAIVE_EPOCH + timedelta(microseconds=micros)
    # Not strftime: on Linux it writes year 999 as "999", which is not RFC 3339.
    # isoformat() writes the six fraction digits only when there is a fraction,
    # so the zeros stripped are the fraction's (a nonzero digit stops them).
    text = moment.isoformat()
    if moment.microsecond:
        text = text.rstrip("0")
    return text + "Z"
