"""A seeded, realistic event log for the demo, the tests and the benchmarks.

The log is the traffic of one imaginary company site, https://acme.example,
that sells software to businesses (pricing, demos, trials) and goods to
shoppers (products, carts), and mails both a newsletter and promotions.
What makes it realistic enough to score and to benchmark:

- activity per person is heavy-tailed: most people visit once or twice, a few
  visit every week;
- people come in sessions of several page views minutes apart, on work days
  more than at weekends and in daytime where they live;
- campaigns go out on fixed days, followed by opens and fewer clicks;
- a small minority converts, and behaves differently on the way there
  (pricing, demo, trial, then purchase);
- many people browse anonymously first and sign up later, a few never do;
- negative signals (unsubscribes, the careers page, abandoned carts) and a
  very rare manual `stage_set` appear too.

Everything is drawn from one `random.Random(seed)` in one fixed order, so a
seed always gives the same log. The log is produced one calendar day at a
time: memory holds the plan of each person (a few numbers) and the events of
the next few days (opens trail their campaign by up to six days), not the
whole log, so ten million events stream as easily as ten thousand.

The size is planned rather than trimmed: the events every contact has
(identify, sign-up, a converter's steps) are counted first, email gets a
fixed share of the rest, and visits share what is left at four events each
on average. A visit's size counts its events, so the total lands within a
few percent of `events`.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import accumulate, islice
from pathlib import Path
from random import Random
from typing import Any, Final, Generic, Literal, NamedTuple, TypeVar

import orjson

from ._time import LAST_MICROS, MICROS, MICROS_PER_DAY, from_datetime, parse_timestamp, to_datetime

__all__ = ["generate_events", "write_events"]

_T = TypeVar("_T")
_Record = tuple[int, int, str, str | None, str | None, dict[str, Any] | None, dict[str, Any] | None]
_Move = Callable[[int, int], int]

_DAY: Final = 86_400
_HOUR: Final = 3_600
# A Monday, so that the window's weeks are ISO weeks, as the models' limits count them.
_DEFAULT_START: Final = datetime(2026, 1, 5, tzinfo=UTC)
_SITE: Final = "https://acme.example"
# Below this many events per contact the request cannot be met: every contact
# visits at least once and is identified, which alone takes about six events.
_MIN_EVENTS_PER_CONTACT: Final = 8

# ---------------------------------------------------------------------------
# Who is in the log
# ---------------------------------------------------------------------------

# Drive-by visitors who never identify, on top of `contacts`: every analytics
# tool has anonymous profiles; 8% keeps them visible without crowding anyone out.
_VISITOR_SHARE: Final = 0.08
# Shoppers (the shop) against business buyers (the software): B2B leads, as
# lead scoring is mostly B2B, but enough shoppers for the e-commerce model.
_SHOPPER_SHARE: Final = 0.35
# The converting minority: 4% is inside the 3-5% that B2B visitor-to-customer
# and e-commerce visitor-to-buyer rates usually are.
_CONVERTER_SHARE: Final = 0.04
# Contacts first seen as anonymous browsers who sign up later; the others are
# known when they first show up (imported from a CRM, a trade fair, a list).
_ANON_START_SHARE: Final = 0.55
# In which of their sessions (0 = the first) anonymous starters sign up:
# mostly at once or on the next visit, some take longer.
_SIGNUP_SESSION: Final = ((0, 0.45), (1, 0.30), (2, 0.15), (3, 0.10))
# Business visitors who come for the careers pages, not to buy.
_JOB_SEEKER_SHARE: Final = 0.03
# People already active when the window opens arrive in its first week; the
# rest arrive evenly through it, as a growing list does.
_EXISTING_SHARE: Final = 0.30
_EXISTING_DAYS: Final = 7
# Activity weight per person is lognormal. Sigma 1.8 puts 45-50% of the
# events on the busiest tenth of people, as web analytics usually find (with
# everyone's first visit and identify as a floor, a smaller sigma flattens the
# tail too much). The cap, 100 times the median, stops the odd draw from
# making a bot-like profile: the busiest people do about 1,000 events in 180 days.
_ACTIVITY_SIGMA: Final = 1.8
_ACTIVITY_CAP: Final = 100.0
# Converters are busier (they research before buying); drive-by visitors far less.
_CONVERTER_BOOST: Final = 3.0
_VISITOR_DAMP: Final = 0.25
# A converter needs visits to research, evaluate and buy in.
_CONVERTER_MIN_SESSIONS: Final = 4
# A converter reads (blog, docs) in the first third of the visits before the
# purchase and compares (pricing, integrations, case studies) after that.
_RESEARCH_PHASE: Final = 0.35
# Visits in which someone who never buys compares vendors anyway: pricing
# views and demo requests must not be perfect predictors of a purchase.
_EVALUATE_SHARE: Final = 0.08
# A job seeker's visits that are about jobs; in the others they look around.
_JOB_HUNT_VISITS: Final = 0.7
# Where in a converter's sessions the purchase falls (as a fraction of them):
# research first, some onboarding visits after.
_PURCHASE_AT: Final = (0.55, 0.9)
# Days from a converter's first visit to the purchase, lognormal (median,
# sigma): B2B sales cycles take weeks to months (median a month); shoppers
# decide within days.
_CYCLE_B2B: Final = (30.0, 0.6)
_CYCLE_SHOP: Final = (5.0, 0.8)
# Sessions are handed out in chunks of draws, so that ten million events do
# not hold millions of draws at once.
_DRAW_CHUNK: Final = 1 << 16
# Contacts per company: accounts have several people, as in account-based marketing.
_CONTACTS_PER_COMPANY: Final = 4

# Bit flags of what a person is (planned) ...
_SHOPPER: Final = 1
_CONVERTER: Final = 2
_ANON: Final = 4
_VISITOR: Final = 8
_JOB_SEEKER: Final = 16
# ... and of what has happened to them so far (while generating).
_KNOWN: Final = 1
_UNSUBSCRIBED: Final = 2
_DEMO_DONE: Final = 4
_TRIAL_DONE: Final = 8
_NEVER: Final = 1 << 30  # the identification day of someone who never identifies

# ---------------------------------------------------------------------------
# When things happen
# ---------------------------------------------------------------------------

# Chance that a day is accepted for a visit, Monday to Sunday. Business buyers
# browse at work, so a weekend day has about a third of a weekday's visits;
# shoppers shop every day, a little less at weekends than on a workday evening.
_WEEK_B2B: Final = (1.0, 1.0, 0.97, 0.93, 0.8, 0.3, 0.27)
_WEEK_SHOP: Final = (0.95, 0.95, 0.95, 0.95, 0.9, 0.8, 0.85)
# Relative visits by local hour: a dip at lunch, a second, smaller peak in the evening.
# fmt: off
_HOURS_LOCAL: Final = (
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4.5, 6.0, 6.5, 6.3,
    5.2, 5.8, 6.2, 5.9, 5.2, 4.3, 3.6, 3.8, 4.0, 3.5, 2.6, 1.6,
)
# fmt: on
# Share of a person's later visits that come back within days of an earlier
# one (a research spell), and the mean of that gap; the rest spread evenly.
_BURST_SHARE: Final = 0.45
_BURST_GAP_DAYS: Final = 2.0
# Events per session, geometric: mean 4, as analytics report 3-5 pages a visit.
_SESSION_MEAN: Final = 4.0
_SESSION_MAX: Final = 40
_SESSION_LOG_Q: Final = math.log(1.0 - 1.0 / _SESSION_MEAN)
# Seconds between page views: a floor plus an exponential, so views are a
# minute or two apart; actions (forms, carts) follow their page faster.
_PAGE_GAP: Final = (10, 90.0)
_ACTION_GAP: Final = (5, 25.0)
# A person's next session starts at least this long after the last one ended.
_SESSION_REST: Final = 20 * 60
# An abandoned cart is reported once the shop's 30-minute cart timeout has
# passed and its next sweep ran (another 30 minutes on average).
_ABANDON_DELAY: Final = (1800, 1800)
_ABANDON_RATE: Final = 0.6  # carts left when the visit ends without a purchase

# ---------------------------------------------------------------------------
# Email
# ---------------------------------------------------------------------------

# Share of the events that email brings (opens, clicks and what follows). A
# fortnightly newsletter and monthly promotions and webinars to the known
# contacts make about a quarter of a marketing log at typical open rates.
_EMAIL_SHARE: Final = 0.22
# No campaign gets opened by more than this share of its audience.
_MAX_OPEN_RATE: Final = 0.6
# Opens: about half in the first hours after the send, the rest over days.
_OPEN_FAST_SHARE: Final = 0.55
_OPEN_FAST_MEAN: Final = 1.5 * _HOUR
_OPEN_SLOW_MEAN: Final = 30 * _HOUR
_OPEN_MAX: Final = 6 * _DAY
# Of the openers, this many click: click-to-open rates are 10-25%.
_CLICK_RATE: Final = {"newsletter": 0.15, "promo": 0.2, "webinar": 0.25}
_UNSUBSCRIBE_RATE: Final = 0.012  # of the opens; unsubscribes run near 1% of opens
_CLICK_SECOND_PAGE: Final = 0.5  # a click leads to one page, half the time to two
_WEBINAR_ATTEND: Final = 0.4  # of the invitees who clicked to register
_WEBINAR_DELAY_DAYS: Final = 8  # the invitation goes out about a week before
# Send times, UTC: the newsletter early on Tuesday, promotions on Thursday
# afternoon, webinar invitations on Wednesday morning.
_SEND_HOUR: Final = {"newsletter": 8, "promo": 14, "webinar": 10}
_WEBINAR_HOUR: Final = 15

# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

# fmt: off
# (ISO code, weight, UTC offset in winter, phone prefix): the home market in
# central Europe, the US, the rest of Europe and a long tail.
_COUNTRIES: Final = (
    ("US", 18, -5, "1"), ("DE", 13, 1, "49"), ("PL", 13, 1, "48"), ("GB", 9, 0, "44"),
    ("FR", 7, 1, "33"), ("RO", 5, 2, "40"), ("NL", 5, 1, "31"), ("ES", 4, 1, "34"),
    ("IT", 4, 1, "39"), ("SE", 3, 1, "46"), ("CZ", 3, 1, "420"), ("AT", 2, 1, "43"),
    ("DK", 2, 1, "45"), ("NO", 2, 1, "47"), ("SK", 1, 1, "421"), ("CA", 3, -5, "1"),
    ("IN", 3, 5, "91"), ("BR", 2, -3, "55"),
)
_FIRST_NAMES: Final = (
    "anna", "piotr", "maria", "jan", "katarzyna", "tomasz", "lukas", "sophie", "emma",
    "james", "olivia", "michael", "sarah", "david", "andrei", "ioana", "pierre", "camille",
    "lucia", "marco", "lars", "ingrid", "raj", "priya", "joao", "ana", "noah", "mia",
)
_LAST_NAMES: Final = (
    "nowak", "kowalski", "wisniewska", "muller", "schmidt", "weber", "popescu", "ionescu", "martin",
    "dubois", "smith", "johnson", "brown", "garcia", "rossi", "jansen", "novak", "svensson",
    "hansen", "sharma", "silva", "wilson", "lee", "fischer", "kaminska",
)
# Free mailboxes: the three the brief asks for, plus two common in Poland.
_FREE_MAIL: Final = (
    ("gmail.com", 50), ("yahoo.com", 15), ("hotmail.com", 20), ("outlook.com", 10), ("wp.pl", 5),
)
# Chance of a free mailbox: some business buyers hide their employer, fewer of
# those who buy; shoppers are private people.
_FREE_MAIL_B2B: Final = 0.2
_FREE_MAIL_CONVERTER: Final = 0.07
_FREE_MAIL_SHOPPER: Final = 0.75
_PHONE_SHARE: Final = 0.7  # the rest leave the optional phone field empty
# (title, weight, senior): mostly the people who evaluate, fewer who sign;
# converters are three times as likely to be senior (that is what fit measures).
_JOB_TITLES: Final = (
    ("CEO", 3, True), ("CTO", 3, True), ("CMO", 2, True), ("Co-founder", 2, True),
    ("VP Sales", 3, True), ("VP Marketing", 3, True),
    ("Head of Growth", 3, True), ("Head of Marketing", 3, True), ("Director of IT", 3, True),
    ("Sales Director", 2, True), ("Marketing Manager", 10, False), ("Sales Manager", 7, False),
    ("Product Manager", 6, False), ("Team Lead", 4, False), ("Engineer", 10, False),
    ("Software Developer", 8, False), ("Data Analyst", 5, False), ("Account Executive", 5, False),
    ("Consultant", 5, False), ("Marketing intern", 4, False), ("Student", 3, False),
    ("Office Manager", 2, False),
)
_SENIOR_BOOST: Final = 3.0
# Company names are a word and a kind; the kind gives the industry, written
# as the b2b-saas example model's target list writes them.
_COMPANY_WORDS: Final = (
    "Nordwind", "Bluepeak", "Vistula", "Carpathia", "Helix", "Quantis", "Brightline", "Oakridge",
    "Lumen", "Arcadia", "Silverline", "Redwood", "Polaris", "Kestrel", "Ironbridge", "Sunstone",
    "Greenfield", "Atlas", "Meridian", "Novum", "Baltica", "Tatra", "Danube", "Amber",
    "Falcon", "Cobalt", "Granite", "Harbor", "Juniper", "Zenith",
)
_COMPANY_KINDS: Final = (
    ("Software", "software"), ("Cloud", "saas"), ("Pay", "fintech"), ("Bank", "finance"),
    ("Shop", "e-commerce"), ("Media", "marketing"), ("Digital", "marketing"),
    ("Logistics", "logistics"), ("Health", "healthcare"), ("Energy", "energy"),
    ("Foods", "food"), ("Robotics", "manufacturing"), ("Consulting", "consulting"),
    ("Travel", "travel"), ("Labs", "software"), ("Retail", "retail"),
)
# Employees are lognormal around a median of 60: many small firms, a few giants.
_EMPLOYEES_MEDIAN: Final = 60.0
_EMPLOYEES_SIGMA: Final = 1.6
_EMPLOYEES_MAX: Final = 250_000
# Plans by company size (under 50, under 1000, more employees), and yearly list prices.
_PLAN_LIMITS: Final = ((50, "starter"), (1000, "team"))
_PLAN_PRICE: Final = {"starter": 588.0, "team": 2388.0, "enterprise": 18000.0}
_DEMO_SOURCES: Final = (("website", 78), ("partner", 12), ("event", 10))
_DEMO_SOURCE_SHARE: Final = 0.9  # the rest of the demo requests carry no source
# Stage names of the example models: b2b-saas for buyers, ecommerce for shoppers.
_STAGES_B2B: Final = (("sql", 40), ("mql", 25), ("lead", 15), ("customer", 10), ("subscriber", 10))
_STAGES_SHOP: Final = (("loyal", 80), ("shopper", 20))

_BLOG: Final = (
    "what-is-lead-scoring", "b2b-funnel-benchmarks-2026", "mql-vs-sql", "scoring-with-decay",
    "email-open-rates", "intent-data-explained", "abm-playbook", "sales-handoff-checklist",
    "crm-hygiene", "webinar-funnels", "pricing-page-teardown", "churn-signals",
    "cold-email-that-works", "landing-page-tests", "attribution-models", "seo-for-saas",
    "gift-guide", "trail-running-tips", "packing-list", "home-office-setup",
)
_DOCS: Final = (
    "getting-started", "api", "webhooks", "scoring-rules", "decay", "stages", "triggers",
    "import-csv", "sso", "permissions", "crm-sync", "events", "conditions", "faq",
)
_CASE_STUDIES: Final = (
    "nordwind-logistics", "helix-cloud", "tatra-shop", "amber-media", "cobalt-pay",
    "meridian-health",
)
_FEATURES: Final = ("scoring", "analytics", "workflows", "integrations-hub", "api", "reports")
_ASSETS: Final = (
    "lead-scoring-playbook.pdf", "b2b-benchmarks-2026.pdf", "roi-calculator.xlsx",
    "buyer-guide.pdf", "scoring-model-templates.zip",
)
# (category, SKU prefix, median price, product words): the shop's departments.
_CATEGORIES: Final = (
    ("shoes", "SH", 85.0, ("trail-runner", "city-sneaker", "leather-boot", "sandal", "loafer")),
    ("bags", "BG", 60.0, ("backpack", "tote", "duffel", "messenger", "wallet")),
    ("outdoor", "OD", 70.0, ("tent", "sleeping-bag", "headlamp", "rain-jacket", "stove")),
    ("electronics", "EL", 120.0, ("headphones", "speaker", "charger", "smartwatch", "e-reader")),
    ("home", "HM", 45.0, ("lamp", "blanket", "mug-set", "planter", "cushion")),
)
_PRODUCTS_PER_CATEGORY: Final = 60
_PRICE_SIGMA: Final = 0.7  # a wide price range in each department, some items over 300
_FAVOURITE_SHARE: Final = 0.6  # shoppers mostly browse their favourite department
_EMPTY_CART_SHARE: Final = 0.05  # some cart updates empty the cart (value 0)


class _Source(NamedTuple):
    """Where a session comes from: a referrer, and for paid traffic the utm tags."""

    weight: float
    referrer: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaigns: tuple[str, ...] = ()


# A typical mix for a B2B site: direct and organic search lead, paid search
# and social follow, a little from communities.
_SOURCES: Final = (
    _Source(38),  # typed addresses and bookmarks
    _Source(28, "https://www.google.com/"),
    _Source(4, "https://www.bing.com/"),
    _Source(11, "https://www.google.com/", "google-ads", "cpc",
            ("brand", "lead-scoring", "competitors", "retargeting")),
    _Source(3, "https://www.bing.com/", "bing-ads", "cpc", ("brand", "lead-scoring")),
    _Source(5, "https://www.linkedin.com/", "linkedin", "paid-social", ("abm-q1", "webinar-promo")),
    _Source(5, "https://www.linkedin.com/"),
    _Source(6, "https://news.ycombinator.com/"),
)
# fmt: on


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def generate_events(
    *,
    contacts: int,
    events: int,
    seed: int = 0,
    start: datetime = _DEFAULT_START,
    days: int = 180,
) -> Iterator[dict[str, Any]]:
    """Yield a realistic event log, about `events` events, in `(timestamp, id)` order.

    `contacts` people get contact ids (`c000000`, ...); about 8% more are
    anonymous visitors who never identify. The log covers `days` days from
    `start` (an aware datetime; the default is Monday 2026-01-05 UTC). Events
    are canonical JSON objects of spec section 1, timestamps in whole seconds
    with `Z`. The same arguments always give the same log.

    Raises ValueError, before generating anything, for a naive `start`, fewer
    than one contact or day, fewer than 8 events per contact, or a window
    that goes past the year 9999.
    """
    if contacts < 1:
        raise ValueError(f"contacts must be at least 1, got {contacts}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if events < _MIN_EVENTS_PER_CONTACT * contacts:
        raise ValueError(
            f"events must be at least {_MIN_EVENTS_PER_CONTACT} per contact "
            f"({_MIN_EVENTS_PER_CONTACT * contacts} for {contacts} contacts), got {events}"
        )
    if from_datetime(start) + days * MICROS_PER_DAY > LAST_MICROS:
        # No timestamp could be written for those days (an OverflowError).
        raise ValueError(f"the {days:,} days from start {start.date()} go past the year 9999")
    calendar = _Calendar.of(start, days)
    return _generate(contacts, events, Random(seed), calendar)


def write_events(
    events: Iterable[dict[str, Any]],
    path: str | Path,
    *,
    format: Literal["jsonl", "parquet"] | None = None,
    typed: bool = False,
) -> int:
    """Write `events` to `path` as JSON Lines or Parquet; return how many were written.

    The format comes from the name (`.jsonl`, `.ndjson`, `.parquet`) unless
    given. Parquet has the string columns id, type, contact_id,
    anonymous_id, timestamp, properties and traits, the last two as JSON
    text, null where an event lacks the field; it is written in row groups,
    so memory stays small whatever the number of events.

    `typed` (Parquet, for the generator's own events, as `leadscore generate`
    writes them): typed columns, as a warehouse export would have them:
    timestamp a timestamp in UTC (µs); properties a struct of every property
    key the generator uses (`PROPERTIES`; a key an event lacks is null, `utm`
    a struct of its own), which readers take field by field instead of
    parsing JSON; traits still JSON text, because a trait set to null removes
    it (spec section 1), which a struct's null (an absent key) cannot say.
    An event with a property not in `PROPERTIES` is a ValueError.
    """
    target = Path(path)
    chosen = format or _format_of(target)
    if chosen == "jsonl":
        return _write_jsonl(events, target)
    if chosen == "parquet":
        return _write_parquet(events, target, typed=typed)
    raise ValueError(f"unknown format {chosen!r}; expected 'jsonl' or 'parquet'")


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


class _Weighted(Generic[_T]):
    """Items drawn with fixed relative weights: one uniform number and a bisection."""

    __slots__ = ("_cum", "_items", "_last", "_total")

    def __init__(self, pairs: Iterable[tuple[_T, float]]) -> None:
        listed = list(pairs)
        self._items = [item for item, _ in listed]
        self._cum = list(accumulate(weight for _, weight in listed))
        self._total = self._cum[-1]
        self._last = len(self._items) - 1

    def pick(self, rng: Random) -> _T:
        # `hi` keeps a draw that rounds up to the total on the last item.
        return self._items[bisect(self._cum, rng.random() * self._total, 0, self._last)]


def _popular(items: Sequence[_T], rng: Random) -> _T:
    """An item of a list ordered by popularity: the square of a uniform favours the first."""
    u = rng.random()
    return items[int(len(items) * u * u)]


def _exp_gap(rng: Random, gap: tuple[int, float]) -> int:
    """Seconds: a floor plus an exponential with the given mean."""
    floor, mean = gap
    return floor + int(rng.expovariate(1.0 / mean))


@cache
def _clock() -> tuple[str, ...]:
    """`HH:MM:SS` and the `Z` of every second of a day: formatting is the hot spot of output."""
    return tuple(
        f"{hour:02d}:{minute:02d}:{second:02d}Z"
        for hour in range(24)
        for minute in range(60)
        for second in range(60)
    )


@dataclass(frozen=True, slots=True)
class _Calendar:
    """The window in epoch seconds, cut into UTC calendar days."""

    first: int  # 00:00 UTC of the first day
    start: int  # the first second of the window
    end: int  # the first second after it
    days: int  # calendar days the window touches
    weekday: int  # weekday of the first day, Monday = 0
    prefixes: tuple[str, ...]  # "YYYY-MM-DDT" of each day

    @classmethod
    def of(cls, start: datetime, days: int) -> _Calendar:
        begin = -(-from_datetime(start) // MICROS)  # whole seconds, never before `start`
        first = begin - begin % _DAY
        end = begin + days * _DAY
        count_days = -(-(end - first) // _DAY)
        day0 = to_datetime(first * MICROS)
        prefixes = tuple(
            (day0 + timedelta(days=d)).strftime("%Y-%m-%dT") for d in range(count_days)
        )
        return cls(first, begin, end, count_days, day0.weekday(), prefixes)

    def weekday_of(self, day: int) -> int:
        return (self.weekday + day) % 7

    def stamp(self, t: int) -> str:
        day, second = divmod(t - self.first, _DAY)
        return self.prefixes[day] + _clock()[second]


# ---------------------------------------------------------------------------
# The plan: who each person is and on which days they visit
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _People:
    """One slot per person, contacts first, then the never-identified visitors."""

    contacts: int
    kind: bytearray  # _SHOPPER | _CONVERTER | ...
    country: bytearray
    favourite: bytearray  # shoppers' favourite department
    company: array[int]
    arrival: array[int]  # day of the first visit
    weight: list[float]  # activity
    sessions: array[int]  # planned number of visits
    signup_at: array[int]  # the visit in which they identify (0 for known contacts)
    purchase_at: array[int]  # converters: the visit with the purchase; -1 otherwise
    ident_day: array[int]  # day they identify, _NEVER for visitors
    purchase_day: array[int]  # converters: day of the purchase

    @classmethod
    def empty(cls, contacts: int, total: int) -> _People:
        def ints(value: int) -> array[int]:
            return array("i", [value]) * total

        return cls(
            contacts=contacts,
            kind=bytearray(total),
            country=bytearray(total),
            favourite=bytearray(total),
            company=ints(0),
            arrival=ints(0),
            weight=[0.0] * total,
            sessions=ints(0),
            signup_at=ints(0),
            purchase_at=ints(-1),
            ident_day=ints(_NEVER),
            purchase_day=ints(-1),
        )

    def __len__(self) -> int:
        return len(self.kind)


def _draw_people(rng: Random, contacts: int, calendar: _Calendar) -> _People:
    visitors = round(contacts * _VISITOR_SHARE)
    people = _People.empty(contacts, contacts + visitors)
    countries = _Weighted((index, row[1]) for index, row in enumerate(_COUNTRIES))
    # The same count as the _World's list of companies.
    companies = max(1, contacts // _CONTACTS_PER_COMPANY)
    weeks = {0: _WEEK_B2B, _SHOPPER: _WEEK_SHOP}
    for i in range(len(people)):
        kind = _draw_kind(rng, visitor=i >= contacts)
        people.kind[i] = kind
        people.country[i] = countries.pick(rng)
        people.favourite[i] = rng.randrange(len(_CATEGORIES))
        people.company[i] = _popular(range(companies), rng)
        week = weeks[kind & _SHOPPER]
        arrival = _arrival(rng, calendar, week)
        if kind & _CONVERTER:
            arrival, people.purchase_day[i] = _sales_cycle(rng, kind, arrival, week, calendar)
        people.arrival[i] = arrival
        people.weight[i] = _activity(rng, kind, arrival, calendar.days)
    return people


def _sales_cycle(
    rng: Random, kind: int, arrival: int, week: Sequence[float], calendar: _Calendar
) -> tuple[int, int]:
    """A converter's arrival and purchase days, the cycle between them fitted in the window."""
    median, sigma = _CYCLE_SHOP if kind & _SHOPPER else _CYCLE_B2B
    last = calendar.days - 1
    while True:
        cycle = max(1, round(rng.lognormvariate(math.log(median), sigma)))
        start = max(0, min(arrival, last - cycle))
        purchase = min(last, start + cycle)
        if rng.random() < week[calendar.weekday_of(purchase)]:
            return start, purchase


def _draw_kind(rng: Random, *, visitor: bool) -> int:
    kind = _SHOPPER if rng.random() < _SHOPPER_SHARE else 0
    if visitor:
        return kind | _VISITOR | _ANON
    if rng.random() < _CONVERTER_SHARE:
        kind |= _CONVERTER
    elif not kind & _SHOPPER and rng.random() < _JOB_SEEKER_SHARE:
        kind |= _JOB_SEEKER
    if rng.random() < _ANON_START_SHARE:
        kind |= _ANON
    return kind


def _activity(rng: Random, kind: int, arrival: int, days: int) -> float:
    weight = min(rng.lognormvariate(0.0, _ACTIVITY_SIGMA), _ACTIVITY_CAP)
    if kind & _CONVERTER:
        weight *= _CONVERTER_BOOST
    if kind & _VISITOR:
        weight *= _VISITOR_DAMP
    # Late arrivals have less of the window left to visit in.
    return weight * (days - arrival) / days


def _arrival(rng: Random, calendar: _Calendar, week: Sequence[float]) -> int:
    span = min(_EXISTING_DAYS, calendar.days) if rng.random() < _EXISTING_SHARE else calendar.days
    while True:
        day = int(rng.random() * span)
        if rng.random() < week[calendar.weekday_of(day)]:
            return day


def _fixed_events(people: _People) -> int:
    """Events every contact has whatever its activity: identify, signup, a converter's steps."""
    total = 0
    for kind in islice(people.kind, people.contacts):
        total += 2 if kind & _ANON else 1
        if kind & _CONVERTER:
            # A shop purchase is a last cart update and the purchase; a software
            # one is a demo form and request, a trial and the purchase.
            total += 2 if kind & _SHOPPER else 4
    return total


def _allocate_sessions(rng: Random, people: _People, total: int) -> None:
    """Give everyone their minimum of visits, and the rest in proportion to activity."""
    n = len(people)
    counts = [_CONVERTER_MIN_SESSIONS if kind & _CONVERTER else 1 for kind in people.kind]
    cum = list(accumulate(people.weight))
    left = total - sum(counts)
    while left > 0:
        chunk = min(left, _DRAW_CHUNK)
        for i in rng.choices(range(n), cum_weights=cum, k=chunk):
            counts[i] += 1
        left -= chunk
    signups = _Weighted(_SIGNUP_SESSION)
    for i in range(n):
        kind = people.kind[i]
        if kind & _CONVERTER:
            low, high = _PURCHASE_AT
            at = int(counts[i] * rng.uniform(low, high))
            people.purchase_at[i] = max(2, min(counts[i] - 1, at))
        people.sessions[i] = counts[i]
        people.signup_at[i] = _signup_session(rng, people, i, signups)


def _signup_session(rng: Random, people: _People, i: int, signups: _Weighted[int]) -> int:
    kind = people.kind[i]
    if kind & _VISITOR:
        return _NEVER
    if not kind & _ANON:
        return 0
    at = min(signups.pick(rng), people.sessions[i] - 1)
    if kind & _CONVERTER:
        # Demos, trials and purchases need an account: sign up before the first of them.
        at = min(at, _demo_session(people.purchase_at[i]))
    return at


def _demo_session(purchase_at: int) -> int:
    return max(1, purchase_at // 2)


def _schedule(rng: Random, people: _People, calendar: _Calendar) -> list[array[int]]:
    """The days of everyone's visits, as one list of visitors per day; sets `ident_day`."""
    buckets = [array("i") for _ in range(calendar.days)]
    weeks = {0: _WEEK_B2B, _SHOPPER: _WEEK_SHOP}
    for i in range(len(people)):
        week = weeks[people.kind[i] & _SHOPPER]
        if people.kind[i] & _CONVERTER:
            days = _converter_days(rng, people, i, week, calendar)
        else:
            days = _visit_days(rng, people.arrival[i], people.sessions[i], week, calendar)
        for day in days:
            buckets[day].append(i)
        if people.signup_at[i] < len(days):
            people.ident_day[i] = days[people.signup_at[i]]
    return buckets


def _visit_days(
    rng: Random, arrival: int, visits: int, week: Sequence[float], calendar: _Calendar
) -> list[int]:
    days = [arrival]
    span = calendar.days - arrival
    while len(days) < visits:
        if rng.random() < _BURST_SHARE:
            day = rng.choice(days) + int(rng.expovariate(1.0 / _BURST_GAP_DAYS))
        else:
            day = arrival + int(rng.random() * span)
        if day < calendar.days and rng.random() < week[calendar.weekday_of(day)]:
            days.append(day)
    days.sort()
    return days


def _converter_days(
    rng: Random, people: _People, i: int, week: Sequence[float], calendar: _Calendar
) -> list[int]:
    """Visits spread over the sales cycle, closer together towards the purchase, then after it."""
    arrival, purchase = people.arrival[i], people.purchase_day[i]
    before = people.purchase_at[i] - 1
    after = people.sessions[i] - people.purchase_at[i] - 1
    # The square root of a uniform leans towards 1: visits quicken before the purchase.
    research = [
        _day_in(rng, arrival, purchase, week=week, calendar=calendar, shape=math.sqrt)
        for _ in range(before)
    ]
    later = [
        _day_in(rng, purchase, calendar.days, week=week, calendar=calendar) for _ in range(after)
    ]
    return [arrival, *sorted(research), purchase, *sorted(later)]


def _day_in(
    rng: Random,
    low: int,
    high: int,
    *,
    week: Sequence[float],
    calendar: _Calendar,
    shape: Callable[[float], float] = float,
) -> int:
    """A day in [low, high) (`low` if that is empty), by the weekly rhythm; `shape` bends u."""
    if high <= low:
        return low
    while True:
        day = low + int(shape(rng.random()) * (high - low))
        if rng.random() < week[calendar.weekday_of(day)]:
            return day


# ---------------------------------------------------------------------------
# Campaigns
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Campaign:
    index: int
    name: str
    kind: str  # newsletter | promo | webinar
    day: int
    send: int  # epoch seconds
    webinar: str | None = None
    webinar_at: int = 0

    @property
    def b2b_only(self) -> bool:
        return self.kind == "webinar"

    @property
    def click_rate(self) -> float:
        return _CLICK_RATE[self.kind]

    @property
    def events_per_open(self) -> float:
        clicks = self.click_rate * (2 + _CLICK_SECOND_PAGE)  # a click, one or two pages
        if self.webinar:
            clicks += self.click_rate * _WEBINAR_ATTEND
        return 1 + clicks + _UNSUBSCRIBE_RATE


def _campaigns(calendar: _Calendar) -> list[_Campaign]:
    """The sending calendar: fortnightly newsletters, monthly promotions and webinars."""
    found: list[_Campaign] = []
    for day in range(calendar.days):
        kind = _campaign_kind(datetime.fromisoformat(calendar.prefixes[day][:-1]))
        if kind is None:
            continue
        send = calendar.first + day * _DAY + _SEND_HOUR[kind] * _HOUR
        if calendar.start <= send < calendar.end:
            found.append(_campaign(len(found), kind, day, send, calendar))
    return found


def _campaign_kind(date: datetime) -> str | None:
    weekday, day = date.weekday(), date.day
    if weekday == 1 and date.isocalendar().week % 2 == 0:  # Tuesday of even ISO weeks
        return "newsletter"
    if weekday == 3 and day <= 7:  # the first Thursday of the month
        return "promo"
    if weekday == 2 and 15 <= day <= 21:  # the third Wednesday
        return "webinar"
    return None


def _campaign(index: int, kind: str, day: int, send: int, calendar: _Calendar) -> _Campaign:
    date = calendar.prefixes[day][:-1]
    if kind != "webinar":
        return _Campaign(index, f"{kind}-{date}", kind, day, send)
    held = day + _WEBINAR_DELAY_DAYS
    held_at = calendar.first + held * _DAY + _WEBINAR_HOUR * _HOUR
    held_date = (to_datetime(held_at * MICROS)).strftime("%Y-%m-%d")
    return _Campaign(
        index, f"webinar-invite-{date}", kind, day, send, f"webinar-{held_date}", held_at
    )


def _audiences(people: _People, campaigns: Sequence[_Campaign], by_day: Sequence[int]) -> list[int]:
    """How many contacts each campaign reaches: those identified before its day."""
    days = max((c.day for c in campaigns), default=0) + 2
    new = [[0] * days, [0] * days]  # per day: business buyers, shoppers
    for i in range(people.contacts):
        day = by_day[i]
        if day < days - 1:
            new[people.kind[i] & _SHOPPER][day + 1] += 1
    known = [list(accumulate(row)) for row in new]
    return [known[0][c.day] + (0 if c.b2b_only else known[1][c.day]) for c in campaigns]


def _email_load(campaigns: Sequence[_Campaign], audiences: Sequence[int]) -> float:
    """Email events per unit of open rate."""
    return sum(a * c.events_per_open for c, a in zip(campaigns, audiences, strict=True))


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------


def _generate(
    contacts: int, events: int, rng: Random, calendar: _Calendar
) -> Iterator[dict[str, Any]]:
    people = _draw_people(rng, contacts, calendar)
    campaigns = _campaigns(calendar)
    available = events - _fixed_events(people)
    # Arrival days are the earliest identification days, so this load is the
    # most email the campaigns could bring: it caps the email share.
    ceiling = _email_load(campaigns, _audiences(people, campaigns, people.arrival))
    email = min(_EMAIL_SHARE * available, _MAX_OPEN_RATE * ceiling)
    _allocate_sessions(rng, people, round((available - email) / _SESSION_MEAN))
    buckets = _schedule(rng, people, calendar)
    audiences = _audiences(people, campaigns, people.ident_day)
    load = _email_load(campaigns, audiences)
    open_rate = min(_MAX_OPEN_RATE, email / load) if load else 0.0
    opens = [round(open_rate * a) for a in audiences]
    world = _World(rng, people, calendar, buckets=buckets, campaigns=campaigns, opens=opens)
    # Ids in output order: `e00000001`, ...; fixed width so that string order
    # is numeric order, with room for the few percent the log may run over.
    id_format = f"e%0{max(8, len(str(events * 2)))}d"
    for number, record in enumerate(_days(world, calendar), 1):
        yield _event(id_format % number, record, calendar)


def _days(world: _World, calendar: _Calendar) -> Iterator[_Record]:
    for day in range(calendar.days):
        yield from world.day(day)


def _event(event_id: str, record: _Record, calendar: _Calendar) -> dict[str, Any]:
    t, _, kind, contact_id, anonymous_id, properties, traits = record
    out: dict[str, Any] = {"id": event_id, "type": kind}
    if contact_id is not None:
        out["contact_id"] = contact_id
    if anonymous_id is not None:
        out["anonymous_id"] = anonymous_id
    out["timestamp"] = calendar.stamp(t)
    if properties is not None:
        out["properties"] = properties
    if traits is not None:
        out["traits"] = traits
    return out


@dataclass(frozen=True, slots=True)
class _Product:
    sku: str
    url: str
    price: float
    category: str


def _catalogue(rng: Random) -> list[list[_Product]]:
    """Each department's products, most popular first."""
    shelves = []
    for category, prefix, median, words in _CATEGORIES:
        shelf = []
        for n in range(_PRODUCTS_PER_CATEGORY):
            price = round(median * rng.lognormvariate(0.0, _PRICE_SIGMA)) - 0.01
            slug = f"{words[n % len(words)]}-{100 + n}"
            shelf.append(
                _Product(
                    f"{prefix}-{1000 + n}", f"{_SITE}/product/{slug}", max(price, 4.99), category
                )
            )
        shelves.append(shelf)
    return shelves


@dataclass(frozen=True, slots=True)
class _Company:
    name: str
    domain: str
    employees: int
    industry: str


class _Companies:
    """Companies by index. Only head counts are stored (names follow from the index):
    half a million contacts mean over 100,000 companies, and as objects they
    would only slow the garbage collector down."""

    def __init__(self, rng: Random, count: int) -> None:
        mu = math.log(_EMPLOYEES_MEDIAN)
        self.employees = array(
            "i",
            (
                max(1, min(_EMPLOYEES_MAX, int(rng.lognormvariate(mu, _EMPLOYEES_SIGMA))))
                for _ in range(count)
            ),
        )

    def __getitem__(self, index: int) -> _Company:
        words, kinds = len(_COMPANY_WORDS), len(_COMPANY_KINDS)
        word = _COMPANY_WORDS[index % words]
        kind, industry = _COMPANY_KINDS[index // words % kinds]
        # Names repeat after every word-kind pair; a number keeps domains apart.
        lap = index // (words * kinds)
        domain = f"{word}{kind}{lap or ''}".lower() + ".example"
        return _Company(f"{word} {kind}", domain, self.employees[index], industry)


def _urls(path: str, slugs: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{_SITE}{path}{slug}" for slug in slugs)


class _World:
    """The simulation: runs the plan day by day and records what people do."""

    def __init__(
        self,
        rng: Random,
        people: _People,
        calendar: _Calendar,
        *,
        buckets: list[array[int]],
        campaigns: Sequence[_Campaign],
        opens: Sequence[int],
    ) -> None:
        self.rng = rng
        self.people = people
        self.calendar = calendar
        self.buckets = buckets
        self.campaigns: dict[int, list[_Campaign]] = {}
        for campaign in campaigns:
            self.campaigns.setdefault(campaign.day, []).append(campaign)
        self.opens = opens
        n = len(people)
        self.state = bytearray(n)
        self.visits = array("i", [0]) * n
        self.busy_until = array("q", [0]) * n
        self.propensity = list(accumulate(_email_propensity(people, i) for i in range(n)))
        self.contact_format = f"c%0{max(6, len(str(people.contacts - 1)))}d"
        self.anon_offset = rng.getrandbits(48)
        self.shelves = _catalogue(rng)
        companies = max(1, people.contacts // _CONTACTS_PER_COMPANY)
        self.companies = _Companies(rng, companies)
        self.hours = [_hour_table(offset) for _, _, offset, _ in _COUNTRIES]
        self.emitted = 0
        self.room = 0
        self.today: list[_Record] = []
        self.today_end = 0  # the first second after the day being generated
        self.start, self.end = calendar.start, calendar.end
        self.pending: dict[int, list[_Record]] = {}
        self._session_state(source=None)
        self._tables()

    # -- the day loop --------------------------------------------------------

    def day(self, day: int) -> list[_Record]:
        """Everything that happens on `day`, sorted; events spilling into later days wait."""
        self.today_end = self.calendar.first + (day + 1) * _DAY
        self.today = self.pending.pop(day, [])
        for campaign in self.campaigns.get(day, ()):
            self._send(campaign)
        for start, i in self._starts(day):
            self._session(i, start)
        self.today.sort()
        return self.today

    def _starts(self, day: int) -> list[tuple[int, int]]:
        rng = self.rng
        midnight = self.calendar.first + day * _DAY
        country = self.people.country
        starts = [
            (midnight + self.hours[country[i]].pick(rng) * _HOUR + int(rng.random() * _HOUR), i)
            for i in self.buckets[day]
        ]
        self.buckets[day] = array("i")  # this day's plan is spent: free it
        starts.sort()
        return starts

    def _emit(
        self,
        t: int,
        i: int,
        kind: str,
        properties: dict[str, Any] | None = None,
        traits: dict[str, Any] | None = None,
        *,
        both: bool = False,
    ) -> None:
        seq = self.emitted  # ties in time keep the order of generation
        self.emitted = seq + 1
        if t < self.start or t >= self.end:
            return
        record: _Record
        if self.state[i] & _KNOWN:
            anonymous_id = self.anonymous_id(i) if both else None
            record = (t, seq, kind, self.contact_format % i, anonymous_id, properties, traits)
        else:
            record = (t, seq, kind, None, self.anonymous_id(i), properties, traits)
        if t < self.today_end:
            self.today.append(record)
        else:
            self.pending.setdefault((t - self.calendar.first) // _DAY, []).append(record)

    def anonymous_id(self, i: int) -> str:
        # An odd multiplier is a bijection modulo 2**48: unique ids that look random.
        return f"a-{(i * 0x9E3779B97F4B + self.anon_offset) % (1 << 48):012x}"

    # -- email ---------------------------------------------------------------

    def _send(self, campaign: _Campaign) -> None:
        for i in self._openers(self.opens[campaign.index], b2b_only=campaign.b2b_only):
            self._open(i, campaign)

    def _openers(self, wanted: int, *, b2b_only: bool) -> list[int]:
        """Distinct known, subscribed contacts, the more active ones more likely."""
        rng, state, kind = self.rng, self.state, self.people.kind
        cum, total, last = self.propensity, self.propensity[-1], len(self.propensity) - 1
        chosen: dict[int, None] = {}  # a set in insertion order, for determinism
        tries = 20 * wanted + 100  # bounded, in case fewer are eligible than wanted
        while len(chosen) < wanted and tries:
            tries -= 1
            i = bisect(cum, rng.random() * total, 0, last)
            if state[i] & (_KNOWN | _UNSUBSCRIBED) != _KNOWN or i in chosen:
                continue
            if b2b_only and kind[i] & _SHOPPER:
                continue
            chosen[i] = None
        return list(chosen)

    def _open(self, i: int, campaign: _Campaign) -> None:
        rng = self.rng
        fast = rng.random() < _OPEN_FAST_SHARE
        delay = rng.expovariate(1.0 / (_OPEN_FAST_MEAN if fast else _OPEN_SLOW_MEAN))
        t = campaign.send + 60 + int(min(delay, _OPEN_MAX))
        self._emit(t, i, "email_open", {"campaign": campaign.name})
        draw = rng.random()
        if draw < campaign.click_rate:
            self._click(i, campaign, t + _exp_gap(rng, _ACTION_GAP))
        elif draw < campaign.click_rate + _UNSUBSCRIBE_RATE:
            self._emit(
                t + _exp_gap(rng, _ACTION_GAP), i, "email_unsubscribe", {"campaign": campaign.name}
            )
            self.state[i] |= _UNSUBSCRIBED

    def _click(self, i: int, campaign: _Campaign, t: int) -> None:
        rng = self.rng
        url = self._click_url(i, campaign)
        self._emit(t, i, "email_click", {"campaign": campaign.name, "url": url})
        utm = {"source": "newsletter", "medium": "email", "campaign": campaign.name}
        t += _exp_gap(rng, _ACTION_GAP)
        self._emit(t, i, "page_view", {"url": url, "utm": utm})
        if rng.random() < _CLICK_SECOND_PAGE:
            self._emit(t + _exp_gap(rng, _PAGE_GAP), i, "page_view", {"url": self._next_page(i)})
        if campaign.webinar and rng.random() < _WEBINAR_ATTEND:
            joined = campaign.webinar_at + rng.randrange(-300, 900)
            self._emit(joined, i, "webinar_attended", {"webinar": campaign.webinar})

    def _click_url(self, i: int, campaign: _Campaign) -> str:
        if campaign.webinar:
            return f"{_SITE}/blog/{campaign.webinar}"
        if campaign.kind == "promo":
            if self.people.kind[i] & _SHOPPER:
                return self._product(i).url
            return self.pricing
        return _popular(self.blog, self.rng)

    def _next_page(self, i: int) -> str:
        if self.people.kind[i] & _SHOPPER:
            return self._product(i).url
        pages = self.docs if self.rng.random() < 0.5 else self.features  # how, or what
        return _popular(pages, self.rng)

    # -- sessions ------------------------------------------------------------

    def _session_state(self, source: dict[str, Any] | None) -> None:
        """Reset what one session remembers: its entry source and the cart."""
        self.source = source
        self.cart_value = 0.0
        self.cart_items = 0
        self.last_product: _Product | None = None

    def _session(self, i: int, start: int) -> None:
        rng = self.rng
        t = max(start, self.busy_until[i])
        visit = self.visits[i]
        self.visits[i] = visit + 1
        self._session_state(self._source())
        if visit == 0 and not self.people.kind[i] & _ANON:
            t = self._identify(i, t)  # a known contact: recognised from the first visit
        landing, moves = self._intent(i, visit)
        # The session's size counts its events, so the log's total is planned
        # exactly; identify, sign-up and milestones come on top (budgeted apart).
        self.room = self._session_size()
        t = self._move(landing.pick(rng), i, t)
        buying = visit == self.people.purchase_at[i]
        while self.room > 0:
            t += _exp_gap(rng, _PAGE_GAP)
            if self.room == 1 and self.cart_items and not buying and rng.random() < _ABANDON_RATE:
                # The visit is over only when the shop notices: no sign-up can come before.
                t += _exp_gap(rng, _ABANDON_DELAY)
                self._emit(t, i, "cart_abandoned", {"value": round(self.cart_value, 2)})
                break
            t = self._move(moves.pick(rng), i, t)
        t = self._milestones(i, visit, t)
        self.busy_until[i] = t + _SESSION_REST

    def _move(self, move: _Move, i: int, t: int) -> int:
        """Run one move; the events it emitted come off the session's room."""
        before = self.emitted
        t = move(i, t)
        self.room -= self.emitted - before
        return t

    def _session_size(self) -> int:
        # Geometric with mean _SESSION_MEAN, by inversion: 1 + floor(ln(u) / ln(1 - 1/mean)).
        size = 1 + int(math.log(1.0 - self.rng.random()) / _SESSION_LOG_Q)
        return min(size, _SESSION_MAX)

    def _source(self) -> dict[str, Any] | None:
        """The landing page's referrer and utm tags; None for a direct visit."""
        source = self.sources.pick(self.rng)
        if source.referrer is None:
            return None
        props: dict[str, Any] = {"referrer": source.referrer}
        if source.utm_source is not None:
            campaign = self.rng.choice(source.utm_campaigns)
            props["utm"] = {
                "source": source.utm_source,
                "medium": source.utm_medium,
                "campaign": campaign,
            }
        return props

    def _intent(self, i: int, visit: int) -> tuple[_Weighted[_Move], _Weighted[_Move]]:
        """Landing pages and moves of this visit: what the person is here to do."""
        kind = self.people.kind[i]
        purchase = self.people.purchase_at[i]
        if kind & _SHOPPER:
            if kind & _CONVERTER and purchase - 1 <= visit <= purchase:
                return self.shop_landing, self.shop_buying
            if kind & _CONVERTER and visit > purchase:
                return self.shop_landing, self.shop_loyal
            return self.shop_landing, self.shop_browsing
        if kind & _JOB_SEEKER and self.rng.random() < _JOB_HUNT_VISITS:
            return self.job_landing, self.job_hunting
        if kind & _CONVERTER:
            if visit > purchase:
                return self.b2b_landing, self.onboarding
            if visit >= _RESEARCH_PHASE * purchase:
                return self.eval_landing, self.evaluating
            return self.b2b_landing, self.browsing
        if self.rng.random() < _EVALUATE_SHARE:
            return self.eval_landing, self.evaluating
        return self.b2b_landing, self.browsing

    def _milestones(self, i: int, visit: int, t: int) -> int:
        """Sign-ups and a converter's planned steps, at the end of the visit they fall in."""
        people = self.people
        if visit == people.signup_at[i] and people.kind[i] & _ANON:
            t += _exp_gap(self.rng, _ACTION_GAP)
            self.state[i] |= _KNOWN
            self._emit(t, i, "signup", both=True)
            t = self._identify(i, t + 1)
        if not people.kind[i] & _CONVERTER:
            return t
        purchase = people.purchase_at[i]
        if people.kind[i] & _SHOPPER:
            return self._checkout(i, t) if visit == purchase else t
        return self._software_steps(i, visit, purchase, t)

    def _software_steps(self, i: int, visit: int, purchase: int, t: int) -> int:
        """Demo half-way to the purchase, trial the visit before it, then the subscription."""
        if visit == _demo_session(purchase):
            t = self._request_demo(i, t + _exp_gap(self.rng, _ACTION_GAP))
        if visit == purchase - 1:
            t = self._start_trial(i, t + _exp_gap(self.rng, _ACTION_GAP))
        if visit == purchase:
            t += _exp_gap(self.rng, _ACTION_GAP)
            plan = self._plan_of(i)
            # Enterprise deals are negotiated: one to three times the list price.
            value = _PLAN_PRICE[plan] * (1 + self.rng.randrange(3 if plan == "enterprise" else 1))
            self._emit(t, i, "purchase", {"value": value, "category": "subscription"})
        return t

    # -- identity ------------------------------------------------------------

    def _identify(self, i: int, t: int) -> int:
        self.state[i] |= _KNOWN
        self._emit(t, i, "identify", traits=self._traits(i))
        return t + 1

    def _traits(self, i: int) -> dict[str, Any]:
        rng, people = self.rng, self.people
        kind = people.kind[i]
        code, _, _, phone_prefix = _COUNTRIES[people.country[i]]
        company = self.companies[people.company[i]]
        traits: dict[str, Any]
        if kind & _SHOPPER:
            traits = {"email": self._email(_FREE_MAIL_SHOPPER, company.domain), "country": code}
        else:
            free = _FREE_MAIL_CONVERTER if kind & _CONVERTER else _FREE_MAIL_B2B
            titles = self.titles_senior if kind & _CONVERTER else self.titles
            traits = {
                "email": self._email(free, company.domain),
                "job_title": titles.pick(rng),
                "country": code,
                "company": {"name": company.name, "employees": company.employees},
                "industry": company.industry,
            }
        if rng.random() < _PHONE_SHARE:
            traits["phone"] = self._phone(phone_prefix)
        return traits

    def _email(self, free_share: float, work_domain: str) -> str:
        rng = self.rng
        name = f"{rng.choice(_FIRST_NAMES)}.{rng.choice(_LAST_NAMES)}"
        return f"{name}@{self.free_mail.pick(rng) if rng.random() < free_share else work_domain}"

    def _phone(self, prefix: str) -> str:
        return f"+{prefix} {self.rng.randrange(100_000_000, 1_000_000_000)}"

    def _plan_of(self, i: int) -> str:
        employees = self.companies.employees[self.people.company[i]]
        for limit, plan in _PLAN_LIMITS:
            if employees < limit:
                return plan
        return "enterprise"

    # -- moves: each emits one or two events from time t, returns the last time --

    def _page(self, i: int, t: int, url: str) -> int:
        props: dict[str, Any] = {"url": url}
        if self.source is not None:  # only the landing page carries where the visit came from
            props.update(self.source)
            self.source = None
        self._emit(t, i, "page_view", props)
        return t

    def _home(self, i: int, t: int) -> int:
        return self._page(i, t, self.home)

    def _pricing(self, i: int, t: int) -> int:
        return self._page(i, t, self.pricing)

    def _integrations(self, i: int, t: int) -> int:
        return self._page(i, t, self.integrations)

    def _careers(self, i: int, t: int) -> int:
        return self._page(i, t, self.careers)

    def _blog(self, i: int, t: int) -> int:
        return self._page(i, t, _popular(self.blog, self.rng))

    def _docs(self, i: int, t: int) -> int:
        return self._page(i, t, _popular(self.docs, self.rng))

    def _case_study(self, i: int, t: int) -> int:
        return self._page(i, t, _popular(self.case_studies, self.rng))

    def _feature(self, i: int, t: int) -> int:
        return self._page(i, t, _popular(self.features, self.rng))

    def _form(self, i: int, t: int, form: str) -> int:
        """A form of a known contact; an anonymous one reads the pricing page instead."""
        if not self.state[i] & _KNOWN:
            return self._pricing(i, t)
        t += _exp_gap(self.rng, _ACTION_GAP)
        self._emit(t, i, "form_submit", {"form": form})
        return t

    def _newsletter(self, i: int, t: int) -> int:
        return self._form(i, t, "newsletter")

    def _contact_form(self, i: int, t: int) -> int:
        return self._form(i, t, "contact")

    def _ebook(self, i: int, t: int) -> int:
        if not self.state[i] & _KNOWN:
            return self._blog(i, t)
        t = self._form(i, t, "ebook")
        if self.room < 2:  # the download link goes by email, and is never clicked
            return t
        t += _exp_gap(self.rng, _ACTION_GAP)
        self._emit(t, i, "download", {"asset": _popular(_ASSETS, self.rng)})
        return t

    def _request_demo(self, i: int, t: int) -> int:
        self.state[i] |= _DEMO_DONE
        self._emit(t, i, "form_submit", {"form": "demo"})
        props = None  # canonical events leave out empty properties
        if self.rng.random() < _DEMO_SOURCE_SHARE:
            props = {"source": self.demo_sources.pick(self.rng)}
        self._emit(t + 2, i, "demo_request", props)
        return t + 2

    def _start_trial(self, i: int, t: int) -> int:
        self.state[i] |= _TRIAL_DONE
        self._emit(t, i, "trial_started", {"plan": self._plan_of(i)})
        return t

    def _stray_demo(self, i: int, t: int) -> int:
        """A demo request that leads nowhere (converters get theirs on schedule)."""
        if self.state[i] & (_KNOWN | _DEMO_DONE) != _KNOWN or self.people.kind[i] & _CONVERTER:
            return self._pricing(i, t)
        return self._request_demo(i, t + _exp_gap(self.rng, _ACTION_GAP))

    def _stray_trial(self, i: int, t: int) -> int:
        if self.state[i] & (_KNOWN | _TRIAL_DONE) != _KNOWN or self.people.kind[i] & _CONVERTER:
            return self._pricing(i, t)
        return self._start_trial(i, t + _exp_gap(self.rng, _ACTION_GAP))

    def _profile_update(self, i: int, t: int) -> int:
        """A later `identify` with one changed trait: a new job, a phone added or removed."""
        if not self.state[i] & _KNOWN:
            return self._home(i, t)
        rng = self.rng
        draw = rng.random()
        if draw < 0.6 and not self.people.kind[i] & _SHOPPER:
            change: dict[str, Any] = {"job_title": self.titles.pick(rng)}
        elif draw < 0.9:
            change = {"phone": self._phone(_COUNTRIES[self.people.country[i]][3])}
        else:
            change = {"phone": None}  # a null removes the trait (spec section 1)
        self._emit(t, i, "identify", traits=change)
        return t

    def _stage_set(self, i: int, t: int) -> int:
        """A salesperson moving a contact by hand, from the CRM, a few minutes later."""
        if not self.state[i] & _KNOWN:
            return self._home(i, t)
        stages = self.stages_shop if self.people.kind[i] & _SHOPPER else self.stages_b2b
        stage = stages.pick(self.rng)
        self._emit(t + self.rng.randrange(60, 900), i, "stage_set", {"stage": stage})
        return t

    # -- shop moves --

    def _product(self, i: int) -> _Product:
        rng = self.rng
        if rng.random() < _FAVOURITE_SHARE:
            shelf = self.people.favourite[i]
        else:
            shelf = rng.randrange(len(self.shelves))
        return _popular(self.shelves[shelf], rng)

    def _view_product(self, i: int, t: int) -> int:
        product = self._product(i)
        self.last_product = product
        self._page(i, t, product.url)
        if self.room < 2:  # the visitor left before the product tracker fired
            return t
        t += 1 + self.rng.randrange(3)
        props = {"category": product.category, "sku": product.sku, "price": product.price}
        self._emit(t, i, "product_viewed", props)
        return t

    def _update_cart(self, i: int, t: int) -> int:
        rng = self.rng
        if self.cart_items and rng.random() < _EMPTY_CART_SHARE:
            self.cart_value, self.cart_items = 0.0, 0
        else:
            product = self.last_product or self._product(i)
            self.cart_value += product.price
            self.cart_items += 1
        t += _exp_gap(rng, _ACTION_GAP)
        value = round(self.cart_value, 2)
        self._emit(t, i, "cart_updated", {"value": value, "items": self.cart_items})
        return t

    def _repeat_purchase(self, i: int, t: int) -> int:
        if not self.cart_items:
            return self._update_cart(i, t)
        return self._pay(i, t + _exp_gap(self.rng, _ACTION_GAP))

    def _checkout(self, i: int, t: int) -> int:
        t = self._update_cart(i, t)
        return self._pay(i, t + _exp_gap(self.rng, _ACTION_GAP))

    def _pay(self, i: int, t: int) -> int:
        category = (self.last_product or self._product(i)).category
        self._emit(t, i, "purchase", {"value": round(self.cart_value, 2), "category": category})
        self.cart_value, self.cart_items = 0.0, 0
        return t

    # -- tables --------------------------------------------------------------

    def _tables(self) -> None:
        """URLs and the weighted tables of landing pages and moves for each intent."""
        self.home = f"{_SITE}/"
        self.pricing = f"{_SITE}/pricing"
        self.integrations = f"{_SITE}/integrations"
        self.careers = f"{_SITE}/careers"
        self.blog = _urls("/blog/", _BLOG)
        self.docs = _urls("/docs/", _DOCS)
        self.case_studies = _urls("/case-studies/", _CASE_STUDIES)
        self.features = _urls("/product/", _FEATURES)
        self.sources = _Weighted((source, source.weight) for source in _SOURCES)
        self.free_mail = _Weighted(_FREE_MAIL)
        self.titles = _Weighted((title, weight) for title, weight, _ in _JOB_TITLES)
        self.titles_senior = _Weighted(
            (title, weight * _SENIOR_BOOST if senior else weight)
            for title, weight, senior in _JOB_TITLES
        )
        self.demo_sources = _Weighted(_DEMO_SOURCES)
        self.stages_b2b = _Weighted(_STAGES_B2B)
        self.stages_shop = _Weighted(_STAGES_SHOP)
        self._b2b_tables()
        self._shop_tables()

    def _b2b_tables(self) -> None:
        # Weights are percent-like shares of the moves in a visit. Browsing is
        # reading (blog, docs); evaluating is pricing, integrations and proof
        # (case studies), with forms and the odd demo; onboarding is docs.
        self.b2b_landing: _Weighted[_Move] = _Weighted(
            [
                (self._home, 30),
                (self._blog, 42),
                (self._pricing, 7),
                (self._feature, 10),
                (self._docs, 8),
                (self._case_study, 3),
            ]
        )
        self.eval_landing: _Weighted[_Move] = _Weighted(
            [
                (self._home, 25),
                (self._pricing, 30),
                (self._feature, 20),
                (self._case_study, 10),
                (self._blog, 15),
            ]
        )
        self.job_landing: _Weighted[_Move] = _Weighted([(self._careers, 70), (self._home, 30)])
        self.browsing: _Weighted[_Move] = _Weighted(
            [
                (self._home, 12),
                (self._blog, 38),
                (self._docs, 14),
                (self._integrations, 5),
                (self._case_study, 4),
                (self._pricing, 5),
                (self._feature, 9),
                (self._careers, 1.2),
                (self._newsletter, 2.5),
                (self._ebook, 2.5),
                (self._contact_form, 0.3),
                (self._stray_demo, 0.25),
                (self._stray_trial, 0.15),
                (self._profile_update, 0.5),
                (self._stage_set, 0.05),
            ]
        )
        self.evaluating: _Weighted[_Move] = _Weighted(
            [
                (self._home, 4),
                (self._blog, 6),
                (self._docs, 12),
                (self._integrations, 12),
                (self._case_study, 12),
                (self._pricing, 30),
                (self._feature, 14),
                (self._ebook, 3),
                (self._contact_form, 2),
                (self._stray_demo, 1.5),
                (self._stray_trial, 1),
                (self._profile_update, 0.5),
                (self._stage_set, 0.2),
            ]
        )
        self.onboarding: _Weighted[_Move] = _Weighted(
            [
                (self._docs, 55),
                (self._integrations, 12),
                (self._home, 8),
                (self._blog, 10),
                (self._pricing, 3),
                (self._feature, 8),
                (self._profile_update, 1),
                (self._stage_set, 0.2),
            ]
        )
        self.job_hunting: _Weighted[_Move] = _Weighted(
            [(self._careers, 55), (self._home, 20), (self._blog, 20), (self._docs, 5)]
        )

    def _shop_tables(self) -> None:
        # Shoppers mostly look at products; carts are a few percent of moves,
        # more in the visits around a purchase; buyers come back and buy again.
        self.shop_landing: _Weighted[_Move] = _Weighted(
            [(self._home, 35), (self._view_product, 55), (self._blog, 10)]
        )
        self.shop_browsing: _Weighted[_Move] = _Weighted(
            [
                (self._home, 14),
                (self._blog, 8),
                (self._view_product, 60),
                (self._update_cart, 5),
                (self._newsletter, 1.5),
                (self._profile_update, 0.4),
                (self._careers, 0.3),
                (self._stage_set, 0.03),
            ]
        )
        self.shop_buying: _Weighted[_Move] = _Weighted(
            [(self._home, 5), (self._view_product, 60), (self._update_cart, 20), (self._blog, 3)]
        )
        self.shop_loyal: _Weighted[_Move] = _Weighted(
            [
                (self._home, 10),
                (self._view_product, 60),
                (self._update_cart, 10),
                (self._repeat_purchase, 4),
                (self._profile_update, 0.4),
                (self._stage_set, 0.3),
            ]
        )


def _email_propensity(people: _People, i: int) -> float:
    # Opening mail follows activity, softened (the square root): a quiet
    # subscriber still opens now and then. Converters read more closely.
    weight = math.sqrt(people.weight[i])
    return weight * 2.0 if people.kind[i] & _CONVERTER else weight


def _hour_table(offset: int) -> _Weighted[int]:
    """UTC hours of visits for people `offset` hours east of Greenwich."""
    return _Weighted((hour, _HOURS_LOCAL[(hour + offset) % 24]) for hour in range(24))


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------

_SUFFIXES: Final = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_COLUMNS: Final = ("id", "type", "contact_id", "anonymous_id", "timestamp", "properties", "traits")
# The property keys the generator writes and their Parquet types (nested:
# a dict). A number the generator writes as an int where the type is double
# reads back as a float of the same value, which every condition treats alike.
PROPERTIES: Final[dict[str, Any]] = {
    "asset": "string",
    "campaign": "string",
    "category": "string",
    "form": "string",
    "items": "int64",
    "plan": "string",
    "price": "double",
    "referrer": "string",
    "sku": "string",
    "source": "string",
    "stage": "string",
    "url": "string",
    "utm": {"source": "string", "medium": "string", "campaign": "string"},
    "value": "double",
    "webinar": "string",
}
_PROPERTY_KEYS: Final = frozenset(PROPERTIES)
# Events held as Python objects at once while writing: small, because many
# live objects make the garbage collector slow (a 64k batch cost 30% more
# time on ten million events).
_CHUNK: Final = 8_192
# Rows per Parquet row group, kept by Arrow off the Python heap: 64k rows of
# a few hundred bytes make groups big enough for readers to scan efficiently.
_ROW_GROUP: Final = 65_536


def _format_of(path: Path) -> str:
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ValueError(
            f"cannot tell the format of {path.name!r} from its name; "
            "use .jsonl, .ndjson or .parquet, or pass format="
        )
    return found


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _write_jsonl(events: Iterable[dict[str, Any]], path: Path) -> int:
    written = 0
    with path.open("wb") as out:
        for chunk in _batches(events, _CHUNK):
            out.writelines(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE) for event in chunk)
            written += len(chunk)
    return written


def _parquet_schema(*, typed: bool) -> Any:
    import pyarrow as pa

    kinds = {"string": pa.string(), "double": pa.float64(), "int64": pa.int64()}

    def struct(fields: dict[str, Any]) -> Any:
        return pa.struct(
            [
                pa.field(key, struct(kind) if isinstance(kind, dict) else kinds[kind])
                for key, kind in fields.items()
            ]
        )

    columns = {name: pa.string() for name in _COLUMNS}
    if typed:
        columns["timestamp"] = pa.timestamp("us", tz="UTC")
        columns["properties"] = struct(PROPERTIES)
    return pa.schema(
        [pa.field(name, kind, nullable=name != "id") for name, kind in columns.items()]
    )


def _write_parquet(events: Iterable[dict[str, Any]], path: Path, *, typed: bool) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema(typed=typed)
    written = 0
    group: list[Any] = []  # record batches of the row group being filled
    # zstd: smaller files than snappy at similar speed, read by every Parquet engine in use.
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for chunk in _batches(events, _CHUNK):
            group.append(pa.RecordBatch.from_pydict(_columns(chunk, typed=typed), schema=schema))
            written += len(chunk)
            if sum(batch.num_rows for batch in group) >= _ROW_GROUP:
                # Whole row groups out; the rest starts the next one (slices copy nothing).
                table = pa.Table.from_batches(group)
                full = table.num_rows - table.num_rows % _ROW_GROUP
                writer.write_table(table.slice(0, full), row_group_size=_ROW_GROUP)
                group = [batch for batch in table.slice(full).to_batches() if batch.num_rows]
        if group:
            writer.write_table(pa.Table.from_batches(group), row_group_size=_ROW_GROUP)
    return written


def _columns(chunk: Sequence[dict[str, Any]], *, typed: bool) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for name, cells in columns.items():
        if typed and name == "timestamp":
            cells.extend(parse_timestamp(event["timestamp"]) for event in chunk)
        elif typed and name == "properties":
            cells.extend(_struct_cell(event.get(name)) for event in chunk)
        elif name in ("properties", "traits"):
            cells.extend(_json_text(event.get(name)) for event in chunk)
        else:
            cells.extend(event.get(name) for event in chunk)
    return columns


def _struct_cell(properties: dict[str, Any] | None) -> dict[str, Any] | None:
    """Properties for the struct column, which would drop a key it has no field for."""
    if properties is not None and not properties.keys() <= _PROPERTY_KEYS:
        unknown = sorted(properties.keys() - _PROPERTY_KEYS)
        raise ValueError(f"properties {unknown} have no field in PROPERTIES; add them there")
    return properties


def _json_text(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
