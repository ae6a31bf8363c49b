"""Command menus per role and language (setMyCommands with a chat scope)."""

from __future__ import annotations

from typing import Any

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    KeyboardButton,
    MenuButtonDefault,
    MenuButtonWebApp,
    ReplyKeyboardMarkup,
    WebAppInfo,
)
from telegram.error import TelegramError

from handlers.context import Context
from models import Person, Role, Status
from services import board_links
from services.alerts import raising
from services.i18n import LANGUAGES, t

GUEST_COMMANDS = ("start", "help", "language", "sos")
# In groups the bot only points to a private chat (handlers/privacy.py): nothing personal.
GROUP_COMMANDS = ("start", "help")
_OWN = ("me", "mydata", "deleteme", "language", "help", "cancel")
_HEALTH = ("checkin", "schedule", "oxygen", "ask", "history", "trend", "reminders")
_AREA = ("today", "overdue", "upcoming", "export")
_DUTY = ("alerts", "alert", "ack", "resolve", "onduty", "offduty", "roster", "sms")
ROLE_COMMANDS: dict[Role, tuple[str, ...]] = {
    Role.CADRE: ("sos", *_HEALTH, "contacts", *_OWN),
    Role.DUTY_OFFICER: ("sos", *_DUTY, *_AREA, *_HEALTH, *_OWN),
    Role.ADMIN: (
        "alerts",
        "alert",
        "ack",
        "resolve",
        "people",
        "import",
        "invite",
        "broadcast",
        "broadcasts",
        "tags",
        "roster",
        "directory",
        "dutygroup",
        "onduty",
        "offduty",
        "sms",
        *_AREA,
        "oxygen",
        "carepolicy",
        "kb",
        "questions",
        "kbstats",
        "ask",
        *_OWN,
    ),
    Role.CONTACT: ("help", "language", "mydata", "deleteme"),
}


# /help, one screen at a time: the commands a role uses most, then every command by task
# (a button per task; each page is one phone screen). Every role command is in a task.
ESSENTIALS: dict[Role, tuple[str, ...]] = {
    Role.CADRE: ("sos", "checkin", "schedule", "oxygen", "ask"),
    Role.DUTY_OFFICER: ("alerts", "onduty", "today", "checkin"),
    Role.ADMIN: ("alerts", "people", "broadcast", "today"),
    Role.CONTACT: ROLE_COMMANDS[Role.CONTACT],
}
HELP_TASKS: dict[str, tuple[str, ...]] = {
    "safety": ("sos", *_DUTY, "directory", "dutygroup"),
    "health": ("checkin", "history", "trend", "reminders", "schedule", "oxygen"),
    "area": ("today", "overdue", "upcoming", "export", "carepolicy"),
    "people": ("people", "import", "invite", "broadcast", "broadcasts", "tags"),
    "questions": ("ask", "kb", "questions", "kbstats"),
    "account": ("me", "contacts", "mydata", "deleteme", "language", "help", "cancel"),
}


def help_tasks(person: Person | None) -> dict[str, tuple[str, ...]]:
    """The person's commands by task (the tasks they have commands in)."""
    mine = set(commands_for(person))
    found = {task: tuple(c for c in names if c in mine) for task, names in HELP_TASKS.items()}
    return {task: names for task, names in found.items() if names}


def commands_for(person: Person | None) -> tuple[str, ...]:
    if person is None or person.status != Status.ACTIVE:
        return GUEST_COMMANDS
    return ROLE_COMMANDS[Role(person.role)]


def _menu(names: tuple[str, ...], language: str) -> list[BotCommand]:
    return [BotCommand(name, t(language, f"cmd.{name}")) for name in names]


async def set_default_menus(bot: Bot, default_language: str) -> None:
    """Menus for people the bot does not know yet, and for every group, in each catalog
    language. A person's own menu is scoped to their private chat (set_person_menu)."""
    for scope, names in (
        (BotCommandScopeAllPrivateChats(), GUEST_COMMANDS),
        (BotCommandScopeAllGroupChats(), GROUP_COMMANDS),
    ):
        await bot.set_my_commands(_menu(names, default_language), scope=scope)
        for language in LANGUAGES:
            code = "zh" if language == "zh-Hans" else language
            await bot.set_my_commands(_menu(names, language), scope=scope, language_code=code)


async def set_person_menu(bot: Bot, person: Person, board_url: str | None) -> bool:
    """The person's own menu in their language, whatever their Telegram app's language.
    `board_url`: CADRE_WEBAPP_URL (the board's menu button), None without a board."""
    try:
        await bot.set_my_commands(
            _menu(commands_for(person), person.language),
            scope=BotCommandScopeChat(chat_id=person.telegram_id),
        )
    except TelegramError:
        return False
    await set_board_button(bot, person, board_url)
    return True


async def set_board_button(bot: Bot, person: Person, board_url: str | None) -> None:
    """The menu button of the person's chat: the board (a Mini App) for active duty officers
    and admins, the ordinary menu for everyone else (and for someone who stopped being
    one). Nothing without a board (CADRE_WEBAPP_URL)."""
    from services import board

    address = board_links.url(board_url)
    if address is None:
        return
    button = (
        MenuButtonWebApp(t(person.language, "board.menu"), WebAppInfo(address))
        if board.may_open(person)
        else MenuButtonDefault()
    )
    try:
        await bot.set_chat_menu_button(chat_id=person.telegram_id, menu_button=button)
    except TelegramError:
        pass


async def reset_person_menu(bot: Bot, telegram_id: int, board_url: str | None) -> None:
    """Back to the guest menu (after deletion)."""
    try:
        await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id=telegram_id))
    except TelegramError:
        pass
    if board_url is not None:
        try:
            await bot.set_chat_menu_button(chat_id=telegram_id, menu_button=MenuButtonDefault())
        except TelegramError:
            pass


def main_keyboard(
    language: str, location: bool = False, checkin: bool = True
) -> ReplyKeyboardMarkup:
    """The one reply keyboard: SOS in one tap, and the check-in for an active person
    (`checkin=False`: only 🆘, what a suspended person or a guest who called for help keeps);
    with `location` (while an alert of theirs is open), «📍 Send my location» first.

    Forms for active people must not remove it (use this instead of ReplyKeyboardRemove)."""
    row = [KeyboardButton(t(language, "main.sos"))]
    if checkin:
        row.append(KeyboardButton(t(language, "main.checkin")))
    rows = [row]
    if location:
        share = KeyboardButton(t(language, "sos.btn.share_location"), request_location=True)
        rows.insert(0, [share])
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, is_persistent=True)


async def alert_open(db: Any, person: Person | None) -> bool:
    """Whether an alert of theirs is open: their keyboard then offers 📍 first."""
    if person is None or person.id is None:
        return False
    return await db.run(raising.open_alert_of, person.id) is not None


async def main_keyboard_of(
    context: Context, person: Person | None, language: str
) -> ReplyKeyboardMarkup:
    """main_keyboard for someone who may have an alert open: «📍 Send my location» stays
    first until it is closed (/help, /start or a cancelled check-in must not take it away)."""
    return main_keyboard(language, location=await alert_open(context.db, person))


def share_phone_keyboard(language: str) -> ReplyKeyboardMarkup:
    """The registration form's phone question: «📱 Share my phone number» sends the contact
    Telegram knows (once; the keyboard goes away after it)."""
    share = KeyboardButton(t(language, "form.share_phone"), request_contact=True)
    return ReplyKeyboardMarkup([[share]], resize_keyboard=True, one_time_keyboard=True)


def main_button_texts(key: str) -> set[str]:
    """The text a tap on a main-keyboard button sends, in every language (for filters)."""
    return {t(language, key) for language in LANGUAGES}
