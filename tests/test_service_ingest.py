"""Sending events over real HTTP, on SQLite and PostgreSQL: the canonical
`/v1/events`, Segment's tracking API (through Segment's own Python library,
as RudderStack's clients call it, and as analytics.js does), models and keys.

What is stored is checked through the store: scorecards read back equal the
engine's replay of the same events, written out by hand here.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from leadscore import parse_event, parse_model, parse_timestamp, replay
from leadscore._store import Scope, active_model, scorecard
from leadscore._store.tables import events as event_rows

from ._service import MAX_BATCH, MODEL, Service, Workspace, assert_problem, event, running


@pytest.fixture(scope="module")
def service(database: sa.Engine) -> Iterator[Service]:
    with running(database) as started:
        yield started


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Segment's library (requests) must reach the loopback server directly."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def stored_card(service: Service, workspace: Workspace, contact: str, at: str) -> dict[str, Any]:
    with service.database.connect() as conn:
        model = active_model(conn, workspace=workspace.name)
        assert model is not None
        card = scorecard(
            conn,
            workspace=workspace.name,
            model=model,
            contact_id=contact,
            at=parse_timestamp(at),
        )
    assert card is not None, f"nothing stored for {contact}"
    return card.to_json()


def replayed_card(events: list[dict[str, Any]], contact: str, at: str) -> dict[str, Any]:
    result = replay(parse_model(MODEL), [parse_event(raw) for raw in events], parse_timestamp(at))
    (card,) = [card for card in result.scorecards if card.contact_id == contact]
    return card.to_json()


def stored_ids(service: Service, workspace: Workspace) -> set[str]:
    with service.database.connect() as conn:
        rows = conn.execute(
            sa.select(event_rows.c.id).where(event_rows.c.workspace == workspace.name)
        )
        return {row.id for row in rows}


# -- /v1/events ------------------------------------------------------------------------


def test_a_batch_answers_per_event_and_keeps_the_good_ones(service: Service) -> None:
    workspace = service.workspace()
    demo = event("e1", "demo_request", "2026-05-04T10:00:00Z", contact_id="c1")
    visit = event(
        "e2",
        "page_view",
        "2026-05-04T09:00:00Z",
        anonymous_id="a1",
        properties={"url": "https://acme.example/pricing"},
    )
    identify = event(
        "e3",
        "identify",
        "2026-05-04T09:30:00Z",
        contact_id="c1",
        anonymous_id="a1",
        traits={"job_title": "CTO"},
    )
    batch: list[Any] = [
        demo,
        visit,
        {**demo},  # the same id again
        {"id": "e4", "type": "demo_request", "contact_id": "c1"},  # no timestamp
        "not an event",
        {**demo, "id": "e5", "propertes": {}},  # a misspelt field
        identify,
    ]
    with service.client() as http:
        response = http.post("/v1/events", json=batch, headers=workspace.auth(Scope.WRITE))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [(r["id"], r["status"]) for r in answer["results"]] == [
        ("e1", "accepted"),
        ("e2", "accepted"),
        ("e1", "duplicate"),
        ("e4", "rejected"),
        (None, "rejected"),
        ("e5", "rejected"),
        ("e3", "accepted"),
    ]
    reasons = [r["reason"] for r in answer["results"]]
    assert reasons[3] == "timestamp: required"
    assert "expected an event" in reasons[4]
    assert reasons[5].startswith("propertes: unknown field")
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (3, 1, 3)
    # Answered after the commit: what was accepted is there, and scored as a
    # replay of the accepted events scores it.
    assert stored_ids(service, workspace) == {"e1", "e2", "e3"}
    at = "2026-05-05T00:00:00Z"
    card = stored_card(service, workspace, "c1", at)
    assert card == replayed_card([demo, visit, identify], "c1", at)
    assert (card["score"], card["grade"], card["band"]) == (40, "A", "hot")


def test_one_event_answers_like_the_event(service: Service) -> None:
    workspace = service.workspace()
    one = event("only", "demo_request", "2026-05-04T10:00:00Z", contact_id="c1")
    with service.client() as http:
        first = http.post("/v1/events", json=one, headers=workspace.auth(Scope.WRITE))
        assert first.status_code == 200
        assert first.json()["results"] == [
            {"id": "only", "status": "accepted", "reason": None, "warnings": []}
        ]
        again = http.post(
            "/v1/events",
            json={**one, "properties": {"changed": True}},
            headers=workspace.auth(Scope.ADMIN),  # admin keys may send events too
        )
        assert again.status_code == 200
        (result,) = again.json()["results"]
        assert result["status"] == "duplicate"
        assert "differs" in result["warnings"][0]
        bad = http.post(
            "/v1/events",
            json={**one, "id": "bad", "timestamp": "yesterday"},
            headers=workspace.auth(Scope.WRITE),
        )
        body = assert_problem(bad, 422)
        assert body["type"].endswith("/event-rejected")
        assert "timestamp" in body["detail"]
        not_events = http.post("/v1/events", json="hello", headers=workspace.auth(Scope.WRITE))
        assert assert_problem(not_events, 422)["type"].endswith("/invalid-request")
    assert stored_ids(service, workspace) == {"only"}


def test_one_rejected_event_names_its_field_in_errors(service: Service) -> None:
    # The one error shape: a validation error lists the field paths at fault,
    # for one canonical event as for one Segment call.
    workspace = service.workspace()
    one = event("e1", "demo_request", "2026-05-04T10:00:00Z", contact_id="c1")
    faults = [
        ({**one, "timestamp": "yesterday"}, "timestamp"),
        ({**one, "timestamp": "2026-05-04T10:00:00"}, "timestamp"),  # no offset
        ({**one, "propertes": {}}, "propertes"),
        ({"id": "e1", "type": "demo_request", "timestamp": "2026-05-04T10:00:00Z"}, "contact_id"),
        ({**one, "id": "a\x00b"}, "id"),
        ({**one, "type": "demo request"}, "type"),
    ]
    with service.client() as http:
        for bad, path in faults:
            answer = http.post("/v1/events", json=bad, headers=workspace.auth(Scope.WRITE))
            body = assert_problem(answer, 422)
            assert body["type"].endswith("/event-rejected")
            ((error,),) = [body["errors"]]
            assert error["path"] == path, body
            assert error["message"]
            assert error["message"] in body["detail"]
    assert stored_ids(service, workspace) == set()


def test_an_integer_past_64_bits_is_json_and_kept_exactly(service: Service) -> None:
    # orjson reads such an integer as a float, silently: it was stored as
    # 1.2345678901234568e+29. The store keeps it exactly.
    workspace = service.workspace()
    big = 123456789012345678901234567890
    sent = [
        event("b1", "demo_request", "2026-05-04T10:00:00Z", contact_id="c1"),
        event("b2", "demo_request", "2026-05-04T11:00:00Z", contact_id="c1",
              properties={"order": big, "negative": -big}),
        event("b3", "demo_request", "2026-05-04T12:00:00Z", contact_id="c1"),
    ]  # fmt: skip
    body = json.dumps(sent).encode()
    with service.client() as http:
        answer = http.post("/v1/events", content=body, headers=workspace.auth(Scope.WRITE))
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 3
        # Not JSON stays not JSON.
        long = b"1234567890123456789012"  # read by json, not orjson
        not_json = [
            b'[{"a": NaN}]',
            b'[{"a": 1}',
            b"[\xff]",
            b'[{"a": NaN, "b": ' + long + b"}]",
            b"[" + long,
            b"[\xff, " + long + b"]",
            b"[" * 5000 + long + b"]" * 5000,
        ]
        for bad in not_json:
            refused = http.post("/v1/events", content=bad, headers=workspace.auth(Scope.WRITE))
            assert_problem(refused, 422)
        held = http.get("/v1/contacts/c1/export", headers=workspace.auth(Scope.ADMIN))
    assert held.status_code == 200, held.text
    (stored,) = [e for e in json.loads(held.text)["events"] if e["id"] == "b2"]
    assert stored["properties"] == {"order": big, "negative": -big}


def test_a_number_past_pythons_digit_limit_scores_and_loses_no_event(service: Service) -> None:
    # A numeric string of more than 4,300 digits: int() refuses it, and the
    # ValueError failed the whole transaction (a 500; the good events lost).
    order = "  - {id: big-order, event: purchase, where: {amount: {gte: 100}}, points: 40}\n"
    workspace = service.workspace(model=MODEL.replace("fit:\n", order + "fit:\n", 1))
    sent = [
        event("n1", "demo_request", "2026-05-04T10:00:00Z", contact_id="c1"),
        event("n2", "purchase", "2026-05-04T11:00:00Z", contact_id="c2",
              properties={"amount": "9" * 5000}),
    ]  # fmt: skip
    with service.client() as http:
        answer = http.post("/v1/events", json=sent, headers=workspace.auth(Scope.WRITE))
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 2
        card = http.get("/v1/contacts/c2", headers=workspace.auth(Scope.READ)).json()
    assert card["score"] == 40


@pytest.mark.parametrize(
    ("zone", "when"),
    [("America/New_York", "0001-01-01T00:00:00Z"), ("Pacific/Kiritimati", "9999-12-31T23:59:59Z")],
)
def test_an_instant_whose_local_day_is_past_year_1_or_9999_scores(
    service: Service, zone: str, when: str
) -> None:
    # Go's zero time (0001-01-01T00:00:00Z) is a common bad timestamp. In a
    # zone behind UTC its local day is in year 0: the limited rules' periods
    # raised OverflowError, failing the whole transaction (a 500).
    monthly = "  - {id: monthly, event: demo_request, points: 1, limit: {times: 1, per: month}}\n"
    model = MODEL.replace("name: http-tests\n", f"name: http-tests\ntimezone: {zone}\n")
    workspace = service.workspace(model=model.replace("fit:\n", monthly + "fit:\n", 1))
    sent = [
        event("z1", "demo_request", "2026-05-04T10:00:00Z", contact_id="c1"),
        event("z2", "page_view", when, contact_id="c2", properties={"url": "https://x/pricing"}),
        event("z3", "demo_request", when, contact_id="c3"),
    ]
    with service.client() as http:
        answer = http.post("/v1/events", json=sent, headers=workspace.auth(Scope.WRITE))
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 3


def test_without_an_active_model_events_wait_for_one(service: Service) -> None:
    workspace = service.workspace(model=None)
    one = event("e1", "demo_request", "2026-05-04T10:00:00Z", contact_id="c1")
    with service.client() as http:
        refused = http.post("/v1/events", json=[one], headers=workspace.auth(Scope.WRITE))
        body = assert_problem(refused, 409)
        assert "PUT /v1/models/active" in body["detail"]
        assert stored_ids(service, workspace) == set()
        assert_problem(http.get("/v1/models/active", headers=workspace.auth(Scope.READ)), 404)

        uploaded = http.put("/v1/models/active", content=MODEL, headers=workspace.auth(Scope.ADMIN))
        assert uploaded.status_code == 200, uploaded.text
        summary = uploaded.json()
        assert (summary["version"], summary["name"]) == (1, "http-tests")
        # Nothing to rescore in a workspace without contacts: done at once.
        assert summary["activation"]["status"] == "done"
        assert (summary["activation"]["version"], summary["activation"]["total"]) == (1, 0)
        accepted = http.post("/v1/events", json=[one], headers=workspace.auth(Scope.WRITE))
        assert accepted.json()["accepted"] == 1
        read = http.get("/v1/models/active", headers=workspace.auth(Scope.READ))
        assert read.json() == {"version": 1, "name": "http-tests", "document": MODEL}


def test_an_invalid_model_lists_every_issue_and_changes_nothing(service: Service) -> None:
    workspace = service.workspace()
    broken = "version: 1\nname: broken\nrules:\n  - id: Bad Id\n    event: x\n    points: many\n"
    with service.client() as http:
        response = http.put(
            "/v1/models/active", content=broken, headers=workspace.auth(Scope.ADMIN)
        )
        body = assert_problem(response, 422)
        assert body["type"].endswith("/invalid-model")
        assert {(e["path"], e["line"]) for e in body["errors"]} == {
            ("rules[0].id", 4),
            ("rules[0].points", 6),
        }
        active = http.get("/v1/models/active", headers=workspace.auth(Scope.READ)).json()
        assert active["version"] == 1
        assert_problem(
            http.put("/v1/models/active", content=b"\xff", headers=workspace.auth(Scope.ADMIN)),
            422,
        )


def test_batches_over_the_limit_are_refused_whole(service: Service) -> None:
    workspace = service.workspace()
    many = [
        event(f"e{i}", "demo_request", "2026-05-04T10:00:00Z", contact_id="c1")
        for i in range(MAX_BATCH + 1)
    ]
    calls = [{"type": "track", "userId": "c1", "event": "x"}] * (MAX_BATCH + 1)
    with service.client() as http:
        body = assert_problem(
            http.post("/v1/events", json=many, headers=workspace.auth(Scope.WRITE)), 413
        )
        assert body["type"].endswith("/too-many-events")
        assert_problem(
            http.post("/v1/batch", json={"batch": calls}, headers=workspace.auth(Scope.WRITE)),
            413,
        )
        exactly = http.post("/v1/events", json=many[:-1], headers=workspace.auth(Scope.WRITE))
        assert exactly.json()["accepted"] == MAX_BATCH


# -- Segment's tracking API ------------------------------------------------------------


T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def test_segments_library_scores_as_a_replay(service: Service, no_proxy: None) -> None:
    analytics = pytest.importorskip("segment.analytics")
    workspace = service.workspace()
    key = workspace.keys[Scope.WRITE]
    plain = analytics.Client(key, host=service.base, sync_mode=True, max_retries=0, timeout=10)
    zipped = analytics.Client(
        key, host=service.base, sync_mode=True, max_retries=0, timeout=10, gzip=True
    )
    minute = timedelta(minutes=1)
    plain.page(
        anonymous_id="anon-1",
        name="Pricing",
        context={"page": {"url": "https://acme.example/pricing", "referrer": "https://x.test/"}},
        timestamp=T0,
        message_id="m-page",
    )
    plain.identify(
        user_id="u1",
        anonymous_id="anon-1",
        traits={"job_title": "CTO", "email": "ada@example.com"},
        timestamp=T0 + minute,
        message_id="m-identify",
    )
    zipped.track(
        user_id="u1",
        event="Demo Request",
        properties={"source": "website"},
        timestamp=T0 + 2 * minute,
        message_id="m-track",
    )
    plain.track(user_id="u1", event="Demo Request", timestamp=T0, message_id="m-track")  # resent

    # The same facts, in the spec's canonical format.
    expected = [
        event(
            "m-page",
            "page_view",
            "2026-05-04T10:00:00Z",
            anonymous_id="anon-1",
            properties={"url": "https://acme.example/pricing", "referrer": "https://x.test/"},
        ),
        event(
            "m-identify",
            "identify",
            "2026-05-04T10:01:00Z",
            contact_id="u1",
            anonymous_id="anon-1",
            traits={"job_title": "CTO", "email": "ada@example.com"},
        ),
        event("m-track", "demo_request", "2026-05-04T10:02:00Z", contact_id="u1"),
    ]
    at = "2026-05-06T00:00:00Z"
    card = stored_card(service, workspace, "u1", at)
    assert card == replayed_card(expected, "u1", at)
    assert (card["score"], card["fit"], card["grade"]) == (40, 25, "A")
    assert stored_ids(service, workspace) == {"m-page", "m-identify", "m-track"}


def test_single_calls_with_basic_auth(service: Service) -> None:
    # How RudderStack's and Segment's other libraries call: one call per
    # endpoint, the write key as the Basic user name.
    workspace = service.workspace()
    auth = (workspace.keys[Scope.WRITE], "")
    calls: dict[str, dict[str, Any]] = {
        "identify": {"userId": 7, "anonymousId": "v1", "traits": {"job_title": "cto"}},
        "track": {"userId": 7, "event": "Demo Request"},
        "page": {"anonymousId": "v1", "properties": {"url": "https://a.test/pricing"}},
        "screen": {"userId": 7, "name": "Home"},
        "alias": {"userId": 7, "previousId": "v0"},
        "group": {"userId": 7, "groupId": "acme"},
    }
    with service.client() as http:
        for index, (kind, call) in enumerate(calls.items()):
            body = {**call, "messageId": f"m{index}", "timestamp": "2026-05-04T10:00:00Z"}
            response = http.post(f"/v1/{kind}", json=body, auth=auth)
            assert response.status_code == 200, (kind, response.text)
            assert response.json()["success"] is True
            assert response.json()["results"][0]["status"] == "accepted"
        bad = http.post("/v1/track", json={"userId": 7, "messageId": "m9"}, auth=auth)
        problem = assert_problem(bad, 422)
        assert problem["errors"] == [{"path": "event", "message": problem["errors"][0]["message"]}]
        wrong = http.post("/v1/track", json={"type": "page", "userId": 7}, auth=auth)
        assert assert_problem(wrong, 422)["errors"][0]["path"] == "type"
    assert stored_ids(service, workspace) == {f"m{i}" for i in range(6)}
    card = stored_card(service, workspace, "7", "2026-05-05T00:00:00Z")
    assert (card["score"], card["grade"]) == (40, "A")


def test_a_segment_batch_answers_per_call(service: Service) -> None:
    workspace = service.workspace()
    batch = {
        "batch": [
            {"type": "track", "userId": "u", "event": "Demo Request", "messageId": "b1"},
            {"type": "track", "userId": "u", "messageId": "b2"},  # no event name
            {"type": "track", "userId": "u", "event": "Demo Request", "messageId": "b1"},
            {"type": "nonsense", "userId": "u", "messageId": 3},
        ],
        "context": {"library": {"name": "test"}},
        "sentAt": "2026-05-04T10:00:00Z",
    }
    with service.client() as http:
        response = http.post("/v1/batch", json=batch, headers=workspace.auth(Scope.WRITE))
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["success"] is True
        assert [(r["id"], r["status"]) for r in answer["results"]] == [
            ("b1", "accepted"),
            ("b2", "rejected"),
            ("b1", "duplicate"),
            ("3", "rejected"),
        ]
        assert answer["results"][1]["reason"].startswith("batch[1].event: required")
        assert answer["results"][3]["reason"].startswith("batch[3].type")
        unusable = http.post("/v1/batch", json={"calls": []}, headers=workspace.auth(Scope.WRITE))
        assert assert_problem(unusable, 422)["errors"][0]["path"] == "batch"


def test_a_rejected_batch_call_keeps_its_message_id_as_an_accepted_one_would(
    service: Service,
) -> None:
    # A number is an id, as its decimal text (as from_segment takes it); a
    # messageId of another type has no id to give, and is itself an error.
    workspace = service.workspace()
    calls = [
        {"type": "nonsense", "userId": "u", "messageId": 1.5},
        {"type": "nonsense", "userId": "u", "messageId": 1e3},
        {"type": "track", "userId": "u", "event": "Demo Request", "messageId": 2.5},
        {"type": "track", "userId": "u", "event": "Demo Request", "messageId": True},
        {"type": "track", "userId": "u", "event": "Demo Request", "messageId": {"id": 1}},
    ]
    body = {"batch": calls, "sentAt": "2026-05-04T10:00:00Z"}
    with service.client() as http:
        response = http.post("/v1/batch", json=body, headers=workspace.auth(Scope.WRITE))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["id"], r["status"]) for r in results] == [
        ("1.5", "rejected"),
        ("1000", "rejected"),
        ("2.5", "accepted"),
        (None, "rejected"),
        (None, "rejected"),
    ]
    for index in (3, 4):
        assert results[index]["reason"].startswith(
            f"batch[{index}].messageId: expected a string or a number"
        )
    assert stored_ids(service, workspace) == {"2.5"}


def test_analytics_js_paths_text_plain_and_body_write_key(service: Service) -> None:
    # analytics.js posts text/plain (no CORS preflight) to one-letter paths,
    # with the write key in the body and no Authorization header.
    workspace = service.workspace()
    key = workspace.keys[Scope.WRITE]
    page = {
        "type": "page",
        "anonymousId": "browser-1",
        "properties": {"url": "https://a.test/pricing", "path": "/pricing"},
        "messageId": "ajs-1",
        "timestamp": "2026-05-04T10:00:00.123Z",
        "writeKey": key,
    }
    origin = {"Origin": "https://www.customer.test"}
    with service.client() as http:
        preflight = http.options(
            "/v1/p",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
        sent = http.post(
            "/v1/p",
            content=json.dumps(page),
            headers={**origin, "Content-Type": "text/plain"},
        )
        assert sent.status_code == 200, sent.text
        assert sent.headers["access-control-allow-origin"] == "*"
        batched = http.post(
            "/v1/b",
            content=json.dumps(
                {
                    "writeKey": key,
                    "batch": [{**page, "messageId": "ajs-2", "type": "page"}],
                    "sentAt": "2026-05-04T10:00:01Z",
                }
            ),
            headers={"Content-Type": "text/plain"},
        )
        assert batched.json()["accepted"] == 1
        # A key in the body is a write key like any other: scope and validity apply.
        for wrong, status in ((workspace.keys[Scope.READ], 403), ("lsk_nope", 401)):
            refused = http.post(
                "/v1/p", content=json.dumps({**page, "writeKey": wrong}), headers=origin
            )
            assert_problem(refused, status)
            assert refused.headers["access-control-allow-origin"] == "*"
    assert stored_ids(service, workspace) == {"ajs-1", "ajs-2"}


# x-gzip: the old name RFC 9110 (8.4.1.3) says a recipient should take as gzip.
@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZip"])
def test_gzipped_bodies_are_read(service: Service, encoding: str) -> None:
    workspace = service.workspace()
    one = event("gz", "demo_request", "2026-05-04T10:00:00Z", contact_id="c1")
    with service.client() as http:
        response = http.post(
            "/v1/events",
            content=gzip.compress(json.dumps(one).encode()),
            headers={**workspace.auth(Scope.WRITE), "Content-Encoding": encoding},
        )
        assert response.status_code == 200, response.text
    assert stored_ids(service, workspace) == {"gz"}


# -- keys over HTTP --------------------------------------------------------------------


def test_admin_keys_manage_keys(service: Service) -> None:
    workspace = service.workspace()
    admin = workspace.auth(Scope.ADMIN)
    with service.client() as http:
        created = http.post("/v1/keys", json={"scope": "write"}, headers=admin)
        assert created.status_code == 201, created.text
        new = created.json()
        assert new["key"].startswith(f"lsk_{new['id']}_")
        assert (new["scope"], new["revoked_at"]) == ("write", None)
        bearer = {"Authorization": f"Bearer {new['key']}"}
        one = event("k1", "demo_request", "2026-05-04T10:00:00Z", contact_id="c1")
        assert http.post("/v1/events", json=one, headers=bearer).status_code == 200

        listed = http.get("/v1/keys", headers=admin).json()["keys"]
        assert [key["id"] for key in listed][-1] == new["id"]
        assert len(listed) == 4  # one per scope, and the new one
        assert new["key"] not in json.dumps(listed)

        assert http.delete(f"/v1/keys/{new['id']}", headers=admin).status_code == 204
        assert_problem(http.post("/v1/events", json=one, headers=bearer), 401)
        revoked = http.get("/v1/keys", headers=admin).json()["keys"][-1]
        assert revoked["revoked_at"] is not None
        assert_problem(http.delete("/v1/keys/0123456789abcdef", headers=admin), 404)
        bad_scope = http.post("/v1/keys", json={"scope": "owner"}, headers=admin)
        assert assert_problem(bad_scope, 422)["errors"][0]["path"] == "scope"
