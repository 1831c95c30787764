"""The contacts API over real HTTP, on SQLite and PostgreSQL: one contact and
its timeline equal the engine's replay and explanation of the same events;
lists filter, sort and page through every contact exactly once; CSV export;
GDPR access and erasure.

Scores decay, and the service answers as of the request's time: the expected
values are replayed at an instant taken just after the request, and compared
within 0.01 (the events are months old, so decay between two instants a
second apart is far below that).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from leadscore import parse_event, parse_model, replay
from leadscore._replay import explain
from leadscore._store import Scope, active_model, replay_workspace
from leadscore._store.tables import events as event_rows
from leadscore._store.tables import firings, identity_links, outbox, owners
from leadscore._time import format_timestamp

from ._service import MAX_BATCH, MODEL, Service, Workspace, assert_problem, event, running

# Decay, stages, tags and a trigger with actions: everything a contact's
# answers show.
DECAYING = r"""
version: 1
name: contacts-tests
decay:
  half_life_days: 30
rules:
  - id: demo
    event: demo_request
    points: 30
    tags: [intent]
  - id: pricing
    event: page_view
    where:
      url: {glob: "*/pricing*"}
    points: 10
    tags: [intent, pricing]
  - id: signup
    event: signup
    points: 5
    decay: false
fit:
  - id: decision-maker
    where:
      job_title: {regex: '(?i)\bcto\b'}
    points: 25
grades:
  - {grade: A, min_fit: 20}
  - {grade: B}
bands:
  - {band: hot, min_score: 20}
  - {band: cold}
stages:
  - name: subscriber
  - name: lead
    enter: {score_gte: 25}
triggers:
  - id: handoff
    when: {stage_entered: lead}
    actions:
      - webhook: {url: "https://crm.example.com/hooks/lead"}
"""

CARD_FIELDS = (
    "contact_id", "score", "fit", "grade", "band", "stage", "stage_entered_at",
    "stage_score", "tag_scores", "last_event_at",
)  # fmt: skip


@pytest.fixture(scope="module")
def service(database: sa.Engine) -> Iterator[Service]:
    with running(database) as started:
        yield started


def _now() -> int:
    return time.time_ns() // 1000


def _send(service: Service, workspace: Workspace, events: list[dict[str, Any]]) -> None:
    with service.client() as http:
        for start in range(0, len(events), MAX_BATCH):
            batch = events[start : start + MAX_BATCH]
            answer = http.post("/v1/events", json=batch, headers=workspace.auth(Scope.WRITE))
            assert answer.status_code == 200, answer.text
            assert answer.json()["accepted"] == len(batch), answer.text


def _close(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Scorecards equal, numbers within 0.01 (decay between two instants)."""
    assert set(got) == set(expected)
    for name, value in expected.items():
        if name == "tag_scores":
            assert set(got[name]) == set(value)
            for tag, score in value.items():
                assert got[name][tag] == pytest.approx(score, abs=0.01)
        elif isinstance(value, float):
            assert got[name] == pytest.approx(value, abs=0.01), name
        else:
            assert got[name] == value, name


LOG = [
    event("e1", "identify", "2026-05-01T09:00:00Z", contact_id="c1", traits={"job_title": "CTO"}),
    event("e2", "page_view", "2026-05-02T09:00:00Z", anonymous_id="a1",
          properties={"url": "https://x.test/pricing"}),
    event("e3", "demo_request", "2026-05-03T09:00:00Z", contact_id="c1", anonymous_id="a1"),
    event("e4", "signup", "2026-05-04T09:00:00Z", contact_id="c1"),
    event("e5", "demo_request", "2026-05-05T09:00:00Z", contact_id="c2"),
    # c3 carries a1 after c1 did: a candidate link that loses to c1's.
    event("e6", "signup", "2026-05-06T09:00:00Z", contact_id="c3", anonymous_id="a1"),
    event("e7", "page_view", "2026-05-07T09:00:00Z", anonymous_id="anon-only",
          properties={"url": "https://x.test/pricing"}),
]  # fmt: skip


def _parsed(events: list[dict[str, Any]]) -> list[Any]:
    return [parse_event(raw) for raw in events]


def test_a_contact_is_its_replay_as_of_now(service: Service) -> None:
    workspace = service.workspace(model=DECAYING)
    _send(service, workspace, LOG)
    with service.client() as http:
        got = http.get("/v1/contacts/c1", headers=workspace.auth(Scope.READ))
    at = _now()
    assert got.status_code == 200, got.text
    body = got.json()
    expected = next(
        card.to_json()
        for card in replay(parse_model(DECAYING), _parsed(LOG), at).scorecards
        if card.contact_id == "c1"
    )
    _close({name: body[name] for name in CARD_FIELDS}, expected)
    assert body["stage"] == "lead"
    assert body["traits"] == {"job_title": "CTO"}
    assert body["tags"] == []
    assert body["owner"] is None
    assert body["model_version"] == 1
    explained = explain(parse_model(DECAYING), _parsed(LOG), "c1", at)
    assert body["stage_history"] == [
        {
            "stage": entry.stage,
            "entered_at": format_timestamp(entry.timestamp),
            "event_id": entry.event_id,
            "manual": entry.manual,
        }
        for entry in explained.entries
    ]
    assert [entry["stage"] for entry in body["stage_history"]] == ["subscriber", "lead"]


def test_unknown_and_anonymous_ids_are_404(service: Service) -> None:
    workspace = service.workspace(model=DECAYING)
    _send(service, workspace, LOG)
    with service.client() as http:
        for path in ("nobody", "anon-only", "a1"):
            for suffix in ("", "/timeline"):
                response = http.get(
                    f"/v1/contacts/{path}{suffix}", headers=workspace.auth(Scope.READ)
                )
                assert assert_problem(response, 404)["type"].endswith("/unknown-contact")
            response = http.get(f"/v1/contacts/{path}/export", headers=workspace.auth(Scope.ADMIN))
            assert_problem(response, 404)


def test_a_new_model_version_is_used_at_once(service: Service) -> None:
    # The stored states were made by version 1: the contact is scored from
    # its log under version 2 without waiting for its next event.
    workspace = service.workspace(model=DECAYING)
    _send(service, workspace, LOG)
    other = DECAYING.replace("points: 30", "points: 60")
    with service.client() as http:
        put = http.put("/v1/models/active", content=other, headers=workspace.auth(Scope.ADMIN))
        assert put.status_code == 200, put.text
        got = http.get("/v1/contacts/c1", headers=workspace.auth(Scope.READ)).json()
        listed = http.get("/v1/contacts", headers=workspace.auth(Scope.READ)).json()
    at = _now()
    expected = next(
        card.to_json()
        for card in replay(parse_model(other), _parsed(LOG), at).scorecards
        if card.contact_id == "c1"
    )
    assert got["model_version"] == 2
    _close({name: got[name] for name in CARD_FIELDS}, expected)
    (row,) = [card for card in listed["contacts"] if card["contact_id"] == "c1"]
    _close({name: row[name] for name in CARD_FIELDS}, expected)


def test_the_timeline_explains_the_score(service: Service) -> None:
    workspace = service.workspace(model=DECAYING)
    _send(service, workspace, LOG)
    with service.client() as http:
        whole = http.get("/v1/contacts/c1/timeline", headers=workspace.auth(Scope.READ))
        assert whole.status_code == 200, whole.text
        pages: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1}
            if cursor is not None:
                params["cursor"] = cursor
            page = http.get(
                "/v1/contacts/c1/timeline", params=params, headers=workspace.auth(Scope.READ)
            ).json()
            pages += page["entries"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    at = _now()
    body = whole.json()
    assert body["next_cursor"] is None
    assert pages == body["entries"]
    # c1 owns its events and a1's anonymous-only one, in (timestamp, id) order.
    assert [entry["event"]["id"] for entry in body["entries"]] == ["e1", "e2", "e3", "e4"]
    assert body["entries"][1]["event"] == parse_event(LOG[1]).to_json()
    explained = explain(parse_model(DECAYING), _parsed(LOG), "c1", at)
    awarded = [
        (entry["event"]["id"], award["rule_id"], award["points"], award["tags"])
        for entry in body["entries"]
        for award in entry["awards"]
    ]
    assert awarded == [
        (award.event_id, award.rule_id, award.points, list(award.tags))
        for award, _ in explained.awards
    ]
    counted = sum(award["counted"] for entry in body["entries"] for award in entry["awards"])
    assert counted == pytest.approx(body["score"], abs=0.02)
    assert body["score"] == pytest.approx(explained.scorecard.score, abs=0.01)
    (entered,) = [entry for entry in body["entries"] if entry["stage_entries"][-1:]
                  and entry["stage_entries"][-1]["stage"] == "lead"]  # fmt: skip
    assert entered["firings"] == [
        {"trigger": "handoff", "event_id": entered["event"]["id"],
         "timestamp": entered["event"]["timestamp"]}
    ]  # fmt: skip
    with service.client() as http:
        bad = http.get(
            "/v1/contacts/c1/timeline",
            params={"cursor": "nope"},
            headers=workspace.auth(Scope.READ),
        )
    assert_problem(bad, 422)


# -- lists -----------------------------------------------------------------------------


def _many() -> list[dict[str, Any]]:
    """Thirteen contacts with scores, fits and last events of every kind, with ties."""
    events: list[dict[str, Any]] = []
    for n in range(13):
        contact = f"m{n:02d}"
        day = 1 + n % 5
        events.append(
            event(f"{contact}-id", "identify", f"2026-05-0{day}T08:00:00Z", contact_id=contact,
                  traits={"job_title": "CTO" if n % 3 == 0 else "intern"})
        )  # fmt: skip
        for k in range(n % 4):
            events.append(
                event(f"{contact}-demo-{k}", "demo_request", f"2026-05-0{day}T09:0{k}:00Z",
                      contact_id=contact)
            )  # fmt: skip
        if n % 2:
            events.append(
                event(f"{contact}-page", "page_view", f"2026-05-0{day}T10:00:00Z",
                      contact_id=contact, properties={"url": "https://x.test/pricing"})
            )  # fmt: skip
    return events


@pytest.fixture(scope="module")
def listed(service: Service) -> tuple[Workspace, list[dict[str, Any]]]:
    workspace = service.workspace()  # MODEL: no decay, so lists are stable
    events = _many()
    _send(service, workspace, events)
    return workspace, events


def _walk(
    service: Service, workspace: Workspace, limit: int, **params: Any
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    with service.client() as http:
        while True:
            query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
            response = http.get("/v1/contacts", params=query, headers=workspace.auth(Scope.READ))
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["contacts"]) <= limit
            # MODEL has no triggers: no action labels a contact.
            assert all(card.pop("tags") == [] for card in page["contacts"])
            assert all(card.pop("owner") is None for card in page["contacts"])
            seen += page["contacts"]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen


def _expected(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = replay(parse_model(MODEL), _parsed(events), _now())
    return [card.to_json() for card in result.scorecards]


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("score", lambda card: (-card["score"], card["contact_id"])),
        ("fit", lambda card: (-card["fit"], card["contact_id"])),
        (
            "recency",
            lambda card: (tuple(-ord(c) for c in card["last_event_at"]), card["contact_id"]),
        ),
    ],
)
@pytest.mark.parametrize("limit", [1, 4, 13, 500])
def test_pages_walk_every_contact_once_in_order(
    service: Service,
    listed: tuple[Workspace, list[dict[str, Any]]],
    sort: str,
    key: Any,
    limit: int,
) -> None:
    workspace, events = listed
    walked = _walk(service, workspace, limit, sort=sort)
    expected = sorted(_expected(events), key=key)
    assert walked == expected


# Scores halve every 5 seconds: between two pages a second apart, every
# score moves by more than the gaps between them.
FAST_DECAY = """
version: 1
name: fast-decay
decay:
  half_life_days: 0.0000578703704
rules:
  - id: demo
    event: demo_request
    points: 100
bands:
  - {band: all}
"""


def test_a_walk_is_as_of_its_first_page_while_scores_decay(service: Service) -> None:
    # Contact k has k + 1 demo requests (ties in pairs, broken by id): its
    # score is (k + 1) * 100 * the same decay factor, so the order by score
    # never changes; only the scores fall while the pages are read.
    workspace = service.workspace(model=FAST_DECAY)
    stamp = format_timestamp(_now() - 1_000_000)
    log = [
        event(f"d{k}-{n}", "demo_request", stamp, contact_id=f"c{k:02d}")
        for k in range(12)
        for n in range(k // 2 + 1)
    ]
    _send(service, workspace, log)
    walked: list[str] = []
    cursor: str | None = None
    with service.client() as http:
        while True:
            params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = http.get("/v1/contacts", params=params, headers=workspace.auth(Scope.READ))
            assert page.status_code == 200, page.text
            walked += [card["contact_id"] for card in page.json()["contacts"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
            time.sleep(1.0)
    # Highest first (most requests), ties by contact id: each contact once.
    expected = sorted((f"c{k:02d}" for k in range(12)), key=lambda c: (-(int(c[1:]) // 2), c))
    assert walked == expected


def test_a_cursor_from_the_future_is_refused(service: Service) -> None:
    workspace = service.workspace(model=FAST_DECAY)
    with service.client() as http:
        for at in (_now() + 3_600_000_000, -1):
            forged = base64.urlsafe_b64encode(json.dumps([-1.0, "c1", at]).encode()).decode()
            answer = http.get(
                "/v1/contacts", params={"cursor": forged}, headers=workspace.auth(Scope.READ)
            )
            body = assert_problem(answer, 422)
            assert body["errors"][0]["path"] == "cursor"


def test_filters(service: Service, listed: tuple[Workspace, list[dict[str, Any]]]) -> None:
    workspace, events = listed
    cards = _expected(events)

    def ids(**params: Any) -> set[str]:
        return {card["contact_id"] for card in _walk(service, workspace, 5, **params)}

    def where(test: Any) -> set[str]:
        return {card["contact_id"] for card in cards if test(card)}

    assert ids() == where(lambda card: True)
    assert ids(band="hot") == where(lambda card: card["band"] == "hot") != set()
    assert ids(grade="A") == where(lambda card: card["grade"] == "A") != set()
    assert ids(score_min=30, score_max=60) == where(lambda card: 30 <= card["score"] <= 60) != set()
    assert ids(band="hot", grade="B") == where(
        lambda card: card["band"] == "hot" and card["grade"] == "B"
    )
    assert ids(updated_since="2026-05-04") == where(
        lambda card: card["last_event_at"] >= "2026-05-04T00:00:00Z"
    ) != set()  # fmt: skip
    assert ids(owner="anna@example.com") == set()  # MODEL assigns no owner
    assert ids(stage="lead") == set()  # the model has no stages


def test_the_tag_and_stage_filters(service: Service) -> None:
    workspace = service.workspace(model=DECAYING)
    _send(service, workspace, LOG)
    with service.client() as http:

        def ids(**params: Any) -> list[str]:
            response = http.get("/v1/contacts", params=params, headers=workspace.auth(Scope.READ))
            assert response.status_code == 200, response.text
            return [card["contact_id"] for card in response.json()["contacts"]]

        assert ids(tag_score="pricing") == ["c1"]
        assert ids(tag_score="intent", sort="fit") == ["c1", "c2"]
        assert ids(tag="pricing") == []  # a label of add_tag, not a tag score
        assert ids(stage="lead") == ["c1", "c2"]
        assert ids(stage="subscriber") == ["c3"]


def test_csv_export_is_the_filtered_list(
    service: Service, listed: tuple[Workspace, list[dict[str, Any]]]
) -> None:
    workspace, _ = listed
    with service.client() as http:
        by_param = http.get(
            "/v1/contacts", params={"format": "csv", "band": "hot", "limit": 1},
            headers=workspace.auth(Scope.READ),
        )  # fmt: skip
        by_header = http.get(
            "/v1/contacts", params={"band": "hot"},
            headers={**workspace.auth(Scope.READ), "Accept": "text/csv"},
        )  # fmt: skip
    assert by_param.status_code == 200, by_param.text
    assert by_param.headers["content-type"].startswith("text/csv")
    assert by_param.text == by_header.text
    rows = list(csv.DictReader(io.StringIO(by_param.text)))
    # Every contact that passes the filters: CSV is not paged.
    expected = _walk(service, workspace, 500, band="hot")
    assert [row["contact_id"] for row in rows] == [card["contact_id"] for card in expected]
    for row, card in zip(rows, expected, strict=True):
        assert float(row["score"]) == card["score"]
        assert int(row["fit"]) == card["fit"]
        assert row["grade"] == card["grade"]
        assert row["last_event_at"] == card["last_event_at"]


def test_csv_export_does_not_hand_spreadsheets_a_formula(service: Service) -> None:
    # Contact ids come from write keys, which web pages embed: a visitor can
    # call themselves a formula. In the export each such id reads as text (an
    # apostrophe before it), and the JSON API still shows it as sent.
    formulas = ["=HYPERLINK(\"https://evil.test\",\"x\")", "+cmd|' /C calc'!A0", "-2+3",
                "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]  # fmt: skip
    # Numbers and ordinary text; a carriage return must not start a row.
    plain = ["+4915112345", "-12.5", "alice", "a=b", "x\r=1+1", "y\n@SUM(A1)"]
    workspace = service.workspace(model=DECAYING)
    _send(
        service,
        workspace,
        [
            event(f"f{i}", "demo_request", "2026-05-03T09:00:00Z", contact_id=contact)
            for i, contact in enumerate(formulas + plain)
        ],
    )
    with service.client() as http:
        exported = http.get(
            "/v1/contacts", params={"format": "csv"}, headers=workspace.auth(Scope.READ)
        )
        listed = http.get("/v1/contacts", params={"limit": 50}, headers=workspace.auth(Scope.READ))
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    got = {row["contact_id"] for row in rows}
    assert got == {"'" + contact for contact in formulas} | set(plain)
    assert {card["contact_id"] for card in listed.json()["contacts"]} == set(formulas + plain)


def test_bad_list_requests_are_problems(
    service: Service, listed: tuple[Workspace, list[dict[str, Any]]]
) -> None:
    workspace, _ = listed
    with service.client() as http:
        for params in (
            {"limit": 0},
            {"limit": 501},
            {"sort": "name"},
            {"cursor": "not-a-cursor"},
            {"updated_since": "yesterday"},
            {"score_min": "high"},
            {"bnad": "hot"},  # a misspelt filter must not silently list everything
        ):
            response = http.get("/v1/contacts", params=params, headers=workspace.auth(Scope.READ))
            assert_problem(response, 422)


# -- access and erasure ----------------------------------------------------------------


def _rows(service: Service, workspace: Workspace) -> dict[str, Any]:
    with service.database.connect() as conn:

        def of(table: sa.Table, *columns: str) -> set[tuple[Any, ...]]:
            query = sa.select(*(table.c[name] for name in columns)).where(
                table.c.workspace == workspace.name
            )
            return {tuple(row) for row in conn.execute(query)}

        return {
            "events": of(event_rows, "id"),
            "owners": of(owners, "identified", "key"),
            "firings": of(firings, "contact_id", "trigger"),
            "outbox": of(outbox, "firing"),
            "links": of(identity_links, "anonymous_id", "contact_id"),
        }


def test_a_new_delivery_never_takes_the_id_of_an_erased_one(service: Service) -> None:
    # A delivery's id is its webhooks' Idempotency-Key: a receiver that kept
    # the erased contact's would drop the next contact's webhook as a repeat
    # (SQLite gave a new row the largest id left plus one).
    workspace = service.workspace(model=DECAYING)
    admin = workspace.auth(Scope.ADMIN)

    def delivered(contact: str) -> list[str]:
        when = "2026-05-03T09:00:00Z"
        _send(service, workspace, [event(f"{contact}-1", "demo_request", when, contact_id=contact)])
        with service.client() as http:
            page = http.get("/v1/deliveries", headers=admin)
        assert page.status_code == 200, page.text
        return [delivery["id"] for delivery in page.json()["deliveries"]]

    (erased,) = delivered("x")
    with service.client() as http:
        assert http.delete("/v1/contacts/x", headers=admin).status_code == 204
    (new,) = delivered("y")
    assert int(new) > int(erased)


def test_export_returns_everything_held(service: Service) -> None:
    workspace = service.workspace(model=DECAYING)
    _send(service, workspace, LOG)
    with service.client() as http:
        response = http.get("/v1/contacts/c1/export", headers=workspace.auth(Scope.ADMIN))
        as_reader = http.get("/v1/contacts/c1/export", headers=workspace.auth(Scope.READ))
        detail = http.get("/v1/contacts/c1", headers=workspace.auth(Scope.READ)).json()
    assert_problem(as_reader, 403)
    assert response.status_code == 200, response.text
    body = response.json()
    owned = ["e1", "e2", "e3", "e4"]
    assert body["events"] == [parse_event(raw).to_json() for raw in LOG if raw["id"] in owned]
    assert body["anonymous_ids"] == ["a1"]
    assert [(row["trigger"], row["contact_id"]) for row in body["firings"]] == [("handoff", "c1")]
    assert [row["action"] for row in body["actions"]] == [
        {"webhook": {"url": "https://crm.example.com/hooks/lead"}}
    ]
    assert body["actions"][0]["firing"] == body["firings"][0]["seq"]
    assert body["contact"]["traits"] == {"job_title": "CTO"}
    _close(
        {name: body["contact"][name] for name in CARD_FIELDS},
        {name: detail[name] for name in CARD_FIELDS},
    )


def test_erasure_removes_the_person_and_nothing_else(service: Service) -> None:
    workspace = service.workspace(model=DECAYING)
    _send(service, workspace, LOG)
    with service.client() as http:
        others = {
            contact: http.get(f"/v1/contacts/{contact}", headers=workspace.auth(Scope.READ)).json()
            for contact in ("c2", "c3")
        }
        as_reader = http.delete("/v1/contacts/c1", headers=workspace.auth(Scope.READ))
        erased = http.delete("/v1/contacts/c1", headers=workspace.auth(Scope.ADMIN))
        again = http.delete("/v1/contacts/c1", headers=workspace.auth(Scope.ADMIN))
        export = http.get("/v1/contacts/c1/export", headers=workspace.auth(Scope.ADMIN))
        gone = http.get("/v1/contacts/c1", headers=workspace.auth(Scope.READ))
        after = {
            contact: http.get(f"/v1/contacts/{contact}", headers=workspace.auth(Scope.READ)).json()
            for contact in ("c2", "c3")
        }
        listed = http.get("/v1/contacts", headers=workspace.auth(Scope.READ)).json()
    assert_problem(as_reader, 403)
    assert erased.status_code == 204, erased.text
    assert_problem(again, 404)
    assert_problem(export, 404)
    assert_problem(gone, 404)
    for contact in ("c2", "c3"):
        _close(
            {name: after[contact][name] for name in CARD_FIELDS},
            {name: others[contact][name] for name in CARD_FIELDS},
        )
    assert sorted(card["contact_id"] for card in listed["contacts"]) == ["c2", "c3"]

    rows = _rows(service, workspace)
    # c1's own events and a1's anonymous-only one are gone; a1 now links to
    # c3, the next candidate the remaining log has.
    assert rows["events"] == {("e5",), ("e6",), ("e7",)}
    assert rows["owners"] == {(True, "c2"), (True, "c3"), (False, "anon-only")}
    assert all(contact != "c1" for contact, _ in rows["firings"])
    assert rows["links"] == {("a1", "c3")}
    with service.database.connect() as conn:
        model = active_model(conn, workspace=workspace.name)
        assert model is not None
        kept = {row.firing for row in conn.execute(sa.select(outbox.c.firing))}
        known = {row.seq for row in conn.execute(sa.select(firings.c.seq))}
        assert kept <= known
        result = replay_workspace(conn, workspace=workspace.name, model=model, at=_now())
    assert [card.contact_id for card in result.scorecards] == ["c2", "c3"]
    assert [card.anonymous_id for card in result.anonymous] == ["anon-only"]

    # What comes later is scored as a replay of what remains: a1 is c3's now.
    late = event("e8", "page_view", "2026-05-08T09:00:00Z", anonymous_id="a1",
                 properties={"url": "https://x.test/pricing"})  # fmt: skip
    _send(service, workspace, [late])
    with service.client() as http:
        c3 = http.get("/v1/contacts/c3", headers=workspace.auth(Scope.READ)).json()
    remaining = [raw for raw in LOG if raw["id"] in {"e5", "e6", "e7"}] + [late]
    expected = next(
        card.to_json()
        for card in replay(parse_model(DECAYING), _parsed(remaining), _now()).scorecards
        if card.contact_id == "c3"
    )
    _close({name: c3[name] for name in CARD_FIELDS}, expected)
    assert "pricing" in c3["tag_scores"]


def test_the_tag_score_filter_finds_any_tag_name(service: Service) -> None:
    # Tag names are free text: one with a capital past ASCII, or a quote or
    # a backslash (escaped in the stored JSON), filters like any other.
    names = ["Über", 'say "hi"', "a\\b"]
    model = DECAYING.replace("tags: [intent, pricing]", f"tags: {json.dumps(names)}")
    workspace = service.workspace(model=model)
    _send(service, workspace, LOG)
    with service.client() as http:
        for name in names:
            response = http.get(
                "/v1/contacts", params={"tag_score": name}, headers=workspace.auth(Scope.READ)
            )
            assert response.status_code == 200, response.text
            assert [card["contact_id"] for card in response.json()["contacts"]] == ["c1"], name


def test_a_contact_id_with_a_slash_is_served_and_erased(service: Service) -> None:
    # Ids are free text (Segment user ids are often paths or URLs): a
    # contact the list shows can be read, exported and erased like any other.
    workspace = service.workspace(model=DECAYING)
    contact = "crm/42"
    _send(service, workspace, [event("s1", "demo_request", "2026-05-01T09:00:00Z",
                                     contact_id=contact)])  # fmt: skip
    path = "/v1/contacts/crm%2F42"
    with service.client() as http:
        detail = http.get(path, headers=workspace.auth(Scope.READ))
        timeline = http.get(f"{path}/timeline", headers=workspace.auth(Scope.READ))
        export = http.get(f"{path}/export", headers=workspace.auth(Scope.ADMIN))
        erased = http.delete(path, headers=workspace.auth(Scope.ADMIN))
        gone = http.get(path, headers=workspace.auth(Scope.READ))
    assert detail.status_code == 200, detail.text
    assert detail.json()["contact_id"] == contact
    assert timeline.status_code == 200, timeline.text
    assert [entry["event"]["id"] for entry in timeline.json()["entries"]] == ["s1"]
    assert export.status_code == 200, export.text
    assert [raw["id"] for raw in export.json()["events"]] == ["s1"]
    assert erased.status_code == 204, erased.text
    assert_problem(gone, 404)
    assert _rows(service, workspace)["events"] == set()
