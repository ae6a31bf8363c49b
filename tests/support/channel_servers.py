"""Local stand-ins for the WeCom and DingTalk robot webhooks and an HTTP SMS gateway.

Each checks the request the way the service documents it, answers with the service's
documented bodies, records what it accepted, and fails on demand:

    WeCom     POST /cgi-bin/webhook/send?key=KEY  {"msgtype": "text", "text": {"content":
              ..., "mentioned_mobile_list": [...]}}  ->  {"errcode": 0, "errmsg": "ok"};
              unknown key -> 93000; ``fail("rate_limit")`` -> 45009 (20 a minute per robot).
    DingTalk  POST /robot/send?access_token=T&timestamp=MS&sign=S  {"msgtype": "text",
              "text": {"content": ...}, "at": {"atMobiles": [...]}}; the timestamp must be
              within an hour of now and sign the URL-decoded base64 HMAC-SHA256 of
              "timestamp\\nsecret" keyed with the secret, else 310000; unknown token ->
              300001; ``fail("rate_limit")`` -> 130101.
    SMS       POST /sms with the X-Api-Key header and a JSON body {"phone": ..., "text": ...}
              -> 200 {"ok": true}; a wrong key -> 401.

``fail(kind, times)``: "server_error" (502), "rate_limit", "refuse" (a permanent error),
"hang" (WeCom: no answer until ``release()``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Received:
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class FakeService:
    """One local HTTP service."""

    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why requests were refused
    failures: list[str] = field(default_factory=list)
    server: TestServer | None = None
    hanging: int = 0  # requests held by a "hang" failure until `release()`
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()

    def fail(self, kind: str, times: int = 1) -> None:
        self.failures += [kind] * times

    def _next_failure(self) -> str | None:
        return self.failures.pop(0) if self.failures else None

    async def start(self) -> None:
        app = web.Application()
        self.routes(app)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def routes(self, app: web.Application) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def texts(self) -> list[str]:
        return [self.text_of(r) for r in self.received]

    def text_of(self, received: Received) -> str:
        return str(received.body["text"]["content"])


class WeComRobot(FakeService):
    def __init__(self, key: str = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa") -> None:
        super().__init__()
        self.key = key

    def webhook(self, key: str | None = None) -> str:
        return self.url("/cgi-bin/webhook/send") + f"?key={key or self.key}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/cgi-bin/webhook/send", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        failure = self._next_failure()
        if failure == "hang":
            self.hanging += 1
            await self.released.wait()
        if failure == "server_error":
            return web.Response(status=502, text="<html>502 Bad Gateway</html>")
        if failure == "rate_limit":
            return web.json_response(
                {"errcode": 45009, "errmsg": "api freq out of limit, hint: [x]"}
            )
        if failure == "refuse" or request.query.get("key") != self.key:
            self.rejected.append("key")
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url, hint: [y]"})
        try:
            body = json.loads(raw)
        except ValueError:
            self.rejected.append("json")
            return web.json_response({"errcode": 40035, "errmsg": "invalid parameter"})
        text = body.get("text") if isinstance(body, dict) else None
        mentions = text.get("mentioned_mobile_list", []) if isinstance(text, dict) else None
        if (
            body.get("msgtype") != "text"
            or not isinstance(text, dict)
            or not isinstance(text.get("content"), str)
            or not text["content"]
            or len(text["content"].encode()) > 2048
            or not isinstance(mentions, list)
            or not all(isinstance(m, str) and m.isdigit() for m in mentions)
        ):
            self.rejected.append("shape")
            return web.json_response({"errcode": 40035, "errmsg": "invalid parameter"})
        self.received.append(Received(dict(request.query), dict(request.headers), body, raw))
        return web.json_response({"errcode": 0, "errmsg": "ok"})


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """DingTalk's documented signature (base64 HMAC-SHA256 of "timestamp\\nsecret"),
    before URL-encoding."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), digestmod=hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


class DingTalkRobot(FakeService):
    def __init__(
        self, token: str = "a1b2c3d4e5f6", secret: str = "SEC0123456789abcdef0123456789abcdef"
    ) -> None:
        super().__init__()
        self.token, self.secret = token, secret

    def webhook(self) -> str:
        return self.url("/robot/send") + f"?access_token={self.token}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/robot/send", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        failure = self._next_failure()
        if failure == "server_error":
            return web.Response(status=503, text="busy")
        if failure == "rate_limit":
            return web.json_response({"errcode": 130101, "errmsg": "send too fast"})
        if request.query.get("access_token") != self.token:
            self.rejected.append("token")
            return web.json_response({"errcode": 300001, "errmsg": "token is not exist"})
        timestamp = request.query.get("timestamp", "")
        sign = request.query.get("sign", "")  # aiohttp has URL-decoded it
        fresh = timestamp.isdigit() and abs(int(timestamp) / 1000 - time.time()) < 3600
        if failure == "refuse" or not fresh or sign != dingtalk_sign(self.secret, timestamp):
            self.rejected.append("sign")
            return web.json_response(
                {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc]"}
            )
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        text = body.get("text") if isinstance(body, dict) else None
        at = body.get("at", {}) if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or body.get("msgtype") != "text"
            or not isinstance(text, dict)
            or not isinstance(text.get("content"), str)
            or not isinstance(at, dict)
            or not isinstance(at.get("atMobiles", []), list)
        ):
            self.rejected.append("shape")
            return web.json_response({"errcode": 40035, "errmsg": "缺少参数 json"})
        self.received.append(Received(dict(request.query), dict(request.headers), body, raw))
        return web.json_response({"errcode": 0, "errmsg": "ok"})


class SmsGateway(FakeService):
    """A gateway taking the JSON template {"phone": "{phone}", "text": "{text}"}."""

    def __init__(self, api_key: str = "sms-key-7f3e9a") -> None:
        super().__init__()
        self.api_key = api_key

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/sms", self.handle)

    def text_of(self, received: Received) -> str:
        return str(received.body["text"])

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        failure = self._next_failure()
        if failure == "server_error":
            return web.Response(status=500, text="internal error")
        if failure == "rate_limit":
            return web.Response(status=429, text="slow down")
        if failure == "refuse" or request.headers.get("X-Api-Key") != self.api_key:
            self.rejected.append("key")
            return web.json_response({"error": "unauthorized"}, status=401)
        if not request.headers.get("Content-Type", "").startswith("application/json"):
            self.rejected.append("content-type")
            return web.json_response({"error": "json expected"}, status=415)
        try:
            body = json.loads(raw)
        except ValueError:
            self.rejected.append("json")
            return web.json_response({"error": "bad json"}, status=400)
        if set(body) != {"phone", "text"} or not str(body["phone"]).startswith("+"):
            self.rejected.append("shape")
            return web.json_response({"error": "bad body"}, status=400)
        self.received.append(Received(dict(request.query), dict(request.headers), body, raw))
        return web.json_response({"ok": True, "id": len(self.received)})


@contextlib.asynccontextmanager
async def running_services() -> AsyncIterator[tuple[WeComRobot, DingTalkRobot, SmsGateway]]:
    """A WeCom robot, a DingTalk robot and an SMS gateway, listening on local ports."""
    services = (WeComRobot(), DingTalkRobot(), SmsGateway())
    for service in services:
        await service.start()
    try:
        yield services
    finally:
        for service in services:
            await service.close()
