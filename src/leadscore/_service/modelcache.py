"""Compiled models, kept between requests.

Compiling a model (YAML parsing, validation, tables) takes about a tenth of a
second for a model the size of the B2B example: far too long to pay on every
request. A stored version never changes, so a compiled one can be kept; each
request only asks the database which version is active, so a model activated
by another server process is used from the next request on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import sqlalchemy as sa

from .._store.workspaces import ModelVersion, active_version, load_model


class ModelCache:
    """The last `size` compiled (workspace, version) pairs used."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._kept: OrderedDict[tuple[str, int], ModelVersion] = OrderedDict()
        # Routes run in a thread pool.
        self._lock = threading.Lock()

    def active(self, conn: sa.Connection, *, workspace: str) -> ModelVersion | None:
        """The workspace's active model, compiled; None when it has none."""
        version = active_version(conn, workspace=workspace)
        if version is None:
            return None
        with self._lock:
            found = self._kept.get((workspace, version))
            if found is not None:
                self._kept.move_to_end((workspace, version))
                return found
        # Compiled outside the lock: two requests may both compile a version
        # new to them, and the second result simply replaces the first.
        loaded = load_model(conn, workspace=workspace, version=version)
        self.keep(workspace, loaded)
        return loaded

    def version(self, conn: sa.Connection, *, workspace: str, version: int) -> ModelVersion:
        """A stored version of the workspace's models, compiled (UnknownModelVersion if none)."""
        with self._lock:
            found = self._kept.get((workspace, version))
        if found is not None:
            return found
        loaded = load_model(conn, workspace=workspace, version=version)
        self.keep(workspace, loaded)
        return loaded

    def keep(self, workspace: str, model: ModelVersion) -> None:
        with self._lock:
            self._kept[(workspace, model.version)] = model
            self._kept.move_to_end((workspace, model.version))
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
