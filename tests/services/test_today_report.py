"""/today as the duty officer's service computes it (no Telegram): who counts as checked
in, AMBER, RED, paused, missing or suspicious in their area, the names listed and the
counts beyond them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import time_machine

from services import people
from services.health import checkins, reports
from services.health.assessment import Readings
from tests.support.botfixtures import ADMIN_ID
from tests.support.checkin_helpers import CONFIG, POLICY, make_person, officer

DAY = date(2026, 11, 30)
MORNING = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai
FINE = Readings(headache=0, gi=0, fatigue=0, dizziness=0, functional=0, spo2=90, heart_rate=76)
AMBER = Readings(headache=2, gi=1, fatigue=1, dizziness=0, functional=1, spo2=86, heart_rate=80)
RED = Readings(red_flags=frozenset({"breathless_rest"}))


def ids(group: reports.Group) -> list[int]:
    return [p.id for p in group.people]


def test_today_counts_everyone_and_lists_the_first_names_of_each_group(db):
    with time_machine.travel(MORNING - timedelta(days=5), tick=False) as travel:
        duty = officer(db, 5001)
        missing = [
            make_person(db, 2000 + n, f"Missing {n}") for n in range(reports.NAMES_SHOWN + 4)
        ]
        red = make_person(db, 1001, "Red")
        worse = make_person(db, 1002, "Worse")  # fine, then AMBER: AMBER
        better = make_person(db, 1003, "Better")  # AMBER, then fine: checked in
        paused = make_person(db, 1004, "Paused")
        gamer = make_person(db, 1005, "Gamer")  # the same readings five days running
        make_person(db, 1006, "Hangzhou", prefecture="zhejiang")  # no altitude check-in
        aba = make_person(db, 1007, "Aba", prefecture="aba")  # another area
        for back in range(4, -1, -1):
            travel.move_to(MORNING - timedelta(days=back))
            db.call(checkins.submit, gamer.id, FINE, config=CONFIG, policy=POLICY)
        db.call(checkins.pause, paused, DAY, DAY + timedelta(days=3))
        for person, readings in ((red, RED), (worse, FINE), (better, AMBER), (aba, AMBER)):
            db.call(checkins.submit, person.id, readings, config=CONFIG, policy=POLICY)
        travel.move_to(MORNING + timedelta(hours=1))
        for person, readings in ((worse, AMBER), (better, FINE)):
            db.call(checkins.submit, person.id, readings, config=CONFIG, policy=POLICY)
        (ganzi,) = db.call(reports.today, duty, CONFIG)
        make_person(db, 1008, "Registered today")  # counted, monitored from tomorrow
        (later,) = db.call(reports.today, duty, CONFIG)
        assert later.total == ganzi.total + 1 and later.missing == ganzi.missing
        assert (later.none.count, [p.display_name for p in later.none.people]) == (
            1,
            ["Registered today"],
        )

    assert ganzi.prefecture == "ganzi"
    # the officer, the missing, red, worse, better, paused and the gamer
    assert ganzi.total == 1 + len(missing) + 5
    assert ganzi.checked_in == 4
    assert (ganzi.paused.count, ids(ganzi.paused)) == (1, [paused.id])
    assert (ganzi.red.count, ids(ganzi.red)) == (1, [red.id])
    assert (ganzi.amber.count, ids(ganzi.amber)) == (1, [worse.id])
    assert (ganzi.checked.count, ids(ganzi.checked)) == (2, [better.id, gamer.id])  # GREEN
    assert ganzi.missing.count == len(missing) + 1  # and the officer, who has not checked in
    everyone_missing = sorted([duty.id] + [p.id for p in missing])
    assert ids(ganzi.missing) == everyone_missing[: reports.NAMES_SHOWN]
    assert ganzi.missing.more == len(everyone_missing) - reports.NAMES_SHOWN
    # the groups together are everyone counted, each named or "and N more"
    assert sum(g.count for _, g in ganzi.groups()) == ganzi.total
    assert all(len(g.people) + g.more == g.count for _, g in ganzi.groups())
    assert (ganzi.suspicious.count, ids(ganzi.suspicious)) == (1, [gamer.id])

    admin = db.call(people.find, ADMIN_ID)
    with time_machine.travel(MORNING + timedelta(hours=2), tick=False):
        areas = db.call(reports.today, admin, CONFIG)
    assert [a.prefecture for a in areas] == ["ganzi", "aba", "zhejiang"]  # the postings' order
    assert areas[0] == later
    assert (areas[1].amber.count, ids(areas[1].amber), areas[1].total) == (1, [aba.id], 1)
    # Zhejiang has no altitude check-in: counted, never missing
    assert (areas[2].total, areas[2].missing.count, areas[2].checked_in) == (1, 0, 0)
    assert [p.display_name for p in areas[2].none.people] == ["Hangzhou"]
