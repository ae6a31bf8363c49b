"""Telegram Mini App authentication: the `initData` Telegram signs with the bot token.

As Telegram specifies ("Validating data received via the Mini App"):

    data_check_string = every received field except `hash`, as key=<value> (values
                        URL-decoded), sorted by key, joined with "\\n"
    secret_key        = HMAC_SHA256(key="WebAppData", msg=bot_token)
    hash              = hex(HMAC_SHA256(key=secret_key, msg=data_check_string))

The hash is compared in constant time, and `auth_date` must be no older than the board's
setting (CADRE_WEBAPP_AUTH_MAX_AGE, one hour by default). Nothing here decides what the
person may see: that comes from the database on every request (webapp/server.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

MAX_INIT_DATA = 8192  # bytes; Telegram's initData is a few hundred
CLOCK_SKEW = 60  # seconds an auth_date may lie in the future (clocks differ a little)


class AuthError(Exception):
    """Why initData was refused (logged, never shown in detail)."""


@dataclass(frozen=True)
class WebAppUser:
    telegram_id: int
    auth_date: int
    language_code: str | None = None


def secret_key(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def data_check_string(fields: dict[str, str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def signature(fields: dict[str, str], bot_token: str) -> str:
    message = data_check_string(fields).encode()
    return hmac.new(secret_key(bot_token), message, hashlib.sha256).hexdigest()


def validate(init_data: str, bot_token: str, max_age: int, now: float | None = None) -> WebAppUser:
    """The user `init_data` was signed for, or AuthError (forged, expired, malformed, or
    signed with another bot's token)."""
    if not init_data or len(init_data) > MAX_INIT_DATA:
        raise AuthError("missing or oversized initData")
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise AuthError("malformed initData") from exc
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise AuthError(f"field {key!r} repeated")
        fields[key] = value
    received = fields.get("hash", "")
    expected = signature(fields, bot_token)
    if not hmac.compare_digest(received.encode(), expected.encode()):
        raise AuthError("bad hash")
    try:
        auth_date = int(fields["auth_date"])
        user = json.loads(fields["user"])
        telegram_id = int(user["id"])
    except (KeyError, ValueError, TypeError) as exc:
        raise AuthError("no auth_date or user") from exc
    now = time.time() if now is None else now
    if auth_date > now + CLOCK_SKEW:
        raise AuthError("auth_date in the future")
    if now - auth_date > max_age:
        raise AuthError("expired")
    language = user.get("language_code") if isinstance(user, dict) else None
    return WebAppUser(telegram_id, auth_date, language if isinstance(language, str) else None)


def sign(
    bot_token: str,
    telegram_id: int,
    *,
    auth_date: int | None = None,
    first_name: str = "User",
    language_code: str = "en",
    extra: dict[str, str] | None = None,
) -> str:
    """initData as Telegram would send it to this bot: for the tests, the benchmarks and
    the emulator (never used to authenticate anyone)."""
    user = {"id": telegram_id, "first_name": first_name, "language_code": language_code}
    fields = {
        "auth_date": str(int(time.time()) if auth_date is None else auth_date),
        "query_id": f"AA{telegram_id}",
        "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
        **(extra or {}),
    }
    fields["hash"] = signature(fields, bot_token)
    return urlencode(fields)
