"""The two small questions every HTTP read may ask the store — where the read model and
the log are, and whose token this is — asked on the worker's event loop over one
asynchronous PostgreSQL connection, not from FastAPI's thread pool (ADR 0025).

Measured (2 workers, national store): when a worker's event loop is busy answering kept
questions, a pool thread that waits on the store for a few milliseconds can then wait
seconds for the interpreter lock, and every request that needed that thread waits with
it (p99 ~1 s). With no thread in the path, p99 was 9-12 ms at 2,500-3,400 requests/s.

PostgreSQL only: SQLite is the embedded store of one process, where the thread pool
path (adapters.ledger / adapters.tokens) is kept. A failed question falls back to that
path once and reconnects the next time. Requests that need the same answer at once
queue for the one connection, and each first looks whether the one before left it kept:
one round trip answers them all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import make_url

from adapters.ledger import Ledger
from adapters.tokens import Principal, TokenStore
from projections.projector import NAME as PROJECTOR_NAME


class _Kept:
    """An answer another request's question left kept while this one queued for its turn."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


class StoreProbe:
    def __init__(self, database_url: str, ledger: Ledger, tokens: TokenStore):
        self.conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.ledger, self.tokens = ledger, tokens
        self.positions_sql = ledger.positions_sql()
        self._conn: Any = None
        self._lock: asyncio.Lock | None = None
        self.asked = 0  # questions answered here (tests, diagnostics)

    @staticmethod
    def for_store(database_url: str, ledger: Ledger, tokens: TokenStore) -> StoreProbe | None:
        if not database_url.startswith("postgresql") or ledger.positions_sql() is None:
            return None
        return StoreProbe(database_url, ledger, tokens)

    async def _ask(self, sql: str, params: dict[str, Any], answered: Any = None) -> tuple | None:
        """The row the question gets; or, if `answered()` gives something once this question's
        turn comes (the request queued behind asked the same), that instead."""
        import psycopg

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one connection, one tiny question at a time
            if answered is not None and (already := answered()) is not None:
                return already
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                cur = await self._conn.execute(sql, params)
                row = await cur.fetchone()
            except psycopg.Error:
                await self.close()
                raise
        self.asked += 1
        return row

    async def positions(self) -> tuple[int, int] | None:
        """The read model's and the log's positions, kept by the ledger as its own reading
        would be; None if the store could not be asked here (the caller falls back)."""
        reading = self.ledger.positions_reading()
        try:
            row = await self._ask(self.positions_sql, {"name": PROJECTOR_NAME}, self._kept_positions)
        except Exception:  # noqa: BLE001 - the thread pool path asks again, and reports
            return None
        if isinstance(row, _Kept):
            return row.value
        return self.ledger.keep_positions(reading, *row)

    def _kept_positions(self) -> _Kept | None:
        kept = self.ledger.kept_positions()
        return None if kept is None else _Kept(kept)

    async def principal(self, token: str) -> tuple[bool, Principal | None]:
        """(asked, principal): whether the store was asked here, and the token's principal."""
        def kept() -> _Kept | None:
            principal = self.tokens.kept(token)
            return None if principal is None else _Kept(principal)

        try:
            row = await self._ask(TokenStore.LOOKUP_SQL, {"key": self.tokens.lookup_key(token)}, kept)
        except Exception:  # noqa: BLE001 - the thread pool path asks again, and reports
            return False, None
        if isinstance(row, _Kept):
            return True, row.value
        return True, self.tokens.found(token, row)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
