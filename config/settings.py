"""Typed settings, read from the environment and `.env` with the prefix ``CADRE_``."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TOKEN_PATTERN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{8,}$")
WEBHOOK_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_PORTS = (443, 80, 88, 8443)  # the ports Telegram posts to
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")  # plain http allowed (tests, local proxy)
Language = Literal["zh-Hans", "en"]
# Care policy (services/care_policy.py): altitude bands, editable fields with their limits
# in days, and what an examination can include.
CARE_BANDS = ("low", "mid", "high", "extreme")
CARE_LIMITS: dict[str, tuple[int, int]] = {
    "rest_every_days": (14, 730),
    "rest_length_days": (1, 60),
    "exam_first_days": (0, 365),
    "exam_every_days": (30, 730),
}
EXAM_CONTENTS = ("bp", "pulse", "heart_lung", "ecg", "chest_xray", "haemoglobin")
CarePolicyOverride = dict[str, dict[str, int | list[str] | None]]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CADRE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    telegram_token: SecretStr | None = Field(
        default=None, description="Bot token from @BotFather; required by `run`."
    )
    telegram_base_url: str = Field(
        default="https://api.telegram.org",
        description="Bot API server root (a self-hosted Bot API server or a local emulator).",
    )
    telegram_base_file_url: str | None = Field(
        default=None, description="File download root; defaults to the Bot API root."
    )
    database_url: str = Field(
        default="sqlite:///var/cadre-bot.db", description="Any SQLAlchemy URL."
    )
    admin_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Comma-separated Telegram user ids of admins."
    )
    timezone: str = Field(default="Asia/Shanghai", description="IANA time zone.")
    default_language: Language = Field(default="zh-Hans")
    form_timeout: int = Field(
        default=1800, ge=60, description="Seconds after which an untouched form expires."
    )
    log_level: str = Field(default="INFO")
    log_format: Literal["plain", "json"] = Field(
        default="plain", description="Log lines as plain text or as JSON objects (one a line)."
    )
    webhook_url: str | None = Field(
        default=None,
        description="Public HTTPS URL Telegram posts updates to (`run --webhook`).",
    )
    webhook_listen: str = Field(
        default="127.0.0.1:8443",
        description="host:port the webhook server binds (behind a reverse proxy).",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret every webhook request must carry in X-Telegram-Bot-Api-Secret-Token.",
    )
    webhook_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest webhook request body accepted, in bytes; a larger one is refused "
        "(413) before it is read.",
    )
    max_concurrent_updates: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Updates of different chats handled at once (one chat's stay in order).",
    )
    http_listen: str = Field(
        default="127.0.0.1:8080",
        description="host:port of the health and metrics server (/healthz, /metrics); "
        "empty: no server.",
    )
    webapp_url: str | None = Field(
        default=None,
        description="Public https address of the board (the Telegram Mini App for duty "
        "officers and admins), e.g. https://bot.example.org/board/; unset: no board.",
    )
    webapp_listen: str = Field(
        default="127.0.0.1:8081",
        description="host:port the board's server binds (behind the reverse proxy that "
        "serves CADRE_WEBAPP_URL); separate from the private CADRE_HTTP_LISTEN.",
    )
    webapp_auth_max_age: int = Field(
        default=3600,
        ge=60,
        le=86400,
        description="Seconds the board accepts Telegram's signed initData after its auth_date.",
    )
    delivery_rate: float = Field(
        default=30,
        gt=0,
        le=10000,
        description="Messages per second the bot sends overall (Telegram: about 30; "
        "more only with paid broadcasts).",
    )
    delivery_chat_rate: float = Field(
        default=1, gt=0, le=100, description="Messages per second to one private chat."
    )
    delivery_chat_burst: int = Field(
        default=2, ge=1, le=100, description="Messages to one private chat sent back to back."
    )
    delivery_group_per_minute: float = Field(
        default=20, gt=0, le=1000, description="Messages per minute to one group."
    )
    delivery_concurrency: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Sends in flight at once (emergencies and urgent ones get 8 more).",
    )
    delivery_send_timeout: float = Field(
        default=10, gt=0, le=120, description="Seconds to wait for Telegram's answer to a send."
    )
    delivery_max_attempts: int = Field(
        default=10,
        ge=1,
        description="Attempts of a reminder or broadcast message through transient failures; "
        "emergency and urgent messages are retried until they are sent.",
    )
    delivery_worker: bool = Field(
        default=True,
        description="Run the delivery worker (false on a second instance sharing the database).",
    )
    outbox_lease: float = Field(
        default=30,
        ge=1,
        le=600,
        description="Seconds an outbox row being sent stays leased to its worker without a "
        "renewal (renewed every third of it); an expired lease is taken back and sent again.",
    )
    ha_lease: float = Field(
        default=6,
        ge=0.5,
        le=60,
        description="PostgreSQL high availability: a leader whose heartbeat is older than "
        "this is replaced by a standby; the leader stops sending a third of it after its "
        "last heartbeat, and heartbeats every sixth of it.",
    )
    broadcast_progress_interval: float = Field(
        default=3,
        ge=0.2,
        le=60,
        description="Seconds between edits of a broadcast's live progress message.",
    )
    sos_ack_timeout: int = Field(
        default=180,
        ge=1,
        description="Seconds an alert may stay unacknowledged before it escalates.",
    )
    sos_repeat_interval: int = Field(
        default=300,
        ge=1,
        description="Seconds between repeats to everyone once an alert reached the last tier.",
    )
    # Alert channels beyond Telegram (docs/emergency.md): the HTTP SMS gateway. WeCom and
    # DingTalk duty groups are set by admins with /dutygroup (stored in the database).
    sms_url: str | None = Field(
        default=None,
        description="URL of the HTTP SMS gateway ({phone} and {text} are filled in, "
        "URL-encoded); unset: no SMS.",
    )
    sms_method: Literal["POST", "PUT", "GET"] = Field(
        default="POST", description="HTTP method of the SMS gateway."
    )
    sms_body_template: str = Field(
        default='{"phone": "{phone}", "text": "{text}"}',
        description="Request body: JSON (values JSON-escaped) or form fields "
        "(values URL-encoded), with {phone}, {phone_national} and {text}.",
    )
    sms_headers: SecretStr | None = Field(
        default=None,
        description='Extra request headers as a JSON object, e.g. {"Authorization": "Bearer …"}.',
    )
    sms_per_minute: float = Field(
        default=60, gt=0, le=6000, description="Messages per minute the SMS gateway accepts."
    )

    care_jobs: bool = Field(
        default=True,
        description="Run the care reminder and oxygen escalation jobs (false: a second "
        "instance on the same database, or tests of other features).",
    )
    care_reminder_time: str = Field(
        default="09:00",
        description="Local time (HH:MM) of care reminders, unless a person chose their own.",
    )
    care_escalation_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="Days a rest or exam may be overdue before duty officers and admins are told.",
    )
    care_grace_hours: float = Field(
        default=8,
        ge=0,
        le=48,
        description="A reminder missed while the bot was down is still sent this long after.",
    )
    care_pass_interval: int = Field(
        default=300, ge=1, description="Seconds between the care reminder passes (a safety net)."
    )
    care_policy: CarePolicyOverride = Field(
        default_factory=dict,
        description="JSON overrides of the care policy per altitude band (docs/care.md).",
    )
    oxygen_escalation_minutes: float = Field(
        default=15,
        gt=0,
        le=24 * 60,
        description="Minutes an urgent oxygen request may stay unacknowledged before escalating.",
    )

    health_reminder_time: str = Field(
        default="09:00",
        description="Default local time (HH:MM, 05:00-14:00) of the daily check-in reminder.",
    )
    health_second_time: str = Field(
        default="19:00",
        description="Local time of the second daily reminder in the weeks of closer monitoring.",
    )
    health_nudge_after_hours: float = Field(
        default=3, gt=0, le=8, description="Hours after the reminder before a nudge."
    )
    health_cutoff_after_hours: float = Field(
        default=9,
        gt=0,
        le=9.5,
        description="Hours after the reminder when the duty officer is told of a missed day.",
    )
    health_close_monitoring_days: int = Field(
        default=5,
        ge=0,
        le=14,
        description="Days of twice-daily check-ins after arrival and after each rest return.",
    )
    health_retention_days: int = Field(
        default=90,
        ge=0,
        description="Days after the assignment ends before detailed readings are deleted.",
    )
    outbox_sent_retention_days: int = Field(
        default=30,
        ge=1,
        description=(
            "Days after which the text of messages already sent (or failed, or cancelled) "
            "is cleared from the outbox by the daily retention pass; the delivery record stays."
        ),
    )
    health_thresholds: str = Field(
        default="",
        description=(
            "Overrides of the health thresholds: a JSON object or a JSON file path. The names "
            "and the rules they feed are the services' (services/health/thresholds.py), which "
            "check them at start-up (services.health.config.check)."
        ),
    )

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",")]
            return [int(p) for p in parts if p]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("care_reminder_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if not match:
            raise ValueError("expected a local time HH:MM, e.g. 09:00")
        return f"{int(match[1]):02d}:{match[2]}"

    @field_validator("care_policy")
    @classmethod
    def _care_policy(cls, value: CarePolicyOverride) -> CarePolicyOverride:
        for band, fields in value.items():
            if band not in CARE_BANDS:
                raise ValueError(f"unknown altitude band {band!r} (one of {', '.join(CARE_BANDS)})")
            for name, setting in fields.items():
                if name == "exam_contents":
                    if not isinstance(setting, list) or set(setting) - set(EXAM_CONTENTS):
                        raise ValueError(f"{band}.exam_contents: any of {', '.join(EXAM_CONTENTS)}")
                    continue
                if name not in CARE_LIMITS:
                    raise ValueError(f"{band}: unknown field {name!r}")
                low, high = CARE_LIMITS[name]
                if isinstance(setting, list) or not (setting is None or low <= setting <= high):
                    raise ValueError(f"{band}.{name} must be null or between {low} and {high}")
        return value

    @field_validator("health_reminder_time", "health_second_time")
    @classmethod
    def _health_time(cls, value: str, info: ValidationInfo) -> str:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if not match:
            raise ValueError("expected a local time HH:MM, e.g. 09:00")
        hour = int(match[1])
        if info.field_name == "health_reminder_time" and not 5 <= hour < 14:
            raise ValueError("the daily reminder must be between 05:00 and 14:00")
        return f"{hour:02d}:{match[2]}"

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("webhook_url", "webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment:
            raise ValueError("expected the public URL, e.g. https://bot.example.org/telegram")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in {value!r}") from exc
        if host not in LOOPBACK_HOSTS:
            if parts.scheme != "https":
                raise ValueError("Telegram only posts to https:// URLs")
            if (port or 443) not in WEBHOOK_PORTS:
                raise ValueError("Telegram only posts to ports 443, 80, 88 or 8443")
        return value.strip()

    @field_validator("webhook_listen")
    @classmethod
    def _webhook_listen(cls, value: str) -> str:
        host, _, port = value.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected host:port, e.g. 127.0.0.1:8443")
        return value.strip()

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not WEBHOOK_SECRET_PATTERN.fullmatch(value.get_secret_value()):
            raise ValueError("expected 1-256 characters: A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("sms_url", "sms_headers", mode="before")
    @classmethod
    def _blank_sms_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("sms_url")
    @classmethod
    def _sms_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value.strip()):
            raise ValueError("expected an http:// or https:// URL")
        return value.strip() if value else None

    @field_validator("sms_method", mode="before")
    @classmethod
    def _sms_method(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("sms_headers")
    @classmethod
    def _sms_headers(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        import json

        try:
            headers = json.loads(value.get_secret_value())
        except ValueError:
            headers = None
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            # never echo the value: it holds the gateway's credentials
            raise ValueError('expected a JSON object of strings, e.g. {"X-Api-Key": "..."}')
        return value

    @property
    def sms_enabled(self) -> bool:
        return self.sms_url is not None

    @field_validator("http_listen")
    @classmethod
    def _http_listen(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("expected host:port, e.g. 127.0.0.1:8080 (empty: no server)")
        return value

    @field_validator("webapp_url", mode="before")
    @classmethod
    def _blank_webapp_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webapp_url")
    @classmethod
    def _webapp_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(
                "expected the board's public https URL, e.g. https://bot.example.org/board/"
            )
        return value.strip()

    @field_validator("webapp_listen")
    @classmethod
    def _webapp_listen(cls, value: str) -> str:
        host, _, port = value.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("expected host:port, e.g. 127.0.0.1:8081")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("telegram_base_url", "telegram_base_file_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def bot_api_url(self) -> str:
        """Base URL in the form python-telegram-bot expects (the token is appended)."""
        return f"{self.telegram_base_url}/bot"

    @property
    def bot_file_url(self) -> str:
        return f"{self.telegram_base_file_url or self.telegram_base_url}/file/bot"

    @property
    def webhook_address(self) -> tuple[str, int]:
        """CADRE_WEBHOOK_LISTEN as (host, port); IPv6 brackets removed."""
        host, _, port = self.webhook_listen.rpartition(":")
        return host.strip("[]"), int(port)

    def webhook_endpoint(self) -> tuple[str, str]:
        """(URL Telegram posts to, path the local server answers on).

        The path of CADRE_WEBHOOK_URL when it has one; otherwise a path nobody can guess,
        derived from the token (stable across restarts), appended to the URL. The reverse
        proxy must pass the path on unchanged."""
        assert self.webhook_url is not None and self.telegram_token is not None
        path = urlsplit(self.webhook_url).path.rstrip("/")
        if path:
            return self.webhook_url, path
        token = self.telegram_token.get_secret_value().encode()
        path = "/telegram-" + hashlib.sha256(b"cadre-bot webhook:" + token).hexdigest()[:32]
        return self.webhook_url.rstrip("/") + path, path

    def webhook_problem(self) -> str | None:
        """A one-line reason why `run --webhook` cannot start, or None."""
        if self.webhook_url is None:
            return "CADRE_WEBHOOK_URL is not set (the public https URL Telegram posts updates to)"
        if self.webhook_secret is None:
            return (
                "CADRE_WEBHOOK_SECRET is not set "
                "(1-256 characters: A-Z, a-z, 0-9, _ and -; e.g. `openssl rand -hex 32`)"
            )
        return None

    @property
    def http_address(self) -> tuple[str, int] | None:
        """CADRE_HTTP_LISTEN as (host, port), IPv6 brackets removed; None when empty."""
        if not self.http_listen:
            return None
        host, _, port = self.http_listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def webapp_address(self) -> tuple[str, int]:
        """CADRE_WEBAPP_LISTEN as (host, port), IPv6 brackets removed."""
        host, _, port = self.webapp_listen.rpartition(":")
        return host.strip("[]"), int(port)

    def token_problem(self) -> str | None:
        """A one-line reason why the token cannot be used, or None when it looks right."""
        if self.telegram_token is None or not self.telegram_token.get_secret_value():
            return "CADRE_TELEGRAM_TOKEN is not set (get one from @BotFather)"
        if not TOKEN_PATTERN.match(self.telegram_token.get_secret_value()):
            return "CADRE_TELEGRAM_TOKEN is malformed (expected digits:characters from @BotFather)"
        return None
