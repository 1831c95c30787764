"""The workspace's scoring model over HTTP: upload and validate, list the
versions, read one, activate one (a background rescore with its progress).

An admin key uploads and activates; a read key reads (what the scores mean,
and how far an activation has come).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from .._errors import ModelError
from .._store.activation import Activation, get_activation
from .._store.errors import UnknownModelVersion
from .._store.workspaces import (
    ModelVersion,
    StoredModel,
    activate_model,
    list_models,
    load_model,
    store_model,
)
from .._time import format_timestamp
from . import problems
from .bodies import BodyFirst
from .deps import AdminKey, Database, Models, ReadKey, TextBody
from .problems import Problem

router = APIRouter(tags=["models"], route_class=BodyFirst)

# Numbers the database can hold (INTEGER, BIGINT): anything past them names
# nothing, and is a 422 rather than an overflow in the database.
Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="The model version.")]
ActivationId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The activation's id.")]


class ActivationInfo(BaseModel):
    """Making a model version active, and the rescore of every contact it starts."""

    id: int = Field(description="Names it in `GET /v1/activations/{activation_id}`.")
    version: int = Field(description="The model version activated.")
    status: str = Field(
        description="`running`: contacts are being rescored in the background. `done`. "
        "`superseded`: another version was activated before it finished. `failed`: see `error`."
    )
    total: int = Field(description="Contacts and anonymous profiles to rescore, when it began.")
    rescored: int = Field(description="How many are rescored so far.")
    created_at: str = Field(description="RFC 3339.")
    finished_at: str | None = Field(description="RFC 3339; null while running.")
    error: str | None = Field(description="Why it failed; null unless `failed`.")


class ModelSummary(BaseModel):
    """The active model after an upload, and the activation it started."""

    version: int = Field(description="Numbered from 1 within the workspace.")
    name: str = Field(description="The model's `name`.")
    activation: ActivationInfo | None = Field(
        default=None, description="The rescore of the workspace this upload started."
    )


class ActiveModel(BaseModel):
    """The active model, as uploaded."""

    version: int = Field(description="Numbered from 1 within the workspace.")
    name: str = Field(description="The model's `name`.")
    document: str = Field(description="The model document as uploaded (YAML or JSON text).")


class ModelInfo(BaseModel):
    """A stored version of the workspace's model."""

    version: int = Field(description="Numbered from 1 within the workspace.")
    name: str = Field(description="The model's `name`.")
    active: bool = Field(description="Whether events are scored with it now.")
    created_at: str = Field(description="RFC 3339.")


class ModelList(BaseModel):
    models: list[ModelInfo] = Field(description="Every version, oldest first.")


class ModelDocument(ModelInfo):
    document: str = Field(description="The model document as uploaded (YAML or JSON text).")


_MODEL_BODY = {
    "description": "A model document: YAML 1.2 or JSON text (see docs/model.md).",
    "required": True,
    "content": {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object"}},
    },
}


def activation_info(found: Activation) -> ActivationInfo:
    return ActivationInfo(
        id=found.id,
        version=found.version,
        status=found.status,
        total=found.total,
        rescored=found.rescored,
        created_at=format_timestamp(found.created_at),
        finished_at=None if found.finished_at is None else format_timestamp(found.finished_at),
        error=found.error,
    )


def _store(database: Database, workspace: str, document: str, *, activate: bool) -> ModelVersion:
    with database.connect() as conn:
        try:
            return store_model(conn, workspace=workspace, document=document, activate=activate)
        except ModelError as error:
            count = len(error.issues)
            raise Problem(
                422,
                f"The model is not valid: {count} problem{'s' if count != 1 else ''}; "
                "see `errors`.",
                kind="invalid-model",
                errors=[_issue(issue.path, issue.message, issue.line) for issue in error.issues],
            ) from None


def _issue(path: str, message: str, line: int | None) -> dict[str, Any]:
    found: dict[str, Any] = {"path": path, "message": message}
    if line is not None:
        found["line"] = line
    return found


def _started(
    request: Request, database: Database, workspace: str, model: ModelVersion
) -> ActivationInfo:
    """The activation this call has just recorded; the runner is told at once.

    Its own, by id: the workspace's latest may already be another call's,
    activating another version in the meantime.
    """
    request.app.state.activations.wake()
    assert model.activation is not None  # only a model just activated comes here
    with database.connect() as conn:
        found = get_activation(conn, workspace=workspace, activation_id=model.activation)
    assert found is not None  # activations are never deleted
    return activation_info(found)


@router.put(
    "/v1/models/active",
    response_model=ModelSummary,
    summary="Upload and activate a model",
    responses=problems.responses(401, 403, 413, 415, 422),
    openapi_extra={"requestBody": _MODEL_BODY},
)
def put_active_model(
    request: Request, caller: AdminKey, document: TextBody, database: Database, models: Models
) -> ModelSummary:
    """Store a model document as the workspace's next version and make it the
    active model (an admin key): `POST /v1/models` and `.../activate` in
    one. An invalid model is a 422 problem listing every issue with its path
    and line; nothing is stored then."""
    stored = _store(database, caller.workspace, document, activate=True)
    models.keep(caller.workspace, stored)
    return ModelSummary(
        version=stored.version,
        name=stored.engine.model.name,
        activation=_started(request, database, caller.workspace, stored),
    )


@router.get(
    "/v1/models/active",
    response_model=ActiveModel,
    summary="The active model",
    responses=problems.responses(401, 403, 404),
)
def get_active_model(caller: ReadKey, database: Database, models: Models) -> ActiveModel:
    """The workspace's active model (a read or admin key); 404 when it has none yet."""
    with database.connect() as conn:
        model = models.active(conn, workspace=caller.workspace)
    if model is None:
        raise Problem(404, "This workspace has no active model yet.", kind="no-active-model")
    return ActiveModel(version=model.version, name=model.engine.model.name, document=model.document)


@router.get(
    "/v1/models",
    response_model=ModelList,
    summary="List model versions",
    responses=problems.responses(401, 403),
)
def get_models(caller: ReadKey, database: Database) -> ModelList:
    """Every stored version of the workspace's model, oldest first (a read key)."""
    with database.connect() as conn:
        found = list_models(conn, workspace=caller.workspace)
    return ModelList(models=[info for m in found if (info := _info([m], m.version))])


@router.post(
    "/v1/models",
    response_model=ModelInfo,
    status_code=201,
    summary="Upload a model version",
    responses=problems.responses(401, 403, 413, 415, 422),
    openapi_extra={"requestBody": _MODEL_BODY},
)
def post_model(caller: AdminKey, document: TextBody, database: Database) -> ModelInfo:
    """Validate a model document and store it as the workspace's next version,
    without activating it (an admin key). An invalid model is a 422 problem
    listing every issue with its path and line; nothing is stored then."""
    stored = _store(database, caller.workspace, document, activate=False)
    with database.connect() as conn:
        info = _info(list_models(conn, workspace=caller.workspace), stored.version)
    assert info is not None
    return info


def _info(stored: list[StoredModel], version: int) -> ModelInfo | None:
    for model in stored:
        if model.version == version:
            return ModelInfo(
                version=model.version,
                name=model.name,
                active=model.active,
                created_at=format_timestamp(model.created_at),
            )
    return None


def _unknown(version: int) -> Problem:
    return Problem(404, f"This workspace has no model version {version}.", kind="unknown-model")


@router.get(
    "/v1/models/{version}",
    response_model=ModelDocument,
    summary="A model version",
    responses=problems.responses(401, 403, 404, 422),
)
def get_model(caller: ReadKey, version: Version, database: Database) -> ModelDocument:
    """One stored version of the workspace's model, with its document (a read key)."""
    with database.connect() as conn:
        info = _info(list_models(conn, workspace=caller.workspace), version)
        if info is None:
            raise _unknown(version)
        model = load_model(conn, workspace=caller.workspace, version=version)
    return ModelDocument(**info.model_dump(), document=model.document)


@router.post(
    "/v1/models/{version}/activate",
    response_model=ActivationInfo,
    status_code=202,
    summary="Activate a model version",
    responses=problems.responses(401, 403, 404, 422),
)
def post_activate(
    request: Request, caller: AdminKey, version: Version, database: Database, models: Models
) -> ActivationInfo:
    """Make a stored version the active model (an admin key). Events are scored
    with it from now on, and every contact is rescored with it in the
    background: follow `GET /v1/activations/{id}`. Firings that the contacts'
    history gives under this version are recorded as carried out: no action
    runs for the past. Reads answer with the new version at once (a contact
    not rescored yet is computed from its events)."""
    try:
        return activate_version(
            request, database, models, workspace=caller.workspace, version=version
        )
    except UnknownModelVersion:
        raise _unknown(version) from None


def activate_version(
    request: Request, database: Database, models: Models, *, workspace: str, version: int
) -> ActivationInfo:
    """Make a stored version the active model and start its background
    rescore, which the runner is told of at once: the one path of
    `POST /v1/models/{version}/activate` and of the web app's editor.
    Raises UnknownModelVersion."""
    with database.connect() as conn:
        model = activate_model(conn, workspace=workspace, version=version)
    models.keep(workspace, model)
    return _started(request, database, workspace, model)


@router.get(
    "/v1/activations/{activation_id}",
    response_model=ActivationInfo,
    summary="An activation's progress",
    responses=problems.responses(401, 403, 404, 422),
)
def get_activation_route(
    caller: ReadKey, activation_id: ActivationId, database: Database
) -> ActivationInfo:
    """How far the rescore started by activating a model has come (a read key)."""
    with database.connect() as conn:
        found = get_activation(conn, workspace=caller.workspace, activation_id=activation_id)
    if found is None:
        raise Problem(
            404, f"This workspace has no activation {activation_id}.", kind="unknown-activation"
        )
    return activation_info(found)
