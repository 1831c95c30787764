"""The application factory: `create_app(settings)`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from .._settings import Settings
from .._store.database import open_database
from . import health, problems
from .limits import BodyLimit


def create_app(settings: Settings) -> FastAPI:
    """Build the service. Nothing connects until the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        app.state.database = open_database(settings.database())
        try:
            yield
        finally:
            app.state.database.dispose()

    app = FastAPI(
        title="leadscore",
        version=__version__,
        summary="Lead scoring: events in, scores, reasons and hand-offs to sales out.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    problems.install(app)
    app.include_router(health.router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
