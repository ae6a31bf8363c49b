"""The Application's Bot API client (bot/request.py): what reaches the Bot API, and how a
slow or unreachable Bot API shows up (PTB's TimedOut and NetworkError, which the error
handler and the outage logic know)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import NetworkError, TimedOut

from bot.request import AiohttpRequest

TOKEN = "123456:TEST-token"


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny Bot API: records each request; `slow` never answers in time."""
    seen: list[dict[str, Any]] = []

    async def method(request: web.Request) -> web.Response:
        name = request.match_info["method"]
        if name == "slow":
            await asyncio.sleep(1)
        if request.content_type == "application/json":
            seen.append({"method": name, "json": await request.json()})
        else:
            form = await request.post()
            seen.append(
                {
                    "method": name,
                    "fields": {k: v for k, v in form.items() if isinstance(v, str)},
                    "files": {k: v.file.read() for k, v in form.items() if not isinstance(v, str)},
                }
            )
        if name == "getMe":
            me = {"id": 1, "is_bot": True, "first_name": "Cadre", "username": "cadre_bot"}
            return web.json_response({"ok": True, "result": me})
        message = {"message_id": 1, "date": 0, "chat": {"id": 7, "type": "private"}}
        return web.json_response({"ok": True, "result": message})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", method)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/bot", seen
    await runner.cleanup()


async def test_a_reply_with_buttons_and_a_chart_reach_the_bot_api_as_sent(api) -> None:
    base_url, seen = api
    async with Bot(TOKEN, base_url=base_url, request=AiohttpRequest()) as bot:
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("是", callback_data="ci:cough:yes")]])
        await bot.send_message(7, "<b>咳嗽？</b>", parse_mode="HTML", reply_markup=markup)
        await bot.send_photo(7, InputFile(b"\x89PNG chart", filename="trend.png"), caption="趋势")

    text, photo = seen[-2:]
    assert text["method"] == "sendMessage"
    assert text["json"]["text"] == "<b>咳嗽？</b>"
    assert text["json"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == (
        "ci:cough:yes"
    )
    assert photo["method"] == "sendPhoto"
    assert photo["fields"]["caption"] == "趋势"
    assert list(photo["files"].values()) == [b"\x89PNG chart"]


async def test_a_bot_api_that_does_not_answer_in_time_is_a_timeout(api) -> None:
    base_url, _ = api
    request = AiohttpRequest(read_timeout=0.2)
    async with request:
        with pytest.raises(TimedOut):
            await request.post(base_url + TOKEN + "/slow")


async def test_an_unreachable_bot_api_is_a_network_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with AiohttpRequest() as request:
        with pytest.raises(NetworkError) as raised:
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
    assert not isinstance(raised.value, TimedOut)
