"""The emulator's data model: plain dataclasses that tests can inspect directly.

* :class:`UserInfo` - a Telegram user (fake users and the bot itself).
* :class:`ChatState` - a chat with every message in it, in send order.
* :class:`ChatMessage` - one message (from a user or from the bot) with its edit history.
* :class:`StoredFile` - an uploaded file (by a fake user or by the bot), with its bytes.
* :class:`CallbackAnswer` - what the bot answered to a button press.
* :class:`RecordedRequest` - one HTTP request the bot made, with status and response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .spec import UploadedFile

T = TypeVar("T")
Entity = dict[str, Any]


class Signal:
    """Broadcast "something changed" that sync code can fire and coroutines can await."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def fire(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait_for(self, predicate: Callable[[], T], timeout: float | None) -> T:  # noqa: ASYNC109
        """Return the first truthy ``predicate()``; re-check after each :meth:`fire`.

        Raises :class:`TimeoutError` after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while True:
                result = predicate()
                if result:
                    return result
                if self._event is None:
                    self._event = asyncio.Event()
                await self._event.wait()


@dataclass
class UserInfo:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    phone_number: str | None = None

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data


@dataclass
class StoredFile:
    """A file known to the emulator, addressable by ``file_id`` and by ``file_path``."""

    file_id: str
    file_unique_id: str
    kind: str  # "document", "photo", ...
    data: bytes | None
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0
    url: str | None = None  # set when the bot sent it by HTTP URL (no bytes then)
    file_path: str = ""

    @property
    def file_size(self) -> int:
        return len(self.data) if self.data is not None else 0

    def document_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.file_name:
            data["file_name"] = self.file_name
        if self.mime_type:
            data["mime_type"] = self.mime_type
        if self.data is not None:
            data["file_size"] = self.file_size
        return data

    def photo_api(self) -> list[dict[str, Any]]:
        size: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width,
            "height": self.height,
        }
        if self.data is not None:
            size["file_size"] = self.file_size
        return [size]


@dataclass
class MessageVersion:
    """A previous state of an edited message."""

    text: str | None
    caption: str | None
    entities: list[Entity]
    reply_markup: dict[str, Any] | None
    parse_mode: str | None
    edit_date: int | None


@dataclass
class ChatMessage:
    """One message. ``text``/``caption`` are the parsed plain text (markup removed);
    ``raw_text`` is what the bot sent before entity parsing."""

    chat_id: int
    message_id: int
    from_bot: bool
    sender: UserInfo
    date: int
    method: str = "user"
    text: str | None = None
    caption: str | None = None
    entities: list[Entity] = field(default_factory=list)
    parse_mode: str | None = None
    raw_text: str | None = None
    reply_markup: dict[str, Any] | None = None
    document: StoredFile | None = None
    photo: StoredFile | None = None
    location: dict[str, Any] | None = None
    contact: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    edit_date: int | None = None
    history: list[MessageVersion] = field(default_factory=list)
    deleted: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def content(self) -> str:
        """Text or caption, whichever the message has ("" if neither)."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def edited(self) -> bool:
        return bool(self.history)

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        markup = self.reply_markup or {}
        return markup.get("inline_keyboard") or []

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Inline buttons, row by row."""
        return [button for row in self.inline_keyboard for button in row]

    @property
    def reply_keyboard(self) -> list[list[dict[str, Any]]]:
        """Reply-keyboard buttons (always as dicts with ``text``), if this message set one."""
        rows = (self.reply_markup or {}).get("keyboard") or []
        return [[b if isinstance(b, dict) else {"text": b} for b in row] for row in rows]

    def button(self, label: str) -> dict[str, Any]:
        """Find an inline button by exact text, then callback_data, then unique substring."""
        for key in ("text", "callback_data"):
            for button in self.buttons:
                if button.get(key) == label:
                    return button
        partial = [b for b in self.buttons if label in b.get("text", "")]
        if len(partial) == 1:
            return partial[0]
        labels = [(b.get("text"), b.get("callback_data")) for b in self.buttons]
        raise LookupError(f"no inline button {label!r} on message {self.message_id}: {labels}")

    def snapshot(self) -> MessageVersion:
        return MessageVersion(
            self.text,
            self.caption,
            list(self.entities),
            self.reply_markup,
            self.parse_mode,
            self.edit_date,
        )

    def __str__(self) -> str:
        who = "bot" if self.from_bot else f"user {self.sender.id}"
        kinds = ("document", "photo", "location", "contact")
        kind = next((k for k in kinds if getattr(self, k) is not None), None)
        body = self.content or (f"<{kind}>" if kind else "")
        flags = " (deleted)" if self.deleted else " (edited)" if self.edited else ""
        return f"#{self.message_id} {who}: {body!r}{flags}"


@dataclass
class ChatState:
    id: int
    type: str  # "private", "group", "supergroup", "channel"
    title: str | None = None
    username: str | None = None
    user: UserInfo | None = None  # the other party of a private chat
    started: bool = True  # private chats: has the user started the bot?
    admins: set[int] = field(default_factory=set)
    messages: dict[int, ChatMessage] = field(default_factory=dict)
    next_message_id: int = 1
    reply_keyboard: dict[str, Any] | None = None  # the user's currently shown reply keyboard
    actions: list[str] = field(default_factory=list)  # sendChatAction actions, in order

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user is not None:
            data.update(
                {
                    k: v
                    for k, v in self.user.to_api().items()
                    if k in ("first_name", "last_name", "username")
                }
            )
        else:
            data["title"] = self.title or str(self.id)
            if self.username:
                data["username"] = self.username
        return data


@dataclass
class CallbackAnswer:
    query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int


@dataclass
class CallbackQueryState:
    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str | None
    created: float
    answer: CallbackAnswer | None = None


@dataclass
class RecordedRequest:
    """One HTTP request to ``/bot<token>/<method>``.

    ``status`` is None while the request is in flight and 0 when no HTTP reply was sent
    (dropped connection, or the client went away: ``abandoned``). ``fault`` names an
    injected fault. ``performed`` tells whether the request took effect (e.g. a message was
    delivered), which differs from ``ok`` for the "reply lost" fault. ``params`` are the
    validated, type-coerced parameters (raw strings if validation failed).
    """

    seq: int
    method: str
    http_method: str
    content_type: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    time: float
    status: int | None = None
    response: dict[str, Any] | None = None
    fault: str | None = None
    performed: bool = False
    rate_limited: bool = False
    abandoned: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def description(self) -> str | None:
        return (self.response or {}).get("description")

    @property
    def result(self) -> Any:
        return (self.response or {}).get("result")

    def __str__(self) -> str:
        detail = self.description or ""
        fault = f" [fault {self.fault}]" if self.fault else ""
        return f"{self.method} -> {self.status} {detail}{fault}".rstrip()
