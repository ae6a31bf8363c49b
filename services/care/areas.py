"""Care schedules: the area lists (/overdue, /upcoming, the CSV, the board's counts).

The database derives the due day for everyone at once (`_due_day`, the same rule as
services.care.rules.compute), counts and picks the lines, and each line shown is built
through `compute`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    String,
    and_,
    case,
    cast,
    literal,
    not_,
    null,
    or_,
    type_coerce,
    union_all,
)
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func

from models import CareKind, CareProfile, Person, Role, Status
from services import clock, tables
from services.care.items import ITEM_TABLE, ROW_COLUMNS, person_facts
from services.care.rules import (
    PRE_ARRIVAL_EXAM_DAYS,
    UPCOMING_DAYS,
    CareConfig,
    Due,
    ItemRow,
    PersonFacts,
    compute,
    policy_for,
    zone_of,
)
from services.care_policy import BAND_FLOOR, Band, BandPolicy, effective_policy
from services.postings import load_postings

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class AreaRow:
    person: PersonFacts
    due: Due
    today: date

    @property
    def overdue(self) -> bool:
        return self.due.due < self.today


def area_rows(
    session: Session,
    config: CareConfig,
    prefectures: frozenset[str] | None,
    *,
    horizon_days: int = UPCOMING_DAYS,
) -> list[AreaRow]:
    """Items overdue or due within `horizon_days`, in the visible prefectures (None: all),
    in `_DueItems.order`. The database picks them (`_due_items`); `compute` builds each
    row."""
    found = _due_items(session, config, prefectures, None, horizon_days, wide=True)
    items = found.items
    query = sa_select(*(items.c[name] for name in _LAYOUT)).order_by(*found.order(items))
    return [built for built, _ in found.rows(session, query) if built is not None]


@dataclass(frozen=True)
class AreaSummary:
    """What /overdue and /upcoming show: the first rows, and how many there are."""

    rows: list[AreaRow]  # the first `limit` rows, in area_rows' order
    counts: dict[str, int]  # rows per prefecture ("" without one)
    total: int


def area_summary(
    session: Session,
    config: CareConfig,
    prefectures: frozenset[str] | None,
    *,
    overdue: bool,
    limit: int,
    offset: int = 0,
) -> AreaSummary:
    """The rows of `area_rows` that are overdue (`overdue`) or upcoming (due within
    UPCOMING_DAYS, not overdue), counted per prefecture; only the `limit` from `offset`
    (a page of the chat's list) are built. One statement: the database counts and picks
    the rows (an admin's /overdue over 100,000 people counts about 18,000 overdue items
    and shows a page of them)."""
    first, last = (None, -1) if overdue else (0, UPCOMING_DAYS)
    found = _due_items(session, config, prefectures, first, last, wide=False)
    items = found.items
    area = func.coalesce(items.c.prefecture, "")
    counts = (
        sa_select(area.label("area"), func.count().label("in_area"))
        .group_by(area)
        .subquery("counts")
    )
    shown = (
        sa_select(items)
        .order_by(*found.order(items))
        .limit(limit)
        .offset(max(0, offset))
        .subquery("shown")
    )
    # one row per shown item with its prefecture's count, one per prefecture with none shown
    joined = counts.outerjoin(shown, func.coalesce(shown.c.prefecture, "") == counts.c.area)
    query = (
        found.with_facts(shown, joined)
        .add_columns(counts.c.area, counts.c.in_area)
        .order_by(*found.order(shown))
    )
    rows = []
    per_area: dict[str, int] = {}
    for built, row in found.rows(session, query):
        per_area[row.area] = row.in_area
        if built is not None:
            rows.append(built)
    return AreaSummary(rows, per_area, sum(per_area.values()))


_FACT_COLUMNS = (
    "id",
    "telegram_id",
    "language",
    "real_name",
    "display_name",
    "prefecture",
    "county",
    "posting_altitude_m",
    "assignment_start",
    "assignment_end",
)
# the columns `_DueItems.rows` reads: the person's facts, the item and its care_item row
_LAYOUT = (*_FACT_COLUMNS, "kind", "due", "today", *(f"item_{name}" for name in ROW_COLUMNS))
_PERSON = Person.__table__  # type: ignore[attr-defined]
_PROFILE = CareProfile.__table__  # type: ignore[attr-defined]
_KINDS = {kind.value: kind for kind in CareKind}


@dataclass(frozen=True)
class _DueItems:
    """`_due_items`: the items (a CTE), and how their rows are ordered and built."""

    items: Any  # id (the person's), prefecture, name, kind, due, today (wide: _LAYOUT too)
    policy: dict[Band, BandPolicy]
    dialect: str

    def order(self, items: Any) -> list[Any]:
        """`area_rows`' order of `items` (the CTE or a subquery of it): prefecture ("" without
        one), due day, name, item, person; strings in code-point order (Python's), also where
        the database's default collation is a language's."""
        texts: list[Any] = [func.coalesce(items.c.prefecture, ""), items.c.name, items.c.kind]
        if self.dialect == "postgresql":
            texts = [value.collate("C") for value in texts]
        prefecture, name, kind = texts
        return [prefecture, items.c.due, name, kind, items.c.id]

    def with_facts(self, items: Any, joined: Any) -> Any:
        """A SELECT of `_LAYOUT` for `items` (a subquery of the narrow CTE), joining the
        person and care_item rows to `joined`, a FROM clause that outer-joins `items`."""
        joined = joined.outerjoin(_PERSON, _PERSON.c.id == items.c.id).outerjoin(
            ITEM_TABLE,
            and_(ITEM_TABLE.c.person_id == items.c.id, ITEM_TABLE.c.kind == items.c.kind),
        )
        columns = _layout(_PERSON, ITEM_TABLE, items.c.kind, items.c.due, items.c.today)
        return sa_select(*columns).select_from(joined)

    def rows(self, session: Session, query: Any) -> Iterator[tuple[AreaRow | None, Any]]:
        """The result rows of `query` (`_LAYOUT`, maybe with further columns), each with its
        AreaRow built by `compute` (None: an outer join found no item)."""
        facts_width, items_at = len(_FACT_COLUMNS), len(_FACT_COLUMNS) + 3
        for row in session.execute(query):
            kind_value, day, today = row[facts_width:items_at]
            if kind_value is None:
                yield None, row
                continue
            facts = person_facts(row[:facts_width])
            kind = _KINDS[kind_value]
            item = None
            if row[items_at] is not None:
                item = ItemRow(*row[items_at : items_at + len(ROW_COLUMNS)])
                item.kind = kind
            due = compute(facts, kind, policy_for(self.policy, facts)[1], item, today)
            if due is None or due.due != day:  # tests keep them equal; never a failed list
                log.error("care: the database's due day differs from compute's (%s)", kind)
                if due is None:
                    continue
            yield AreaRow(facts, due, today), row


def _layout(person: Any, item: Any, kind: Any, due: Any, today: Any) -> list[Any]:
    """`_LAYOUT`, from the person table, a care_item table and the item's columns."""
    return [
        *(person.c[name] for name in _FACT_COLUMNS),
        kind.label("kind"),
        due.label("due"),
        today.label("today"),
        *(item.c[name].label(f"item_{name}") for name in ROW_COLUMNS),
    ]


def _due_items(
    session: Session,
    config: CareConfig,
    prefectures: frozenset[str] | None,
    first: int | None,
    last: int,
    *,
    wide: bool,
) -> _DueItems:
    """The items of the people of the visible prefectures (None: all) due from `first` days
    after the person's today (None: any day before) to `last` days after it, both included,
    as a CTE: one row per item with the person's id, prefecture and name, `kind`, `due`
    (`_due_day`) and the person's `today`; `wide`: with all of `_LAYOUT`, for a list of all
    the items (a narrow CTE is cheaper to count and sort: the shown rows join the rest).
    One SELECT per kind, UNION ALL."""
    policy = effective_policy(session, config.policy_override)
    dialect = session.get_bind().dialect.name
    today = _LocalToday.now(session, config)
    person = _PERSON
    conditions = [
        person.c.status == Status.ACTIVE.value,
        person.c.role != Role.CONTACT.value,
        person.c.assignment_start.is_not(None),
        person.c.posting_altitude_m.is_not(None),
        not_(_low_altitude_posting()),
        or_(person.c.assignment_end.is_(None), person.c.assignment_end >= today.plus(0)),
    ]  # schedule_state "ok"
    if prefectures is not None:
        conditions.append(person.c.prefecture.in_(sorted(prefectures)))
    name = func.coalesce(
        func.nullif(person.c.real_name, ""),
        func.nullif(person.c.display_name, ""),
        cast(person.c.telegram_id, String),
    )  # PersonFacts.name
    selects = []
    for kind in CareKind:
        item = ITEM_TABLE.alias(f"{kind.value}_item")
        due = _due_day(kind, policy, item, dialect)
        window = [due <= today.plus(last)]
        if first is not None:
            window.append(due >= today.plus(first))
        joined = person.outerjoin(
            item, and_(item.c.person_id == person.c.id, item.c.kind == kind.value)
        ).outerjoin(_PROFILE, _PROFILE.c.person_id == person.c.id)
        kind_value = literal(kind.value, String)
        if wide:
            columns = [*_layout(person, item, kind_value, due, today.plus(0)), name.label("name")]
        else:
            columns = [
                person.c.id,
                person.c.prefecture,
                name.label("name"),
                kind_value.label("kind"),
                due.label("due"),
                today.plus(0).label("today"),
            ]
        selects.append(sa_select(*columns).select_from(joined).where(*conditions, *window))
    return _DueItems(union_all(*selects).cte("due_item"), policy, dialect)


@dataclass(frozen=True)
class _LocalToday:
    """Each person's today: in their care profile's time zone, or in `config.zone`."""

    default: date
    other: dict[str, date]  # the time zones in use whose today is not the default's

    @classmethod
    def now(cls, session: Session, config: CareConfig) -> _LocalToday:
        now = clock.now()
        default = now.astimezone(config.zone).date()
        names = session.execute(
            sa_select(_PROFILE.c.timezone).where(_PROFILE.c.timezone.is_not(None)).distinct()
        ).scalars()
        other = {}
        for name in names:
            today = now.astimezone(zone_of(name, config.zone)).date()
            if today != default:
                other[name] = today
        return cls(default, other)

    def plus(self, days: int) -> Any:
        """Each person's today plus `days`, as a SQL expression on care_profile (joined)."""
        default = literal(self.default + timedelta(days=days), Date)
        if not self.other:
            return default
        return case(
            *(
                (_PROFILE.c.timezone == name, literal(today + timedelta(days=days), Date))
                for name, today in sorted(self.other.items())
            ),
            else_=default,
        )


def _due_day(kind: CareKind, policy: dict[Band, BandPolicy], item: Any, dialect: str) -> Any:
    """`compute`'s due day of a person's `kind` item (`base_due`, then the booking), as a
    SQL expression on the person table and `item` (their care_item row, outer-joined): NULL
    when nothing is due. For people whose schedule is on (`schedule_state` "ok": the
    caller's condition)."""
    person = _PERSON
    start, end = person.c.assignment_start, person.c.assignment_end
    oldest = start
    if kind == CareKind.EXAM:
        oldest = _shift_days(dialect, start, -PRE_ARRIVAL_EXAM_DAYS)
    done = case((item.c.last_done >= oldest, item.c.last_done))  # counts for this posting
    by_band = []
    for band, within in _band_ranges():
        band_policy = policy.get(band)
        day = None if band_policy is None else _policy_day(kind, band_policy, done, dialect)
        by_band.append((and_(*within), cast(null(), Date) if day is None else day))
    by_policy = case(*by_band)
    override, booked = item.c.override_due, item.c.booked_for
    due = case(
        (override.is_not(None), func.coalesce(booked, override)),
        (or_(end.is_(None), by_policy <= end), func.coalesce(booked, by_policy)),
    )
    return type_coerce(due, Date)


def _policy_day(kind: CareKind, policy: BandPolicy, done: Any, dialect: str) -> Any | None:
    """`base_due` by the band's interval (`done`: the last done that counts, or NULL), or
    None when the band has no such schedule."""
    start = _PERSON.c.assignment_start
    if kind == CareKind.REST:
        every = policy.rest_every_days
        return None if every is None else _shift_days(dialect, func.coalesce(done, start), every)
    every, first = policy.exam_every_days, policy.exam_first_days
    if first is None:
        first = every
    if first is None:
        return None
    return case(
        (done.is_not(None), null() if every is None else _shift_days(dialect, done, every)),
        else_=_shift_days(dialect, start, first),
    )


def _low_altitude_posting() -> Any:
    """`is_low_altitude_posting` as a condition on the person table (never NULL)."""
    postings = load_postings()
    counties = [c for p in postings.prefectures() for c in postings.counties(p.code)]
    low_counties = sorted(c.code for c in counties if c.low_altitude)
    low_prefectures = sorted(p.code for p in postings.prefectures() if p.low_altitude)
    county, prefecture = col(Person.county), col(Person.prefecture)
    by_prefecture = or_(county.is_(None), county == "")
    if counties:
        by_prefecture = or_(by_prefecture, county.not_in(sorted(c.code for c in counties)))
    return or_(  # the prefecture first: rarely low, it spares most rows the county list
        and_(county.is_not(None), county.in_(low_counties or [""])),
        and_(prefecture.is_not(None), prefecture.in_(low_prefectures or [""]), by_prefecture),
    )


def _band_ranges() -> list[tuple[Band, list[Any]]]:
    """Each band and its altitude conditions (on the person table)."""
    bands = sorted(BAND_FLOOR.items(), key=lambda pair: pair[1])
    altitude = col(Person.posting_altitude_m)
    ranges = []
    for index, (band, floor) in enumerate(bands):
        within = [altitude >= floor] if index else []
        if index + 1 < len(bands):
            within.append(altitude < bands[index + 1][1])
        ranges.append((band, within))
    return ranges


def _shift_days(dialect: str, day: Any, days: int) -> Any:
    """A DATE expression plus `days`, computed by the database."""
    if dialect == "sqlite":  # dates are ISO text there
        return func.date(day, f"{days:+d} days")
    return day + literal(days, Integer)


CSV_COLUMNS = (
    "prefecture",
    "county",
    "name",
    "altitude_m",
    "item",
    "due",
    "status",
    "days_overdue",
    "booked_for",
    "last_done",
)


def rows_to_csv(rows: Iterable[AreaRow], lang: str) -> bytes:
    """CSV (services.tables: UTF-8 with BOM, formulas defused). No results."""
    postings = load_postings()
    table: list[list[Any]] = []
    for row in rows:
        person, due = row.person, row.due
        status = "overdue" if row.overdue else ("booked" if due.booked_for else "upcoming")
        table.append(
            [
                postings.name(person.prefecture, lang, short=True)
                if person.prefecture and postings.prefecture(person.prefecture)
                else "",
                postings.name(person.county, lang)
                if person.county and postings.county(person.county)
                else "",
                person.name,
                person.altitude_m if person.altitude_m is not None else "",
                str(due.kind),
                due.due.isoformat(),
                status,
                due.overdue_days(row.today),
                due.booked_for.isoformat() if due.booked_for else "",
                due.last_done.isoformat() if due.last_done else "",
            ]
        )
    return tables.to_csv(CSV_COLUMNS, table)


def overdue_people(session: Session, config: CareConfig) -> set[int]:
    """People with a rest or examination overdue today (the broadcasts' "overdue" audience)."""
    items = _due_items(session, config, None, None, -1, wide=False).items
    return set(session.execute(sa_select(items.c.id).distinct()).scalars())


def overdue_by_kind(session: Session, config: CareConfig) -> dict[CareKind, int]:
    """How many rests and examinations are overdue today, everywhere (/metrics), counted by
    the database as /overdue counts them."""
    items = _due_items(session, config, None, None, -1, wide=False).items
    counts = dict(
        session.execute(sa_select(items.c.kind, func.count()).group_by(items.c.kind)).all()
    )
    return {kind: int(counts.get(kind.value, 0)) for kind in CareKind}
