"""The delivery worker's HTTP client for the Bot API: JSON in, JSON out, on aiohttp.

Why not the Application's `telegram.Bot`: measured on this project's 2-core machine
(docs/benchmarks.md), PTB's default transport (httpx) costs about 1.2 ms of CPU per request,
more as concurrency grows, and turning each reply into a `telegram.Message` another 0.6 ms.
The worker needs neither (it only keeps the message id), and at 1,000 messages/s that CPU
is the whole budget. This client costs about 0.15 ms per request. Errors are raised as
python-telegram-bot's exceptions, mapped the way PTB maps them
(`telegram.request.BaseRequest._request_wrapper`), so the worker's handling of 403, 400,
429, 5xx and network errors reads like any PTB code.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import aiohttp
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
    TimedOut,
)


class FloodWait(TelegramError):
    """429 Too Many Requests with retry_after (PTB's RetryAfter, without its deprecation
    warning about the type of retry_after)."""

    def __init__(self, seconds: float, description: str) -> None:
        super().__init__(description)
        self.seconds = seconds


class BotApiClient:
    """POST Bot API methods with a JSON body over a bounded aiohttp connection pool."""

    def __init__(self, api_url: str, token: str, *, pool_size: int = 64) -> None:
        self._base = f"{api_url}{token}/"
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=self._pool_size, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"Content-Type": "application/json", "User-Agent": "cadre-bot delivery"},
            )

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        *,
        seconds: float,
        files: dict[str, tuple[str, bytes]] | None = None,
    ) -> Any:
        """The method's ``result`` (`seconds`: connect and read timeout). Failures raise
        TelegramError subclasses: TimedOut or NetworkError when the request may not have
        been performed, or its outcome is unknown. `files` ({parameter: (filename, bytes)})
        are uploaded: the request is then multipart/form-data, as the Bot API requires."""
        if self._session is None:
            raise RuntimeError("BotApiClient.start() was not called")
        body: Any
        headers: dict[str, str] | None = None
        if files:
            body = multipart(params, files)
            headers = {"Content-Type": body.content_type}  # not the session's JSON type
        else:
            body = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()
        limits = aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=seconds)
        try:
            async with self._session.post(
                self._base + method, data=body, headers=headers, timeout=limits
            ) as r:
                status, payload = r.status, await r.read()
        except TimeoutError as exc:
            raise TimedOut() from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{exc.__class__.__name__}: {exc}") from exc
        return result_of(status, payload)


def multipart(params: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> Any:
    """A multipart/form-data body: each parameter a form field (objects such as
    reply_markup as JSON, as the Bot API reads them), each file a file part."""
    form = aiohttp.FormData()
    for name, value in params.items():
        if not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        form.add_field(name, value)
    for name, (filename, data) in files.items():
        form.add_field(name, data, filename=filename, content_type="application/octet-stream")
    return form()


def result_of(status: int, payload: bytes) -> Any:
    """PTB's mapping of a Bot API reply to a result or an exception."""
    try:
        data = json.loads(payload.decode("utf-8", "replace"))
    except ValueError:
        data = None
    if 200 <= status <= 299 and isinstance(data, dict) and "result" in data:
        return data["result"]
    try:
        message = f"{HTTPStatus(status).phrase} ({status})"
    except ValueError:
        message = f"Unknown HTTPError ({status})"
    if isinstance(data, dict):
        message = data.get("description") or message
        parameters = data.get("parameters") or {}
        if parameters.get("migrate_to_chat_id"):
            raise ChatMigrated(int(parameters["migrate_to_chat_id"]))
        if parameters.get("retry_after"):
            raise FloodWait(float(parameters["retry_after"]), message)
    elif 200 <= status <= 299:
        raise NetworkError("Invalid server response")
    if status == HTTPStatus.FORBIDDEN:
        raise Forbidden(message)
    if status in (HTTPStatus.NOT_FOUND, HTTPStatus.UNAUTHORIZED):
        raise InvalidToken(message)
    if status == HTTPStatus.BAD_REQUEST:
        raise BadRequest(message)
    if status == HTTPStatus.CONFLICT:
        raise Conflict(message)
    raise NetworkError(message)
