"""Webhook mode's endpoint: PTB's `run_webhook`, with a request handler that reads no more
than it must (`cadre-bot run --webhook`, bot/cli.py).

PTB's own handler reads the whole body before it looks at the secret, and logs the
update's data with a traceback when it cannot turn it into an Update. This one decides on
the headers first:

- a missing or wrong `X-Telegram-Bot-Api-Secret-Token`, or a body that is not JSON by its
  Content-Type: 403, answered before a byte of the body is read;
- a Content-Length over CADRE_WEBHOOK_MAX_BODY_BYTES (default 1 MiB): 413, unread;
- a body without a Content-Length (chunked) is read in chunks, counted, and refused with
  413 as soon as it passes the limit.
A body over the limit is never read: the connection is closed after the answer. A refused
body within the limit is read after the answer and dropped, chunk by chunk, so that the
client is not reset while it still writes.

A body that is not a JSON object gets 400. An update that cannot be handled (no
``update_id``, a message without ``chat``...) is logged in one line, with its id and what
is wrong but nothing of its content, and answered 200 so that Telegram does not send it
again and again ahead of the updates that follow it.

An update is stored in the update inbox (bot/inbox.py) before it is answered 200; when it
cannot be stored and another process could take over, it is answered 503 and Telegram
posts it again. One posted again after it was taken is answered 200 and not run twice.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from http import HTTPStatus
from pathlib import Path
from socket import socket
from typing import Any

import tornado.web
from telegram import Bot, Update
from telegram.ext import ExtBot, Updater
from telegram.ext._utils.webhookhandler import WebhookServer

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def problem_of(update: Update) -> str | None:
    """What makes a parsed update one that cannot be handled, or None."""
    message = update.effective_message
    if message is not None and message.chat is None:
        return "a message without chat"
    if update.callback_query is not None and update.callback_query.from_user is None:
        return "a button press without sender"
    return None


@tornado.web.stream_request_body
class GuardedWebhookHandler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("POST",)  # type: ignore[assignment]

    def initialize(
        self,
        bot: Bot,
        update_queue: asyncio.Queue[object],
        secret_token: str,
        max_body: int,
        inbox: Any = None,
    ) -> None:
        self.inbox = inbox  # bot.inbox.UpdateInbox
        self.bot = bot
        self.update_queue = update_queue
        self.secret_token = secret_token
        self.max_body = max_body
        self.chunks: list[bytes] = []
        self.received = 0
        self.refused: HTTPStatus | None = None

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", 'application/json; charset="utf-8"')

    async def prepare(self) -> None:
        """Only the headers have arrived: refuse here whatever can be refused."""
        headers = self.request.headers
        token = headers.get(SECRET_HEADER, "")
        length = headers.get("Content-Length")
        too_long = length is not None and (not length.isdigit() or int(length) > self.max_body)
        if not hmac.compare_digest(token.encode(), self.secret_token.encode()):
            log.debug("webhook: a request without the right secret was refused")
            await self._refuse(HTTPStatus.FORBIDDEN, close=too_long)
        elif headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            await self._refuse(HTTPStatus.FORBIDDEN, close=too_long)
        elif too_long:
            await self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, close=True)

    async def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return  # refused and closing: the rest is never read
        self.received += len(chunk)
        if self.received > self.max_body:
            self.chunks.clear()
            await self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, close=True)
        elif self.refused is None:
            self.chunks.append(chunk)

    async def post(self) -> None:
        if self.refused is not None:
            if not self._finished:
                self.finish()  # the answer went out already; the connection stays usable
            return
        try:
            data = json.loads(b"".join(self.chunks))
        except ValueError:
            data = None
        if not isinstance(data, dict):
            log.warning("webhook: a request whose body is not a JSON object was refused")
            self.set_status(HTTPStatus.BAD_REQUEST)
            return
        update_id = data.get("update_id")
        try:
            update = Update.de_json(data, self.bot)
            problem = problem_of(update)
        except Exception as exc:  # whatever PTB could not parse: its name, not its text
            problem = f"cannot be read ({type(exc).__name__})"
        if problem is not None:
            shown = update_id if isinstance(update_id, int) else "without a valid id"
            log.warning("webhook: update %s ignored: %s", shown, problem)
            return
        if self.inbox is not None:
            from bot.inbox import NotStored

            try:
                if not await self.inbox.posted(data):
                    return  # taken already: 200, not run twice
            except NotStored:
                self.set_status(HTTPStatus.SERVICE_UNAVAILABLE)  # Telegram posts it again
                return
        if isinstance(self.bot, ExtBot):
            self.bot.insert_callback_data(update)
        await self.update_queue.put(update)

    async def _refuse(self, status: HTTPStatus, *, close: bool) -> None:
        """Answer now, before the body is read. A body within the limit is then read and
        dropped, so that the client is not cut off while it still writes (a reset could
        lose the answer); a body over it is never read: the connection is closed."""
        if self.refused is None:
            self.refused = status
            self.set_status(status)
            self.set_header("Content-Length", "0")
            await self.flush()
        if close:
            self.finish()  # tornado closes a connection whose request is not fully read

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """One line, never the request's content."""
        log.warning("webhook: request failed (%s)", typ.__name__ if typ else "unknown")


class WebhookApp(tornado.web.Application):
    def __init__(
        self,
        path: str,
        bot: Bot,
        update_queue: asyncio.Queue[object],
        secret_token: str,
        max_body: int,
        inbox: Any = None,
    ) -> None:
        shared = {
            "bot": bot,
            "update_queue": update_queue,
            "secret_token": secret_token,
            "max_body": max_body,
            "inbox": inbox,
        }
        super().__init__([(rf"{path}/?", GuardedWebhookHandler, shared)])

    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        """No access log (PTB's does not have one either)."""


class GuardedUpdater(Updater):
    """PTB's Updater, serving the webhook with GuardedWebhookHandler.

    It replaces `Updater._start_webhook` (PTB 22's internal step that builds the tornado
    application); registering the webhook with Telegram, serving and stopping stay PTB's.
    """

    def __init__(
        self, bot: Bot, update_queue: asyncio.Queue[object], max_body: int, inbox: Any = None
    ) -> None:
        super().__init__(bot=bot, update_queue=update_queue)
        self.max_body = max_body
        self.inbox = inbox  # bot.inbox.UpdateInbox: each post stored before its 200

    async def _start_webhook(  # type: ignore[override]
        self,
        listen: str,
        port: int,
        url_path: str,
        bootstrap_retries: int,
        allowed_updates: Any,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        drop_pending_updates: bool | None = None,
        webhook_url: str | None = None,
        ready: asyncio.Event | None = None,
        ip_address: str | None = None,
        max_connections: int = 40,
        secret_token: str | None = None,
        unix: str | Path | socket | None = None,
    ) -> None:
        if not secret_token:
            raise ValueError("webhook mode needs a secret (CADRE_WEBHOOK_SECRET)")
        if not url_path.startswith("/"):
            url_path = f"/{url_path}"
        app = WebhookApp(
            url_path, self.bot, self.update_queue, secret_token, self.max_body, self.inbox
        )
        # TLS is the reverse proxy's job (docs/deploy.md): no certificate here.
        self._httpd = WebhookServer(listen, port, app, None, unix)
        await self._bootstrap(
            max_retries=bootstrap_retries,
            drop_pending_updates=drop_pending_updates,
            webhook_url=webhook_url,
            allowed_updates=allowed_updates,
            ip_address=ip_address,
            max_connections=max_connections,
            secret_token=secret_token,
        )
        await self._httpd.serve_forever(ready=ready)
