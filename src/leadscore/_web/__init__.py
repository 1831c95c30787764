"""The web app, served by `leadscore serve` at `/`: server-rendered pages
(Jinja2) for sales reps, marketers and admins, signed in with sessions.

- common: templates, sessions, roles, CSRF, error pages
- signin: signing in (rate-limited) and out
- leads: the leads list and the contact card
- editor (+ activation): the model editor, validation, diff, backtest preview
- reports: charts of the ranking and of conversion
- admin: API keys and users
- webhooks: the triggers' webhooks, their delivery log, dead letters, the signing secret
- analysis: the numbers behind the charts, from the pure engine
- demo: a demo user for `leadscore demo`

Front-end libraries (CodeMirror, Chart.js) come from npm, copied by
scripts/_assets.sh into static/vendor; nothing is fetched at run time.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from .._service.bodies import BodyFirst
from . import admin, common, editor, leads, reports, signin, webhooks


def mount(app: FastAPI) -> None:
    """Serve the web app from `app`: its pages, its static files, its error pages.

    Its security headers are common.PageHeaders's, a middleware the app adds
    around its others (see create_app)."""
    pages = APIRouter(
        route_class=BodyFirst,
        include_in_schema=False,
        dependencies=[Depends(common.csrf_guard)],
    )
    modules = (signin, leads, editor, reports, admin, webhooks)
    for module in modules:
        pages.include_router(module.router)
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=common.HERE / "static"), name="static")
    common.install(app, [route for module in modules for route in module.router.routes])
