"""Reading request bodies: JSON whatever the Content-Type, gzip, within the limit.

Ingestion reads its JSON itself rather than through FastAPI's body
parameters, for three reasons:

- analytics.js posts with `Content-Type: text/plain` (a "simple" request a
  browser sends without a CORS preflight), and curl's default is a form
  type: the body is JSON whatever the header says;
- server-side libraries may gzip their batches (`Content-Encoding: gzip`);
- a batch must reach the route with its bad events in it, each to be
  rejected on its own, not fail whole in a schema check.

The size limit (limits.BodyLimit) counts the bytes received; after gzip the
decompressed body is held to the same limit, so a small bomb cannot expand
past it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from .._jsonexact import loads as exact_loads
from .._settings import Settings
from .problems import Problem


class BodyFirst(APIRoute):
    """A route that reads its whole body before FastAPI looks at it.

    FastAPI turns any exception raised while it reads a body into a 400
    ("There was an error parsing the body"), including the signal with which
    BodyLimit stops a chunked body past the limit. Read first, outside
    FastAPI's handler, that signal reaches BodyLimit and the answer is a 413.
    The body is cached on the request, so FastAPI and the routes read it again
    for free.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_first(request: Request) -> Response:
            await request.body()
            return await handler(request)

        return read_first


async def raw_body(request: Request) -> bytes:
    """The body, decompressed when it is sent gzipped."""
    body = await request.body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "identity":
        return body
    # x-gzip is gzip's old name, which RFC 9110 (8.4.1.3) says to take as gzip.
    if encoding not in ("gzip", "x-gzip"):
        raise Problem(415, f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    settings: Settings = request.app.state.settings
    limit = settings.max_body_bytes
    # wbits 16+MAX_WBITS: a gzip stream, header and checksum checked.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        # At most limit + 1 bytes come out, however much the input would make.
        out = inflater.decompress(body, limit + 1)
        if len(out) <= limit:
            out += inflater.flush()
    except zlib.error as error:
        raise Problem(400, f"the body is not valid gzip: {error}") from None
    if len(out) > limit:
        raise Problem(
            413, f"the decompressed body is larger than {limit:,} bytes", kind="too-large"
        )
    if not inflater.eof or inflater.unused_data:
        raise Problem(400, "the body is not valid gzip: one whole gzip stream is expected")
    return out


async def json_body(request: Request) -> Any:
    """The body as JSON (any Content-Type); a 422 problem when it is not JSON."""
    body = await raw_body(request)
    try:
        # Integers past 64 bits stay exact (orjson alone made them floats).
        return exact_loads(body)
    except ValueError as error:  # json's JSONDecodeError, orjson's: both ValueErrors
        message = "empty" if not body.strip() else str(error)
        raise Problem(
            422,
            f"The request body is not JSON: {message}.",
            kind="invalid-request",
            errors=[{"path": "body", "message": f"not JSON: {message}"}],
        ) from None


async def text_body(request: Request) -> str:
    """The body as UTF-8 text; a 422 problem when it is not."""
    body = await raw_body(request)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Problem(
            422,
            f"The request body is not UTF-8 text: {error.reason} at byte {error.start}.",
            kind="invalid-request",
            errors=[{"path": "body", "message": "not UTF-8 text"}],
        ) from None
