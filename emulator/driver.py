# ruff: noqa: ASYNC109  # ``timeout=`` arguments are this driver's documented API
"""The test driver: fake users who write to the bot and await its replies.

Each :class:`ChatView` keeps a read cursor over the bot's messages in its chat:
``next_message()`` returns the oldest bot message not yet consumed (waiting if needed) and
``wait_for(...)`` skips ahead to the first matching one, consuming everything up to it.
Nothing polls or sleeps: waiters wake up when the emulator records a change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .models import CallbackAnswer, ChatMessage, ChatState, UserInfo
from .spec import UploadedFile

if TYPE_CHECKING:
    from .server import BotApiEmulator

T = TypeVar("T")
Match = str | Callable[[ChatMessage], bool]
DEFAULT_TIMEOUT = 5.0


def _matcher(match: Match) -> Callable[[ChatMessage], bool]:
    if callable(match):
        return match

    def contains(message: ChatMessage) -> bool:
        name = message.document.file_name if message.document else None
        return match in message.content or (name is not None and match in name)

    return contains


class ChatView:
    """Inspect one chat and await the bot's messages in it."""

    def __init__(self, emu: BotApiEmulator, chat: ChatState):
        self.emu = emu
        self.chat = chat
        self._cursor = 0  # number of bot messages consumed
        self._seen_edits: dict[int, int] = {}

    @property
    def chat_id(self) -> int:
        return self.chat.id

    @property
    def messages(self) -> list[ChatMessage]:
        """Every message in the chat (users' and bot's, deleted included), in order."""
        return list(self.chat.messages.values())

    @property
    def bot_messages(self) -> list[ChatMessage]:
        return [m for m in self.chat.messages.values() if m.from_bot]

    @property
    def unread(self) -> list[ChatMessage]:
        """Bot messages not yet consumed by next_message/wait_for."""
        return self.bot_messages[self._cursor :]

    @property
    def last_message(self) -> ChatMessage | None:
        """The newest bot message that is not deleted."""
        alive = [m for m in self.bot_messages if not m.deleted]
        return alive[-1] if alive else None

    @property
    def actions(self) -> list[str]:
        """Chat actions (``typing`` ...) the bot sent here, in order."""
        return list(self.chat.actions)

    def assert_no_unread(self) -> None:
        if self.unread:
            listed = "\n  ".join(str(m) for m in self.unread)
            raise AssertionError(f"unexpected bot messages in chat {self.chat_id}:\n  {listed}")

    async def wait_until(self, condition: Callable[[], T], timeout: float = DEFAULT_TIMEOUT) -> T:
        """Wait until ``condition()`` is truthy (re-checked whenever the chat changes)."""
        try:
            return await self.emu.world.signal.wait_for(condition, timeout)
        except TimeoutError:
            raise self._timeout(f"condition {condition!r}", timeout) from None

    async def next_message(self, timeout: float = DEFAULT_TIMEOUT) -> ChatMessage:
        """The next bot message in this chat not yet consumed (waits for it if needed)."""

        def take() -> ChatMessage | None:
            unread = self.unread
            if not unread:
                return None
            self._cursor += 1
            return unread[0]

        try:
            return await self.emu.world.signal.wait_for(take, timeout)
        except TimeoutError:
            raise self._timeout("a message from the bot", timeout) from None

    async def wait_for(self, match: Match, timeout: float = DEFAULT_TIMEOUT) -> ChatMessage:
        """The first unconsumed bot message containing ``match`` (text, caption or file name)
        or satisfying the predicate; it and the messages before it are consumed."""
        check = _matcher(match)

        def find() -> ChatMessage | None:
            for index, message in enumerate(self.unread):
                if check(message):
                    self._cursor += index + 1
                    return message
            return None

        try:
            return await self.emu.world.signal.wait_for(find, timeout)
        except TimeoutError:
            raise self._timeout(f"a bot message matching {match!r}", timeout) from None

    async def wait_edit(
        self, message: ChatMessage, match: Match | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> ChatMessage:
        """Wait until ``message`` is edited (again) or, with ``match``, until it matches."""
        check = _matcher(match) if match is not None else None
        seen = self._seen_edits.get(message.message_id, 0)

        def edited() -> ChatMessage | None:
            if check is not None:
                return message if check(message) else None
            if len(message.history) > seen:
                self._seen_edits[message.message_id] = len(message.history)
                return message
            return None

        try:
            return await self.emu.world.signal.wait_for(edited, timeout)
        except TimeoutError:
            raise self._timeout(f"an edit of message {message.message_id}", timeout) from None

    def _timeout(self, what: str, timeout: float) -> AssertionError:
        unread = "\n  ".join(str(m) for m in self.unread) or "(none)"
        recent = "\n  ".join(str(m) for m in self.messages[-5:]) or "(none)"
        errors = "\n  ".join(str(r) for r in self.emu.errors[-5:]) or "(none)"
        return AssertionError(
            f"timed out after {timeout}s waiting for {what} in chat {self.chat_id}\n"
            f"unread bot messages:\n  {unread}\nlast messages:\n  {recent}\n"
            f"recent failed requests:\n  {errors}"
        )


def _command_entities(text: str) -> list[dict[str, Any]]:
    """A leading ``/command`` gets a bot_command entity, as Telegram's clients send it."""
    if not text.startswith("/"):
        return []
    command = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": len(command)}]


# Telegram's sender of the messages anonymous group admins send (with ``sender_chat``).
ANONYMOUS_ADMIN = UserInfo(1087968824, "Group", username="GroupAnonymousBot", is_bot=True)


class FakeGroup(ChatView):
    """A group, supergroup or channel; users post into it with ``user.send(text, chat=group)``."""

    async def post(self, text: str) -> ChatMessage:
        """A message sent as the chat itself: in a channel a channel post (no sender), in a
        group an anonymous admin's message (``sender_chat`` is the group)."""
        world = self.emu.world
        message = world.new_message(
            self.chat, ANONYMOUS_ADMIN, text=text, entities=_command_entities(text)
        )
        data = world.message_to_api(message)
        data["sender_chat"] = self.chat.to_api()
        if self.chat.type == "channel":
            del data["from"]
            world.push_update("channel_post", data)
        else:
            world.push_update("message", data)
        return message


class FakeUser(ChatView):
    """A Telegram user and their private chat with the bot (chat id == user id)."""

    def __init__(self, emu: BotApiEmulator, info: UserInfo, chat: ChatState):
        super().__init__(emu, chat)
        self.info = info
        self.location: tuple[float, float] = (30.572815, 104.066801)  # for location buttons
        self._last_query: str | None = None

    @property
    def id(self) -> int:
        return self.info.id

    # --- acting -----------------------------------------------------------------------

    def _post(self, chat: ChatView | None, **content: Any) -> ChatMessage:
        target = (chat or self).chat
        if target.type == "private":
            target.started = True
            if self.id in self.emu.world.blocked:  # writing to a blocked bot unblocks it
                self.emu.unblock(self.id)
        message = self.emu.world.new_message(target, self.info, **content)
        self.emu.world.push_update("message", self.emu.world.message_to_api(message))
        return message

    async def send(
        self, text: str, *, chat: ChatView | None = None, reply_to: ChatMessage | None = None
    ) -> ChatMessage:
        """Send a text message; a leading ``/command`` gets a bot_command entity."""
        return self._post(
            chat,
            text=text,
            entities=_command_entities(text),
            reply_to_message_id=reply_to.message_id if reply_to else None,
        )

    async def edit(self, message: ChatMessage, text: str) -> ChatMessage:
        """Edit the text of a message this user sent: the bot gets an ``edited_message``."""
        if message.from_bot or message.sender.id != self.id or message.text is None:
            raise ValueError(f"message {message.message_id} is not a text message of {self.id}")
        message.history.append(message.snapshot())
        message.text = text
        message.entities = _command_entities(text)
        message.edit_date = int(time.time())
        self.emu.world.push_update("edited_message", self.emu.world.message_to_api(message))
        return message

    async def share_contact(
        self,
        phone_number: str | None = None,
        *,
        user_id: int | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        chat: ChatView | None = None,
    ) -> ChatMessage:
        """Share a contact; by default the user's own (as a request_contact button does)."""
        contact: dict[str, Any] = {
            "phone_number": phone_number or self.info.phone_number,
            "first_name": first_name or self.info.first_name,
        }
        if last_name or (first_name is None and self.info.last_name):
            contact["last_name"] = last_name or self.info.last_name
        own = phone_number is None and first_name is None
        uid = user_id if user_id is not None else (self.id if own else None)
        if uid is not None:
            contact["user_id"] = uid
        return self._post(chat, contact=contact)

    async def send_location(
        self,
        latitude: float,
        longitude: float,
        live_period: int | None = None,
        *,
        chat: ChatView | None = None,
    ) -> ChatMessage:
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if live_period:
            location["live_period"] = live_period
        return self._post(chat, location=location)

    async def update_location(
        self, message: ChatMessage, latitude: float, longitude: float
    ) -> ChatMessage:
        """Move a live location: the bot gets an ``edited_message`` update."""
        if message.location is None:
            raise ValueError(f"message {message.message_id} has no location")
        message.history.append(message.snapshot())
        message.location = {**message.location, "latitude": latitude, "longitude": longitude}
        message.edit_date = int(time.time())
        self.emu.world.push_update("edited_message", self.emu.world.message_to_api(message))
        return message

    async def send_document(
        self,
        filename: str,
        data: bytes,
        *,
        mime_type: str | None = None,
        caption: str | None = None,
        chat: ChatView | None = None,
    ) -> ChatMessage:
        stored = self.emu.world.store_file(
            "document", data, file_name=filename, mime_type=mime_type
        )
        return self._post(chat, document=stored, caption=caption)

    async def send_photo(
        self, data: bytes, *, caption: str | None = None, chat: ChatView | None = None
    ) -> ChatMessage:
        from .media import image_size

        width, height = image_size(data) or (1, 1)
        stored = self.emu.world.store_file("photo", data, width=width, height=height)
        return self._post(chat, photo=stored, caption=caption)

    async def press_forged(self, data: str, *, message: ChatMessage | None = None) -> str:
        """A callback query with arbitrary ``data`` on ``message`` (default: the newest bot
        message), as a modified client could send: for testing that the bot does not trust
        callback data. Returns the callback query id."""
        if message is None:
            message = self.last_message
            if message is None:
                raise LookupError(f"no bot message in chat {self.chat_id}")
        world = self.emu.world
        query = world.new_callback_query(self.info, message, data)
        world.push_update(
            "callback_query",
            {
                "id": query.id,
                "from": self.info.to_api(),
                "message": world.message_to_api(message),
                "chat_instance": world.chat_instance(message.chat_id),
                "data": data,
            },
        )
        self._last_query = query.id
        return query.id

    async def press(self, button: str, *, message: ChatMessage | None = None) -> str:
        """Press an inline button (by text or callback_data) on ``message`` or on the newest
        bot message with an inline keyboard; returns the callback query id."""
        if message is None:
            candidates = [m for m in reversed(self.bot_messages) if m.buttons and not m.deleted]
            if not candidates:
                raise LookupError(f"no message with an inline keyboard in chat {self.chat_id}")
            message = candidates[0]
        if message.deleted:
            raise LookupError(f"message {message.message_id} was deleted")
        found = message.button(button)
        if "callback_data" not in found:
            raise ValueError(f"button {found.get('text')!r} has no callback_data: {found}")
        world = self.emu.world
        query = world.new_callback_query(self.info, message, found["callback_data"])
        world.push_update(
            "callback_query",
            {
                "id": query.id,
                "from": self.info.to_api(),
                "message": world.message_to_api(message),
                "chat_instance": world.chat_instance(message.chat_id),
                "data": found["callback_data"],
            },
        )
        self._last_query = query.id
        return query.id

    @property
    def reply_keyboard(self) -> list[list[dict[str, Any]]] | None:
        """The reply keyboard currently shown to the user (None if hidden/removed)."""
        markup = self.chat.reply_keyboard
        return None if markup is None else markup["keyboard"]

    async def press_reply_button(self, text: str) -> ChatMessage:
        """Tap a reply-keyboard button: sends its text, or the contact/location it requests."""
        markup = self.chat.reply_keyboard
        if markup is None:
            raise LookupError(f"no reply keyboard is shown in chat {self.chat_id}")
        buttons = [b for row in markup["keyboard"] for b in row]
        found = next((b for b in buttons if b["text"] == text), None)
        if found is None:
            partial = [b for b in buttons if text in b["text"]]
            if len(partial) != 1:
                raise LookupError(f"no reply button {text!r}: {[b['text'] for b in buttons]}")
            found = partial[0]
        if markup.get("one_time_keyboard"):
            self.chat.reply_keyboard = None
        if found.get("request_contact"):
            return await self.share_contact()
        if found.get("request_location"):
            return await self.send_location(*self.location)
        return await self.send(found["text"])

    # --- callback answers, commands, blocking -----------------------------------------

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        queries = self.emu.world.callback_queries
        return [
            a for a in self.emu.world.callback_answers if queries[a.query_id].user_id == self.id
        ]

    @property
    def last_callback_answer(self) -> CallbackAnswer | None:
        answers = self.callback_answers
        return answers[-1] if answers else None

    async def callback_answer(
        self, query_id: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> CallbackAnswer:
        """Wait for the bot to answer ``query_id`` (default: the last button pressed)."""
        query_id = query_id or self._last_query
        if query_id is None:
            raise LookupError("no button was pressed")
        query = self.emu.world.callback_queries[query_id]
        try:
            return await self.emu.world.signal.wait_for(lambda: query.answer, timeout)
        except TimeoutError:
            raise self._timeout(f"an answer to callback query {query_id}", timeout) from None

    def commands(self, chat: ChatView | None = None) -> list[dict[str, str]]:
        """The command menu this user sees in their private chat (or in ``chat``)."""
        chat_id = chat.chat_id if chat is not None else None
        return self.emu.commands_for(self.id, self.info.language_code, chat_id)

    @property
    def menu_button(self) -> dict[str, Any]:
        """The menu button of this user's private chat with the bot (getChatMenuButton)."""
        return self.emu.methods.profile.menu_button(self.id)

    def block(self, *, notify: bool = True) -> None:
        self.emu.block(self.id, notify=notify)

    def unblock(self, *, notify: bool = True) -> None:
        self.emu.unblock(self.id, notify=notify)

    @property
    def files(self) -> list[UploadedFile]:
        """Documents and photos the bot sent to this user, as uploaded files."""
        result = []
        for message in self.bot_messages:
            stored = message.document or message.photo
            if stored is not None and stored.data is not None:
                result.append(
                    UploadedFile(stored.file_name or "", stored.mime_type or "", stored.data)
                )
        return result
