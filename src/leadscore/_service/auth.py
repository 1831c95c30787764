"""Who is calling: the API key of a request, its workspace and scope.

A key is sent as `Authorization: Bearer KEY`, or with HTTP Basic with the
key as user name and any password (empty, as Segment's and RudderStack's
libraries send their write key; a client that can only fill in the password
may leave the user name empty). Segment's routes also take the body's
`writeKey` (what analytics.js sends) when there is no Authorization header.

401 when no valid key is given (missing, malformed, unknown, revoked); 403
when the key is valid but its scope does not allow the route. Every route
works in the key's workspace and nowhere else: no route takes a workspace
name, so there is nothing to get wrong.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from .._store.database import reading
from .._store.keys import Caller, Scope, authenticate
from .problems import Problem

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key: `Authorization: Bearer lsk_...`.",
)
_basic = HTTPBasic(
    auto_error=False,
    scheme_name="basicKey",
    description="An API key as the Basic user name, password empty "
    "(how Segment's and RudderStack's libraries send their write key).",
)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="leadscore", Basic realm="leadscore"'}

# What a scope is needed for, to say in a 403.
_NEEDED_FOR = {
    Scope.WRITE: "send events",
    Scope.READ: "read",
    Scope.ADMIN: "manage models and keys, export or erase contacts",
}


# The Authorization header as the two schemes read it (and the OpenAPI
# document shows them).
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
Basic = Annotated[HTTPBasicCredentials | None, Depends(_basic)]


# The OpenAPI `security` of a route that reads its key with `header_key`
# rather than through the two dependencies (the schemes themselves are in the
# document's components, from the routes that do).
SECURITY: dict[str, Any] = {"security": [{_bearer.scheme_name: []}, {_basic.scheme_name: []}]}


async def header_key(request: Request) -> str | None:
    """The key in the Authorization header, read by the two schemes as the
    dependencies would read it (a malformed Basic header is their 401), for
    a route that takes no dependencies."""
    return key_in(await _bearer(request), await _basic(request))


async def presented_key(bearer: Bearer, basic: Basic) -> str | None:
    """The key in the Authorization header, if there is one (`async`: no
    I/O, so no hand-off to the thread pool)."""
    return key_in(bearer, basic)


def key_in(
    bearer: HTTPAuthorizationCredentials | None, basic: HTTPBasicCredentials | None
) -> str | None:
    """The key of a Bearer or Basic Authorization header, if there is one."""
    if bearer is not None:
        return bearer.credentials.strip() or None
    if basic is not None:
        return basic.username or basic.password or None
    return None


def authorize(database: sa.Engine | sa.Connection, key: str | None, needed: Scope) -> Caller:
    """The caller of a key allowed to do what needs `needed`; else a 401 or 403 problem."""
    if key is None:
        raise Problem(
            401,
            "An API key is required: `Authorization: Bearer KEY`, or HTTP Basic with the "
            "key as user name.",
            kind="unauthorized",
            headers=_CHALLENGE,
        )
    with reading(database) as conn:
        caller = authenticate(conn, key=key)
    if caller is None:
        raise Problem(
            401,
            "The API key is not valid: unknown, revoked or mistyped.",
            kind="unauthorized",
            headers=_CHALLENGE,
        )
    if not caller.scope.allows(needed):
        raise Problem(
            403,
            f"A {caller.scope} key cannot {_NEEDED_FOR[needed]}: this needs "
            + ("an admin key." if needed is Scope.ADMIN else f"a {needed} key or an admin key."),
            kind="forbidden",
        )
    return caller
