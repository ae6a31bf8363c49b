"""How long a message is on a phone: the lines it takes on a 360-px-wide screen, where a
line holds about 45 Latin or 32 Chinese characters (issue 16: one screen per message, at
most about 12 lines for a message a person must act on). The measure is the bot's own
(services/screens.py), which pages what is longer."""

from __future__ import annotations

from services.screens import LINE, SCREEN, WIDE, lines_on_phone, width

__all__ = ["LINE", "SCREEN", "WIDE", "lines_on_phone", "width"]
