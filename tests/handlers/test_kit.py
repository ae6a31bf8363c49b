"""One way to do each thing: the helpers every handler needs are written once (the handler
kit: handlers/common.py, handlers/callbacks.py, handlers/conversation.py), and a copy
written again somewhere else fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "handlers", "webapp", "bot", "scheduler")

# what is written once -> where it may stand
ONCE = {
    # the per_message warning filter: form_conversation builds every form
    r"per_message=False": {"handlers/conversation.py"},
    # HTML to plain text
    r"re\.sub\(r\"<\[\^>\]\+>\"": {"services/i18n.py"},
    # what to call a person: services.people.name_of
    r"real_name or \w+\.display_name": {"services/people.py"},
    # a form's expiry
    r"datetime\.fromisoformat\(\w*\[?\"?touched": {"handlers/conversation.py"},
    # edit the message under a button, else reply; drop its keyboard
    r"except BadRequest as error:\n\s+if \"not modified\"": {"handlers/common.py"},
    r"edit_message_reply_markup\(": {"handlers/common.py"},
    # the formula guard
    r"\"=\", \"\+\", \"-\", \"@\"": {"services/tables.py"},
}


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }


@pytest.mark.parametrize("pattern", sorted(ONCE))
def test_a_helper_is_written_once(pattern: str) -> None:
    sources = _sources()
    found = {name for name, text in sources.items() if re.search(pattern, text)}
    assert found, "the pattern no longer finds the one place: update it"
    assert found <= ONCE[pattern]
