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
