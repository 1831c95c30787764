"""Settings of the service, declared once: each with its default and its help.

Every setting can be given as an environment variable named `LEADSCORE_` +
its name in capitals (`LEADSCORE_DATABASE_URL`). `docs/settings.md` lists
them all, and a test keeps that page complete.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADSCORE_", extra="forbid", frozen=True)

    data_dir: Path = Field(
        default=Path("leadscore-data"),
        description="Directory of the embedded SQLite database, used when no database URL is set.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the database, e.g. "
        "postgresql+psycopg://user@host/db. Default: SQLite in the data directory.",
    )
    host: str = Field(default="127.0.0.1", description="Address `leadscore serve` listens on.")
    port: int = Field(
        default=8000, ge=0, le=65535, description="Port `leadscore serve` listens on."
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes `leadscore serve` runs on its port; several use "
        "several cores (about one per core).",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1_024,
        description="Largest request body accepted; larger requests get 413.",
    )
    max_batch_events: int = Field(
        default=1_000,
        ge=1,
        description="Most events accepted in one batch request.",
    )

    def database(self) -> str:
        """The database URL in effect."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'leadscore.db').resolve()}"
