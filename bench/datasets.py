"""The shared data sets (../shared/data) as the benchmarks and tests read them.

Nothing in the package needs these; they live beside the benchmarks. Each
loader takes the data folder, so tests can skip when it is absent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.csv as pacsv

from leadscore import Event
from leadscore._time import from_datetime

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
X_EDUCATION = SHARED / "x_education_leads" / "Leads.csv"
BANK = SHARED / "uci_bank_marketing" / "bank-additional-full.csv"
OLIST = SHARED / "olist_marketing_funnel"
OLIST_LEADS = OLIST / "olist_marketing_qualified_leads_dataset.csv"
OLIST_DEALS = OLIST / "olist_closed_deals_dataset.csv"
# Filled in by the sales team after contact (the data's README): they leak the outcome.
X_EDUCATION_SALES = (
    "Tags",
    "Lead Quality",
    "Lead Profile",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
)
OLIST_SPLIT = date(2018, 3, 1)


def _micros(day: date) -> int:
    return from_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC))


def olist_split() -> int:
    return _micros(OLIST_SPLIT)


def olist_events() -> list[Event]:
    """The Olist funnel as events: each MQL's `first_contact` (with its origin and
    landing page) at 00:00 UTC of its first-contact day, and `deal_won` at the
    won date of the closed deals."""
    strings = pacsv.ConvertOptions(
        column_types={"first_contact_date": "string", "won_date": "string"}
    )
    leads = pacsv.read_csv(OLIST_LEADS, convert_options=strings).to_pylist()
    deals = pacsv.read_csv(OLIST_DEALS, convert_options=strings).to_pylist()
    events = []
    for lead in leads:
        properties = {k: lead[k] for k in ("origin", "landing_page_id") if lead[k]}
        events.append(
            Event(
                id=f"mql-{lead['mql_id']}",
                type="first_contact",
                timestamp=_micros(date.fromisoformat(lead["first_contact_date"])),
                contact_id=lead["mql_id"],
                properties=properties,
            )
        )
    for deal in deals:
        won = datetime.fromisoformat(deal["won_date"]).replace(tzinfo=UTC)
        events.append(
            Event(
                id=f"won-{deal['mql_id']}",
                type="deal_won",
                timestamp=from_datetime(won),
                contact_id=deal["mql_id"],
            )
        )
    return events
