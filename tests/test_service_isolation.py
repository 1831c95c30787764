"""Isolation, over every route of the OpenAPI document, on SQLite and PostgreSQL.

Workspace A has a model, events and keys. Each route is called with no key,
with keys that are not keys, with A's revoked key, with A's and another
workspace B's keys of every scope. Without a valid key: 401. With a scope
that does not allow the route: 403. With B's keys: whatever the route
answers, never anything of A's (404 where the route names something of
A's), and A is left exactly as it was.

`ROUTES` must list every route the OpenAPI document has: a new route fails
here until it says which scope it needs and how to call it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from leadscore._segment import CALL_TYPES
from leadscore._store import (
    Scope,
    active_version,
    create_key,
    list_keys,
    revoke_key,
    store_model,
)
from leadscore._store.activation import latest_activation
from leadscore._store.tables import events as event_rows
from leadscore._store.tables import outbox as outbox_rows

from ._service import MODEL, Service, Workspace, assert_problem, event, running

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


@dataclass(frozen=True)
class Call:
    """How to call a route: the scope it needs and the request's parts,
    given the workspace whose ids the path names (A's, in every call)."""

    needs: Scope
    body: Callable[[str], dict[str, Any]] = lambda suffix: {}
    names_a: bool = False  # the path names one of A's things
    # The contact a `{contact_id}` path names: erasing one with A's own key
    # must leave the contact the other routes read.
    contact: str = "a-private-contact"


def _segment_call(kind: str) -> Callable[[str], dict[str, Any]]:
    calls: dict[str, dict[str, Any]] = {
        "track": {"event": "Demo Request"},
        "identify": {"traits": {"job_title": "CTO"}},
        "page": {"properties": {"url": "https://b.test/pricing"}},
        "screen": {"name": "Home"},
        "alias": {"previousId": "b-previous"},
        "group": {"groupId": "b-group"},
    }
    return lambda suffix: {
        "json": {
            **calls[kind],
            "userId": "b-contact",
            "messageId": f"b-{kind}-{suffix}",
            "timestamp": "2026-05-04T10:00:00Z",
        }
    }


ROUTES: dict[tuple[str, str], Call] = {
    ("POST", "/v1/events"): Call(
        Scope.WRITE,
        lambda suffix: {
            "json": [event(f"b-{suffix}", "demo_request", "2026-05-04T10:00:00Z", contact_id="b")]
        },
    ),
    **{
        ("POST", path): Call(Scope.WRITE, _segment_call(kind))
        for kind in CALL_TYPES
        for path in (f"/v1/{kind}", f"/v1/{kind[0]}")
    },
    **{
        ("POST", path): Call(
            Scope.WRITE,
            lambda suffix: {
                "json": {
                    "batch": [
                        {"type": "track", "userId": "b", "event": "x", "messageId": f"bb-{suffix}"}
                    ]
                }
            },
        )
        for path in ("/v1/batch", "/v1/b")
    },
    ("GET", "/v1/models/active"): Call(Scope.READ),
    ("PUT", "/v1/models/active"): Call(Scope.ADMIN, lambda suffix: {"content": MODEL}),
    ("GET", "/v1/models"): Call(Scope.READ),
    ("POST", "/v1/models"): Call(Scope.ADMIN, lambda suffix: {"content": MODEL}),
    # A has versions B has not: B's keys meet a 404 where A's find them.
    ("GET", "/v1/models/{version}"): Call(Scope.READ, names_a=True),
    ("POST", "/v1/models/{version}/activate"): Call(Scope.ADMIN, names_a=True),
    ("GET", "/v1/activations/{activation_id}"): Call(Scope.READ, names_a=True),
    ("GET", "/v1/keys"): Call(Scope.ADMIN),
    ("POST", "/v1/keys"): Call(Scope.ADMIN, lambda suffix: {"json": {"scope": "read"}}),
    ("DELETE", "/v1/keys/{key_id}"): Call(Scope.ADMIN, names_a=True),
    ("GET", "/v1/contacts"): Call(Scope.READ),
    ("GET", "/v1/contacts/{contact_id}"): Call(Scope.READ, names_a=True),
    ("GET", "/v1/contacts/{contact_id}/timeline"): Call(Scope.READ, names_a=True),
    ("GET", "/v1/contacts/{contact_id}/export"): Call(Scope.ADMIN, names_a=True),
    ("DELETE", "/v1/contacts/{contact_id}"): Call(
        Scope.ADMIN, names_a=True, contact="a-private-erased"
    ),
    ("GET", "/v1/deliveries"): Call(Scope.ADMIN),
    ("GET", "/v1/deliveries/{delivery_id}"): Call(Scope.ADMIN, names_a=True),
    ("POST", "/v1/deliveries/{delivery_id}/redeliver"): Call(Scope.ADMIN, names_a=True),
    ("GET", "/v1/webhooks/secret"): Call(Scope.ADMIN),
    ("POST", "/v1/webhooks/secret"): Call(Scope.ADMIN),
}

# A's model fires a webhook at A's contact's identify: A has a delivery,
# which the deliveries routes name. Nothing listens there (the server's
# worker is off anyway): the delivery stays queued.
A_MODEL = (
    MODEL.replace("name: http-tests", "name: a-private-model")
    + """
triggers:
  - id: a-private-trigger
    when: {event: identify}
    actions:
      - webhook: {url: "http://127.0.0.1:9/a-private-hook", secret: a-private-secret}
"""
)


@dataclass(frozen=True)
class Setup:
    service: Service
    a: Workspace
    b: Workspace
    victim: str  # an id of A's keys that paths name
    version: int  # a model version of A's that B does not have
    activation: int  # an activation of A's
    delivery: str  # the id of A's delivery that paths name
    revoked: str  # A's admin key, revoked
    secrets: list[str]  # what must never be seen by anyone but A


@pytest.fixture(scope="module")
def setup(database: sa.Engine) -> Iterator[Setup]:
    with running(database) as service:
        a = service.workspace(model=A_MODEL)
        b = service.workspace()
        with service.database.connect() as conn:
            victim, _ = create_key(conn, workspace=a.name, scope=Scope.READ)
            revoked, revoked_key = create_key(conn, workspace=a.name, scope=Scope.ADMIN)
            assert revoke_key(conn, workspace=a.name, key_id=revoked.key_id)
            a_ids = [key.key_id for key in list_keys(conn, workspace=a.name)]
            for _ in range(3):  # B has one version; A has four
                version = store_model(conn, workspace=a.name, document=MODEL).version
            activation = latest_activation(conn, workspace=a.name)
            assert activation is not None
        with service.client() as http:
            sent = http.post(
                "/v1/events",
                json=[
                    event(
                        "a-private-event",
                        "identify",
                        "2026-05-04T09:00:00Z",
                        contact_id="a-private-contact",
                        traits={"email": "a-private@example.com"},
                    ),
                    event(
                        "a-private-erased-event",
                        "demo_request",
                        "2026-05-04T09:00:00Z",
                        contact_id="a-private-erased",
                    ),
                ],
                headers=a.auth(Scope.WRITE),
            )
            assert sent.json()["accepted"] == 2
            a_secret = http.get("/v1/webhooks/secret", headers=a.auth(Scope.ADMIN)).json()
        with service.database.connect() as conn:
            (delivery,) = conn.execute(
                sa.select(outbox_rows.c.seq).where(outbox_rows.c.workspace == a.name)
            ).scalars()
        secrets = [
            a.name,
            "a-private",  # the model's name, the event, the contact, the email
            *a_ids,
            *a.keys.values(),
            a_secret["secret"],
        ]
        yield Setup(
            service,
            a,
            b,
            victim.key_id,
            version,
            activation.id,
            str(delivery),
            revoked_key,
            secrets,
        )


def _request(
    http: httpx.Client, route: tuple[str, str], call: Call, setup: Setup, **auth: Any
) -> httpx.Response:
    method, path = route
    url = (
        path.replace("{key_id}", setup.victim)
        .replace("{contact_id}", call.contact)
        .replace("{version}", str(setup.version))
        .replace("{activation_id}", str(setup.activation))
        .replace("{delivery_id}", setup.delivery)
    )
    return http.request(method, url, **call.body(auth.pop("suffix", "x")), **auth)


def _bearer(key: str) -> dict[str, Any]:
    return {"headers": {"Authorization": f"Bearer {key}"}}


def _a_state(setup: Setup) -> tuple[Any, ...]:
    with setup.service.database.connect() as conn:
        keys = list_keys(conn, workspace=setup.a.name)
        version = active_version(conn, workspace=setup.a.name)
        ids = sorted(
            conn.execute(
                sa.select(event_rows.c.id).where(event_rows.c.workspace == setup.a.name)
            ).scalars()
        )
    return (keys, version, ids)


def test_the_table_covers_every_route(setup: Setup) -> None:
    with setup.service.client() as http:
        document = http.get("/openapi.json").json()
    routes = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert routes == set(ROUTES) | PUBLIC
    for (method, path), operation in (
        (route, document["paths"][route[1]][route[0].lower()]) for route in ROUTES
    ):
        assert operation.get("security"), f"{method} {path} does not document its auth"
        assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"


@pytest.mark.parametrize("route", sorted(ROUTES), ids=" ".join)
def test_no_valid_key_is_401(setup: Setup, route: tuple[str, str]) -> None:
    call = ROUTES[route]
    not_keys: list[dict[str, Any]] = [
        {},
        _bearer("lsk_0123456789abcdef_" + "A" * 43),
        _bearer("not a key at all"),
        _bearer(setup.revoked),
        {"headers": {"Authorization": "Basic " + base64.b64encode(b"lsk_nope:").decode()}},
        {"headers": {"Authorization": "Basic !!!"}},
        {"headers": {"Authorization": f"Token {setup.a.keys[Scope.ADMIN]}"}},
        {"auth": ("", "")},
    ]
    before = _a_state(setup)
    with setup.service.client() as http:
        for auth in not_keys:
            response = _request(http, route, call, setup, **auth)
            body = assert_problem(response, 401)
            assert "www-authenticate" in response.headers
            assert not any(secret in json.dumps(body) for secret in setup.secrets)
    assert _a_state(setup) == before


@pytest.mark.parametrize("route", sorted(ROUTES), ids=" ".join)
def test_keys_of_the_wrong_scope_are_403(setup: Setup, route: tuple[str, str]) -> None:
    call = ROUTES[route]
    before = _a_state(setup)
    with setup.service.client() as http:
        for workspace in (setup.a, setup.b):
            for scope in Scope:
                if scope.allows(call.needs):
                    continue
                response = _request(http, route, call, setup, **_bearer(workspace.keys[scope]))
                body = assert_problem(response, 403)
                assert not any(secret in json.dumps(body) for secret in setup.secrets)
    assert _a_state(setup) == before


@pytest.mark.parametrize("route", sorted(ROUTES), ids=" ".join)
def test_another_workspaces_keys_never_reach_a(setup: Setup, route: tuple[str, str]) -> None:
    call = ROUTES[route]
    before = _a_state(setup)
    with setup.service.client() as http:
        for scope in Scope:
            if not scope.allows(call.needs):
                continue
            response = _request(
                http,
                route,
                call,
                setup,
                suffix=f"{scope}",
                **_bearer(setup.b.keys[scope]),
            )
            secrets = setup.secrets
            text = response.text
            if call.names_a:
                assert_problem(response, 404)
                # The answer may repeat the id the caller sent, nothing more.
                secrets = [secret for secret in secrets if secret != setup.victim]
                text = text.replace(call.contact, "")
            else:
                assert response.status_code in (200, 201, 202, 204), response.text
            assert not any(secret in text for secret in secrets), response.text
    assert _a_state(setup) == before


@pytest.mark.parametrize("route", sorted(ROUTES), ids=" ".join)
def test_the_workspaces_own_keys_work(setup: Setup, route: tuple[str, str]) -> None:
    # The calls above are real calls: with A's own keys they succeed.
    call = ROUTES[route]
    with setup.service.client() as http:
        for scope in Scope:
            if scope.allows(call.needs):
                response = _request(
                    http, route, call, setup, suffix=f"a-{scope}", **_bearer(setup.a.keys[scope])
                )
                assert response.status_code in (200, 201, 202, 204), response.text


def test_ids_are_per_workspace(setup: Setup) -> None:
    # B sends an event with the id of one of A's: a new event of B's, not a
    # duplicate; A's contact stays A's alone.
    same = event("a-private-event", "demo_request", "2026-05-04T10:00:00Z", contact_id="b-c")
    with setup.service.client() as http:
        response = http.post("/v1/events", json=same, headers=setup.b.auth(Scope.WRITE))
    assert response.json()["results"][0]["status"] == "accepted"
    with setup.service.database.connect() as conn:
        contacts = {
            (row.workspace, row.contact_id)
            for row in conn.execute(
                sa.select(event_rows.c.workspace, event_rows.c.contact_id).where(
                    event_rows.c.id == "a-private-event"
                )
            )
        }
    assert contacts == {(setup.a.name, "a-private-contact"), (setup.b.name, "b-c")}
