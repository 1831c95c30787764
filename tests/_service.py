"""A real leadscore server over a test database, and workspaces with keys in it,
for the tests of the HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from leadscore._settings import Settings
from leadscore._store import ModelVersion, Scope, create_key, create_workspace, store_model
from leadscore._store.tables import models
from leadscore._store.workspaces import load_model

from ._live import serving

PROBLEM_KEYS = {"type", "title", "status", "detail"}
MAX_BODY = 16_384
MAX_BATCH = 20

# A small model whose scores depend on every kind of call the tests send:
# identify (fit from traits), page (a URL condition), track (an event type).
MODEL = r"""
version: 1
name: http-tests
rules:
  - id: demo
    event: demo_request
    points: 30
  - id: pricing
    event: page_view
    where:
      url: {glob: "*/pricing*"}
    points: 10
    limit: {times: 1, per: day}
fit:
  - id: decision-maker
    where:
      job_title: {regex: '(?i)\bcto\b'}
    points: 25
grades:
  - {grade: A, min_fit: 20}
  - {grade: B}
bands:
  - {band: hot, min_score: 35}
  - {band: cold}
"""


@dataclass(frozen=True)
class Workspace:
    name: str
    keys: dict[Scope, str]
    model: ModelVersion | None

    def auth(self, scope: Scope) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


@dataclass(frozen=True)
class Service:
    base: str
    database: sa.Engine
    settings: Settings

    def client(self) -> httpx.Client:
        # trust_env=False: a proxy set in the environment must not see loopback calls.
        return httpx.Client(base_url=self.base, trust_env=False, timeout=30)

    def workspace(self, *, model: str | None = MODEL) -> Workspace:
        """A new workspace with a key of each scope and, unless None, `model` active."""
        name = f"w-{uuid.uuid4().hex[:12]}"
        with self.database.connect() as conn:
            create_workspace(conn, workspace=name)
            keys = {scope: create_key(conn, workspace=name, scope=scope)[1] for scope in Scope}
            version = (
                None
                if model is None
                else store_model(conn, workspace=name, document=model, activate=True)
            )
        return Workspace(name, keys, version)


@contextmanager
def running(database: sa.Engine, **overrides: Any) -> Iterator[Service]:
    """A server on the (migrated) test database, with small limits to test
    against; without its outbox worker unless `outbox_worker=True` is given
    (the tests' models name webhooks nobody should call)."""
    settings = Settings(
        **{
            "database_url": database.url.render_as_string(hide_password=False),
            "max_body_bytes": MAX_BODY,
            "max_batch_events": MAX_BATCH,
            "outbox_worker": False,
            **overrides,
        }
    )
    with serving(settings) as base:
        yield Service(base, database, settings)


def stored_unchecked(conn: sa.Connection, workspace: str, document: str) -> ModelVersion:
    """Store `document` as the workspace's next version, active, without the
    checks of an upload (store_model's): as a version stored before one of
    them existed is in the database."""
    with conn.begin():
        latest = conn.execute(
            sa.select(sa.func.max(models.c.version)).where(models.c.workspace == workspace)
        ).scalar()
        version = (latest or 0) + 1
        conn.execute(models.update().where(models.c.workspace == workspace).values(active=False))
        conn.execute(
            models.insert().values(
                workspace=workspace,
                version=version,
                document=document,
                name=None,
                active=True,
                created_at=0,
            )
        )
    return load_model(conn, workspace=workspace, version=version)


def assert_problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The response is a problem (RFC 9457) with one of `statuses`; its body."""
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == response.status_code
    assert body["type"].startswith("https://leadscore.dev/problems/")
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return dict(body)


def event(id: str, type: str, when: str, **fields: Any) -> dict[str, Any]:
    """A canonical event as JSON."""
    return {"id": id, "type": type, "timestamp": when, **fields}
