"""Care schedules: low-altitude rest rotations and physical examinations.

Due dates are derived, never stored: every call computes them from the person row (the
assignment start and posting altitude, so a profile edit needs no hook), the policy in
force (services.care_policy) and the person's care_item row (last done, booked, snoozed,
set by an admin). `compute` is the rule; the area lists (/overdue, /upcoming, the CSV)
have the database derive the same day for everyone at once (`_due_day`), count and pick
the lines, and build each line shown through `compute`.

Reminders. For an item due on day D, at the person's local reminder time T (their own, or
CADRE_CARE_REMINDER_TIME in their time zone, or CADRE_TIMEZONE), the "slots" are D-7, D-1,
D and every day after D while it is overdue. ``run_pass(session, now, config)`` is the one
function that sends them: for each item it takes the latest slot at or before ``now``; if
that slot is newer than the item's watermark (``reminded_until``, or ``changed_at`` when the
person acted since), it queues the reminder - only if the slot is less than the grace period
old - and moves the watermark to it. The outbox row and the watermark are written in the
same transaction, and the outbox idempotency key ``care:<item>:<due>:<offset>`` is unique:
a pass that runs twice, late, after a restart or after a kill -9 sends each reminder once,
and a slot missed while the bot was down is sent once, on the first pass after start-up,
when it is less than the grace period old. Overdue items are escalated once per due date
(the item's ``escalated_due``, written with the notice) to the duty officers of the
prefecture and the admins, CADRE_CARE_ESCALATION_DAYS after the due day at the reminder
time, whatever the grace period: a safety notice is never dropped. The items escalated by
one pass reach each recipient as one notice (``care:esc:<recipient>:<digest of items>``).

Contract used by other features:
    last_rest_return(session, person_id) -> date | None
The day the person last came back up from a completed low-altitude rest, so that health
monitoring can restart closer checks (re-entry risk) for the days after it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    Date,
    Integer,
    String,
    and_,
    bindparam,
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
from sqlalchemy import update as sa_update
from sqlmodel import Session, col, func, select

from config import Settings
from config.settings import CarePolicyOverride
from models import (
    CareItem,
    CareKind,
    CareProfile,
    CareRecord,
    CareRecordKind,
    DutyArea,
    OxygenEvent,
    OxygenRequest,
    Person,
    Priority,
    Role,
    Status,
)
from services import audit, clock, outbox, tables
from services.care_policy import (
    BAND_FLOOR,
    Band,
    BandPolicy,
    band_for_altitude,
    effective_policy,
)
from services.db import insert_ignoring_existing
from services.i18n import t
from services.people import name_of
from services.postings import load_postings

log = logging.getLogger(__name__)

BEFORE_DAYS = (7, 1)  # reminders this many days before the due day (and on the day)
PRE_ARRIVAL_EXAM_DAYS = 90  # an exam this close before arrival counts as the arrival exam
DONE_MAX_AGE_DAYS = 365
BOOK_MAX_AHEAD_DAYS = 365
SET_RANGE_DAYS = (-365, 730)
SNOOZE_DAYS = (1, 3, 7)
PLACE_MAX = 100
RESULT_MAX = 200
UPCOMING_DAYS = 14


class CareError(ValueError):
    """Refused input or a stale action; the key names a catalog message."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass(frozen=True)
class CareConfig:
    zone: ZoneInfo
    reminder_seconds: int
    grace: timedelta
    escalation_days: int
    policy_override: CarePolicyOverride = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> CareConfig:
        hours, minutes = (int(p) for p in settings.care_reminder_time.split(":"))
        return cls(
            zone=settings.zone,
            reminder_seconds=hours * 3600 + minutes * 60,
            grace=timedelta(hours=settings.care_grace_hours),
            escalation_days=settings.care_escalation_days,
            policy_override=settings.care_policy,
        )


@dataclass(frozen=True)
class PersonFacts:
    """The columns of a person the schedule depends on."""

    id: int
    telegram_id: int
    language: str
    name: str
    prefecture: str | None
    county: str | None
    altitude_m: int | None
    start: date | None
    end: date | None

    @classmethod
    def of(cls, person: Person) -> PersonFacts:
        assert person.id is not None
        return cls(
            id=person.id,
            telegram_id=person.telegram_id,
            language=person.language,
            name=name_of(person, str(person.telegram_id)),
            prefecture=person.prefecture,
            county=person.county,
            altitude_m=person.posting_altitude_m,
            start=person.assignment_start,
            end=person.assignment_end,
        )


@dataclass(frozen=True)
class Due:
    """The computed state of one item."""

    kind: CareKind
    item_id: int | None
    due: date  # the effective due day (the booked day when booked)
    base_due: date  # from the policy, or set by an admin
    booked_for: date | None
    snoozed_until: date | None
    last_done: date | None
    set_by_admin: bool

    def overdue_days(self, today: date) -> int:
        return max(0, (today - self.due).days)


@dataclass(frozen=True)
class Timing:
    zone: ZoneInfo
    seconds: int

    def slot(self, day: date) -> datetime:
        """The reminder instant (UTC) on a local day."""
        return _slot(self.zone, self.seconds, day)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()


@dataclass
class Schedule:
    """What /schedule shows: None items mean the band has no such schedule."""

    person: PersonFacts
    state: str  # ok | low_altitude | incomplete | ended
    band: Band | None
    policy: BandPolicy | None
    items: dict[CareKind, Due | None]
    today: date
    timing: Timing
    days_at_altitude: int | None
    last_rest_return: date | None


@dataclass
class PassResult:
    people: int = 0
    items: int = 0
    reminders: int = 0
    skipped_late: int = 0
    escalations: int = 0  # notices to duty officers and admins (one per recipient)
    next_wakeup: datetime | None = None
    keys: list[str] = field(default_factory=list)  # idempotency keys of what was queued
    escalated: list[tuple[int, date]] = field(default_factory=list)  # (item id, due)


# ---------------------------------------------------------------------------- pure rules


def _time_of(seconds: int) -> time:
    return time(seconds // 3600, seconds % 3600 // 60, seconds % 60)


@lru_cache(maxsize=8192)
def _slot(zone: ZoneInfo, seconds: int, day: date) -> datetime:
    local = datetime.combine(day, _time_of(seconds), tzinfo=zone)
    return local.astimezone(UTC)


@lru_cache(maxsize=1024)
def is_low_altitude_posting(prefecture: str | None, county: str | None) -> bool:
    postings = load_postings()
    found = postings.county(county) if county else None
    if found is not None:
        return found.low_altitude
    pref = postings.prefecture(prefecture) if prefecture else None
    return bool(pref and pref.low_altitude)


def schedule_state(person: PersonFacts, today: date) -> str:
    if is_low_altitude_posting(person.prefecture, person.county):
        return "low_altitude"
    if person.start is None or person.altitude_m is None:
        return "incomplete"
    if person.end is not None and today > person.end:
        return "ended"
    return "ok"


def compute(
    person: PersonFacts,
    kind: CareKind,
    policy: BandPolicy | None,
    item: CareItem | ItemRow | None,
    today: date,
) -> Due | None:
    """The due day of one item, or None when nothing is due (no schedule in this band, the
    posting ends first, low altitude, or the profile lacks a start or an altitude)."""
    if policy is None or schedule_state(person, today) != "ok":
        return None
    assert person.start is not None
    override = item.override_due if item else None
    base, last_done = base_due(
        kind, policy, person.start, person.end, item.last_done if item else None, override
    )
    if base is None:
        return None
    booked = item.booked_for if item else None
    return Due(
        kind=kind,
        item_id=item.id if item else None,
        due=booked or base,
        base_due=base,
        booked_for=booked,
        snoozed_until=item.snoozed_until if item else None,
        last_done=last_done,
        set_by_admin=override is not None,
    )


def base_due(
    kind: CareKind,
    policy: BandPolicy,
    start: date,
    end: date | None,
    last_done: date | None,
    override: date | None,
) -> tuple[date | None, date | None]:
    """`compute`'s due day before any booking (None: nothing is due), by the policy or set
    by an admin, and the last done that counts for this posting. `_due_day` is the same
    rule in SQL, for the area lists: change both."""
    oldest = start - timedelta(days=PRE_ARRIVAL_EXAM_DAYS if kind == CareKind.EXAM else 0)
    if last_done is not None and last_done < oldest:
        last_done = None  # done for an earlier posting: a new posting starts a new cycle
    base: date | None
    if override is not None:
        return override, last_done
    if kind == CareKind.REST:
        every = policy.rest_every_days
        base = None if every is None else (last_done or start) + timedelta(days=every)
    else:
        if last_done is not None:
            every = policy.exam_every_days
            base = None if every is None else last_done + timedelta(days=every)
        else:
            first = policy.exam_first_days
            if first is None:
                first = policy.exam_every_days
            base = None if first is None else start + timedelta(days=first)
    if base is not None and end is not None and base > end:
        return None, last_done
    return base, last_done


def latest_slot_day(due: date, snoozed: date | None, last_day: date) -> date | None:
    """The latest reminder day at or before `last_day` (D-7, D-1, D, D+1, ...)."""
    if last_day >= due:
        day = last_day
    elif last_day >= due - timedelta(days=BEFORE_DAYS[1]):
        day = due - timedelta(days=BEFORE_DAYS[1])
    elif last_day >= due - timedelta(days=BEFORE_DAYS[0]):
        day = due - timedelta(days=BEFORE_DAYS[0])
    else:
        return None
    if snoozed is not None and day < snoozed:
        return None
    return day


def next_slot_day(due: date, snoozed: date | None, first_day: date) -> date:
    """The earliest reminder day at or after `first_day`."""
    day = max(first_day, snoozed) if snoozed else first_day
    for before in BEFORE_DAYS:
        candidate = due - timedelta(days=before)
        if day <= candidate:
            return candidate
    return day


def offset_label(due: date, day: date) -> str:
    delta = (day - due).days
    return f"{delta:+d}" if delta else "0"


def reminder_key(item_id: int, due: date, day: date) -> str:
    return f"care:{item_id}:{due.isoformat()}:{offset_label(due, day)}"


def _zone(name: str | None, default: ZoneInfo) -> ZoneInfo:
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return default


def timing_for(profile: CareProfile | None, config: CareConfig) -> Timing:
    seconds = config.reminder_seconds
    if profile is not None and profile.reminder_seconds is not None:
        seconds = profile.reminder_seconds
    return Timing(_zone(profile.timezone if profile else None, config.zone), seconds)


# ---------------------------------------------------------------------------- texts


def item_name(lang: str, kind: CareKind) -> str:
    return t(lang, "care.item.rest") if kind == CareKind.REST else t(lang, "care.item.exam")


def contents_text(lang: str, policy: BandPolicy | None) -> str:
    if policy is None or not policy.exam_contents:
        return "-"
    return t(lang, "care.list_sep").join(t(lang, f"care.content.{c}") for c in policy.exam_contents)


def posting_text(lang: str, person: PersonFacts) -> str:
    postings = load_postings()
    parts = []
    if person.prefecture and postings.prefecture(person.prefecture):
        parts.append(postings.name(person.prefecture, lang, short=True))
    if person.county and postings.county(person.county):
        parts.append(postings.name(person.county, lang))
    return " · ".join(parts) or "-"


def _compact(day: date) -> str:
    return day.strftime("%Y%m%d")


def parse_compact(raw: str) -> date | None:
    if not re.fullmatch(r"\d{8}", raw):
        return None
    try:
        return datetime.strptime(raw, "%Y%m%d").date()
    except ValueError:
        return None


def reminder_buttons(lang: str, item_id: int, due: date) -> dict[str, Any]:
    tail = f"{item_id}:{_compact(due)}"
    return outbox.inline_keyboard(
        [
            [
                (t(lang, "care.btn.done"), f"cs:d:{tail}"),
                (t(lang, "care.btn.booked"), f"cs:b:{tail}"),
            ],
            [(t(lang, "care.btn.snooze"), f"cs:z:{tail}")],
        ]
    )


def reminder_text(lang: str, due: Due, day: date, policy: BandPolicy | None) -> str:
    delta = (day - due.due).days
    if delta < 0:
        key = "care.remind.before"
    elif delta == 0:
        key = "care.remind.today"
    else:
        key = "care.remind.overdue"
    detail = _detail(lang, due.kind, policy)
    text = t(
        lang,
        key,
        item=item_name(lang, due.kind),
        due=due.due.isoformat(),
        days=abs(delta),
        detail=detail,
    )
    if due.booked_for is not None:
        text += "\n" + t(lang, "care.remind.booked", date=due.booked_for.isoformat())
    return text + "\n\n" + t(lang, "care.not_diagnosis")


def _detail(lang: str, kind: CareKind, policy: BandPolicy | None) -> str:
    if policy is None:
        return ""
    if kind == CareKind.REST:
        if policy.rest_length_days:
            return t(lang, "care.detail.rest", days=policy.rest_length_days)
        return ""
    return t(lang, "care.detail.exam", contents=contents_text(lang, policy))


# ---------------------------------------------------------------------------- loading


def _facts_query() -> Any:
    return select(  # type: ignore[call-overload,misc]
        Person.id,
        Person.telegram_id,
        Person.language,
        Person.real_name,
        Person.display_name,
        Person.prefecture,
        Person.county,
        Person.posting_altitude_m,
        Person.assignment_start,
        Person.assignment_end,
    ).where(
        Person.status == Status.ACTIVE,
        Person.role != Role.CONTACT,
        col(Person.assignment_start).is_not(None),
        col(Person.posting_altitude_m).is_not(None),
    )


def _facts(row: Sequence[Any]) -> PersonFacts:
    pid, tid, lang, real, display, pref, county, alt, start, end = row
    return PersonFacts(pid, tid, lang, real or display or str(tid), pref, county, alt, start, end)


def _items_by_person(
    session: Session, person_ids: Iterable[int] | None = None
) -> dict[int, dict[CareKind, CareItem]]:
    query = select(CareItem)
    if person_ids is not None:
        query = query.where(col(CareItem.person_id).in_(list(person_ids)))
    found: dict[int, dict[CareKind, CareItem]] = {}
    for item in session.exec(query):
        found.setdefault(item.person_id, {})[CareKind(item.kind)] = item
    return found


def _profiles(session: Session, person_ids: Iterable[int] | None = None) -> dict[int, CareProfile]:
    query = select(CareProfile)
    if person_ids is not None:
        query = query.where(col(CareProfile.person_id).in_(list(person_ids)))
    return {p.person_id: p for p in session.exec(query)}


@dataclass
class ItemRow:
    """A care_item row read without the ORM: the pass reads thousands of them."""

    id: int
    person_id: int
    kind: CareKind
    last_done: date | None
    override_due: date | None
    booked_for: date | None
    snoozed_until: date | None
    changed_at: datetime | None
    reminded_until: datetime | None
    escalated_due: date | None
    dirty: bool = False


_ITEM = CareItem.__table__  # type: ignore[attr-defined]
_ROW_COLUMNS = (
    "id",
    "person_id",
    "kind",
    "last_done",
    "override_due",
    "booked_for",
    "snoozed_until",
    "changed_at",
    "reminded_until",
    "escalated_due",
)


def _item_rows(
    session: Session, person_ids: Iterable[int] | None = None
) -> dict[int, dict[CareKind, ItemRow]]:
    query = sa_select(*(_ITEM.c[name] for name in _ROW_COLUMNS))
    if person_ids is not None:
        query = query.where(_ITEM.c.person_id.in_(list(person_ids)))
    found: dict[int, dict[CareKind, ItemRow]] = {}
    kinds = {kind.value: kind for kind in CareKind}
    for values in session.execute(query):
        row = ItemRow(*values)
        row.kind = kinds[row.kind]
        found.setdefault(row.person_id, {})[row.kind] = row
    return found


def _save_watermarks(session: Session, rows: Iterable[ItemRow]) -> None:
    """Only the pass's own columns, so that a concurrent Done or Booked is never undone."""
    changed = [
        {"b_id": r.id, "b_until": r.reminded_until, "b_escalated": r.escalated_due}
        for r in rows
        if r.dirty
    ]
    if changed:
        session.execute(
            sa_update(_ITEM)
            .where(_ITEM.c.id == bindparam("b_id"))
            .values(
                reminded_until=bindparam("b_until", type_=_ITEM.c.reminded_until.type),
                escalated_due=bindparam("b_escalated", type_=_ITEM.c.escalated_due.type),
            ),
            changed,
        )


def _create_items(session: Session, wanted: Iterable[tuple[int, CareKind]]) -> None:
    """Create item rows that do not exist yet. INSERT ... ON CONFLICT DO NOTHING: a pass
    and a person's /schedule may create the same row at the same moment; neither fails."""
    rows: list[dict[str, object]] = [
        {"person_id": pid, "kind": kind.value, "created_at": clock.now()} for pid, kind in wanted
    ]
    if not rows:
        return
    insert_ignoring_existing(session, _ITEM, rows, ["person_id", "kind"])


def _ensure_item(
    session: Session, person_id: int, kind: CareKind, items: dict[CareKind, CareItem]
) -> CareItem:
    item = items.get(kind)
    if item is None:
        _create_items(session, [(person_id, kind)])
        item = session.exec(
            select(CareItem).where(CareItem.person_id == person_id, CareItem.kind == kind)
        ).one()
        items[kind] = item
    return item


def _policy_for(
    policy: dict[Band, BandPolicy], person: PersonFacts
) -> tuple[Band | None, BandPolicy | None]:
    band = band_for_altitude(person.altitude_m)
    return band, policy.get(band) if band else None


# ---------------------------------------------------------------------------- the pass


def run_pass(
    session: Session,
    now: datetime,
    config: CareConfig,
    *,
    person_ids: Sequence[int] | None = None,
) -> PassResult:
    """Queue every reminder and escalation due up to `now`, exactly once (see the module
    docstring), and compute when the next one falls due (of `person_ids` only, if given)."""
    result = PassResult()
    policy = effective_policy(session, config.policy_override)
    query = _facts_query()
    if person_ids is not None:
        query = query.where(col(Person.id).in_(list(person_ids)))
    people_rows = [_facts(row) for row in session.exec(query)]
    items = _item_rows(session, person_ids)
    profiles = _profiles(session, person_ids)
    todays: dict[Timing, date] = {}
    work: list[tuple[PersonFacts, ItemRow | None, Due, Timing, date, BandPolicy | None]] = []
    missing: list[dict[str, Any]] = []
    for person in people_rows:
        timing = timing_for(profiles.get(person.id), config)
        today = todays.get(timing) or todays.setdefault(timing, timing.today(now))
        if schedule_state(person, today) != "ok":
            continue
        _, band_policy = _policy_for(policy, person)
        mine = items.get(person.id, {})
        for kind in CareKind:
            row = mine.get(kind)
            due = compute(person, kind, band_policy, row, today)
            if due is None:
                continue
            if row is None:
                missing.append({"person_id": person.id, "kind": kind.value})
            work.append((person, row, due, timing, today, band_policy))
    if missing:  # first time due: the item rows are created (their ids go in the buttons)
        _create_items(session, [(m["person_id"], CareKind(m["kind"])) for m in missing])
        new_rows = _item_rows(session, {m["person_id"] for m in missing})
        work = [(p, r or new_rows[p.id][d.kind], d, tm, td, bp) for p, r, d, tm, td, bp in work]
    messages: list[outbox.NewMessage] = []
    overdue: list[tuple[PersonFacts, Due, date]] = []
    next_wakeup: datetime | None = None
    reached: set[int] = set()
    rows: list[ItemRow] = []
    for person, found, due, timing, today, band_policy in work:
        assert found is not None
        item = found
        rows.append(item)
        reached.add(person.id)
        result.items += 1
        watermark = max(
            (m for m in (item.reminded_until, item.changed_at) if m is not None), default=None
        )
        slot_today = timing.slot(today)
        last_day = today if slot_today <= now else today - timedelta(days=1)
        day = latest_slot_day(due.due, due.snoozed_until, last_day)
        if day is not None:
            slot = timing.slot(day)
            if watermark is None or slot > watermark:
                if now - slot <= config.grace:
                    lang = person.language
                    messages.append(
                        outbox.NewMessage(
                            chat_id=person.telegram_id,
                            idempotency_key=reminder_key(item.id, due.due, day),
                            text=reminder_text(lang, due, day, band_policy),
                            priority=Priority.REMINDER,
                            person_id=person.id,
                            language=lang,
                            reply_markup=reminder_buttons(lang, item.id, due.due),
                            source=f"care:{item.id}",
                        )
                    )
                    result.reminders += 1
                else:
                    result.skipped_late += 1
                item.reminded_until = slot
                item.dirty = True
                watermark = slot
        if item.escalated_due != due.due:
            escalation_at = timing.slot(due.due + timedelta(days=config.escalation_days))
            if escalation_at <= now:
                overdue.append((person, replace(due, item_id=item.id), today))
                item.escalated_due = due.due
                item.dirty = True
            else:
                next_wakeup = _earliest(next_wakeup, escalation_at)
        first_day = today if slot_today > now else today + timedelta(days=1)
        upcoming = timing.slot(next_slot_day(due.due, due.snoozed_until, first_day))
        if watermark is not None and upcoming <= watermark:  # the clock went back
            upcoming = timing.slot(
                next_slot_day(due.due, due.snoozed_until, first_day + timedelta(days=1))
            )
        next_wakeup = _earliest(next_wakeup, upcoming)
    if overdue:
        digests = _escalation_digests(session, overdue, _Responders.load(session))
        messages.extend(digests)
        result.escalations = len(digests)
        result.escalated = [(d.item_id or 0, d.due) for _, d, _ in overdue]
    _save_watermarks(session, rows)
    outbox.enqueue_many(session, messages)
    result.people = len(reached)
    result.keys = [m.idempotency_key for m in messages]
    result.next_wakeup = next_wakeup
    return result


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


@dataclass
class _Responders:
    """Who is told of an overdue item: duty officers of the prefecture, and admins."""

    by_area: dict[str, list[tuple[int, int, str]]]
    admins: list[tuple[int, int, str]]

    @classmethod
    def load(cls, session: Session) -> _Responders:
        by_area: dict[str, list[tuple[int, int, str]]] = {}
        rows = session.exec(
            select(DutyArea.prefecture, Person.id, Person.telegram_id, Person.language)
            .join(Person, col(Person.id) == DutyArea.person_id)
            .where(
                Person.status == Status.ACTIVE,
                col(Person.role).in_([Role.DUTY_OFFICER, Role.ADMIN]),
            )
        )
        for prefecture, pid, tid, lang in rows:
            assert pid is not None
            by_area.setdefault(prefecture, []).append((pid, tid, lang))
        admins = session.exec(
            select(Person.id, Person.telegram_id, Person.language).where(
                Person.role == Role.ADMIN, Person.status == Status.ACTIVE
            )
        )
        return cls(by_area, [tuple(a) for a in admins])  # type: ignore[misc]

    def for_prefecture(self, prefecture: str | None) -> list[tuple[int, int, str]]:
        seen: dict[int, tuple[int, int, str]] = {}
        for who in [*self.by_area.get(prefecture or "", []), *self.admins]:
            seen.setdefault(who[0], who)
        return list(seen.values())


ESCALATION_LINES = 30  # items listed in one notice; /overdue lists them all


def _escalation_digests(
    session: Session,
    overdue: list[tuple[PersonFacts, Due, date]],
    responders: _Responders,
) -> list[outbox.NewMessage]:
    """One notice per duty officer or admin listing the items that just became overdue
    by CADRE_CARE_ESCALATION_DAYS in their area (a first start may find hundreds: they
    arrive as one message, not hundreds). The items' `escalated_due` is written in the
    same transaction, so each item is escalated once per due date."""
    by_recipient: dict[int, tuple[int, str, list[tuple[PersonFacts, Due, date]]]] = {}
    for person, due, today in overdue:
        recipients = [r for r in responders.for_prefecture(person.prefecture) if r[0] != person.id]
        for pid, tid, lang in recipients:
            by_recipient.setdefault(pid, (tid, lang, []))[2].append((person, due, today))
    audit.record(  # one entry per pass; the outbox keeps who was told what
        session,
        "schedule.escalated",
        actor=None,
        items=len(overdue),
        recipients=len(by_recipient),
    )
    found = []
    for pid, (tid, lang, entries) in by_recipient.items():
        entries.sort(key=lambda e: (e[0].prefecture or "", e[1].due, e[0].name))
        lines = [
            t(
                lang,
                "care.area.line_overdue",
                name=person.name,
                posting=posting_text(lang, person),
                altitude=person.altitude_m if person.altitude_m is not None else "-",
                item=item_name(lang, due.kind),
                due=due.due.isoformat(),
                days=due.overdue_days(today),
            )
            for person, due, today in entries[:ESCALATION_LINES]
        ]
        if len(entries) > ESCALATION_LINES:
            lines.append(t(lang, "care.escalate.more", count=len(entries) - ESCALATION_LINES))
        text = "\n".join(
            [
                t(lang, "care.escalate", count=len(entries)),
                *lines,
                "",
                t(lang, "care.escalate.foot"),
            ]
        )
        content = ",".join(sorted(f"{d.item_id}:{d.due.isoformat()}" for _, d, _ in entries))
        digest = hashlib.sha1(content.encode(), usedforsecurity=False).hexdigest()[:16]
        found.append(
            outbox.NewMessage(
                chat_id=tid,
                idempotency_key=f"care:esc:{pid}:{digest}",
                text=text,
                priority=Priority.URGENT,
                person_id=pid,
                language=lang,
                source="care:escalation",
            )
        )
    return found


# ---------------------------------------------------------------------------- one person


def _person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise CareError("care.stale")
    return person


def schedule_for(session: Session, person_id: int, config: CareConfig) -> Schedule:
    """A person's schedule now (creates the item rows their reminder buttons need)."""
    person = _person(session, person_id)
    facts = PersonFacts.of(person)
    timing = timing_for(session.get(CareProfile, person_id), config)
    today = timing.today(clock.now())
    band, band_policy = _policy_for(effective_policy(session, config.policy_override), facts)
    state = schedule_state(facts, today)
    items = _items_by_person(session, [person_id]).get(person_id, {})
    dues: dict[CareKind, Due | None] = {}
    for kind in CareKind:
        due = compute(facts, kind, band_policy, items.get(kind), today)
        if due is not None and due.item_id is None:
            _ensure_item(session, person_id, kind, items)
            due = compute(facts, kind, band_policy, items.get(kind), today)
        dues[kind] = due
    days = None
    if state == "ok" and facts.start is not None:
        days = max(0, (min(today, facts.end or today) - facts.start).days)
    return Schedule(
        person=facts,
        state=state,
        band=band if state == "ok" else None,
        policy=band_policy if state == "ok" else None,
        items=dues,
        today=today,
        timing=timing,
        days_at_altitude=days,
        last_rest_return=last_rest_return(session, person_id),
    )


def _owned_item(
    session: Session, person_id: int, item_id: int, due: date | None, config: CareConfig
) -> tuple[CareItem, Schedule]:
    """The item, if it is this person's and (when `due` is given) still due on that day."""
    item = session.get(CareItem, item_id)
    if item is None or item.person_id != person_id:
        raise CareError("care.forged")
    schedule = schedule_for(session, person_id, config)
    current = schedule.items.get(CareKind(item.kind))
    if current is None or (due is not None and current.due != due):
        raise CareError("care.stale")
    return item, schedule


def check_action(
    session: Session, person_id: int, item_id: int, due: date | None, config: CareConfig
) -> CareKind:
    """Raises CareError when a reminder button is forged or out of date."""
    item, _ = _owned_item(session, person_id, item_id, due, config)
    return CareKind(item.kind)


def clean_line(text: str | None, limit: int) -> str:
    """One line of free text: normalised, control characters removed, within `limit`."""
    value = unicodedata.normalize("NFKC", text or "")
    value = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C" or ch == " ")
    value = re.sub(r"\s+", " ", value).strip()
    if not value:
        raise CareError("care.invalid.empty")
    if len(value) > limit:
        raise CareError("care.invalid.too_long", limit=limit)
    return value


def _add_record(
    session: Session,
    item: CareItem,
    record: CareRecordKind,
    on_date: date,
    actor_telegram_id: int | None,
    **details: Any,
) -> None:
    """One line of the item's history (done, booked, snoozed), with who did it and when."""
    session.add(
        CareRecord(
            person_id=item.person_id,
            kind=item.kind,
            record=record,
            on_date=on_date,
            actor_telegram_id=actor_telegram_id,
            recorded_at=clock.now(),
            **details,
        )
    )


def record_done(
    session: Session,
    person_id: int,
    item_id: int,
    on_date: date,
    config: CareConfig,
    *,
    place: str | None = None,
    result: str | None = None,
    actor_telegram_id: int | None = None,
) -> Schedule:
    item, schedule = _owned_item(session, person_id, item_id, None, config)
    today = schedule.today
    if on_date > today:
        raise CareError("care.invalid.future")
    if on_date < today - timedelta(days=DONE_MAX_AGE_DAYS):
        raise CareError("care.invalid.too_old", days=DONE_MAX_AGE_DAYS)
    kind = CareKind(item.kind)
    if kind == CareKind.REST:
        place, result = None, None
    place = clean_line(place, PLACE_MAX) if place else None
    result = clean_line(result, RESULT_MAX) if result else None
    _add_record(
        session, item, CareRecordKind.DONE, on_date, actor_telegram_id, place=place, result=result
    )
    item.last_done = max(on_date, item.last_done) if item.last_done else on_date
    item.override_due = None
    item.booked_for = None
    item.snoozed_until = None
    item.changed_at = clock.now()
    session.add(item)
    session.flush()
    audit.record(
        session,
        "schedule.done",
        actor=actor_telegram_id,
        target_person_id=person_id,
        item=str(kind),
        on=on_date.isoformat(),
    )
    return schedule_for(session, person_id, config)


def record_booked(
    session: Session,
    person_id: int,
    item_id: int,
    on_date: date,
    config: CareConfig,
    *,
    actor_telegram_id: int | None = None,
) -> Schedule:
    item, schedule = _owned_item(session, person_id, item_id, None, config)
    today = schedule.today
    if on_date < today:
        raise CareError("care.invalid.past")
    if on_date > today + timedelta(days=BOOK_MAX_AHEAD_DAYS):
        raise CareError("care.invalid.too_far", days=BOOK_MAX_AHEAD_DAYS)
    item.booked_for = on_date
    item.snoozed_until = None
    item.changed_at = clock.now()
    session.add(item)
    _add_record(session, item, CareRecordKind.BOOKED, on_date, actor_telegram_id)
    session.flush()
    audit.record(
        session,
        "schedule.booked",
        actor=actor_telegram_id,
        target_person_id=person_id,
        item=str(item.kind),
        on=on_date.isoformat(),
    )
    return schedule_for(session, person_id, config)


def record_snoozed(
    session: Session,
    person_id: int,
    item_id: int,
    days: int,
    config: CareConfig,
    *,
    due: date | None = None,
    actor_telegram_id: int | None = None,
) -> Schedule:
    """Reminders to the person pause for `days` (1, 3 or 7); escalation does not."""
    if days not in SNOOZE_DAYS:
        raise CareError("care.stale")
    item, schedule = _owned_item(session, person_id, item_id, due, config)
    until = schedule.today + timedelta(days=days)
    item.snoozed_until = until
    item.changed_at = clock.now()
    session.add(item)
    _add_record(session, item, CareRecordKind.SNOOZED, until, actor_telegram_id)
    session.flush()
    audit.record(
        session, "schedule.snoozed", actor=actor_telegram_id, target_person_id=person_id, days=days
    )
    return schedule_for(session, person_id, config)


def set_due(
    session: Session,
    actor: Person,
    person_id: int,
    kind: CareKind,
    on_date: date,
    config: CareConfig,
) -> Schedule:
    """An admin sets or moves the due day of one person's rest or exam. The person is told
    (queued; the caller wakes the delivery worker)."""
    person = _person(session, person_id)
    facts = PersonFacts.of(person)
    timing = timing_for(session.get(CareProfile, person_id), config)
    today = timing.today(clock.now())
    if person.status != Status.ACTIVE or schedule_state(facts, today) != "ok":
        raise CareError("care.set.no_schedule")
    low, high = (today + timedelta(days=d) for d in SET_RANGE_DAYS)
    if not low <= on_date <= high:
        raise CareError("care.invalid.out_of_range", low=low.isoformat(), high=high.isoformat())
    items = _items_by_person(session, [person_id]).get(person_id, {})
    item = _ensure_item(session, person_id, kind, items)
    item.override_due = on_date
    item.booked_for = None
    item.snoozed_until = None
    item.changed_at = clock.now()
    session.add(item)
    record = CareRecord(
        person_id=person_id,
        kind=kind,
        record=CareRecordKind.SET,
        on_date=on_date,
        actor_telegram_id=actor.telegram_id,
        recorded_at=clock.now(),
    )
    session.add(record)
    session.flush()
    assert item.id is not None and record.id is not None
    audit.record(
        session,
        "schedule.set",
        actor=actor.telegram_id,
        target_person_id=person_id,
        item=str(kind),
        on=on_date.isoformat(),
    )
    lang = person.language
    outbox.enqueue(
        session,
        chat_id=person.telegram_id,
        text=t(lang, "care.set.notice", item=item_name(lang, kind), date=on_date.isoformat()),
        priority=Priority.REMINDER,
        idempotency_key=f"care:set:{record.id}",
        person_id=person_id,
        language=lang,
        reply_markup=reminder_buttons(lang, item.id, on_date),
        source=f"care:{item.id}",
    )
    return schedule_for(session, person_id, config)


def set_reminder_time(
    session: Session, person_id: int, seconds: int | None, timezone: str | None = None
) -> CareProfile:
    """A person's own reminder time (seconds after local midnight; None: the default)."""
    if seconds is not None and not 0 <= seconds < 86400:
        raise CareError("care.stale")
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CareError("care.stale") from exc
    profile = session.get(CareProfile, person_id) or CareProfile(person_id=person_id)
    profile.reminder_seconds = seconds
    if timezone is not None:
        profile.timezone = timezone
    session.add(profile)
    session.flush()
    return profile


def last_rest_return(session: Session, person_id: int) -> date | None:
    """The day the person last came back up from a completed low-altitude rest."""
    return session.exec(
        select(func.max(CareRecord.on_date)).where(
            CareRecord.person_id == person_id,
            CareRecord.kind == CareKind.REST,
            CareRecord.record == CareRecordKind.DONE,
        )
    ).one()


def last_rest_returns(session: Session) -> dict[int, date]:
    """`last_rest_return` of everyone who has one, in one query (the health pass)."""
    rows = session.exec(
        select(CareRecord.person_id, func.max(CareRecord.on_date))
        .where(CareRecord.kind == CareKind.REST, CareRecord.record == CareRecordKind.DONE)
        .group_by(col(CareRecord.person_id))
    )
    return {person_id: day for person_id, day in rows if day is not None}


def records_of(session: Session, person_id: int, limit: int = 10) -> list[CareRecord]:
    query = (
        select(CareRecord)
        .where(CareRecord.person_id == person_id)
        .order_by(col(CareRecord.recorded_at).desc(), col(CareRecord.id).desc())
        .limit(limit)
    )
    return list(session.exec(query))


def export_for_person(session: Session, person_id: int) -> dict[str, Any]:
    """Everything care-related stored about a person (schedules, records with their private
    results, reminder time, oxygen requests and their timelines), for /mydata (PIPL art. 45)."""
    items = _items_by_person(session, [person_id]).get(person_id, {})
    records = session.exec(
        select(CareRecord).where(CareRecord.person_id == person_id).order_by(col(CareRecord.id))
    )
    profile = session.get(CareProfile, person_id)
    requests = session.exec(
        select(OxygenRequest)
        .where(OxygenRequest.person_id == person_id)
        .order_by(col(OxygenRequest.id))
    ).all()
    events = (
        session.exec(
            select(OxygenEvent)
            .where(col(OxygenEvent.request_id).in_([r.id for r in requests]))
            .order_by(col(OxygenEvent.id))
        ).all()
        if requests
        else []
    )
    return {
        "items": [i.model_dump(mode="json", exclude={"person_id"}) for i in items.values()],
        "records": [r.model_dump(mode="json", exclude={"person_id"}) for r in records],
        "reminder_profile": profile.model_dump(mode="json") if profile else None,
        "oxygen_requests": [r.model_dump(mode="json", exclude={"person_id"}) for r in requests],
        "oxygen_events": [e.model_dump(mode="json") for e in events],
    }


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
) -> AreaSummary:
    """The rows of `area_rows` that are overdue (`overdue`) or upcoming (due within
    UPCOMING_DAYS, not overdue), counted per prefecture; only the first `limit` are built.
    One statement: the database counts and picks the rows (an admin's /overdue over
    100,000 people counts about 18,000 overdue items and shows 40)."""
    first, last = (None, -1) if overdue else (0, UPCOMING_DAYS)
    found = _due_items(session, config, prefectures, first, last, wide=False)
    items = found.items
    area = func.coalesce(items.c.prefecture, "")
    counts = (
        sa_select(area.label("area"), func.count().label("in_area"))
        .group_by(area)
        .subquery("counts")
    )
    shown = sa_select(items).order_by(*found.order(items)).limit(limit).subquery("shown")
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
_LAYOUT = (*_FACT_COLUMNS, "kind", "due", "today", *(f"item_{name}" for name in _ROW_COLUMNS))
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
            _ITEM, and_(_ITEM.c.person_id == items.c.id, _ITEM.c.kind == items.c.kind)
        )
        columns = _layout(_PERSON, _ITEM, items.c.kind, items.c.due, items.c.today)
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
            facts = _facts(row[:facts_width])
            kind = _KINDS[kind_value]
            item = None
            if row[items_at] is not None:
                item = ItemRow(*row[items_at : items_at + len(_ROW_COLUMNS)])
                item.kind = kind
            due = compute(facts, kind, _policy_for(self.policy, facts)[1], item, today)
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
        *(item.c[name].label(f"item_{name}") for name in _ROW_COLUMNS),
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
        item = _ITEM.alias(f"{kind.value}_item")
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
            today = now.astimezone(_zone(name, config.zone)).date()
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
