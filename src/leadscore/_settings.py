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

    session_hours: float = Field(
        default=12.0,
        gt=0,
        description="How long a web app sign-in lasts, in hours (a working day).",
    )
    secure_cookies: bool | None = Field(
        default=None,
        description="Mark the web app's cookies Secure (sent over https only). "
        "Default: when the request came over https.",
    )
    signin_failures_per_account: int = Field(
        default=5,
        ge=1,
        description="Failed web sign-ins allowed per account within the window, then refused.",
    )
    signin_failures_per_address: int = Field(
        default=20,
        ge=1,
        description="Failed web sign-ins allowed per client address within the window.",
    )
    signin_window_minutes: float = Field(
        default=15.0,
        gt=0,
        description="The window, in minutes, over which failed sign-ins are counted.",
    )

    def database(self) -> str:
        """The database URL in effect."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'leadscore.db').resolve()}"
