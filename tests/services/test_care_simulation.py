"""Six months of care reminders for 100 cadres at different altitudes, on a controlled
clock, driving the reminder pass as the scheduler does (at each planned wake-up, plus
stray passes at random moments), with cadres who act on their reminders in different ways,
profile changes, a short and a long stop of the bot, and a pass killed half-way.

The expected reminders are worked out independently from the documented rules (the
default policy, slots at D-7, D-1, D and daily after D at the person's local reminder
time, the grace period after a stop, escalation CADRE_CARE_ESCALATION_DAYS after D) and
compared with what was queued: every one present, at the right moment, none twice.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlmodel import col, select

from models import CareItem, CareKind, OutboxMessage, Role
from services import clock, outbox, people
from services.care import records, rules
from services.care import reminders as care_reminders
from services.care.rules import CareConfig
from services.care_policy import DEFAULT_POLICY, band_for_altitude
from tests.support import factories

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")  # summer time starts on 2026-03-29, inside the window
GRACE = timedelta(hours=8)
ESCALATION_DAYS = 7
CFG = CareConfig(SHANGHAI, 9 * 3600, GRACE, ESCALATION_DAYS)
START = datetime(2026, 1, 1, tzinfo=SHANGHAI)
END = datetime(2026, 7, 1, tzinfo=SHANGHAI)
ALTITUDES = (1800, 2600, 3000, 3400, 3600, 4000, 4400, 4600, 4900)
COUNTIES = {"ganzi": "ganzi.litang", "aba": "aba.barkam", "liangshan": "liangshan.muli"}
BEHAVIOURS = ("diligent", "booker", "snoozer", "ignorer")


def shanghai(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI)


# Stops of the bot: [down, up). A pass at `up` is the pass at start-up.
SHORT_STOP = (shanghai(date(2026, 2, 10), 8), shanghai(date(2026, 2, 10), 12))
LONG_STOP = (shanghai(date(2026, 4, 5), 6), shanghai(date(2026, 4, 6), 10))
KILLED_AT = shanghai(date(2026, 5, 20), 9)  # this pass dies half-way (kill -9)
KILL_STOP = (KILLED_AT, KILLED_AT + timedelta(minutes=10))
# Before its first start the bot was not running: what fell due then is caught up at START
# (reminders within the grace period, escalations whatever their age).
BEFORE = (datetime(2025, 8, 1, tzinfo=SHANGHAI), START)
STOPS = (BEFORE, SHORT_STOP, LONG_STOP, KILL_STOP)


@dataclass
class Cadre:
    person_id: int
    telegram_id: int
    prefecture: str
    altitude: int
    start: date
    zone: ZoneInfo
    seconds: int
    behaviour: str
    # the history of what the schedule depends on: (moment, field, value)
    history: list[tuple[datetime, str, Any]] = field(default_factory=list)


@dataclass
class ItemState:
    last_done: date | None = None
    booked: date | None = None
    snoozed: date | None = None
    changed_at: datetime | None = None


def slot(cadre: Cadre, day: date) -> datetime:
    at = time(cadre.seconds // 3600, cadre.seconds % 3600 // 60)
    return datetime.combine(day, at, tzinfo=cadre.zone).astimezone(UTC)


class Oracle:
    """What should happen, from the documented rules and what the simulated people did."""

    def __init__(self, cadres: list[Cadre]) -> None:
        self.cadres = {c.person_id: c for c in cadres}
        # (person, kind) -> [(moment, ItemState)]; and (person) -> [(moment, altitude)]
        self.items: dict[tuple[int, CareKind], list[tuple[datetime, ItemState]]] = {}
        self.altitude: dict[int, list[tuple[datetime, int]]] = {
            c.person_id: [(BEFORE[0].astimezone(UTC), c.altitude)] for c in cadres
        }

    def change(self, person_id: int, kind: CareKind, moment: datetime, **values: Any) -> None:
        history = self.items.setdefault(
            (person_id, kind), [(BEFORE[0].astimezone(UTC), ItemState())]
        )
        state = ItemState(**{**history[-1][1].__dict__, **values, "changed_at": moment})
        history.append((moment, state))

    def move(self, person_id: int, moment: datetime, altitude: int) -> None:
        self.altitude[person_id].append((moment, altitude))

    def state_at(self, person_id: int, kind: CareKind, moment: datetime) -> ItemState:
        history = self.items.get((person_id, kind), [(BEFORE[0].astimezone(UTC), ItemState())])
        return [s for at, s in history if at <= moment][-1]

    def altitude_at(self, person_id: int, moment: datetime) -> int:
        return [a for at, a in self.altitude[person_id] if at <= moment][-1]

    def due_at(
        self, person_id: int, kind: CareKind, moment: datetime
    ) -> tuple[date | None, ItemState]:
        cadre = self.cadres[person_id]
        state = self.state_at(person_id, kind, moment)
        band = band_for_altitude(self.altitude_at(person_id, moment))
        policy = DEFAULT_POLICY[band]
        if kind == CareKind.REST:
            every = policy.rest_every_days
            base = None if every is None else (state.last_done or cadre.start) + timedelta(every)
        elif state.last_done is not None:
            base = state.last_done + timedelta(policy.exam_every_days)
        else:
            first = policy.exam_first_days
            first = policy.exam_every_days if first is None else first
            base = cadre.start + timedelta(first)
        if base is None:
            return None, state
        return state.booked or base, state

    def expected(self) -> tuple[dict[str, datetime], dict[str, datetime]]:
        """Reminder key -> when it is sent; escalation key -> when it is sent."""
        reminders: dict[str, datetime] = {}
        escalations: dict[str, datetime] = {}
        for cadre in self.cadres.values():
            for kind in CareKind:
                stop_latest: dict[tuple[datetime, datetime], tuple[datetime, str]] = {}
                day = BEFORE[0].date()
                while day <= END.date():
                    moment = slot(cadre, day)
                    day += timedelta(days=1)
                    if not BEFORE[0] <= moment < END:
                        continue
                    due, state = self.due_at(cadre.person_id, kind, moment)
                    if due is None:
                        continue
                    sent_day = moment.astimezone(cadre.zone).date()
                    valid = sent_day in (due - timedelta(7), due - timedelta(1)) or sent_day >= due
                    if state.snoozed is not None and sent_day < state.snoozed:
                        valid = False
                    if state.changed_at is not None and moment <= state.changed_at:
                        valid = False
                    if valid:
                        key = f"{kind}:{due}:{rules.offset_label(due, sent_day)}"
                        stop = _stop_of(moment)
                        if stop is None:
                            reminders[_k(cadre, key)] = moment
                        else:  # only the latest slot of a stop, if it is not too old
                            stop_latest[stop] = (moment, key)
                    escalate = slot(cadre, due + timedelta(ESCALATION_DAYS))
                    if escalate == moment:
                        stop = _stop_of(moment)
                        escalations[_k(cadre, f"{kind}:{due}:esc")] = stop[1] if stop else moment
                for (_, up), (moment, key) in stop_latest.items():
                    if up - moment <= GRACE:
                        reminders[_k(cadre, key)] = up
        return reminders, escalations


def _k(cadre: Cadre, key: str) -> str:
    return f"{cadre.person_id}:{key}"


def _stop_of(moment: datetime) -> tuple[datetime, datetime] | None:
    for down, up in STOPS:
        if down <= moment < up:
            return down, up
    return None


def _stopped(moment: datetime) -> bool:
    return _stop_of(moment) is not None


@pytest.fixture
def cadres(db) -> list[Cadre]:
    rng = random.Random(2022)
    factories.admin(db)
    result = []
    for prefecture, county in COUNTIES.items():  # one duty officer per prefecture
        factories.person(
            db,
            3000 + len(result) * 0 + list(COUNTIES).index(prefecture),
            role=Role.DUTY_OFFICER,
            prefecture=prefecture,
            county=county,
            assignment_start=None,
        )
    with time_machine.travel(START - timedelta(days=1), tick=False):
        for number in range(100):
            prefecture = list(COUNTIES)[number % 3]
            altitude = ALTITUDES[number % len(ALTITUDES)]
            start = date(2025, 9, 1) + timedelta(days=rng.randrange(0, 170))
            person = factories.person(
                db,
                10_000 + number,
                prefecture=prefecture,
                county=COUNTIES[prefecture],
                posting_altitude_m=altitude,
                altitude_source="self",
                assignment_start=start.isoformat(),
                assignment_end="2028-01-01",
            )
            zone, seconds = SHANGHAI, 9 * 3600
            if number % 10 == 7:
                seconds = 7 * 3600
            elif number % 10 == 8:
                seconds = 20 * 3600 + 30 * 60
            elif number % 10 == 9:
                zone = BERLIN
            if (zone, seconds) != (SHANGHAI, 9 * 3600):
                tz = zone.key if zone is not SHANGHAI else None
                db.call(records.set_reminder_time, person.id, seconds, tz)
            result.append(
                Cadre(
                    person.id,
                    person.telegram_id,
                    prefecture,
                    altitude,
                    start,
                    zone,
                    seconds,
                    BEHAVIOURS[rng.randrange(len(BEHAVIOURS))],
                )
            )
    return result


def test_six_months_for_100_cadres_every_reminder_once_at_the_right_moment(db, cadres, monkeypatch):
    rng = random.Random(7)
    oracle = Oracle(cadres)
    by_person = {c.person_id: c for c in cadres}
    items: dict[int, tuple[int, CareKind]] = {}
    escalated: list[tuple[int, date, datetime]] = []  # (item, due, when) from each pass
    actions: list[tuple[datetime, int, Any]] = []
    counter = iter(range(10**9))

    def plan(moment: datetime, action: Any) -> None:
        moment = max(moment, clock.now() + timedelta(minutes=1))
        while _stopped(moment):  # nobody can press a button while the bot is down
            moment += timedelta(minutes=30)
        heapq.heappush(actions, (moment.astimezone(UTC), next(counter), action))

    # Five cadres are moved to another altitude (band) during the six months.
    for cadre in rng.sample(cadres, 5):
        moment = shanghai(date(2026, 3, 1) + timedelta(days=rng.randrange(60)), 14, 17)
        target = rng.choice([a for a in ALTITUDES if a != cadre.altitude])

        def move(now: datetime, cadre: Cadre = cadre, target: int = target) -> None:
            db.call(people.update_profile, cadre.telegram_id, posting_altitude_m=target)
            oracle.move(cadre.person_id, now, target)

        move.is_move = True  # type: ignore[attr-defined]
        plan(moment, move)

    def local(cadre: Cadre, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), tzinfo=cadre.zone).astimezone(UTC)

    def _booked(person_id: int, kind: CareKind) -> bool:
        return oracle.state_at(person_id, kind, clock.now()).booked is not None

    def react(message: OutboxMessage) -> None:
        """The cadre acts on a reminder according to their habit."""
        _, item_id, due_text, offset = message.idempotency_key.split(":")
        person_id, kind = items[int(item_id)]
        cadre = by_person[person_id]
        due = date.fromisoformat(due_text)
        sent_day = message.created_at.astimezone(cadre.zone).date()

        def done(day: date, item: int = int(item_id), k: CareKind = kind) -> Any:
            def act(now: datetime) -> None:
                db.call(records.record_done, person_id, item, day, CFG)
                oracle.change(person_id, k, now, last_done=day, booked=None, snoozed=None)

            act.person_id = person_id  # type: ignore[attr-defined]
            return act

        if cadre.behaviour == "diligent" and offset == "0":
            plan(local(cadre, sent_day, 15), done(sent_day))
        elif cadre.behaviour == "booker" and offset == "-7" and not _booked(person_id, kind):
            booked = due + timedelta(days=3)

            def book(now: datetime, item: int = int(item_id), k: CareKind = kind) -> None:
                db.call(records.record_booked, person_id, item, booked, CFG)
                oracle.change(person_id, k, now, booked=booked, snoozed=None)

            book.person_id = person_id  # type: ignore[attr-defined]
            plan(local(cadre, sent_day, 10), book)
        elif cadre.behaviour == "booker" and offset == "0":
            plan(local(cadre, sent_day, 11), done(sent_day))
        elif cadre.behaviour == "snoozer" and offset == "0":
            until = sent_day + timedelta(days=3)

            def snooze(now: datetime, item: int = int(item_id), k: CareKind = kind) -> None:
                db.call(records.record_snoozed, person_id, item, 3, CFG)
                oracle.change(person_id, k, now, snoozed=until)

            snooze.person_id = person_id  # type: ignore[attr-defined]
            plan(local(cadre, sent_day, 9, 30), snooze)
        elif cadre.behaviour == "snoozer" and offset == "+3":
            plan(local(cadre, sent_day, 18), done(sent_day))

    def run_pass(
        now: datetime, *, die: bool = False, person_id: int | None = None
    ) -> care_reminders.PassResult | None:
        real = outbox.enqueue_many
        if die:

            def dying(*args: Any, **kwargs: Any) -> Any:
                real(*args, **kwargs)  # the rows are written, then the process dies
                raise SystemExit("kill -9 in the middle of a pass")

            monkeypatch.setattr(outbox, "enqueue_many", dying)
        try:
            ids = None if person_id is None else [person_id]
            result = db.call(care_reminders.run_pass, now, CFG, person_ids=ids)
        except SystemExit:
            return None
        finally:
            monkeypatch.setattr(outbox, "enqueue_many", real)
        if not items:
            with db.session() as s:
                for item in s.exec(select(CareItem)):
                    items[item.id] = (item.person_id, CareKind(item.kind))
        for item_id, due in result.escalated:
            escalated.append((item_id, due, now))
        keys = [k for k in result.keys if not k.startswith("care:esc:")]
        if keys:
            with db.session() as s:
                found = s.exec(
                    select(OutboxMessage).where(col(OutboxMessage.idempotency_key).in_(keys))
                ).all()
                for message in sorted(found, key=lambda m: m.id or 0):
                    item_id = int(message.idempotency_key.split(":")[1])
                    if item_id not in items:
                        row = s.get(CareItem, item_id)
                        items[item_id] = (row.person_id, CareKind(row.kind))
                    react(message)
        return result

    passes = 0
    with time_machine.travel(START, tick=False) as traveller:
        next_pass: datetime | None = START.astimezone(UTC)
        strays = [
            shanghai(START.date() + timedelta(days=d), 0) + timedelta(minutes=rng.randrange(1440))
            for d in range(0, 182, 2)
        ]
        stray_queue = sorted(s.astimezone(UTC) for s in strays)
        ups = sorted(up.astimezone(UTC) for _, up in STOPS if up > START)
        kills = [KILLED_AT.astimezone(UTC)]
        killed = False
        while True:
            candidates = [t for t in (next_pass,) if t is not None]
            candidates += actions[:1] and [actions[0][0]]
            candidates += stray_queue[:1] + ups[:1] + kills[:1]
            now = min(candidates)
            if now >= END:
                break
            traveller.move_to(now)
            if actions and actions[0][0] == now:
                _, _, action = heapq.heappop(actions)
                action(now)
                if getattr(action, "is_move", False):
                    # a profile edit is caught by the periodic safety-net pass (5 minutes)
                    soon = now + timedelta(minutes=5)
                else:
                    # a cadre's button replans at once for them (CareTimers.replan)
                    mine = run_pass(now, person_id=action.person_id)
                    assert mine is not None
                    soon = mine.next_wakeup
                if soon is not None:
                    next_pass = soon if next_pass is None else min(next_pass, soon)
                continue
            if ups and ups[0] == now:
                ups.pop(0)
            if kills and kills[0] == now:
                kills.pop(0)
            while stray_queue and stray_queue[0] <= now:
                stray_queue.pop(0)
            if _stopped(now):
                if now == KILLED_AT.astimezone(UTC) and not killed:
                    killed = True
                    assert run_pass(now, die=True) is None
                next_pass = None  # the process is down: nothing runs until it starts again
                continue
            result = run_pass(now)
            passes += 1
            assert result is not None
            next_pass = result.next_wakeup
            assert next_pass is None or next_pass > now

    with db.session() as s:
        queued = list(s.exec(select(OutboxMessage).where(OutboxMessage.source.like("care:%"))))
    oracle_reminders, oracle_escalations = oracle.expected()

    got_reminders: dict[str, datetime] = {}
    notices: dict[datetime, set[int]] = {}  # escalation notices: when -> recipients
    for message in queued:
        if message.idempotency_key.startswith("care:esc:"):
            notices.setdefault(message.created_at, set()).add(message.chat_id)
            continue
        _, item_id, due_text, rest = message.idempotency_key.split(":", 3)
        person_id, kind = items[int(item_id)]
        key = f"{person_id}:{kind}:{due_text}:{rest}"
        assert key not in got_reminders, f"sent twice: {key}"
        got_reminders[key] = message.created_at
        assert message.chat_id == by_person[person_id].telegram_id
    got_escalations: Counter[str] = Counter()
    escalation_times: dict[str, datetime] = {}
    expected_notices: dict[datetime, set[int]] = {}
    for item_id, due, when in escalated:
        person_id, kind = items[item_id]
        key = f"{person_id}:{kind}:{due.isoformat()}:esc"
        got_escalations[key] += 1
        escalation_times[key] = when
        officer = 3000 + list(COUNTIES).index(by_person[person_id].prefecture)
        expected_notices.setdefault(when, set()).update({officer, 9001})

    missing = sorted(set(oracle_reminders) - set(got_reminders))
    extra = sorted(set(got_reminders) - set(oracle_reminders))
    assert (missing, extra) == ([], [])
    late = {k: (got_reminders[k], v) for k, v in oracle_reminders.items() if got_reminders[k] != v}
    assert late == {}
    # one reminder a day per item at most (the day a slot belongs to: due + offset)
    per_day = Counter()
    for key in got_reminders:
        person_item, due_text, offset = key.rsplit(":", 2)
        per_day[(person_item, date.fromisoformat(due_text) + timedelta(days=int(offset)))] += 1
    assert max(per_day.values()) == 1
    on_time = [
        k
        for k, moment in got_reminders.items()
        if moment.astimezone(by_person[int(k.split(":")[0])].zone).time()
        == time(
            by_person[int(k.split(":")[0])].seconds // 3600,
            by_person[int(k.split(":")[0])].seconds % 3600 // 60,
        )
    ]
    caught_up = [k for k, moment in got_reminders.items() if any(moment == up for _, up in STOPS)]
    assert len(on_time) + len(caught_up) == len(got_reminders) and caught_up

    # Escalations: each overdue item once, at the right moment; one notice per pass to its
    # prefecture's duty officer and the admin.
    assert set(got_escalations) == set(oracle_escalations)
    assert set(got_escalations.values()) == {1}
    assert {k: escalation_times[k] for k in oracle_escalations} == oracle_escalations
    assert notices == expected_notices

    # the story covered what it should
    offsets = Counter(k.rsplit(":", 1)[1] for k in got_reminders)
    assert offsets["-7"] and offsets["-1"] and offsets["0"] and offsets["+1"]
    assert len(oracle_escalations) >= 10 and passes < 2000
    print(
        f"\n{len(got_reminders)} reminders, {len(got_escalations)} escalations, "
        f"{passes} passes, {len(caught_up)} caught up after a stop"
    )
