"""Dependencies of the routes, as `Annotated` aliases the routes declare."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request

from .._settings import Settings
from .._store.keys import Caller, Scope
from .auth import Basic, Bearer, authorize, key_in, presented_key
from .bodies import json_body, text_body
from .committer import Committer
from .metrics import Metrics
from .modelcache import ModelCache
from .problems import Problem

# The app's parts are read from its state in `async def` dependencies: FastAPI
# runs a plain `def` dependency in its thread pool, a hand-off to a thread and
# back for what is an attribute read, and a request had seven of them.


async def _database(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.database
    return engine


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _committer(request: Request) -> Committer:
    committer: Committer = request.app.state.committer
    return committer


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def _models(request: Request) -> ModelCache:
    models: ModelCache = request.app.state.models
    return models


@dataclass(frozen=True, slots=True)
class Ingestion:
    """What the ingestion routes need of the app, in one object (Segment
    routes get it within their one dependency, see SegmentRequest)."""

    database: sa.Engine
    models: ModelCache
    committer: Committer
    metrics: Metrics
    settings: Settings


def _ingestion_of(request: Request) -> Ingestion:
    state = request.app.state
    return Ingestion(state.database, state.models, state.committer, state.metrics, state.settings)


Database = Annotated[sa.Engine, Depends(_database)]
CurrentSettings = Annotated[Settings, Depends(_settings)]
Models = Annotated[ModelCache, Depends(_models)]
AppMetrics = Annotated[Metrics, Depends(_metrics)]
AppCommitter = Annotated[Committer, Depends(_committer)]

# The body as JSON whatever its Content-Type, or as UTF-8 text (bodies.py).
JsonBody = Annotated[Any, Depends(json_body)]
TextBody = Annotated[str, Depends(text_body)]

PresentedKey = Annotated[str | None, Depends(presented_key)]


def _key(needed: Scope) -> Callable[[Database, PresentedKey], Caller]:
    def dependency(database: Database, key: PresentedKey) -> Caller:
        return authorize(database, key, needed)

    return dependency


@dataclass(frozen=True, slots=True)
class SegmentRequest:
    """What a Segment route works on: the key presented, the body as JSON
    and the app's parts."""

    key: str | None  # the Authorization header's, else the body's `writeKey`
    body: Any
    app: Ingestion
    # The 422 of a body that is not JSON, answered after the key is checked
    # (a caller without a valid key learns nothing of its body first).
    not_json: Problem | None = None


async def _segment_request(request: Request, bearer: Bearer, basic: Basic) -> SegmentRequest:
    # One dependency (with the two security schemes under it, which the
    # OpenAPI document shows) rather than one each for the key, the body and
    # the app's parts: FastAPI resolves each on its own. Resolving the seven
    # a call had was 9% of its server CPU, this one and its two schemes 6%
    # (py-spy samples of sequential calls).
    not_json = None
    try:
        body = await json_body(request)
    except Problem as error:
        if error.status != 422:  # the transport's own: gzip, size
            raise
        body, not_json = None, error
    key = key_in(bearer, basic)
    # analytics.js sends no Authorization header (it would cost a CORS
    # preflight per call) but the write key in the body.
    if key is None and isinstance(body, dict) and isinstance(body.get("writeKey"), str):
        key = body["writeKey"] or None
    return SegmentRequest(key, body, _ingestion_of(request), not_json)


# The caller of a route, by the scope the route needs (auth.py): admin keys
# may do everything; a read key cannot send events, nor a write key read.
WriteKey = Annotated[Caller, Depends(_key(Scope.WRITE))]
ReadKey = Annotated[Caller, Depends(_key(Scope.READ))]
AdminKey = Annotated[Caller, Depends(_key(Scope.ADMIN))]
# Segment's routes: the key presented in the Authorization header or the
# body's `writeKey`, checked (auth.authorize, for a write key) by the route in
# the same trip to the thread pool as the rest of its work: one hand-off to a
# thread per call, where a dependency doing its own I/O would add another.
Segment = Annotated[SegmentRequest, Depends(_segment_request)]
