"""The exceptions leadscore raises, all under :class:`LeadscoreError`.

LeadscoreError
├── ModelError   a model document is invalid; `.issues` lists every problem
├── EventError   one event record is invalid; `.field` names the field
└── InputError   an input cannot be read at all (missing file, unknown format)
"""

from __future__ import annotations

from dataclasses import dataclass


class LeadscoreError(Exception):
    """Base class of every error leadscore raises on purpose."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a model document.

    `path` is dotted with list indexes (`rules[2].limit.per`); `line` is the
    1-based line in the source file when the source was YAML or JSON text.
    """

    path: str
    message: str
    line: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.source, self.line) if part is not None)
        prefix = f"{where}: " if where else ""
        path = f"{self.path}: " if self.path else ""
        return f"{prefix}{path}{self.message}"


class ModelError(LeadscoreError):
    """A model document is invalid. Every issue found is in `issues`, not only the first."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class EventError(LeadscoreError):
    """One event record is invalid. `field` names the field at fault ('' for the record)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class InputError(LeadscoreError):
    """An input cannot be read at all: a missing file, an unknown format, a bad time."""
