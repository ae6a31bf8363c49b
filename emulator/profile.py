"""The bot's profile: command menus per scope and language, and harmless settings."""

from __future__ import annotations

from typing import Any

from .errors import bad_request
from .keyboards import check_web_app
from .reply import Handler
from .world import World

SCOPE_TYPES = {
    "default",
    "all_private_chats",
    "all_group_chats",
    "all_chat_administrators",
    "chat",
    "chat_administrators",
    "chat_member",
}
MENU_BUTTON_TYPES = {"commands", "web_app", "default"}
# Harmless settings: accepted and stored, readable through the matching getter.
SETTINGS = {
    "setMyDescription": ("description", "description"),
    "setMyShortDescription": ("short_description", "short_description"),
    "setMyName": ("name", "name"),
    "setMyDefaultAdministratorRights": ("rights", "rights"),
}
GETTERS = {
    "getMyDescription": ("description", lambda v: {"description": v or ""}),
    "getMyShortDescription": ("short_description", lambda v: {"short_description": v or ""}),
    "getMyName": ("name", lambda v: {"name": v or ""}),
}


class ProfileMethods:
    """set/get/deleteMyCommands (stored per scope and language) and the settings above."""

    def __init__(self, world: World):
        self.world = world
        self.table: dict[str, Handler] = {
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "setChatMenuButton": self.set_chat_menu_button,
            "getChatMenuButton": self.get_chat_menu_button,
        }
        for name in SETTINGS:
            self.table[name] = self._setter(name)
        for name in GETTERS:
            self.table[name] = self._getter(name)

    def _setter(self, method: str) -> Handler:
        param, key = SETTINGS[method]

        def handler(p: dict[str, Any]) -> bool:
            self.world.settings[key] = p.get(param)
            return True

        return handler

    def _getter(self, method: str) -> Handler:
        key, shape = GETTERS[method]
        return lambda p: shape(self.world.settings.get(key))

    # --- the menu button: the default one, or one private chat's ---------------------

    def _menu_key(self, p: dict[str, Any]) -> str:
        chat_id = p.get("chat_id")
        if chat_id in (None, ""):
            return "menu_button"
        chat = self.world.resolve_chat(chat_id)
        if chat.type != "private":
            raise bad_request("chat is not private")  # menu buttons live in private chats
        return f"menu_button:{chat.id}"

    def set_chat_menu_button(self, p: dict[str, Any]) -> bool:
        key = self._menu_key(p)
        button = p.get("menu_button") or {"type": "default"}
        kind = button.get("type") if isinstance(button, dict) else None
        if kind not in MENU_BUTTON_TYPES:
            raise bad_request("can't parse menu button: unsupported type")
        if kind == "web_app":
            if not isinstance(button.get("text"), str) or not button["text"].strip():
                raise bad_request('can\'t parse menu button: Field "text" must be of type String')
            check_web_app(button.get("web_app"), "menu button Web App URL")
        if kind == "default":
            self.world.settings.pop(key, None)
        else:
            self.world.settings[key] = dict(button)
        self.world.signal.fire()
        return True

    def get_chat_menu_button(self, p: dict[str, Any]) -> dict[str, Any]:
        found = self.world.settings.get(self._menu_key(p))
        if found is None and p.get("chat_id") not in (None, ""):
            found = self.world.settings.get("menu_button")
        return found or {"type": "commands"}

    def menu_button(self, chat_id: int) -> dict[str, Any]:
        """What a private chat's menu button is now (for tests)."""
        return self.get_chat_menu_button({"chat_id": chat_id})

    # --- commands ---------------------------------------------------------------------

    def _scope_key(self, p: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
        language = p.get("language_code") or ""
        if language and not (len(language) == 2 and language.isascii() and language.islower()):
            raise bad_request("invalid language code specified")
        scope = p.get("scope") or {"type": "default"}
        kind = scope.get("type")
        if kind not in SCOPE_TYPES:
            raise bad_request("unsupported scope type specified")
        if kind in ("chat", "chat_administrators", "chat_member"):
            chat = self.world.resolve_chat(scope.get("chat_id"))
            if kind == "chat_member":
                if not scope.get("user_id"):
                    raise bad_request("invalid user_id specified")
                return (kind, chat.id, int(scope["user_id"])), language
            return (kind, chat.id), language
        return (kind,), language

    def set_my_commands(self, p: dict[str, Any]) -> bool:
        commands = p["commands"]
        if len(commands) > 100:
            raise bad_request("too many bot commands specified")
        clean: list[dict[str, str]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand: expected an Object")
            command, description = item.get("command"), item.get("description")
            if not isinstance(command, str) or not isinstance(description, str):
                raise bad_request('can\'t parse BotCommand: Field "command" must be of type String')
            command = command.removeprefix("/")
            valid = 1 <= len(command) <= 32 and all(
                c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in command
            )
            if not valid:
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": command, "description": description})
        key = self._scope_key(p)
        if clean:
            self.world.commands[key] = clean
        else:
            self.world.commands.pop(key, None)
        self.world.signal.fire()
        return True

    def get_my_commands(self, p: dict[str, Any]) -> list[dict[str, str]]:
        return list(self.world.commands.get(self._scope_key(p), []))

    def delete_my_commands(self, p: dict[str, Any]) -> bool:
        self.world.commands.pop(self._scope_key(p), None)
        self.world.signal.fire()
        return True
