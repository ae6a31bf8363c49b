"""Log lines never carry a token or a phone number, and can be JSON with the update id."""

import json
import logging

from bot.logs import JsonFormatter, RedactingFilter, current_update_id, redact


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
