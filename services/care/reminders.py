"""Care schedules: the reminder pass.

For an item due on day D, at the person's local reminder time T (their own, or
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
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from models import CareKind, DutyArea, Person, Priority, Role, Status
from services import audit, outbox
from services.care.items import (
    care_profiles,
    create_items,
    facts_query,
    item_rows,
    person_facts,
    save_watermarks,
)
from services.care.rules import (
    CareConfig,
    Due,
    ItemRow,
    PersonFacts,
    Timing,
    compute,
    latest_slot_day,
    next_slot_day,
    policy_for,
    reminder_key,
    schedule_state,
    timing_for,
)
from services.care.texts import item_name, posting_text, reminder_buttons, reminder_text
from services.care_policy import BandPolicy, effective_policy
from services.i18n import t


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
    query = facts_query()
    if person_ids is not None:
        query = query.where(col(Person.id).in_(list(person_ids)))
    people_rows = [person_facts(row) for row in session.exec(query)]
    items = item_rows(session, person_ids)
    profiles = care_profiles(session, person_ids)
    todays: dict[Timing, date] = {}
    work: list[tuple[PersonFacts, ItemRow | None, Due, Timing, date, BandPolicy | None]] = []
    missing: list[dict[str, Any]] = []
    for person in people_rows:
        timing = timing_for(profiles.get(person.id), config)
        today = todays.get(timing) or todays.setdefault(timing, timing.today(now))
        if schedule_state(person, today) != "ok":
            continue
        _, band_policy = policy_for(policy, person)
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
        create_items(session, [(m["person_id"], CareKind(m["kind"])) for m in missing])
        new_rows = item_rows(session, {m["person_id"] for m in missing})
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
    save_watermarks(session, rows)
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
                count=due.overdue_days(today),
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
