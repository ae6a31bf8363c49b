"""getUpdates (true long polling) and the webhook methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import errors as E
from .errors import bad_request, conflict
from .reply import Handler, Reply

if TYPE_CHECKING:
    from .server import BotApiEmulator

LONG_POLL_MAX_TIMEOUT = 50
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass
class _LongPoll:
    abort: str | None = None  # set when another request terminates this long poll


class UpdateMethods:
    """getUpdates, setWebhook, deleteWebhook, getWebhookInfo."""

    def __init__(self, emu: BotApiEmulator):
        self.emu = emu
        self.world = emu.world
        self._poll: _LongPoll | None = None
        self.table: dict[str, Handler] = {
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
        }

    async def get_updates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        world = self.world
        if world.webhook is not None:
            raise conflict(E.GET_UPDATES_WEBHOOK_CONFLICT)
        world.set_allowed_updates(p.get("allowed_updates"))
        if p.get("offset"):
            world.confirm(int(p["offset"]))
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        timeout = min(max(int(p.get("timeout") or 0), 0), LONG_POLL_MAX_TIMEOUT)
        # Like Telegram, a new getUpdates terminates the one still waiting (409 Conflict).
        self.abort_long_poll(E.GET_UPDATES_TERMINATED)
        poll = _LongPoll()
        self._poll = poll

        def ready() -> bool:
            return bool(world.updates) or poll.abort is not None or self.emu.closing

        try:
            if timeout:
                await world.updates_signal.wait_for(ready, timeout)
        except TimeoutError:
            pass
        finally:
            if self._poll is poll:
                self._poll = None
        if poll.abort is not None:
            raise conflict(poll.abort)
        return world.updates[:limit]

    def abort_long_poll(self, reason: str) -> None:
        if self._poll is not None:
            self._poll.abort = reason
            self._poll = None
            self.world.updates_signal.fire()

    def set_webhook(self, p: dict[str, Any]) -> Reply:
        url = p.get("url") or ""
        if not url:
            return self.delete_webhook(p)
        parts = urlsplit(url)
        loopback = parts.hostname in LOOPBACK_HOSTS
        if parts.scheme != "https" and not (loopback and parts.scheme == "http"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if not loopback and (parts.port or 443) not in (80, 88, 443, 8443):
            raise bad_request(
                "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
            )
        secret = p.get("secret_token")
        if secret is not None:
            if len(secret) > 256:
                raise bad_request("secret token is too long")
            if not all(c.isascii() and (c.isalnum() or c in "_-") for c in secret):
                raise bad_request("secret token contains unallowed characters")
        world = self.world
        world.set_allowed_updates(p.get("allowed_updates"))
        if p.get("drop_pending_updates"):
            world.drop_pending()
        current = world.webhook
        if (
            current is not None
            and current.url == url
            and current.secret_token == secret
            and not p.get("drop_pending_updates")
        ):
            return Reply(True, "Webhook is already set")
        self.abort_long_poll("terminated by setWebhook request")
        self.emu.webhook.set(url, secret, int(p.get("max_connections") or 40), p.get("ip_address"))
        return Reply(True, "Webhook was set")

    def delete_webhook(self, p: dict[str, Any]) -> Reply:
        if p.get("drop_pending_updates"):
            self.world.drop_pending()
        if self.world.webhook is None:
            return Reply(True, "Webhook is already deleted")
        self.emu.webhook.delete()
        return Reply(True, "Webhook was deleted")

    def get_webhook_info(self, p: dict[str, Any]) -> dict[str, Any]:
        hook = self.world.webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.world.updates),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.ip_address:
                info["ip_address"] = hook.ip_address
            if hook.last_error_date:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        if self.world.allowed_updates is not None:
            info["allowed_updates"] = sorted(self.world.allowed_updates)
        return info
