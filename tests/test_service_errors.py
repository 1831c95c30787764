"""One error shape over every route, over real HTTP: whatever goes wrong (no
key, bad JSON, a body too large whether its length is declared or it comes
chunked, a method the route does not have, a bad encoding), the answer is an
RFC 9457 problem. And the OpenAPI document lists every route, with each of
its error responses described as a problem.

Routes are read from the OpenAPI document, so a new route is covered here
the moment it exists.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from leadscore._settings import Settings
from leadscore._store import Scope

from ._live import serving
from ._service import MAX_BODY, Service, Workspace, assert_problem, running

_ANY = ("GET", "POST", "PUT", "DELETE", "PATCH")

# The OpenAPI document's `paths`: path -> method -> operation.
Paths = dict[str, dict[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def service(database: sa.Engine) -> Iterator[Service]:
    with running(database) as started:
        yield started


@pytest.fixture(scope="module")
def workspace(service: Service) -> Workspace:
    return service.workspace()


@pytest.fixture(scope="module")
def document(service: Service) -> Paths:
    with service.client() as http:
        found: Paths = http.get("/openapi.json").json()["paths"]
    return found


def _routes(document: Paths) -> list[tuple[str, str]]:
    return sorted((method.upper(), path) for path, ops in document.items() for method in ops)


def _url(path: str) -> str:
    return (
        path.replace("{key_id}", "0123456789abcdef")
        .replace("{contact_id}", "c-1")
        .replace("{version}", "1")
        .replace("{activation_id}", "1")
        .replace("{delivery_id}", "1")
    )


def test_openapi_lists_every_route_and_docs_api_md_too(
    document: Paths,
) -> None:
    # The routes the issue asks for, and the table of docs/api.md, are all in
    # the OpenAPI document, and it has no route that page does not describe.
    text = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z]+)` \| `(/[^`]*)` \|", text, re.MULTILINE))
    required = {("POST", "/v1/events"), ("POST", "/v1/batch")} | {
        ("POST", f"/v1/{kind}") for kind in ("track", "identify", "page", "screen", "alias")
    }
    assert required <= documented
    assert set(_routes(document)) == documented


def test_every_error_response_is_documented_as_a_problem(
    document: Paths,
) -> None:
    for path, operations in document.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert isinstance(responses, dict)
            assert any(status.startswith("2") for status in responses), (method, path)
            for status, response in responses.items():
                if status[0] in "45":
                    schema = response["content"]["application/problem+json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ProblemDetails"}
                    assert list(response["content"]) == ["application/problem+json"]


def test_every_route_answers_a_wrong_method_with_a_problem(
    service: Service, document: Paths
) -> None:
    with service.client() as http:
        for path, operations in document.items():
            for method in _ANY:
                if method.lower() not in operations:
                    assert_problem(http.request(method, _url(path)), 405)


def test_every_secured_route_answers_no_key_with_a_problem(
    service: Service, document: Paths
) -> None:
    with service.client() as http:
        for method, path in _routes(document):
            if document[path][method.lower()].get("security"):
                assert_problem(http.request(method, _url(path), json={}), 401)
                # No key and a body that is not JSON: still who, before what.
                assert_problem(http.request(method, _url(path), content=b"{nope"), 401)


def test_every_route_with_a_body_answers_bad_json_with_a_problem(
    service: Service,
    workspace: Workspace,
    document: Paths,
) -> None:
    with service.client() as http:
        for method, path in _routes(document):
            if "requestBody" in document[path][method.lower()]:
                for bad in (b"{bad", b"", b'{"a": NaN}'):
                    response = http.request(
                        method,
                        _url(path),
                        content=bad,
                        headers={**workspace.auth(Scope.ADMIN), "Content-Type": "application/json"},
                    )
                    assert_problem(response, 422)


def test_every_route_refuses_a_declared_body_over_the_limit(
    service: Service, workspace: Workspace, document: Paths
) -> None:
    with service.client() as http:
        for method, path in _routes(document):
            response = http.request(
                method,
                _url(path),
                content=b"[" + b" " * MAX_BODY + b"]",
                headers=workspace.auth(Scope.ADMIN),
            )
            assert_problem(response, 413)


def test_every_route_with_a_body_refuses_a_chunked_body_over_the_limit(
    service: Service,
    workspace: Workspace,
    document: Paths,
) -> None:
    # No Content-Length: the body is counted as it arrives and cut off at the
    # limit, before it is all in memory.
    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(2 * MAX_BODY // 1024):
            yield b" " * 1024
        yield b"]"

    with service.client() as http:
        for method, path in _routes(document):
            if "requestBody" in document[path][method.lower()]:
                response = http.request(
                    method,
                    _url(path),
                    content=chunks(),
                    headers={**workspace.auth(Scope.ADMIN), "Content-Type": "application/json"},
                )
                assert "content-length" not in response.request.headers
                assert_problem(response, 413)


def test_bad_encodings_are_problems(service: Service, workspace: Workspace) -> None:
    headers = {**workspace.auth(Scope.WRITE), "Content-Type": "application/json"}
    bomb = gzip.compress(b"[" + b" " * (50 * MAX_BODY) + b"]")
    assert len(bomb) < MAX_BODY
    with service.client() as http:
        for path in ("/v1/events", "/v1/batch", "/v1/track"):
            too_big = http.post(path, content=bomb, headers={**headers, "Content-Encoding": "gzip"})
            assert_problem(too_big, 413)
            not_gzip = http.post(
                path, content=b"[]", headers={**headers, "Content-Encoding": "gzip"}
            )
            assert_problem(not_gzip, 400)
            cut = http.post(
                path,
                content=gzip.compress(b"[]")[:-4],
                headers={**headers, "Content-Encoding": "gzip"},
            )
            assert_problem(cut, 400)
            brotli = http.post(path, content=b"[]", headers={**headers, "Content-Encoding": "br"})
            assert_problem(brotli, 415)


def test_an_unknown_route_is_a_problem(service: Service) -> None:
    with service.client() as http:
        assert_problem(http.post("/v1/nothing"), 404)
        assert_problem(http.get("/v1/keys/abc/def"), 404)


def test_problems_reach_browsers(service: Service) -> None:
    # A page's script can read why its call failed.
    with service.client() as http:
        response = http.post("/v1/track", json={}, headers={"Origin": "https://a.test"})
    assert_problem(response, 401)
    assert response.headers["access-control-allow-origin"] == "*"


def test_browsers_may_send_and_read_the_request_id(service: Service) -> None:
    # The logs' request id (docs/api.md): a page's script may name its call
    # (the preflight allows the header) and read the id it was logged under.
    origin = {"Origin": "https://a.test"}
    with service.client() as http:
        preflight = http.options(
            "/v1/track",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-request-id",
            },
        )
        assert preflight.status_code == 200, preflight.text
        response = http.post("/v1/track", json={}, headers={**origin, "X-Request-ID": "call-7"})
    assert response.headers["x-request-id"] == "call-7"
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in [name.strip() for name in exposed.split(",")]


def test_a_failure_of_the_server_is_a_problem_too(tmp_path: Path) -> None:
    # A real failure: the database was never migrated, so looking up the key
    # fails. The answer says so in the one shape, and nothing of the cause.
    settings = Settings(data_dir=tmp_path / "data", outbox_worker=False)
    with serving(settings) as base, httpx.Client(base_url=base, trust_env=False) as http:
        response = http.post(
            "/v1/events", json=[], headers={"Authorization": "Bearer lsk_0123456789abcdef_x"}
        )
    body = assert_problem(response, 500)
    assert "api_keys" not in response.text
    assert body["type"].endswith("/internal-server-error")


def test_a_nul_in_an_id_or_a_filter_is_a_problem_not_a_server_error(
    service: Service, workspace: Workspace
) -> None:
    # PostgreSQL refuses U+0000 in any text it is sent: each of these was a
    # 500 there. No stored id or name holds one, so nothing is found.
    admin = workspace.auth(Scope.ADMIN)
    with service.client() as http:
        for method, path in (
            ("GET", "/v1/contacts/c%00"),
            ("GET", "/v1/contacts/c%00/timeline"),
            ("GET", "/v1/contacts/c%00/export"),
            ("DELETE", "/v1/contacts/c%00"),
        ):
            body = assert_problem(http.request(method, path, headers=admin), 422)
            assert [error["path"] for error in body["errors"]] == ["contact_id"]
        for name in ("band", "grade", "stage", "tag", "tag_score", "owner"):
            answer = http.get("/v1/contacts", params={name: "x\x00"}, headers=admin)
            body = assert_problem(answer, 422)
            assert [error["path"] for error in body["errors"]] == [name]
        assert_problem(http.delete("/v1/keys/0123456789abcde%00", headers=admin), 404)
        assert_problem(http.delete("/v1/keys/%00", headers=admin), 404)
