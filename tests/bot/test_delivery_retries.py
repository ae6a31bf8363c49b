"""How the delivery worker (bot/delivery.py) treats a failed send: when it tries again
(backoff by priority) and which refusals are for good."""

from __future__ import annotations

import pytest

from bot.delivery import backoff, classify_forbidden
from models import OutcomeCode, Priority

E, B = int(Priority.EMERGENCY), int(Priority.BROADCAST)


def test_backoff_grows_with_jitter_and_is_capped_by_priority():
    assert 0.25 <= backoff(1, B) <= 0.5
    assert 2 <= backoff(4, B) <= 4
    assert all(backoff(30, E) <= 5 for _ in range(50))
    assert all(150 <= backoff(30, B) <= 300 for _ in range(50))


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ("Forbidden: bot was blocked by the user", OutcomeCode.BLOCKED),
        ("Forbidden: user is deactivated", OutcomeCode.DEACTIVATED),
        ("Forbidden: bot can't initiate conversation with a user", OutcomeCode.NOT_STARTED),
        ("Forbidden: bot was kicked from the group chat", OutcomeCode.KICKED),
        ("Forbidden: something new", OutcomeCode.FORBIDDEN),
    ],
)
def test_permanent_refusals_are_classified(description, code):
    assert classify_forbidden(description) == code
