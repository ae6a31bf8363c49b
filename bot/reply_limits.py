"""Direct replies within Telegram's limits: `ReplyAccounting`, the Application's rate
limiter (ApplicationBuilder.rate_limiter, set by bot/app.py). Every request a handler makes
outside the outbox passes here and is counted in the delivery worker's budget
(bot/delivery.py, bot/send_scheduler.py); see docs/delivery.md#limits."""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from bot.delivery import Delivery, backoff, retry_after_seconds
from bot.request import Unavailable
from models import Priority
from services import outbox

log = logging.getLogger(__name__)

REPLY_WAIT_LIMIT = 10.0  # seconds a direct reply waits out 429s (in all) before the outbox
REPLY_RETRIES = 2  # a direct reply meeting 502/503/504 or a connection error: sent again twice
EDIT_METHODS = frozenset(
    {"editMessageText", "editMessageCaption", "editMessageMedia", "editMessageReplyMarkup"}
)
# Bot API methods that post into a chat and count against Telegram's message limits.
COUNTED_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendLocation",
        "sendVenue",
        "sendContact",
        "sendAudio",
        "sendVideo",
        "sendVoice",
        "sendAnimation",
        "sendSticker",
        "sendVideoNote",
        "sendPoll",
        "sendDice",
        "sendMediaGroup",
        "copyMessage",
        "forwardMessage",
    }
)


class ReplyAccounting(BaseRateLimiter[None]):
    """Every request of the Application's own bot (replies, edits and callback answers
    from handlers, outside the outbox) passes here, so every handler gets the same care:

    * **Priority in the shared budget.** A reply is never delayed: a person talking to the
      bot gets an answer at once. It is counted in the worker's buckets (overall, and the
      chat's for sends), so the worker's bulk messages (broadcasts, reminders) make room
      for it: a reply overdraws the overall bucket and the next bulk send waits instead.
    * **429.** The chat is paused for the worker (and bulk messages, for a private chat),
      and the reply waits the `retry_after` Telegram gave and is sent again, while the
      waits add up to at most `REPLY_WAIT_LIMIT` (10 s).
    * **502, 503, 504, connection errors** (`bot.request.Unavailable`): sent again
      `REPLY_RETRIES` (2) times, after the worker's emergency backoff (0.5 s, 1 s, jittered).
    * **Still refused** (a longer flood wait, Telegram still down): a text reply or a text
      edit is handed to the outbox (urgent: sent as soon as Telegram takes it, retried until
      it does) and the handler goes on as if sent; a callback answer is given up (the button
      stops spinning by itself) so that the handler's edit or message, which carry the
      answer, still go. Anything else is raised to the error handler.

    PTB's `AIORateLimiter` retries a 429 too (its `max_retries`), but holds back every
    request meanwhile; here only that chat (and bulk traffic) waits.
    """

    def __init__(
        self,
        delivery: Delivery,
        *,
        sleep: Callable[[float], Coroutine[Any, Any, Any]] = asyncio.sleep,
    ) -> None:
        self.delivery = delivery
        self.sleep = sleep  # tests pass a clock of their own

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat_id = _int_or_none(data.get("chat_id"))
        waited = 0.0
        failures = 0
        while True:
            if chat_id is not None and endpoint in COUNTED_METHODS:
                self.delivery.note_external(chat_id)
            elif endpoint in EDIT_METHODS:
                self.delivery.note_external(None)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_after_seconds(exc)
                if chat_id is not None:
                    self.delivery.note_retry_after(chat_id, seconds)
                if waited + seconds > REPLY_WAIT_LIMIT:
                    return await self._give_up(endpoint, data, exc)
                waited += seconds
                log.info("%s to %s: flood limit, sent again in %.0f s", endpoint, chat_id, seconds)
                await self.sleep(seconds)
            except Unavailable as exc:
                failures += 1
                if failures > REPLY_RETRIES:
                    return await self._give_up(endpoint, data, exc)
                delay = backoff(failures, int(Priority.EMERGENCY))
                log.info("%s to %s: %s; sent again in %.1f s", endpoint, chat_id, exc, delay)
                await self.sleep(delay)

    async def _give_up(
        self, endpoint: str, data: dict[str, Any], error: TelegramError
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Telegram did not take the request within what a person can wait for."""
        if endpoint == "answerCallbackQuery":
            log.warning("callback answer not delivered (%s); the handler goes on", error)
            return True
        params = _json_params(data)
        queue = _outbox_form(endpoint, params)
        if queue is None:
            raise error
        try:
            await self.delivery.db.run(queue)
        except Exception:
            log.warning("%s could not be handed to the outbox", endpoint, exc_info=True)
            raise error from None
        log.warning(
            "%s to %s not taken by Telegram (%s): queued in the outbox",
            endpoint,
            params.get("chat_id"),
            error,
        )
        return True


# Handed to the outbox when Telegram keeps refusing a direct reply: the parameters the
# worker sends itself (text in HTML, buttons, silent); anything else is raised instead.
_HANDED_OVER = {
    "sendMessage": frozenset(
        {"chat_id", "text", "parse_mode", "reply_markup", "disable_notification"}
    ),
    "editMessageText": frozenset({"chat_id", "message_id", "text", "parse_mode", "reply_markup"}),
}


def _json_params(data: dict[str, Any]) -> dict[str, Any]:
    """The request's parameters as the Bot API receives them (PTB objects as JSON)."""
    from telegram.request import RequestData
    from telegram.request._requestparameter import RequestParameter

    request = RequestData([RequestParameter.from_input(k, v) for k, v in data.items()])
    return {k: v for k, v in request.parameters.items() if v is not None}


def _outbox_form(endpoint: str, params: dict[str, Any]) -> Callable[[Any], Any] | None:
    """The outbox call that sends this request later, if the worker can send it."""
    allowed = _HANDED_OVER.get(endpoint)
    chat_id = _int_or_none(params.get("chat_id"))
    text = params.get("text")
    if allowed is None or chat_id is None or not isinstance(text, str) or set(params) - allowed:
        return None
    mode = str(params.get("parse_mode") or "").upper()
    if mode not in ("", "HTML"):
        return None
    if not mode:
        text = html.escape(text, quote=False)  # the worker sends HTML
    markup = params.get("reply_markup")
    markup = markup if isinstance(markup, dict) else None
    if endpoint == "editMessageText":
        message_id = _int_or_none(params.get("message_id"))
        if message_id is None:
            return None
        return functools.partial(
            outbox.enqueue_edit,
            text=text,
            chat_id=chat_id,
            message_id=message_id,
            reply_markup=markup,
            priority=Priority.URGENT,
            source="reply",
        )
    return functools.partial(
        outbox.enqueue,
        chat_id=chat_id,
        text=text,
        priority=Priority.URGENT,
        idempotency_key=f"reply:{chat_id}:{uuid.uuid4().hex}",
        reply_markup=markup,
        payload={"silent": True} if params.get("disable_notification") else None,
        source="reply",
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
