"""The fuzz harness: random people, chats and inputs against the real Application.

tests/handlers/test_fuzz.py draws scenarios and action sequences with Hypothesis; this module runs
them through the Bot API emulator and checks the properties after every step:

- ``crash``: no unhandled exception (an ERROR log record, or a "something went wrong"
  reply, is a failure);
- ``telegram-400``: the emulator refused no request of the bot;
- ``group-personal-data``: no personal data of anyone (names, phones, emergency contacts,
  home units) in a group, supergroup or channel;
- ``group-silence``: in a non-private chat the bot answers nothing but ``/start`` and
  ``/help`` (the privacy rule of issue 13);
- ``unauthorised-change``: someone without the right changes no one else's rows (the
  tables are compared before and after their input);
- ``unanswered``: every private input gets an answer (a message, an edit or a callback
  answer) or is deliberately ignored.

One Application and one emulator serve every example of a test: each example empties the
tables and uses fresh Telegram ids, so no conversation state carries over. The cast (one
person of each role) is made through the services once; later examples copy its rows with
their own ids and personal data (`CastTemplate`), which is what setting up cost most.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import itertools
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel
from telegram.ext import CommandHandler, ConversationHandler

from bot.metrics import _handlers_of
from emulator.driver import FakeUser
from emulator.models import ChatMessage
from models import Role, Status
from scheduler import jobs
from services import contact_links, people
from services.i18n import catalog, t
from tests.conftest import empty_tables
from tests.support import factories
from tests.support.botfixtures import RunningBot

ROOT = Path(__file__).resolve().parents[2]

ROLES = ("guest", "pending", "cadre", "contact", "suspended", "officer", "admin")
# Who may change nothing but their own rows (own data: /language, /deleteme, registering).
OWN_DATA_ONLY = frozenset({"guest", "pending", "suspended", "contact"})
CHAT_KINDS = ("private", "group", "supergroup", "channel")

# Tables that change as a side effect of any input: conversation state, the audit trail
# (refusals are audited on purpose), the delivery queue and the update inbox (every update
# is stored before it is handled: bot/inbox.py).
BOOKKEEPING = frozenset({"bot_state", "audit_log", "outbox", "update_inbox", "alembic_version"})
# Columns naming the person (id or Telegram id) a row belongs to.
OWNER_COLUMNS = (
    "person_id",
    "cadre_person_id",
    "created_by",
    "actor_person_id",
    "asker_telegram_id",
    "telegram_id",
)


# ------------------------------------------------------------------ the surface, statically


def _string_prefixes(source: str) -> set[str]:
    """Leading constant parts of string literals and f-strings that look like callback
    data (``sos:ack:``, ``f:cty:``, ``bc:done``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        value = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
        elif isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                value = first.value
        if value and re.fullmatch(r"[a-z]{1,5}:[a-z0-9_:]{0,24}", value):
            found.add(value)
    return found


@functools.cache
def callback_prefixes() -> list[str]:
    """Every callback_data prefix the code produces or listens for: string literals of
    handlers/ and services/ (buttons are built in both) plus the CallbackQueryHandler
    patterns, so a new button grammar is fuzzed without editing this file."""
    found: set[str] = set()
    for folder in ("handlers", "services"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found |= _string_prefixes(path.read_text(encoding="utf-8"))
    for path in sorted((ROOT / "handlers").rglob("*.py")):
        for pattern in re.findall(r'pattern=r"\^([^"]+)"', path.read_text(encoding="utf-8")):
            plain = re.match(r"[a-z]+:(?:[a-z]+:?)?", pattern)
            if plain:
                found.add(plain.group(0))
            for alternative in re.findall(r"\(([a-z|]+)\)", pattern):
                head = pattern.split("(")[0]
                found.update(f"{head}{word}:" for word in alternative.split("|"))
    # Drop things that are not button data (URL schemes, log formats). Read once a process.
    return sorted(p for p in found if not p.startswith(("http", "https", "tg:", "mailto")))


def commands_of(application: Any) -> list[str]:
    names: set[str] = set()
    for group in application.handlers.values():
        for handler in _handlers_of(group):
            if isinstance(handler, CommandHandler):
                names.update(handler.commands)
    return sorted(names)


# ------------------------------------------------------------------ actions


@dataclass(frozen=True)
class Action:
    """One input. ``payload`` depends on ``kind``; indices pick among what the chat shows
    at run time (a button of the newest keyboard, an older message to edit ...)."""

    actor: str
    chat: str
    kind: str
    payload: Any = None

    def __str__(self) -> str:
        return f"{self.actor}@{self.chat} {self.kind} {self.payload!r}"


@dataclass
class Violation:
    prop: str
    action: Action | None
    detail: str
    scenario: str = ""

    def __str__(self) -> str:
        return f"[{self.prop}] {self.action} in {self.scenario}: {self.detail}"


@dataclass
class KnownDefect:
    """A failure that belongs to another engineer's area: recorded, not raised."""

    key: str
    area: str
    props: tuple[str, ...]
    matches: Callable[[Violation], bool]
    note: str


@dataclass
class Stats:
    examples: int = 0
    steps: int = 0
    seconds: float = 0.0
    setup_seconds: float = 0.0
    polling_errors: int = 0
    scenarios: set[str] = field(default_factory=set)
    conversation_states: set[str] = field(default_factory=set)
    handlers: set[str] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    known: dict[str, int] = field(default_factory=dict)
    known_examples: dict[str, str] = field(default_factory=dict)
    survey: dict[str, int] = field(default_factory=dict)
    survey_examples: dict[str, str] = field(default_factory=dict)


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


RAW_KEY = re.compile(r"[a-z_]+(\.[a-z0-9_]+){1,5}")
# A catalog key sent as text (t() falls back to the key itself when it is missing): a
# dotted line whose first part is a namespace of the catalogs (form., deny., sos. ...).
CATALOG_NAMESPACES = frozenset(
    key.split(".")[0] for lang in ("zh-Hans", "en") for key in catalog(lang) if "." in key
)
# A field no button of the code carries: extra words, digits that are not ASCII.
_CLEAN_FIELD = re.compile(r"[A-Za-z0-9_.\-]*")


def is_garbage(data: Any) -> bool:
    """Callback data that no button of the bot can carry: a field with characters other
    than ASCII letters, digits, ``_ . -`` (``²``, ``١``, spaces), or the word ``extra``."""
    if not isinstance(data, str):
        return False
    fields = data.split(":")
    return any(f == "extra" or not _CLEAN_FIELD.fullmatch(f) for f in fields[1:])


# An input with nothing sent and nothing queued: how long an answer may still be in flight.
# The wait ends as soon as one arrives; only a silent bot (a violation) waits it out.
SILENCE_WAIT = 2.0
# Generous: the first /trend of a process imports matplotlib, seconds on a loaded machine.
PROCESS_WAIT = 30.0
ERROR_TEXTS = tuple(t(lang, "error.generic") for lang in ("zh-Hans", "en"))
SOS_FAILED_MARK = "120"  # _sos_failed tells the person to call 120 (logged as ERROR too)


def _steps(actor: str, *typed: str) -> list[Action]:
    """Private inputs: ``@f:lang:en`` presses a button with that data, text is typed."""
    return [
        Action(actor, "private", "forged", step[1:])
        if step.startswith("@")
        else Action(actor, "private", "text", step)
        for step in typed
    ]


REGISTRATION = ("/start", "@f:lang:en", "@f:consent:yes")
CONFIRMATION = (
    *REGISTRATION,
    "Li Wei",
    "13800138000",
    "Hangzhou Health Commission",
    "@f:pref:aba",
    "@f:cty:aba.barkam",
    "@f:alt:seat",
    "@f:start:today",
    "@f:end:1",
    "Wang Fang",
    "13900139000",
)
# How each scenario's person gets into its conversation state.
OPENINGS: dict[str, list[Action]] = {
    "idle": [],
    "registration": _steps("guest", *REGISTRATION),
    "confirmation": _steps("guest", *CONFIRMATION),
    "checkin": _steps("cadre", "/checkin"),
    "sos": _steps("cadre", "/sos"),
    "oxygen": _steps("cadre", "/oxygen"),
    "broadcast": _steps("admin", "/broadcast"),
    "knowledge": _steps("cadre", "/ask", "How many days of rest do I get?"),
    "roster": _steps("admin", "/roster"),
    "people": _steps("admin", "/people"),
}


# ------------------------------------------------------------------ the harness


class Harness:
    """One running bot reused across examples."""

    def __init__(self, bot: RunningBot, engine: Engine, known: Iterable[KnownDefect] = ()):
        assert bot.app is not None
        self.bot = bot
        self.emu = bot.emulator
        self.app = bot.app
        self.engine = engine
        self.known = list(known)
        self.strict = False
        self.survey = False  # record every violation instead of failing (a first look)
        self.stats = Stats()
        self.began = time.perf_counter()
        self.prefixes = callback_prefixes()
        self.commands = commands_of(self.app)
        self.processed: set[int] = set()
        self._ids = itertools.count(1)
        self.template: CastTemplate | None = None
        self.errors = _ErrorRecords()
        logging.getLogger().addHandler(self.errors)
        self._wrap_processing()
        self._watch_handlers()
        from bot.metrics import handler_name

        self.handler_names = {
            handler_name(getattr(h.callback, "__wrapped__", h.callback))
            for group in self.app.handlers.values()
            for h in _handlers_of(group)
        }
        self.handler_count = len(self.handler_names)
        self.bot.admin()  # post_init's admin (9001) has a chat: outbox sends reach it
        self.tables = [
            name for name in inspect(engine).get_table_names() if name not in BOOKKEEPING
        ]

    def close(self) -> None:
        logging.getLogger().removeHandler(self.errors)

    # --- plumbing ----------------------------------------------------------------------

    def _wrap_processing(self) -> None:
        app = self.app
        original = app.process_update

        async def process(update: object) -> None:
            try:
                await original(update)
            finally:
                update_id = getattr(update, "update_id", None)
                if update_id is not None:
                    self.processed.add(update_id)
                    self.emu.world.signal.fire()

        app.process_update = process  # type: ignore[method-assign]

    def _watch_handlers(self) -> None:
        metrics = self.app.bot_data["metrics"]
        original = metrics.observe_update

        def observe(handler: str, outcome: str, seconds: float) -> None:
            self.stats.handlers.add(handler)
            original(handler, outcome, seconds)

        metrics.observe_update = observe

    async def until_processed(self, update_id: int) -> None:
        await self.emu.world.signal.wait_for(
            lambda: update_id in self.processed or None, PROCESS_WAIT
        )

    async def idle(self) -> None:
        """Every update handed out is processed and nothing is left in the queue."""
        for update in list(self.emu.world.update_log[-50:]):
            await self.until_processed(update["update_id"])

    async def quiet(self, work: Callable[[], None]) -> None:
        """Run ``work`` while no scheduled job runs: a job reading the tables while they
        are emptied would fail on a foreign key, an artefact of the harness."""
        scheduler = jobs.scheduler_of(self.app)
        scheduler.pause()
        try:
            for _ in range(500):
                executors = scheduler._executors.values()
                if not any(getattr(e, "_pending_futures", None) for e in executors):
                    break
                await asyncio.sleep(0.01)
            work()
        finally:
            scheduler.resume()

    def push(self, kind: str, payload: dict[str, Any]) -> int:
        update = self.emu.world.push_update(kind, payload)
        assert update is not None, kind
        return update["update_id"]

    # --- one example -------------------------------------------------------------------

    async def begin(self, scenario: str) -> Example:
        await self.idle()
        mark = time.perf_counter()
        await self.quiet(lambda: empty_keeping_outbox_ids(self.engine))
        self.errors.records.clear()
        number = next(self._ids)
        example = Example(self, scenario, base=1_000_000 + number * 100)
        await example.cast()
        self.stats.setup_seconds += time.perf_counter() - mark
        return example


class Example:
    """The people, chats and records of one example."""

    def __init__(self, harness: Harness, scenario: str, base: int):
        self.h = harness
        self.scenario = scenario
        self.base = base
        self.users: dict[str, FakeUser] = {}
        self.person_ids: dict[str, int] = {}
        self.tags: dict[int, str] = {}  # Telegram id -> the tag in that person's data
        self.cast_list: list[tuple[str, int, str, dict[str, Any]]] = []  # what _cast makes
        self.pii: list[str] = []
        self.violations: list[Violation] = []
        self.started = time.perf_counter()
        emu = harness.emu
        self.group = emu.group(-(base + 11), f"Duty group {base}", kind="group")
        self.supergroup = emu.group(-(base + 12), f"Team {base}", kind="supergroup")
        self.channel = emu.group(-(base + 13), f"News {base}", kind="channel")

    # --- the cast ------------------------------------------------------------------------

    async def cast(self) -> None:
        """One person of each role (the guest has none): made in one transaction through
        the services for the first example, copied from those rows for the others."""
        names = {
            "guest": "Gao Guest",
            "pending": "Pan Pending",
            "cadre": "Cai Cadre",
            "contact": "Kong Contact",
            "suspended": "Su Suspended",
            "officer": "Ou Officer",
            "admin": "Ai Admin",
        }
        for offset, role in enumerate(ROLES, start=1):
            user_id = self.base + offset
            tag = f"{self.base % 100000:05d}{offset}"
            values: dict[str, Any] = dict(
                language="en",
                real_name=f"{names[role]} {tag}",
                phone=f"+86138{int(tag):08d}",
                contact_name=f"Kin {tag}",
                contact_phone=f"+86139{int(tag):08d}",
                home_unit=f"Unit {tag}",
            )
            if role == "officer":
                values.update(prefecture="aba", county="aba.barkam", posting_altitude_m=2600)
            self.users[role] = self.h.bot.user(user_id, names[role].split()[0], "en")
            self.pii += [
                values["real_name"],
                values["phone"][3:],
                values["contact_name"],
                values["contact_phone"][3:],
                values["home_unit"],
            ]
            self.cast_list.append((role, user_id, names[role].split()[0], values))
            self.tags[user_id] = tag
        if self.h.template is None:
            self.person_ids = self.h.bot.db.call(_cast, self.cast_list)
            self.h.template = CastTemplate.capture(self.h.engine, self.tags, self.person_ids)
        else:
            self.person_ids = self.h.template.copy(self.h.engine, self.tags)
        await self.prepare()

    async def prepare(self) -> None:
        """Bring the scenario's person into its conversation state. The opening is not
        under test: no tables are compared, but a crash or a refused request still counts."""
        for action in OPENINGS[self.scenario]:
            await self.run(action, compare=False)
        self.h.stats.scenarios.add(self.scenario)

    # --- running an action -------------------------------------------------------------

    def _chat(self, kind: str, user: FakeUser):
        return {
            "private": user,
            "group": self.group,
            "supergroup": self.supergroup,
            "channel": self.channel,
        }[kind]

    async def run(self, action: Action, compare: bool = True) -> None:
        h = self.h
        user = self.users[action.actor]
        chat = self._chat(action.chat, user)
        guarded = compare and self._needs_snapshot(action)
        before = self.snapshot() if guarded else None
        requests_before = len(h.emu.requests)
        bot_before = {c.chat_id: _bot_state(c) for c in self._chats(user)}
        answers_before = len(h.emu.world.callback_answers)
        update_id = await self._perform(action, user, chat)
        h.stats.steps += 1
        h.stats.kinds.add(f"{action.kind}@{action.chat}")
        if update_id is None:
            return
        try:
            await h.until_processed(update_id)
        except TimeoutError:
            self.fail("crash", action, f"the update was not processed within {PROCESS_WAIT:.0f} s")
            return
        await self._settle(action, user, bot_before, answers_before)
        self._record_states()
        self._check_errors(action, requests_before, user, bot_before)
        self._check_groups(action, bot_before)
        if before is not None:
            after = self.snapshot()
            self._check_unchanged(action, before, after)
            if action.kind == "edit" or (action.kind == "forged" and is_garbage(action.payload)):
                self._check_inert(action, before, after, bot_before, user)
        self._check_catalog(action, user, bot_before)

    async def _settle(
        self,
        action: Action,
        user: FakeUser,
        bot_before: dict[int, Any],
        answers_before: int,
    ) -> None:
        """Replies may go through the outbox (the delivery worker sends them a moment
        later, seconds on a loaded machine): a private input whose reply is queued is
        waited for until the reply is sent or the queue holds nothing more for the chat."""
        if action.chat != "private" or action.kind in ("edit",):
            return
        if action.kind in ("button", "stale", "forged"):

            def answered() -> bool | None:
                return len(self.h.emu.world.callback_answers) > answers_before or None

        else:

            def answered() -> bool | None:
                return _bot_state(user) != bot_before[user.chat_id] or None

        signal = self.h.emu.world.signal
        if answered():
            return
        if self._outbox_pending(user.chat_id):
            try:
                await signal.wait_for(
                    lambda: answered() or not self._outbox_pending(user.chat_id), PROCESS_WAIT
                )
            except TimeoutError:
                self.fail("unanswered", action, f"a queued reply not sent in {PROCESS_WAIT} s")
                return
            if answered():
                return
        # Nothing sent and nothing queued for this chat: the bot stayed silent, unless an
        # answer is still on its way (a callback answer sent after the handler returned).
        try:
            await signal.wait_for(answered, SILENCE_WAIT)
        except TimeoutError:
            self.fail("unanswered", action, "no message, edit or callback answer")

    def _outbox_pending(self, chat_id: int) -> bool:
        with self.h.engine.connect() as connection:
            count = connection.execute(
                text(
                    "SELECT COUNT(*) FROM outbox WHERE chat_id = :chat "
                    "AND status IN ('pending', 'sending')"
                ),
                {"chat": chat_id},
            ).scalar_one()
        return count > 0

    async def _perform(self, action: Action, user: FakeUser, chat: Any) -> int | None:
        world = self.h.emu.world
        kind, payload = action.kind, action.payload
        target = None if action.chat == "private" else chat
        if kind == "text":
            await user.send(payload, chat=target)
        elif kind == "command":
            name, args = payload
            await user.send(f"/{name} {args}".rstrip() if args else f"/{name}", chat=target)
        elif kind in ("button", "stale"):
            message = self._keyboard_message(chat, stale=kind == "stale")
            if message is None:
                return None
            buttons = [b for b in message.buttons if "callback_data" in b]
            if not buttons:
                return None
            data = buttons[payload % len(buttons)]["callback_data"]
            return await self._press(user, message, data)
        elif kind == "forged":
            message = self._any_message(chat)
            if message is None:  # a message to hang the button on, without an update
                message = world.new_message(chat.chat, user.info, text="hello")
            return await self._press(user, message, payload)
        elif kind == "photo":
            await user.send_photo(_PNG, caption=payload or None, chat=target)
        elif kind == "document":
            name, data = payload
            await user.send_document(name, data, chat=target)
        elif kind == "location":
            await user.send_location(*payload, chat=target)
        elif kind == "contact":
            if payload is None:
                await user.share_contact(chat=target)
            else:
                await user.share_contact(payload, first_name="Someone", chat=target)
        elif kind == "edit":
            return self._edit(user, chat, payload)
        elif kind == "nosender":
            return self._no_sender(user, chat, payload)
        else:
            raise AssertionError(kind)
        return world.update_log[-1]["update_id"]

    async def _press(self, user: FakeUser, message: ChatMessage, data: str) -> int:
        await user.press_forged(data, message=message)
        return self.h.emu.world.update_log[-1]["update_id"]

    def _keyboard_message(self, chat: Any, *, stale: bool) -> ChatMessage | None:
        with_buttons = [m for m in chat.bot_messages if m.buttons and not m.deleted]
        if not with_buttons:
            return None
        if stale:
            return with_buttons[0] if len(with_buttons) > 1 else None
        return with_buttons[-1]

    def _any_message(self, chat: Any) -> ChatMessage | None:
        messages = [m for m in chat.messages if not m.deleted]
        return messages[-1] if messages else None

    def _edit(self, user: FakeUser, chat: Any, new_text: str) -> int | None:
        world = self.h.emu.world
        own = [m for m in chat.messages if not m.from_bot and m.sender.id == user.id and m.text]
        if not own:
            return None
        message = own[-1]
        message.history.append(message.snapshot())
        message.text = new_text
        message.entities = (
            [{"type": "bot_command", "offset": 0, "length": len(new_text.split()[0])}]
            if new_text.startswith("/")
            else []
        )
        message.edit_date = int(time.time())
        data = world.message_to_api(message)
        if chat.chat.type == "channel":  # a channel post and its edits have no sender
            del data["from"]
            data["sender_chat"] = chat.chat.to_api()
            return self.h.push("edited_channel_post", data)
        return self.h.push("edited_message", data)

    def _no_sender(self, user: FakeUser, chat: Any, typed: str) -> int | None:
        """A channel post, or an anonymous group admin: a message without ``from``."""
        world = self.h.emu.world
        if chat.chat.type == "private":
            chat = self.supergroup
        message = world.new_message(chat.chat, user.info, text=typed)
        if typed.startswith("/"):
            message.entities = [
                {"type": "bot_command", "offset": 0, "length": len(typed.split()[0])}
            ]
        data = world.message_to_api(message)
        del data["from"]
        data["sender_chat"] = chat.chat.to_api()
        kind = "channel_post" if chat.chat.type == "channel" else "message"
        return self.h.push(kind, data)

    def _chats(self, user: FakeUser) -> list[Any]:
        return [user, self.group, self.supergroup, self.channel]

    # --- properties ----------------------------------------------------------------------

    def fail(self, prop: str, action: Action | None, detail: str) -> None:
        self.violations.append(Violation(prop, action, detail, self.scenario))

    def _record_states(self) -> None:
        for group in self.h.app.handlers.values():
            for handler in group:
                if isinstance(handler, ConversationHandler):
                    for state in handler._conversations.values():
                        if state is not None and not isinstance(state, tuple):
                            self.h.stats.conversation_states.add(f"{handler.name}:{state}")

    def _check_errors(
        self, action: Action, requests_before: int, user: FakeUser, bot_before: dict
    ) -> None:
        h = self.h
        for record in h.errors.records:
            if record.name == "telegram.ext.Updater":
                # getUpdates timed out on a loaded machine; PTB polls again by itself.
                h.stats.polling_errors += 1
                continue
            detail = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                detail += f": {type(error).__name__}: {error}"
            self.fail("crash", action, detail[:500])
        h.errors.records.clear()
        for request in h.emu.requests[requests_before:]:
            if request.status is not None and request.status >= 400 and request.status != 429:
                description = (request.response or {}).get("description", "")
                self.fail(
                    "telegram-400",
                    action,
                    f"{request.method} {request.status}: {description}",
                )
        for chat in self._chats(user):
            for message in chat.bot_messages[bot_before[chat.chat_id][0] :]:
                if any(text in message.content for text in ERROR_TEXTS):
                    self.fail("crash", action, f"'something went wrong' in chat {chat.chat_id}")

    def _check_groups(self, action: Action, bot_before: dict[int, Any]) -> None:
        for chat in (self.group, self.supergroup, self.channel):
            count_before = bot_before.get(chat.chat_id, (0, 0))[0]
            fresh = chat.bot_messages[count_before:]
            for message in fresh:
                leaked = [p for p in self.pii if p in message.content]
                if leaked:
                    self.fail(
                        "group-personal-data",
                        action,
                        f"{chat.chat.type} got {leaked}: {message.content[:120]!r}",
                    )
            typed = action.payload if isinstance(action.payload, str) else ""
            if isinstance(action.payload, tuple) and action.kind == "command":
                typed = f"/{action.payload[0]}"
            pointer = action.kind in ("command", "text") and re.match(
                r"/(start|help)(@test_bot)?(\s|$)", typed
            )
            allowed = 1 if pointer and action.chat == chat.chat.type else 0
            if len(fresh) > allowed:
                self.fail(
                    "group-silence",
                    action,
                    f"{len(fresh)} message(s) in the {chat.chat.type}: {fresh[0].content[:100]!r}",
                )

    def _needs_snapshot(self, action: Action) -> bool:
        return (
            action.actor != "admin"
            or action.chat != "private"
            or action.kind == "edit"
            or (action.kind == "forged" and is_garbage(action.payload))
        )

    def snapshot(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """Every row of every table but the bookkeeping ones, by id. Read through the
        driver's own cursor: the rows are only compared, and this runs twice a step."""
        result: dict[str, dict[Any, dict[str, Any]]] = {}
        with self.h.engine.connect() as connection:
            cursor = connection.connection.cursor()
            try:
                for table in self.h.tables:
                    cursor.execute(f'SELECT * FROM "{table}"')
                    names = [column[0] for column in cursor.description]
                    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
                    result[table] = {row.get("id", index): row for index, row in enumerate(rows)}
            finally:
                cursor.close()
        return result

    def _owners(self, table: str, row: dict[str, Any], snap: dict) -> set[Any]:
        owners = {row[c] for c in OWNER_COLUMNS if row.get(c) is not None}
        if table == "person":
            owners.add(row["id"])
        for parent, column in (("alert", "alert_id"), ("oxygen_request", "request_id")):
            parent_row = snap.get(parent, {}).get(row.get(column))
            if parent_row is not None:
                owners |= {parent_row[c] for c in OWNER_COLUMNS if parent_row.get(c)}
        return owners

    def _check_inert(
        self, action: Action, before: dict, after: dict, bot_before: dict, user: FakeUser
    ) -> None:
        """An edit never acts (issue 13, point 3): no row changes and at most one message
        ("edits are not read"). A button whose data the grammar cannot have produced
        (extra fields, digits that are not ASCII, odd characters) changes nothing."""
        changed = sorted(
            f"{table}#{key}"
            for table in self.h.tables
            for key in set(before.get(table, {})) | set(after.get(table, {}))
            if before.get(table, {}).get(key) != after.get(table, {}).get(key)
        )
        prop = "edit-acts" if action.kind == "edit" else "forged-accepted"
        if changed:
            self.fail(prop, action, "changed " + ", ".join(changed[:8]))
        if action.kind == "edit":
            chat = self._chat(action.chat, user)
            fresh = chat.bot_messages[bot_before[chat.chat_id][0] :]
            if len(fresh) > 1 or any(m.document or m.photo for m in fresh):
                self.fail(prop, action, f"{len(fresh)} message(s) in answer to an edit")

    def _check_catalog(self, action: Action, user: FakeUser, bot_before: dict) -> None:
        """No raw catalog key (``form.ask.confirm``) reaches anyone."""
        for chat in self._chats(user):
            for message in chat.bot_messages[bot_before[chat.chat_id][0] :]:
                for line in message.content.splitlines():
                    bare = line.strip()
                    if RAW_KEY.fullmatch(bare) and bare.split(".")[0] in CATALOG_NAMESPACES:
                        self.fail("raw-key", action, f"{line.strip()!r} in chat {chat.chat_id}")

    def _check_unchanged(self, action: Action, before: dict, after: dict) -> None:
        actor = action.actor
        person_id = self.person_ids.get(actor)
        mine = {self.users[actor].id} | ({person_id} if person_id else set())
        if actor == "guest":  # a guest who registers owns the new person row
            for row in after.get("person", {}).values():
                if row["telegram_id"] == self.users[actor].id:
                    mine.add(row["id"])
        strict = action.chat != "private" or actor in OWN_DATA_ONLY or actor in ("cadre", "officer")
        if not strict:
            return
        changes = []
        for table in self.h.tables:
            old, new = before.get(table, {}), after.get(table, {})
            for key in set(old) | set(new):
                row_old, row_new = old.get(key), new.get(key)
                if row_old == row_new:
                    continue
                owners = self._owners(table, row_old or row_new, before if row_old else after)
                if action.chat == "private" and owners & mine:
                    continue
                if table == "directory_entry" and row_old is None and not row_new.get("created_by"):
                    continue  # the built-in emergency numbers, written when first needed
                if action.chat == "private" and actor in ("cadre", "officer") and not owners:
                    # A member's own rows that name nobody (their alert's events...).
                    continue
                changes.append(f"{table}#{key} {_row_change(row_old, row_new)}")
        if changes:
            self.fail("unauthorised-change", action, ", ".join(sorted(changes)[:8]))

    # --- the end of an example ----------------------------------------------------------

    def finish(self) -> list[Violation]:
        """Violations not explained by a known defect (those are counted in the stats)."""
        h = self.h
        h.stats.examples += 1
        h.stats.seconds += time.perf_counter() - self.started
        unexplained = []
        for violation in self.violations:
            defect = next(
                (d for d in h.known if violation.prop in d.props and d.matches(violation)), None
            )
            if h.survey:
                action = violation.action
                key = (
                    f"{violation.prop} | {action.actor if action else '-'} | "
                    + (f"{action.chat} {action.kind} | " if action else "")
                    + re.sub(r"\d+", "N", violation.detail)[:90]
                )
                h.stats.survey[key] = h.stats.survey.get(key, 0) + 1
                h.stats.survey_examples.setdefault(key, str(violation)[:400])
            elif defect is None or h.strict:
                unexplained.append(violation)
            else:
                h.stats.known[defect.key] = h.stats.known.get(defect.key, 0) + 1
                h.stats.known_examples.setdefault(defect.key, str(violation))
        return unexplained


def empty_keeping_outbox_ids(engine: Engine) -> None:
    """`empty_tables`, but the outbox's ids go on from where they were. The delivery
    worker keeps the ids of the messages it is sending in memory until their outcome is
    written (`bot.delivery.Delivery.known`); a new message that got the id of one still
    being sent when the tables were emptied would be passed over and never sent. The bot
    never reuses an id; only emptying the tables between examples would."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            sequence = connection.execute(
                text("SELECT pg_get_serial_sequence('outbox', 'id')")
            ).scalar_one()
            last = connection.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
        else:
            last = connection.execute(
                text("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")
            ).scalar()
    empty_tables(engine)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text("SELECT setval(:sequence, :value, :called)"),
                {"sequence": sequence, "value": last[0], "called": last[1]},
            )
        elif last is not None:
            connection.execute(
                text("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', :seq)"),
                {"seq": last},
            )


def _row_change(old: dict | None, new: dict | None) -> str:
    if old is None:
        return f"added {_short(new)}"
    if new is None:
        return f"removed {_short(old)}"
    return "changed " + _short({k: (old[k], new[k]) for k in old if old[k] != new.get(k)})


def _short(row: Any) -> str:
    return repr(row)[:160]


def _bot_state(chat: Any) -> tuple[int, int]:
    """How many bot messages a chat has, and how many edits they had."""
    messages = chat.bot_messages
    return len(messages), sum(len(m.history) for m in messages)


def _cast(session: Any, cast: list[tuple[str, int, str, dict[str, Any]]]) -> dict[str, int]:
    from models import Person

    people.ensure_admins(session, [factories.ADMIN_ID], "zh-Hans")
    approver = people.find(session, factories.ADMIN_ID)
    ids: dict[str, int] = {}
    for role, user_id, display, values in cast:
        if role == "guest":
            continue
        if role == "admin":
            people.ensure_admins(session, [user_id], "en")
            person = people.find(session, user_id)
            for key in ("real_name", "phone", "home_unit"):
                setattr(person, key, values[key])
            person.language, person.prefecture, person.county = "en", "ganzi", "ganzi.litang"
            session.add(person)
            session.flush()
            ids[role] = person.id
            continue
        person = people.submit_registration(session, user_id, display, factories.draft(**values))
        ids[role] = person.id
        if role == "pending":
            continue
        people.decide(session, approver, person.id, True)
        if role in ("officer", "contact"):
            people.set_role(
                session,
                approver,
                person.id,
                Role.DUTY_OFFICER if role == "officer" else Role.CONTACT,
            )
        if role == "suspended":
            people.set_status(session, approver, person.id, Status.SUSPENDED)
    cadre = session.get(Person, ids["cadre"])
    invitation = contact_links.create_invitation(session, cadre)
    contact = session.get(Person, ids["contact"])
    contact.invitation_id = invitation.id
    session.add(contact)
    return ids


class CastTemplate:
    """The rows the services wrote for the first example's cast, copied for every later
    example: the same people, consents, contacts, invitation and audit trail, with that
    example's Telegram ids, its personal data (every value naming a person carries the
    person's tag: "Cai Cadre 001013", "+8613800001013") and times moved on to now. Ids
    restart with the emptied tables, so the copies have the ids the services gave."""

    def __init__(
        self,
        rows: dict[str, list[dict[str, Any]]],
        tags: dict[int, str],
        person_ids: dict[str, int],
        taken_at: datetime,
    ) -> None:
        self.rows, self.tags, self.person_ids, self.taken_at = rows, tags, person_ids, taken_at

    @classmethod
    def capture(
        cls, engine: Engine, tags: dict[int, str], person_ids: dict[str, int]
    ) -> CastTemplate:
        rows: dict[str, list[dict[str, Any]]] = {}
        with engine.connect() as connection:
            for table in SQLModel.metadata.sorted_tables:
                found = connection.execute(table.select()).mappings().all()
                if found:
                    rows[table.name] = [dict(row) for row in found]
        return cls(rows, dict(tags), dict(person_ids), datetime.now(UTC))

    def copy(self, engine: Engine, tags: dict[int, str]) -> dict[str, int]:
        """Insert the cast for an example whose people have ``tags`` (Telegram id -> tag,
        in the same order as the template's); returns the person ids by role."""
        ids = dict(zip(self.tags, tags, strict=True))
        words = dict(zip(self.tags.values(), tags.values(), strict=True))
        pattern = re.compile("|".join(map(re.escape, words)))
        shift = datetime.now(UTC) - self.taken_at

        def moved(value: Any, kind: sa.types.TypeEngine) -> Any:
            if value is None:
                return None
            if isinstance(kind, sa.DateTime):
                return value + shift
            if isinstance(kind, sa.Integer) and not isinstance(value, bool):
                return ids.get(value, value)
            if isinstance(value, str) and value.isdigit() and int(value) in ids:
                return str(ids[int(value)])  # a Telegram id as a key (bot_state)
            if isinstance(kind, sa.String | sa.JSON):
                # One pass: a new tag is never read again as an old one.
                written = value if isinstance(value, str) else json.dumps(value)
                written = pattern.sub(lambda match: words[match.group()], written)
                return written if isinstance(value, str) else json.loads(written)
            return value

        with engine.begin() as connection:
            for name, rows in self.rows.items():
                table = SQLModel.metadata.tables[name]
                kinds = {column.name: _stored_type(column.type) for column in table.columns}
                fresh = [
                    {key: moved(value, kinds[key]) for key, value in row.items()} for row in rows
                ]
                connection.execute(table.insert(), fresh)
                if engine.dialect.name == "postgresql" and "id" in table.columns:
                    # Explicit ids leave the sequence behind; the bot's own inserts follow.
                    connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "
                            f'(SELECT MAX(id) FROM "{name}"))'
                        )
                    )
        return dict(self.person_ids)


def _stored_type(kind: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """The type a column is stored as (UTCDateTime is a DateTime, AutoString a String)."""
    while isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance
    return kind


# A 1x1 PNG: the smallest photo the emulator accepts.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5f5e0e0"
    "0000000049454e44ae426082"
)
