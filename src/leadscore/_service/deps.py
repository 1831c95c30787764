"""Dependencies of the routes, as `Annotated` aliases the routes declare."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from .._settings import Settings


def _database(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.database
    return engine


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Database = Annotated[sa.Engine, Depends(_database)]
CurrentSettings = Annotated[Settings, Depends(_settings)]
