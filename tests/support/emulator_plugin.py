"""pytest fixtures for the Bot API emulator.

Enable with ``pytest_plugins = ["tests.support.emulator_plugin"]`` (in a conftest or test module).

* ``emulator`` - a running :class:`BotApiEmulator` (function scope), stopped afterwards.
* ``emulator_options`` - keyword arguments for it (``{}``); override the fixture in a
  module or conftest to change e.g. ``seed`` or ``callback_query_timeout``.
* ``make_user`` - ``make_user(first_name=..., language_code=...)`` creates fake users with
  fresh ids (1001, 1002, ...); the same as ``emulator.user(...)`` without picking ids.

The fixtures know nothing about the bot under test: build the Application against
``emulator.api_url`` / ``emulator.file_url`` with ``emulator.token`` in your own fixture.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from emulator.driver import FakeUser
from emulator.server import BotApiEmulator


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return {}


@pytest_asyncio.fixture
async def emulator(emulator_options: dict[str, Any]) -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator(**emulator_options) as emu:
        yield emu


@pytest_asyncio.fixture
async def make_user(emulator: BotApiEmulator) -> Callable[..., FakeUser]:
    ids = itertools.count(1001)

    def factory(first_name: str = "User", **kwargs: Any) -> FakeUser:
        user_id = kwargs.pop("user_id", None) or next(ids)
        return emulator.user(user_id, first_name, **kwargs)

    return factory
