"""Structured logs: JSON lines on standard error, one per request.

A request's line has its `request_id` (the client's `X-Request-ID` when it
sent a usable one, else a new one; echoed in the answer's `X-Request-ID`),
`method`, `route` (the route's template, such as
`/v1/contacts/{contact_id}`: ids stay out of the logs), `status`,
`duration_ms` and, when a key was presented, its public `key_id`. Keys,
bodies, query strings and headers are never logged: a request's only
secrets are there. Errors add the exception and its traceback.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics

_log = logging.getLogger("leadscore.access")

# What a client may name its request: short, plain; anything else is replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# A path parameter's convertor in a route's template, left out of its name.
_CONVERTOR = re.compile(r":[A-Za-z_]+}")

# The attributes of a LogRecord that every record has: the rest are the
# `extra` fields of a line.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line)


# One encoder for every line (json.dumps with options builds one per call).
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


JsonFormatter.converter = time.gmtime  # the times are UTC, hence the Z


def configure() -> None:
    """Send leadscore's and uvicorn's logs to standard error as JSON lines
    (what `leadscore serve` does; an app alone leaves logging to its host)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("leadscore", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _key_id(headers: dict[bytes, bytes]) -> str | None:
    # Only the public part of a key (lsk_<id>_...), for telling callers apart.
    found = re.search(rb"lsk_([0-9a-f]{16})_", headers.get(b"authorization", b""))
    return found.group(1).decode() if found else None


class AccessLog:
    """ASGI middleware: a request id, the access log line and request metrics."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled children by (route, method, status): looking one up
        # through `labels` (keyword checks, a lock) cost more than counting.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            duration = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            route = _CONVERTOR.sub("}", route)  # {contact_id:contact} as {contact_id}
            method = scope["method"]
            children = self._children.get((route, method, status))
            if children is None:
                # As many as the registry keeps children for anyway.
                children = self._children[(route, method, status)] = (
                    self.metrics.requests.labels(route=route, method=method, status=status),
                    self.metrics.latency.labels(route=route),
                )
            children[0].inc()
            children[1].observe(duration)
            _log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                    "key_id": _key_id(headers),
                },
            )
