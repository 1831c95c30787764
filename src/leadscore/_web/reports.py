"""Reports for marketers: how the model ranks the workspace's contacts and
how that ranking relates to an outcome they pick (analysis.report)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from .._service.deps import Database, Models
from .._store import ranking
from .._store.database import now
from .._store.ranking import with_bands
from .._store.reports import contacts_with, event_types
from .analysis import AGE_BUCKETS, POINTS, Tallies, report, tally
from .common import Marketer, Page, active, script_json
from .outcomes import default_outcome

router = APIRouter(include_in_schema=False)


@router.get("/reports")
def reports(
    session: Marketer,
    request: Request,
    database: Database,
    models: Models,
    outcome: Annotated[str | None, Query()] = None,
) -> Response:
    workspace = session.user.workspace
    view = Page(request, session)
    model = active(database, models, workspace)
    if model is None:
        return view.render("reports.html", model=None)
    at = now()
    with database.connect() as conn:
        types = event_types(conn, workspace=workspace)
        picked = outcome if outcome in types else default_outcome(types)
        counted = ranking.tallies(
            conn,
            workspace=workspace,
            model=model,
            at=at,
            outcome=picked,
            age_limits=[limit for _, limit in AGE_BUCKETS],
            points=POINTS,
        )
        if counted is None:  # rows not current: from every contact's scorecard
            found = with_bands(model, ranking.ranked(conn, workspace=workspace, model=model, at=at))
            won = (
                set()
                if picked is None
                else contacts_with(conn, workspace=workspace, event_type=picked)
            )
            figures = tally(found, won, at=at)
        else:
            figures = Tallies(counted)
    result = report(model.engine, figures)
    charts = {
        "histogram": [[row.name, row.contacts, row.converted] for row in result.histogram],
        "bands": [[row.name, row.contacts, round(row.rate * 100, 1)] for row in result.by_band],
        "funnel": [[name, count] for name, count, _ in result.funnel],
        "pareto": [[round(x * 100, 1), round(y * 100, 1)] for x, y in result.pareto],
        "ageing": [[name, count, round(mean, 1)] for name, count, mean in result.ageing],
    }
    return view.render(
        "reports.html",
        model=model,
        result=result,
        types=types,
        outcome=picked,
        charts=script_json(charts),
    )
