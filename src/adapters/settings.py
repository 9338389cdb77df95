"""Settings of the service, read from the environment (and a `.env` file) by pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE = "sqlite:///var/csa-ledger.sqlite"
DEV_PEPPER = "development-only-pepper-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CSA_", env_file=".env", extra="ignore")

    environment: str = "development"
    # One setting chooses the store: an SQLite file (embedded default) or PostgreSQL,
    # e.g. postgresql+psycopg://user@127.0.0.1:5432/csa
    database_url: str = DEFAULT_SQLITE
    # Postings saved in one transaction of a bulk import.
    import_chunk: int = 2000
    # Events the projector applies per transaction.
    projector_batch: int = 10000
    # A first load of a large file into an empty SQLite store builds the read model in a
    # second process while the file is staged, and adopts it once the log is written
    # (ADR 0027); it needs free space in the temporary directory about the read model's size.
    # false: the read model is projected after the write, as on any other import.
    import_project_beside: bool = True
    # A first load into an empty SQLite store that no other connection has open is written
    # with the store out of WAL mode (a rollback journal), each page once rather than into the
    # WAL and again by a checkpoint, and the store put back in WAL mode after (ADR 0040).
    # false: always through the WAL.
    import_first_load_rollback_journal: bool = True
    # Key of the HMAC under which API tokens are stored. The default is refused
    # outside development: set CSA_TOKEN_PEPPER to a long random secret.
    token_pepper: str = DEV_PEPPER
    # Largest batch an integration may post in one request (HTTP 413 above it).
    max_batch_events: int = 1000
    max_batch_bytes: int = 5_000_000
    # How long a read waits for the projector to reach a requested log position.
    read_your_writes_wait_seconds: float = 5.0
    # How long an API process may trust a token it has authenticated before asking the store again:
    # a revocation reaches the other processes within this time (the revoking one at once).
    token_cache_seconds: float = 5.0
    # How long an API process may take the read model's and the log's positions it last read as
    # current before asking the store again (a read with min_position beyond them, or a write or
    # projection through this process, asks at once): a read may miss, for at most this long,
    # what another process has just written. 0: ask on every read.
    positions_kept_seconds: float = 0.1
    # Answers (profiles, proposals, national tables) each API process keeps, per read-model position.
    views_cache_answers: int = 512
    # Authorities whose facts (what the ledger knew, before the as-at rules) each API process keeps:
    # one national table needs 152; about 1.5 MB each on average, 12 MB for the largest (issue 5).
    views_cache_authorities: int = 160
    # Read every authority's facts (as known now, latest year) in the background when an API
    # process starts, so that no first question waits for them; ~15 s of CPU and ~400 MB per
    # process on the national set. Off by default (tests, small stores).
    views_warm_on_start: bool = False
    # Keep the facts (as known now) of the authorities a national table or a warm start read in
    # the store as well, and take them from there in any process that does not keep them: a new
    # process's first national table then unpickles them rather than reading ~600,000 rows (ADR
    # 0028). false: each process reads the read model itself.
    views_facts_in_store: bool = True
    # Of the facts as known at a time a caller gave (an auditor's cut-off), kept in the store in
    # the same way: how many such times per framework year (the latest written); ~75 MB each on
    # the national set. 0: only the facts as known now are kept.
    views_facts_in_store_points: int = 2
    # Requests (and garbage collections) that take this many milliseconds or more inside an API
    # worker are logged on `csa.timing`; 0 turns the log off. Every response says its own time
    # in the worker in `Server-Timing: app;dur=…` (docs/deployment.md).
    slow_request_ms: float = 500.0

    @field_validator("database_url")
    @classmethod
    def _supported(cls, v: str) -> str:
        if not (v.startswith("sqlite:///") or v.startswith("postgresql")):
            raise ValueError("CSA_DATABASE_URL must be sqlite:///PATH or postgresql+psycopg://…")
        return v

    @model_validator(mode="after")
    def _no_default_secret_outside_development(self) -> Settings:
        if self.environment != "development" and self.token_pepper == DEV_PEPPER:
            raise ValueError("CSA_TOKEN_PEPPER is the development default: set a secret outside development")
        if self.environment != "development" and len(self.token_pepper) < 32:
            raise ValueError("CSA_TOKEN_PEPPER must be at least 32 characters outside development")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))


@lru_cache
def get_settings() -> Settings:
    return Settings()
