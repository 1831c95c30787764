"""What the command modules share (`_cli`, `_users_cli`, `_worker_cli`,
`_predict._commands`): how a command reports bad input and exits, reading a
model or events for a command, and the options and checks of the commands
that open the service's database.

Exit codes are the CLI's (see `_cli`): 1 for bad input, 2 for a command used
wrongly (click's own usage errors).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from rich.console import Console

from ._errors import InputError, LeadscoreError, ModelError
from ._eventfiles import BadRecord, read_events
from ._events import Event
from ._loader import load_model
from ._model import Model
from ._settings import Settings

if TYPE_CHECKING:  # the service's libraries load only when a command needs them
    import sqlalchemy as sa

# Messages, warnings and progress: standard output is for results. Each
# message is one line however long: rich would otherwise break it at 80
# columns when standard error is a file or a pipe (a log, CI), mid-sentence.
err = Console(stderr=True, soft_wrap=True)

# Bad records shown one by one before only their count is.
_BAD_RECORDS_SHOWN = 20


class BadInput(click.ClickException):
    """Bad input: exit code 1 (click's own usage errors exit 2)."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        err.print(f"[red]error:[/red] {self.message}", highlight=False, soft_wrap=True)


def fail(message: str) -> NoReturn:
    raise BadInput(message)


def counted(count: int, noun: str) -> str:
    """`1 contact`, `2 contacts`, `4,921 contacts`: a count and its noun."""
    return f"{count:,} {noun if count == 1 else noun + 's'}"


def model_or_fail(path: str, *, upload: bool = False) -> Model:
    """The model of a file, or exit 1 listing every problem found in it
    (`upload`: as load_model's)."""
    try:
        return load_model(path, upload=upload)
    except ModelError as exc:
        count = len(exc.issues)
        details = "\n".join(f"  {issue}" for issue in exc.issues)
        fail(f"{path}: {count} problem{'s' if count != 1 else ''}\n{details}")
    except LeadscoreError as exc:
        fail(str(exc))


class BadRecords:
    """Reports bad records as they come (the first 20), or stops at one with --strict."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.count = 0

    def __call__(self, record: BadRecord) -> None:
        if self.strict:
            fail(f"{record} (--strict: stopping at the first bad record)")
        self.count += 1
        if self.count <= _BAD_RECORDS_SHOWN:
            err.print(f"[yellow]skipped[/yellow] {record}", highlight=False, soft_wrap=True)

    def summary(self) -> None:
        bad = self.count
        if bad:
            err.print(f"[yellow]{counted(bad, 'bad record')} skipped[/yellow]", highlight=False)


def events_or_fail(paths: Sequence[str], input_format: str | None, strict: bool) -> Iterator[Event]:
    """Good events of the inputs; bad records are reported (or, with --strict, fatal)."""
    on_bad = BadRecords(strict)
    try:
        yield from read_events(paths, format=input_format, on_bad=on_bad)
    except InputError as exc:
        fail(str(exc))
    on_bad.summary()


# -- the service's database ------------------------------------------------------------

_Command = TypeVar("_Command", bound=Callable[..., Any])


def storage_options(command: _Command) -> _Command:
    """--database-url and --data-dir, as every command that opens the
    service's database takes them."""
    command = click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        help="Directory of the embedded SQLite database "
        "(default: LEADSCORE_DATA_DIR, else leadscore-data).",
    )(command)
    return click.option(
        "--database-url",
        help="Database URL (default: LEADSCORE_DATABASE_URL, else SQLite in the data directory).",
    )(command)


def service_settings(database_url: str | None, data_dir: str | None) -> Settings:
    """Settings from the environment, with the command's options on top."""
    given: dict[str, Any] = {}
    if database_url is not None:
        given["database_url"] = database_url
    if data_dir is not None:
        given["data_dir"] = Path(data_dir)
    try:
        return Settings(**given)
    except ValidationError as exc:
        fail("invalid settings: " + "; ".join(_setting_problem(error) for error in exc.errors()))


def _setting_problem(error: ErrorDetails) -> str:
    """One of pydantic's errors as the person who set it reads it: the
    setting's name and variable, what was expected and what was given."""
    message = error["msg"].removeprefix("Value error, ")  # our validators word their own
    if not error["loc"]:  # a check of several settings together
        return message
    name = str(error["loc"][0])
    given = "" if error["type"] == "value_error" else f", got {error['input']!r}"
    return f"{name} (LEADSCORE_{name.upper()}): {message}{given}"


def prepare_storage(settings: Settings) -> str:
    """The database URL of `settings`, the embedded database's directory made."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings.database()


def current_database(settings: Settings) -> str:
    """The database URL of `settings`, or exit 1 when its schema is not
    current: a server or worker must not run on a schema it does not know."""
    from ._store.migrate import check_current

    url = prepare_storage(settings)
    with reaching(url):
        current = check_current(url)
    if not current:
        fail(f"the database schema is not current: run `leadscore db upgrade` ({redacted(url)})")
    return url


@contextmanager
def reaching(url: str) -> Iterator[None]:
    """A database that cannot be opened or reached (a URL of no known
    database, a server that is down, a wrong password) is bad input: exit 1
    naming the URL (without its password) and the driver's reason, not
    SQLAlchemy's traceback."""
    import sqlalchemy as sa

    try:
        yield
    except (sa.exc.SQLAlchemyError, ValueError) as exc:
        cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig else exc
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        fail(f"cannot use the database {redacted(url)}: {reason}")


def redacted(url: str) -> str:
    """A database URL fit to print: without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL SQLAlchemy cannot parse is shown as the user gave it
        return url


@contextmanager
def store_connection(database_url: str | None, data_dir: str | None) -> Iterator[sa.Connection]:
    """A connection to the service's database, whose schema must be current."""
    from ._store.database import open_database

    database = open_database(current_database(service_settings(database_url, data_dir)))
    try:
        with database.connect() as conn:
            yield conn
    finally:
        database.dispose()
