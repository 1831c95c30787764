"""`leadscore users`: the people who sign in to the web app."""

from __future__ import annotations

import os
import sys

import click

from ._cli_common import err, fail, storage_options, store_connection

_ROLES = ["admin", "marketer", "sales"]


def _terminal() -> bool:
    """Whether a password can be asked for without echo: getpass asks on
    /dev/tty (whatever standard input is) where there is one."""
    if os.name != "posix":
        return sys.stdin.isatty()
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


@click.group()
def users() -> None:
    """Users of the web app: each belongs to a workspace and has a role."""


@users.command(name="create")
@click.option("--email", required=True, help="The user's e-mail address: their sign-in name.")
@click.option("--workspace", required=True, help="The workspace's name; created when missing.")
@click.option(
    "--role",
    required=True,
    type=click.Choice(_ROLES),
    help="sales: leads and contacts. marketer: also the model and reports. "
    "admin: also users, keys and webhooks.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of a prompt.",
)
@storage_options
def users_create(
    *,
    email: str,
    workspace: str,
    role: str,
    password_stdin: bool,
    database_url: str | None,
    data_dir: str | None,
) -> None:
    """Create a user. The password is asked for (twice), or read from stdin,
    never taken from the command line, where other users of the machine and
    the shell's history would see it."""
    from ._store.users import Role, check_password, create_user, normalize_email
    from ._store.workspaces import create_workspace

    try:  # before asking for a password that would go nowhere
        normalize_email(email)
    except ValueError as error:
        fail(str(error))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not _terminal():
        # click's prompt would read it with echo on (a warning, then "Aborted!").
        fail("no terminal to ask for the password on: pipe it in with --password-stdin")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    try:
        check_password(password)
    except ValueError as error:
        fail(str(error))
    with store_connection(database_url, data_dir) as conn:
        try:
            # One transaction: a user refused (an address taken) leaves no
            # workspace made for them.
            with conn.begin():
                new_workspace = create_workspace(conn, workspace=workspace)
                created = create_user(
                    conn, workspace=workspace, email=email, role=Role(role), password=password
                )
        except ValueError as error:
            fail(str(error))
    if new_workspace:
        err.print(f"created workspace {workspace!r}", highlight=False)
    err.print(f"created {created.role} {created.email} in workspace {workspace!r}", highlight=False)
