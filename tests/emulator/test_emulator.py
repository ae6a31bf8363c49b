"""Tests of the Telegram Bot API emulator, driven by python-telegram-bot itself."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from emulator import ApiError, BotApiEmulator, Fault, FaultKind, tiny_png
from emulator.formatting import format_text
from emulator.make_spec import DEFAULT_SOURCE, dump, extract

pytest_plugins = ["tests.support.emulator_plugin"]
# PTB warns when RetryAfter.retry_after is read as an int (it will become a timedelta).
pytestmark = pytest.mark.filterwarnings(r"ignore:.*retry_after.*:DeprecationWarning")

USER_ID = 1001


@pytest_asyncio.fixture
async def bot(emulator: BotApiEmulator) -> AsyncIterator[Bot]:
    async with Bot(**emulator.bot_kwargs()) as bot:
        yield bot


def retry_seconds(exc: RetryAfter) -> int:
    value = exc.retry_after
    return int(value.total_seconds()) if isinstance(value, dtm.timedelta) else int(value)


def last_description(emu: BotApiEmulator, method: str) -> str | None:
    return emu.calls(method)[-1].description


# --- a tiny real PTB application -------------------------------------------------------


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    await update.message.reply_text(" ".join(context.args or []) or "(nothing)")


async def _menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    keyboard = [[InlineKeyboardButton("Yes", callback_data="yes")]]
    keyboard.append([InlineKeyboardButton("No", callback_data="no")])
    await update.message.reply_text("Pick one", reply_markup=InlineKeyboardMarkup(keyboard))


async def _button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer(f"you chose {query.data}")
    await query.edit_message_text(f"Chosen: <b>{query.data}</b>", parse_mode="HTML")


async def _document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.document is not None
    file = await update.message.document.get_file()
    data = await file.download_as_bytearray()
    await update.message.reply_text(f"got {update.message.document.file_name}: {len(data)} bytes")


async def _share(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    button = KeyboardButton("Share my phone", request_contact=True)
    markup = ReplyKeyboardMarkup([[button]], one_time_keyboard=True, resize_keyboard=True)
    await update.message.reply_text("Please share", reply_markup=markup)


async def _contact(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.contact is not None
    contact = update.message.contact
    await update.message.reply_text(
        f"thanks {contact.phone_number} ({contact.user_id})", reply_markup=ReplyKeyboardRemove()
    )


@pytest_asyncio.fixture
async def app(emulator: BotApiEmulator) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    application = (
        Application.builder()
        .token(emulator.token)
        .base_url(emulator.api_url)
        .base_file_url(emulator.file_url)
        .build()
    )
    application.add_handler(CommandHandler("echo", _echo))
    application.add_handler(CommandHandler("menu", _menu))
    application.add_handler(CommandHandler("share", _share))
    application.add_handler(CallbackQueryHandler(_button))
    application.add_handler(MessageHandler(filters.Document.ALL, _document))
    application.add_handler(MessageHandler(filters.CONTACT, _contact))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0)
        yield application
        await application.updater.stop()
        await application.stop()


# --- spec -----------------------------------------------------------------------------


def test_spec_is_compact_and_current() -> None:
    spec_path = Path(__file__).parents[2] / "emulator" / "botapi_spec.json"
    spec = json.loads(spec_path.read_text())
    assert spec["version"] == "Bot API 10.1"
    assert spec["methods"]["sendMessage"]["required"] == ["chat_id", "text"]
    assert spec["methods"]["sendMessage"]["params"]["chat_id"] == "Integer|String"
    assert (spec_path.parent / "LICENSE-telegram-bot-api-spec").read_text().startswith("MIT")
    if DEFAULT_SOURCE.exists():  # regenerating gives the committed file
        source = json.loads(DEFAULT_SOURCE.read_text())
        assert dump(extract(source)) == spec_path.read_text()


# --- HTTP surface -----------------------------------------------------------------------


async def test_envelopes_tokens_and_encodings(emulator: BotApiEmulator) -> None:
    root = f"{emulator.base_url}/bot{emulator.token}"
    emulator.user(USER_ID, "Li")
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{root}/getMe")
        assert response.json()["result"]["username"] == "test_bot"
        response = await client.post(f"{root}/noSuchMethod")
        assert response.status_code == 404
        assert response.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        }
        response = await client.get(f"{emulator.base_url}/bot123456:other/getMe")
        assert response.status_code == 401
        assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        # JSON body, query string and (case-insensitive) method names all work
        response = await client.post(f"{root}/sendmessage", json={"chat_id": USER_ID, "text": "a"})
        assert response.json()["result"]["text"] == "a"
        response = await client.get(f"{root}/sendMessage", params={"chat_id": USER_ID, "text": "b"})
        assert response.json()["result"]["message_id"] == 2
        # basic type validation
        response = await client.post(f"{root}/getUpdates", data={"limit": "many"})
        assert response.status_code == 400
        assert response.json()["description"] == (
            'Bad Request: field "limit" must be of type Integer'
        )
        response = await client.post(
            f"{root}/sendMessage", data={"chat_id": USER_ID, "text": "x", "reply_markup": "{"}
        )
        assert response.json()["description"] == (
            "Bad Request: can't parse reply keyboard markup JSON object"
        )
    assert [r.status for r in emulator.calls("sendMessage")] == [200, 200, 400]
    assert emulator.calls("sendMessage")[1].http_method == "GET"


async def test_missing_required_parameters(emulator: BotApiEmulator, bot: Bot) -> None:
    emulator.user(USER_ID)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(USER_ID, "")
    with pytest.raises(BadRequest, match=r"(?i)chat_id is empty"):
        await bot.send_message("", "hello")
    async with httpx.AsyncClient() as client:
        url = f"{emulator.api_url}{emulator.token}/answerCallbackQuery"
        assert (await client.post(url)).status_code == 400
    assert last_description(emulator, "sendMessage") == "Bad Request: chat_id is empty"
    async with httpx.AsyncClient() as client:
        url = f"{emulator.api_url}{emulator.token}/sendContact"
        response = await client.post(url, data={"chat_id": USER_ID, "first_name": "A"})
        assert response.json()["description"] == (
            'Bad Request: parameter "phone_number" is required'
        )
        # valid but unimplemented, non-settings methods are refused rather than faked
        response = await client.post(
            url, data={"chat_id": USER_ID, "first_name": "A", "phone_number": "1"}
        )
        assert response.status_code == 400
        assert "not supported by the Bot API emulator" in response.json()["description"]
    assert last_description(emulator, "answerCallbackQuery") == (
        "Bad Request: query is too old and response timeout expired or query ID is invalid"
    )


# --- long polling and the driver with a real Application ---------------------------------


async def test_application_round_trip(emulator: BotApiEmulator, app: Application) -> None:
    user = emulator.user(USER_ID, "Li", language_code="zh-hans")
    await user.send("/echo hello world")
    reply = await user.next_message()
    assert reply.text == "hello world"
    assert reply.sender.username == "test_bot"

    await user.send("/menu")
    menu = await user.wait_for("Pick one")
    assert [b["text"] for b in menu.buttons] == ["Yes", "No"]
    query_id = await user.press("No")
    answer = await user.callback_answer(query_id)
    assert answer.text == "you chose no"
    await user.wait_edit(menu)
    assert menu.text == "Chosen: no"
    assert menu.entities == [{"type": "bold", "offset": 8, "length": 2}]
    assert menu.reply_markup is None  # editMessageText without reply_markup drops the keyboard
    assert menu.history[0].text == "Pick one"
    assert user.last_callback_answer == answer

    await user.send_document("report.pdf", b"%PDF-1.4 data")
    assert (await user.next_message()).text == "got report.pdf: 13 bytes"
    user.assert_no_unread()
    assert emulator.count("getFile", status=200) == 1
    assert emulator.errors == []


async def test_reply_keyboard_contact_button(emulator: BotApiEmulator, app: Application) -> None:
    user = emulator.user(USER_ID, "Li", phone_number="+8613800000000")
    await user.send("/share")
    await user.wait_for("Please share")
    assert user.reply_keyboard == [[{"text": "Share my phone", "request_contact": True}]]
    await user.press_reply_button("Share my phone")
    reply = await user.next_message()
    assert reply.text == "thanks +8613800000000 (1001)"
    assert user.reply_keyboard is None


async def test_get_updates_semantics(emulator: BotApiEmulator, bot: Bot) -> None:
    user = emulator.user(USER_ID)
    started = asyncio.get_running_loop().time()
    poll = asyncio.create_task(bot.get_updates(timeout=20, read_timeout=30))
    await emulator.wait_for_request("getUpdates", finished=False)  # the poll is waiting
    await user.send("first")
    updates = await poll
    assert asyncio.get_running_loop().time() - started < 5  # returned on arrival
    assert [u.message.text for u in updates if u.message] == ["first"]
    await user.send("second")
    await user.send("third")
    assert len(await bot.get_updates(limit=1)) == 1
    offset = updates[0].update_id + 1  # confirms "first"
    assert [u.message.text for u in await bot.get_updates(offset=offset) if u.message] == [
        "second",
        "third",
    ]
    assert [u.message.text for u in await bot.get_updates(offset=-1) if u.message] == ["third"]
    # allowed_updates filters updates created afterwards
    await bot.send_message(
        USER_ID,
        "m",
        reply_markup=InlineKeyboardMarkup.from_button(InlineKeyboardButton("B", callback_data="b")),
    )
    await bot.get_updates(offset=updates[-1].update_id + 10**6, allowed_updates=["message"])
    await user.press("B")
    assert emulator.pending_updates == []


async def test_second_get_updates_terminates_the_first(emulator: BotApiEmulator, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=20, read_timeout=30))
    await emulator.wait_for_request("getUpdates", finished=False)
    async with Bot(**emulator.bot_kwargs()) as second_instance:
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match=r"terminated by other getUpdates request"):
        await first


# --- Telegram's errors as PTB exceptions ---------------------------------------------------


async def test_limits_and_markup_errors(emulator: BotApiEmulator, bot: Bot) -> None:
    emulator.user(USER_ID)
    await bot.send_message(USER_ID, "x" * 4096)
    await bot.send_message(USER_ID, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)^message is too long$"):
        await bot.send_message(USER_ID, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)^message caption is too long$"):
        await bot.send_document(USER_ID, b"data", filename="a.txt", caption="c" * 1025)
    with pytest.raises(BadRequest, match=r"(?i)^message must be non-empty$"):
        await bot.send_message(USER_ID, "<b> </b>", parse_mode="HTML")
    too_long = InlineKeyboardButton("B", callback_data="ж" * 33)  # 66 bytes
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(USER_ID, "x", reply_markup=InlineKeyboardMarkup([[too_long]]))
    assert last_description(emulator, "sendMessage") == "Bad Request: BUTTON_DATA_INVALID"
    cases = {
        "a < b": 'Unsupported start tag "" at byte offset 2',
        "<blink>x</blink>": 'Unsupported start tag "blink" at byte offset 0',
        "<b>bold": "Can't find end tag corresponding to start tag b",
        "<b>x</i>": 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"',
        "x</b>": "Unexpected end tag at byte offset 1",
        '<span class="x">s</span>': 'Tag "span" must have class "tg-spoiler" at byte offset 0',
    }
    for text, detail in cases.items():
        with pytest.raises(BadRequest):
            await bot.send_message(USER_ID, text, parse_mode="HTML")
        assert last_description(emulator, "sendMessage") == (
            f"Bad Request: can't parse entities: {detail}"
        )


async def test_edit_delete_and_callback_errors(emulator: BotApiEmulator, bot: Bot) -> None:
    user = emulator.user(USER_ID)
    markup = InlineKeyboardMarkup.from_button(InlineKeyboardButton("Go", callback_data="go"))
    sent = await bot.send_message(USER_ID, "hello", reply_markup=markup)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("hello", USER_ID, sent.message_id, reply_markup=markup)
    assert last_description(emulator, "editMessageText") == (
        "Bad Request: message is not modified: specified new message content and reply markup "
        "are exactly the same as a current content and reply markup of the message"
    )
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(USER_ID, sent.message_id, reply_markup=markup)
    await bot.edit_message_reply_markup(USER_ID, sent.message_id)
    assert user.last_message is not None and user.last_message.reply_markup is None
    with pytest.raises(BadRequest, match=r"(?i)^message to edit not found$"):
        await bot.edit_message_text("new", USER_ID, 999)
    with pytest.raises(BadRequest, match=r"(?i)^chat not found$"):
        await bot.send_message(424242, "hi")
    await bot.delete_message(USER_ID, sent.message_id)
    assert user.messages[0].deleted
    with pytest.raises(BadRequest, match=r"(?i)^message to delete not found$"):
        await bot.delete_message(USER_ID, sent.message_id)

    await bot.send_message(USER_ID, "again", reply_markup=markup)
    query_id = await user.press("go")
    assert await bot.answer_callback_query(query_id, text="ok")
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query("12345")


async def test_blocked_user_and_unstarted_chat(emulator: BotApiEmulator, bot: Bot) -> None:
    user = emulator.user(USER_ID)
    user.block()
    with pytest.raises(Forbidden, match=r"bot was blocked by the user"):
        await bot.send_message(USER_ID, "hi")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(USER_ID, "typing")
    assert "my_chat_member" in emulator.pending_updates[-1]
    user.unblock()
    await bot.send_chat_action(USER_ID, "typing")
    assert user.actions == ["typing"]
    user.block(notify=False)
    await user.send("/start")  # writing to the bot unblocks it, as in the apps
    await bot.send_message(USER_ID, "welcome back")

    stranger = emulator.user(2002, started=False)
    with pytest.raises(Forbidden, match=r"bot can't initiate conversation with a user"):
        await bot.send_message(2002, "hi")
    await stranger.send("hello")
    await bot.send_message(2002, "hi")


async def test_uploads_are_kept_and_served(emulator: BotApiEmulator, bot: Bot) -> None:
    user = emulator.user(USER_ID)
    image = tiny_png(40, 30)
    sent = await bot.send_photo(USER_ID, image, caption="<i>chart</i>", parse_mode="HTML")
    assert (sent.photo[-1].width, sent.photo[-1].height) == (40, 30)
    assert sent.caption == "chart"
    with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
        await bot.send_photo(USER_ID, b"not an image")
    await bot.send_document(USER_ID, b"col1,col2\n", filename="export.csv")
    upload = emulator.calls("sendDocument")[-1].files["document"]
    assert (upload.filename, upload.data) == ("export.csv", b"col1,col2\n")
    assert [f.data for f in user.files] == [image, b"col1,col2\n"]
    assert user.bot_messages[-1].document is not None
    assert user.bot_messages[-1].document.mime_type == "text/csv"
    # a file id can be re-sent, and files from users can be downloaded by the bot
    again = await bot.send_photo(USER_ID, sent.photo[-1].file_id)
    assert again.photo[-1].file_id == sent.photo[-1].file_id
    incoming = await user.send_document("scan.pdf", b"%PDF")
    assert incoming.document is not None
    file = await bot.get_file(incoming.document.file_id)
    assert await file.download_as_bytearray() == b"%PDF"
    with pytest.raises(BadRequest, match=r"(?i)wrong file_id"):
        await bot.get_file("nonsense")


# --- fault injection ------------------------------------------------------------------------


async def test_injected_faults_surface_as_ptb_errors(emulator: BotApiEmulator, bot: Bot) -> None:
    user = emulator.user(USER_ID)
    emulator.faults.add(Fault.server_error(), methods="sendMessage", times=1)
    with pytest.raises(NetworkError, match=r"Bad Gateway"):
        await bot.send_message(USER_ID, "a")
    emulator.faults.add(Fault.retry_after(7), methods="sendMessage", times=1)
    with pytest.raises(RetryAfter) as retry:
        await bot.send_message(USER_ID, "b")
    assert retry_seconds(retry.value) == 7
    emulator.faults.add(Fault.drop(), methods="sendMessage", times=1)
    with pytest.raises(NetworkError):
        await bot.send_message(USER_ID, "c")
    assert user.bot_messages == []  # none of these was performed

    emulator.faults.add(Fault.lost_reply(), methods="sendMessage", times=1)
    with pytest.raises(NetworkError):
        await bot.send_message(USER_ID, "d")
    await bot.send_message(USER_ID, "d")  # a naive retry duplicates the message
    assert [m.text for m in user.bot_messages] == ["d", "d"]
    assert [(r.status, r.performed, r.fault) for r in emulator.calls("sendMessage")[-2:]] == [
        (0, True, "lost_reply"),
        (200, True, None),
    ]

    emulator.faults.add(Fault.slow(5), methods="sendMessage", times=1)
    with pytest.raises(TimedOut):
        await bot.send_message(USER_ID, "e", read_timeout=0.2)
    assert emulator.faults.count(FaultKind.SLOW) == 1
    await emulator.requests_signal.wait_for(lambda: emulator.calls("sendMessage")[-1].abandoned, 5)
    assert len(user.bot_messages) == 2  # the slow request never got performed
    await bot.send_message(USER_ID, "f")


async def test_probabilistic_faults_are_seeded() -> None:
    async def run(seed: int) -> list[bool]:
        async with BotApiEmulator(seed=seed) as emu, Bot(**emu.bot_kwargs()) as bot:
            emu.user(USER_ID)
            emu.faults.add(Fault.server_error(), probability=0.5)
            outcomes = []
            for _ in range(12):
                try:
                    await bot.send_chat_action(USER_ID, "typing")
                    outcomes.append(True)
                except NetworkError:
                    outcomes.append(False)
            return outcomes

    first, second = await run(7), await run(7)
    assert first == second
    assert True in first and False in first


# --- commands -------------------------------------------------------------------------------


async def test_commands_scope_and_language_precedence(emulator: BotApiEmulator, bot: Bot) -> None:
    li = emulator.user(USER_ID, "Li", language_code="zh-hans")
    bob = emulator.user(1002, "Bob", language_code="en")
    await bot.set_my_commands([BotCommand("start", "Start")])
    await bot.set_my_commands([BotCommand("start", "开始")], language_code="zh")
    assert li.commands() == [{"command": "start", "description": "开始"}]
    assert bob.commands() == [{"command": "start", "description": "Start"}]

    await bot.set_my_commands(
        [BotCommand("checkin", "Check in")], scope=BotCommandScopeAllPrivateChats()
    )
    assert bob.commands()[0]["command"] == "checkin"
    await bot.set_my_commands(
        [BotCommand("sos", "紧急求助")], scope=BotCommandScopeChat(USER_ID), language_code="zh"
    )
    assert li.commands() == [{"command": "sos", "description": "紧急求助"}]
    assert emulator.commands_for(USER_ID, language_code="en")[0]["command"] == "checkin"
    fetched = await bot.get_my_commands(scope=BotCommandScopeChat(USER_ID), language_code="zh")
    assert [c.command for c in fetched] == ["sos"]

    await bot.delete_my_commands(scope=BotCommandScopeChat(USER_ID), language_code="zh")
    assert li.commands()[0]["command"] == "checkin"
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start", "bad: upper case")])
    with pytest.raises(BadRequest, match=r"(?i)invalid language code"):
        await bot.set_my_commands([BotCommand("a", "b")], language_code="zh-hans")


# --- rate limiting --------------------------------------------------------------------------


async def test_rate_limits(emulator: BotApiEmulator, bot: Bot) -> None:
    emulator.rate_limits.clock = lambda: 100.0  # frozen: no refill between requests
    emulator.rate_limits.enable(private_burst=2, private_per_second=0.5, group_per_minute=2)
    emulator.user(USER_ID)
    await bot.send_message(USER_ID, "1")
    await bot.send_message(USER_ID, "2")
    with pytest.raises(RetryAfter) as retry:
        await bot.send_message(USER_ID, "3")
    assert retry_seconds(retry.value) == 2
    await bot.send_chat_action(USER_ID, "typing")  # chat actions are not counted

    group = emulator.group(-100123, "Cadres", admins=[USER_ID])
    emulator.rate_limits.enable(group_per_minute=2, group_burst=2)
    await bot.send_message(group.chat_id, "g1")
    await bot.send_message(group.chat_id, "g2")
    with pytest.raises(RetryAfter) as retry:
        await bot.send_message(group.chat_id, "g3")
    assert retry_seconds(retry.value) == 30

    emulator.rate_limits.enable(global_per_second=3, private_burst=5)
    for user_id in (2001, 2002, 2003, 2004):
        emulator.user(user_id)
    for user_id in (2001, 2002, 2003):
        await bot.send_message(user_id, "broadcast")
    with pytest.raises(RetryAfter):
        await bot.send_message(2004, "broadcast")
    assert emulator.rate_limits.count == 3
    assert emulator.count("sendMessage", status=429) == 3
    assert [m.text for m in group.bot_messages] == ["g1", "g2"]


# --- webhooks -------------------------------------------------------------------------------


async def test_webhook_delivery_with_secret_and_retries(emulator: BotApiEmulator, bot: Bot) -> None:
    received: asyncio.Queue[tuple[str | None, dict[str, Any]]] = asyncio.Queue()
    failures = [500]  # the first delivery fails, Telegram must retry it

    async def hook(request: web.Request) -> web.Response:
        if failures:
            return web.Response(status=failures.pop())
        received.put_nowait(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response()

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        url = f"http://127.0.0.1:{port}/hook"
        assert await bot.set_webhook(url, secret_token="s3cr3t-token")
        with pytest.raises(Conflict, match=r"can't use getUpdates method while webhook is active"):
            await bot.get_updates()
        user = emulator.user(USER_ID)
        await user.send("via webhook")
        secret, update = await asyncio.wait_for(received.get(), 5)
        assert secret == "s3cr3t-token"
        assert update["message"]["text"] == "via webhook"
        hook_state = emulator.webhook
        await hook_state.changed.wait_for(lambda: len(hook_state.attempts) == 2, 5)
        info = await bot.get_webhook_info()
        assert info.url == url
        assert (
            info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
        )
        assert info.pending_update_count == 0
        assert [a.status for a in emulator.webhook.attempts] == [500, 200]
        with pytest.raises(BadRequest, match=r"(?i)https url must be provided"):
            await bot.set_webhook("http://example.com/hook")
        assert await bot.delete_webhook()
        assert await bot.get_updates() == ()
    finally:
        await runner.cleanup()


# --- formatting unit tests ------------------------------------------------------------------


def test_formatting_offsets_and_modes() -> None:
    parsed = format_text("  <i>😀 a</i> &lt;b&gt; &nbsp;<a href='https://t.me/x'>l</a>\n", "HTML")
    assert parsed.text == "😀 a <b> &nbsp;l"
    assert parsed.entities == [
        {"type": "italic", "offset": 0, "length": 4},  # the emoji is two UTF-16 units
        {"type": "text_link", "offset": 15, "length": 1, "url": "https://t.me/x"},
    ]
    code = format_text('<pre><code class="language-python">x = 1</code></pre>', "HTML")
    assert code.entities == [{"type": "pre", "offset": 0, "length": 5, "language": "python"}]
    v2 = format_text("*bold* _it_ __u__ ||s|| `c` [l](https://x.org) 1\\.5", "MarkdownV2")
    assert v2.text == "bold it u s c l 1.5"
    assert [e["type"] for e in v2.entities] == [
        "bold",
        "italic",
        "underline",
        "spoiler",
        "code",
        "text_link",
    ]
    with pytest.raises(ApiError, match=r"Character '\.' is reserved"):
        format_text("Done.", "MarkdownV2")
    with pytest.raises(ApiError, match=r"Can't find end of Bold entity at byte offset 0"):
        format_text("*open", "MarkdownV2")
    with pytest.raises(ApiError, match=r"Can't find end of the entity starting at byte offset 2"):
        format_text("a *b", "Markdown")
