"""Triggers' actions through the HTTP service, whose own outbox worker (in
the app's lifespan) carries them out: tags and owners on the contacts API
(filters, CSV), the deliveries API (log, dead letters, redelivery, signing
secret), and GDPR export and erasure of deliveries. SQLite and PostgreSQL.

The module has a database of its own: the server's worker carries out every
due action in its database, and the other modules' models name webhooks no
one should call.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from leadscore._store import Scope, upgrade
from leadscore._store import outbox as store
from leadscore._store.database import open_database
from leadscore._store.tables import assignments, contact_tags, delivery_attempts, firings, outbox

from ._receiver import Receiver, receiving
from ._service import Service, Workspace, assert_problem, event, running
from .conftest import BACKENDS, _empty_database
from .test_outbox import TAG_LOG, TAG_MODEL, expected_labels, webhook_model


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with _empty_database(request.param, tmp_path_factory.mktemp("actions")) as url:
        upgrade(url)
        database = open_database(url)
        try:
            with running(
                database,
                outbox_worker=True,
                outbox_poll_seconds=0.02,
                webhook_timeout_seconds=5.0,
                outbox_lease_seconds=10.0,
                webhook_backoff_base_seconds=0.01,
                webhook_backoff_cap_seconds=0.05,
                webhook_max_attempts=2,
            ) as started:
                yield started
        finally:
            database.dispose()


def _send(http: httpx.Client, workspace: Workspace, events: list[dict[str, Any]]) -> None:
    answer = http.post("/v1/events", json=events, headers=workspace.auth(Scope.WRITE))
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(events), answer.text


def _settled(service: Service, workspace: Workspace, timeout: float = 20.0) -> None:
    """Until the server's worker has nothing left to do in the workspace."""
    deadline = time.monotonic() + timeout
    while True:
        with service.database.connect() as conn:
            stats = store.outbox_stats(conn, workspace=workspace.name)
        if stats.pending == stats.failed == 0:
            return
        assert time.monotonic() < deadline, stats
        time.sleep(0.02)


def test_tags_and_owners_show_on_contacts(service: Service) -> None:
    workspace = service.workspace(model=TAG_MODEL)
    read = workspace.auth(Scope.READ)
    with service.client() as http:
        _send(http, workspace, TAG_LOG)
        _settled(service, workspace)

        def ids(**params: Any) -> set[str]:
            response = http.get("/v1/contacts", params=params, headers=read)
            assert response.status_code == 200, response.text
            return {card["contact_id"] for card in response.json()["contacts"]}

        expected = expected_labels(TAG_MODEL, TAG_LOG)
        details = {c: http.get(f"/v1/contacts/{c}", headers=read).json() for c in expected}
        listed = {
            c["contact_id"]: c for c in http.get("/v1/contacts", headers=read).json()["contacts"]
        }
        for contact, tags in expected.items():
            assert details[contact]["tags"] == tags
            assert listed[contact]["tags"] == tags
        owners = {c: details[c]["owner"] for c in expected}
        assert sorted(o or "" for o in owners.values()) == [""] * 4 + [
            "anna@example.com",
            "piotr@example.com",
        ]
        assert ids(tag="newsletter") == {c for c, tags in expected.items() if "newsletter" in tags}
        assert ids(tag="customer") == {"c4", "c5"}
        anna = {c for c, owner in owners.items() if owner == "anna@example.com"}
        assert ids(owner="anna@example.com") == anna
        assert len(anna) == 1
        assert ids(owner="anna@example.com", tag="newsletter") == set()
        exported = http.get("/v1/contacts", params={"format": "csv"}, headers=read)
    rows = {row["contact_id"]: row for row in csv.DictReader(io.StringIO(exported.text))}
    assert {c: rows[c]["tags"] for c in expected} == {
        c: str(tags).replace("'", '"') for c, tags in expected.items()
    }
    assert {c: rows[c]["owner"] or None for c in expected} == owners


def _dead_letter(service: Service, receiver: Receiver) -> tuple[Workspace, str]:
    workspace = service.workspace(model=webhook_model(receiver.url))
    with service.client() as http:
        _send(
            http, workspace, [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")]
        )
    _settled(service, workspace)
    with service.database.connect() as conn:
        (seq,) = conn.execute(
            sa.select(outbox.c.seq).where(outbox.c.workspace == workspace.name)
        ).scalars()
    return workspace, str(seq)


def test_dead_letters_are_listed_and_redelivered(service: Service) -> None:
    healthy = threading.Event()
    with receiving("s3cret", lambda received, nth: 200 if healthy.is_set() else 500) as receiver:
        workspace, delivery = _dead_letter(service, receiver)
        admin = workspace.auth(Scope.ADMIN)
        with service.client() as http:
            dead = http.get("/v1/deliveries", params={"status": "dead"}, headers=admin).json()
            assert [d["id"] for d in dead["deliveries"]] == [delivery]
            (summary,) = dead["deliveries"]
            assert summary["url"] == receiver.url
            assert summary["attempts"] == 2
            assert summary["last_error"] == "answered 500"
            assert summary["firing"]["event_id"] == "d1"
            assert "secret" not in str(summary)
            detail = http.get(f"/v1/deliveries/{delivery}", headers=admin).json()
            assert [(a["attempt"], a["ok"], a["status_code"]) for a in detail["attempts_log"]] == [
                (1, False, 500),
                (2, False, 500),
            ]
            assert detail["payload"] == receiver.received[0].json()
            healthy.set()
            again = http.post(f"/v1/deliveries/{delivery}/redeliver", headers=admin)
            assert again.status_code == 202, again.text
            assert again.json()["status"] == "pending"
            _settled(service, workspace)
            done = http.get(f"/v1/deliveries/{delivery}", headers=admin).json()
            assert done["status"] == "done"
            assert done["done_at"] is not None
            assert [a["ok"] for a in done["attempts_log"]] == [False, False, True]
            none = http.get("/v1/deliveries", params={"status": "dead"}, headers=admin).json()
            assert none == {"deliveries": [], "next_cursor": None}
            assert_problem(http.get("/v1/deliveries/999999", headers=admin), 404)
            assert_problem(http.post("/v1/deliveries/999999/redeliver", headers=admin), 404)
            for bad_id in ("abc", "0", str(2**63), "1e3"):
                assert_problem(http.get(f"/v1/deliveries/{bad_id}", headers=admin), 422)
            for bad in (
                {"status": "lost"},
                {"cursor": "x"},
                {"cursor": str(2**63)},
                {"cursor": "\u00b2"},  # a digit to str.isdigit(), none to int()
                {"limit": 0},
                {"stauts": "dead"},
                {"contact_id": "c\x001"},
            ):
                assert_problem(http.get("/v1/deliveries", params=bad, headers=admin), 422)
    assert {item.key for item in receiver.received} == {delivery}
    assert all(item.verified for item in receiver.received)


def test_a_redelivery_goes_to_the_webhook_its_trigger_has_now(service: Service) -> None:
    # The URL was wrong: every attempt died. A new version fixes it (and
    # drops the action's own secret), and the dead letter is redelivered.
    with receiving("s3cret", lambda received, nth: 404) as wrong, receiving() as right:
        workspace, delivery = _dead_letter(service, wrong)
        admin = workspace.auth(Scope.ADMIN)
        with service.client() as http:
            right.secret = http.get("/v1/webhooks/secret", headers=admin).json()["secret"]
            fixed = http.put(
                "/v1/models/active", content=webhook_model(right.url, secret=None), headers=admin
            )
            assert fixed.status_code == 200, fixed.text
            again = http.post(f"/v1/deliveries/{delivery}/redeliver", headers=admin)
            assert again.status_code == 202, again.text
            assert (again.json()["status"], again.json()["url"]) == ("pending", right.url)
            _settled(service, workspace)
            done = http.get(f"/v1/deliveries/{delivery}", headers=admin).json()
    assert (done["status"], done["url"]) == ("done", right.url)
    # Each attempt says where it went: the dead letter's to the wrong URL.
    assert [a["url"] for a in done["attempts_log"]] == [wrong.url, wrong.url, right.url]
    assert [item.key for item in wrong.received] == [delivery, delivery]
    (got,) = right.received
    assert (got.key, got.attempt, got.verified) == (delivery, 1, True)
    assert got.body == wrong.received[0].body  # the same bytes, under the same key


def test_deliveries_page_newest_first(service: Service) -> None:
    with receiving("s3cret") as receiver:
        workspace = service.workspace(model=webhook_model(receiver.url))
        admin = workspace.auth(Scope.ADMIN)
        with service.client() as http:
            _send(http, workspace, [
                event(f"d{n}", "demo_request", "2026-05-01T10:00:00Z", contact_id=f"c{n}")
                for n in range(5)
            ])  # fmt: skip
            _settled(service, workspace)
            seen: list[str] = []
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
                page = http.get("/v1/deliveries", params=params, headers=admin).json()
                seen += [d["id"] for d in page["deliveries"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            only = http.get("/v1/deliveries", params={"contact_id": "c3"}, headers=admin).json()
    assert seen == sorted(receiver.keys(), key=int, reverse=True)
    assert [d["firing"]["contact_id"] for d in only["deliveries"]] == ["c3"]


def test_the_signing_secret_is_kept_until_replaced(service: Service) -> None:
    workspace = service.workspace()
    admin = workspace.auth(Scope.ADMIN)
    with service.client() as http:
        first = http.get("/v1/webhooks/secret", headers=admin).json()
        assert http.get("/v1/webhooks/secret", headers=admin).json() == first
        rotated = http.post("/v1/webhooks/secret", headers=admin).json()
        assert rotated["secret"] != first["secret"]
        assert http.get("/v1/webhooks/secret", headers=admin).json() == rotated
        other = service.workspace()
        theirs = http.get("/v1/webhooks/secret", headers=other.auth(Scope.ADMIN)).json()
    assert theirs["secret"] != rotated["secret"]


def test_export_holds_deliveries_and_erasure_removes_them(service: Service) -> None:
    model = (
        webhook_model("RECEIVER")
        + "  - id: tag-demo\n    when: {event: demo_request}\n    actions:\n"
        + "      - add_tag: demo\n      - assign: {owners: [anna@example.com]}\n"
    )
    with receiving("s3cret") as receiver:
        workspace = service.workspace(model=model.replace("RECEIVER", receiver.url))
        admin = workspace.auth(Scope.ADMIN)
        with service.client() as http:
            _send(http, workspace, [
                event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1"),
                event("d2", "demo_request", "2026-05-01T10:00:00Z", contact_id="c2"),
            ])  # fmt: skip
            _settled(service, workspace)
            export = http.get("/v1/contacts/c1/export", headers=admin).json()
            (hook,) = [a for a in export["actions"] if a["kind"] == "webhook"]
            assert hook["status"] == "done"
            # The export is handed to the person: the action's signing secret is not theirs.
            assert hook["action"] == {"webhook": {"url": receiver.url}}
            assert "s3cret" not in json.dumps(export)
            assert hook["payload"] is not None
            assert [a["outbox"] for a in export["delivery_attempts"]] == [hook["seq"]]
            assert export["contact"]["tags"] == ["demo"]
            assert export["contact"]["owner"] == "anna@example.com"
            assert http.delete("/v1/contacts/c1", headers=admin).status_code == 204
            assert_problem(http.get(f"/v1/deliveries/{hook['seq']}", headers=admin), 404)
            c2 = http.get("/v1/contacts/c2", headers=workspace.auth(Scope.READ)).json()
    assert (c2["tags"], c2["owner"]) == (["demo"], "anna@example.com")
    with service.database.connect() as conn:

        def contacts(table: sa.Table, column: sa.ColumnElement[Any]) -> set[Any]:
            return set(
                conn.execute(sa.select(column).where(table.c.workspace == workspace.name)).scalars()
            )

        assert contacts(contact_tags, contact_tags.c.contact_id) == {"c2"}
        assert contacts(assignments, assignments.c.contact_id) == {"c2"}
        assert contacts(firings, firings.c.contact_id) == {"c2"}
        kept = contacts(outbox, outbox.c.seq)
        assert hook["seq"] not in kept
        assert contacts(delivery_attempts, delivery_attempts.c.outbox) <= kept
