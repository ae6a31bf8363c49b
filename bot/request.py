"""The Application's HTTP client for the Bot API: python-telegram-bot's `BaseRequest` on
aiohttp instead of its default httpx transport.

Why: under load (1,000 people checking in within a minute, docs/benchmarks.md) the bot's
own replies were the largest CPU cost of the process. httpx/httpcore look at every pooled
connection on each request (is it idle, expired, readable: a system call each), so a
request costs more the more connections are open; aiohttp takes a free connection from a
list. Same requests, same errors: PTB builds them (`RequestData`) and maps the HTTP status
and the Bot API's answer to its exceptions (`BaseRequest._request_wrapper`); this class only
moves the bytes, raising `TimedOut` or `NetworkError` as `HTTPXRequest` does.

One distinction PTB does not make: `Unavailable` (a `NetworkError`) for the failures after
which the same request may simply be sent again: a 502, 503 or 504 from Telegram's front
end, and a connection that could not be made or was dropped. The rate limiter
(`bot.reply_limits.ReplyAccounting`) sends a reply again after those, never after a 400 or a
read timeout (the request may have been performed; we already waited for it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

JSON = "application/json"
RETRYABLE_STATUS = frozenset({502, 503, 504})


class Unavailable(NetworkError):
    """Telegram could not take the request now (502/503/504, connection refused, dropped or
    reset, connecting timed out): sending it again is the remedy. A dropped connection may
    come after the request was performed; a rare duplicate reply beats a lost one."""


# bot/leader.py on PostgreSQL: awaited before every request of the Application's bot
# (getUpdates included), so that a leader whose leadership is not confirmed (paused, then
# resumed after a standby took over) neither fetches nor replies before it exits.
_gate: Callable[[], Awaitable[None]] | None = None


def set_gate(gate: Callable[[], Awaitable[None]] | None) -> None:
    global _gate
    _gate = gate


# What a getUpdates answer is handed to before python-telegram-bot sees it: the update
# inbox (bot/inbox.py), which stores the updates before the next call confirms them. Called
# with the call's `offset` and the updates; raising keeps them unconfirmed with Telegram.
Fetched = Callable[[int | None, list[dict[str, Any]]], Awaitable[None]]


class AiohttpRequest(BaseRequest):
    """Bot API requests over one aiohttp session with at most `connection_pool_size`
    connections. Timeouts as in PTB's `HTTPXRequest`: connect, read and pool (waiting for
    a free connection; `TimedOut` when it passes). aiohttp has no write timeout: sending
    is not timed on its own (the bodies are small: texts, charts, exports)."""

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        fetched: Fetched | None = None,
    ) -> None:
        self._fetched = fetched  # for the getUpdates request only (see `Fetched`)
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=self._pool_size, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT}
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        if _gate is not None:
            await _gate()
        read = _given(read_timeout, self._read_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        timeout = aiohttp.ClientTimeout(
            total=None,
            # aiohttp's `connect` covers waiting for a pooled connection and connecting.
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        body, headers = _body(request_data)
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                status, payload = response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as exc:  # never connected: nothing was sent
            raise Unavailable(f"aiohttp.{exc.__class__.__name__}: {exc}") from exc
        except TimeoutError as exc:
            raise TimedOut() from exc
        except aiohttp.ClientError as exc:
            raise Unavailable(f"aiohttp.{exc.__class__.__name__}: {exc}") from exc
        if status in RETRYABLE_STATUS:
            raise Unavailable(f"{HTTPStatus(status).phrase} ({status})")
        if self._fetched is not None and status == HTTPStatus.OK and url.endswith("/getUpdates"):
            await _hand_over(self._fetched, request_data, payload)
        return status, payload


async def _hand_over(fetched: Fetched, request_data: RequestData | None, payload: bytes) -> None:
    """Give the updates of a getUpdates answer to `fetched` (what python-telegram-bot
    cannot read, it reports itself)."""
    try:
        answer = json.loads(payload)
    except ValueError:
        return
    result = answer.get("result") if isinstance(answer, dict) and answer.get("ok") else None
    if not isinstance(result, list):
        return
    updates = [u for u in result if isinstance(u, dict) and isinstance(u.get("update_id"), int)]
    if not updates:
        return
    offset = request_data.parameters.get("offset") if request_data is not None else None
    await fetched(offset if isinstance(offset, int) else None, updates)


def _body(request_data: RequestData | None) -> tuple[Any, dict[str, str] | None]:
    """JSON when there is nothing to upload (one encoding of the whole request, which the
    Bot API accepts), multipart/form-data with the files otherwise (each parameter a field
    holding its JSON value, as PTB's httpx transport sends them)."""
    if request_data is None:
        return None, None
    files = request_data.multipart_data if request_data.contains_files else None
    if not files:
        payload = json.dumps(request_data.parameters, ensure_ascii=False).encode()
        return payload, {"Content-Type": JSON}
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime_type) in files.items():
        form.add_field(name, content, filename=filename, content_type=mime_type)
    return form, None


def _given(value: Any, default: float | None) -> float | None:
    """PTB passes a DefaultValue for "not given"; None means no timeout."""
    return default if isinstance(value, DefaultValue) else value
