"""Dependencies of the routes, as `Annotated` aliases the routes declare."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from .._settings import Settings
from .._store.keys import Caller, Scope
from .auth import authorize, presented_key
from .bodies import text_body
from .modelcache import ModelCache

# The app's parts are read from its state in `async def` dependencies: FastAPI
# runs a plain `def` dependency in its thread pool, a hand-off to a thread and
# back for what is an attribute read, and a request had seven of them.


async def _database(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.database
    return engine


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _models(request: Request) -> ModelCache:
    models: ModelCache = request.app.state.models
    return models


Database = Annotated[sa.Engine, Depends(_database)]
CurrentSettings = Annotated[Settings, Depends(_settings)]
Models = Annotated[ModelCache, Depends(_models)]

# The body as UTF-8 text (bodies.py; the ingestion routes read their JSON
# themselves, see ingestion.read_request).
TextBody = Annotated[str, Depends(text_body)]

PresentedKey = Annotated[str | None, Depends(presented_key)]


def _key(needed: Scope) -> Callable[[Database, PresentedKey], Caller]:
    def dependency(database: Database, key: PresentedKey) -> Caller:
        return authorize(database, key, needed)

    return dependency


# The caller of a route, by the scope the route needs (auth.py): admin keys
# may do everything; a read key cannot send events, nor a write key read.
# (The ingestion routes check their write key themselves, ingestion.store_sent.)
ReadKey = Annotated[Caller, Depends(_key(Scope.READ))]
AdminKey = Annotated[Caller, Depends(_key(Scope.ADMIN))]
