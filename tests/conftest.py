"""Real databases for the tests that need one: SQLite always, PostgreSQL when
LEADSCORE_TEST_DATABASE_URL names one (`.ci/run` sets it to the machine's).

Each PostgreSQL database here is a schema of its own in that database,
dropped afterwards, so that tests on two xdist workers never meet.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from leadscore._store.database import open_database
from leadscore._store.migrate import upgrade

POSTGRESQL_URL = "LEADSCORE_TEST_DATABASE_URL"
BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def _empty_database(backend: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database; skips when PostgreSQL is not available."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'leadscore.db'}"
        return
    base = os.environ.get(POSTGRESQL_URL)
    if not base:
        pytest.skip(f"PostgreSQL: {POSTGRESQL_URL} is not set (.ci/run sets it)")
    url = sa.make_url(base)
    if "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": "5"})
    admin = open_database(url)
    schema = f"test_{uuid.uuid4().hex[:16]}"
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        reason = str(error.orig or error).strip().splitlines()[0]
        pytest.skip(f"PostgreSQL at {POSTGRESQL_URL} is unreachable: {reason}")
    try:
        # Everything the test does lands in its schema.
        scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of each backend: a SQLite file, a PostgreSQL schema."""
    with _empty_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    """A migrated database of each backend, shared by one worker's tests.

    Migrating once per worker keeps the suite fast; tests stay apart by each
    working in workspaces of their own.
    """
    with _empty_database(request.param, tmp_path_factory.mktemp("store")) as url:
        upgrade(url)
        opened = open_database(url)
        try:
            yield opened
        finally:
            opened.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, for a module's browser tests (skips without it)."""
    from ._browser import browser_or_skip

    driver, opened = browser_or_skip()
    try:
        yield opened
    finally:
        opened.close()
        driver.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a browser context of its own (its own cookies: its own sign-in)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local SparkSession for every Spark test of this worker (starting one takes seconds).

    Two cores, two shuffle partitions (the logs are tiny), no UI, no progress bars.
    """
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime (17 or newer): no java on PATH, no JAVA_HOME")
    import sys

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("leadscore-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
