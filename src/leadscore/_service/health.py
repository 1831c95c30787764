"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel

from .._store.migrate import current_revisions, head_revisions
from .deps import Database
from .problems import Problem

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    migrations: str


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up. It does not look at the database: see /readyz."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"description": "Not ready"}})
def readyz(database: Database) -> Readiness:
    """Ready to serve: the database answers and its schema is current."""
    try:
        with database.connect() as conn:
            current = current_revisions(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise Problem(503, f"the database does not answer: {type(exc).__name__}") from None
    if current != head_revisions():
        raise Problem(
            503,
            "the database schema is not current: run `leadscore db upgrade`",
            kind="migrations-pending",
        )
    return Readiness(status="ok", database="ok", migrations="current")
