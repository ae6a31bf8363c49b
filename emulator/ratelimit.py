"""Telegram's flood limits for outgoing messages, as token buckets.

Defaults follow Telegram's FAQ: about 30 messages per second overall, about one message
per second in a private chat (short bursts are tolerated) and 20 messages per minute in a
group. A request over the limit gets ``429 Too Many Requests: retry after N`` and is not
performed. Disabled by default; tests switch it on with ``emu.rate_limits.enable(...)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

# Methods that post a message into a chat and therefore count against the limits.
COUNTED_METHODS = frozenset(
    {
        "sendmessage",
        "senddocument",
        "sendphoto",
        "sendlocation",
        "sendvenue",
        "sendcontact",
        "sendaudio",
        "sendvideo",
        "sendvoice",
        "sendanimation",
        "sendsticker",
        "sendvideonote",
        "sendpoll",
        "senddice",
        "sendmediagroup",
        "copymessage",
        "forwardmessage",
    }
)


@dataclass
class _Bucket:
    capacity: float
    per_second: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now

    def wait_time(self) -> float:
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.per_second


@dataclass
class RateLimiter:
    """Per-bot flood control. ``throttled`` lists ``(method, chat_id, retry_after)``.

    ``clock`` (seconds, monotonic) can be replaced, e.g. by a frozen one, to make tests
    independent of how fast requests happen to be.
    """

    clock: Callable[[], float]
    enabled: bool = False
    global_per_second: float = 30.0
    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: float = 20.0
    group_burst: int = 20
    throttled: list[tuple[str, int, int]] = field(default_factory=list)
    _buckets: dict[object, _Bucket] = field(default_factory=dict)

    def enable(
        self,
        *,
        global_per_second: float | None = None,
        private_per_second: float | None = None,
        private_burst: int | None = None,
        group_per_minute: float | None = None,
        group_burst: int | None = None,
    ) -> RateLimiter:
        """Switch limits on, optionally changing rates; resets all buckets."""
        if global_per_second is not None:
            self.global_per_second = global_per_second
        if private_per_second is not None:
            self.private_per_second = private_per_second
        if private_burst is not None:
            self.private_burst = private_burst
        if group_per_minute is not None:
            self.group_per_minute = group_per_minute
        if group_burst is not None:
            self.group_burst = group_burst
        self.enabled = True
        self._buckets.clear()
        return self

    def disable(self) -> None:
        self.enabled = False

    @property
    def count(self) -> int:
        """How many 429s the limiter has served."""
        return len(self.throttled)

    def _bucket(self, key: object, capacity: float, per_second: float, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(capacity, per_second, capacity, now)
        bucket.refill(now)
        return bucket

    def check(self, method: str, chat_id: int, chat_type: str) -> int | None:
        """Consume a message slot; return ``retry_after`` seconds if over the limit."""
        if not self.enabled or method.lower() not in COUNTED_METHODS:
            return None
        now = self.clock()
        buckets = [self._bucket("global", self.global_per_second, self.global_per_second, now)]
        if chat_type == "private":
            buckets.append(self._bucket(chat_id, self.private_burst, self.private_per_second, now))
        else:
            buckets.append(
                self._bucket(chat_id, self.group_burst, self.group_per_minute / 60.0, now)
            )
        wait = max(bucket.wait_time() for bucket in buckets)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            self.throttled.append((method, chat_id, retry_after))
            return retry_after
        for bucket in buckets:
            bucket.tokens -= 1
        return None
