"""python-telegram-bot persistence backed by the project's database.

Conversation states and per-user form data are written after every update (see
`flush_after_update` in bot.app), so a restart - even a kill -9 - mid-form loses nothing.
"""

from __future__ import annotations

import json
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import ConversationDict, ConversationKey

from services import state
from services.db import Database

_CONVERSATION = "conversation:"
_USER = "user_data"


def _key(key: ConversationKey) -> str:
    return json.dumps(list(key))


class DatabasePersistence(BasePersistence[dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    def __init__(self, db: Database) -> None:
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=False, user_data=True, callback_data=False
            ),
            update_interval=5,
        )
        self.db = db

    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        rows = await self.db.run(state.load_all, _USER)
        return {int(key): dict(value or {}) for key, value in rows.items()}

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_bot_data(self) -> dict[Any, Any]:
        return {}

    async def get_callback_data(self) -> None:
        return None

    async def get_conversations(self, name: str) -> ConversationDict:
        rows = await self.db.run(state.load_all, _CONVERSATION + name)
        return {tuple(json.loads(key)): value for key, value in rows.items()}

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        await self.db.run(state.put, _CONVERSATION + name, _key(key), new_state)

    async def update_user_data(self, user_id: int, data: dict[Any, Any]) -> None:
        await self.db.run(state.put, _USER, str(user_id), data or None)

    async def drop_user_data(self, user_id: int) -> None:
        await self.db.run(state.drop, _USER, str(user_id))

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        return None

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        return None

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        return None

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        return None

    async def flush(self) -> None:
        return None
