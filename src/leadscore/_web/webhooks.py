"""Webhooks, for admins: the model's webhooks, their delivery log, the dead
letters and redelivery, and the workspace's signing secret.

In leadscore a webhook is an action of one of the model's triggers, so
"adding a webhook" adds a `webhook` action to a trigger of the active model:
a new model version, stored and activated through the same validated path as
the model editor (`store_model`, then the models API's `activate_version`).
The document is edited with ruamel.yaml's round-trip dumper, so the
marketer's comments and layout survive. The log and the secret are the
store's (`_store.outbox`), as the deliveries API serves them.
"""

from __future__ import annotations

import copy
import io
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq

from .._errors import ModelError
from .._model import Trigger, WebhookAction
from .._service.deps import Database, Models
from .._service.models import activate_version
from .._store import outbox
from .._store.database import now
from .._store.workspaces import ModelVersion, store_model
from .common import Admin, Page, Refused, active

router = APIRouter(include_in_schema=False)

SHOWN = 50  # deliveries in the log, and dead letters, newest first
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1)]


# Indentations tried, (mapping, sequence, dash offset), commonest first: the
# first under which the document dumps back to itself is the document's own.
_INDENTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0))


def _dumper(document: str) -> tuple[YAML, Any]:
    """A round-trip YAML and the loaded document, indented as the document is
    (when none of _INDENTS reproduces it, the first: still the same model,
    comments kept, some lines re-indented)."""
    first: tuple[YAML, Any] | None = None
    for mapping, sequence, offset in _INDENTS:
        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        yaml.width = 4096  # never fold a long line the marketer wrote on one
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        root = yaml.load(document)
        if _dump(yaml, root) == document:
            return yaml, root
        first = first or (yaml, root)
    assert first is not None
    return first


def _dump(yaml: YAML, root: Any) -> str:
    written = io.StringIO()
    yaml.dump(root, written)
    return written.getvalue()


class SharedActions(Exception):
    """The trigger's actions are another trigger's too, in a way no edit of
    this trigger alone can undo (the other merges this one in: `<<: *it`)."""


def with_webhook(document: str, *, trigger: str, url: str) -> str:
    """The model document with one more action on `trigger`: a webhook to
    `url`, signed with the workspace's secret (the rest as it was). Raises
    KeyError when the document has no such trigger, SharedActions when the
    webhook would reach another trigger too."""
    yaml, root = _dumper(document)
    triggers = root.get("triggers") if hasattr(root, "get") else None
    items = [item for item in triggers or [] if hasattr(item, "get")]
    for item in items:
        if item.get("id") == trigger:
            actions = item.get("actions")
            if actions is None:
                actions = item["actions"] = []
            elif _references(root).get(id(actions), 0) > 1:
                # Another trigger's list too (`actions: *shared`, or `<<: *other`
                # merged in): appending to it gave both triggers the webhook,
                # which then received firings no one chose to send it. This
                # trigger gets a list of its own, the same actions in it.
                actions = item["actions"] = CommentedSeq(copy.deepcopy(list(actions)))
            actions.append({"webhook": {"url": url}})
            edited = _dump(yaml, root)
            if _others(edited, trigger) != _others(document, trigger):
                raise SharedActions(trigger)
            return edited
    raise KeyError(trigger)


def _others(document: str, trigger: str) -> dict[Any, Any]:
    """The actions of every trigger but `trigger`, aliases and merge keys expanded."""
    root = YAML(typ="safe", pure=True).load(document)
    triggers = root.get("triggers") if isinstance(root, dict) else None
    return {
        item.get("id"): item.get("actions")
        for item in triggers or []
        if isinstance(item, dict) and item.get("id") != trigger
    }


def _references(node: Any, counts: dict[int, int] | None = None) -> dict[int, int]:
    """How many times each mapping and sequence of a loaded document is
    reached (an alias, or a merge key's values, reaches one again)."""
    counts = {} if counts is None else counts
    if isinstance(node, dict | list):
        counts[id(node)] = counts.get(id(node), 0) + 1
        if counts[id(node)] == 1:
            for child in node.values() if isinstance(node, dict) else node:
                _references(child, counts)
    return counts


def webhooks_of(model: ModelVersion) -> list[tuple[Trigger, list[str]]]:
    """Each trigger of the model and the URLs its webhook actions call."""
    return [
        (trigger, [act.webhook.url for act in trigger.actions if isinstance(act, WebhookAction)])
        for trigger in model.engine.model.triggers
    ]


def _page(
    session: Admin,
    request: Request,
    database: Database,
    models: Models,
    *,
    status: int = 200,
    **values: Any,
) -> Response:
    workspace = session.user.workspace
    model = active(database, models, workspace)
    with database.connect() as conn:
        secret = outbox.signing_secret(conn, workspace=workspace, now=now())
        log = outbox.deliveries(conn, workspace=workspace, limit=SHOWN)
        dead = outbox.deliveries(conn, workspace=workspace, status=outbox.DEAD, limit=SHOWN)
    return Page(request, session).render(
        "webhooks.html",
        status=status,
        model=model,
        triggers=[] if model is None else webhooks_of(model),
        secret=secret,
        log=log,
        dead=dead,
        **values,
    )


@router.get("/settings/webhooks")
def webhooks(session: Admin, request: Request, database: Database, models: Models) -> Response:
    return _page(session, request, database, models)


@router.post("/settings/webhooks")
def add_webhook(
    session: Admin,
    request: Request,
    *,
    database: Database,
    models: Models,
    trigger: Annotated[str, Form()],
    url: Annotated[str, Form()],
) -> Response:
    """Add a webhook to a trigger: a new model version, activated."""
    workspace = session.user.workspace
    model = active(database, models, workspace)
    if model is None:
        raise Refused(409, "No model yet", "Webhooks are actions of the model's triggers.")
    try:
        document = with_webhook(model.document, trigger=trigger, url=url.strip())
    except KeyError:
        raise Refused(
            404, "No such trigger", f"The active model has no trigger {trigger!r}."
        ) from None
    except SharedActions:
        raise Refused(
            409,
            "Actions shared with another trigger",
            f"Another trigger takes its actions from {trigger!r} (a YAML merge key), so "
            "a webhook added here would be called for its firings too. Add it in the "
            "model editor.",
        ) from None
    try:
        with database.connect() as conn:
            stored = store_model(conn, workspace=workspace, document=document)
    except ModelError as error:
        problems = [f"{issue.path}: {issue.message}" for issue in error.issues]
        # The trigger and URL as picked and typed: with the trigger back at
        # the first, sending the corrected form again added it elsewhere.
        return _page(
            session,
            request,
            database,
            models,
            status=422,
            problems=problems,
            url=url,
            picked=trigger,
        )
    started = activate_version(
        request, database, models, workspace=workspace, version=stored.version
    )
    return _page(session, request, database, models, added=(trigger, url), activation=started)


@router.post("/settings/webhooks/secret")
def rotate_secret(session: Admin, database: Database) -> Response:
    with database.connect() as conn:
        outbox.signing_secret(conn, workspace=session.user.workspace, now=now(), rotate=True)
    return RedirectResponse("/settings/webhooks#secret-h", status_code=303)


def _no_delivery(delivery_id: int) -> Refused:
    return Refused(404, "No such delivery", f"This workspace has no delivery {delivery_id}.")


def _delivery(database: Database, workspace: str, delivery_id: int) -> outbox.Delivery:
    with database.connect() as conn:
        found = outbox.delivery(conn, workspace=workspace, seq=delivery_id)
    if found is None:
        raise _no_delivery(delivery_id)
    return found


@router.get("/settings/webhooks/deliveries/{delivery_id}")
def delivery(
    session: Admin, request: Request, delivery_id: DeliveryId, database: Database
) -> Response:
    found = _delivery(database, session.user.workspace, delivery_id)
    return Page(request, session).render("delivery.html", delivery=found)


@router.post("/settings/webhooks/deliveries/{delivery_id}/redeliver")
def redeliver(
    session: Admin, delivery_id: DeliveryId, database: Database, models: Models
) -> Response:
    """Queue a delivery again (the deliveries API's redeliver): to the webhook
    its trigger has in the active model now, when it still has it."""
    workspace = session.user.workspace
    model = active(database, models, workspace)
    with database.connect() as conn:
        if not outbox.redeliver(
            conn,
            workspace=workspace,
            seq=delivery_id,
            now=now(),
            model=None if model is None else model.engine.model,
        ):
            raise _no_delivery(delivery_id)
    return RedirectResponse(f"/settings/webhooks/deliveries/{delivery_id}", status_code=303)
