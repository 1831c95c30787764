"""The application factory: `create_app(settings)`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .. import __version__
from .._collector import collect_periodically, settle_server
from .._settings import Settings
from .._store.database import open_database
from .._web import mount as mount_web_app
from .._web.common import PageHeaders
from . import admin, contacts, deliveries, events, health, models, problems, tracking
from . import metrics as metrics_routes
from .activations import ActivationRunner
from .committer import Committer
from .limits import BodyLimit
from .logs import AccessLog
from .metrics import Metrics
from .modelcache import ModelCache
from .worker import OutboxWorker


def create_app(settings: Settings, *, own_process: bool = False) -> FastAPI:
    """Build the service. Nothing connects until the app starts.

    `own_process`: the app is the process's only business (`leadscore
    serve`), so once started it may set the process's garbage collector
    (_collector.settle_server); an app inside another program (tests, a
    host application) leaves it alone.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        app.state.database = open_database(settings.database())
        metrics.database = app.state.database
        app.state.activations = ActivationRunner(app.state.database)
        app.state.activations.start()
        app.state.committer = Committer(app.state.database)
        app.state.committer.start()
        # The outbox worker carries out triggers' actions in the background
        # (unless `leadscore worker` processes do); stopped before the
        # database is closed, once its round in progress has ended.
        worker = (
            OutboxWorker(app.state.database, settings, models=app.state.models)
            if settings.outbox_worker
            else None
        )
        if worker is not None:
            worker.start()
        sweeper: asyncio.Task[None] | None = None
        if own_process:
            settle_server()
            sweeper = asyncio.create_task(collect_periodically())
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
            if worker is not None:
                worker.stop()
            app.state.committer.stop()
            app.state.activations.stop()
            app.state.database.dispose()

    app = FastAPI(
        title="leadscore",
        version=__version__,
        summary="Lead scoring: events in, scores, reasons and hand-offs to sales out.",
        lifespan=lifespan,
    )
    metrics = Metrics()
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.models = ModelCache()
    problems.install(app)
    problems.document(app)
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    app.include_router(events.router)
    app.include_router(tracking.router)
    app.include_router(models.router)
    app.include_router(admin.router)
    app.include_router(contacts.router)
    app.include_router(deliveries.router)
    # The web app: pages at /, outside the OpenAPI document (they are not the API).
    mount_web_app(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    # Web pages send events from their visitors' browsers (a write key is
    # meant to be embedded), so any origin may call. Keys travel in a header
    # or the body, never in cookies, so this gives no page anything it could
    # not do with the key alone.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        # X-Request-ID: a script may name its call, and read the id its call
        # was logged under (logs.py), to report a failure.
        allow_headers=["Authorization", "Content-Type", "Content-Encoding", "X-Request-ID"],
        expose_headers=["X-Request-ID"],
        max_age=86_400,
    )
    # The web app's security headers on each of its answers, CORS preflights
    # and 413s included (_web/common.py).
    app.add_middleware(PageHeaders)
    # Outermost: every answer, 413s and CORS preflights included, gets its
    # request id, log line and counts.
    app.add_middleware(AccessLog, metrics=metrics)
    return app
