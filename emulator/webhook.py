"""Webhook delivery: POST each pending update to the bot's URL, in order, with retries.

Like Telegram, an update counts as delivered only on a 2xx reply; otherwise the emulator
records ``last_error_message`` (visible in getWebhookInfo) and retries with a growing delay.
A JSON reply carrying ``{"method": ...}`` is executed, as Telegram allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from .models import Signal
from .world import WebhookState

if TYPE_CHECKING:
    from .server import BotApiEmulator


@dataclass
class WebhookAttempt:
    update_id: int
    url: str
    headers: dict[str, str]
    status: int | None
    error: str | None


class WebhookDelivery:
    def __init__(self, emu: BotApiEmulator):
        self.emu = emu
        self.world = emu.world
        self.retry_delay = 0.05  # first retry delay; doubles up to max_retry_delay
        self.max_retry_delay = 1.0
        self.timeout = 5.0
        self.attempts: list[WebhookAttempt] = []
        self.changed = Signal()  # fired after every delivery attempt
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def set(self, url: str, secret: str | None, max_connections: int, ip: str | None) -> None:
        self._cancel()
        hook = WebhookState(url, secret, max_connections, ip)
        self.world.webhook = hook
        self._task = asyncio.get_running_loop().create_task(self._run(hook))

    def delete(self) -> None:
        self.world.webhook = None
        self._cancel()
        self.world.updates_signal.fire()

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self, hook: WebhookState) -> None:
        world = self.world
        delay = self.retry_delay

        def stopped() -> bool:
            return world.webhook is not hook or self.emu.closing

        while True:
            await world.updates_signal.wait_for(lambda: bool(world.updates) or stopped(), None)
            if stopped():
                return
            update = world.updates[0]
            error = await self._post(hook, update)
            if error is None:
                if world.updates and world.updates[0] is update:
                    world.updates.pop(0)
                hook.delivered += 1
                delay = self.retry_delay
                self.changed.fire()
                continue
            hook.last_error_date = int(time.time())
            hook.last_error_message = error
            self.changed.fire()
            with contextlib.suppress(TimeoutError):
                await world.updates_signal.wait_for(stopped, delay)
            delay = min(delay * 2, self.max_retry_delay)

    async def _post(self, hook: WebhookState, update: dict[str, Any]) -> str | None:
        """Deliver one update; return an error message (Telegram's wording) or None."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        status: int | None = None
        error: str | None = None
        reply: Any = None
        try:
            async with self._session.post(
                hook.url,
                json=update,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                status = response.status
                if not 200 <= status < 300:
                    error = f"Wrong response from the webhook: {status} {response.reason}"
                elif response.content_type == "application/json":
                    with contextlib.suppress(ValueError, aiohttp.ContentTypeError):
                        reply = await response.json()
        except TimeoutError:
            error = "Read timeout expired"
        except aiohttp.ClientConnectorError:
            error = "Connection refused"
        except aiohttp.ClientError as exc:
            error = f"Connection error: {exc}"
        self.attempts.append(WebhookAttempt(update["update_id"], hook.url, headers, status, error))
        if isinstance(reply, dict) and isinstance(reply.get("method"), str):
            params = {k: v for k, v in reply.items() if k != "method"}
            await self.emu.call(reply["method"], params, via="webhook-reply")
        return error
