"""The delivery worker: sends the outbox by priority, within Telegram's limits, through
errors and restarts. See docs/delivery.md.

    claimer     takes due rows from the outbox in batches (status ``sending``), most urgent
                first, and hands them to the scheduler;
    dispatcher  asks the `SendScheduler` for the next message allowed now and starts its
                send, keeping at most CADRE_DELIVERY_CONCURRENCY in flight (+8 for
                emergency and urgent messages, so a stalled broadcast never blocks an SOS);
    writer      records outcomes in batches (one statement every 50 ms, at once for
                emergency and urgent ones, so callers can edit them quickly).

Which message goes next, within Telegram's limits, is the pure `SendScheduler`'s choice
(bot/send_scheduler.py, which also says why not PTB's AIORateLimiter); this module does
the I/O around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from bot.send_scheduler import BULK, Job, SendScheduler
from bot.transport import BotApiClient, FloodWait
from config import Settings
from models import OutboxStatus, OutcomeCode, Priority
from services import clock
from services.db import Database, database_unavailable
from services.i18n import plain_text
from services.outbox.attachments import load_attachment
from services.outbox.claim import Claimed, claim_due
from services.outbox.leases import new_owner, recover_interrupted, renew_leases
from services.outbox.outcomes import Outcome, record_outcomes
from services.outbox.split import Part, parts_of
from services.outbox.wakeup import add_enqueue_listener, remove_enqueue_listener

log = logging.getLogger(__name__)

EMERGENCY_RESERVE = 8  # extra sends in flight allowed for emergency and urgent messages
RECENT_SENT = 4096  # emergency and urgent messages remembered for those that follow them
POLL_INTERVAL = 1.0  # seconds: safety net for rows queued without a wake-up
FLUSH_INTERVAL = 0.05
FLUSH_BATCH = 250
BACKOFF_BASE = 0.5
BACKOFF_CAP = {
    int(Priority.EMERGENCY): 5.0,
    int(Priority.URGENT): 15.0,
    int(Priority.REMINDER): 300.0,
    int(Priority.BROADCAST): 300.0,
}


# ---------------------------------------------------------------------- the worker


def set_event_threadsafe(
    loop: asyncio.AbstractEventLoop | None, event: asyncio.Event | None
) -> None:
    """Set a worker's event from any thread: directly on its own loop, through
    call_soon_threadsafe from another (services commit in worker threads)."""
    if loop is None or event is None or loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        event.set()
    else:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(event.set)


async def keep_leases(worker: Any, recover: Callable[..., int], name: str) -> None:
    """A worker's lease keeper (the Telegram and channel workers): every third of the
    lease, renew the leases of the rows it holds (`worker.known`) and take back rows whose
    lease expired (a worker that died or hangs) with `recover(session, owner)`."""
    while not worker._stopping:
        await asyncio.sleep(worker.lease / 3)
        try:
            held = list(worker.known)
            if held:
                await worker.db.run(renew_leases, worker.owner, held, worker.lease)
            if await worker.db.run(recover, worker.owner):
                log.warning("%s: took back messages whose lease expired", name)
                worker.wake()
        except Exception as exc:
            if not database_unavailable(exc):
                log.exception("%s: renewing leases failed", name)


def backoff(attempts: int, priority: int) -> float:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s... capped by priority (5 s for an
    emergency, 15 s urgent, 5 min otherwise), each drawn from [half, full]."""
    cap = BACKOFF_CAP.get(priority, 300.0)
    full = min(cap, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return random.uniform(full / 2, full)


def retry_after_seconds(exc: RetryAfter) -> float:
    value = getattr(exc, "_retry_after", None)
    if isinstance(value, timedelta):
        return max(value.total_seconds(), 0.0)
    raw = exc.retry_after
    return raw.total_seconds() if isinstance(raw, timedelta) else float(raw)


def classify_forbidden(description: str) -> OutcomeCode:
    text = description.lower()
    if "blocked" in text:
        return OutcomeCode.BLOCKED
    if "deactivated" in text:
        return OutcomeCode.DEACTIVATED
    if "initiate" in text:
        return OutcomeCode.NOT_STARTED
    if "kicked" in text or "not a member" in text:
        return OutcomeCode.KICKED
    return OutcomeCode.FORBIDDEN


class NothingToDraw(Exception):
    """A message's file is drawn when sent, and the data it shows is gone: cancelled."""


_PARSE_ERRORS = ("can't parse", "can't find end", "unsupported start tag", "unclosed")


class Delivery:
    """The worker. One per process; `Deps.delivery` gives handlers `forget()`. It wakes when a
    transaction that queued messages commits (`services.outbox.wakeup`).

    Start it with `run()` (bot/app.py does, through the Application) and stop it with
    `request_stop()`: it then finishes the sends in flight, puts the messages it had taken
    but not sent back, and writes every outcome before `run()` returns.
    """

    def __init__(
        self, settings: Settings, db: Database, *, api: BotApiClient | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.concurrency = settings.delivery_concurrency
        self.window = min(4000, max(2 * self.concurrency, int(settings.delivery_rate * 2), 32))
        self.scheduler = SendScheduler(
            rate=settings.delivery_rate,
            chat_rate=settings.delivery_chat_rate,
            chat_burst=settings.delivery_chat_burst,
            group_per_minute=settings.delivery_group_per_minute,
            now=0.0,
        )
        self._api = api
        self.loop: asyncio.AbstractEventLoop | None = None
        self.inflight: dict[int, Job] = {}
        self.known: set[int] = set()  # ids taken from the table and not yet written back
        self._outcomes: list[Outcome] = []
        self._urgent_outcome = False
        self._next_retry: float | None = None
        self._exhausted = False  # the last claim found nothing more: no need to ask again
        self._tasks: set[asyncio.Task[Any]] = set()
        # Telegram message ids of the latest emergency and urgent messages sent, by key: a
        # message queued "after" one of them follows it as a reply (see _may_follow).
        self._recent: dict[str, int | None] = {}
        # Files drawn when sent (charts) use their own thread, not the default pool that
        # Database.run shares with every handler and with claiming.
        self._drawing: ThreadPoolExecutor | None = None
        self._stopping = False
        self._writer_done = False
        self._claim_event: asyncio.Event | None = None
        self._dispatch_event: asyncio.Event | None = None
        self._flush_event: asyncio.Event | None = None
        self._stop_event: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.sent_count = 0
        self.metrics: Any = None  # bot.metrics.Metrics: counts each outcome (cadre_sends_total)
        # Rows are claimed with a lease (services/outbox/leases.py): renewed while held,
        # outcomes written only while still owned.
        self.owner = new_owner("telegram")
        self.lease = float(settings.outbox_lease)
        # bot.leader.Leadership on PostgreSQL: no send while this process's leadership is
        # not confirmed (a leader paused, then resumed after a standby took over).
        self.leadership: Any = None

    # --- public API ---------------------------------------------------------------

    @property
    def api(self) -> BotApiClient:
        if self._api is None:
            token = self.settings.telegram_token
            self._api = BotApiClient(
                self.settings.bot_api_url,
                token.get_secret_value() if token else "",
                pool_size=self.concurrency + EMERGENCY_RESERVE + 8,
            )
        return self._api

    def wake(self, priority: int | None = None) -> None:
        """Look for new messages now. Safe from any thread (services commit in worker
        threads); enqueue already wakes the worker after its transaction commits."""
        self._exhausted = False
        set_event_threadsafe(self.loop, self._claim_event)

    def forget(self, source: str) -> int:
        """Drop the messages of `source` (e.g. ``broadcast:3``) that the worker has taken
        but not started to send; call after cancelling them in the table. Returns how many."""
        now = self._now()
        removed = self.scheduler.remove(lambda job: job.message.source == source, now)
        for job in removed:
            self._record(
                job,
                OutboxStatus.CANCELLED,
                OutcomeCode.CANCELLED,
                "cancelled before it was sent",
                attempt=False,
            )
        return len(removed)

    def note_external(self, chat_id: int | None) -> None:
        """A reply sent outside the worker counts against the same limits (an edit, with no
        chat: only against the overall one)."""
        self.scheduler.note_external(chat_id, self._now())

    def note_retry_after(self, chat_id: int, seconds: float) -> None:
        self.scheduler.pause_chat(chat_id, seconds, self._now())

    def request_stop(self) -> None:
        self._stopping = True
        for event in (self._stop_event, self._claim_event, self._dispatch_event):
            if event is not None:
                event.set()

    # --- lifecycle ----------------------------------------------------------------

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._claim_event = asyncio.Event()
        self._dispatch_event = asyncio.Event()
        self._flush_event = asyncio.Event()
        self._stop_event = asyncio.Event()
        if self._stopping:
            return
        add_enqueue_listener(self.wake)
        try:
            if not await self._start_bot():
                return
            recovered = await self._recover_interrupted()
            if recovered is None:
                return
            if recovered:
                log.warning(
                    "%d message(s) were being sent when the bot stopped: resending", recovered
                )
            self.started.set()
            writer = asyncio.create_task(self._writer(), name="delivery-writer")
            claimer = asyncio.create_task(self._claimer(), name="delivery-claimer")
            dispatcher = asyncio.create_task(self._dispatcher(), name="delivery-dispatcher")
            leases = asyncio.create_task(self._leases(), name="delivery-leases")
            await self._stop_event.wait()
            # Stop taking rows (a claim under way finishes), let the sends in flight end,
            # put back what was taken but not sent, and write every outcome.
            await asyncio.gather(claimer, dispatcher, return_exceptions=True)
            if self._tasks:
                await asyncio.wait(
                    list(self._tasks), timeout=self.settings.delivery_send_timeout + 5
                )
            for job in self.scheduler.drain():
                self._record(job, OutboxStatus.PENDING, None, None, attempt=False, now_retry=True)
            self._writer_done = True
            self._flush_event.set()
            await asyncio.gather(writer, return_exceptions=True)
            await self._flush()
            leases.cancel()
            await asyncio.gather(leases, return_exceptions=True)
        finally:
            remove_enqueue_listener(self.wake)
            if self._drawing is not None:
                self._drawing.shutdown(wait=False, cancel_futures=True)
                self._drawing = None
            with contextlib.suppress(Exception):
                await self.api.close()

    async def _recover_interrupted(self) -> int | None:
        """Put back what was being sent when the bot stopped (rows whose lease expired);
        waits for the database if it is unreachable (None: asked to stop meanwhile)."""
        assert self._stop_event is not None
        while not self._stopping:
            try:
                return await self.db.run(recover_interrupted, self.owner)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                log.warning("delivery: database unreachable; starting when it is back")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await self._stop_event.wait()
        return None

    async def _start_bot(self) -> bool:
        delay = 0.5
        assert self._stop_event is not None
        while not self._stopping:
            try:
                await self.api.start()
                await self.api.call("getMe", {}, seconds=self.settings.delivery_send_timeout)
                return True
            except TelegramError as exc:
                log.warning("delivery worker cannot reach the Bot API yet: %s", exc)
            except Exception:
                log.exception("delivery worker could not start; trying again")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop_event.wait()
            delay = min(delay * 2, 30)
        return False

    def _now(self) -> float:
        loop = self.loop
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return 0.0
        return loop.time()

    # --- leases -------------------------------------------------------------------

    async def _leases(self) -> None:
        await keep_leases(self, recover_interrupted, "delivery")

    async def _leader_fence(self) -> None:
        """Wait while this process's leadership is not confirmed (bot/leader.py): a leader
        that lost its lock exits meanwhile, one whose heartbeat was only late goes on."""
        if self.leadership is not None:
            await self.leadership.fence()

    # --- claimer ------------------------------------------------------------------

    async def _claimer(self) -> None:
        assert self._claim_event is not None
        while not self._stopping:
            self._claim_event.clear()
            full = False
            try:
                full = await self._claim_once()
            except Exception as exc:
                if database_unavailable(exc):  # an outage: one line, not a traceback a second
                    log.warning("delivery: database unreachable; claiming again in 1 s")
                else:
                    log.exception("delivery: claiming messages failed")
                await asyncio.sleep(1)
            if full and not self._stopping:
                continue
            timeout = POLL_INTERVAL
            if self._next_retry is not None:
                timeout = max(0.0, min(timeout, self._next_retry - self._now()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._claim_event.wait()
            if self._next_retry is not None and self._next_retry <= self._now():
                self._next_retry = None

    async def _claim_once(self) -> bool:
        free = self.window - len(self.known)
        if free > 0:
            limit = free
            self._exhausted = False
            rows = await self.db.run(claim_due, limit, owner=self.owner, lease=self.lease)
            if len(rows) < limit:
                self._exhausted = True
        else:
            worst = self.scheduler.worst_priority()
            if worst is None or worst <= int(Priority.EMERGENCY):
                return False
            limit = EMERGENCY_RESERVE * 4
            rows = await self.db.run(
                claim_due,
                limit,
                below_priority=worst,
                owner=self.owner,
                lease=self.lease,
            )
        if not rows:
            return False
        now = self._now()
        for message in rows:
            if message.id in self.known:
                continue
            self.known.add(message.id)
            job = Job(message, message.priority, message.id, claimed_at=now)
            job.parts = parts_of(message.kind, message.payload)
            if message.parts_sent >= len(job.parts):
                message.parts_sent = len(job.parts) - 1
            self.scheduler.push(job, now)
        assert self._dispatch_event is not None
        self._dispatch_event.set()
        return len(rows) >= limit and free > 0

    # --- dispatcher ---------------------------------------------------------------

    def _max_priority(self) -> int:
        inflight = len(self.inflight)
        if inflight < self.concurrency:
            return int(Priority.BROADCAST)
        if inflight < self.concurrency + EMERGENCY_RESERVE:
            return int(Priority.URGENT)
        return -1

    async def _dispatcher(self) -> None:
        assert self._dispatch_event is not None and self._claim_event is not None
        event = self._dispatch_event
        while not self._stopping:
            event.clear()
            job, wait = self.scheduler.next(self._now(), self._max_priority())
            if job is not None:
                self.inflight[job.message.id] = job
                task = asyncio.create_task(self._send(job))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                if not self._exhausted and len(self.scheduler) < self.window // 2:
                    self._claim_event.set()
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if math.isinf(wait) else wait):
                    await event.wait()

    # --- sending ------------------------------------------------------------------

    async def _send(self, job: Job) -> None:
        message = job.message
        if not self._may_follow(job):
            return
        part = job.parts[message.parts_sent]
        requeue = False
        try:
            if part.kind in ("photo", "document") and message.payload.get("render"):
                if job.upload is None:
                    # Drawing holds no send slot (the chat's lane stays busy, so its order
                    # holds): an emergency text never waits for a chart being drawn.
                    self.inflight.pop(message.id, None)
                    self._wake_dispatcher()
                    try:
                        job.upload = await self._draw(message)
                    finally:
                        self.inflight[message.id] = job
            await self._leader_fence()
            result = await self._call(message, part, plain=job.plain, upload=job.upload)
        except NothingToDraw as exc:
            self._finish(job, OutboxStatus.CANCELLED, OutcomeCode.CANCELLED, str(exc))
        except (FloodWait, RetryAfter) as exc:
            seconds = exc.seconds if isinstance(exc, FloodWait) else retry_after_seconds(exc)
            log.warning("429 for chat %s: retry after %.0f s", message.chat_id, seconds)
            self.inflight.pop(message.id, None)
            self.scheduler.retry_after(job, seconds, self._now())
            self._wake_dispatcher()
            return
        except ChatMigrated as exc:
            self.inflight.pop(message.id, None)
            self.scheduler.move(job, int(exc.new_chat_id), self._now())
            self._wake_dispatcher()
            return
        except Forbidden as exc:
            self._finish(job, OutboxStatus.FAILED, classify_forbidden(exc.message), exc.message)
        except BadRequest as exc:
            text = exc.message.lower()
            if "not modified" in text:
                self._finish(job, OutboxStatus.SENT, OutcomeCode.SENT, "not modified")
            elif "chat not found" in text:
                self._finish(job, OutboxStatus.FAILED, OutcomeCode.CHAT_NOT_FOUND, exc.message)
            elif not job.plain and any(marker in text for marker in _PARSE_ERRORS):
                log.error("Telegram refused the HTML of outbox message %s: %s", message.id, exc)
                job.plain = True
                requeue = True
            elif "message to edit not found" in text or "can't be edited" in text:
                self._finish(job, OutboxStatus.FAILED, OutcomeCode.NO_TARGET, exc.message)
            else:
                log.error("outbox message %s refused: %s", message.id, exc.message)
                self._finish(job, OutboxStatus.FAILED, OutcomeCode.BAD_REQUEST, exc.message)
        except InvalidToken as exc:
            log.error("the Bot API refuses the token: %s", exc)
            self._transient(job, f"{exc.__class__.__name__}: {exc.message}")
        except TelegramError as exc:  # NetworkError, TimedOut, 5xx, unknown error replies
            self._transient(job, f"{exc.__class__.__name__}: {exc.message}"[:200])
        except Exception as exc:  # a bug must not kill the worker or lose the message
            log.exception("delivery: unexpected error sending outbox message %s", message.id)
            self._transient(job, f"{exc.__class__.__name__}: {exc}"[:200])
        else:
            if not part.last:
                message.parts_sent += 1
                self._progress(job)
                requeue = True
            else:
                message_id = result.get("message_id") if isinstance(result, dict) else None
                if job.priority < BULK:
                    self._recent[message.idempotency_key] = message_id
                    if len(self._recent) > RECENT_SENT:
                        del self._recent[next(iter(self._recent))]
                code = OutcomeCode.SENT_PLAIN if job.plain else OutcomeCode.SENT
                self._finish(job, OutboxStatus.SENT, code, None, message_id=message_id)
                self.sent_count += 1
        if requeue:
            self.inflight.pop(message.id, None)
            now = self._now()
            self.scheduler.done(job, now)
            self.scheduler.push(job, now)
        self._wake_dispatcher()

    def _may_follow(self, job: Job) -> bool:
        """A message queued with "after" that was taken while this worker held the message
        it follows (same chat: the chat's lane sends that one first) goes as a reply to it
        once it is sent; the worker remembers the ids of the latest emergency and urgent
        messages it sent. Otherwise (that one needed a retry, or is a bulk message) it goes
        back to the table for a second, without counting an attempt, and the claim checks
        the table again (services.outbox.claim._resolve_followers)."""
        payload = job.message.payload
        after = payload.get("after")
        if not after or "reply_to_message_id" in payload:
            return True
        if str(after) in self._recent:
            payload["reply_to_message_id"] = self._recent[str(after)]
            return True
        self.inflight.pop(job.message.id, None)
        self.scheduler.done(job, self._now())
        self._record(
            job,
            OutboxStatus.PENDING,
            None,
            "waiting for the message it follows to be sent",
            retry_in=1.0,
            attempt=False,
        )
        at = self._now() + 1.0
        self._next_retry = at if self._next_retry is None else min(self._next_retry, at)
        self._wake_dispatcher()
        return False

    def _wake_dispatcher(self) -> None:
        if self._dispatch_event is not None:
            self._dispatch_event.set()

    async def _draw(self, message: Claimed) -> tuple[str, bytes]:
        """The file of a message whose payload names a renderer (services.outbox.attachments
        `Attachment`): read in a short transaction, drawn in a thread. A database error
        propagates (transient: retried); a loader or drawing that fails is a BadRequest
        (retrying cannot help); nothing left to draw raises NothingToDraw."""
        try:
            attachment = await self.db.run(load_attachment, message.payload)
        except LookupError as exc:
            raise BadRequest(str(exc)) from exc
        if attachment is None:
            raise NothingToDraw("nothing to draw any more: the data it shows is gone")
        if self._drawing is None:
            self._drawing = ThreadPoolExecutor(1, thread_name_prefix="delivery-draw")
        try:
            loop = asyncio.get_running_loop()
            data = await loop.run_in_executor(self._drawing, attachment.draw)
        except Exception as exc:
            log.exception("drawing the file of outbox message %s failed", message.id)
            raise BadRequest(f"drawing failed: {exc.__class__.__name__}: {exc}"[:200]) from exc
        return attachment.filename, data

    async def _call(
        self,
        message: Claimed,
        part: Part,
        *,
        plain: bool,
        upload: tuple[str, bytes] | None = None,
    ) -> Any:
        """One Bot API call for one part of a message; returns the method's result."""
        payload = message.payload
        params: dict[str, Any] = {"chat_id": message.chat_id}
        files: dict[str, tuple[str, bytes]] | None = None
        if payload.get("reply_to_message_id") and part.kind != "edit":  # queued with "after"
            params["reply_parameters"] = {
                "message_id": int(payload["reply_to_message_id"]),
                "allow_sending_without_reply": True,
            }
        text = part.text
        if text and plain:
            text = plain_text(text)
        elif text:
            params["parse_mode"] = "HTML"
        markup = payload.get("reply_markup") if part.last else None
        if markup:
            params["reply_markup"] = markup
        if payload.get("silent") and part.kind != "edit":
            params["disable_notification"] = True
        if part.kind == "text":
            method = "sendMessage"
            params["text"] = text or ""
        elif part.kind in ("photo", "document"):
            method = "sendPhoto" if part.kind == "photo" else "sendDocument"
            if upload is not None:
                files = {part.kind: upload}
            else:
                params[part.kind] = payload[part.kind]
            if text:
                params["caption"] = text
        elif part.kind == "location":
            method = "sendLocation"
            params["latitude"] = float(payload["latitude"])
            params["longitude"] = float(payload["longitude"])
            if payload.get("live_period"):
                params["live_period"] = int(payload["live_period"])
        elif part.kind == "edit":
            params["message_id"] = int(payload["message_id"])
            if markup is not None and "inline_keyboard" not in markup:
                params.pop("reply_markup")  # an edit can only carry an inline keyboard
            if message.target_kind in ("photo", "document"):
                method = "editMessageCaption"
                params["caption"] = text or ""
            else:
                method = "editMessageText"
                params["text"] = text or ""
        else:
            raise BadRequest(f"unknown outbox message kind {part.kind!r}")
        if files:
            return await self.api.call(
                method, params, seconds=self.settings.delivery_send_timeout, files=files
            )
        return await self.api.call(method, params, seconds=self.settings.delivery_send_timeout)

    # --- outcomes -----------------------------------------------------------------

    def _transient(self, job: Job, detail: str) -> None:
        message = job.message
        attempts = message.attempts + 1
        bulk = job.priority >= BULK
        if bulk and attempts >= self.settings.delivery_max_attempts:
            self._finish(job, OutboxStatus.FAILED, OutcomeCode.GAVE_UP, detail)
            return
        delay = backoff(attempts, job.priority)
        self._finish(job, OutboxStatus.PENDING, OutcomeCode.RETRY, detail, retry_in=delay)
        at = self._now() + delay
        self._next_retry = at if self._next_retry is None else min(self._next_retry, at)

    def _finish(
        self,
        job: Job,
        status: OutboxStatus,
        code: OutcomeCode,
        detail: str | None,
        *,
        message_id: int | None = None,
        retry_in: float | None = None,
    ) -> None:
        self.inflight.pop(job.message.id, None)
        self.scheduler.done(job, self._now())
        self._record(job, status, code, detail, message_id=message_id, retry_in=retry_in)

    def _progress(self, job: Job) -> None:
        """A part of a long message went out: remember it, so a restart resumes after it."""
        self._record(job, OutboxStatus.SENDING, None, None, attempt=False)

    def _record(
        self,
        job: Job,
        status: OutboxStatus,
        code: OutcomeCode | None,
        detail: str | None,
        *,
        message_id: int | None = None,
        retry_in: float | None = None,
        attempt: bool = True,
        now_retry: bool = False,
    ) -> None:
        message = job.message
        at = clock.now()
        outcome = Outcome(
            id=message.id,
            chat_id=message.chat_id,
            status=status,
            code=code,  # type: ignore[arg-type]
            detail=detail,
            person_id=message.person_id,
            source=message.source,
            telegram_message_id=message_id,
            retry_at=at + timedelta(seconds=retry_in) if retry_in is not None else None,
            parts_sent=message.parts_sent,
            counts_as_attempt=attempt,
            at=at,
        )
        if now_retry:
            outcome.retry_at = at
        if self.metrics is not None:
            self.metrics.count_send(status, code)
        self._outcomes.append(outcome)
        if job.priority < BULK or len(self._outcomes) >= FLUSH_BATCH:
            self._urgent_outcome = True
            if self._flush_event is not None:
                self._flush_event.set()

    async def _writer(self) -> None:
        assert self._flush_event is not None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_INTERVAL):
                    await self._flush_event.wait()
            self._flush_event.clear()
            self._urgent_outcome = False
            await self._flush()
            if self._writer_done and not self._outcomes:
                return

    async def _flush(self) -> None:
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        # Forget the finished rows before their outcome is committed, not after: once the
        # commit makes a row pending again, a claim may take it before this task resumes,
        # and a row claimed while still "known" would be skipped and left sending for good.
        # Until the commit the row is still "sending" in the table, so nobody claims it.
        for outcome in batch:
            if outcome.status != OutboxStatus.SENDING:  # SENDING: a part of a long text
                self.known.discard(outcome.id)
        try:
            await self.db.run(record_outcomes, batch, owner=self.owner)
        except Exception as exc:
            if database_unavailable(exc):
                log.warning("delivery: database unreachable; %d outcome(s) kept", len(batch))
            else:
                log.exception("delivery: recording %d outcome(s) failed; retrying", len(batch))
            self._outcomes[:0] = batch
            await asyncio.sleep(0.5)
            return
        if any(o.status == OutboxStatus.PENDING for o in batch) and self._claim_event:
            self._exhausted = False
            self._claim_event.set()


# ------------------------------------------------------------------- with the bot


WORKER_JOB = "delivery:worker"


def install(application: Any, delivery: Delivery) -> None:
    """Run `delivery` with the Application, started and stopped with its scheduler."""
    from scheduler import jobs

    jobs.run_with_scheduler(application, WORKER_JOB, delivery, "delivery-worker")
