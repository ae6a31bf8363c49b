"""The send scheduler (bot/send_scheduler.py): priority over token buckets, pure code, time
passed in explicitly."""

from __future__ import annotations

import itertools
import math

import pytest

from bot.send_scheduler import Job, SendScheduler
from models import Priority
from services.outbox.claim import Claimed
from services.outbox.split import parts_of

E, U, R, B = (
    int(p) for p in (Priority.EMERGENCY, Priority.URGENT, Priority.REMINDER, Priority.BROADCAST)
)


def job(seq: int, chat: int, priority: int = B) -> Job:
    message = Claimed(seq, chat, None, priority, "text", {"text": "x"}, 0, 0, None, f"k{seq}")
    return Job(message, priority, seq, parts_of("text", message.payload))


def drain(scheduler: SendScheduler, start: float, until: float, step: float = 0.001):
    """Ask for jobs as a worker would, finishing each send at once; returns (time, job)."""
    sent = []
    now = start
    while now <= until:
        item, wait = scheduler.next(now)
        if item is None:
            if math.isinf(wait):
                break
            now += max(wait, step)
            continue
        sent.append((now, item))
        scheduler.done(item, now)
    return sent


def test_the_overall_rate_is_never_exceeded_in_any_second():
    scheduler = SendScheduler(rate=30, now=0.0)
    for i in range(300):
        scheduler.push(job(i, 1000 + i), 0.0)
    sent = drain(scheduler, 0.0, 20.0)
    assert len(sent) == 300
    times = [at for at, _ in sent]
    burst = int(30 / 3)
    for i, at in enumerate(times):
        window = [x for x in times[i:] if x < at + 1.0]
        assert len(window) <= 30 + burst, at
    # After the initial burst, the pace is the configured rate: 290 more in ~9.67 s.
    assert times[-1] == pytest.approx((300 - burst) / 30, abs=0.05)


def test_an_emergency_takes_the_next_free_slot_ahead_of_a_broadcast():
    scheduler = SendScheduler(rate=30, now=0.0)
    for i in range(1000):
        scheduler.push(job(i, 5000 + i), 0.0)
    sent = drain(scheduler, 0.0, 5.0)
    scheduler.push(job(99_999, 42, E), 5.0)
    later = drain(scheduler, 5.0, 5.2)
    first_time, first = later[0]
    assert first.seq == 99_999 and first_time - 5.0 <= 1 / 30 + 0.002
    assert len(sent) > 100


def test_priorities_and_fifo_order():
    scheduler = SendScheduler(rate=1000, now=0.0)
    for seq, priority in [(1, B), (2, R), (3, U), (4, B), (5, E), (6, U)]:
        scheduler.push(job(seq, 100 + seq, priority), 0.0)
    order = [item.seq for _, item in drain(scheduler, 0.0, 1.0)]
    assert order == [5, 3, 6, 2, 1, 4]


def test_one_send_at_a_time_per_chat_and_the_private_chat_limit():
    scheduler = SendScheduler(rate=1000, chat_rate=1, chat_burst=2, now=0.0)
    for seq in range(5):
        scheduler.push(job(seq, 7), 0.0)
    first, _ = scheduler.next(0.0)
    assert first is not None and first.seq == 0
    assert scheduler.next(0.0)[0] is None  # chat 7 is busy until the send finishes
    scheduler.done(first, 0.0)
    times = [at for at, _ in drain(scheduler, 0.0, 10.0)]
    # burst of 2 (one already used), then one per second
    assert times == pytest.approx([0.0, 1.0, 2.0, 3.0], abs=0.01)


def test_groups_get_twenty_a_minute():
    scheduler = SendScheduler(rate=1000, group_per_minute=20, now=0.0)
    for seq in range(10):
        scheduler.push(job(seq, -100123), 0.0)
    times = [at for at, _ in drain(scheduler, 0.0, 60.0)]
    assert len(times) == 10
    assert times[5] >= 2.9  # burst of 5, then one every 3 s
    assert all(b - a >= 2.99 for a, b in itertools.pairwise(times[5:]))


def test_a_429_pauses_its_chat_and_bulk_but_not_emergencies_elsewhere():
    scheduler = SendScheduler(rate=1000, now=0.0)
    hit = job(1, 11)
    scheduler.push(hit, 0.0)
    taken, _ = scheduler.next(0.0)
    assert taken is hit
    scheduler.retry_after(hit, 3.0, 0.1)
    scheduler.push(job(2, 12, B), 0.1)
    scheduler.push(job(3, 13, E), 0.1)
    item, _ = scheduler.next(0.1)
    assert item is not None and item.seq == 3  # the emergency to another chat goes on
    scheduler.done(item, 0.1)
    item, wait = scheduler.next(0.2)
    assert item is None and wait == pytest.approx(2.9, abs=0.01)  # bulk waits retry_after
    sent = drain(scheduler, 0.2, 5.0)
    assert [(round(at, 2), i.seq) for at, i in sent] == [(3.1, 1), (3.1, 2)]


def test_replies_use_the_same_quota():
    scheduler = SendScheduler(rate=3, chat_rate=1, chat_burst=2, now=0.0)  # global burst 1
    scheduler.note_external(20, 0.0)
    scheduler.push(job(1, 21), 0.0)
    item, wait = scheduler.next(0.0)
    assert item is None and wait == pytest.approx(1 / 3, abs=0.01)
    for _ in range(3):  # replies use a chat's allowance, but never overdraw it
        scheduler.note_external(21, 0.0)
    item, wait = scheduler.next(1.0)
    assert item is not None and item.seq == 1  # its next token, not later


def test_concurrency_reserve_lets_only_urgent_work_through():
    scheduler = SendScheduler(rate=1000, now=0.0)
    scheduler.push(job(1, 31, B), 0.0)
    assert scheduler.next(0.0, max_priority=U)[0] is None
    scheduler.push(job(2, 32, E), 0.0)
    item, _ = scheduler.next(0.0, max_priority=U)
    assert item is not None and item.seq == 2


def test_removing_waiting_jobs():
    scheduler = SendScheduler(rate=1000, now=0.0)
    for seq in range(6):
        item = job(seq, 40 + seq % 2)
        item.message.source = "broadcast:1" if seq % 3 else "other"
        scheduler.push(item, 0.0)
    removed = scheduler.remove(lambda j: j.message.source == "broadcast:1", 0.0)
    assert sorted(j.seq for j in removed) == [1, 2, 4, 5]
    assert len(scheduler) == 2
    assert sorted(i.seq for _, i in drain(scheduler, 0.0, 1.0)) == [0, 3]
