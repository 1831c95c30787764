"""Signing in to the web app over real HTTP, on SQLite and PostgreSQL:
cookies, CSRF on every POST, rate-limited sign-in per account and per
address, sign-out revoking the session, disabled users, and the
`leadscore users create` command.
"""

from __future__ import annotations

import html
import importlib
import json
import logging
import pkgutil
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.routing import APIRoute

import leadscore._web
from leadscore._settings import Settings
from leadscore._store import Scope, create_key, create_workspace, ingest, store_model
from leadscore._store.database import now, open_database
from leadscore._store.migrate import upgrade
from leadscore._store.tables import users as user_rows
from leadscore._store.tables import web_sessions as session_rows
from leadscore._store.users import (
    Role,
    clear_failures,
    create_user,
    disable_user,
    failures,
    verify_password,
)
from leadscore._store.workspaces import list_models

from ._browser import MODEL
from ._live import form_token, serve_process, serving, web_sign_in
from ._service import assert_problem

PASSWORD = "a-long-enough-secret"
PER_ACCOUNT = 3
PER_ADDRESS = 6


@pytest.fixture(scope="module")
def base(database: sa.Engine) -> Iterator[str]:
    settings = Settings(
        database_url=database.url.render_as_string(hide_password=False),
        signin_failures_per_account=PER_ACCOUNT,
        signin_failures_per_address=PER_ADDRESS,
    )
    with serving(settings) as url:
        yield url


def _user(database: sa.Engine, role: Role = Role.SALES) -> str:
    workspace = f"w-{uuid.uuid4().hex[:10]}"
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    with database.connect() as conn:
        create_workspace(conn, workspace=workspace)
        create_user(conn, workspace=workspace, email=email, role=role, password=PASSWORD)
    return email


def _client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, trust_env=False, timeout=30)


_token = form_token


def _sign_in(http: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return web_sign_in(http, email, password)


def test_sign_in_sets_a_safe_cookie_and_sign_out_revokes_it(base: str, database: sa.Engine) -> None:
    email = _user(database)
    with _client(base) as http:
        assert http.get("/").status_code == 303  # signed out: to the sign-in page
        signed = _sign_in(http, email)
        assert signed.status_code == 303
        assert signed.headers["location"] == "/"
        cookie = signed.headers["set-cookie"].lower()
        assert "ls_session=" in cookie
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "secure" not in cookie.replace("ls_session", "")  # plain http on loopback
        session = http.cookies["ls_session"]
        page = http.get("/")
        assert page.status_code == 200
        assert email in page.text
        out = http.post("/signout", data={"csrf": _token(page.text)})
        assert out.status_code == 303
    with _client(base) as other:
        # The old cookie is worthless: the session row is gone.
        other.cookies.set("ls_session", session)
        assert other.get("/").status_code == 303


def _cleared(response: httpx.Response) -> bool:
    """Whether `response` deletes the session cookie."""
    cookies = [value.lower() for value in response.headers.get_list("set-cookie")]
    return any(c.startswith("ls_session=") and "max-age=0" in c for c in cookies)


def test_signing_out_of_an_expired_session_clears_its_cookie(
    base: str, database: sa.Engine
) -> None:
    # A tab left open past the session's end: its Sign out form carried the
    # token of a session the CSRF check no longer found, so sign-out was the
    # 403 "Form expired" page and the dead cookie stayed.
    email = _user(database)
    with _client(base) as http:
        assert _sign_in(http, email).status_code == 303
        token = _token(http.get("/").text)
        with database.connect() as conn, conn.begin():
            conn.execute(
                session_rows.update().where(session_rows.c.email == email).values(expires_at=0)
            )
        out = http.post("/signout", data={"csrf": token})
        assert out.status_code == 303, out.text
        assert out.headers["location"] == "/signin"
        assert _cleared(out)
    # A cookie of no session at all (closed elsewhere, or made up), and no
    # token: the same.
    with _client(base) as http:
        http.cookies.set("ls_session", "no-such-session")
        out = http.post("/signout", data={})
        assert out.status_code == 303
        assert out.headers["location"] == "/signin"
        assert _cleared(out)
    # A live session still needs its token: no other site signs its user out.
    with _client(base) as http:
        assert _sign_in(http, email).status_code == 303
        for data in ({}, {"csrf": "forged"}):
            refused = http.post("/signout", data=data)
            assert refused.status_code == 403
            assert not _cleared(refused)
        assert http.get("/").status_code == 200


def test_sign_in_goes_back_only_to_a_page_of_this_site(base: str, database: sa.Engine) -> None:
    email = _user(database)
    # Browsers read `\\` as `/` and drop tabs and newlines: each of these
    # would lead to another site after signing in.
    elsewhere = ["//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example"]
    for target in ["/reports?outcome=won", *elsewhere, "https://evil.example/"]:
        with _client(base) as http:
            form = http.get("/signin")
            data = {"csrf": _token(form.text), "email": email, "password": PASSWORD}
            signed = http.post("/signin", data={**data, "next": target})
            assert signed.status_code == 303
            location = signed.headers["location"]
            if target.startswith("/reports"):
                assert location == target
            else:  # a path of this site: no second slash, nothing a browser reads as one
                assert location.startswith("/"), target
                assert not location.startswith("//"), target
                assert not any(c in location for c in "\\\t\n"), target


def _sales_user(database: sa.Engine) -> str:
    """A new workspace with the model active and a sales user; the user's e-mail."""
    workspace = f"w-{uuid.uuid4().hex[:10]}"
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    with database.connect() as conn:
        create_workspace(conn, workspace=workspace)
        store_model(conn, workspace=workspace, document=MODEL, activate=True)
        create_user(conn, workspace=workspace, email=email, role=Role.SALES, password=PASSWORD)
    return email


def _user_with_an_event(
    database: sa.Engine, role: Role, *, contact_id: str = "c1", document: str = MODEL
) -> str:
    """A new workspace with `document` active, one scored demo_request of
    `contact_id`, and a user of `role`; the user's e-mail."""
    workspace = f"w-{uuid.uuid4().hex[:10]}"
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    with database.connect() as conn:
        create_workspace(conn, workspace=workspace)
        model = store_model(conn, workspace=workspace, document=document, activate=True)
        event = {"id": "e1", "type": "demo_request", "contact_id": contact_id,
                 "timestamp": "2026-01-05T10:00:00Z"}  # fmt: skip
        (outcome,) = ingest(conn, workspace=workspace, model=model, events=[event])
        assert outcome.reason is None, outcome.reason
        create_user(conn, workspace=workspace, email=email, role=role, password=PASSWORD)
    return email


def test_a_page_number_past_any_end_shows_the_last_page(base: str, database: sa.Engine) -> None:
    email = _sales_user(database)
    with _client(base) as http:
        assert _sign_in(http, email).status_code == 303
        for query in (
            "page=99",
            "page=10000000000000000000000",
            "page=10000000000000000000000&q=x",
        ):
            assert http.get(f"/?{query}").status_code == 200, query


def test_secure_cookies_when_the_setting_says_so(database: sa.Engine) -> None:
    settings = Settings(
        database_url=database.url.render_as_string(hide_password=False), secure_cookies=True
    )
    with serving(settings) as url, _client(url) as http:
        form = http.get("/signin")
        assert "secure" in form.headers["set-cookie"].lower()
        # A client does not send a Secure cookie back over plain http, so the
        # sign-in form's CSRF check fails there: as it should.
        email = _user(database)
        assert _sign_in(http, email).status_code == 403


def test_every_post_needs_the_csrf_token(base: str, database: sa.Engine) -> None:
    email = _user(database, Role.ADMIN)
    with _client(base) as http:
        # Signing in without the sign-in form's token, or with another one.
        http.get("/signin")
        for token in (None, "forged"):
            data = {"email": email, "password": PASSWORD}
            if token:
                data["csrf"] = token
            refused = http.post("/signin", data=data)
            assert refused.status_code == 403
            assert "CSRF" in refused.text
        assert _sign_in(http, email).status_code == 303
        for path, data in (
            ("/settings/keys", {"scope": "read"}),
            ("/settings/users", {"email": "x@example.com", "role": "sales", "password": PASSWORD}),
            ("/settings/webhooks", {"trigger": "t", "url": "https://example.com/hook"}),
            ("/settings/webhooks/secret", {}),
            ("/settings/webhooks/deliveries/1/redeliver", {}),
            ("/signout", {}),
        ):
            assert http.post(path, data=data).status_code == 403, path
            assert http.post(path, data={**data, "csrf": "forged"}).status_code == 403, path
        for path in ("/models/validate", "/models/activate", "/models/preview"):
            refused = http.post(path, json={"document": "version: 1"})
            assert refused.status_code == 403, path
        # With the token, the same requests go through.
        token = _token(http.get("/").text)
        made = http.post("/settings/keys", data={"scope": "read", "csrf": token})
        assert made.status_code == 200
        assert "lsk_" in made.text
        checked = http.post(
            "/models/validate", json={"document": "version: 1"}, headers={"X-CSRF-Token": token}
        )
        assert checked.status_code == 200
        assert checked.json()["valid"] is False


def test_sign_in_is_rate_limited_per_account(base: str, database: sa.Engine) -> None:
    email = _user(database)
    with _client(base) as http:
        for _ in range(PER_ACCOUNT):
            assert _sign_in(http, email, "wrong-password!").status_code == 401
        # Past the limit, even the right password is refused for the window.
        refused = _sign_in(http, email)
        assert refused.status_code == 429
        assert "Too many failed sign-ins" in refused.text
    other = _user(database)
    with _client(base) as http:
        assert _sign_in(http, other).status_code == 303  # another account is not locked


def test_sign_in_is_rate_limited_per_address(base: str, database: sa.Engine) -> None:
    # Spread over accounts, failures from one address add up too. The earlier
    # tests of this module have failed from this address already: the count
    # starts from theirs.
    emails = [_user(database) for _ in range(PER_ADDRESS + 1)]
    with _client(base) as http:
        answers = [_sign_in(http, email, "wrong-password!").status_code for email in emails]
        assert 429 in answers
        assert _sign_in(http, _user(database)).status_code == 429
    with database.connect() as conn:  # let later tests from this address sign in
        clear_failures(conn, subject="ip:127.0.0.1")


def test_roles_and_disabled_users(database: sa.Engine) -> None:
    email = _user(database)
    with database.connect() as conn:
        user = verify_password(conn, email=email.upper(), password=PASSWORD)
        assert user is not None
        assert user.role is Role.SALES
        assert verify_password(conn, email=email, password=PASSWORD + "x") is None
        assert verify_password(conn, email="nobody@example.com", password=PASSWORD) is None
        assert disable_user(conn, workspace=user.workspace, email=email)
        assert verify_password(conn, email=email, password=PASSWORD) is None
        stored = conn.execute(
            sa.select(user_rows.c.password_hash).where(user_rows.c.email == email)
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, PASSWORD)
    assert Role.ADMIN.allows(Role.MARKETER)
    assert Role.MARKETER.allows(Role.SALES)
    assert not Role.SALES.allows(Role.MARKETER)
    assert not Role.MARKETER.allows(Role.ADMIN)


def test_users_create_reads_the_password_from_stdin_never_argv(tmp_path: Path) -> None:
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "leadscore", *args, "--data-dir", str(tmp_path)],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )

    assert run("db", "upgrade").returncode == 0
    made = run(
        "users", "create", "--email", "Ann@Example.com", "--workspace", "acme",
        "--role", "marketer", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "created marketer ann@example.com" in made.stderr
    again = run(
        "users", "create", "--email", "ann@example.com", "--workspace", "acme",
        "--role", "sales", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert again.returncode == 1
    assert "exists already" in again.stderr
    # Refused in a workspace that was to be made for them: none is made.
    elsewhere = run(
        "users", "create", "--email", "ann@example.com", "--workspace", "beta",
        "--role", "sales", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert elsewhere.returncode == 1
    assert elsewhere.stderr == "error: a user 'ann@example.com' exists already\n"
    assert run("workspaces", "create", "beta").stderr == "created workspace 'beta'\n"
    # Without a terminal to ask on (a new session has no controlling
    # terminal, even under a developer's), it says to use --password-stdin.
    untyped = subprocess.run(
        [sys.executable, "-m", "leadscore", "users", "create", "--email", "bo@example.com",
         "--workspace", "acme", "--role", "sales", "--data-dir", str(tmp_path)],
        input="", capture_output=True, text=True, check=False, start_new_session=True,
    )  # fmt: skip
    assert untyped.returncode == 1
    assert untyped.stderr == (
        "error: no terminal to ask for the password on: pipe it in with --password-stdin\n"
    )
    # A bad address is refused before a password is asked for.
    unaddressed = run(
        "users", "create", "--email", "bo", "--workspace", "acme", "--role", "sales"
    )  # fmt: skip
    assert unaddressed.returncode == 1
    assert unaddressed.stderr == "error: not an e-mail address: 'bo'\n"
    weak = run(
        "users", "create", "--email", "bo@example.com", "--workspace", "acme",
        "--role", "sales", "--password-stdin", stdin="short\n",
    )  # fmt: skip
    assert weak.returncode == 1
    assert "at least 10 characters" in weak.stderr
    # There is no option that takes the password itself.
    misuse = run(
        "users", "create", "--email", "cy@example.com", "--workspace", "acme",
        "--role", "sales", "--password", PASSWORD,
    )  # fmt: skip
    assert misuse.returncode == 2


def test_a_nul_in_a_contact_id_or_a_filter_is_no_server_error(
    base: str, database: sa.Engine
) -> None:
    # PostgreSQL refuses U+0000 in any text it is sent: each was a 500 page
    # there. No stored id or name holds one: no such contact, no lead listed.
    email = _sales_user(database)
    with _client(base) as http:
        assert _sign_in(http, email).status_code == 303
        assert http.get("/contacts/c%00").status_code == 404
        for name in ("q", "band", "grade", "stage", "owner", "tag", "tag_score"):
            for path in ("/", "/leads.csv"):
                answer = http.get(path, params={name: "x\x00"})
                assert answer.status_code == 200, (path, name, answer.status_code)


def test_a_contact_id_with_a_slash_has_its_card(base: str, database: sa.Engine) -> None:
    # Ids are free text (Segment user ids are often paths); the leads list links
    # to /contacts/team/ann (urlencode leaves "/"), which the card's one-segment
    # route did not match: the list showed the lead and its link was a 404.
    contact = "team/ann@example.com"
    email = _user_with_an_event(database, Role.SALES, contact_id=contact)
    with _client(base) as http:
        assert _sign_in(http, email).status_code == 303
        listed = http.get("/")
        assert listed.status_code == 200
        (link,) = set(re.findall(r'href="(/contacts/[^"]+)"', listed.text))
        for path in (link, "/contacts/team%2Fann%40example.com"):
            card = http.get(path)
            assert card.status_code == 200, (path, card.status_code)
            assert contact in card.text


# The WHATWG URL standard's dot segments: what browsers collapse in a path.
_DOT_SEGMENTS = {".", "..", "%2e", ".%2e", "%2e.", "%2e%2e"}


@pytest.mark.parametrize("contact", [".", "..", "team/..", "a/./b", "...", "a.b/c"])
def test_a_contact_id_of_dot_segments_has_its_card(
    base: str, database: sa.Engine, contact: str
) -> None:
    # The list linked to /contacts/.. (urlencode leaves "." and "/"), which a
    # browser (and httpx) reads as "/": the link led back to the list, and the
    # card of such a lead could not be opened. %2E would not do: browsers
    # collapse "%2e" segments too, hence the check against the standard's list.
    email = _user_with_an_event(database, Role.SALES, contact_id=contact)
    crumb = f"\N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} {html.escape(contact)}</p>"
    with _client(base) as http:
        assert _sign_in(http, email).status_code == 303
        listed = http.get("/")
        assert listed.status_code == 200
        (link,) = {
            html.unescape(href) for href in re.findall(r'href="(/contacts/[^"]*)"', listed.text)
        }
        path = link.split("?", 1)[0]
        assert not _DOT_SEGMENTS & {segment.lower() for segment in path.split("/")}, link
        card = http.get(link)
        assert card.status_code == 200, (link, card.status_code)
        assert crumb in card.text, link
    # Signed out, the link goes through the sign-in page and back to the card.
    with _client(base) as http:
        away = http.get(link)
        assert away.status_code == 303
        back = parse_qs(urlsplit(away.headers["location"]).query)["next"][0]
        form = http.get("/signin")
        data = {"csrf": _token(form.text), "email": email, "password": PASSWORD, "next": back}
        signed = http.post("/signin", data=data)
        assert signed.headers["location"] == link
        assert crumb in http.get(link).text


def test_a_nul_in_an_e_mail_address_is_no_server_error(base: str, database: sa.Engine) -> None:
    # PostgreSQL refuses U+0000 in any text: signing in as "x\0" (its failure
    # recorded), adding the user "a\0@b.co" (the address pattern took it) and
    # disabling /settings/users/a%00/disable were 500 pages there.
    admin = _user(database, Role.ADMIN)
    with _client(base) as http:
        for email in ("x\x00", "a\x00@example.com"):
            assert _sign_in(http, email).status_code == 401, email
        assert _sign_in(http, admin).status_code == 303
        token = _token(http.get("/settings/users").text)
        added = http.post(
            "/settings/users",
            data={"csrf": token, "email": "a\x00@example.com", "role": "sales",
                  "password": PASSWORD},
        )  # fmt: skip
        assert added.status_code == 422
        assert "not an e-mail address" in added.text
        gone = http.post(
            "/settings/users/disable", data={"csrf": token, "email": "a\x00@example.com"}
        )
        assert gone.status_code == 404


def test_reports_of_a_model_without_grades_or_stages(base: str, database: sa.Engine) -> None:
    # Grades, stages and bands are optional, and the model editor starts from
    # a model without grades or stages; the reports' SQL grouped by a CASE
    # with no WHEN for them ("CASE ELSE 0 END", a syntax error): a 500 page.
    workspace = f"w-{uuid.uuid4().hex[:10]}"
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    bare = "version: 1\nname: bare\nrules:\n  - {id: demo, event: demo_request, points: 30}\n"
    with database.connect() as conn:
        create_workspace(conn, workspace=workspace)
        model = store_model(conn, workspace=workspace, document=bare, activate=True)
        events = [
            {"id": f"e{i}", "type": "demo_request", "contact_id": f"c{i}",
             "timestamp": "2026-01-05T10:00:00Z"}
            for i in range(3)
        ]  # fmt: skip
        ingest(conn, workspace=workspace, model=model, events=events)
        create_user(conn, workspace=workspace, email=email, role=Role.MARKETER, password=PASSWORD)
    with _client(base) as http:
        assert _sign_in(http, email).status_code == 303
        page = http.get("/reports", params={"outcome": "demo_request"})
        assert page.status_code == 200
        assert "3 contacts, 3 with a <code>demo_request</code> event" in page.text
        assert "The model has no stages." in page.text


def test_names_from_the_model_in_the_reports_charts_stay_text(
    base: str, database: sa.Engine
) -> None:
    # The charts' data is JSON in a <script> element, where the HTML escaping
    # of the rest of the page does not apply: a band or stage named
    # "</script><script>..." closed that element and ran as script.
    evil = "</script><script>alert(1)</script>"
    document = (
        "version: 1\nname: x\nrules:\n  - {id: demo, event: demo_request, points: 30}\n"
        f"bands:\n  - {{band: '{evil}', min_score: 10}}\n  - {{band: cold}}\n"
        f"stages:\n  - name: '{evil}'\n"
    )
    email = _user_with_an_event(database, Role.MARKETER, document=document)
    with _client(base) as http:
        assert _sign_in(http, email).status_code == 303
        page = http.get("/reports")
        assert page.status_code == 200
        assert "<script>alert(1)" not in page.text
        (data,) = re.findall(
            r'<script type="application/json" id="report-data">(.*?)</script>', page.text, re.S
        )
        charts = json.loads(data)
        assert evil in [name for name, *_ in charts["bands"]]
        assert [evil, 1] in charts["funnel"]


def test_a_nul_in_the_preview_outcome_is_no_server_error(base: str, database: sa.Engine) -> None:
    # The preview's conversion event is free text in its request; PostgreSQL
    # refuses U+0000 in any text it is sent: a 500 there. No event type holds
    # one, so no contact converted.
    email = _user_with_an_event(database, Role.MARKETER)
    with _client(base) as http:
        assert _sign_in(http, email).status_code == 303
        token = _token(http.get("/").text)
        for outcome in ("demo_request", "demo_request\x00"):
            shown = http.post(
                "/models/preview",
                json={"document": MODEL, "outcome": outcome},
                headers={"X-CSRF-Token": token},
            )
            assert shown.status_code == 200, outcome
            assert 'id="preview-result"' in shown.text


def test_an_admin_cannot_sign_out_a_user_of_another_workspace(
    base: str, database: sa.Engine
) -> None:
    # Disabling a user of another workspace is "no such user"; it also closed
    # every session of that address, whatever its workspace: an admin could
    # sign anyone out, again and again.
    admin = _user(database, Role.ADMIN)
    other = _sales_user(database)
    with _client(base) as theirs, _client(base) as mine:
        assert _sign_in(theirs, other).status_code == 303
        assert theirs.get("/").status_code == 200
        assert _sign_in(mine, admin).status_code == 303
        token = _token(mine.get("/settings/users").text)
        refused = mine.post("/settings/users/disable", data={"csrf": token, "email": other})
        assert refused.status_code == 404
        still = theirs.get("/")
        assert still.status_code == 200, still.headers.get("location")


def test_a_user_whose_address_has_a_slash_can_be_disabled(base: str, database: sa.Engine) -> None:
    # "/" is allowed in an address's local part; the users page's Disable
    # form posted to /settings/users/team/bo%40example.com/disable (urlencode
    # leaves "/"), which the one-segment route did not match: a 404.
    admin = _user(database, Role.ADMIN)
    with _client(base) as http:
        assert _sign_in(http, admin).status_code == 303
        token = _token(http.get("/settings/users").text)
        added = http.post(
            "/settings/users",
            data={"csrf": token, "email": "team/bo@example.com", "role": "sales",
                  "password": PASSWORD},
        )  # fmt: skip
        assert added.status_code == 200
        gone = _submit_disable(http, added.text, "team/bo@example.com")
        assert gone.status_code == 303, gone.status_code
        assert "disabled" in http.get("/settings/users").text


def _submit_disable(http: httpx.Client, page: str, email: str) -> httpx.Response:
    """Send the users page's Disable form of `email` as a browser would: its
    action resolved against the page, dot segments removed (urljoin does as
    the URL standard does for "." and ".."), its hidden fields as they are."""
    label = re.escape(html.escape(f"Disable {email}"))
    (form,) = re.findall(
        rf'<form method="post" action="([^"]*)">((?:<input [^>]*>)*)'
        rf'<button type="submit" aria-label="{label}">',
        page,
    )
    action, inputs = html.unescape(form[0]), form[1]
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'name="([^"]*)" value="([^"]*)"', inputs)
    }
    return http.post(urljoin(str(http.base_url) + "/settings/users", action), data=fields)


@pytest.mark.parametrize("local", ["a/../b", "a/./b", "../b"])
def test_the_disable_form_of_an_address_with_dot_segments_disables_that_user(
    base: str, database: sa.Engine, local: str
) -> None:
    # The Disable form posted to /settings/users/a/../b%40example.com/disable,
    # which a browser collapses to /settings/users/b%40example.com/disable
    # before sending: the form of "a/../b@example.com" disabled
    # "b@example.com". The address now travels in the form's body.
    admin = _user(database, Role.ADMIN)
    domain = f"{uuid.uuid4().hex[:8]}.example.com"  # addresses are unique over workspaces
    target, a, b = (f"{name}@{domain}" for name in (local, "a", "b"))
    with _client(base) as http:
        assert _sign_in(http, admin).status_code == 303
        token = _token(http.get("/settings/users").text)
        for email in (target, a, b):
            added = http.post(
                "/settings/users",
                data={"csrf": token, "email": email, "role": "sales", "password": PASSWORD},
            )
            assert added.status_code == 200, (email, added.text)
        gone = _submit_disable(http, http.get("/settings/users").text, target)
        assert gone.status_code == 303, gone.text
        rows = {
            html.unescape(email): status
            for email, status in re.findall(
                r"<tr><td>([^<]*)</td><td>[^<]*</td><td>[^<]*</td>\s*<td>(\w+)</td>",
                http.get("/settings/users").text,
            )
        }
        assert rows[target] == "disabled", rows
        assert rows[a] == rows[b] == "active", rows


def test_the_new_user_form_keeps_what_was_typed_on_an_error(base: str, database: sa.Engine) -> None:
    # A refused new user came back with the address emptied and the role
    # back at the first (sales).
    admin = _user(database, Role.ADMIN)
    with _client(base) as http:
        assert _sign_in(http, admin).status_code == 303
        token = _token(http.get("/settings/users").text)
        refused = http.post(
            "/settings/users",
            data={"csrf": token, "email": "new@example.com", "role": "marketer",
                  "password": "short"},
        )  # fmt: skip
        assert refused.status_code == 422
        assert 'value="new@example.com"' in refused.text
        assert re.search(r'<option value="marketer"\s+selected>', refused.text), refused.text


def test_the_webhook_form_keeps_the_trigger_picked_on_an_error(
    base: str, database: sa.Engine
) -> None:
    # A refused webhook came back with its URL but the trigger back at the
    # first: sent again once corrected, it went to another trigger than the
    # one picked.
    workspace = f"w-{uuid.uuid4().hex[:10]}"
    admin = f"{uuid.uuid4().hex[:8]}@example.com"
    document = MODEL + (
        "  - id: second\n    when: {stage_entered: lead}\n"
        "    actions:\n      - webhook: {url: 'https://crm.example.com/hooks/two'}\n"
    )
    with database.connect() as conn:
        create_workspace(conn, workspace=workspace)
        store_model(conn, workspace=workspace, document=document, activate=True)
        create_user(conn, workspace=workspace, email=admin, role=Role.ADMIN, password=PASSWORD)
    with _client(base) as http:
        assert _sign_in(http, admin).status_code == 303
        token = _token(http.get("/settings/webhooks").text)
        hook = http.post(
            "/settings/webhooks",
            data={"csrf": token, "trigger": "second", "url": "ftp://example.com/x"},
        )
        assert hook.status_code == 422
        assert 'value="ftp://example.com/x"' in hook.text
        assert re.search(r'<option value="second"\s+selected>', hook.text), hook.text


def test_the_search_finds_an_id_past_ascii_in_any_case(base: str, database: sa.Engine) -> None:
    # The search ignores case; the ids it looked in were lowered in SQL, and
    # SQLite's lower() (and LIKE) fold ASCII letters only: "über" found the
    # contact "Über-Kunde" on PostgreSQL, not on SQLite.
    email = _user_with_an_event(database, Role.SALES, contact_id="Über-Kunde")
    with _client(base) as http:
        assert _sign_in(http, email).status_code == 303
        for needle in ("Über", "über", "ÜBER-K"):
            listed = http.get("/", params={"q": needle})
            assert listed.status_code == 200
            assert ">Über-Kunde</a>" in listed.text, needle


def test_a_csrf_token_past_ascii_is_refused_not_a_server_error(
    base: str, database: sa.Engine
) -> None:
    # hmac.compare_digest raises TypeError on str past ASCII: a forged token
    # "é" (a form field, or an X-CSRF-Token header) was a 500 page, even on
    # the sign-in form, before any sign-in.
    email = _user(database, Role.ADMIN)
    with _client(base) as http:
        http.get("/signin")
        data = {"email": email, "password": PASSWORD, "csrf": "é"}
        assert http.post("/signin", data=data).status_code == 403
        assert _sign_in(http, email).status_code == 303
        assert http.post("/signout", data={"csrf": "é"}).status_code == 403
        refused = http.post(
            "/models/validate",
            json={"document": "version: 1"},
            headers={b"X-CSRF-Token": "é".encode("latin-1")},
        )
        assert refused.status_code == 403


_SHARING = """version: 1
name: sharing
rules:
  - {id: demo, event: demo_request, points: 30}
stages:
  - name: new
  - name: lead
    enter: {score_gte: 30}
triggers:
  - &first
    id: first
    when: {stage_entered: lead}
    actions: &shared
      - webhook: {url: "https://one.example/hook"}
  - id: second
    when: {stage_entered: lead}
    actions: *shared
  - <<: *first
    id: third
"""


def test_a_webhook_added_to_a_trigger_reaches_no_other(base: str, database: sa.Engine) -> None:
    # Triggers may share their actions through YAML (an alias, a merge key);
    # the webhooks page appended to the shared list, so a webhook added to
    # one trigger was called for the others' firings too, sending their
    # contacts where no one chose to.
    workspace = f"w-{uuid.uuid4().hex[:10]}"
    admin = f"{uuid.uuid4().hex[:8]}@example.com"
    with database.connect() as conn:
        create_workspace(conn, workspace=workspace)
        store_model(conn, workspace=workspace, document=_SHARING, activate=True)
        create_user(conn, workspace=workspace, email=admin, role=Role.ADMIN, password=PASSWORD)

    def hooks(page: str) -> dict[str, list[str]]:
        rows = re.findall(
            r"<tr><td><strong>([^<]+)</strong>.*?</td>\s*<td>(.*?)</td></tr>", page, re.S
        )
        return {name: re.findall(r"<code>([^<]+)</code>", urls) for name, urls in rows}

    one, two = "https://one.example/hook", "https://two.example/hook"
    with _client(base) as http:
        assert _sign_in(http, admin).status_code == 303
        token = _token(http.get("/settings/webhooks").text)
        added = http.post(
            "/settings/webhooks", data={"csrf": token, "trigger": "second", "url": two}
        )
        assert added.status_code == 200, added.text
        assert hooks(added.text) == {"first": [one], "second": [one, two], "third": [one]}
        # The third merges the first in: a webhook of the first would be the
        # third's too, which no edit of the first alone avoids: refused.
        refused = http.post(
            "/settings/webhooks", data={"csrf": token, "trigger": "first", "url": two}
        )
        assert refused.status_code == 409
        assert "merge key" in refused.text
        shown = hooks(http.get("/settings/webhooks").text)
        assert shown == {"first": [one], "second": [one, two], "third": [one]}


def test_saves_refuse_a_webhook_url_that_can_never_be_called(
    base: str, database: sa.Engine
) -> None:
    # The editor's check and save, and the webhooks page's add, as the models
    # API's upload: an issue naming the URL's path; nothing stored.
    workspace = f"w-{uuid.uuid4().hex[:10]}"
    admin = f"{uuid.uuid4().hex[:8]}@example.com"
    with database.connect() as conn:
        create_workspace(conn, workspace=workspace)
        store_model(conn, workspace=workspace, document=MODEL, activate=True)
        create_user(conn, workspace=workspace, email=admin, role=Role.ADMIN, password=PASSWORD)
    good = "https://crm.example.com/hooks/lead"
    assert MODEL.count(good) == 1
    bad = MODEL.replace(good, "http://a..b/hook")
    path = "triggers[0].actions[0].webhook.url"
    message = (
        "expected an http:// or https:// address that can be called, got 'http://a..b/hook': "
        "'a..b' is not a host name: each part between dots needs 1 to 63 characters"
    )
    with _client(base) as http:
        assert _sign_in(http, admin).status_code == 303
        token = _token(http.get("/settings/webhooks").text)
        checked = http.post(
            "/models/validate", json={"document": bad}, headers={"X-CSRF-Token": token}
        )
        assert checked.status_code == 200, checked.text
        assert checked.json()["valid"] is False
        line = next(n for n, text in enumerate(bad.splitlines(), 1) if "a..b" in text)
        assert checked.json()["issues"] == [{"line": line, "path": path, "message": message}]
        saved = http.post(
            "/models/activate", json={"document": bad}, headers={"X-CSRF-Token": token}
        )
        assert saved.status_code == 422, saved.text
        assert f"{path}: {message}" in html.unescape(saved.text)
        added = http.post(
            "/settings/webhooks",
            data={"csrf": token, "trigger": "handoff", "url": "http://host:99999/hook"},
        )
        assert added.status_code == 422, added.text
        assert (
            "triggers[0].actions[1].webhook.url: expected an http:// or https:// address that "
            "can be called, got 'http://host:99999/hook': the port must be a number from 1 to "
            "65535"
        ) in html.unescape(added.text)
    with database.connect() as conn:
        assert [m.version for m in list_models(conn, workspace=workspace)] == [1]


def test_the_preview_refuses_a_webhook_url_that_can_never_be_called(
    base: str, database: sa.Engine
) -> None:
    # The editor's check and save refuse such a draft (the test above); its
    # backtest preview compiled it without the upload's checks and replayed
    # the log under it. Refused as saving it is: the 422 page, the same issue.
    email = _user_with_an_event(database, Role.MARKETER)
    bad = MODEL.replace("https://crm.example.com/hooks/lead", "http://a..b/hook")
    issue = (
        "triggers[0].actions[0].webhook.url: expected an http:// or https:// address that "
        "can be called, got 'http://a..b/hook': 'a..b' is not a host name"
    )
    with _client(base) as http:
        assert _sign_in(http, email).status_code == 303
        token = _token(http.get("/").text)
        shown = http.post(
            "/models/preview",
            json={"document": bad, "outcome": "demo_request"},
            headers={"X-CSRF-Token": token},
        )
        assert shown.status_code == 422, shown.text
        assert "<h1>The model is not valid</h1>" in shown.text
        assert issue in html.unescape(shown.text)
        assert 'id="preview-result"' not in shown.text


def test_guesses_sent_at_once_are_held_to_the_limit(base: str, database: sa.Engine) -> None:
    # The failures were counted before the password was checked and recorded
    # after: guesses sent in parallel each saw the count from before any of
    # them, and every one was checked, however many, past the limit.
    email = _user(database)
    guesses = 4 * PER_ACCOUNT
    with database.connect() as conn:
        clear_failures(conn, subject="ip:127.0.0.1")
    clients = [_client(base) for _ in range(guesses)]
    try:
        forms = [(http, _token(http.get("/signin").text)) for http in clients]
        start = threading.Barrier(guesses)

        def guess(http: httpx.Client, token: str) -> int:
            data = {"csrf": token, "email": email, "password": "wrong-password!", "next": "/"}
            start.wait()
            return http.post("/signin", data=data).status_code

        with ThreadPoolExecutor(guesses) as pool:
            answers = list(pool.map(lambda form: guess(*form), forms))
    finally:
        for http in clients:
            http.close()
        with database.connect() as conn:  # let later tests from this address sign in
            clear_failures(conn, subject="ip:127.0.0.1")
    assert set(answers) <= {401, 429}, answers
    # The others were not checked. (All may be 429s: each attempt recorded
    # before any counted sees too many.)
    assert answers.count(401) <= PER_ACCOUNT, answers


def test_an_invalid_value_on_a_page_is_an_html_page_naming_it(
    base: str, database: sa.Engine
) -> None:
    # A page number that is not one, a delivery or activation id out of
    # range, a form without one of its fields: the web app answered with the
    # API's 422 JSON problem, which a browser shows as raw JSON.
    admin = _user(database, Role.ADMIN)
    with _client(base) as http:
        assert _sign_in(http, admin).status_code == 303
        token = _token(http.get("/settings/users").text)
        for method, path, data, named in (
            ("GET", "/?page=abc", None, "&#39;page&#39; (in the address&#39;s query)"),
            ("GET", "/settings/webhooks/deliveries/0", None, "&#39;delivery_id&#39;"),
            ("GET", "/models/activation/abc", None, "&#39;activation_id&#39;"),
            (
                "POST",
                "/settings/users",
                {"csrf": token, "role": "sales", "password": PASSWORD},
                "&#39;email&#39; (in the form) is missing",
            ),
        ):
            shown = http.request(method, path, data=data)
            assert shown.status_code == 422, (path, shown.status_code)
            assert shown.headers["content-type"].startswith("text/html"), path
            assert "<h1>Not a valid request</h1>" in shown.text, path
            assert named in shown.text, (path, shown.text)
            assert admin in shown.text, path  # the page of a signed-in user, with its menu
    # Signed out, such a page still asks to sign in first.
    with _client(base) as http:
        assert http.get("/?page=abc").headers["location"].startswith("/signin?next=")
        # The API keeps its problems.
        problem = http.get("/v1/contacts?limit=abc", headers={"Authorization": "Bearer x"})
        assert problem.headers["content-type"].startswith("application/problem+json")


def test_an_address_of_no_page_is_an_html_page_for_a_browser(
    base: str, database: sa.Engine
) -> None:
    # A mistyped or stale address opened in a browser was the API's 404 JSON
    # problem, shown raw; a browser's navigation (HTML asked for first) now
    # gets the error page, the API and programs keep the problem.
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    sales = _user(database)
    with _client(base) as http:
        assert _sign_in(http, sales).status_code == 303
        for path in ("/nowhere", "/models/nothing/here", "/settings/nothing"):
            shown = http.get(path, headers=html)
            assert shown.status_code == 404, path
            assert shown.headers["content-type"].startswith("text/html"), path
            assert "<h1>Not found</h1>" in shown.text, path
            assert sales in shown.text, path  # a signed-in user's page, with its menu
        for path, headers in (
            ("/nowhere", {"Accept": "*/*"}),
            ("/nowhere", {"Accept": "application/json"}),
            ("/v1/nothing", html),
            ("/healthz/nothing", html),
        ):
            problem = http.get(path, headers=headers)
            assert problem.status_code == 404, path
            assert problem.headers["content-type"].startswith("application/problem+json"), path
        assert (
            http.post("/nowhere", headers=html)
            .headers["content-type"]
            .startswith("application/problem+json")
        )
    with _client(base) as http:  # signed out: the page still says so, without a menu
        shown = http.get("/nowhere", headers=html)
        assert (shown.status_code, "<h1>Not found</h1>" in shown.text) == (404, True)


class _Kept(logging.Handler):
    """The records of a logger, kept."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_failure_on_a_page_is_an_html_page_and_is_logged(tmp_path: Path) -> None:
    # A page that failed (a bug, the database gone) answered with the API's
    # 500 JSON problem, shown raw. A real failure: tables of a live database
    # dropped under the server, the tags a leads page reads, the keys the
    # API looks up, then the sessions every page and the 404 page look up.
    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    database = open_database(url)
    email = _user_with_an_event(database, Role.ADMIN)
    with database.begin() as conn:
        (workspace,) = conn.execute(
            sa.select(user_rows.c.workspace).where(user_rows.c.email == email)
        ).one()
        key = create_key(conn, workspace=workspace, scope=Scope.ADMIN)[1]
    browsing = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    api = {"Authorization": f"Bearer {key}"}
    settings = Settings(database_url=url, outbox_worker=False)
    # uvicorn logs the traceback of what the app raised on "uvicorn.error"
    # (`leadscore serve` writes it as a JSON line), once it has set its
    # logging up: the records are kept from then on.
    logged = _Kept()
    errors = logging.getLogger("uvicorn.error")
    with serving(settings) as base, _client(base) as http:
        errors.addHandler(logged)
        try:
            assert _sign_in(http, email).status_code == 303
            assert http.get("/", headers=browsing).status_code == 200
            assert http.get("/v1/contacts", headers=api).status_code == 200

            def get(path: str, headers: dict[str, str]) -> httpx.Response:
                # After an exception uvicorn closes the connection it
                # answered on; the answer says so, and the client, which
                # keeps its connections, opens a new one for the next.
                answer = http.get(path, headers=headers)
                assert answer.headers.get("connection") == "close", path
                return answer

            with database.begin() as conn:
                conn.execute(sa.text("DROP TABLE contact_tags"))
                conn.execute(sa.text("DROP TABLE api_keys"))
            failed = [
                get("/", browsing),
                get("/leads.csv", {}),  # any page, whatever it asks for
            ]
            problems = [
                get("/v1/contacts", api),
                get("/v1/contacts", {**api, **browsing}),  # the API's, whatever
            ]
            with database.begin() as conn:
                conn.execute(sa.text("DROP TABLE web_sessions"))
            failed += [
                get("/models", browsing),
                get("/nowhere", browsing),  # the 404 page failed
            ]
        finally:
            errors.removeHandler(logged)
            database.dispose()
    for shown in failed:
        where = shown.url.path
        assert shown.status_code == 500, (where, shown.text)
        assert shown.headers["content-type"].startswith("text/html"), where
        assert "<h1>Server error</h1>" in shown.text, where
        # Nothing of the cause, the exception's text or where it was raised.
        for said in ("Traceback", "no such table", "OperationalError", "sqlalchemy", ".py"):
            assert said not in shown.text, (where, said)
        for name, value in _FRAMING.items():
            assert shown.headers.get(name) == value, (where, name)
    for problem in problems:
        body = assert_problem(problem, 500)
        assert body["type"].endswith("/internal-server-error")
        assert "no such table" not in problem.text
    # Each failure is logged with its traceback, the pages' as the API's.
    tracebacks = [
        record
        for record in logged.records
        if record.exc_info and "no such table" in str(record.exc_info[1])
    ]
    assert len(tracebacks) == len(failed) + len(problems), [r.getMessage() for r in logged.records]


_FRAMING = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "frame-ancestors 'self'",
    "x-frame-options": "SAMEORIGIN",
}


def test_pages_refuse_other_sites_frames_and_nothing_is_sniffed(
    base: str, database: sa.Engine
) -> None:
    # No page said nosniff, and any site could show a page in a frame of its
    # own (a click meant for that site pressing a button of this one).
    sales = _user_with_an_event(database, Role.SALES)
    with _client(base) as http:
        shown = [http.get("/signin")]
        assert _sign_in(http, sales).status_code == 303
        shown += [
            http.get("/"),
            http.get("/contacts/c1"),
            http.get("/settings/users"),  # 403: not for sales
            http.get("/?page=abc"),  # 422
        ]
        assert [page.status_code for page in shown] == [200, 200, 200, 403, 422]
        for page in shown:
            assert page.headers["content-type"].startswith("text/html"), page.url
            for name, value in _FRAMING.items():
                assert page.headers.get(name) == value, (page.url, name)
        for path, kind in (("/static/app.js", "text/javascript"), ("/static/app.css", "text/css")):
            asset = http.get(path)
            assert asset.status_code == 200, path
            assert asset.headers["content-type"].startswith(kind), path
            assert asset.headers.get("x-content-type-options") == "nosniff", path


def _failed_sign_in_from(base: str, email: str, forwarded_for: str) -> None:
    """A wrong password sent as a proxy passes it on: naming its client."""
    with _client(base) as http:
        form = http.get("/signin")
        answer = http.post(
            "/signin",
            data={"csrf": _token(form.text), "email": email, "password": "wrong-password!"},
            headers={"X-Forwarded-For": forwarded_for},
        )
        assert answer.status_code == 401, answer.text  # the form again, with its error


@pytest.mark.parametrize(
    ("trusted", "counted_as"),
    [
        (None, "203.0.113.7"),  # the default trusts a proxy on this machine
        ("127.0.0.0/8, 10.0.0.5", "203.0.113.7"),
        ("10.0.0.5", "127.0.0.1"),  # the loopback "proxy" is not trusted
    ],
)
def test_sign_in_limits_count_the_client_a_trusted_proxy_names(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trusted: str | None,
    counted_as: str,
) -> None:
    # A real `leadscore serve` (the setting is the server's, not the app's);
    # this test's client stands for the proxy, on loopback.
    upgrade(database_url)
    database = open_database(database_url)
    try:
        email = _user(database)
        if trusted is not None:
            monkeypatch.setenv("LEADSCORE_FORWARDED_ALLOW_IPS", trusted)
        with serve_process("--database-url", database_url) as (base, _):
            _failed_sign_in_from(base, email, "203.0.113.7")
        since = now() - 60 * 1_000_000
        with database.connect() as conn:
            counted = {
                address: failures(conn, subject=f"ip:{address}", since=since)
                for address in ("203.0.113.7", "127.0.0.1")
            }
        assert counted == {"203.0.113.7": 0, "127.0.0.1": 0} | {counted_as: 1}
    finally:
        database.dispose()


def _web_routes() -> list[tuple[str, str]]:
    """Each (method, path) of the web app's routes, read from its modules'
    routers (a new route is covered the moment it exists), its path
    parameters filled in; sign-out last, since it ends the session."""
    found = []
    for module in pkgutil.iter_modules(leadscore._web.__path__):
        router = getattr(importlib.import_module(f"leadscore._web.{module.name}"), "router", None)
        for route in [] if router is None else router.routes:
            assert isinstance(route, APIRoute), route
            path = re.sub(r"\{(\w+)\}", lambda m: _PARAMETERS[m.group(1)], route.path_format)
            found += [(method, path) for method in sorted(route.methods or ())]
    assert {("GET", "/leads.csv"), ("POST", "/models/validate")} <= set(found), found
    return sorted(found, key=lambda route: route == ("POST", "/signout"))


_PARAMETERS = {"key_id": "0123456789abcdef", "contact_id": "c1", "delivery_id": "1",
               "activation_id": "1"}  # fmt: skip


def test_every_answer_of_the_web_app_refuses_frames_and_sniffing(
    base: str, database: sa.Engine
) -> None:
    # Pages said nosniff and refused other sites' frames, but the CSV export,
    # the model editor's JSON, redirects and static files did not. Every
    # route of the web app, each as a signed-in admin (who may open all),
    # POSTs with the session's token and the editor's body; and the answers
    # no route makes: an asset, the sign-in redirect, addresses of no page,
    # a wrong method, a body too large, a CORS preflight.
    admin = _user_with_an_event(database, Role.ADMIN)
    answers: list[httpx.Response] = []
    with _client(base) as http:
        answers.append(http.get("/models"))  # signed out: to the sign-in page
        assert answers[-1].status_code == 303
        assert _sign_in(http, admin).status_code == 303
        token = _token(http.get("/").text)
        for method, path in _web_routes():
            answers.append(
                http.request(
                    method,
                    path,
                    json={"document": MODEL} if method == "POST" else None,
                    headers={"X-CSRF-Token": token} if method == "POST" else None,
                )
            )
        browsing = {"Accept": "text/html"}
        answers += [
            http.get("/static/app.js"),
            http.get("/static/nothing.js"),
            http.get("/nowhere", headers=browsing),
            http.get("/nowhere", headers={"Accept": "application/json"}),
            http.get("/signout"),  # 405
            http.post("/models/validate", content=b"x" * 1_048_577),  # 413
            http.options(
                "/models/validate",
                headers={"Origin": "https://a.test", "Access-Control-Request-Method": "POST"},
            ),
        ]
    kinds = {
        (answer.status_code, answer.headers.get("content-type", "").split(";")[0])
        for answer in answers
    }
    # Each kind of answer is among them: pages, the CSV, the editor's JSON,
    # redirects, a script, error pages and problems.
    assert {
        (200, "text/html"),
        (200, "text/csv"),
        (200, "application/json"),
        (303, ""),
        (200, "text/javascript"),
        (404, "text/html"),
        (404, "application/problem+json"),
        (405, "application/problem+json"),
        (413, "application/problem+json"),
        (200, "text/plain"),  # the preflight
    } <= kinds, kinds
    for answer in answers:
        where = (answer.request.method, answer.url.path, answer.status_code)
        for name, value in _FRAMING.items():
            assert answer.headers.get(name) == value, (where, name)
    # The API's answers are left as they were.
    with _client(base) as http:
        api = http.get("/healthz")
    assert api.status_code == 200
    assert "x-frame-options" not in api.headers
