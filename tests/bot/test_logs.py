"""Log lines never carry a token, a phone number or a reading, in messages, arguments,
exception texts or tracebacks, plain or JSON; and they can be JSON with the update id."""

import io
import json
import logging
import re
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.logs import (
    JsonFormatter,
    PlainFormatter,
    RedactingFilter,
    current_update_id,
    redact,
    redact_message,
)
from config import Settings


def test_tokens_and_phone_numbers_are_masked():
    text = (
        "POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/x"
        " +86 138 0013 8000"
    )
    masked = redact(text)
    assert "AAHdqTcv" not in masked and "138 0013" not in masked
    assert "<token>" in masked and "<phone>" in masked


@pytest.mark.parametrize(
    "text",
    [
        "a13712340000",
        "13712340000abc",
        "phone=13712340000.",
        "id_13712340000_x",
        "+86 137 1234 0000",
        "tel:+8613712340000",
        "１３７１２３４００００",  # full-width digits, as a Chinese input method may type them
    ],
)
def test_phone_numbers_are_masked_wherever_they_stand(text):
    masked = redact(text)
    assert "<phone>" in masked and "1234" not in masked and "１２３４" not in masked


def _through_configure(json_lines: bool, emit: Callable[[logging.Logger], None]) -> str:
    """What `emit` logs, through the handler `configure` installs, in the given format."""
    from bot.logs import configure

    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook, threading.excepthook
    stream = io.StringIO()
    try:
        configure("INFO", json_lines=json_lines, secrets=["s3cret-Token_for-the-webhook"])
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        emit(logging.getLogger("bot.test"))
    finally:
        root.handlers[:], _, sys.excepthook, threading.excepthook = saved
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    return stream.getvalue()


def _logged(json_lines: bool, **kwargs) -> str:
    """One record through the handler `configure` installs, in the given format."""
    return _through_configure(
        json_lines, lambda log: log.error("while handling an update", **kwargs)
    )


def _raise_with_personal_data() -> None:
    try:
        int("86x")  # a reading typed with a stray letter
    except ValueError as exc:
        raise ValueError("no such person: a13712340000 (s3cret-Token_for-the-webhook)") from exc


@pytest.mark.parametrize("json_lines", [False, True])
def test_exception_texts_and_tracebacks_carry_no_phone_reading_or_secret(json_lines):
    try:
        _raise_with_personal_data()
    except ValueError:
        text = _logged(json_lines, exc_info=True, stack_info=True)
    if json_lines:
        entry = json.loads(text)
        assert "Traceback" in entry["exception"] and "Stack" in entry["stack"]
        text = " ".join(str(v) for v in entry.values())
    assert "Traceback" in text and "_raise_with_personal_data" in text  # still useful
    assert 'int("86x")' in text  # the source line is code, not data
    for leaked in ("13712340000", "'86x'", "s3cret"):
        assert leaked not in text, text
    assert "<phone>" in text and "'<value>'" in text and "<secret>" in text


def test_pydantic_input_values_are_masked_in_tracebacks():
    from pydantic import BaseModel

    class Reading(BaseModel):
        spo2: int

    typed = "86 %"
    try:
        Reading(spo2=typed)
    except ValidationError:
        text = _logged(False, exc_info=True)
    assert "86 %" not in text and "input_value=<value>" in text


def test_ordinary_numbers_survive():
    assert (
        redact("sent 1000 messages in 2.5 s to 30 chats")
        == "sent 1000 messages in 2.5 s to 30 chats"
    )


def test_json_lines_carry_the_update_id_and_the_masked_message():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "call %s", ("13800138000",), None)
    token = current_update_id.set(42)
    try:
        RedactingFilter().filter(record)
    finally:
        current_update_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["update_id"] == 42 and line["message"] == "call <phone>"


def test_configured_secrets_are_masked_and_dates_are_not_phone_numbers():
    secret = "s3cret-Token_for-the-webhook"
    masked = redact(f"wrong secret {secret}; assignments ended before 2026-08-29", [secret])
    assert masked == "wrong secret <secret>; assignments ended before 2026-08-29"


def test_plain_lines_name_the_update_and_alert_only_when_known():
    def line(**ids):
        record = logging.LogRecord("bot.x", logging.INFO, __file__, 1, "hello", (), None)
        record.__dict__.update(ids)
        return PlainFormatter().format(record)

    assert line().endswith("INFO bot.x: hello")
    assert line(update_id=7, alert_id=3).endswith("INFO bot.x [update 7 alert 3]: hello")


async def test_records_logged_while_handling_an_update_carry_its_id_and_the_alert_id():
    """Each update's handling sees its own update id; an alert id set by a handler does not
    leak into the next update of the same chat."""
    from telegram import Chat, Message, Update

    from bot.updates import PerChatUpdateProcessor
    from services.log_context import about_alert, current_alert_id

    def update(update_id: int) -> Update:
        chat = Chat(1001, "private")
        return Update(update_id, message=Message(1, datetime.now(UTC), chat))

    # A unit test that raised an alert outside any update may have set it in this thread.
    current_alert_id.set(None)
    seen: list[tuple[int | None, int | None]] = []

    async def handle(alert_id: int | None) -> None:
        about_alert(alert_id)
        seen.append((current_update_id.get(), current_alert_id.get()))

    processor = PerChatUpdateProcessor(4)
    await processor.do_process_update(update(10), handle(5))
    await processor.do_process_update(update(11), handle(None))
    assert seen == [(10, 5), (11, None)]
    assert current_update_id.get() is None and current_alert_id.get() is None


def test_log_settings_are_validated():
    assert Settings(_env_file=None, log_level="debug").log_level == "DEBUG"
    for bad in ({"log_level": "verbose"}, {"log_format": "xml"}):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, **bad)


# ------------------------------------------------------------------ readings, by their context


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        ("SpO2 86 out of range", "86"),
        ("HR 101", "101"),
        ("heart rate 130", "130"),
        ("heart_rate=130", "130"),
        ("血氧 86", "86"),
        ("血氧饱和度为86%", "86"),
        ("心率130次/分", "130"),
        ("血压150/95mmHg", "150/95"),
        ("体温38.5℃", "38.5"),
        ("pulse: 58 bpm", "58"),
        ("BP 150/95", "150/95"),
        ("temperature is 39.2 °C", "39.2"),
        ("ＳｐＯ２ ８６", "８６"),
        ("SpO₂=83", "83"),
        ("Reading(spo2=86, hr=101)", "86"),
        ("button ci:spo2:86 pressed", "86"),
        ("88%", "88"),
        ("x120bpm", "120"),
    ],
)
def test_readings_are_masked_by_their_context(text, reading):
    masked = redact(text)
    assert reading not in masked and "<reading>" in masked, masked


@pytest.mark.parametrize(
    "text",
    [
        "delivery attempt 3 of 5 failed",
        "update 12 alert 3 outbox 7",
        "retry after 3 s; 1000 messages in 2.5 s",
        "assignments ended before 2026-08-29",
        "temp file 3 removed",
        "Thread-3 stopped",
        "HTTP/1.1 200",
    ],
)
def test_numbers_that_are_not_readings_stay(text):
    assert redact(text) == text


def test_database_errors_show_no_parameters_or_key_values():
    message = (
        "(sqlite3.IntegrityError) UNIQUE constraint failed\n"
        "[SQL: INSERT INTO health_checkin (person_id, spo2, heart_rate) VALUES (?, ?, ?)]\n"
        "[parameters: (3, 81, 117)]\n"
        'DETAIL:  Key (phone)=(+86 137) already exists. "(Background on this error)"'
    )
    masked = redact_message(message)
    assert "[parameters: <values>]" in masked and "Key (phone)=(<value>) " in masked
    assert "81" not in masked and "117" not in masked and "INSERT INTO health_checkin" in masked


@pytest.mark.parametrize("json_lines", [False, True])
@pytest.mark.parametrize(
    "text", ["SpO2 86 out of range", "HR 101", "heart rate 130", "血氧 86", "血压 150/95"]
)
def test_a_reading_in_an_exception_text_reaches_no_log_format(json_lines, text):
    def emit(log: logging.Logger) -> None:
        try:
            raise ValueError(text)
        except ValueError as error:
            log.exception("check-in failed: %s", error)

    logged = _through_configure(json_lines, emit)
    assert "ValueError" in logged and "<reading>" in logged
    assert _numbers(logged, json_lines) == [], logged


def test_uncaught_exceptions_are_logged_masked():
    """An exception nobody catches (the main thread's, another thread's) goes through the
    same redacting handler instead of Python's own print to stderr."""

    def emit(log: logging.Logger) -> None:
        try:
            raise RuntimeError("HR 130, phone 13712340000")
        except RuntimeError as error:
            sys.excepthook(type(error), error, error.__traceback__)
        worker = threading.Thread(target=lambda: int("SpO2 86"), name="worker")
        worker.start()
        worker.join()

    logged = _through_configure(True, emit)
    entries = [json.loads(line) for line in logged.splitlines()]
    assert [e["level"] for e in entries] == ["CRITICAL", "CRITICAL"]
    assert "RuntimeError" in entries[0]["exception"] and "worker" in entries[1]["message"]
    for number in ("130", "13712340000", "86"):
        assert number not in logged, logged


def test_a_format_that_does_not_fit_its_arguments_shows_neither():
    def emit(log: logging.Logger) -> None:
        log.error("reading %s", "SpO2 86", "13712340000")  # one argument too many

    logged = _through_configure(False, emit)
    assert "arguments not shown" in logged
    assert "86" not in logged.split(" ", 2)[-1] and "13712340000" not in logged


# ------------------------------------------------------------------ the property

_NAMES = st.sampled_from(
    (
        *("SpO2", "spo2", "SPO2", "SpO₂", "ＳｐＯ２", "SaO2", "HR", "hr", "heart rate"),
        *("Heart_Rate", "pulse", "BP", "blood pressure", "temperature", "Temp"),
        *("body temperature", "血氧", "血氧饱和度", "心率", "脉搏", "血压", "体温", "收缩压"),
    )
)
_GAPS = st.sampled_from(["", " ", ": ", "=", "：", " is ", " of ", "为", "是", "_value=", "('"])
_UNITS = st.sampled_from(["", "%", " %", "％", " bpm", "bpm", "℃", " °C", "°", " mmHg", "次/分"])
_VALUES = st.one_of(
    st.integers(30, 250).map(str),
    st.integers(340, 420).map(lambda t: f"{t / 10:.1f}"),
    st.tuples(st.integers(80, 200), st.integers(40, 130)).map(lambda bp: f"{bp[0]}/{bp[1]}"),
    st.integers(30, 250).map(lambda n: str(n).translate(_FULL_WIDTH)),
)
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_NAMED = st.builds(
    lambda name, gap, value, unit: f"{name}{gap}{value}{unit}", _NAMES, _GAPS, _VALUES, _UNITS
)
_WITH_UNIT = st.builds(lambda value, unit: value + unit, _VALUES, _UNITS.filter(bool))
_PHONES = st.from_regex(r"(\+86[ -]?)?1[3-9][0-9][ -]?[0-9]{4}[ -]?[0-9]{4}", fullmatch=True)
_TOKENS = st.from_regex(r"[1-9][0-9]{7,9}:[A-Za-z0-9_-]{35}", fullmatch=True)
# What stands around them: any text without digits (so that every digit in a log line is
# either masked data or the log's own), with or without a space in between.
_AROUND = st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=12)
_SEPARATORS = st.sampled_from(["", " ", "\n", ", ", "(", "：", "'"])


@st.composite
def _message(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Text around 1-4 readings, phones and tokens; returns it and the tokens' secrets."""
    parts, secrets = [draw(_AROUND)], []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["named", "unit", "phone", "token"]))
        value = draw(
            {"named": _NAMED, "unit": _WITH_UNIT, "phone": _PHONES, "token": _TOKENS}[kind]
        )
        separator = draw(_SEPARATORS)
        if kind == "named" and not separator and re.search(r"[A-Za-z]$", "".join(parts)):
            separator = " "  # "xHR 101" is not a heart rate; "x HR 101" is
        after = draw(_SEPARATORS)
        if kind == "token":
            secrets.append(value.split(":", 1)[1])
            # A token is masked up to the first character a token cannot hold, so text
            # glued to its end goes with it: "<token>.0" would be left of "...SpO2 34.0".
            after = after or " "
        parts += [separator, value, after, draw(_AROUND)]
    return "".join(parts), secrets


# Digits a log line has of its own: the time, a traceback's line numbers, "SpO2".
_OWN_DIGITS = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} |line \d+|(?<![A-Za-z])(?i:s[pa]o)[2２₂]|ＳｐＯ２"
    r'|File \\?"[^"\\]+\\?"',  # a traceback's file paths (a checkout may be in /tmp/ci2/)
    re.MULTILINE,
)


def _numbers(logged: str, json_lines: bool) -> list[str]:
    """The digits left in what was logged, besides the log's own."""
    if json_lines:
        entries = [json.loads(line) for line in logged.splitlines()]
        logged = "\n".join(
            str(entry.get(key, "")) for entry in entries for key in ("message", "exception")
        )
    return re.findall(r"\d+", _OWN_DIGITS.sub("", logged))


def _raise(text: str) -> None:
    raise ValueError(text)


@seed(13)
@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(exception=_message(), argument=_message(), json_lines=st.booleans())
def test_no_reading_phone_or_token_reaches_a_log_line(exception, argument, json_lines):
    """Readings, phones and tokens embedded anywhere in an exception's text and in a log
    call's arguments: none reaches the log, plain or JSON, message or traceback."""
    (text, text_secrets), (arg, arg_secrets) = exception, argument

    def emit(log: logging.Logger) -> None:
        try:
            try:
                _raise(text)
            except ValueError as error:
                raise RuntimeError(arg) from error
        except RuntimeError:
            log.exception("check-in of %s failed", arg)

    logged = _through_configure(json_lines, emit)
    assert "Traceback" in logged and "check-in of" in logged  # still a useful line
    assert _numbers(logged, json_lines) == [], logged
    for secret in text_secrets + arg_secrets:
        assert secret not in logged, logged
