"""Care schedules: the rules, pure. Low-altitude rest rotations and physical examinations.

Due dates are derived, never stored: every call computes them from the person row (the
assignment start and posting altitude, so a profile edit needs no hook), the policy in
force (services.care_policy) and the person's care_item row (last done, booked, snoozed,
set by an admin). `compute` is the rule; the area lists (services.care.areas) have the
database derive the same day for everyone at once and build each line shown through
`compute`. The reminder slots (`latest_slot_day`, `next_slot_day`) are described in
services.care.reminders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config import Settings
from config.settings import CarePolicyOverride
from models import CareItem, CareKind, CareProfile, Person
from services.care_policy import Band, BandPolicy, band_for_altitude
from services.people import name_of
from services.postings import load_postings

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


def zone_of(name: str | None, default: ZoneInfo) -> ZoneInfo:
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
    return Timing(zone_of(profile.timezone if profile else None, config.zone), seconds)


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


def policy_for(
    policy: dict[Band, BandPolicy], person: PersonFacts
) -> tuple[Band | None, BandPolicy | None]:
    band = band_for_altitude(person.altitude_m)
    return band, policy.get(band) if band else None
