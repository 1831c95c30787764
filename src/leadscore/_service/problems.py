"""One shape for every error: RFC 9457 problem details.

Every error the service returns, whatever raised it (a route, validation,
routing itself, a body that is too large), is `application/problem+json`
with `type`, `title`, `status` and `detail`; validation errors add `errors`,
the list of field paths at fault and what was expected there. A test sends
bad requests to every route and checks this shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

MEDIA_TYPE = "application/problem+json"
_TYPES = "https://leadscore.dev/problems/"


class Problem(Exception):
    """Raise to answer with a problem; `errors` lists field paths at fault."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _slug(HTTPStatus(status).phrase)
        self.errors = errors


def _slug(phrase: str) -> str:
    return phrase.lower().replace(" ", "-")


def problem_response(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": _TYPES + (kind or _slug(HTTPStatus(status).phrase)),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
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
        return problem_response(exc.status, exc.detail, kind=exc.kind, errors=exc.errors)

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
