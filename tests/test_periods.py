"""Calendar periods of `limit` are exact in every zone, including zones whose
offsets change mid-hour or by odd amounts (the offset cache must not leak)."""

from __future__ import annotations

import random

import pytest

from leadscore._compiled import CompiledModel
from leadscore._model import Model
from leadscore._time import to_datetime

ZONES = [
    "UTC",
    "Europe/Warsaw",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Apia",
    "Africa/Casablanca",
]


@pytest.mark.parametrize("zone", ZONES)
def test_periods_match_the_zone_database(zone: str) -> None:
    compiled = CompiledModel(
        Model.model_validate({"version": 1, "name": "z", "timezone": zone, "rules": []})
    )
    rng = random.Random(zone)
    for _ in range(20_000):
        micros = rng.randrange(-(10**9), 25 * 10**8) * 10**6 + rng.randrange(10**6)
        local = to_datetime(micros).astimezone(compiled.timezone)
        assert compiled.period_of("day", micros) == local.toordinal()
        assert compiled.period_of("week", micros) == local.toordinal() - local.weekday()
        assert compiled.period_of("month", micros) == local.year * 12 + local.month
        assert compiled.period_of("ever", micros) == 0
