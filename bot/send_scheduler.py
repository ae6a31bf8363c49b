"""The send scheduler of the delivery worker (bot/delivery.py): which message goes next,
within Telegram's limits. Pure: no I/O, no clock of its own (time is passed in), so it is
unit-tested step by step in tests/bot/test_send_scheduler.py. See docs/delivery.md.

Why not PTB's AIORateLimiter or aiolimiter: both are fair FIFO limiters. A request waits
its turn behind every request queued before it, so an emergency queued during a
1,000-recipient broadcast would wait for the broadcast (33 s at 30 msg/s), and a 429 makes
AIORateLimiter hold back *every* request for retry_after. Neither knows about per-chat
limits of private chats. The requirement is the opposite: the most urgent message takes
the next free slot, and a 429 stops only what it concerns. `SendScheduler` is a small
priority scheduler over token buckets that does that.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from models import Priority
from services.outbox.claim import Claimed
from services.outbox.split import Part

BULK = int(Priority.REMINDER)  # priorities from here on are "bulk": paused after a 429


class Bucket:
    """A token bucket: `capacity` messages back to back, then `rate` per second."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available."""
        self.refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float, floor: float | None = None) -> None:
        """Use a token. Sends we did not pace ourselves (replies) may overdraw, down to
        `floor` (default: one burst below zero)."""
        self.refill(now)
        self.tokens = max(self.tokens - 1, -self.capacity if floor is None else floor)

    def full(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.capacity


@dataclass
class Job:
    """A claimed message on its way: ordered by priority, then by outbox id (FIFO)."""

    message: Claimed
    priority: int
    seq: int
    parts: list[Part] = field(default_factory=list)
    plain: bool = False  # Telegram refused the HTML: send as plain text
    claimed_at: float = 0.0
    upload: tuple[str, bytes] | None = None  # a file drawn for it (payload "render")

    @property
    def chat_id(self) -> int:
        return self.message.chat_id

    @property
    def counted(self) -> bool:
        """Counts against the chat's message limit (edits do not; Telegram limits them
        separately and far less strictly)."""
        return self.message.kind != "edit"


class _Lane:
    """One chat: its queue (most urgent first), its bucket, and whether a send is in flight
    (one at a time per chat, so that parts and messages arrive in order)."""

    __slots__ = ("bucket", "busy", "heap", "paused_until", "ready_key")

    def __init__(self, bucket: Bucket) -> None:
        self.heap: list[tuple[int, int, Job]] = []
        self.busy = False
        self.paused_until = 0.0
        self.bucket = bucket
        self.ready_key: tuple[int, int] | None = None


class SendScheduler:
    """Chooses the next message to send: the most urgent one whose chat is free and within
    its own limit, when Telegram's overall limit allows a message now.

    Limits, all token buckets like Telegram's flood control: `rate` messages/s overall
    (burst `rate`/3, well inside Telegram's own bucket so that network jitter never
    provokes a 429), `chat_rate`/s per private chat (burst `chat_burst`) and
    `group_per_minute` per group (burst a quarter of it). A 429 pauses the chat it came from
    for retry_after; when it came from a private chat it also pauses bulk messages
    (reminders, broadcasts) for that long, since Telegram then wants fewer messages
    overall. Emergency and urgent messages to other chats go on: Telegram does not require
    them to wait.
    """

    def __init__(
        self,
        *,
        rate: float,
        chat_rate: float = 1.0,
        chat_burst: int = 2,
        group_per_minute: float = 20.0,
        now: float = 0.0,
    ) -> None:
        self.global_bucket = Bucket(max(1.0, rate / 3), rate, now)
        self.chat_rate = chat_rate
        self.chat_burst = chat_burst
        self.group_rate = group_per_minute / 60.0
        self.group_burst = max(1.0, group_per_minute / 4)
        self.bulk_paused_until = 0.0
        self._lanes: dict[int, _Lane] = {}
        self._ready: list[tuple[int, int, int]] = []  # (priority, seq, chat) lazily deleted
        self._delayed: list[tuple[float, int]] = []  # (time, chat)
        self._size = 0
        self._by_priority: dict[int, int] = {}
        self._ops = 0

    def __len__(self) -> int:
        """Messages waiting (not in flight)."""
        return self._size

    def worst_priority(self) -> int | None:
        """The least urgent priority waiting, if any."""
        waiting = [p for p, n in self._by_priority.items() if n > 0]
        return max(waiting) if waiting else None

    def _lane(self, chat_id: int, now: float) -> _Lane:
        lane = self._lanes.get(chat_id)
        if lane is None:
            if chat_id < 0:  # groups, supergroups and channels
                bucket = Bucket(self.group_burst, self.group_rate, now)
            else:
                bucket = Bucket(float(self.chat_burst), self.chat_rate, now)
            lane = self._lanes[chat_id] = _Lane(bucket)
        return lane

    def push(self, job: Job, now: float) -> None:
        lane = self._lane(job.chat_id, now)
        heapq.heappush(lane.heap, (job.priority, job.seq, job))
        self._size += 1
        self._by_priority[job.priority] = self._by_priority.get(job.priority, 0) + 1
        self._schedule(job.chat_id, lane, now)

    def _schedule(self, chat_id: int, lane: _Lane, now: float) -> None:
        if lane.busy or not lane.heap:
            return
        priority, seq, head = lane.heap[0]
        at = max(lane.paused_until, now + (lane.bucket.wait(now) if head.counted else 0.0))
        if at > now:
            heapq.heappush(self._delayed, (at, chat_id))
            return
        if lane.ready_key != (priority, seq):
            lane.ready_key = (priority, seq)
            heapq.heappush(self._ready, (priority, seq, chat_id))

    def _release_delayed(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            _, chat_id = heapq.heappop(self._delayed)
            lane = self._lanes.get(chat_id)
            if lane is not None:
                self._schedule(chat_id, lane, now)

    def next(
        self, now: float, max_priority: int = int(Priority.BROADCAST)
    ) -> tuple[Job | None, float]:
        """The job to send now (its tokens taken, its chat marked busy), or None and how
        long to wait before asking again (math.inf: until something changes)."""
        self._release_delayed(now)
        wait = math.inf
        while self._ready:
            priority, seq, chat_id = self._ready[0]
            lane = self._lanes.get(chat_id)
            if (
                lane is None
                or lane.busy
                or not lane.heap
                or lane.ready_key != (priority, seq)
                or lane.heap[0][:2] != (priority, seq)
            ):
                heapq.heappop(self._ready)
                if lane is not None and lane.ready_key == (priority, seq):
                    lane.ready_key = None
                    self._schedule(chat_id, lane, now)
                continue
            head = lane.heap[0][2]
            chat_wait = max(lane.paused_until - now, lane.bucket.wait(now) if head.counted else 0.0)
            if chat_wait > 0:  # replies to this chat used its tokens meanwhile
                heapq.heappop(self._ready)
                lane.ready_key = None
                heapq.heappush(self._delayed, (now + chat_wait, chat_id))
                continue
            if priority > max_priority:
                break
            if priority >= BULK and now < self.bulk_paused_until:
                wait = self.bulk_paused_until - now
                break
            global_wait = self.global_bucket.wait(now)
            if global_wait > 0:
                wait = global_wait
                break
            heapq.heappop(self._ready)
            lane.ready_key = None
            _, _, job = heapq.heappop(lane.heap)
            lane.busy = True
            self._size -= 1
            self._by_priority[priority] -= 1
            self.global_bucket.take(now)
            if job.counted:
                lane.bucket.take(now)
            return job, 0.0
        if self._delayed:
            wait = min(wait, max(0.0, self._delayed[0][0] - now))
        return None, wait

    def done(self, job: Job, now: float) -> None:
        """The send of `job` finished (whatever the outcome): its chat is free again."""
        lane = self._lanes.get(job.chat_id)
        if lane is None:
            return
        lane.busy = False
        self._schedule(job.chat_id, lane, now)
        self._ops += 1
        if self._ops % 1000 == 0:
            self._prune(now)

    def retry_after(self, job: Job, seconds: float, now: float) -> None:
        """Telegram answered 429 to `job`: pause what it concerns and queue `job` again."""
        lane = self._lane(job.chat_id, now)
        lane.paused_until = max(lane.paused_until, now + seconds)
        if job.chat_id > 0:
            self.bulk_paused_until = max(self.bulk_paused_until, now + seconds)
        lane.busy = False
        self.push(job, now)

    def note_external(self, chat_id: int | None, now: float) -> None:
        """A message the bot sent without us (a reply to a user) used Telegram's quota; an
        edit (`chat_id` None) only the overall one."""
        self.global_bucket.take(now)
        if chat_id is None:
            return
        # A person talking to the bot gets quick answers; Telegram tolerates such bursts in
        # one chat, so replies use up the chat's allowance but do not push the worker's
        # next message to that chat further than its next token.
        self._lane(chat_id, now).bucket.take(now, floor=0.0)

    def pause_chat(self, chat_id: int, seconds: float, now: float) -> None:
        lane = self._lane(chat_id, now)
        lane.paused_until = max(lane.paused_until, now + seconds)
        if chat_id > 0:
            self.bulk_paused_until = max(self.bulk_paused_until, now + seconds)

    def move(self, job: Job, new_chat_id: int, now: float) -> None:
        """A group became a supergroup: queue `job` (in flight) under its new chat id."""
        old = self._lanes.get(job.chat_id)
        if old is not None:
            old.busy = False
            self._schedule(job.chat_id, old, now)
        job.message.chat_id = new_chat_id
        self.push(job, now)

    def remove(self, predicate: Callable[[Job], bool], now: float) -> list[Job]:
        """Take waiting jobs out (e.g. of a cancelled broadcast); returns them."""
        removed: list[Job] = []
        for chat_id, lane in self._lanes.items():
            keep = [entry for entry in lane.heap if not predicate(entry[2])]
            if len(keep) == len(lane.heap):
                continue
            removed += [entry[2] for entry in lane.heap if predicate(entry[2])]
            heapq.heapify(keep)
            lane.heap = keep
            lane.ready_key = None
            self._schedule(chat_id, lane, now)
        for job in removed:
            self._size -= 1
            self._by_priority[job.priority] -= 1
        return removed

    def drain(self) -> list[Job]:
        """Every waiting job (at shutdown)."""
        jobs = [entry[2] for lane in self._lanes.values() for entry in lane.heap]
        for lane in self._lanes.values():
            lane.heap = []
            lane.ready_key = None
        self._ready.clear()
        self._delayed.clear()
        self._size = 0
        self._by_priority.clear()
        return jobs

    def _prune(self, now: float) -> None:
        """Forget idle chats whose bucket is full again (they would start full anyway)."""
        idle = [
            chat_id
            for chat_id, lane in self._lanes.items()
            if not lane.heap
            and not lane.busy
            and lane.paused_until <= now
            and lane.bucket.full(now)
        ]
        for chat_id in idle:
            del self._lanes[chat_id]
