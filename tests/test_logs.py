"""Log lines never carry a token or a phone number, and can be JSON with the update id."""

import json
import logging
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bot.logs import JsonFormatter, PlainFormatter, RedactingFilter, current_update_id, redact
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


def _logged(json_lines: bool, **kwargs) -> str:
    """One record through the handler `configure` installs, in the given format."""
    import io

    from bot.logs import configure

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure("INFO", json_lines=json_lines, secrets=["s3cret-Token_for-the-webhook"])
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("bot.test").error("while handling an update", **kwargs)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    return stream.getvalue()


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
