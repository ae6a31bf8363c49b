"""Logging: plain or JSON lines, with the update and alert being handled, and never a secret.

A cadre's phone number, a bot token or a health reading must never reach a log file. The
code does not log them; libraries that log message contents or request URLs (which carry
the token) are held at INFO or above even when CADRE_LOG_LEVEL is DEBUG; and this filter
masks what slips through anyway (inside an exception's text, a library's message, a
traceback), in the message, its arguments, exception texts and stack traces, for the plain
and the JSON format alike:

- the configured secrets, and anything shaped like a bot token (``123456789:AAH...``);
- phone numbers, wherever they stand in a word (``a13712340000``, ``+86 137 1234 0000``);
- readings, by their context: a number after a vital sign's name (``SpO2 86``, ``HR=101``,
  ``heart rate 130``, ``血氧 86``, ``血压150/95``), or before a vital sign's unit (``86%``,
  ``101 bpm``, ``38.5℃``, ``150/95 mmHg``). The name stays, the number goes:
  ``SpO2 <reading>``. A bare number (an id, a count, a latency) stays as it is;
- in messages and exception lines, the values an exception quotes (``invalid literal for
  int() with base 10: '86x'``, pydantic's ``input_value=...``): they are what a person
  typed, a reading or a phone.

The source lines of a traceback are the project's code and keep their quotes. Uncaught
exceptions (of the main thread and of other threads) are logged through the same handler,
so their tracebacks are masked too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from services.log_context import current_alert_id

current_update_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "current_update_id", default=None
)

# A bot token: the bot's id, a colon and the secret part (35 characters at Telegram).
_TOKEN = re.compile(r"(?<!\d)\d{3,}:[A-Za-z0-9_-]{20,}")
_GLUED = frozenset("0123456789+-() ")  # digits glued before a token go with it
# Digits with the separators people type, wherever they stand: "a13712340000" and
# "13712340000abc" are phone numbers too. Runs of fewer than 9 digits are left alone.
_PHONE = re.compile(r"(?<!\d)\+?\d[\d ()-]{8,}\d(?!\d)")
# In an exception's own lines: a quoted value holding a digit, pydantic's input_value,
# SQLAlchemy's statement parameters and a database's "Key (column)=(value)".
_QUOTED_VALUE = re.compile(r"""(['"])(?=[^'"\n]*\d)[^'"\n]*\1""")
_INPUT_VALUE = re.compile(r"""input_value=('[^'\n]*'|"[^"\n]*"|[^,\]\s]+)""")
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*\]")
_KEY_VALUE = re.compile(r"(Key \([^)\n]*\)=\()[^\n]*?(\) )")


def _wide(word: str) -> str:
    """``word`` as a pattern that also matches it typed in full-width letters and digits
    (``ＳｐＯ２``), with ``_``, ``-`` or nothing in place of its spaces."""
    parts = []
    for ch in word:
        if ch.isascii() and ch.isalnum():
            parts.append(f"[{ch}{chr(ord(ch) + 0xFEE0)}]")
        elif ch == " ":
            parts.append(r"[\s_-]*")
        else:
            parts.append(re.escape(ch))
    return "".join(parts)


# The names of the readings a cadre gives (docs: the check-in), in English and Chinese.
# An English name does not count inside a word ("attempt 3" is not a temperature).
_LATIN_LABELS = (
    "spo2",
    "sao2",
    "spo₂",
    "o2 saturation",
    "o2 sat",
    "oxygen saturation",
    "saturation",
    "heart rate",
    "hr",
    "pulse rate",
    "pulse",
    "blood pressure",
    "bp",
    "sbp",
    "dbp",
    "systolic",
    "diastolic",
    "body temperature",
    "temperature",
    "temp",
    "respiratory rate",
    "blood sugar",
    "glucose",
)
_CJK_LABELS = (
    "血氧饱和度",
    "氧饱和度",
    "饱和度",
    "血氧",
    "心率",
    "心跳",
    "脉搏",
    "脈搏",
    "脉率",
    "血压",
    "血壓",
    "收缩压",
    "舒张压",
    "高压",
    "低压",
    "体温",
    "體溫",
    "温度",
    "呼吸频率",
    "血糖",
)
_LABEL = (
    r"(?<![A-Za-z])(?:"
    + "|".join(_wide(w) for w in sorted(_LATIN_LABELS, key=len, reverse=True))
    + r")(?![A-Za-z])|"
    + "|".join(_CJK_LABELS)
)
# What stands between a name and its number: "SpO2 86", "HR=101", "spo2_value: '86'",
# "heart rate is 130", "血氧为 86", "Reading(spo2=86)". Not a bare "_": "systolic_2" is
# a column's name.
_GAP = (
    r"(?:[\s:：=＝'\"“”‘’`()（）\[\]【】{}<>,，、;；.-]"
    r"|_?(?:is|was|of|at|now|value|reading|level|measured|must be|got)(?![A-Za-z])"
    r"|是|为|為|值|约|大约|仅|只有|达到|达)"
)
_NUMBER = r"[-+]?\d+(?:[.,．·]\d+)?(?:\s*(?:[/／~～–-]|to|至|到)\s*\d+(?:[.,．]\d+)?)?"
_UNIT = (
    r"(?:%|％|‰|℃|℉|°\s*[CcFf]?|度|毫米汞柱|次\s*/\s*分钟?|次每分钟?|"
    + "|".join(_wide(u) for u in ("bpm", "beats/min", "/min", "mmhg", "kpa", "mmol/l"))
    + r"(?![A-Za-z]))"
)
_READING = re.compile(
    rf"(?P<named>(?:{_LABEL}){_GAP}{{0,8}})(?P<value>{_NUMBER})(?:\s*{_UNIT})?"
    rf"|(?<!\d)(?P<bare>{_NUMBER}\s*{_UNIT})",
    re.IGNORECASE,
)


def _mask_reading(match: re.Match[str]) -> str:
    if match.group("named") is not None:
        return match.group("named") + "<reading>"
    return "<reading>"


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


def _mask_tokens(text: str) -> str:
    """Tokens, with the digits glued before one ("137-1234 0000123456789:AA..." is a
    phone and a token, not a token after "137-1234 0")."""
    parts, done = [], 0
    for match in _TOKEN.finditer(text):
        start = match.start()
        while start > done and text[start - 1] in _GLUED:
            start -= 1
        while start < match.start() and not text[start].isdigit():
            start += 1  # the spaces and signs before the digits stay
        parts += [text[done:start], "<token>"]
        done = match.end()
    return "".join(parts) + text[done:]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Secrets, tokens, phone numbers and readings masked, wherever they stand."""
    for secret in secrets:
        text = text.replace(secret, "<secret>")
    text = _mask_tokens(text)
    text = _PHONE.sub(_mask_phone, text)
    return _READING.sub(_mask_reading, text)


def _mask_quoted(line: str) -> str:
    """The values an exception's message quotes or lists (what a person typed)."""
    line = _SQL_PARAMETERS.sub("[parameters: <values>]", line)
    line = _KEY_VALUE.sub(r"\1<value>\2", line)
    line = _INPUT_VALUE.sub("input_value=<value>", line)
    return _QUOTED_VALUE.sub(lambda m: f"{m.group(1)}<value>{m.group(1)}", line)


def redact_message(text: str, secrets: Iterable[str] = ()) -> str:
    """`redact`, and the values quoted by an exception's text masked as well: a message
    often carries an exception (``"... failed: %s", exc``)."""
    return "\n".join(_mask_quoted(line) for line in redact(text, secrets).split("\n"))


def redact_traceback(text: str, secrets: Iterable[str] = ()) -> str:
    """`redact`, and the values quoted by the exceptions' messages masked as well."""
    lines = []
    in_frame = False  # the source lines under `  File "...", line N, in f`
    for line in redact(text, secrets).splitlines():
        if line.startswith('  File "'):
            in_frame = True
        elif not (in_frame and line.startswith("    ")):
            in_frame = False
            line = _mask_quoted(line)
        lines.append(line)
    return "\n".join(lines)


class RedactingFilter(logging.Filter):
    """Masks secrets in the message and adds the ids of the update and alert being handled."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Short values would mask ordinary words; the settings never allow them anyway.
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a format that does not fit its arguments: never show them
            message = f"{record.msg} (arguments not shown: they do not fit the format)"
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_traceback(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact_traceback(record.stack_info, self.secrets)
        record.msg, record.args = redact_message(message, self.secrets), None
        if getattr(record, "update_id", None) is None:
            record.update_id = current_update_id.get()
        if getattr(record, "alert_id", None) is None:
            record.alert_id = current_alert_id.get()
        return True


_UNESCAPED_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


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
        line = json.dumps(entry, ensure_ascii=False)
        # Line breaks JSON does not escape by itself: one record stays one line for every
        # reader (Python's splitlines breaks at U+0085, U+2028 and U+2029 too).
        return line.translate(_UNESCAPED_BREAKS)


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


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: Any) -> None:
    """An exception nobody caught: logged (masked) rather than printed by Python."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger(__name__).critical("uncaught exception", exc_info=(kind, error, trace))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger(__name__).critical(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def configure(level: str = "INFO", json_lines: bool = False, secrets: Iterable[str] = ()) -> None:
    """Route every log record (and Python warnings) through one redacting stderr handler."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter(secrets))
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    for name, floor in _LIBRARY_FLOORS.items():
        logging.getLogger(name).setLevel(max(root.level, floor))
    ptb_request = logging.getLogger("telegram.request.BaseRequest")
    if not any(isinstance(f, UnparsedReplyFilter) for f in ptb_request.filters):
        ptb_request.addFilter(UnparsedReplyFilter())
