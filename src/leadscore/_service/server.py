"""Running the service: uvicorn, in one process or several on one port."""

from __future__ import annotations

import logging
import os

import uvicorn
from fastapi import FastAPI

from .._settings import Settings
from . import logs
from .app import create_app

_log = logging.getLogger("leadscore.serve")


def from_environment() -> FastAPI:
    """The app of a worker process: its settings come from the environment,
    where `run` put the parent's."""
    logs.configure()
    return create_app(Settings(), own_process=True)


def run(settings: Settings) -> None:
    """Serve until stopped. Several workers are separate processes (started by
    uvicorn, sharing the listening socket); each builds its app from the
    settings passed down through the environment."""
    logs.configure()
    _log.info(
        "leadscore serving on http://%s:%s with %s worker(s)",
        settings.host,
        settings.port,
        settings.workers,
    )
    if settings.workers == 1:
        uvicorn.run(
            create_app(settings, own_process=True),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=None,  # logs.configure's JSON lines
            access_log=False,  # logs.AccessLog writes one line per request
            # The client's address and scheme from these proxies' headers
            # (uvicorn's ProxyHeadersMiddleware): what sign-in limits count.
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
        return
    for name, value in settings.model_dump(exclude_none=True).items():
        os.environ[f"LEADSCORE_{name.upper()}"] = str(value)
    uvicorn.run(
        "leadscore._service.server:from_environment",
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
