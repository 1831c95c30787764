"""A real webhook receiver on a loopback port, for the tests of deliveries.

It verifies each request the way a receiver in production would (docs/api.md,
"Verifying a webhook"), written here independently of leadscore's own code:
the HMAC-SHA256 of `timestamp.body` under the secret, compared in constant
time, and a timestamp close to its clock. It records every request, and
answers what `answer` says, so tests can make it fail on purpose.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE = 300  # seconds a timestamp may be off: what docs/api.md recommends


@dataclass(frozen=True)
class Received:
    key: str
    attempt: int
    timestamp: int
    signature: str
    body: bytes
    verified: bool  # the signature holds under the receiver's secret, the timestamp is fresh
    at: float  # time.time() when it came
    headers: dict[str, str]  # every header, names in lower case

    def json(self) -> Any:
        return json.loads(self.body)


def verify(secret: str, timestamp: str, signature: str, body: bytes, now: float) -> bool:
    """What a receiver does with a request (the docs' example, in short)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return any(
        hmac.compare_digest(expected.hexdigest(), part.removeprefix("v1="))
        for part in signature.split(",")
        if part.startswith("v1=")
    )


@dataclass(frozen=True)
class Trickle:
    """An answer that does not end: after a 200 and its headers, a chunked
    body of `chunk` bytes every `every` seconds; with `head`, the headers
    themselves, a byte every `every` seconds. Either goes on until the
    sender hangs up, or `most` bytes are sent."""

    every: float
    chunk: int = 1
    head: bool = False
    most: int = 256 * 1024 * 1024


# How the receiver answers a request: a status, a number of seconds to hang
# before answering 200 (to outlast the sender's timeout), or a Trickle.
Answer = Callable[[Received, int], int | float | Trickle]


class Receiver:
    def __init__(self, secret: str = "", answer: Answer | None = None) -> None:
        self.secret = secret
        self.answer: Answer = answer or (lambda received, nth: 200)
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self.url = ""
        self.trickled = 0  # bytes of Trickle answers sent

    def keys(self) -> set[str]:
        with self._lock:
            return {item.key for item in self.received}

    def of(self, key: str) -> list[Received]:
        with self._lock:
            return [item for item in self.received if item.key == key]

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Until `count` distinct keys have come."""
        deadline = time.monotonic() + timeout
        while len(self.keys()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.keys())} of {count} deliveries came")
            time.sleep(0.02)

    def _take(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        body = handler.rfile.read(length)
        now = time.time()
        timestamp = handler.headers.get("Leadscore-Timestamp", "")
        signature = handler.headers.get("Leadscore-Signature", "")
        item = Received(
            key=handler.headers.get("Idempotency-Key", ""),
            attempt=int(handler.headers.get("Leadscore-Attempt", "0")),
            timestamp=int(timestamp) if timestamp.isdigit() else 0,
            signature=signature,
            body=body,
            verified=verify(self.secret, timestamp, signature, body, now),
            at=now,
            headers={name.lower(): value for name, value in handler.headers.items()},
        )
        with self._lock:
            self.received.append(item)
            nth = sum(1 for other in self.received if other.key == item.key)
        decided = self.answer(item, nth)
        if isinstance(decided, Trickle):
            self._trickle(handler, decided)
            return
        if isinstance(decided, float):
            time.sleep(decided)
            decided = 200
        handler.send_response(decided)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _trickle(self, handler: BaseHTTPRequestHandler, how: Trickle) -> None:
        if how.head:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
            piece = b"a" * how.chunk
        else:
            handler.send_response(200)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            piece = b"%x\r\n" % how.chunk + b"x" * how.chunk + b"\r\n"
        try:
            while self.trickled < how.most:
                handler.wfile.write(piece)
                handler.wfile.flush()
                with self._lock:
                    self.trickled += how.chunk
                time.sleep(how.every)
        except OSError:
            pass  # the sender hung up
        handler.close_connection = True


@contextmanager
def receiving(secret: str = "", answer: Answer | None = None) -> Iterator[Receiver]:
    receiver = Receiver(secret, answer)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver._take(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
