"""Logging: plain or JSON lines, with the update and alert being handled, and never a secret.

A cadre's phone number, a bot token or a health reading must never reach a log file. The
code does not log them; libraries that log message contents or request URLs (which carry
the token) are held at INFO or above even when CADRE_LOG_LEVEL is DEBUG; and this filter
masks the configured secrets, tokens and phone numbers that slip through anyway (for
instance inside a library's exception text), wherever they stand in a word. In exception
texts and stack traces it also masks the values an exception quotes (``invalid literal
for int() with base 10: '86x'``, pydantic's ``input_value=...``): they are what a person
typed, a reading or a phone. The source lines of a traceback are the project's code and
stay as they are.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from services.log_context import current_alert_id

current_update_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "current_update_id", default=None
)

_TOKEN = re.compile(r"(?<!\d)\d{3,20}:[A-Za-z0-9_-]{20,}")
# Digits with the separators people type, wherever they stand: "a13712340000" and
# "13712340000abc" are phone numbers too. Runs of fewer than 9 digits are left alone.
_PHONE = re.compile(r"(?<!\d)\+?\d[\d ()-]{8,}\d(?!\d)")
# In an exception's own lines: a quoted value holding a digit, and pydantic's input_value.
_QUOTED_VALUE = re.compile(r"""(['"])(?=[^'"\n]*\d)[^'"\n]*\1""")
_INPUT_VALUE = re.compile(r"""input_value=('[^'\n]*'|"[^"\n]*"|[^,\]\s]+)""")
_CONTEXT = ("update_id", "alert_id", "outbox_id")
# Library loggers and the lowest level they may log at. python-telegram-bot logs every
# Bot API call with its parameters and every update received at DEBUG (message texts,
# shared contacts, typed readings); httpx logs request URLs, which contain the token.
_LIBRARY_FLOORS = {
    "telegram": logging.INFO,
    "tornado": logging.INFO,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "aiohttp": logging.WARNING,
    "alembic": logging.WARNING,
    "apscheduler": logging.WARNING,
    "matplotlib": logging.WARNING,
    "PIL": logging.WARNING,
    "asyncio": logging.INFO,
    "bm25s": logging.WARNING,  # sets its own logger to DEBUG
}


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?!\d)")


def _mask_phone(match: re.Match[str]) -> str:
    candidate = match.group()
    digits = sum(c.isdigit() for c in candidate)
    if _DATE.match(candidate) or (digits < 9 and not candidate.startswith("+")):
        return candidate  # a date (2026-08-29), or too short for a phone number
    return "<phone>"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, "<secret>")
    text = _TOKEN.sub("<token>", text)
    return _PHONE.sub(_mask_phone, text)


def redact_traceback(text: str, secrets: Iterable[str] = ()) -> str:
    """`redact`, and the values quoted by the exceptions' messages masked as well."""
    lines = []
    in_frame = False  # the source lines under `  File "...", line N, in f`
    for line in redact(text, secrets).splitlines():
        if line.startswith('  File "'):
            in_frame = True
        elif not (in_frame and line.startswith("    ")):
            in_frame = False
            line = _INPUT_VALUE.sub("input_value=<value>", line)
            line = _QUOTED_VALUE.sub(lambda m: f"{m.group(1)}<value>{m.group(1)}", line)
        lines.append(line)
    return "\n".join(lines)


class RedactingFilter(logging.Filter):
    """Masks secrets in the message and adds the ids of the update and alert being handled."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Short values would mask ordinary words; the settings never allow them anyway.
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_traceback(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact_traceback(record.stack_info, self.secrets)
        record.msg, record.args = redact(message, self.secrets), None
        if getattr(record, "update_id", None) is None:
            record.update_id = current_update_id.get()
        if getattr(record, "alert_id", None) is None:
            record.alert_id = current_alert_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the ids, the exception and
    the stack (when logged with stack_info)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger [update 12 alert 3]: message``; the brackets only when known."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [
            f"{name.removesuffix('_id')} {value}"
            for name in _CONTEXT
            if (value := getattr(record, name, None)) is not None
        ]
        record.context = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


class UnparsedReplyFilter(logging.Filter):
    """python-telegram-bot logs every reply that is not JSON (the HTML page of a 502 from
    Telegram's front end, or from a proxy) as an error with a traceback, then raises the
    NetworkError that the caller handles and logs in one line: that line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Can not load invalid JSON data")


def configure(level: str = "INFO", json_lines: bool = False, secrets: Iterable[str] = ()) -> None:
    """Route every log record (and Python warnings) through one redacting stderr handler."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter(secrets))
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    for name, floor in _LIBRARY_FLOORS.items():
        logging.getLogger(name).setLevel(max(root.level, floor))
    ptb_request = logging.getLogger("telegram.request.BaseRequest")
    if not any(isinstance(f, UnparsedReplyFilter) for f in ptb_request.filters):
        ptb_request.addFilter(UnparsedReplyFilter())
