"""The channel worker: sends the outbox rows meant for WeCom and DingTalk duty groups and
for the SMS gateway (services/duty_channels/alerting.py queues them). See docs/delivery.md.

It runs beside the Telegram worker (bot/delivery.py), never inside it: a slow or failing
WeCom endpoint must not delay a Telegram send, and Telegram failing completely must not
delay an SOS to a duty group. Each endpoint (one robot, or the SMS gateway) has its own
lane: a queue, most urgent first, and a token bucket for its documented limit (20 messages
a minute per WeCom or DingTalk robot, CADRE_SMS_PER_MINUTE for the gateway, counted over
any 60 seconds). A rate-limit
answer (WeCom 45009, DingTalk 130101/410100) pauses only that endpoint.

Outcomes are recorded the way Telegram's are: sent; transient (5xx, timeouts, network
errors, rate limits) retried with backoff, emergencies until they go out; permanent (a bad
key or signature, a 4xx) recorded with the cause, and the admins told once.

The robots' request formats (documented by the services):

    WeCom     POST <webhook ?key=…>  {"msgtype": "text", "text": {"content": …,
              "mentioned_mobile_list": [...]}}  ->  {"errcode": 0, "errmsg": "ok"}
    DingTalk  POST <webhook ?access_token=…>&timestamp=<ms>&sign=<urlencoded base64
              HMAC-SHA256 of "timestamp\\nsecret" keyed with the secret>
              {"msgtype": "text", "text": {"content": …}, "at": {"atMobiles": [...]}}
              ->  {"errcode": 0, "errmsg": "ok"}
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import heapq
import hmac
import json
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import aiohttp
from yarl import URL

from bot.delivery import backoff, keep_leases, set_event_threadsafe
from bot.send_scheduler import BULK
from config import Settings
from models import Channel, OutboxStatus, OutcomeCode
from services import clock
from services.db import Database, database_unavailable
from services.duty_channels import groups, sms
from services.duty_channels import worker as channel_rows
from services.duty_channels.worker import ChannelMessage, Destination, Result
from services.outbox.leases import new_owner
from services.outbox.wakeup import add_enqueue_listener, remove_enqueue_listener

log = logging.getLogger(__name__)

ROBOT_PER_MINUTE = 20  # WeCom and DingTalk: 20 messages a minute per robot
SMS_CONCURRENCY = 4  # sends in flight at once to the SMS gateway (one per robot)
WINDOW = 200  # channel messages held in memory at once
POLL_INTERVAL = 1.0
RATE_LIMIT_PAUSE = 30.0  # seconds an endpoint waits after a rate-limit answer
TEST_ATTEMPTS = 2  # a test message (/dutygroup, /sms) is tried twice, then reported
WECOM_MAX_BYTES = 2048  # text content limit of a WeCom robot message
# Answers that mean "too fast": wait and retry. -1 is "system busy" on both services.
RATE_LIMIT_CODES = frozenset({45009, 130101, 410100, 90030})
BUSY_CODES = frozenset({-1})


# ----------------------------------------------------------------------------- lanes


@dataclass(order=True)
class Job:
    priority: int
    seq: int
    message: ChannelMessage = field(compare=False)


class Window:
    """At most `limit` sends in any `seconds` (the services count per minute): a sliding
    log of the last `limit` send times. Exact, and an emergency may use the whole minute's
    allowance at once."""

    __slots__ = ("limit", "seconds", "sent")

    def __init__(self, limit: int, seconds: float = 60.0) -> None:
        self.limit = max(1, limit)
        self.seconds = seconds
        self.sent: deque[float] = deque(maxlen=self.limit)

    def wait(self, now: float) -> float:
        """Seconds until one more send is allowed."""
        if len(self.sent) < self.limit:
            return 0.0
        return max(0.0, self.sent[0] + self.seconds - now)

    def take(self, now: float) -> None:
        self.sent.append(now)


class _Lane:
    __slots__ = ("bucket", "heap", "inflight", "limit", "paused_until")

    def __init__(self, bucket: Window, limit: int) -> None:
        self.heap: list[Job] = []
        self.bucket = bucket
        self.inflight = 0
        self.limit = limit
        self.paused_until = 0.0


class EndpointScheduler:
    """The most urgent message whose endpoint is free and within its limit. Pure: time is
    passed in (tests/handlers/test_channels.py drives it)."""

    def __init__(self, *, sms_per_minute: float) -> None:
        self.sms_per_minute = max(1, int(sms_per_minute))
        self._lanes: dict[str, _Lane] = {}

    def __len__(self) -> int:
        return sum(len(lane.heap) for lane in self._lanes.values())

    def _lane(self, endpoint: str, now: float) -> _Lane:
        lane = self._lanes.get(endpoint)
        if lane is None:
            if endpoint == "sms":
                lane = _Lane(Window(self.sms_per_minute), SMS_CONCURRENCY)
            else:
                lane = _Lane(Window(ROBOT_PER_MINUTE), 1)
            self._lanes[endpoint] = lane
        return lane

    def push(self, job: Job, now: float) -> None:
        heapq.heappush(self._lane(job.message.endpoint, now).heap, job)

    def next(self, now: float) -> tuple[Job | None, float]:
        """A job to send now (its token taken), or None and how long until one may be."""
        best: tuple[Job, _Lane] | None = None
        wait = math.inf
        for lane in self._lanes.values():
            if not lane.heap or lane.inflight >= lane.limit:
                continue
            until = max(lane.paused_until - now, lane.bucket.wait(now))
            if until > 1e-6:  # (a token a rounding error away counts as there)
                wait = min(wait, until)
                continue
            if best is None or lane.heap[0] < best[0]:
                best = (lane.heap[0], lane)
        if best is None:
            return None, wait
        job, lane = best
        heapq.heappop(lane.heap)
        lane.inflight += 1
        lane.bucket.take(now)
        return job, 0.0

    def done(self, job: Job, now: float) -> None:
        lane = self._lane(job.message.endpoint, now)
        lane.inflight = max(0, lane.inflight - 1)

    def pause(self, endpoint: str, seconds: float, now: float) -> None:
        lane = self._lane(endpoint, now)
        lane.paused_until = max(lane.paused_until, now + seconds)

    def drain(self) -> list[Job]:
        jobs = [job for lane in self._lanes.values() for job in lane.heap]
        for lane in self._lanes.values():
            lane.heap = []
        return jobs


# ----------------------------------------------------------------------------- senders


@dataclass
class Attempt:
    """How one HTTP request went."""

    ok: bool
    transient: bool = False
    rate_limited: bool = False
    detail: str | None = None


def dingtalk_url(webhook: str, secret: str | None, now_ms: int) -> str:
    """The webhook with DingTalk's signature: timestamp (ms) and sign, the URL-encoded
    base64 HMAC-SHA256 of "timestamp\\nsecret" keyed with the secret."""
    if not secret:
        return webhook
    to_sign = f"{now_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    sign = base64.b64encode(digest).decode()
    parts = urlsplit(webhook)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in ("timestamp", "sign")
    ]
    query += [("timestamp", str(now_ms)), ("sign", sign)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _truncate_bytes(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "…"


def _robot_attempt(status: int, body: bytes) -> Attempt:
    """WeCom's and DingTalk's answers: HTTP status, then errcode."""
    if status >= 500 or status in (408, 429):
        return Attempt(False, transient=True, rate_limited=status == 429, detail=f"HTTP {status}")
    if status >= 400:
        return Attempt(False, detail=f"HTTP {status}")
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        data = None
    if not isinstance(data, dict) or "errcode" not in data:
        return Attempt(False, transient=True, detail=f"unexpected answer (HTTP {status})")
    code = data.get("errcode")
    message = str(data.get("errmsg") or "")[:120]
    if code == 0:
        return Attempt(True)
    detail = f"errcode {code}: {message}"
    if code in RATE_LIMIT_CODES:
        return Attempt(False, transient=True, rate_limited=True, detail=detail)
    if code in BUSY_CODES:
        return Attempt(False, transient=True, detail=detail)
    return Attempt(False, detail=detail)


class Senders:
    """The HTTP requests to the three services, over one aiohttp session."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = aiohttp.ClientTimeout(
            total=settings.delivery_send_timeout * 2,
            connect=settings.delivery_send_timeout,
            sock_read=settings.delivery_send_timeout,
        )
        self._session: aiohttp.ClientSession | None = None
        headers = settings.sms_headers.get_secret_value() if settings.sms_headers else "{}"
        self.sms_headers: dict[str, str] = json.loads(headers)

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "cadre-bot channels"})

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def send(self, where: Destination, payload: dict[str, Any]) -> Attempt:
        text = str(payload.get("text") or "")
        mentions = [str(m) for m in payload.get("mentions") or []]
        secrets = [where.url, where.secret, where.phone, *self.sms_headers.values()]
        if where.url:
            secrets += [v for _, v in parse_qsl(urlsplit(where.url).query)]
        try:
            if where.channel == Channel.WECOM:
                attempt = await self._wecom(where, text, mentions)
            elif where.channel == Channel.DINGTALK:
                attempt = await self._dingtalk(where, text, mentions)
            else:
                attempt = await self._sms(where, text)
        except TimeoutError:
            attempt = Attempt(False, transient=True, detail="timed out")
        except aiohttp.ClientError as exc:
            attempt = Attempt(False, transient=True, detail=f"{exc.__class__.__name__}: {exc}")
        except ValueError as exc:  # a URL aiohttp cannot use
            attempt = Attempt(False, detail=f"{exc.__class__.__name__}: {exc}")
        if attempt.detail:
            attempt.detail = groups.scrub(attempt.detail, *secrets)[:200]
        return attempt

    async def _post_json(self, url: str, body: dict[str, Any]) -> tuple[int, bytes]:
        assert self._session is not None
        data = json.dumps(body, ensure_ascii=False).encode()
        async with self._session.post(
            URL(url, encoded=True),
            data=data,
            headers={"Content-Type": "application/json; charset=utf-8"},
            timeout=self.timeout,
        ) as response:
            return response.status, await response.read()

    async def _wecom(self, where: Destination, text: str, mentions: list[str]) -> Attempt:
        content: dict[str, Any] = {"content": _truncate_bytes(text, WECOM_MAX_BYTES)}
        if mentions:
            content["mentioned_mobile_list"] = mentions
        assert where.url is not None
        status, body = await self._post_json(where.url, {"msgtype": "text", "text": content})
        return _robot_attempt(status, body)

    async def _dingtalk(self, where: Destination, text: str, mentions: list[str]) -> Attempt:
        assert where.url is not None
        if mentions:  # DingTalk shows the @ only when the content names the number
            text += "\n" + " ".join(f"@{m}" for m in mentions)
        now_ms = int(clock.now().timestamp() * 1000)
        body = {
            "msgtype": "text",
            "text": {"content": text},
            "at": {"atMobiles": mentions, "isAtAll": False},
        }
        status, answer = await self._post_json(dingtalk_url(where.url, where.secret, now_ms), body)
        return _robot_attempt(status, answer)

    async def _sms(self, where: Destination, text: str) -> Attempt:
        assert self._session is not None and where.phone is not None
        settings = self.settings
        assert settings.sms_url is not None
        url = settings.sms_url
        for placeholder, value in (
            ("{phone}", where.phone),
            ("{phone_national}", groups.national_number(where.phone)),
            ("{text}", text),
        ):
            url = url.replace(placeholder, quote(value, safe=""))
        headers = dict(self.sms_headers)
        data: bytes | None = None
        if settings.sms_method != "GET":
            body, kind = sms.sms_body(settings.sms_body_template, where.phone, text)
            data = body.encode()
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = f"{kind}; charset=utf-8"
        async with self._session.request(
            settings.sms_method,
            URL(url, encoded=True),
            data=data,
            headers=headers,
            timeout=self.timeout,
        ) as response:
            status, answer = response.status, await response.read()
        if 200 <= status < 300:
            return Attempt(True)
        snippet = answer.decode("utf-8", "replace").strip()[:100]
        detail = f"HTTP {status}" + (f": {snippet}" if snippet else "")
        if status >= 500 or status in (408, 429):
            return Attempt(False, transient=True, rate_limited=status == 429, detail=detail)
        return Attempt(False, detail=detail)


# ----------------------------------------------------------------------------- the worker


class ChannelWorker:
    """Start with `run()`, stop with `request_stop()`: the sends in flight finish, what
    was taken but not sent goes back to the table."""

    def __init__(self, settings: Settings, db: Database, senders: Senders | None = None) -> None:
        self.settings = settings
        self.db = db
        self.senders = senders or Senders(settings)
        self.scheduler = EndpointScheduler(sms_per_minute=settings.sms_per_minute)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.known: set[int] = set()
        self._event: asyncio.Event | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._next_retry: float | None = None
        self.started = asyncio.Event()
        self.sent_count = 0
        self.owner = new_owner("channels")  # leases, as the Telegram worker's
        self.lease = float(settings.outbox_lease)
        self.leadership: Any = None  # bot.leader.Leadership: no send unless confirmed

    def wake(self, priority: int | None = None) -> None:
        """Look for new messages now; safe from any thread (an enqueue listener)."""
        set_event_threadsafe(self.loop, self._event)

    def request_stop(self) -> None:
        self._stopping = True
        if self._event is not None and self.loop is not None and not self.loop.is_closed():
            self.wake()

    def _now(self) -> float:
        return self.loop.time() if self.loop is not None else 0.0

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        add_enqueue_listener(self.wake)
        try:
            await self.senders.start()
            recovered = await self._recover()
            if recovered:
                log.warning(
                    "%d channel message(s) were being sent at the stop: resending", recovered
                )
            self.started.set()
            leases = asyncio.create_task(self._leases(), name="channel-leases")
            while not self._stopping:
                self._event.clear()
                try:
                    await self._claim()
                except Exception as exc:
                    if database_unavailable(exc):  # an outage: one line, not a traceback a second
                        log.warning("channels: database unreachable; claiming again shortly")
                    else:
                        log.exception("channels: claiming messages failed")
                timeout = min(POLL_INTERVAL, self._dispatch())
                if self._next_retry is not None:
                    timeout = max(0.0, min(timeout, self._next_retry - self._now()))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._event.wait()
                if self._next_retry is not None and self._next_retry <= self._now():
                    self._next_retry = None
            if self._tasks:
                await asyncio.wait(
                    list(self._tasks), timeout=self.settings.delivery_send_timeout * 2 + 5
                )
            leftover = self.scheduler.drain()
            if leftover:
                await self.db.run(_put_back, [job.message.id for job in leftover], self.owner)
            leases.cancel()
            await asyncio.gather(leases, return_exceptions=True)
        finally:
            remove_enqueue_listener(self.wake)
            with contextlib.suppress(Exception):
                await self.senders.close()

    async def _recover(self) -> int:
        """Messages left ``sending`` by a crash go out again; waits for the database."""
        delay = 0.5
        while not self._stopping:
            try:
                return await self.db.run(channel_rows.recover_interrupted, self.owner)
            except Exception as exc:
                if database_unavailable(exc):
                    log.warning("channels: the database is not reachable yet; trying again")
                else:
                    log.exception("channels: recovering interrupted messages failed; retrying")
            assert self._event is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._event.wait()
            delay = min(delay * 2, 30)
        return 0

    async def _leases(self) -> None:
        await keep_leases(self, channel_rows.recover_interrupted, "channels")

    async def _claim(self) -> None:
        free = WINDOW - len(self.known)
        if free <= 0:
            return
        rows = await self.db.run(channel_rows.claim_due, free, owner=self.owner, lease=self.lease)
        now = self._now()
        for message in rows:
            if message.id in self.known:
                continue
            self.known.add(message.id)
            self.scheduler.push(Job(message.priority, message.id, message), now)

    def _dispatch(self) -> float:
        """Start every send allowed now; returns how long until the next may start."""
        while True:
            job, wait = self.scheduler.next(self._now())
            if job is None:
                return POLL_INTERVAL if math.isinf(wait) else max(0.01, wait)
            task = asyncio.create_task(self._send(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, job: Job) -> None:
        message = job.message
        pause = 0.0
        try:
            where = await self.db.run(channel_rows.destination, message, self.settings.sms_enabled)
            if where.cancelled:
                result = Result(
                    message, OutboxStatus.CANCELLED, OutcomeCode.CANCELLED, where.cancelled
                )
            elif where.problem:
                result = Result(message, OutboxStatus.FAILED, OutcomeCode.NO_CHANNEL, where.problem)
            else:
                if self.leadership is not None:  # no send unless leadership is confirmed
                    await self.leadership.fence()
                attempt = await self.senders.send(where, message.payload)
                result, pause = self._judge(message, attempt)
                result.group_id = where.group_id
            label = (message.payload or {}).get("label") or message.endpoint
            if result.status == OutboxStatus.SENT:
                self.sent_count += 1
            elif message.channel != Channel.SMS:  # a group's name is no secret; a number is
                log.warning("%s %s: %s (%s)", message.channel, label, result.detail, result.code)
            else:
                log.warning("sms (outbox %s): %s (%s)", message.id, result.detail, result.code)
        except Exception as exc:  # a bug must not lose the message
            log.exception("channels: unexpected error sending outbox message %s", message.id)
            result, pause = self._judge(
                message, Attempt(False, transient=True, detail=exc.__class__.__name__)
            )
        now = self._now()
        if pause:
            self.scheduler.pause(message.endpoint, pause, now)
        self.scheduler.done(job, now)
        await self._record(result)
        self.known.discard(message.id)
        self.wake()

    def _judge(self, message: ChannelMessage, attempt: Attempt) -> tuple[Result, float]:
        if attempt.ok:
            return Result(message, OutboxStatus.SENT, OutcomeCode.SENT), 0.0
        if not attempt.transient:
            return Result(message, OutboxStatus.FAILED, OutcomeCode.REFUSED, attempt.detail), 0.0
        attempts = message.attempts + 1
        if channel_rows.is_test(message) and (attempts >= TEST_ATTEMPTS or attempt.rate_limited):
            # an admin waits for the answer: report within a minute instead of retrying
            return Result(message, OutboxStatus.FAILED, OutcomeCode.GAVE_UP, attempt.detail), 0.0
        if message.priority >= BULK and attempts >= self.settings.delivery_max_attempts:
            return Result(message, OutboxStatus.FAILED, OutcomeCode.GAVE_UP, attempt.detail), 0.0
        delay = backoff(attempts, message.priority)
        pause = 0.0
        if attempt.rate_limited:
            pause = RATE_LIMIT_PAUSE
            delay = max(delay, pause)
        at = self._now() + delay
        self._next_retry = at if self._next_retry is None else min(self._next_retry, at)
        retry_at = clock.now() + timedelta(seconds=delay)
        result = Result(message, OutboxStatus.PENDING, OutcomeCode.RETRY, attempt.detail, retry_at)
        return result, pause

    async def _record(self, result: Result) -> None:
        for delay in (0.2, 0.5, 1, 2, 5):
            try:
                await self.db.run(channel_rows.record, [result], owner=self.owner)
                return
            except Exception:
                log.exception("channels: recording an outcome failed; retrying")
                await asyncio.sleep(delay)
        log.error(
            "channels: the outcome of outbox message %s was not recorded; it is sent again "
            "at the next start",
            result.message.id,
        )


def _put_back(session: Any, ids: list[int], owner: str) -> None:
    from sqlalchemy import update

    from models import OutboxMessage

    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    session.execute(
        update(table)
        .where(
            table.c.id.in_(ids),
            table.c.status == OutboxStatus.SENDING.value,
            table.c.lease_owner == owner,
        )
        .values(
            status=OutboxStatus.PENDING.value,
            next_attempt_at=clock.now(),
            lease_owner=None,
            lease_expires_at=None,
        )
    )


# ----------------------------------------------------------------------------- with the bot

WORKER_JOB = "delivery:channels"


def install(application: Any, settings: Settings) -> ChannelWorker | None:
    """At start-up: run the worker where the delivery worker runs."""
    from handlers.context import deps_of
    from scheduler import jobs

    if not settings.delivery_worker:
        return None
    worker = ChannelWorker(settings, deps_of(application).db)
    worker.leadership = application.bot_data.get("leadership")  # bot/leader.py (PostgreSQL)
    application.bot_data["channels"] = worker
    jobs.run_with_scheduler(application, WORKER_JOB, worker, "channel-worker")
    return worker
