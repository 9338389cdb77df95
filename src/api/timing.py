"""How long each request took inside the worker, and the pauses of Python's cyclic
garbage collector (issue 5: telling a slow answer from a request that waited).

- Every response carries `Server-Timing: app;dur=<ms>`: the time from the request
  reaching the application to its response headers, in this worker. A client that
  measures much more than this waited outside the application (for a core, in the
  socket's backlog, on the network).
- A request that takes `CSA_SLOW_REQUEST_MS` or more is logged on `csa.timing`
  (method, path, status, the milliseconds to its headers — "answered" — and to its
  last byte handed to the connection — "sent": a large body waits there for a slow
  reader); 0 turns the log off.
- A garbage collection that takes that long or more is logged too (generation,
  milliseconds, objects collected): a full collection over a large heap stops every
  request of the worker for its whole length.

A pure ASGI middleware (no per-request task or body copy), so it costs microseconds.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger("csa.timing")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestTiming:
    def __init__(self, app: ASGIApp, slow_ms: float = 0.0):
        self.app = app
        self.slow_ms = slow_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, answered = [0], [0.0]

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                answered[0] = took = (time.perf_counter() - start) * 1000
                message["headers"] = [*message.get("headers", ()), (b"server-timing", b"app;dur=%.1f" % took)]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            took = (time.perf_counter() - start) * 1000
            if self.slow_ms and took >= self.slow_ms:
                log.warning("slow request %s %s -> %s, answered in %.1f ms, sent in %.1f ms", scope.get("method"),
                            scope.get("path"), status[0] or "no response", answered[0], took)


class GcPauses:
    """A `gc.callbacks` hook logging collections that take `slow_ms` or more."""

    def __init__(self, slow_ms: float):
        self.slow_ms = slow_ms
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = (time.perf_counter() - self._started) * 1000
        if took >= self.slow_ms:
            log.warning("garbage collection of generation %d took %.1f ms (%d collected)",
                        info.get("generation", -1), took, info.get("collected", 0))

    def install(self) -> None:
        if self.slow_ms and self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
