"""The service's foundations over real HTTP: health, readiness, one error shape,
request size limits, and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from leadscore._settings import Settings
from leadscore._store.migrate import upgrade

from ._live import serving

PROBLEM_KEYS = {"type", "title", "status", "detail"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "data").mkdir()
    return Settings(data_dir=tmp_path / "data", max_body_bytes=4_096)


@pytest.fixture
def base(settings: Settings) -> Iterator[str]:
    upgrade(settings.database())
    with serving(settings) as url:
        yield url


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return dict(body)


def test_health_and_readiness(base: str) -> None:
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200
    assert ready.json()["migrations"] == "current"


def test_not_ready_until_the_schema_is_current(settings: Settings) -> None:
    with serving(settings) as url:
        body = assert_problem(httpx.get(f"{url}/readyz"), 503)
        assert "leadscore db upgrade" in str(body["detail"])
        upgrade(settings.database())
        assert httpx.get(f"{url}/readyz").status_code == 200


def test_unknown_routes_and_methods_are_problems(base: str) -> None:
    assert_problem(httpx.get(f"{base}/v1/nothing-here"), 404)
    assert_problem(httpx.post(f"{base}/healthz"), 405)


def test_bodies_over_the_limit_are_refused(base: str) -> None:
    # Refused from the declared length, before the route or the body is read.
    # (Chunked bodies are counted as they are read: tested with /v1/events.)
    declared = httpx.post(f"{base}/healthz", content=b"x" * 10_000)
    assert_problem(declared, 413)


def test_openapi_is_served(base: str) -> None:
    document = httpx.get(f"{base}/openapi.json").json()
    assert {"/healthz", "/readyz"} <= set(document["paths"])
