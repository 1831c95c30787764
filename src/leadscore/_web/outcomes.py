"""Which event type counts as a conversion, when the marketer has not said.

Reports and the backtest preview measure conversion by an outcome event type
the marketer picks among those in the log. The default is the first of these
that the log has: the usual names of a won deal or a purchase, then of the
steps just before one.
"""

from __future__ import annotations

from collections.abc import Sequence

PREFERRED = (
    "opportunity_won",
    "deal_won",
    "closed_won",
    "purchase",
    "order_completed",
    "trial_started",
    "signup",
    "demo_request",
)


def default_outcome(types: Sequence[str]) -> str | None:
    for name in PREFERRED:
        if name in types:
            return name
    return types[0] if types else None
