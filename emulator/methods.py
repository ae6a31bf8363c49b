"""Implementations of the Bot API methods the emulator supports.

Every handler gets the validated, coerced parameters (see :mod:`.spec`) and returns the
``result`` of the reply (or a :class:`~.reply.Reply` to add a ``description``); errors are
raised as :class:`~.errors.ApiError`. The order of checks mirrors the Bot API server, so
the same bad request gets the same error as on Telegram. Messaging lives here; updates and
webhooks are in :mod:`.updates`, commands and settings in :mod:`.profile`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import errors as E
from .errors import ApiError, bad_request, forbidden, too_many_requests
from .formatting import FormattedText, format_text, validate_entities
from .keyboards import check_private_only, is_inline, validate_reply_markup
from .media import image_size
from .models import CallbackAnswer, ChatMessage, ChatState, StoredFile
from .profile import ProfileMethods
from .reply import Handler, Reply
from .spec import UploadedFile
from .updates import UpdateMethods

if TYPE_CHECKING:
    from .server import BotApiEmulator

__all__ = ["Methods", "Reply"]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_UPLOAD = 50 * 1024 * 1024
MAX_PHOTO = 10 * 1024 * 1024
MAX_DOWNLOAD = 20 * 1024 * 1024
MAX_CALLBACK_TEXT = 200
DELETE_WINDOW = 48 * 3600
CHAT_ACTIONS = frozenset(
    "cancel typing record_video upload_video record_audio record_voice upload_audio "
    "upload_voice upload_photo upload_document choose_sticker pick_up_location "
    "find_location record_video_note upload_video_note".split()
)


class Methods:
    """Dispatch table from canonical method name to handler."""

    def __init__(self, emu: BotApiEmulator):
        self.emu = emu
        self.world = emu.world
        self.updates = UpdateMethods(emu)
        self.profile = ProfileMethods(emu.world)
        self.table: dict[str, Handler] = {
            "getMe": self.get_me,
            "sendMessage": self.send_message,
            "sendDocument": self.send_document,
            "sendPhoto": self.send_photo,
            "sendLocation": self.send_location,
            "sendChatAction": self.send_chat_action,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "deleteMessages": self.delete_messages,
            "answerCallbackQuery": self.answer_callback_query,
            "getChat": self.get_chat,
            "getFile": self.get_file,
            "close": lambda p: True,
            "logOut": lambda p: True,
            **self.updates.table,
            **self.profile.table,
        }

    # --- helpers ----------------------------------------------------------------------

    def _text(self, text: str, p: dict[str, Any], *, entities_key: str) -> FormattedText:
        validate_entities(p.get(entities_key))
        formatted = format_text(text, p.get("parse_mode"), p.get(entities_key))
        if not formatted.text:
            raise bad_request(E.MESSAGE_MUST_BE_NON_EMPTY)
        if len(formatted.text) > MAX_TEXT:
            raise bad_request(E.MESSAGE_TOO_LONG)
        return formatted

    def _caption(self, p: dict[str, Any]) -> FormattedText | None:
        caption = p.get("caption")
        if not caption:
            return None
        validate_entities(p.get("caption_entities"))
        formatted = format_text(caption, p.get("parse_mode"), p.get("caption_entities"))
        if len(formatted.text) > MAX_CAPTION:
            raise bad_request(E.CAPTION_TOO_LONG)
        return formatted if formatted.text else None

    def _writable_chat(self, p: dict[str, Any]) -> ChatState:
        chat = self.world.resolve_chat(p.get("chat_id"))
        if chat.type == "private":
            if chat.id in self.world.blocked:
                raise forbidden(E.BOT_BLOCKED)
            if not chat.started:
                raise forbidden(E.CANT_INITIATE)
        return chat

    def _reply_to(self, chat: ChatState, p: dict[str, Any]) -> int | None:
        params = p.get("reply_parameters")
        if isinstance(params, dict):
            message_id = params.get("message_id")
            allow = bool(params.get("allow_sending_without_reply"))
        else:
            message_id = p.get("reply_to_message_id")
            allow = bool(p.get("allow_sending_without_reply"))
        if not message_id:
            return None
        target = chat.messages.get(int(message_id))
        if target is None or target.deleted:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return int(message_id)

    def _rate_limit(self, method: str, chat: ChatState) -> None:
        retry_after = self.emu.rate_limits.check(method, chat.id, chat.type)
        if retry_after is not None:
            raise too_many_requests(retry_after)

    def _deliver(self, method: str, chat: ChatState, p: dict[str, Any], **content: Any) -> Any:
        """Common tail of all send methods: flood control, store, keyboard state, reply."""
        reply_to = self._reply_to(chat, p)
        self._rate_limit(method, chat)
        markup = content.get("reply_markup") or {}
        if "keyboard" in markup:
            chat.reply_keyboard = markup
        elif markup.get("remove_keyboard"):
            chat.reply_keyboard = None
        message = self.world.new_message(
            chat,
            self.world.bot,
            method=method,
            reply_to_message_id=reply_to,
            params=dict(p),
            **content,
        )
        return self.world.message_to_api(message)

    def _file(self, kind: str, value: Any) -> StoredFile:
        """Resolve an InputFile|String parameter: upload, known file_id or HTTP URL."""
        if isinstance(value, UploadedFile):
            if not value.data:
                raise bad_request("file must be non-empty")
            if len(value.data) > MAX_UPLOAD:
                raise ApiError(413, "Request Entity Too Large")
            width = height = 0
            if kind == "photo":
                size = image_size(value.data)
                if size is None and self.emu.strict_images:
                    raise bad_request(E.IMAGE_PROCESS_FAILED)
                width, height = size or (1, 1)
                if len(value.data) > MAX_PHOTO:
                    raise bad_request(E.FILE_TOO_BIG)
                if width + height > 10000 or max(width, height) > 20 * max(min(width, height), 1):
                    raise bad_request(E.PHOTO_INVALID_DIMENSIONS)
            return self.world.store_file(
                kind,
                value.data,
                file_name=value.filename if kind != "photo" else None,
                mime_type=(value.content_type or None) if kind != "photo" else None,
                width=width,
                height=height,
            )
        value = str(value)
        known = self.world.files.get(value)
        if known is not None:
            return known
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname:
            name = parts.path.rsplit("/", 1)[-1] or None
            return self.world.store_file(kind, None, file_name=name, url=value, width=1, height=1)
        raise bad_request(E.WRONG_FILE_ID)

    def _message_to_edit(self, p: dict[str, Any]) -> tuple[ChatState, ChatMessage]:
        if p.get("chat_id") in (None, "") and not p.get("message_id"):
            if p.get("inline_message_id"):
                raise bad_request("MESSAGE_ID_INVALID")
            raise bad_request(E.MESSAGE_ID_NOT_SPECIFIED)
        chat = self.world.resolve_chat(p.get("chat_id"))
        if not p.get("message_id"):
            raise bad_request(E.MESSAGE_ID_NOT_SPECIFIED)
        message = chat.messages.get(int(p["message_id"]))
        if message is None or message.deleted:
            raise bad_request(E.MESSAGE_TO_EDIT_NOT_FOUND)
        if not message.from_bot:
            raise bad_request(E.MESSAGE_CANT_BE_EDITED)
        return chat, message

    def _edit_markup(self, p: dict[str, Any]) -> dict[str, Any] | None:
        markup = validate_reply_markup(p.get("reply_markup"))
        if not is_inline(markup):
            raise bad_request("inline keyboard expected")
        return markup

    def _apply_edit(self, message: ChatMessage, **changes: Any) -> Any:
        current = {key: getattr(message, key) for key in changes}
        if current == changes:
            raise bad_request(E.NOT_MODIFIED)
        message.history.append(message.snapshot())
        for key, value in changes.items():
            setattr(message, key, value)
        message.edit_date = int(time.time())
        self.world.signal.fire()
        return self.world.message_to_api(message)

    # --- getMe -----------------------------------------------------

    def get_me(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.world.bot.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # --- sending ----------------------------------------------------------------------

    def send_message(self, p: dict[str, Any]) -> Any:
        formatted = self._text(p["text"], p, entities_key="entities")
        markup = validate_reply_markup(p.get("reply_markup"))
        chat = self._writable_chat(p)
        check_private_only(markup, chat.type)
        return self._deliver(
            "sendMessage",
            chat,
            p,
            text=formatted.text,
            entities=formatted.entities,
            parse_mode=p.get("parse_mode"),
            raw_text=p["text"],
            reply_markup=markup,
        )

    def _send_media(self, method: str, kind: str, p: dict[str, Any]) -> Any:
        caption = self._caption(p)
        markup = validate_reply_markup(p.get("reply_markup"))
        chat = self._writable_chat(p)
        check_private_only(markup, chat.type)
        stored = self._file(kind, p[kind])
        return self._deliver(
            method,
            chat,
            p,
            caption=caption.text if caption else None,
            entities=caption.entities if caption else [],
            parse_mode=p.get("parse_mode"),
            raw_text=p.get("caption"),
            reply_markup=markup,
            **{kind: stored},
        )

    def send_document(self, p: dict[str, Any]) -> Any:
        return self._send_media("sendDocument", "document", p)

    def send_photo(self, p: dict[str, Any]) -> Any:
        return self._send_media("sendPhoto", "photo", p)

    def send_location(self, p: dict[str, Any]) -> Any:
        latitude, longitude = p["latitude"], p["longitude"]
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise bad_request("wrong location specified")
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        live_period = p.get("live_period")
        if live_period:
            if not (60 <= live_period <= 86400 or live_period == 0x7FFFFFFF):
                raise bad_request("wrong live location period specified")
            location["live_period"] = live_period
        for key in ("horizontal_accuracy", "heading", "proximity_alert_radius"):
            if p.get(key) is not None:
                location[key] = p[key]
        markup = validate_reply_markup(p.get("reply_markup"))
        chat = self._writable_chat(p)
        return self._deliver("sendLocation", chat, p, location=location, reply_markup=markup)

    def send_chat_action(self, p: dict[str, Any]) -> bool:
        action = str(p["action"]).lower()
        if action not in CHAT_ACTIONS:
            raise bad_request(E.WRONG_CHAT_ACTION)
        chat = self._writable_chat(p)
        chat.actions.append(action)
        self.world.signal.fire()
        return True

    # --- editing and deleting ---------------------------------------------------------

    def edit_message_text(self, p: dict[str, Any]) -> Any:
        formatted = self._text(p["text"], p, entities_key="entities")
        markup = self._edit_markup(p)
        _, message = self._message_to_edit(p)
        if message.text is None:
            raise bad_request(E.NO_TEXT_TO_EDIT)
        return self._apply_edit(
            message,
            text=formatted.text,
            entities=formatted.entities,
            reply_markup=markup,
            parse_mode=p.get("parse_mode"),
            raw_text=p["text"],
        )

    def edit_message_caption(self, p: dict[str, Any]) -> Any:
        markup = self._edit_markup(p)
        caption = self._caption(p)
        _, message = self._message_to_edit(p)
        if message.document is None and message.photo is None:
            raise bad_request(E.NO_CAPTION_TO_EDIT)
        return self._apply_edit(
            message,
            caption=caption.text if caption else None,
            entities=caption.entities if caption else [],
            reply_markup=markup,
            parse_mode=p.get("parse_mode"),
            raw_text=p.get("caption"),
        )

    def edit_message_reply_markup(self, p: dict[str, Any]) -> Any:
        markup = self._edit_markup(p)
        _, message = self._message_to_edit(p)
        return self._apply_edit(message, reply_markup=markup)

    def _delete(self, chat: ChatState, message_id: int) -> None:
        message = chat.messages.get(message_id)
        if message is None or message.deleted:
            raise bad_request(E.MESSAGE_TO_DELETE_NOT_FOUND)
        if time.time() - message.date > DELETE_WINDOW:
            raise bad_request(E.MESSAGE_CANT_BE_DELETED)
        message.deleted = True
        self.world.signal.fire()

    def delete_message(self, p: dict[str, Any]) -> bool:
        chat = self.world.resolve_chat(p.get("chat_id"))
        self._delete(chat, int(p["message_id"]))
        return True

    def delete_messages(self, p: dict[str, Any]) -> bool:
        chat = self.world.resolve_chat(p.get("chat_id"))
        ids = p.get("message_ids") or []
        if not 1 <= len(ids) <= 100:
            raise bad_request("too many messages to delete" if ids else "message_ids is empty")
        for message_id in ids:
            try:
                self._delete(chat, int(message_id))
            except ApiError:
                continue  # Telegram skips messages that can't be found
        return True

    # --- callback queries -------------------------------------------------------------

    def answer_callback_query(self, p: dict[str, Any]) -> bool:
        query = self.world.callback_queries.get(str(p["callback_query_id"]))
        if query is None or query.answer is not None:
            raise bad_request(E.QUERY_INVALID)
        timeout = self.emu.callback_query_timeout
        if timeout is not None and asyncio.get_running_loop().time() - query.created > timeout:
            raise bad_request(E.QUERY_INVALID)
        text = p.get("text")
        if text and len(text) > MAX_CALLBACK_TEXT:
            raise bad_request("MESSAGE_TOO_LONG")
        answer = CallbackAnswer(
            query.id,
            text,
            bool(p.get("show_alert")),
            p.get("url"),
            int(p.get("cache_time") or 0),
        )
        query.answer = answer
        self.world.callback_answers.append(answer)
        self.world.signal.fire()
        return True

    # --- chats and files --------------------------------------------------------------

    def get_chat(self, p: dict[str, Any]) -> dict[str, Any]:
        chat = self.world.resolve_chat(p.get("chat_id"))
        return {
            **chat.to_api(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def get_file(self, p: dict[str, Any]) -> dict[str, Any]:
        stored = self.world.files.get(str(p["file_id"]))
        if stored is None:
            raise bad_request(E.GET_FILE_WRONG_ID)
        if stored.file_size > MAX_DOWNLOAD:
            raise bad_request(E.FILE_TOO_BIG)
        result: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
        }
        if stored.data is not None:
            result["file_path"] = stored.file_path
        return result
