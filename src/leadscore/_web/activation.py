"""Activating a model version from the editor, with progress to show.

SEAM (issue 3, part A: the models API). Today activation is the store's
`activate_model`, the path of `PUT /v1/models/active`: it is immediate, and
contacts are rescored from their events when read or next touched. The
models-API engineer adds a background activation that rescores every
contact with visible progress; when it lands, `activate` starts that job
and `progress` reads its progress, and the editor's progress bar (which
polls `GET /models/activation/{job}`) follows it unchanged.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .._service.modelcache import ModelCache
from .._store.workspaces import activate_model


def activate(database: sa.Engine, models: ModelCache, *, workspace: str, version: int) -> str:
    """Make a stored version active; the id of the job to follow."""
    with database.connect() as conn:
        activated = activate_model(conn, workspace=workspace, version=version)
    models.keep(workspace, activated)
    return str(version)


def progress(*, workspace: str, job: str) -> dict[str, Any] | None:
    """How far an activation is: `done` of `total` contacts, and `state`.
    Activation is immediate for now (see the module's note), so every job
    that names a version is done."""
    if not job.isdigit():
        return None
    return {"job": job, "state": "done", "done": 1, "total": 1}
