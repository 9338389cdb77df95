"""Settings of the service, read from the environment (and a `.env` file) by pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE = "sqlite:///var/csa-ledger.sqlite"


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

    @field_validator("database_url")
    @classmethod
    def _supported(cls, v: str) -> str:
        if not (v.startswith("sqlite:///") or v.startswith("postgresql")):
            raise ValueError("CSA_DATABASE_URL must be sqlite:///PATH or postgresql+psycopg://…")
        return v

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))


@lru_cache
def get_settings() -> Settings:
    return Settings()
