"""Segment's HTTP Tracking API calls translated into canonical events (spec section 1).

Sites and apps instrumented with Segment's or RudderStack's libraries send
their calls to leadscore unchanged: `POST /v1/track`, `/v1/identify`,
`/v1/page`, `/v1/screen`, `/v1/alias`, `/v1/group` and `/v1/batch`. This
module is the pure translation those routes call. It does no I/O and reads no
clock: the time the request was received is an argument. Each call becomes
one canonical event dict, which `parse_event` then accepts; bad input raises
:class:`EventError` naming the Segment field at fault (`messageId`,
`context.page`, `batch[3].event`).

The calls
---------

| Segment call | `type` | `properties` | `traits` |
|---|---|---|---|
| `track` | the `event` name as a type (below) | `properties` | |
| `identify` | `identify` | | `context.traits`, overlaid with `traits` |
| `page` | `page_view` | `properties` + page fields (1) + `name`, `category` | |
| `screen` | `screen_view` | `properties` + `name`, `category` | |
| `alias` | `alias` (contact = `userId`, anonymous = `previousId`) | | |
| `group` | `group` | `group_id` (the `groupId`), `traits` (the group's) | |

(1) `url`, `path`, `referrer`, `title` and `search` from `context.page`.

Every call also gets, when its context has them:

- `utm`: `context.campaign` (what Segment's and RudderStack's browser
  libraries parse out of `utm_*` parameters), with `name` renamed `campaign`
  so the keys read as the UTM parameters do: `utm.source`, `utm.medium`,
  `utm.campaign`, `utm.term`, `utm.content` (other keys are kept as sent);
- `page` (on calls other than `page`, which has these at the top level): the
  `url`, `path`, `referrer`, `title` and `search` of `context.page`, the page
  the call was made on, so a rule can test where a form was submitted.

A key the call's own `properties` already has (with a value other than
`null`) is never replaced by one of these: properties win.

Event types from `track` names
------------------------------

A rule names an event type, `[A-Za-z0-9_.:-]{1,64}`, and Segment's names are
free text in Object Action form ("Order Completed"). A name becomes a type
this way, so that a marketer can work it out by eye:

1. lower-case it (Unicode case folding: `ß` becomes `ss`) and strip accents
   (`é` becomes `e`);
2. replace every run of characters other than `a-z`, `0-9`, `.`, `:` and `-`
   (spaces, underscores, punctuation, letters with no ASCII form) with one `_`;
3. drop `_` at either end.

So "Order Completed", "order completed" and "Order_Completed" are all
`order_completed`, "Signed Up!" is `signed_up`, "Demo Requested (EU)" is
`demo_requested_eu`, "checkout.step-2" stays `checkout.step-2`, and
"signedUp" is `signedup` (camelCase is not split: "iOSAppOpened" has no
reliable split). Lower snake case is the form of leadscore's own types
(`page_view`, `identify`, `stage_set`), so one model reads uniformly, and
spellings that differ only in case or spacing (common when several people
instrument one site) score as one event. A name with nothing left after
these steps (one written only in a script without an ASCII form) or longer
than 64 characters after them is an error, not truncated: truncation could
silently merge two events, and a 64-character name is almost always a bug
such as a URL pasted into it. The `track` names share leadscore's namespace:
a `track` called "Page View" scores as a `page_view`.

Ids
---

- `messageId` is the event id. Libraries always send one, and a retried
  request repeats it, so leadscore drops the copy. A call without one gets
  `segment-` and 32 hex digits of the SHA-256 of its canonical event (type,
  ids, timestamp, properties, traits, as sorted-key JSON): two copies of the
  same fact are one event. (A call with neither `messageId` nor `timestamp`
  takes its receive time, so each copy counts: nothing tells a retry from a
  repeat.) A number is taken as its decimal text, as for user ids.
- `userId` becomes `contact_id` and `anonymousId` becomes `anonymous_id`; at
  least one is required. Segment allows numbers: `42` becomes `"42"`, and a
  float with no fraction is written without one (`1e3` becomes `"1000"`, as
  JavaScript's `String()` writes it). An empty string counts as absent
  (RudderStack's browser library sends `"userId": ""` before identify).
  An event with both links the anonymous id to the contact (spec section 1).
- `alias` links `previousId` to `userId`: its event has `contact_id` =
  `userId` and `anonymous_id` = `previousId`, both required, so the usual
  identity rule attaches the earlier anonymous history to the contact. An
  `anonymousId` on an alias call is ignored. When `previousId` was itself a
  known user id (merging two contacts), the events sent with that id as
  `userId` are not merged: the spec links anonymous ids to contacts, not
  contacts to each other.
- `group` keeps the `groupId` (required; string or number) as the
  `group_id` property: the spec has no accounts, but rules can still score
  joining a group (`event: group, where: {traits.plan: enterprise}`).

Timestamps
----------

The event's instant is, in order of preference:

1. `timestamp`, as sent: server-side libraries and imports set it on
   purpose, and a retried copy keeps exactly the same instant;
2. `originalTimestamp` (the device clock when the call was made, as
   RudderStack sends it) corrected for the device clock's skew the way
   Segment corrects it: `received_at - (sentAt - originalTimestamp)`. The
   call's own `sentAt` is used, else its batch's; without any `sentAt` the
   `originalTimestamp` is taken as sent;
3. `received_at`, the time leadscore received the request.

Inputs are ISO 8601 date-times with a time zone offset (`Z`, `+02:00`,
`+0200` or `+02`), a `T` or space between date and time, and any number of
fraction digits: digits past the sixth (microseconds) are cut, not rounded,
so an instant never moves into the next second. A time without an offset
is an error: Segment's libraries always send one, and guessing UTC would
move events by hours with no sign of it. The output is RFC 3339 in UTC
(`2026-05-04T10:00:00.123Z`). `sentAt` is validated the same way only when
it is used.

Note that Segment's own pipeline is understood to apply the same correction
to a device's `timestamp` when the call has a `sentAt` (analytics.js sends
`timestamp` and `sentAt`, not `originalTimestamp`); leadscore takes
`timestamp` as sent instead, trading correction of badly set browser clocks
for exact, retry-stable instants.

What is dropped
---------------

The envelope is not scoring data and is not kept: `integrations` (it switches
Segment destinations on and off, and leadscore is the receiver), `writeKey`
(the HTTP layer authenticates), `sentAt`, `receivedAt`, `channel`, `version`,
and everything in `context` except `campaign`, `page` and, on `identify`,
`traits`. In particular `context.ip` and `context.userAgent` are not kept: no
rule in the spec reads them, the IP address is personal data that would stay
in the event log for good, and the HTTP layer can log them if it needs to.
`context.traits` on calls other than `identify` (a snapshot of the user's
traits, not a change to them) is dropped, as spec section 1 ignores traits
on other events.

Batches
-------

`/v1/batch` takes `{"batch": [call, ...], "context": ..., "sentAt": ...}`.
Each item names its own `type`. The batch's `context` is merged into each
item's context key by key, the item's own keys winning (so an item's
`context.page` replaces the batch's whole); the batch's `sentAt` is each
item's unless the item has its own. Items are translated one by one: the
result lists, in order, each item's event or its :class:`EventError`, whose
field is prefixed with the item's place (`batch[2].messageId`), so one bad
item never loses the good ones.

Types are checked where they are read: `properties`, `traits`, `context` and
`context.page`, `context.campaign` and (on `identify`) `context.traits` must
be objects or absent, `name` and `category` strings; `null` is absent
everywhere. A call sent to one endpoint with another call's `type` (a
`page` to `/v1/track`) is an error.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ._errors import EventError
from ._time import FIRST_MICROS, LAST_MICROS, format_timestamp, from_datetime

__all__ = ["CALL_TYPES", "batch", "event_type", "from_segment", "message_id"]

CALL_TYPES = ("track", "identify", "page", "screen", "alias", "group")
"""The Segment call types leadscore accepts, each its own `/v1/<type>` endpoint."""

_MAX_TYPE = 64
_NOT_TYPE = re.compile(r"[^a-z0-9.:-]+")
_PAGE_FIELDS = ("url", "path", "referrer", "title", "search")
_ID_PREFIX = "segment-"
# ISO 8601 extended date-time with an offset; seconds and fraction optional.
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)"
)


# A site sends a handful of event names over and over: each folded once
# (6.7 µs a name under cProfile: NFKD, the combining marks, the expression),
# in a cache bounded so that a client inventing names cannot grow it. Errors
# are not cached; they are raised again.
@functools.lru_cache(maxsize=4096)
def event_type(name: str) -> str:
    """The event type of a `track` call named `name` ("Order Completed" -> `order_completed`).

    Raises :class:`EventError` on field `event` when nothing usable is left
    or the type would be longer than 64 characters.
    """
    folded = unicodedata.normalize("NFKD", name.casefold())
    ascii_text = "".join(char for char in folded if not unicodedata.combining(char))
    result = _NOT_TYPE.sub("_", ascii_text).strip("_")
    if not result:
        raise EventError(
            "event",
            f"{_show(name)} has no letter or digit that can name an event type "
            "([A-Za-z0-9_.:-]); rename the event",
        )
    if len(result) > _MAX_TYPE:
        raise EventError(
            "event",
            f"{_show(name)} makes an event type of {len(result)} characters "
            f"({result[:20]}...); at most {_MAX_TYPE}",
        )
    return result


def from_segment(
    call: Mapping[str, Any],
    *,
    kind: str | None = None,
    received_at: datetime,
) -> dict[str, Any]:
    """The canonical event dict of one Segment call (see the module docs for the mapping).

    `kind` is the call type of the endpoint that received it (`track` for
    `/v1/track`); without it (an item of a batch) the call's own `type`
    decides. `received_at` is when the request arrived, an aware datetime.
    Raises :class:`EventError` naming the Segment field at fault.
    """
    if not isinstance(call, Mapping):
        raise EventError("", f"expected a JSON object, got {_show(call)}")
    call_type = _call_type(call, kind)
    context = _object(call, "context") or {}
    properties: dict[str, Any] = {}
    if call_type in ("track", "page", "screen"):
        properties.update(_object(call, "properties") or {})
    traits: dict[str, Any] | None = None

    contact_id = _id(call, "userId")
    anonymous_id = _id(call, "anonymousId")
    if call_type == "track":
        event = call.get("event")
        if event is None:
            raise EventError("event", "required: the name of the tracked event")
        if not isinstance(event, str):
            raise EventError("event", f"expected a string, got {_show(event)}")
        canonical_type = event_type(event)
    elif call_type == "identify":
        canonical_type = "identify"
        traits = dict(_object(context, "traits", "context.traits") or {})
        traits.update(_object(call, "traits") or {})
    elif call_type == "page":
        canonical_type = "page_view"
        page = _object(context, "page", "context.page") or {}
        for key in _PAGE_FIELDS:
            _fill(properties, key, page.get(key))
        _fill(properties, "name", _text(call, "name"))
        _fill(properties, "category", _text(call, "category"))
    elif call_type == "screen":
        canonical_type = "screen_view"
        _fill(properties, "name", _text(call, "name"))
        _fill(properties, "category", _text(call, "category"))
    elif call_type == "alias":
        canonical_type = "alias"
        previous_id = _id(call, "previousId")
        if previous_id is None:
            raise EventError("previousId", "required: the id that alias links to userId")
        if contact_id is None:
            raise EventError("userId", "required: the contact that alias links previousId to")
        anonymous_id = previous_id
    else:  # group
        canonical_type = "group"
        group_id = _id(call, "groupId")
        if group_id is None:
            raise EventError("groupId", "required: the group (account) the user belongs to")
        properties = {"group_id": group_id, "traits": dict(_object(call, "traits") or {})}

    if contact_id is None and anonymous_id is None:
        raise EventError("userId", "required: at least one of userId, anonymousId")
    _fill(properties, "utm", _utm(context))
    if call_type != "page":
        _fill(properties, "page", _page(context))

    out: dict[str, Any] = {"type": canonical_type}
    if contact_id is not None:
        out["contact_id"] = contact_id
    if anonymous_id is not None:
        out["anonymous_id"] = anonymous_id
    out["timestamp"] = format_timestamp(_instant(call, received_at))
    if properties:
        out["properties"] = properties
    if traits is not None:
        out["traits"] = traits
    message_id = _id(call, "messageId")
    if message_id is None:
        message_id = _content_id(out)
    return {"id": message_id, **out}


def batch(body: Mapping[str, Any], *, received_at: datetime) -> list[dict[str, Any] | EventError]:
    """The events of a `/v1/batch` body, item by item: each item's event or its error.

    Raises :class:`EventError` only when the body itself is unusable (no
    `batch` list, a `context` that is not an object).
    """
    if not isinstance(body, Mapping):
        raise EventError("", f"expected a JSON object, got {_show(body)}")
    items = body.get("batch")
    if items is None:
        raise EventError("batch", "required: the list of calls")
    if not isinstance(items, list):
        raise EventError("batch", f"expected a JSON array, got {_show(items)}")
    shared_context = _object(body, "context")
    shared_sent_at = body.get("sentAt")
    results: list[dict[str, Any] | EventError] = []
    for index, raw in enumerate(items):
        where = f"batch[{index}]"
        if not isinstance(raw, Mapping):
            results.append(EventError(where, f"expected a JSON object, got {_show(raw)}"))
            continue
        call: Mapping[str, Any] = raw
        if shared_context:
            own = call.get("context")
            if own is None or isinstance(own, Mapping):  # else from_segment reports it
                call = {**call, "context": {**shared_context, **(own or {})}}
        if shared_sent_at is not None and call.get("sentAt") is None:
            call = {**call, "sentAt": shared_sent_at}
        try:
            results.append(from_segment(call, received_at=received_at))
        except EventError as error:
            field = f"{where}.{error.field}" if error.field else where
            results.append(EventError(field, error.message))
    return results


def _call_type(call: Mapping[str, Any], kind: str | None) -> str:
    stated = call.get("type")
    if kind is not None:
        if kind not in CALL_TYPES:
            raise EventError("type", f"unknown call type {kind!r}; expected one of {_choices()}")
        if stated is not None and stated != kind:
            raise EventError("type", f"a {_show(stated)} call sent to the /v1/{kind} endpoint")
        return kind
    if stated is None:
        raise EventError(
            "type", f"required: each call in a batch names its type, one of {_choices()}"
        )
    if stated not in CALL_TYPES:
        raise EventError("type", f"expected one of {_choices()}, got {_show(stated)}")
    return str(stated)


def _choices() -> str:
    return ", ".join(CALL_TYPES)


def _object(
    container: Mapping[str, Any], key: str, path: str | None = None
) -> Mapping[str, Any] | None:
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise EventError(path or key, f"expected a JSON object, got {_show(value)}")
    return value


def _text(call: Mapping[str, Any], key: str) -> str | None:
    value = call.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(key, f"expected a string, got {_show(value)}")
    return value


def _id(call: Mapping[str, Any], key: str) -> str | None:
    """A Segment id: a string, or a number taken as its decimal text; `null` and `""` are absent."""
    value = call.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    raise EventError(key, f"expected a string or a number, got {_show(value)}")


def message_id(call: object) -> str | None:
    """The event id a call's `messageId` makes, as `from_segment` takes it (a
    number is its decimal text), for the result of a call rejected before it
    became an event; None when there is none or it is not an id (which
    `from_segment` reports as an error of `messageId`)."""
    if not isinstance(call, Mapping):
        return None
    try:
        return _id(call, "messageId")
    except EventError:
        return None


def _fill(properties: dict[str, Any], key: str, value: object) -> None:
    """Set `key` unless the call's properties already give it a value (properties win)."""
    if value is not None and value != {} and properties.get(key) is None:
        properties[key] = value


def _utm(context: Mapping[str, Any]) -> dict[str, Any]:
    campaign = _object(context, "campaign", "context.campaign") or {}
    utm = {key: value for key, value in campaign.items() if key != "name" and value is not None}
    if campaign.get("name") is not None:
        utm.setdefault("campaign", campaign["name"])
    return utm


def _page(context: Mapping[str, Any]) -> dict[str, Any]:
    page = _object(context, "page", "context.page") or {}
    return {key: page[key] for key in _PAGE_FIELDS if page.get(key) is not None}


def _instant(call: Mapping[str, Any], received_at: datetime) -> int:
    """Microseconds since the epoch of the event (module docs, Timestamps)."""
    received = from_datetime(received_at)
    if call.get("timestamp") is not None:
        return _parse_iso(call["timestamp"], "timestamp")
    if call.get("originalTimestamp") is not None:
        original = _parse_iso(call["originalTimestamp"], "originalTimestamp")
        if call.get("sentAt") is None:
            return original
        corrected = received - (_parse_iso(call["sentAt"], "sentAt") - original)
        if not _representable(corrected):
            raise EventError(
                "originalTimestamp",
                "out of range once corrected for clock skew (received_at - (sentAt - this))",
            )
        return corrected
    return received


def _representable(micros: int) -> bool:
    # Compared as numbers rather than by formatting each instant parsed.
    return FIRST_MICROS <= micros <= LAST_MICROS


# The form libraries send (analytics.js, Segment's and RudderStack's SDKs
# write toISOString()'s 2026-05-04T10:00:00.000Z): read by datetime's own
# parser, 1.3 against 4.0 µs for _parse_any's groups and datetime(). Hours
# 00-23 only, whatever a Python's fromisoformat may make of 24:00; whatever
# it refuses (2026-02-30) goes to _parse_any, which says why.
_COMMON = re.compile(
    r"\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})"
)


def _parse_iso(value: object, field: str) -> int:
    if not isinstance(value, str):
        raise EventError(field, f"expected an ISO 8601 string, got {_show(value)}")
    if _COMMON.fullmatch(value):
        try:
            micros = from_datetime(datetime.fromisoformat(value))
        except ValueError:
            pass
        else:
            if _representable(micros):
                return micros
    return _parse_any(value, field)


def _parse_any(value: str, field: str) -> int:
    """_parse_iso for every form the module accepts (see _ISO), with the reason
    for what it refuses."""
    match = _ISO.fullmatch(value.strip())
    if match is None:
        raise EventError(
            field,
            "expected an ISO 8601 date-time with a time zone offset, "
            f"such as 2026-05-04T10:00:00.000Z, got {_show(value)}",
        )
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    fraction_micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        if zulu:
            zone = UTC
        else:
            offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
            zone = timezone(-offset if sign == "-" else offset)
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            fraction_micros,
            zone,
        )
    except ValueError:
        raise EventError(field, f"not a valid date, time or offset: {_show(value)}") from None
    micros = from_datetime(moment)
    if not _representable(micros):  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise EventError(field, f"out of range: {_show(value)}")
    return micros


def _content_id(event: Mapping[str, Any]) -> str:
    text = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _ID_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:32]


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
