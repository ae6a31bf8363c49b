"""The emulated Telegram side: users, chats, messages, files, the update queue, commands."""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import random
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import CHAT_ID_EMPTY, CHAT_NOT_FOUND, bad_request
from .models import (
    CallbackAnswer,
    CallbackQueryState,
    ChatMessage,
    ChatState,
    Signal,
    StoredFile,
    UserInfo,
)

# Update types delivered when the bot never specified allowed_updates (Telegram's default).
NOT_DEFAULT_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

ScopeKey = tuple[Any, ...]


@dataclass
class WebhookState:
    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    delivered: int = 0


@dataclass
class World:
    """Everything the emulated Telegram server knows about one bot."""

    bot: UserInfo
    update_types: list[str]
    seed: int = 0
    users: dict[int, UserInfo] = field(default_factory=dict)
    chats: dict[int, ChatState] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    files: dict[str, StoredFile] = field(default_factory=dict)
    files_by_path: dict[str, StoredFile] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    update_log: list[dict[str, Any]] = field(default_factory=list)  # every update ever queued
    allowed_updates: frozenset[str] | None = None
    commands: dict[tuple[ScopeKey, str], list[dict[str, str]]] = field(default_factory=dict)
    callback_queries: dict[str, CallbackQueryState] = field(default_factory=dict)
    callback_answers: list[CallbackAnswer] = field(default_factory=list)
    webhook: WebhookState | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.next_update_id = self.rng.randint(100_000_000, 800_000_000)
        self.updates_signal = Signal()  # new update queued / poll state changed
        self.signal = Signal()  # anything visible to users changed
        self._file_seq = 0
        self._query_seq = 0

    # --- users and chats -------------------------------------------------------------

    def add_user(self, user: UserInfo, *, started: bool = True) -> ChatState:
        self.users[user.id] = user
        chat = self.chats.get(user.id)
        if chat is None:
            chat = self.chats[user.id] = ChatState(user.id, "private", user=user, started=started)
        return chat

    def add_group(
        self, chat_id: int, title: str, kind: str = "supergroup", username: str | None = None
    ) -> ChatState:
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = self.chats[chat_id] = ChatState(chat_id, kind, title=title, username=username)
        return chat

    def resolve_chat(self, value: Any) -> ChatState:
        """Find a chat by id or ``@username`` like the Bot API (``chat not found`` otherwise)."""
        if value is None or value == "":
            raise bad_request(CHAT_ID_EMPTY)
        if isinstance(value, str):
            name = value.lstrip("@").lower()
            for chat in self.chats.values():
                username = chat.username or (chat.user.username if chat.user else None)
                if value.startswith("@") and username and username.lower() == name:
                    return chat
            raise bad_request(CHAT_NOT_FOUND)
        chat = self.chats.get(int(value))
        if chat is None:
            raise bad_request(CHAT_NOT_FOUND)
        return chat

    # --- messages ---------------------------------------------------------------------

    def new_message(self, chat: ChatState, sender: UserInfo, **content: Any) -> ChatMessage:
        message = ChatMessage(
            chat_id=chat.id,
            message_id=chat.next_message_id,
            from_bot=sender.id == self.bot.id,
            sender=sender,
            date=int(time.time()),
            **content,
        )
        chat.next_message_id += 1
        chat.messages[message.message_id] = message
        self.signal.fire()
        return message

    def message_to_api(self, message: ChatMessage, *, nested: bool = False) -> dict[str, Any]:
        chat = self.chats[message.chat_id]
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "from": message.sender.to_api(),
            "chat": chat.to_api(),
            "date": message.date,
        }
        if message.text is not None:
            data["text"] = message.text
            if message.entities:
                data["entities"] = message.entities
        if message.document is not None:
            data["document"] = message.document.document_api()
        if message.photo is not None:
            data["photo"] = message.photo.photo_api()
        if message.caption is not None:
            data["caption"] = message.caption
            if message.entities:
                data["caption_entities"] = message.entities
        if message.location is not None:
            data["location"] = message.location
        if message.contact is not None:
            data["contact"] = message.contact
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            data["reply_markup"] = message.reply_markup
        replied = chat.messages.get(message.reply_to_message_id or 0)
        if replied is not None and not nested:
            data["reply_to_message"] = self.message_to_api(replied, nested=True)
        return data

    # --- files ------------------------------------------------------------------------

    def store_file(
        self,
        kind: str,
        data: bytes | None,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int = 0,
        height: int = 0,
        url: str | None = None,
    ) -> StoredFile:
        self._file_seq += 1
        digest = hashlib.sha1(f"{self.seed}:{kind}:{self._file_seq}".encode()).hexdigest()
        prefix = {"document": "BQAC", "photo": "AgAC"}.get(kind, "CAAC")
        if mime_type is None and file_name:
            mime_type = mimetypes.guess_type(file_name)[0]
        extension = ""
        if file_name and "." in file_name:
            extension = "." + file_name.rsplit(".", 1)[1]
        elif kind == "photo":
            extension = ".jpg"
        stored = StoredFile(
            file_id=f"{prefix}{digest[:28]}{self._file_seq}",
            file_unique_id=f"AQAD{digest[28:40]}",
            kind=kind,
            data=data,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
            url=url,
            file_path=f"{kind}s/file_{self._file_seq}{extension}",
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    # --- updates ----------------------------------------------------------------------

    def set_allowed_updates(self, allowed: list[str] | None) -> None:
        """``[]`` means "all but the opt-in types", like Telegram; None keeps the setting."""
        if allowed is None:
            return
        self.allowed_updates = frozenset(allowed) if allowed else None

    def is_allowed(self, kind: str) -> bool:
        if self.allowed_updates is None:
            return kind not in NOT_DEFAULT_UPDATES
        return kind in self.allowed_updates

    def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Queue an update; updates the bot did not subscribe to are dropped like Telegram."""
        if not self.is_allowed(kind):
            return None
        update = {"update_id": self.next_update_id, kind: payload}
        self.next_update_id += 1
        self.updates.append(update)
        self.update_log.append(update)
        self.updates_signal.fire()
        return update

    def confirm(self, offset: int) -> None:
        """Forget updates below ``offset``; a negative offset keeps the last ``-offset``."""
        if offset < 0:
            keep = -offset
            self.updates = self.updates[-keep:] if keep else []
            return
        self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def drop_pending(self) -> None:
        self.updates.clear()

    def new_callback_query(
        self, user: UserInfo, message: ChatMessage, data: str | None
    ) -> CallbackQueryState:
        self._query_seq += 1
        query_id = str(self.rng.randint(10**17, 10**18) + self._query_seq)
        query = CallbackQueryState(
            query_id,
            user.id,
            message.chat_id,
            message.message_id,
            data,
            asyncio.get_running_loop().time(),
        )
        self.callback_queries[query_id] = query
        return query

    def chat_instance(self, chat_id: int) -> str:
        return str(int(hashlib.sha1(f"{self.bot.id}:{chat_id}".encode()).hexdigest()[:15], 16))

    # --- commands ---------------------------------------------------------------------

    def commands_for(
        self,
        user_id: int,
        language_code: str | None = None,
        chat_id: int | None = None,
        *,
        is_admin: bool = False,
    ) -> list[dict[str, str]]:
        """The menu a user sees, with Telegram's scope and language precedence."""
        chat_id = user_id if chat_id is None else chat_id
        chat = self.chats.get(chat_id)
        if chat is None or chat.type == "private":
            scopes: list[ScopeKey] = [("chat", chat_id), ("all_private_chats",), ("default",)]
        else:
            admin = is_admin or user_id in chat.admins
            scopes = [("chat_member", chat_id, user_id)]
            if admin:
                scopes.append(("chat_administrators", chat_id))
            scopes.append(("chat", chat_id))
            if admin:
                scopes.append(("all_chat_administrators",))
            scopes += [("all_group_chats",), ("default",)]
        language = (language_code or "").split("-")[0].lower()
        languages = [language, ""] if language else [""]
        for scope in scopes:
            for lang in languages:
                commands = self.commands.get((scope, lang))
                if commands:
                    return [dict(c) for c in commands]
        return []
