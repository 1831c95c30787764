"""Webhooks: the body a firing sends, its signature, one attempt, and the backoff.

A webhook is a POST of a JSON body (`payload`) with these headers:

- `Idempotency-Key`: the delivery's id. The same on every attempt and on a
  redelivery: a receiver that remembers the keys it has processed acts on
  each firing exactly once, however often it is delivered.
- `Leadscore-Timestamp`: when this attempt was signed, in Unix seconds.
- `Leadscore-Signature`: `v1=` and the hex HMAC-SHA256, keyed with the
  secret, of the timestamp, a full stop and the exact body bytes. The
  timestamp is signed so that a captured request cannot be replayed later:
  a receiver refuses timestamps too far from its clock (docs/api.md).
- `Leadscore-Attempt`: 1 for the first attempt, and so on.

The secret is the action's `secret` when the model gives one, else the
workspace's signing secret (`GET /v1/webhooks/secret`).
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass

import httpx
import orjson

from .. import __version__
from .._store.outbox import Claimed
from .._time import format_timestamp

IDEMPOTENCY_HEADER = "Idempotency-Key"
TIMESTAMP_HEADER = "Leadscore-Timestamp"
SIGNATURE_HEADER = "Leadscore-Signature"
ATTEMPT_HEADER = "Leadscore-Attempt"
EVENT_TYPE = "trigger.fired"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for a body sent at `timestamp` (Unix seconds)."""
    signed = str(timestamp).encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def payload(
    claimed: Claimed,
    *,
    scorecard: dict[str, object] | None,
    tags: list[str],
    owner: str | None,
    prepared_at: int,
) -> bytes:
    """The body of a firing's webhook: the firing, the contact's scorecard as
    of the firing (spec 3), and its tags and owner when the body was made."""
    firing = claimed.firing
    body = {
        "type": EVENT_TYPE,
        "delivery_id": str(claimed.seq),
        "workspace": claimed.workspace,
        "firing": {
            "trigger": firing.trigger,
            "contact_id": firing.contact_id,
            "event_id": firing.event_id,
            "timestamp": format_timestamp(firing.timestamp),
            "recorded_at": format_timestamp(firing.recorded_at),
            "model_version": firing.model_version,
        },
        "scorecard": scorecard,
        "contact": {"tags": tags, "owner": owner},
        "prepared_at": format_timestamp(prepared_at),
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def headers(
    *, delivery: int, attempt: int, secret: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"leadscore/{__version__}",
        IDEMPOTENCY_HEADER: str(delivery),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        ATTEMPT_HEADER: str(attempt),
    }


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int | None  # None when no answer came
    error: str | None  # None when it succeeded (a 2xx)


def send(client: httpx.Client, url: str, body: bytes, sent_headers: dict[str, str]) -> Answer:
    """One attempt: POST the body. A 2xx succeeds; anything else, a timeout or
    a connection that fails, is a failed attempt (redirects are not followed:
    a signed body is not sent on to another address)."""
    try:
        response = client.post(url, content=body, headers=sent_headers)
    except httpx.TimeoutException as error:
        return Answer(None, f"timed out: {type(error).__name__}")
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return Answer(None, f"{type(error).__name__}: {error}"[:500])
    if 200 <= response.status_code < 300:
        return Answer(response.status_code, None)
    return Answer(response.status_code, f"answered {response.status_code}")


def backoff(attempts: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: exponential
    backoff with full jitter, uniform in [0, min(cap, base * 2^(attempts-1))].
    The jitter spreads the retries of many deliveries that failed together (a
    receiver's outage) instead of sending them back all at once."""
    ceiling = min(cap, base * 2.0 ** min(attempts - 1, 62))
    return rng.uniform(0.0, ceiling)
