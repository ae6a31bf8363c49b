"""The offline demo's inside (`cadre-bot demo`, entry point in bot/demo.py): the emulator and
the real Application in one event loop, and the terminal chat (the demo's people and their
history: bot/demo_data.py).

Everything runs in one process and one event loop: the emulator (package `emulator`, an
aiohttp server on a free loopback port), the Application assembled exactly as `cadre-bot
run` assembles it (bot.app: handlers, persistence, the delivery worker, the scheduler and
its jobs, care jobs included), and the console below. The bot polls the emulator over
HTTP like it polls Telegram; the console acts as three Telegram users through the
emulator's driver (`emulator.driver.FakeUser`).

What the console prints comes from the emulator's record of the bot's requests
(`BotApiEmulator.requests`), in the order the bot made them: every message to any of the
three people, edits, deletions and pop-ups. After each line it waits until the bot is
quiet (no update waiting or being handled, no outbox message due, nothing sent for
`QUIET` seconds, at most `SETTLE_TIMEOUT`), so a script on stdin gives the same
conversation as a person typing. The demo's own lines come from the `demo.*` catalog keys
(services/locales/*/demo.po); the bot's log goes to a file, never into the chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlmodel import Session, col, select
from telegram.ext import Application

from bot.demo_data import (
    ADMIN,
    PENDING,
    PERSONAS,
    NotADemoDatabase,
    PersonaSpec,
    persona_languages,
    seed,
)
from config import Settings
from emulator.driver import FakeUser
from emulator.formatting import format_text
from emulator.models import ChatMessage, RecordedRequest
from emulator.server import BotApiEmulator
from models import OutboxMessage, Person
from models.outbox import OutboxStatus
from services import clock
from services.db import Database
from services.i18n import LANGUAGES, t

log = logging.getLogger(__name__)

DEMO_TOKEN = "700000001:DEMO-offline-token"  # the emulator's; never a real bot's
SOS_ACK_TIMEOUT = 30  # seconds: an unacknowledged SOS escalates within a minute
SOS_REPEAT_INTERVAL = 60
OXYGEN_ESCALATION_MINUTES = 2
QUIET = 0.5  # seconds without anything happening before the next line is read
STARTUP_QUIET = 2.0  # the first care pass and reminders run as the bot starts
SETTLE_TIMEOUT = 30.0
MAX_WAIT = 600
EXIT_NOT_DEMO = 2  # like the command line's other refusals
DEFAULT_FILES = "var/demo-files"  # where pictures and files the bot sends are saved
POLL = 0.05


# ---------------------------------------------------------------------------- the console


def plain(text: str) -> str:
    """A catalog text (Telegram HTML) as the terminal shows it."""
    return format_text(text, "HTML").text


@dataclass
class ButtonSet:
    """The buttons a person was shown last; `#N` presses one of them."""

    buttons: list[dict[str, Any]]
    message: ChatMessage | None = None  # None: the reply keyboard
    messages: list[ChatMessage] | None = None  # /buttons: each button's own message

    def message_of(self, index: int) -> ChatMessage | None:
        return self.messages[index] if self.messages is not None else self.message


@dataclass
class Persona:
    spec: PersonaSpec
    language: str
    user: FakeUser
    buttons: ButtonSet | None = None
    keyboard: list[list[dict[str, Any]]] | None = None  # the reply keyboard printed last

    @property
    def name(self) -> str:
        return self.spec.names[self.language]

    @property
    def key(self) -> str:
        return self.spec.key


def _flat(rows: list[list[Any]]) -> list[dict[str, Any]]:
    return [b if isinstance(b, dict) else {"text": str(b)} for row in rows for b in row]


class LineReader:
    """Lines from stdin, read in a daemon thread (a blocked read never holds up the exit),
    one at a time when the console asks: a script is read no faster than a person types."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interactive: bool) -> None:
        self.loop, self.interactive = loop, interactive
        self._requests: queue.Queue[tuple[str, asyncio.Future[str | None]]] = queue.Queue()
        threading.Thread(target=self._run, name="demo-stdin", daemon=True).start()

    async def read(self, prompt: str) -> str | None:
        future: asyncio.Future[str | None] = self.loop.create_future()
        self._requests.put((prompt, future))
        return await future

    def _run(self) -> None:
        while True:
            prompt, future = self._requests.get()
            line: str | None
            try:
                if self.interactive:
                    line = input(prompt)
                else:
                    raw = sys.stdin.readline()
                    line = raw.rstrip("\r\n") if raw else None
            except (EOFError, OSError, ValueError):
                line = None
            except KeyboardInterrupt:  # pragma: no cover - a terminal's Ctrl-C
                line = None
            self.loop.call_soon_threadsafe(_resolve, future, line)


def _resolve(future: asyncio.Future[str | None], value: str | None) -> None:
    if not future.done():
        future.set_result(value)


class Console:
    """The terminal chat: prints what the bot sends, turns typed lines into messages and
    button presses of the current person."""

    def __init__(
        self,
        emu: BotApiEmulator,
        application: Application,
        db: Database,
        personas: list[Persona],
        *,
        interactive: bool,
        chrome_language: str | None,
        out: Callable[[str], None],
        files_dir: Path = Path(DEFAULT_FILES),
        open_files: bool = False,
    ) -> None:
        self.emu, self.application, self.db = emu, application, db
        self.personas = personas
        self.by_chat = {p.user.id: p for p in personas}
        self.current = personas[0]
        self.interactive = interactive
        self.chrome_language = chrome_language
        self._write = out
        self.files_dir, self.open_files = files_dir, open_files
        self._saved = 0  # files saved so far: their names start with the count
        self._cursor = 0  # requests of the bot already looked at
        self._versions: dict[tuple[int, int], int] = {}  # message -> edits printed
        self._last_activity = 0.0
        self._prompt: str | None = None  # shown while a terminal read waits
        self._prompt_left = False  # output went past the prompt: show it again afterwards
        self._stop = asyncio.Event()  # Ctrl-C or SIGTERM: cuts waits short

    # --- text -------------------------------------------------------------------------

    def lang(self, persona: Persona | None = None) -> str:
        return self.chrome_language or (persona or self.current).language

    def say(self, key: str, **values: Any) -> str:
        return plain(t(self.lang(), key, **values))

    def label(self, persona: Persona) -> str:
        you = f" · {plain(t(self.lang(persona), 'demo.you'))}" if persona is self.current else ""
        return f"[{persona.key} {persona.name}{you}]"

    def out(self, text: str) -> None:
        if self._prompt is not None and not self._prompt_left:
            self._write("")  # a message arrived while the person was typing
            self._prompt_left = True
        self._write(text)

    def note(self, key: str, **values: Any) -> None:
        self.out(self.say(key, **values))

    def prompt(self) -> str:
        return f"{self.label(self.current)} › "

    # --- what the bot does ------------------------------------------------------------

    async def watch(self) -> None:
        """Print the bot's sends as they happen (escalations arrive while nobody types)."""
        while True:
            if self.scan() and self._prompt is not None:
                sys.stdout.write(self._prompt)
                sys.stdout.flush()
                self._prompt_left = False
            await asyncio.sleep(POLL)

    def scan(self) -> bool:
        """Print the requests the bot finished since the last scan, in order; a send still
        in flight holds back the ones after it. Returns whether anything was printed."""
        printed = False
        requests = self.emu.requests
        while self._cursor < len(requests):
            record = requests[self._cursor]
            method = record.method.lower()
            if method == "getupdates":
                self._cursor += 1
                continue
            if record.status is None:
                self._last_activity = self.now()
                break
            self._cursor += 1
            self._last_activity = self.now()
            if record.status == 200:
                printed = self._show(method, record) or printed
        return printed

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def _show(self, method: str, record: RecordedRequest) -> bool:
        if method.startswith("send") and method != "sendchataction":
            return self._show_message(record.result, edited=False)
        if method.startswith("edit"):
            return self._show_message(record.result, edited=True)
        if method in ("deletemessage", "deletemessages"):
            ids = record.params.get("message_ids") or [record.params.get("message_id")]
            return any(self._show_deleted(record.params.get("chat_id"), i) for i in ids)
        if method == "answercallbackquery":
            query = self.emu.world.callback_queries.get(str(record.params.get("callback_query_id")))
            text = record.params.get("text")
            persona = self.by_chat.get(query.user_id) if query else None
            if persona is None or not text:
                return False
            self.out(f"{self.label(persona)} {self.say_for(persona, 'demo.popup', text=text)}")
            return True
        return False

    def say_for(self, persona: Persona, key: str, **values: Any) -> str:
        return plain(t(self.lang(persona), key, **values))

    def _message(self, chat_id: Any, message_id: Any) -> tuple[Persona, ChatMessage] | None:
        try:
            persona = self.by_chat.get(int(chat_id))
        except (TypeError, ValueError):
            return None
        if persona is None or message_id is None:
            return None
        message = persona.user.chat.messages.get(int(message_id))
        return (persona, message) if message is not None else None

    def _show_message(self, result: Any, *, edited: bool) -> bool:
        if not isinstance(result, dict) or "message_id" not in result:
            return False
        found = self._message(result.get("chat", {}).get("id"), result["message_id"])
        if found is None:
            return False
        persona, message = found
        key = (message.chat_id, message.message_id)
        if edited and self._versions.get(key, -1) >= len(message.history):
            return False  # a later edit was printed already
        first = key not in self._versions
        self._versions[key] = len(message.history)
        lines = self._body(persona, message)
        if not first:
            before = message.history[-1] if message.history else None
            same = before is not None and (before.text, before.caption) == (
                message.text,
                message.caption,
            )
            if same:  # only the buttons changed: the text once more would be noise
                excerpt = lines[0] if len(lines[0]) <= 60 else lines[0][:60] + "…"
                lines = [f"{self.say_for(persona, 'demo.buttons_edited')} {excerpt}"]
            else:
                lines[0] = f"{self.say_for(persona, 'demo.edited')} {lines[0]}".rstrip()
        if first and (message.photo or message.document):
            lines += self._save_file(persona, message)
        lines += self._buttons(persona, message)
        head, *rest = lines
        self.out(f"{self.label(persona)} {head}")
        for line in rest:
            self.out(f"    {line}")
        return True

    def _body(self, persona: Persona, message: ChatMessage) -> list[str]:
        say = functools.partial(self.say_for, persona)
        if message.photo is not None:
            text = say("demo.photo", caption=message.caption or "")
        elif message.document is not None:
            text = say(
                "demo.document",
                name=message.document.file_name or "-",
                caption=message.caption or "",
            )
        elif message.location is not None:
            text = say(
                "demo.location",
                latitude=f"{message.location['latitude']:.5f}",
                longitude=f"{message.location['longitude']:.5f}",
            )
        elif message.contact is not None:
            text = say(
                "demo.contact",
                name=message.contact.get("first_name", ""),
                phone=message.contact.get("phone_number", ""),
            )
        else:
            text = message.content
        lines = text.strip().splitlines() or [""]
        return lines

    def _save_file(self, persona: Persona, message: ChatMessage) -> list[str]:
        """Save a picture or file the bot sent under files_dir; the line that says where
        (and, with --open, open it with xdg-open)."""
        stored = message.photo or message.document
        if stored is None or stored.data is None:
            return []
        self._saved += 1
        name = Path(stored.file_name or "").name or f"photo{_extension(stored.data)}"
        path = self.files_dir / f"{self._saved:03d}-{persona.key}-{name}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(stored.data)
        except OSError as error:
            log.warning("the demo could not save %s: %s", path, error)
            return [self.say_for(persona, "demo.open_failed", error=str(error))]
        lines = [self.say_for(persona, "demo.saved", path=str(path))]
        if self.open_files:
            try:
                subprocess.Popen(  # a fixed program and a path the demo wrote
                    ["xdg-open", str(path)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as error:
                lines.append(self.say_for(persona, "demo.open_failed", error=str(error)))
        return lines

    def _buttons(self, persona: Persona, message: ChatMessage) -> list[str]:
        markup = message.reply_markup or {}
        if "inline_keyboard" in markup:
            rows = message.inline_keyboard
            persona.buttons = ButtonSet(_flat(rows), message) if message.buttons else None
            return self._numbered(rows)
        if persona.buttons is not None and persona.buttons.message is message:
            persona.buttons = None  # its buttons were edited away
        if "keyboard" in markup:
            rows = message.reply_keyboard
            if rows == persona.keyboard:
                return []  # the same keyboard again: not worth a line
            persona.keyboard = rows
            persona.buttons = ButtonSet(_flat(rows))
            return self._numbered(rows, keyboard=self.say_for(persona, "demo.keyboard"))
        if markup.get("remove_keyboard"):
            persona.keyboard = None
            if persona.buttons is not None and persona.buttons.message is None:
                persona.buttons = None
        return []

    @staticmethod
    def _numbered(
        rows: list[list[dict[str, Any]]], keyboard: str | None = None, start: int = 0
    ) -> list[str]:
        lines, number = [], start
        for row in rows:
            cells = []
            for button in row:
                number += 1
                text = button.get("text", "") if isinstance(button, dict) else str(button)
                cells.append(f"[{number}] {text}")
            lines.append("  ".join(cells))
        if keyboard and lines:
            lines[0] = f"{keyboard} {lines[0]}"
        return lines

    def _show_deleted(self, chat_id: Any, message_id: Any) -> bool:
        found = self._message(chat_id, message_id)
        if found is None:
            return False
        persona, message = found
        if persona.buttons is not None and persona.buttons.message is message:
            persona.buttons = None
        first = (message.content or "").strip().splitlines()
        excerpt = first[0][:60] if first else "-"
        self.out(f"{self.label(persona)} {self.say_for(persona, 'demo.deleted', text=excerpt)}")
        return True

    # --- waiting for the bot ----------------------------------------------------------

    def _busy(self) -> bool:
        app = self.application
        return bool(
            self.emu.world.updates
            or app.update_queue.qsize()
            or app.update_processor.current_concurrent_updates
        )

    async def settle(self, quiet: float = QUIET, limit: float = SETTLE_TIMEOUT) -> None:
        """Wait until the bot is quiet: nothing waiting or being handled, no outbox message
        due, and nothing sent for `quiet` seconds (at most `limit` seconds)."""
        start = self.now()
        quiet_since = start
        while True:
            self.scan()
            now = self.now()
            if self._busy() or await self.db.run(_outbox_due):
                quiet_since = now
            quiet_since = max(quiet_since, self._last_activity)
            if now - quiet_since >= quiet or self._stop.is_set():
                return
            if now - start >= limit:
                self.note("demo.busy", seconds=int(limit))
                return
            await asyncio.sleep(POLL)

    # --- what the person does ---------------------------------------------------------

    async def run(self, reader: LineReader, stop: asyncio.Event) -> None:
        self._stop = stop
        watcher = asyncio.create_task(self.watch())
        try:
            await self.settle(STARTUP_QUIET)
            await self.send_text("/help", echo=True)
            await self.settle()
            while not stop.is_set():
                prompt = self.prompt()
                self._prompt = prompt if self.interactive else None
                read = asyncio.ensure_future(reader.read(prompt))
                stopped = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({read, stopped}, return_when=asyncio.FIRST_COMPLETED)
                self._prompt = None
                line = read.result() if read in done else None
                if read not in done:
                    read.cancel()
                stopped.cancel()
                if line is None:  # Ctrl-C, the end of the script, or Ctrl-D
                    if self.interactive:
                        self.out("")  # off the prompt's line
                    break
                if not self.interactive:
                    self.out(f"{prompt}{line}")
                try:
                    if not await self.handle(line):
                        break
                except Exception:  # the demo goes on; the details are in the log
                    log.exception("the demo could not act on a typed line")
                    self.note("demo.failed")
                await self.settle()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self.scan()

    async def handle(self, line: str) -> bool:
        """One typed line; False ends the demo."""
        text = line.strip()
        if not text:
            return True
        word, _, rest = text.partition(" ")
        command = word.lower()
        rest = rest.strip()
        if command in ("/quit", "/exit"):
            return False
        if command == "/as":
            self.switch(rest)
        elif command == "/demo":
            self.show_help()
        elif command == "/wait":
            await self.wait(rest)
        elif command == "/keys":
            self.show_keyboard()
        elif command == "/buttons":
            self.show_buttons()
        elif command == "/location":
            await self.current.user.send_location(*self.current.spec.location)
        elif command == "/say":
            if rest:
                await self.send_text(rest)
            else:
                self.note("demo.say_usage")
        elif text.startswith("#") and text[1:].isascii() and text[1:].isdigit():
            await self.press(int(text[1:]))
        else:
            await self.send_text(text)
        return True

    def switch(self, name: str) -> None:
        if not name:
            self.note("demo.as_usage")
            return
        persona = next((p for p in self.personas if p.key == name.lower()), None)
        if persona is None:
            self.note("demo.unknown_persona", name=name)
            return
        self.current = persona
        self.note("demo.switched", persona=self.label(persona))
        if persona.buttons is not None:
            keyboard = self.say("demo.keyboard") if persona.buttons.message is None else None
            for line in self._numbered([persona.buttons.buttons], keyboard=keyboard):
                self.out(f"    {line}")

    def show_help(self) -> None:
        self.out(self.say("demo.help", timeout=SOS_ACK_TIMEOUT, persona=self.label(self.current)))

    async def wait(self, argument: str) -> None:
        try:
            seconds = float(argument)
        except ValueError:
            seconds = -1
        if not 0 < seconds <= MAX_WAIT:
            self.note("demo.wait_usage", max=MAX_WAIT, timeout=SOS_ACK_TIMEOUT)
            return
        self.note("demo.waiting", seconds=f"{seconds:g}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def show_keyboard(self) -> None:
        persona = self.current
        markup = persona.user.chat.reply_keyboard
        if not markup:
            self.note("demo.no_keyboard")
            return
        rows = [
            [b if isinstance(b, dict) else {"text": b} for b in row] for row in markup["keyboard"]
        ]
        persona.keyboard = rows
        persona.buttons = ButtonSet(_flat(rows))
        lines = self._numbered(rows, keyboard=self.say("demo.keyboard"))
        for line in lines:
            self.out(f"    {line}")

    def show_buttons(self) -> None:
        """Every inline button still on screen, on any of the bot's messages to the current
        person, numbered anew under an excerpt of its message; `#N` presses any of them."""
        persona = self.current
        shown = [m for m in persona.user.bot_messages if m.buttons and not m.deleted]
        if not shown:
            self.note("demo.buttons_none")
            return
        flat: list[dict[str, Any]] = []
        owners: list[ChatMessage] = []
        for message in shown:
            first = (self._body(persona, message) or [""])[0]
            self.out(f"  {first if len(first) <= 60 else first[:60] + '…'}")
            rows = message.inline_keyboard
            for line in self._numbered(rows, start=len(flat)):
                self.out(f"    {line}")
            for button in _flat(rows):
                flat.append(button)
                owners.append(message)
        persona.buttons = ButtonSet(flat, messages=owners)

    async def send_text(self, text: str, *, echo: bool = False) -> None:
        """Send a message; a text that is a reply-keyboard button's is a tap on it (so the
        location and contact buttons work when typed, too)."""
        if echo:
            self.out(f"{self.prompt()}{text}")
        markup = self.current.user.chat.reply_keyboard
        if markup:
            for button in _flat(markup["keyboard"]):
                if button.get("text") == text:
                    await self._tap_reply_button(button)
                    return
        await self.current.user.send(text)

    async def press(self, number: int) -> None:
        persona = self.current
        shown = persona.buttons
        if shown is None or not shown.buttons:
            self.note("demo.no_buttons", number=number)
            return
        if not 1 <= number <= len(shown.buttons):
            self.note("demo.no_such_button", number=number, count=len(shown.buttons))
            return
        button = shown.buttons[number - 1]
        label = button.get("text", "")
        message = shown.message_of(number - 1)
        if message is None:
            self.note("demo.pressed", label=label)
            await self._tap_reply_button(button)
            return
        if message.deleted or button not in message.buttons:
            self.note("demo.button_gone")
            return
        if "url" in button:
            self.note("demo.link", url=button["url"])
        elif "copy_text" in button:
            self.note("demo.copied", text=button["copy_text"].get("text", ""))
        elif "callback_data" in button:
            self.note("demo.pressed", label=label)
            await persona.user.press(button["callback_data"], message=message)
        else:
            self.note("demo.unsupported_button")

    async def _tap_reply_button(self, button: dict[str, Any]) -> None:
        user = self.current.user
        markup = user.chat.reply_keyboard or {}
        if markup.get("one_time_keyboard"):
            user.chat.reply_keyboard = None
        if button.get("request_contact"):
            await user.share_contact()
        elif button.get("request_location"):
            await user.send_location(*self.current.spec.location)
        else:
            await user.send(button.get("text", ""))


def _extension(data: bytes) -> str:
    """A picture's file extension from its first bytes (Telegram photos have no name)."""
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    return ".bin"


def _outbox_due(session: Session) -> bool:
    query = select(OutboxMessage.id).where(
        col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
        col(OutboxMessage.next_attempt_at) <= clock.now(),
    )
    return session.exec(query.limit(1)).first() is not None


# ---------------------------------------------------------------------------- the run


def _print(text: str) -> None:
    print(text, flush=True)


async def run_demo(
    settings: Settings,
    database_url: str,
    language: str | None,
    log_path: Path,
    files_dir: Path = Path(DEFAULT_FILES),
    open_files: bool = False,
) -> int:
    """Start the emulator and the bot, seed the demo data, chat until /quit or the end of
    stdin; always 0 (bad input gets a line, never an exit)."""
    from telegram import Update

    from bot.app import build_application, build_database

    languages = persona_languages(language)
    intro_languages = [language] if language else list(LANGUAGES)
    _print(plain(t(intro_languages[0], "demo.starting", log=str(log_path))))
    async with BotApiEmulator(
        token=DEMO_TOKEN, bot_username="cadre_demo_bot", bot_name="cadre-bot demo"
    ) as emu:
        demo_settings = settings.model_copy(
            update={
                "telegram_token": SecretStr(DEMO_TOKEN),
                "telegram_base_url": emu.base_url,
                "telegram_base_file_url": None,
                "database_url": database_url,
                "admin_ids": [ADMIN.telegram_id],
                "sos_ack_timeout": SOS_ACK_TIMEOUT,
                "sos_repeat_interval": SOS_REPEAT_INTERVAL,
                "oxygen_escalation_minutes": OXYGEN_ESCALATION_MINUTES,
                "care_jobs": True,
                "delivery_worker": True,
                **({"http_listen": ""} if "http_listen" in Settings.model_fields else {}),
            }
        )
        db = await asyncio.to_thread(build_database, demo_settings)
        try:
            await db.run(seed, languages, demo_settings)
        except NotADemoDatabase:
            where = database_url.rpartition("@")[2]
            print(
                f"cadre-bot: {where} has people who are not the demo's; "
                "the demo keeps its data only in a new database or one it made",
                file=sys.stderr,
            )
            return EXIT_NOT_DEMO
        found = await db.run(_languages_of)
        personas = []
        for spec in PERSONAS:
            lang = found.get(spec.telegram_id, languages[spec.key])
            user = emu.user(
                spec.telegram_id,
                spec.names[lang],
                language_code="zh-hans" if lang == "zh-Hans" else "en",
                phone_number=f"+86138{spec.telegram_id:08d}",
            )
            user.location = spec.location
            personas.append(Persona(spec, lang, user))
        # the person waiting for approval has started the bot too (told when approved)
        emu.user(PENDING.telegram_id, PENDING.names[languages["cadre"]], language_code="zh-hans")
        for lang in intro_languages:
            lines = [
                plain(t(lang, f"demo.persona.{p.key}", name=p.spec.names[p.language]))
                for p in personas
            ]
            intro = t(
                lang,
                "demo.intro",
                personas="\n".join(lines),
                timeout=SOS_ACK_TIMEOUT,
                files=str(files_dir),
            )
            _print("")
            _print(plain(intro))
        _print("")

        application = build_application(demo_settings, db)
        await application.initialize()
        if application.post_init is not None:
            await application.post_init(application)
        assert application.updater is not None
        await application.updater.start_polling(
            poll_interval=0, timeout=10, allowed_updates=Update.ALL_TYPES
        )
        await application.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        console = Console(
            emu,
            application,
            db,
            personas,
            interactive=sys.stdin.isatty(),
            chrome_language=language,
            out=_print,
            files_dir=files_dir,
            open_files=open_files,
        )
        try:
            await console.run(LineReader(loop, sys.stdin.isatty()), stop)
        finally:
            if application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
            await application.shutdown()
            console.scan()
        console.note("demo.bye", log=str(log_path))
    return 0


def _languages_of(session: Session) -> dict[int, str]:
    """The people's languages as stored (a kept database may have other ones)."""
    ids = [spec.telegram_id for spec in PERSONAS]
    rows = session.exec(select(Person).where(col(Person.telegram_id).in_(ids)))
    return {p.telegram_id: p.language for p in rows}
