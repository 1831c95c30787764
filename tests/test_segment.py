"""Segment HTTP Tracking API calls become canonical events (leadscore._segment).

`CAPTURED` is a `/v1/batch` body exactly as segment-analytics-python 2.4.0
(Segment's official Python library) sent it to a dummy server on 127.0.0.1:
only `sentAt`, stamped by the library at send time, was fixed afterwards so
the expected instants stay put. When the library is installed, the tests at
the end rebuild that body with it (offline, and through a local dummy server)
and check it still matches. The analytics.js and RudderStack payloads are
written by hand after those libraries' documented payloads, and say so.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from leadscore._errors import EventError
from leadscore._events import parse_event
from leadscore._segment import CALL_TYPES, batch, event_type, from_segment

RECEIVED = datetime(2026, 5, 4, 10, 6, 1, 500000, tzinfo=UTC)
LIBRARY = {"name": "analytics-python", "version": "2.4.0"}

# Captured from segment-analytics-python 2.4.0 (see the module docstring).
CAPTURED: dict[str, Any] = {
    "batch": [
        {
            "integrations": {},
            "anonymousId": "anon-1",
            "timestamp": "2026-05-04T10:00:00.123+00:00",
            "context": {"library": LIBRARY},
            "type": "identify",
            "userId": "42",
            "traits": {"email": "ada@example.com", "job_title": "CTO", "company": {"name": "Acme"}},
            "messageId": "msg-identify",
        },
        {
            "integrations": {},
            "anonymousId": None,
            "properties": {"revenue": 99.5, "currency": "EUR"},
            "timestamp": "2026-05-04T10:01:00.123+00:00",
            "context": {
                "campaign": {"name": "spring", "source": "newsletter", "medium": "email"},
                "ip": "203.0.113.9",
                "userAgent": "Mozilla/5.0",
                "library": LIBRARY,
            },
            "userId": "42",
            "type": "track",
            "event": "Order Completed",
            "messageId": "msg-track",
        },
        {
            "integrations": {},
            "anonymousId": "anon-1",
            "properties": {"title": "Pricing - Acme"},
            "timestamp": "2026-05-04T12:02:00.000+02:00",
            "category": "Docs",
            "context": {
                "page": {
                    "url": "https://acme.example/pricing?plan=pro",
                    "path": "/pricing",
                    "referrer": "https://www.google.com/",
                    "search": "?plan=pro",
                    "title": "ignored: properties win",
                },
                "library": LIBRARY,
            },
            "userId": None,
            "type": "page",
            "name": "Pricing",
            "messageId": "msg-page",
        },
        {
            "integrations": {},
            "anonymousId": None,
            "properties": {"tab": "billing"},
            "timestamp": "2026-05-04T10:03:00.123+00:00",
            "category": "Account",
            "context": {"library": LIBRARY},
            "userId": "user-7",
            "type": "screen",
            "name": "Settings",
            "messageId": "msg-screen",
        },
        {
            "integrations": {},
            "previousId": "anon-1",
            "timestamp": "2026-05-04T10:04:00.123+00:00",
            "context": {"library": LIBRARY},
            "userId": "42",
            "type": "alias",
            "messageId": "msg-alias",
            "anonymousId": None,
        },
        {
            "integrations": {},
            "anonymousId": None,
            "timestamp": "2026-05-04T10:05:00.123+00:00",
            "groupId": 1001,
            "context": {"library": LIBRARY},
            "userId": "42",
            "traits": {"name": "Acme", "plan": "enterprise"},
            "type": "group",
            "messageId": "msg-group",
        },
    ],
    "sentAt": "2026-05-04T10:06:00.250000+00:00",
    "writeKey": "wk_test",
}

EXPECTED: list[dict[str, Any]] = [
    {
        "id": "msg-identify",
        "type": "identify",
        "contact_id": "42",
        "anonymous_id": "anon-1",
        "timestamp": "2026-05-04T10:00:00.123Z",
        "traits": {"email": "ada@example.com", "job_title": "CTO", "company": {"name": "Acme"}},
    },
    {
        "id": "msg-track",
        "type": "order_completed",
        "contact_id": "42",
        "timestamp": "2026-05-04T10:01:00.123Z",
        "properties": {
            "revenue": 99.5,
            "currency": "EUR",
            "utm": {"campaign": "spring", "source": "newsletter", "medium": "email"},
        },
    },
    {
        "id": "msg-page",
        "type": "page_view",
        "anonymous_id": "anon-1",
        "timestamp": "2026-05-04T10:02:00Z",
        "properties": {
            "title": "Pricing - Acme",
            "url": "https://acme.example/pricing?plan=pro",
            "path": "/pricing",
            "referrer": "https://www.google.com/",
            "search": "?plan=pro",
            "name": "Pricing",
            "category": "Docs",
        },
    },
    {
        "id": "msg-screen",
        "type": "screen_view",
        "contact_id": "user-7",
        "timestamp": "2026-05-04T10:03:00.123Z",
        "properties": {"tab": "billing", "name": "Settings", "category": "Account"},
    },
    {
        "id": "msg-alias",
        "type": "alias",
        "contact_id": "42",
        "anonymous_id": "anon-1",
        "timestamp": "2026-05-04T10:04:00.123Z",
    },
    {
        "id": "msg-group",
        "type": "group",
        "contact_id": "42",
        "timestamp": "2026-05-04T10:05:00.123Z",
        "properties": {"group_id": "1001", "traits": {"name": "Acme", "plan": "enterprise"}},
    },
]

# Hand-written after analytics.js 2.0 (Segment's browser library): a page call
# as its /v1/page request body carries it, with `timestamp` and `sentAt`.
ANALYTICS_JS_PAGE: dict[str, Any] = {
    "timestamp": "2026-05-04T10:00:00.321Z",
    "integrations": {},
    "type": "page",
    "properties": {
        "path": "/blog/lead-scoring",
        "referrer": "https://www.linkedin.com/",
        "search": "",
        "title": "Lead scoring, explained",
        "url": "https://acme.example/blog/lead-scoring",
    },
    "context": {
        "page": {
            "path": "/blog/lead-scoring",
            "referrer": "https://www.linkedin.com/",
            "search": "?utm_source=linkedin&utm_medium=social",
            "title": "Lead scoring, explained",
            "url": "https://acme.example/blog/lead-scoring?utm_source=linkedin&utm_medium=social",
        },
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
        "locale": "en-GB",
        "library": {"name": "analytics.js", "version": "npm:next-1.70.0"},
        "campaign": {"source": "linkedin", "medium": "social"},
    },
    "messageId": "ajs-next-5a0f2b6b3f0d4b1e9d3c",
    "anonymousId": "8c1d2a36-4a3e-4c2b-9d8e-1f0b6f2e7a55",
    "userId": None,
    "writeKey": "wk_test",
    "sentAt": "2026-05-04T10:00:00.400Z",
    "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
}

# Hand-written after RudderStack's JavaScript SDK: `originalTimestamp` and
# `sentAt` from the device clock (here 2 minutes fast), `userId` "" before
# identify, identify traits in `context.traits`.
RUDDER_TRACK: dict[str, Any] = {
    "channel": "web",
    "context": {
        "app": {"name": "RudderLabs JavaScript SDK", "version": "3.0.0"},
        "traits": {"plan": "trial"},
        "library": {"name": "RudderLabs JavaScript SDK", "version": "3.0.0"},
        "userAgent": "Mozilla/5.0",
        "locale": "en-US",
        "screen": {"density": 2, "width": 1440, "height": 900},
        "page": {
            "path": "/signup",
            "referrer": "$direct",
            "search": "",
            "title": "Sign up",
            "url": "https://acme.example/signup",
            "initial_referrer": "$direct",
        },
        "campaign": {},
    },
    "rudderId": "b7a8a3d0-1c53-4c2f-a4e3-5c1a2e9b0f11",
    "messageId": "2f7d3a34-8e7c-4d6e-9f90-3b1f1c5d2e10",
    "originalTimestamp": "2026-05-04T10:02:00.000Z",
    "sentAt": "2026-05-04T10:02:01.000Z",
    "anonymousId": "rs-anon-1",
    "userId": "",
    "event": "Form Submitted",
    "type": "track",
    "properties": {"form": "signup"},
    "integrations": {"All": True},
}

RUDDER_IDENTIFY: dict[str, Any] = {
    "channel": "web",
    "context": {"traits": {"email": "bo@example.com", "plan": "trial"}},
    "messageId": "rs-identify-1",
    "originalTimestamp": "2026-05-04T10:02:05.000Z",
    "sentAt": "2026-05-04T10:02:06.000Z",
    "anonymousId": "rs-anon-1",
    "userId": "bo",
    "type": "identify",
    "traits": {"plan": "pro"},
}


def canonical(result: dict[str, Any] | EventError) -> dict[str, Any]:
    """Every output is a valid canonical event, in the canonical form `to_json` writes."""
    assert isinstance(result, dict), result
    assert parse_event(result).to_json() == result
    return result


def translate(call: Mapping[str, Any], kind: str | None = None, **options: Any) -> dict[str, Any]:
    return canonical(from_segment(call, kind=kind, received_at=options.get("at", RECEIVED)))


def error_of(call: Mapping[str, Any], kind: str | None = None) -> EventError:
    with pytest.raises(EventError) as caught:
        from_segment(call, kind=kind, received_at=RECEIVED)
    return caught.value


def track(**fields: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "type": "track",
        "event": "Demo Requested",
        "userId": "u1",
        "messageId": "m1",
        "timestamp": "2026-05-04T10:00:00Z",
    }
    call.update(fields)
    return {key: value for key, value in call.items() if value is not ...}


# --- the Python library's payloads -------------------------------------------------------------


def test_the_captured_batch_becomes_the_expected_events() -> None:
    results = batch(CAPTURED, received_at=RECEIVED)
    assert [canonical(result) for result in results] == EXPECTED


@pytest.mark.parametrize("index", range(len(EXPECTED)))
def test_each_captured_call_sent_alone_to_its_endpoint(index: int) -> None:
    call = CAPTURED["batch"][index]
    assert translate(call, call["type"]) == EXPECTED[index]
    without_type = {key: value for key, value in call.items() if key != "type"}
    assert translate(without_type, call["type"]) == EXPECTED[index]


def test_the_input_is_not_modified() -> None:
    before = copy.deepcopy(CAPTURED)
    batch(CAPTURED, received_at=RECEIVED)
    assert before == CAPTURED


# --- track names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Order Completed", "order_completed"),
        ("order completed", "order_completed"),
        ("Order_Completed", "order_completed"),
        ("order_completed", "order_completed"),
        ("  Order   Completed  ", "order_completed"),
        ("Order __ Completed", "order_completed"),
        ("Signed Up!", "signed_up"),
        ("Demo Requested (EU)", "demo_requested_eu"),
        ("checkout.step-2", "checkout.step-2"),
        ("video:played", "video:played"),
        ("signedUp", "signedup"),
        ("Commande passée", "commande_passee"),
        ("Straße besucht", "strasse_besucht"),
        ("ÉVÉNEMENT", "evenement"),
        ("Kø opened", "k_opened"),
        ("購入 completed", "completed"),
        ("x" * 64, "x" * 64),
        ("A" * 60 + " !!! ", "a" * 60),
    ],
)
def test_track_names_become_lower_snake_case_types(name: str, expected: str) -> None:
    assert event_type(name) == expected
    assert translate(track(event=name))["type"] == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("購入", "has no letter or digit"),
        ("!!!", "has no letter or digit"),
        ("", "has no letter or digit"),
        ("x" * 65, "65 characters"),
        ("Very " * 14, "69 characters"),
    ],
)
def test_unusable_track_names_are_errors(name: str, message: str) -> None:
    error = error_of(track(event=name))
    assert error.field == "event"
    assert message in error.message


# --- each call's mapping -----------------------------------------------------------------------


def test_track_keeps_its_properties_and_adds_utm_and_the_page_it_was_on() -> None:
    event = translate(RUDDER_TRACK, at=datetime(2026, 5, 4, 10, 0, 1, tzinfo=UTC))
    assert event == {
        "id": "2f7d3a34-8e7c-4d6e-9f90-3b1f1c5d2e10",
        "type": "form_submitted",
        "anonymous_id": "rs-anon-1",
        # received 10:00:01, sent 10:02:01 by a clock 2 minutes fast, made 1 s before sending
        "timestamp": "2026-05-04T10:00:00Z",
        "properties": {
            "form": "signup",
            "page": {
                "url": "https://acme.example/signup",
                "path": "/signup",
                "referrer": "$direct",
                "search": "",
                "title": "Sign up",
            },
        },
    }


def test_a_calls_own_properties_win_over_utm_and_page() -> None:
    call = track(
        properties={"utm": {"source": "mine"}, "page": "custom", "url": "https://own"},
        context={"campaign": {"source": "ctx"}, "page": {"url": "https://ctx"}},
    )
    assert translate(call)["properties"] == {
        "utm": {"source": "mine"},
        "page": "custom",
        "url": "https://own",
    }


def test_utm_renames_name_to_campaign_and_keeps_other_keys() -> None:
    campaign = {"name": "spring", "source": "g", "medium": "cpc", "term": "crm", "content": "ad1"}
    properties = translate(track(context={"campaign": {**campaign, "adgroup": "x"}}))["properties"]
    assert properties == {
        "utm": {
            "campaign": "spring",
            "source": "g",
            "medium": "cpc",
            "term": "crm",
            "content": "ad1",
            "adgroup": "x",
        }
    }
    both = translate(track(context={"campaign": {"name": "n", "campaign": "c", "source": None}}))
    assert both["properties"] == {"utm": {"campaign": "c"}}
    assert "properties" not in translate(track(context={"campaign": {}, "page": {}}))


def test_analytics_js_page_takes_page_fields_from_properties_then_context() -> None:
    event = translate(ANALYTICS_JS_PAGE, "page")
    assert event == {
        "id": "ajs-next-5a0f2b6b3f0d4b1e9d3c",
        "type": "page_view",
        "anonymous_id": "8c1d2a36-4a3e-4c2b-9d8e-1f0b6f2e7a55",
        "timestamp": "2026-05-04T10:00:00.321Z",
        "properties": {
            "path": "/blog/lead-scoring",
            "referrer": "https://www.linkedin.com/",
            "search": "",
            "title": "Lead scoring, explained",
            "url": "https://acme.example/blog/lead-scoring",
            "utm": {"source": "linkedin", "medium": "social"},
        },
    }


def test_page_fills_nulls_from_context_and_adds_name_and_category() -> None:
    call = {
        "type": "page",
        "anonymousId": "a1",
        "messageId": "m1",
        "timestamp": "2026-05-04T10:00:00Z",
        "name": "Pricing",
        "category": "Docs",
        "properties": {"url": None, "name": "Own name", "plan": "pro"},
        "context": {"page": {"url": "https://x/pricing", "referrer": None, "keywords": ["a"]}},
    }
    assert translate(call)["properties"] == {
        "url": "https://x/pricing",
        "name": "Own name",
        "plan": "pro",
        "category": "Docs",
    }


def test_page_without_anything_has_no_properties() -> None:
    call = {"type": "page", "anonymousId": "a1", "messageId": "m1"}
    assert translate(call) == {
        "id": "m1",
        "type": "page_view",
        "anonymous_id": "a1",
        "timestamp": "2026-05-04T10:06:01.5Z",
    }


def test_identify_overlays_traits_on_context_traits() -> None:
    event = translate(RUDDER_IDENTIFY, "identify", at=datetime(2026, 5, 4, 10, 2, 6, tzinfo=UTC))
    assert event == {
        "id": "rs-identify-1",
        "type": "identify",
        "contact_id": "bo",
        "anonymous_id": "rs-anon-1",
        "timestamp": "2026-05-04T10:02:05Z",
        "traits": {"email": "bo@example.com", "plan": "pro"},
    }


def test_identify_without_traits_has_empty_traits_and_ignores_properties() -> None:
    call = {"type": "identify", "userId": "u1", "messageId": "m1", "properties": {"x": 1}}
    assert translate(call)["traits"] == {}
    assert "properties" not in translate(call)


def test_context_traits_are_dropped_from_other_calls() -> None:
    event = translate(track(context={"traits": {"email": "a@b.c"}}))
    assert "traits" not in event
    assert "properties" not in event


def test_screen_keeps_properties_and_adds_name_and_category() -> None:
    call = {"type": "screen", "userId": "u1", "messageId": "m1", "name": "Home", "category": None}
    assert translate(call)["properties"] == {"name": "Home"}


def test_alias_links_previous_id_to_user_id() -> None:
    call = {
        "type": "alias",
        "previousId": "anon-9",
        "userId": 77,
        "anonymousId": "ignored",
        "messageId": "m1",
    }
    event = translate(call)
    assert (event["contact_id"], event["anonymous_id"]) == ("77", "anon-9")
    assert event["type"] == "alias"


def test_group_keeps_group_id_and_traits() -> None:
    call = {"type": "group", "anonymousId": "a1", "groupId": "acme", "messageId": "m1"}
    assert translate(call)["properties"] == {"group_id": "acme", "traits": {}}


def test_the_envelope_is_dropped() -> None:
    event = translate(CAPTURED["batch"][1])
    text = json.dumps(event)
    for dropped in ("203.0.113.9", "Mozilla", "analytics-python", "integrations", "library"):
        assert dropped not in text


# --- timestamps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-05-04T10:00:00.123Z", "2026-05-04T10:00:00.123Z"),
        ("2026-05-04T10:00:00.123+00:00", "2026-05-04T10:00:00.123Z"),
        ("2026-05-04T12:00:00.000+02:00", "2026-05-04T10:00:00Z"),
        ("2026-05-04T05:30:00-04:30", "2026-05-04T10:00:00Z"),
        ("2026-05-04T12:00:00+0200", "2026-05-04T10:00:00Z"),
        ("2026-05-04T12:00:00+02", "2026-05-04T10:00:00Z"),
        ("2026-05-04 10:00:00z", "2026-05-04T10:00:00Z"),
        ("2026-05-04T10:00Z", "2026-05-04T10:00:00Z"),
        ("2026-05-04T10:00:00,5Z", "2026-05-04T10:00:00.5Z"),
        ("2026-05-04T10:00:00.123456Z", "2026-05-04T10:00:00.123456Z"),
        # .NET writes 7 digits: cut to microseconds, never rounded into the next second
        ("2026-05-04T10:00:59.9999999Z", "2026-05-04T10:00:59.999999Z"),
        ("2026-05-04T00:30:00+01:00", "2026-05-03T23:30:00Z"),
    ],
)
def test_timestamp_is_taken_as_sent(stamp: str, expected: str) -> None:
    assert translate(track(timestamp=stamp, sentAt="2030-01-01T00:00:00Z"))["timestamp"] == expected


# Timestamps of the form datetime's parser reads (_segment._COMMON), valid or
# not: every digit drawn, so days past a month's end, hours past 23, offsets
# past 23:59 and years 1 and 9999 with an offset out of range all come up.
_DIGIT = st.sampled_from("0123456789")


def _field(*usual: str) -> st.SearchStrategy[str]:
    """Two or four digits: often a usual (or edge) value, else any."""
    return st.sampled_from(usual) | st.text(_DIGIT, min_size=len(usual[0]), max_size=len(usual[0]))


@st.composite
def _common_stamps(draw: st.DrawFn) -> str:
    year = draw(_field("0001", "9999", "2026", "1970", "2000", "2100"))
    month, day = (
        draw(_field("01", "02", "12", "13", "00")),
        draw(_field("01", "28", "29", "31", "32")),
    )
    hour, minute = draw(_field("00", "01", "23", "24", "29")), draw(_field("00", "59", "60"))
    fraction = draw(st.sampled_from(["", "."]))
    if fraction:
        fraction += draw(st.text(_DIGIT, min_size=1, max_size=6))
    offset = draw(st.sampled_from(["Z", "+", "-"]))
    if offset != "Z":
        offset += (
            draw(_field("00", "01", "14", "23", "24")) + ":" + draw(_field("00", "30", "59", "60"))
        )
    return (
        f"{year}-{month}-{day}T{hour}:{minute}:{draw(_field('00', '59', '60'))}{fraction}{offset}"
    )


@given(_common_stamps())
@example("0001-01-01T00:30:00+01:00")  # in year 0 in UTC: out of range
@example("9999-12-31T23:59:59.5-00:01")  # in year 10000
@example("2026-02-29T10:00:00Z")  # not a leap year
@example("2028-02-29T10:00:00.123Z")
@example("2026-05-04T24:00:00Z")
@example("2026-05-04T10:00:00+24:00")
def test_the_common_timestamp_form_reads_as_every_other_form_does(stamp: str) -> None:
    """datetime's parser, taken for the form libraries send, gives the same
    instant as the module's own reading, and refuses exactly what it refuses
    (with its reason)."""
    from leadscore._segment import _parse_any, _parse_iso

    try:
        expected: int | str = _parse_any(stamp, "timestamp")
    except EventError as error:
        expected = str(error)
    try:
        found: int | str = _parse_iso(stamp, "timestamp")
    except EventError as error:
        found = str(error)
    assert found == expected


def test_original_timestamp_is_corrected_for_clock_skew() -> None:
    call = track(
        timestamp=None,
        originalTimestamp="2026-05-04T11:00:00.000Z",  # device clock 1 hour fast
        sentAt="2026-05-04T11:00:05.000Z",
    )
    # received_at - (sentAt - originalTimestamp) = 10:06:01.5 - 5 s
    assert translate(call)["timestamp"] == "2026-05-04T10:05:56.5Z"


def test_timestamp_wins_over_original_timestamp() -> None:
    call = track(originalTimestamp="2026-05-04T11:00:00Z", sentAt="2026-05-04T11:00:05Z")
    assert translate(call)["timestamp"] == "2026-05-04T10:00:00Z"


def test_original_timestamp_without_sent_at_is_taken_as_sent() -> None:
    call = track(timestamp=None, originalTimestamp="2026-05-04T11:00:00+01:00")
    assert translate(call)["timestamp"] == "2026-05-04T10:00:00Z"


def test_batch_sent_at_applies_to_items_without_their_own() -> None:
    items = [
        track(timestamp=None, originalTimestamp="2026-05-04T10:00:00Z"),
        track(timestamp=None, originalTimestamp="2026-05-04T10:00:00Z", sentAt=None),
        track(
            timestamp=None,
            originalTimestamp="2026-05-04T10:00:00Z",
            sentAt="2026-05-04T10:00:01Z",
        ),
    ]
    results = batch({"batch": items, "sentAt": "2026-05-04T10:00:10Z"}, received_at=RECEIVED)
    assert [canonical(result)["timestamp"] for result in results] == [
        "2026-05-04T10:05:51.5Z",
        "2026-05-04T10:05:51.5Z",
        "2026-05-04T10:06:00.5Z",
    ]


def test_without_any_timestamp_the_receive_time_is_used() -> None:
    at = datetime(2026, 5, 4, 12, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2)))
    event = translate(track(timestamp=None, sentAt="2026-05-04T09:00:00Z"), at=at)
    assert event["timestamp"] == "2026-05-04T10:00:00.25Z"


def test_received_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="time zone"):
        from_segment(track(), received_at=datetime(2026, 5, 4, 10, 0))


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"timestamp": "2026-05-04T10:00:00"}, "timestamp", "with a time zone offset"),
        ({"timestamp": "2026-05-04T10:00:00.123"}, "timestamp", "with a time zone offset"),
        ({"timestamp": "2026-05-04"}, "timestamp", "ISO 8601"),
        ({"timestamp": "yesterday"}, "timestamp", "ISO 8601"),
        ({"timestamp": 1777888800}, "timestamp", "expected an ISO 8601 string"),
        ({"timestamp": "2026-02-30T10:00:00Z"}, "timestamp", "not a valid date"),
        ({"timestamp": "2026-05-04T24:00:00Z"}, "timestamp", "not a valid date"),
        ({"timestamp": "2026-05-04T10:00:00+24:00"}, "timestamp", "offset"),
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp", "out of range"),
        (
            {"timestamp": None, "originalTimestamp": "2026-05-04T10:00:00"},
            "originalTimestamp",
            "offset",
        ),
        (
            {"timestamp": None, "originalTimestamp": "2026-05-04T10:00:00Z", "sentAt": "now"},
            "sentAt",
            "ISO 8601",
        ),
        (
            {
                "timestamp": None,
                "originalTimestamp": "0001-01-01T00:00:00Z",
                "sentAt": "9999-01-01T00:00:00Z",
            },
            "originalTimestamp",
            "out of range",
        ),
    ],
)
def test_bad_timestamps(fields: dict[str, Any], field: str, message: str) -> None:
    error = error_of(track(**fields))
    assert error.field == field
    assert message in error.message


def test_an_unused_sent_at_is_not_read() -> None:
    assert translate(track(sentAt="not a time"))["timestamp"] == "2026-05-04T10:00:00Z"


# --- ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("u-1", "u-1"),
        (42, "42"),
        (0, "0"),
        (-7, "-7"),
        (1e3, "1000"),
        (42.0, "42"),
        (1.5, "1.5"),
        (12345678901234567890, "12345678901234567890"),
    ],
)
def test_ids_may_be_numbers(value: object, expected: str) -> None:
    event = translate(track(userId=value, anonymousId=value, messageId=value))
    assert (event["id"], event["contact_id"], event["anonymous_id"]) == (expected,) * 3


@pytest.mark.parametrize("value", [True, [1], {"id": 1}, float("nan"), float("inf")])
@pytest.mark.parametrize("field", ["userId", "anonymousId", "messageId", "previousId", "groupId"])
def test_ids_of_other_types_are_errors(field: str, value: object) -> None:
    kind = {"previousId": "alias", "groupId": "group"}.get(field, "track")
    call = {**track(), "type": kind, "previousId": "p", "groupId": "g", field: value}
    error = error_of(call)
    assert error.field == field
    assert "expected a string or a number" in error.message


def test_an_empty_user_id_is_absent() -> None:
    event = translate(track(userId="", anonymousId="a1"))
    assert "contact_id" not in event
    assert event["anonymous_id"] == "a1"


@pytest.mark.parametrize("ids", [{}, {"userId": None, "anonymousId": None}, {"userId": ""}])
def test_a_call_needs_a_user_id_or_an_anonymous_id(ids: dict[str, Any]) -> None:
    call = {key: value for key, value in track().items() if key != "userId"}
    error = error_of({**call, **ids})
    assert error.field == "userId"
    assert "at least one of userId, anonymousId" in error.message


def test_a_missing_message_id_is_derived_from_the_content() -> None:
    first = translate(track(messageId=...))
    assert re.fullmatch(r"segment-[0-9a-f]{32}", first["id"])
    assert translate(track(messageId=None))["id"] == first["id"]
    assert translate(track(messageId=""))["id"] == first["id"]
    # a resent copy: only the envelope differs
    resent = track(messageId=..., sentAt="2026-05-04T10:00:09Z", context={"ip": "198.51.100.1"})
    assert translate(resent)["id"] == first["id"]
    assert translate(track(messageId=..., properties={"x": 1}))["id"] != first["id"]
    assert translate(track(messageId=..., timestamp="2026-05-04T10:00:01Z"))["id"] != first["id"]
    assert translate(track(messageId=..., userId="u2"))["id"] != first["id"]


def test_without_message_id_nor_timestamp_each_arrival_is_its_own_event() -> None:
    call = track(messageId=..., timestamp=...)
    later = RECEIVED + timedelta(seconds=1)
    assert translate(call)["id"] != translate(call, at=later)["id"]


# --- call types and bad input ------------------------------------------------------------------


def test_every_call_type_is_accepted() -> None:
    calls = {
        "track": track(),
        "identify": {"userId": "u", "traits": {"a": 1}},
        "page": {"anonymousId": "a"},
        "screen": {"anonymousId": "a", "name": "Home"},
        "alias": {"previousId": "a", "userId": "u"},
        "group": {"userId": "u", "groupId": "g"},
    }
    assert set(calls) == set(CALL_TYPES)
    types = {kind: translate({**call, "type": None}, kind)["type"] for kind, call in calls.items()}
    assert types == {
        "track": "demo_requested",
        "identify": "identify",
        "page": "page_view",
        "screen": "screen_view",
        "alias": "alias",
        "group": "group",
    }


@pytest.mark.parametrize(
    ("call", "kind", "field", "message"),
    [
        ([1, 2], "track", "", "expected a JSON object"),
        (track(), "page", "type", "a 'track' call sent to the /v1/page endpoint"),
        (track(), "import", "type", "unknown call type 'import'"),
        (track(type=...), None, "type", "required"),
        (track(type="Track"), None, "type", "expected one of track, identify"),
        (track(event=...), None, "event", "required"),
        (track(event=None), None, "event", "required"),
        (track(event=7), None, "event", "expected a string"),
        (track(properties=[1]), None, "properties", "expected a JSON object"),
        (track(properties="x"), None, "properties", "expected a JSON object"),
        (track(context="x"), None, "context", "expected a JSON object"),
        (track(context={"page": "x"}), None, "context.page", "expected a JSON object"),
        (track(context={"campaign": [1]}), None, "context.campaign", "expected a JSON object"),
        ({"type": "identify", "userId": "u", "traits": [1]}, None, "traits", "JSON object"),
        (
            {"type": "identify", "userId": "u", "context": {"traits": "x"}},
            None,
            "context.traits",
            "expected a JSON object",
        ),
        ({"type": "page", "userId": "u", "name": 3}, None, "name", "expected a string"),
        ({"type": "screen", "userId": "u", "category": True}, None, "category", "a string"),
        ({"type": "alias", "userId": "u"}, None, "previousId", "required"),
        ({"type": "alias", "previousId": "p", "anonymousId": "a"}, None, "userId", "required"),
        ({"type": "group", "userId": "u"}, None, "groupId", "required"),
        ({"type": "group", "userId": "u", "groupId": "g", "traits": 1}, None, "traits", "object"),
    ],
)
def test_bad_calls_name_their_field(call: Any, kind: str | None, field: str, message: str) -> None:
    error = error_of(call, kind)
    assert error.field == field
    assert message in error.message
    assert str(error) == (f"{field}: {error.message}" if field else error.message)


# --- batches -----------------------------------------------------------------------------------


def test_one_bad_item_never_loses_the_good_ones() -> None:
    items = [track(messageId="ok-1"), track(event=...), "nope", track(messageId="ok-2")]
    results = batch({"batch": items}, received_at=RECEIVED)
    assert [canonical(result)["id"] for result in (results[0], results[3])] == ["ok-1", "ok-2"]
    assert isinstance(results[1], EventError)
    assert isinstance(results[2], EventError)
    assert (results[1].field, results[1].message) == (
        "batch[1].event",
        "required: the name of the tracked event",
    )
    assert (results[2].field, str(results[2])) == (
        "batch[2]",
        "batch[2]: expected a JSON object, got 'nope'",
    )


def test_an_item_without_a_type_is_an_error_in_a_batch() -> None:
    (result,) = batch({"batch": [track(type=...)]}, received_at=RECEIVED)
    assert isinstance(result, EventError)
    assert result.field == "batch[0].type"


def test_the_batch_context_is_merged_into_each_item() -> None:
    shared = {
        "campaign": {"source": "batch"},
        "page": {"url": "https://batch/page", "title": "Batch"},
        "ip": "192.0.2.1",
    }
    items = [
        track(messageId="a"),
        track(messageId="b", context={"page": {"url": "https://own/page"}}),
        track(messageId="c", context=None),
        track(messageId="d", context="bad"),
    ]
    results = batch(
        {"batch": items, "context": shared, "integrations": {"All": False}}, received_at=RECEIVED
    )
    assert canonical(results[0])["properties"] == {
        "utm": {"source": "batch"},
        "page": {"url": "https://batch/page", "title": "Batch"},
    }
    # the item's own context.page replaces the batch's whole
    assert canonical(results[1])["properties"] == {
        "utm": {"source": "batch"},
        "page": {"url": "https://own/page"},
    }
    assert canonical(results[2])["properties"] == canonical(results[0])["properties"]
    assert isinstance(results[3], EventError)
    assert results[3].field == "batch[3].context"


def test_an_empty_batch_is_empty() -> None:
    assert batch({"batch": []}, received_at=RECEIVED) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], ""),
        ({}, "batch"),
        ({"batch": None}, "batch"),
        ({"batch": {"type": "track"}}, "batch"),
        ({"batch": [], "context": []}, "context"),
    ],
)
def test_an_unusable_batch_body_raises(body: Any, field: str) -> None:
    with pytest.raises(EventError) as caught:
        batch(body, received_at=RECEIVED)
    assert caught.value.field == field


# --- the real library, when installed ----------------------------------------------------------


def _library_client(**options: Any) -> Any:
    analytics = pytest.importorskip("segment.analytics")
    return analytics.Client("wk_test", **options)


def _send_captured_calls(client: Any) -> list[dict[str, Any]]:
    """The calls of CAPTURED, made through the library; returns the messages it built."""
    t0 = datetime(2026, 5, 4, 10, 0, 0, 123456, tzinfo=UTC)
    warsaw = timezone(timedelta(hours=2))
    minute = timedelta(minutes=1)
    context = {
        "campaign": {"name": "spring", "source": "newsletter", "medium": "email"},
        "ip": "203.0.113.9",
        "userAgent": "Mozilla/5.0",
    }
    page = {
        "url": "https://acme.example/pricing?plan=pro",
        "path": "/pricing",
        "referrer": "https://www.google.com/",
        "search": "?plan=pro",
        "title": "ignored: properties win",
    }
    made = [
        client.identify(
            user_id=42,
            anonymous_id="anon-1",
            traits={"email": "ada@example.com", "job_title": "CTO", "company": {"name": "Acme"}},
            timestamp=t0,
            message_id="msg-identify",
        ),
        client.track(
            user_id=42,
            event="Order Completed",
            properties={"revenue": 99.5, "currency": "EUR"},
            context=context,
            timestamp=t0 + minute,
            message_id="msg-track",
        ),
        client.page(
            anonymous_id="anon-1",
            category="Docs",
            name="Pricing",
            properties={"title": "Pricing - Acme"},
            context={"page": page},
            timestamp=datetime(2026, 5, 4, 12, 2, 0, tzinfo=warsaw),
            message_id="msg-page",
        ),
        client.screen(
            user_id="user-7",
            name="Settings",
            category="Account",
            properties={"tab": "billing"},
            timestamp=t0 + 3 * minute,
            message_id="msg-screen",
        ),
        client.alias(
            previous_id="anon-1", user_id=42, timestamp=t0 + 4 * minute, message_id="msg-alias"
        ),
        client.group(
            user_id=42,
            group_id=1001,
            traits={"name": "Acme", "plan": "enterprise"},
            timestamp=t0 + 5 * minute,
            message_id="msg-group",
        ),
    ]
    return [message for _, message in made]


def _without_library_version(message: Mapping[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(message))
    out["context"]["library"].pop("version")
    return dict(out)


def test_the_library_still_builds_the_captured_messages() -> None:
    messages = _send_captured_calls(_library_client(send=False))
    assert [_without_library_version(m) for m in messages] == [
        _without_library_version(m) for m in CAPTURED["batch"]
    ]
    results = batch({"batch": messages}, received_at=RECEIVED)
    assert [canonical(result) for result in results] == EXPECTED


@pytest.fixture
def dummy_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[Any]]]:
    """A server on 127.0.0.1 that records what it is sent and answers 200."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    received: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = json.loads(self.rfile.read(length))
            received.append((self.path, self.headers["Authorization"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_what_the_library_sends_over_http(dummy_server: tuple[str, list[Any]]) -> None:
    host, received = dummy_server
    client = _library_client(host=host, sync_mode=True, timeout=5, max_retries=0)
    _send_captured_calls(client)
    assert len(received) == len(EXPECTED)  # sync mode: one /v1/batch request per call
    for (path, authorization, body), expected in zip(received, EXPECTED, strict=True):
        assert path == "/v1/batch"
        # the write key is the Basic user name, with an empty password
        assert authorization == "Basic " + base64.b64encode(b"wk_test:").decode()
        assert body["writeKey"] == "wk_test"
        assert datetime.fromisoformat(body["sentAt"]).tzinfo is not None
        (result,) = batch(body, received_at=RECEIVED)
        assert canonical(result) == expected
