"""One shape for every error: RFC 9457 problem details.

Every error the service returns, whatever raised it (a route, validation,
routing itself, a body that is too large), is `application/problem+json`
with `type`, `title`, `status` and `detail`; validation errors add `errors`,
the list of field paths at fault and what was expected there. A test sends
bad requests to every route and checks this shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

MEDIA_TYPE = "application/problem+json"

# On an answer to a request that raised: Starlette raises the exception again
# once the answer is sent (so the server logs it), and uvicorn then closes
# the connection. Said in the answer, a client does not send its next request
# on that connection, to meet a reset instead of an answer.
CLOSE = {"Connection": "close"}
_TYPES = "https://leadscore.dev/problems/"


class Problem(Exception):
    """Raise to answer with a problem; `errors` lists field paths at fault."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: Sequence[Mapping[str, object]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _slug(HTTPStatus(status).phrase)
        self.errors = errors
        self.headers = headers


def _slug(phrase: str) -> str:
    return phrase.lower().replace(" ", "-")


def problem_response(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: Sequence[Mapping[str, object]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": _TYPES + (kind or _slug(HTTPStatus(status).phrase)),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [dict(error) for error in errors]
    return JSONResponse(
        body, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {})
    )


def _path(location: tuple[Any, ...]) -> str:
    # FastAPI locations start with where the value came from ("body",
    # "query"...); the rest is the path inside it, written as the loader
    # writes model paths: a.b[2].c
    out = ""
    for part in location[1:]:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or str(location[0])


def install(app: FastAPI) -> None:
    """Route every error through the problem shape."""

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.detail, kind=exc.kind, errors=exc.errors, headers=exc.headers
        )

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(exc.status_code, detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"path": _path(tuple(error["loc"])), "message": error["msg"]} for error in exc.errors()
        ]
        return problem_response(
            422, "The request is not valid; see `errors`.", kind="invalid-request", errors=errors
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug or an outage (the database gone): a problem like any other,
        # saying nothing of the cause; Starlette still logs the traceback.
        return problem_response(
            500, "The server failed to answer; it has been logged.", headers=CLOSE
        )


class ProblemDetails(BaseModel):
    """An error (RFC 9457), for the OpenAPI document: every error is one of these."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str = Field(description="The HTTP status phrase.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, for people.")
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        description="Where applicable, each thing at fault: `path` (a field path such as "
        "`batch[2].event` or `rules[0].points`) and `message`; model errors add `line`.",
    )


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route for the problems it can answer with (their
    content, a problem, is filled in by `document`)."""
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}


def document(app: FastAPI) -> None:
    """Make the OpenAPI document say what `install` does: every error response
    of every route is `application/problem+json`, a ProblemDetails (FastAPI
    would describe its own validation errors in a shape this service never
    sends)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["ProblemDetails"] = ProblemDetails.model_json_schema()
        problem = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    if status[0] in "45":
                        response["content"] = problem
                        if status == "422":
                            response["description"] = "The request is not valid"
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
