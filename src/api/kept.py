"""Answer on the event loop what a worker keeps; work out the rest in the thread pool (ADR 0025).

`fn(views.kept_only(), *args)` costs dictionary look-ups when the views keep everything it
asks for: then the event loop answers at once. If anything would have to be computed or
read from the store, the views raise NotKept before doing it, and `fn(views, *args)` runs
in the thread pool instead. Refusals raised by `fn` (401, 403, 404) are the same on either path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from adapters.views import NotKept, Views

T = TypeVar("T")


async def kept_or_in_thread(views: Views, fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(views.kept_only(), *args)
    except NotKept:
        return await run_in_threadpool(fn, views, *args)
