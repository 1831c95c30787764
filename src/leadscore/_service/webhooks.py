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
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
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


# At most this much of an answer's body is read (and dropped): enough for
# the short bodies receivers send, so that their connection can be reused;
# past it the connection is closed unread.
_BODY_READ = 64 * 1024


def send(
    client: httpx.Client, url: str, body: bytes, sent_headers: dict[str, str], *, timeout: float
) -> Answer:
    """One attempt: POST the body. A 2xx succeeds; anything else, a timeout or
    a connection that fails, is a failed attempt (redirects are not followed:
    a signed body is not sent on to another address).

    `timeout` bounds the whole call, from connecting to the answer's status
    and headers, for a `client` made by `client()`: a receiver that trickles
    its answer a byte at a time must not hold the worker past its lease. The
    answer's body decides nothing: at most _BODY_READ bytes of it are read,
    within what is left of the timeout, so a huge or endless one costs
    neither memory nor time."""
    _DEADLINE.at = time.monotonic() + timeout
    try:
        with client.stream("POST", url, content=body, headers=sent_headers) as response:
            status = response.status_code
            try:
                read = 0
                for chunk in response.iter_raw():
                    read += len(chunk)
                    if read > _BODY_READ:
                        break
            except httpx.HTTPError:
                pass  # the status has come: the body's fate changes nothing
    except httpx.TimeoutException as error:
        return Answer(None, f"timed out: {type(error).__name__}")
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return Answer(None, f"{type(error).__name__}: {error}"[:500])
    except UnicodeError as error:  # a host name IDNA cannot encode (a..b), raised by the socket
        return Answer(None, f"not a usable host name: {error}"[:500])
    finally:
        _DEADLINE.at = None
    if 200 <= status < 300:
        return Answer(status, None)
    return Answer(status, f"answered {status}")


# -- the whole call within its timeout ------------------------------------------------
#
# httpx's timeouts bound each connect, write and read, not a call: an answer
# that comes a byte at a time, each within the timeout, would hold the call
# for ever. So the client's connections go through streams that give each
# socket operation only what is left of the calling thread's deadline (set
# by `send`; each call runs in a thread of its own).


class _Deadline(threading.local):
    at: float | None = None


_DEADLINE = _Deadline()


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """The timeout of one socket operation: the smaller of its own and what
    is left of the call's deadline; `expired` raised when nothing is left."""
    if _DEADLINE.at is None:
        return timeout
    left = _DEADLINE.at - time.monotonic()
    if left <= 0:
        raise expired("the webhook call took longer than its timeout")
    return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _addresses(host: str, port: int, timeout: float | None) -> list[str]:
    """The addresses of `host`, looked up within `timeout`.

    The system's resolver (getaddrinfo) takes no timeout, and a lookup that
    hangs (a DNS server that never answers) held a webhook call, and its
    worker's round, for as long as the resolver's own retries took, past the
    call's timeout and its lease. So the lookup runs in a thread of its own
    and is waited for only until the deadline; one that hangs ends there as
    a timed-out attempt (its thread ends whenever the resolver gives up).
    """
    found: list[list[str] | BaseException] = []
    done = threading.Event()

    def look_up() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.append(list(dict.fromkeys(str(info[4][0]) for info in infos)))
        except BaseException as error:  # handed to the caller, whatever it is
            found.append(error)
        finally:
            done.set()

    threading.Thread(target=look_up, name="leadscore-webhook-lookup", daemon=True).start()
    if not done.wait(timeout):
        raise httpcore.ConnectTimeout(f"the lookup of {host} took longer than the timeout")
    (result,) = found
    if isinstance(result, OSError):  # as the socket's own lookup would have failed
        raise httpcore.ConnectError(str(result)) from result
    if isinstance(result, BaseException):  # a name IDNA cannot encode: send() says so
        raise result
    return result


class _BoundedBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        # The name is looked up here, within the deadline, and each address
        # tried in turn as socket.create_connection does; TLS still checks
        # the certificate against the host name (httpcore passes it to
        # start_tls, not the address).
        addresses = _addresses(host, port, _left(timeout, httpcore.ConnectTimeout))
        failed: Exception | None = None
        for address in addresses:
            try:
                return _BoundedStream(
                    self._inner.connect_tcp(
                        address,
                        port,
                        _left(timeout, httpcore.ConnectTimeout),
                        local_address,
                        socket_options,
                    )
                )
            except httpcore.ConnectTimeout:
                raise  # the deadline has passed: no time for the next address
            except httpcore.ConnectError as error:
                failed = error
        assert failed is not None  # getaddrinfo gives an address or raises
        raise failed

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def client(*, timeout: float, connections: int) -> httpx.Client:
    """The HTTP client of a worker's webhook calls, whose connections keep to
    the deadline `send` sets (redirects not followed; proxies from the
    environment, HTTPS_PROXY and the like, used as httpx uses them)."""
    made = httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=connections),
    )
    # httpx takes no network backend of its own, and a transport given to it
    # would turn off the environment's proxies: the pool of each transport it
    # made (the direct one, each proxy's) gets ours instead. It is read at
    # each new connection. Checked, so that another httpx fails loudly here
    # rather than calling without the deadline.
    backend = _BoundedBackend()
    for transport in [made._transport, *made._mounts.values()]:
        if transport is None:  # a NO_PROXY pattern: the direct transport
            continue
        pool: Any = getattr(transport, "_pool", None)
        if not isinstance(getattr(pool, "_network_backend", None), httpcore.NetworkBackend):
            raise RuntimeError(f"httpx {httpx.__version__}: no network backend to bound")
        pool._network_backend = backend
    return made


def backoff(attempts: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: exponential
    backoff with full jitter, uniform in [0, min(cap, base * 2^(attempts-1))].
    The jitter spreads the retries of many deliveries that failed together (a
    receiver's outage) instead of sending them back all at once."""
    ceiling = min(cap, base * 2.0 ** min(attempts - 1, 62))
    return rng.uniform(0.0, ceiling)
