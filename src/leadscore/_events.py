"""Events in the canonical format of spec section 1, and their validation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import EventError
from ._time import format_timestamp, parse_timestamp

_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
FIELDS = ("id", "type", "contact_id", "anonymous_id", "timestamp", "properties", "traits")
_KNOWN = frozenset(FIELDS)


@dataclass(slots=True)
class Event:
    """One fact about a person. `timestamp` is microseconds since the epoch, UTC.

    Treat it as immutable. It is not frozen only because a frozen dataclass
    is several times slower to build, and a large file builds millions.
    """

    id: str
    type: str
    timestamp: int
    contact_id: str | None = None
    anonymous_id: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    traits: Mapping[str, Any] | None = None

    @property
    def order_key(self) -> tuple[int, str]:
        """Events apply in (timestamp, id) order; Python compares str by code point."""
        return (self.timestamp, self.id)

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON object of this event."""
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.contact_id is not None:
            out["contact_id"] = self.contact_id
        if self.anonymous_id is not None:
            out["anonymous_id"] = self.anonymous_id
        out["timestamp"] = format_timestamp(self.timestamp)
        if self.properties:
            out["properties"] = dict(self.properties)
        if self.traits is not None:
            out["traits"] = dict(self.traits)
        return out


# Event types come from a small vocabulary: remember the valid ones rather
# than run the pattern on every event. Bounded, so odd input cannot grow it.
_VALID_TYPES: set[str] = set()
_MAX_REMEMBERED_TYPES = 10_000


def _valid_type(event_type: str) -> bool:
    if not _TYPE.fullmatch(event_type):
        return False
    if len(_VALID_TYPES) < _MAX_REMEMBERED_TYPES:
        _VALID_TYPES.add(event_type)
    return True


def _text(raw: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise EventError(name, "required")
        return None
    if not isinstance(value, str) or not value:
        raise EventError(name, f"expected a non-empty string, got {_show(value)}")
    return value


def _required_text(raw: Mapping[str, Any], name: str) -> str:
    value = _text(raw, name, required=True)
    assert value is not None  # required=True raises instead
    return value


def _object(raw: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EventError(name, f"expected a JSON object, got {_show(value)}")
    return value


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_event(raw: object) -> Event:
    """Validate one event record (a decoded JSON object) into an :class:`Event`.

    Raises :class:`EventError` naming the first field at fault. Unknown fields
    are errors: a misspelt `propertes` must not silently score as no properties.
    """
    if not isinstance(raw, dict):
        raise EventError("", f"expected a JSON object, got {_show(raw)}")
    if not _KNOWN.issuperset(raw):
        unknown = raw.keys() - _KNOWN
        raise EventError(sorted(unknown)[0], f"unknown field; expected one of {', '.join(FIELDS)}")
    # The common case is checked inline (this runs for every event of a file);
    # _text gives the message when a field is absent or not a string.
    event_id = raw.get("id")
    if type(event_id) is not str or not event_id:
        event_id = _required_text(raw, "id")
    event_type = raw.get("type")
    if type(event_type) is not str or not event_type:
        event_type = _required_text(raw, "type")
    if event_type not in _VALID_TYPES and not _valid_type(event_type):
        raise EventError("type", f"expected [A-Za-z0-9_.:-]{{1,64}}, got {_show(event_type)}")
    contact_id = raw.get("contact_id")
    if contact_id is not None and (type(contact_id) is not str or not contact_id):
        contact_id = _text(raw, "contact_id", required=False)
    anonymous_id = raw.get("anonymous_id")
    if anonymous_id is not None and (type(anonymous_id) is not str or not anonymous_id):
        anonymous_id = _text(raw, "anonymous_id", required=False)
    if contact_id is None and anonymous_id is None:
        raise EventError("contact_id", "required: at least one of contact_id, anonymous_id")
    stamp = raw.get("timestamp")
    if stamp is None:
        raise EventError("timestamp", "required")
    if not isinstance(stamp, str):
        raise EventError("timestamp", f"expected an RFC 3339 string, got {_show(stamp)}")
    try:
        timestamp = parse_timestamp(stamp)
    except ValueError as exc:
        raise EventError("timestamp", str(exc)) from None
    properties = _object(raw, "properties")
    traits = _object(raw, "traits")
    return Event(
        id=event_id,
        type=event_type,
        timestamp=timestamp,
        contact_id=contact_id,
        anonymous_id=anonymous_id,
        properties=properties if properties is not None else {},
        # Traits only mean something on `identify` (spec section 1); elsewhere they are ignored.
        traits=traits if event_type == "identify" else None,
    )
