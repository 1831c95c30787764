"""Settings of the service, declared once: each with its default and its help.

Every setting can be given as an environment variable named `LEADSCORE_` +
its name in capitals (`LEADSCORE_DATABASE_URL`). `docs/settings.md` lists
them all, and a test keeps that page complete.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator
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
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Proxies in front of `leadscore serve` whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are trusted: comma-separated addresses or networks "
        "(`10.0.0.0/8`), or `*` for any. A request through one of them has the client "
        "address (what the per-address sign-in limit counts) and scheme they name.",
    )

    predictive_model: Path | None = Field(
        default=None,
        description="Directory of a trained predictive model (`leadscore train --events ... "
        "--output DIR`). When set, the web app's contact cards show the contact's predicted "
        "probability of conversion with the factors raising and lowering it.",
    )

    # The outbox worker (docs/api.md, "Triggers and actions").
    outbox_worker: bool = Field(
        default=True,
        description="Run the outbox worker (which carries out triggers' actions) with "
        "`leadscore serve` (on PostgreSQL in a child process) or in the app (`create_app`, "
        "in a thread). "
        "Turn off when `leadscore worker` processes do it instead.",
    )
    outbox_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often an idle worker looks for due actions: the longest an action "
        "waits before it starts.",
    )
    outbox_concurrency: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Webhooks one worker delivers at the same time.",
    )
    outbox_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a claimed action is a worker's alone; a worker that dies "
        "mid-delivery gives it up when this runs out. Must exceed the webhook timeout.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Timeout of a whole webhook call: connecting, sending, and the answer's "
        "status and headers (its body is not waited for); no answer in time is a failed attempt.",
    )
    webhook_max_attempts: int = Field(
        default=15,
        ge=1,
        description="Attempts at delivering a webhook before it goes to the dead letters. "
        "With the default backoff, 15 attempts span up to about a day.",
    )
    webhook_backoff_base_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Backoff before retry n: a random wait between 0 and "
        "min(cap, base * 2^(n-1)) seconds (exponential backoff with full jitter).",
    )
    webhook_backoff_cap_seconds: float = Field(
        default=21_600.0,
        gt=0,
        description="The longest backoff between two attempts (6 hours by default).",
    )

    @field_validator("predictive_model")
    @classmethod
    def _a_trained_model(cls, value: Path | None) -> Path | None:
        # Checked when the service starts: a mistyped directory would
        # otherwise make every contact card an error page.
        if value is not None and not (value / "model.json").is_file():
            raise ValueError(f"{value} is not a directory `leadscore train` wrote (no model.json)")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        # uvicorn takes a value it cannot read as an address for a literal
        # that no client address ever equals: a mistyped proxy address would
        # silently leave every user behind that proxy sharing one address
        # (so one person's failed sign-ins would lock everybody out).
        items = [item.strip() for item in value.split(",")]
        if items == ["*"]:
            return "*"
        written = []
        for item in items:
            try:
                # Networks as uvicorn reads them: host bits set (10.0.0.1/8) are
                # dropped here rather than making it a literal there.
                parsed = ipaddress.ip_network(item, strict=False) if "/" in item else None
                written.append(str(parsed) if parsed else str(ipaddress.ip_address(item)))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (such as 10.0.0.5 or "
                    "10.0.0.0/8); give addresses separated by commas, or *"
                ) from None
        return ",".join(written)

    @model_validator(mode="after")
    def _lease_outlasts_a_call(self) -> Self:
        # A lease shorter than a call would let a second worker send the
        # same webhook while the first is still waiting for its answer.
        if self.outbox_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError(
                f"outbox_lease_seconds ({self.outbox_lease_seconds}) must exceed "
                f"webhook_timeout_seconds ({self.webhook_timeout_seconds})"
            )
        return self

    def database(self) -> str:
        """The database URL in effect."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'leadscore.db').resolve()}"
