"""Bearer tokens for the HTTP API: issued and revoked with `csa tokens …`,
stored only as keyed hashes (HMAC-SHA-256 with the deployment's pepper)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, select, update

from adapters.database import schema_lock

ROLES = ("integration", "inspector", "local_authority", "appeals_panel", "auditor", "admin")

token_metadata = MetaData()
api_tokens = Table(
    "api_tokens", token_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("role", String(40), nullable=False),
    Column("la_code", String(3)),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name, role and (for local authorities) its authority."""

    name: str
    role: str
    la_code: str | None = None
    token_id: int | None = None


ANONYMOUS = Principal("anonymous", "anonymous")


class TokenError(ValueError):
    pass


class TokenStore:
    """`cache_seconds`: how long a process may keep an authenticated token's principal
    without asking the store again. A revocation is seen at once by the process that
    revokes, and by every other process within that time (docs/deployment.md)."""

    def __init__(self, engine: Engine, pepper: str, cache_seconds: float = 0.0):
        self.engine = engine
        self.pepper = pepper.encode()
        self.cache_seconds = cache_seconds
        self._kept: dict[str, tuple[float, Principal]] = {}
        with schema_lock(engine):
            token_metadata.create_all(engine)

    def _hash(self, token: str) -> str:
        return hmac.new(self.pepper, token.encode(), hashlib.sha256).hexdigest()

    def issue(self, name: str, role: str, la_code: str | None = None) -> tuple[int, str]:
        """A new token; the plain token is returned once and never stored."""
        if role not in ROLES:
            raise TokenError(f"role={role!r}: must be one of {', '.join(ROLES)}")
        if (role == "local_authority") != (la_code is not None):
            raise TokenError("la_code: a local_authority token needs exactly one authority; other roles none")
        token = "csa_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            tid = conn.execute(api_tokens.insert().values(
                name=name, role=role, la_code=la_code, token_hash=self._hash(token),
                created_at=datetime.now(UTC).replace(tzinfo=None))).inserted_primary_key[0]
        return tid, token

    def revoke(self, token_id: int) -> bool:
        with self.engine.begin() as conn:
            done = bool(conn.execute(update(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                                     .values(revoked_at=datetime.now(UTC).replace(tzinfo=None))).rowcount)
        self._kept = {k: v for k, v in self._kept.items() if v[1].token_id != token_id}
        return done

    def list(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(self._info().order_by(api_tokens.c.id)).mappings()]

    def get(self, token_id: int) -> dict | None:
        """A token's details (never the token itself), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(self._info().where(api_tokens.c.id == token_id)).mappings().first()
        return dict(row) if row else None

    @staticmethod
    def _info():
        c = api_tokens.c
        return select(c.id, c.name, c.role, c.la_code, c.created_at, c.revoked_at)

    def kept(self, token: str) -> Principal | None:
        """The token's principal if this process authenticated it less than `cache_seconds`
        ago (and has not revoked it since); None otherwise. Never asks the store."""
        kept = self._kept.get(self._hash(token))
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        return None

    def authenticate(self, token: str) -> Principal | None:
        key = self._hash(token)
        kept = self._kept.get(key)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        with self.engine.connect() as conn:
            row = conn.execute(select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.la_code)
                               .where(api_tokens.c.token_hash == key, api_tokens.c.revoked_at.is_(None))).first()
        return self.found(token, tuple(row) if row else None)

    # The same look-up for a caller that asks the store itself (api.probe, on the event loop):
    # the SQL with the token's key, then `found` with the row it got.
    LOOKUP_SQL = "SELECT id, name, role, la_code FROM api_tokens WHERE token_hash = %(key)s AND revoked_at IS NULL"

    def lookup_key(self, token: str) -> str:
        return self._hash(token)

    def found(self, token: str, row: tuple[int, str, str, str | None] | None) -> Principal | None:
        """The principal of the (id, name, role, la_code) row found for the token, kept for
        `cache_seconds`; None (and forgotten) when no unrevoked token has that key."""
        key = self._hash(token)
        if row is None:
            self._kept.pop(key, None)
            return None
        tid, name, role, la_code = row
        principal = Principal(name, role, la_code, tid)
        if self.cache_seconds > 0:
            if len(self._kept) > 10_000:  # bounded: tokens are few; drop the lot rather than grow
                self._kept.clear()
            self._kept[key] = (time.monotonic() + self.cache_seconds, principal)
        return principal
