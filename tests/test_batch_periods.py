"""Calendar periods of `limit` in SQL (the batch engine) against the pure engine's,
in zones with awkward transitions, at and around every change of offset."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import duckdb
import pyarrow as pa
import pytest

from leadscore._batch.plan import _offset_sql, _period_sql, offsets
from leadscore._compiled import CompiledModel
from leadscore._model import Model
from leadscore._time import parse_timestamp

ZONES = [
    "Australia/Lord_Howe",  # a half-hour daylight saving shift
    "Asia/Kathmandu",  # +05:45
    "America/St_Johns",  # -03:30, transitions at local 02:00
    "Pacific/Apia",  # skipped 2011-12-30 entirely
    "Africa/Casablanca",  # leaves daylight time for Ramadan, several times a year
    "Europe/Warsaw",
    "UTC",
]
HOUR = 3_600 * 1_000_000


@pytest.mark.parametrize("zone", ZONES)
def test_periods_in_sql_are_the_pure_engines(zone: str) -> None:
    compiled = CompiledModel(
        Model.model_validate({"version": 1, "name": "z", "timezone": zone, "rules": []})
    )
    start = parse_timestamp("2011-12-25T00:00:00Z")
    end = parse_timestamp("2027-01-10T00:00:00Z")
    table = offsets(compiled, start, end)
    # Every 7 hours over the years, and a microsecond and an hour either side of each change.
    instants = list(range(start, end, 7 * HOUR))
    for changed, _ in table[1:]:
        instants += [changed - HOUR, changed - 1, changed, changed + 1, changed + HOUR]
    _assert_periods(compiled, instants, table)
    if zone not in ("UTC", "Asia/Kathmandu"):  # those two kept one offset in those years
        assert len(table) > 2


def _assert_periods(
    compiled: CompiledModel, instants: list[int], table: list[tuple[int, int]]
) -> None:
    """Each period of `instants` in SQL (over the offsets `table`) is the pure engine's."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.register("instants", pa.table({"ts": pa.array(instants, pa.int64())}))
    for per in ("day", "week", "month"):
        query = f"SELECT {_period_sql(per, _offset_sql(table))} FROM instants"
        got = [row[0] for row in con.execute(query).fetchall()]
        expected = [compiled.period_of(per, ts) for ts in instants]
        # Both number the same periods, from different origins: compare where they change.
        assert _changes(got) == _changes(expected), (compiled.model.timezone, per)


def _changes(values: Sequence[object]) -> list[bool]:
    return [a != b for a, b in itertools.pairwise(values)]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Warsaw", "Asia/Kathmandu"])
@pytest.mark.parametrize("year", [1, 2, 1969, 1970, 2255, 2256, 4000, 8191, 9998, 9999])
def test_periods_are_exact_over_the_whole_range_of_instants(zone: str, year: int) -> None:
    # From year 1 to 9999: the microsecond either side of local midnights, on
    # Sundays and Mondays (weeks) and at the turn of months. Past 2^53 µs (the
    # year 2255), a double quotient of the instant would put some of them in
    # the neighbouring day.
    compiled = CompiledModel(
        Model.model_validate({"version": 1, "name": "z", "timezone": zone, "rules": []})
    )
    start = parse_timestamp("0001-01-01T00:00:00Z")
    end = parse_timestamp("9999-12-31T23:59:59.999999Z")
    instants: list[int] = []
    for month in (1, 2, 12):
        for day in (1, 2, 3, 4, 5, 6, 7, 28):
            # The local midnight of that date (the offset of its UTC midnight
            # is near enough), and the microsecond before and after it.
            utc = parse_timestamp(f"{year:04d}-{month:02d}-{day:02d}T00:00:00Z")
            midnight = utc - compiled._offset_at(utc)
            instants += [ts for ts in (midnight - 1, midnight, midnight + 1) if start <= ts <= end]
    instants.sort()
    _assert_periods(compiled, instants, offsets(compiled, instants[0], instants[-1]))


@pytest.mark.parametrize("zone", ["America/New_York", "Pacific/Kiritimati", "Asia/Kathmandu"])
def test_periods_of_the_first_and_last_days_in_zones_off_utc(zone: str) -> None:
    # Local days of year 0 (behind UTC) and year 10000 (ahead), which
    # datetime cannot hold: the offsets and months raised there.
    compiled = CompiledModel(
        Model.model_validate({"version": 1, "name": "z", "timezone": zone, "rules": []})
    )
    start = parse_timestamp("0001-01-01T00:00:00Z")
    end = parse_timestamp("9999-12-31T23:59:59.999999Z")
    instants = [start + n * HOUR // 2 for n in range(60)] + [end - n * HOUR // 2 for n in range(60)]
    for ends in (sorted(instants[:60]), sorted(instants[60:])):
        _assert_periods(compiled, ends, offsets(compiled, ends[0], ends[-1]))
