"""What the store refuses, as errors under LeadscoreError."""

from __future__ import annotations

from .._errors import LeadscoreError


class StoreError(LeadscoreError):
    """A request the store cannot carry out as asked."""


class UnknownWorkspace(StoreError):
    def __init__(self, workspace: str) -> None:
        self.workspace = workspace
        super().__init__(f"no workspace {workspace!r}")


class UnknownModelVersion(StoreError):
    def __init__(self, workspace: str, version: int) -> None:
        self.workspace = workspace
        self.version = version
        super().__init__(f"workspace {workspace!r} has no model version {version}")
