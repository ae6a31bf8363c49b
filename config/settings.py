"""Typed settings, read from the environment and `.env` with the prefix ``CADRE_``."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TOKEN_PATTERN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{8,}$")
Language = Literal["zh-Hans", "en"]


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

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",")]
            return [int(p) for p in parts if p]
        if isinstance(value, int):
            return [value]
        return value

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

    def token_problem(self) -> str | None:
        """A one-line reason why the token cannot be used, or None when it looks right."""
        if self.telegram_token is None or not self.telegram_token.get_secret_value():
            return "CADRE_TELEGRAM_TOKEN is not set (get one from @BotFather)"
        if not TOKEN_PATTERN.match(self.telegram_token.get_secret_value()):
            return "CADRE_TELEGRAM_TOKEN is malformed (expected digits:characters from @BotFather)"
        return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
