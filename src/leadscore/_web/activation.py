"""Activating a model version from the editor, with progress to show.

The editor goes the models API's way (`POST /v1/models/{version}/activate`,
`_service.models.activate_version`): the version becomes active at once and
the service's activation runner rescores every contact in the background,
recording its progress in the database (`_store.activation`). The editor's
progress bar polls `GET /models/activation/{id}`, which answers what
`GET /v1/activations/{id}` does, for the signed-in user's workspace.
"""

from __future__ import annotations

from fastapi import Request

from .._service.deps import Database, Models
from .._service.models import ActivationInfo, activate_version, activation_info
from .._store.activation import get_activation


def activate(
    request: Request, database: Database, models: Models, *, workspace: str, version: int
) -> ActivationInfo:
    """Make a stored version active; the activation that rescores for it."""
    return activate_version(request, database, models, workspace=workspace, version=version)


def progress(database: Database, *, workspace: str, activation_id: int) -> ActivationInfo | None:
    """How far an activation of the workspace is (None: it has no such one)."""
    with database.connect() as conn:
        found = get_activation(conn, workspace=workspace, activation_id=activation_id)
    return None if found is None else activation_info(found)
