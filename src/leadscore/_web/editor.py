"""The model editor: the active model's YAML, validated as it is typed, a diff
against the active version, a backtest preview, then activation.

The JSON endpoints here are the page's own (session and CSRF, not API keys),
so they are not in the OpenAPI document.
"""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from .._engine import Engine
from .._errors import ModelError
from .._loader import parse_model
from .._service.deps import Database, Models
from .._service.models import ActivationId, ActivationInfo
from .._store import log
from .._store.database import now
from .._store.ranking import ranked, with_bands
from .._store.reports import contacts_with, event_types
from .._store.workspaces import ModelVersion, store_model
from .activation import activate, progress
from .analysis import band_rows, histogram
from .common import Marketer, Page, Refused, active
from .outcomes import default_outcome

if TYPE_CHECKING:
    from .._predict._backtest import Comparison

router = APIRouter(include_in_schema=False)

# The document a workspace without a model starts from.
_FIRST_MODEL = """version: 1
name: my-model
rules:
  - id: demo
    description: Asked for a demo
    event: demo_request
    points: 30
bands:
  - {band: hot, min_score: 30}
  - {band: cold}
"""


class Draft(BaseModel):
    document: str = Field(max_length=200_000)


class PreviewRequest(Draft):
    outcome: str | None = None


class Issue(BaseModel):
    line: int | None
    path: str
    message: str


class DiffLine(BaseModel):
    kind: Literal["same", "added", "removed", "hunk"]
    text: str


class Checked(BaseModel):
    valid: bool
    issues: list[Issue]
    diff: list[DiffLine]
    changed: bool


@router.get("/models")
def editor(session: Marketer, request: Request, database: Database, models: Models) -> Response:
    workspace = session.user.workspace
    model = active(database, models, workspace)
    with database.connect() as conn:
        types = event_types(conn, workspace=workspace)
    return Page(request, session).render(
        "editor.html",
        model=model,
        document=model.document if model is not None else _FIRST_MODEL,
        types=types,
        outcome=default_outcome(types),
    )


def _diff(before: str, after: str) -> list[DiffLine]:
    out: list[DiffLine] = []
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "active", "draft", n=2, lineterm=""
    )
    for line in list(lines)[2:]:  # the two file headers say nothing here
        kind: Literal["same", "added", "removed", "hunk"] = (
            "hunk"
            if line.startswith("@@")
            else "added"
            if line.startswith("+")
            else "removed"
            if line.startswith("-")
            else "same"
        )
        out.append(DiffLine(kind=kind, text=line))
    return out


@router.post("/models/validate")
def validate(
    session: Marketer, draft: Annotated[Draft, Body()], database: Database, models: Models
) -> Checked:
    """The loader's issues with their lines, and the diff against the active model."""
    issues: list[Issue] = []
    try:
        parse_model(draft.document, upload=True)  # as saving it checks it
    except ModelError as error:
        issues = [Issue(line=i.line, path=i.path, message=i.message) for i in error.issues]
    model = active(database, models, session.user.workspace)
    before = model.document if model is not None else ""
    diff = _diff(before, draft.document)
    return Checked(valid=not issues, issues=issues, diff=diff, changed=bool(diff))


def _engine(document: str) -> Engine:
    """The draft compiled, or a 422. Checked as coming in (parse_model's
    `upload`) for a preview too: a draft that saving refuses has no preview."""
    try:
        return Engine(parse_model(document, upload=True))
    except ModelError as error:
        raise Refused(422, "The model is not valid", str(error)) from None


@router.post("/models/preview")
def preview(
    session: Marketer,
    request: Request,
    wanted: Annotated[PreviewRequest, Body()],
    database: Database,
    models: Models,
) -> HTMLResponse:
    """The backtest preview, as an HTML fragment the editor shows."""
    workspace = session.user.workspace
    candidate = _engine(wanted.document)
    outcome = wanted.outcome or None
    result, events = _compare_draft(
        database,
        workspace=workspace,
        model=active(database, models, workspace),
        candidate=candidate,
        outcome=outcome,
        at=now(),
    )
    return Page(request, session).render(
        "_preview.html",
        result=result,
        outcome=outcome,
        events=events,
        bands=band_rows(result, [name for name, _ in candidate.compiled.bands]),
        histograms=zip(
            histogram(card.score for card in result.before),
            histogram(card.score for card in result.after),
            strict=True,
        ),
    )


def _compare_draft(
    database: sa.Engine,
    *,
    workspace: str,
    model: ModelVersion | None,
    candidate: Engine,
    outcome: str | None,
    at: int,
) -> tuple[Comparison, int]:
    """The draft against the active model over the workspace's stored log as
    of `at`, and how many events the log has."""
    # Here, not at the top: numpy and the batch engine load on the first preview.
    from .._predict._backtest import compare

    with tempfile.TemporaryDirectory(prefix="leadscore-preview-") as folder:
        # The stored texts are event JSON already: the batch engine reads
        # them as a JSON Lines file, with no Python per event.
        path = Path(folder) / "events.jsonl"
        with database.connect() as conn, conn.begin(), path.open("w", encoding="utf-8") as file:
            events = 0
            for body in log.bodies(conn, workspace):
                file.write(body + "\n")
                events += 1
            # The active model's scorecards as of `at` are the stored ones
            # (what activation stored, kept as events arrived): read, not rescored.
            current = (
                None
                if model is None
                else with_bands(model, ranked(conn, workspace=workspace, model=model, at=at))
            )
            # No event type holds U+0000 (and PostgreSQL refuses it: a 500):
            # none converted.
            won = (
                set()
                if outcome is None or "\x00" in outcome
                else contacts_with(conn, workspace=workspace, event_type=outcome)
            )
        result = compare(current, candidate, str(path) if events else [], at=at, converted=won)
    return result, events


@router.post("/models/activate")
def activate_draft(
    session: Marketer,
    request: Request,
    draft: Annotated[Draft, Body()],
    database: Database,
    models: Models,
) -> dict[str, Any]:
    workspace = session.user.workspace
    _engine(draft.document)
    with database.connect() as conn:
        stored = store_model(conn, workspace=workspace, document=draft.document)
    started = activate(request, database, models, workspace=workspace, version=stored.version)
    return {
        "version": stored.version,
        "activation": started.model_dump(),
        "progress": f"/models/activation/{started.id}",
    }


@router.get("/models/activation/{activation_id}")
def activation(
    session: Marketer, activation_id: ActivationId, database: Database
) -> ActivationInfo:
    found = progress(database, workspace=session.user.workspace, activation_id=activation_id)
    if found is None:
        raise Refused(
            404, "No such activation", f"No activation {activation_id} in this workspace."
        )
    return found
