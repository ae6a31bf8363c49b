"""A Telegram Bot API emulator for end-to-end tests of python-telegram-bot applications.

See ``server.BotApiEmulator`` (the HTTP server), ``driver.FakeUser`` (acting as a user),
``faults.Fault`` (fault injection) and, in tests/support/emulator_plugin.py, the pytest fixtures.
"""

from .driver import ChatView, FakeGroup, FakeUser
from .errors import ApiError
from .faults import Fault, FaultKind
from .media import tiny_png
from .models import CallbackAnswer, ChatMessage, RecordedRequest, StoredFile
from .server import BotApiEmulator

__all__ = [
    "ApiError",
    "BotApiEmulator",
    "CallbackAnswer",
    "ChatMessage",
    "ChatView",
    "FakeGroup",
    "FakeUser",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "StoredFile",
    "tiny_png",
]
