"""``BotApiEmulator``: a local HTTP server that behaves like ``api.telegram.org``.

Usage::

    async with BotApiEmulator() as emu:
        bot = telegram.Bot(emu.token, base_url=emu.api_url, base_file_url=emu.file_url)
        user = emu.user(1001, first_name="Li", language_code="zh-hans")
        await user.send("/start")

Every request is validated against ``botapi_spec.json``, recorded in ``emu.requests`` and
may be hit by flood control (``emu.rate_limits``) or injected faults (``emu.faults``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from aiohttp import web

from .driver import FakeGroup, FakeUser
from .errors import METHOD_NOT_FOUND, UNAUTHORIZED, ApiError, bad_request
from .faults import NGINX_502, Fault, FaultInjector, FaultKind
from .methods import Methods, Reply
from .models import RecordedRequest, Signal, UserInfo
from .ratelimit import RateLimiter
from .spec import MethodSpec, UploadedFile, load_spec, validate
from .webhook import WebhookDelivery
from .world import World

TOKEN_RE = re.compile(r"^\d+:[\w-]+$")
MAX_REQUEST_SIZE = 60 * 1024 * 1024


class BotApiEmulator:
    """An emulated Telegram Bot API server for one bot, started as an async context manager.

    Attributes tests use:
      ``token``, ``base_url`` (server root), ``api_url``/``file_url`` (PTB ``base_url`` /
      ``base_file_url``), ``requests`` (every :class:`RecordedRequest`), ``faults``
      (:class:`FaultInjector`), ``rate_limits`` (:class:`RateLimiter`), ``world`` (state:
      chats, messages, files, commands, updates), ``webhook`` (delivery attempts).
    """

    def __init__(
        self,
        *,
        token: str = "123456:TEST-token",
        bot_username: str = "test_bot",
        bot_name: str = "Test Bot",
        seed: int = 0,
        strict_images: bool = True,
        callback_query_timeout: float | None = None,
    ):
        self.token = token
        self.spec = load_spec()
        bot = UserInfo(int(token.split(":")[0]), bot_name, username=bot_username, is_bot=True)
        self.world = World(bot, self.spec.update_types(), seed)
        self.faults = FaultInjector(seed)
        self.rate_limits = RateLimiter(clock=self._now)
        self.strict_images = strict_images
        self.callback_query_timeout = callback_query_timeout
        self.requests: list[RecordedRequest] = []
        self.requests_signal = Signal()
        self.methods = Methods(self)
        self.webhook = WebhookDelivery(self)
        self.closing = False
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._users: dict[int, FakeUser] = {}
        self._groups: dict[int, FakeGroup] = {}

    # --- lifecycle --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the emulator is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """PTB ``base_url``: the token is appended by PTB."""
        return f"{self.base_url}/bot"

    @property
    def file_url(self) -> str:
        """PTB ``base_file_url``."""
        return f"{self.base_url}/file/bot"

    def bot_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``telegram.Bot(**emu.bot_kwargs())``."""
        return {"token": self.token, "base_url": self.api_url, "base_file_url": self.file_url}

    async def start(self) -> BotApiEmulator:
        app = web.Application(client_max_size=MAX_REQUEST_SIZE)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self.closing = True
        self.world.updates_signal.fire()
        self.world.signal.fire()
        await self.webhook.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiEmulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # --- HTTP handlers ----------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if token != self.token:
            error = UNAUTHORIZED if TOKEN_RE.match(token) else ApiError(404, "Not Found")
            return web.json_response(error.payload(), status=error.code)
        name = request.match_info["method"]
        record = RecordedRequest(
            seq=len(self.requests) + 1,
            method=name,
            http_method=request.method,
            content_type=request.content_type,
            params={},
            files={},
            time=self._now(),
        )
        self.requests.append(record)
        self.requests_signal.fire()
        spec = self.spec.method(name)
        try:
            if spec is None:
                raise METHOD_NOT_FOUND
            record.method = spec.name
            raw, files = await self._read_params(request)
            record.params, record.files = raw, files
        except ApiError as exc:
            return self._finish(record, exc.code, exc.payload())
        fault = self.faults.pick(spec.name, raw.get("chat_id"))
        try:
            if fault is None:
                status, body = await self._execute(spec, raw, files, record)
                return self._finish(record, status, body)
            return await self._faulty(fault, request, spec, raw, files, record)
        except asyncio.CancelledError:
            # The client went away (e.g. its read timeout expired, or it stopped polling).
            record.abandoned = True
            if record.status is None:
                record.status = 0
            self.requests_signal.fire()
            raise

    async def _faulty(
        self,
        fault: Fault,
        request: web.Request,
        spec: MethodSpec,
        raw: dict[str, Any],
        files: dict[str, UploadedFile],
        record: RecordedRequest,
    ) -> web.StreamResponse:
        record.fault = fault.kind.value
        if fault.kind is FaultKind.SERVER_ERROR:
            self._finish(record, fault.status, None)
            return web.Response(status=fault.status, text=NGINX_502, content_type="text/html")
        if fault.kind is FaultKind.RETRY_AFTER:
            seconds = int(fault.seconds)
            body = ApiError(
                429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
            ).payload()
            return self._finish(record, 429, body)
        if fault.kind is FaultKind.SLOW:
            if fault.performed:
                status, body = await self._execute(spec, raw, files, record)
                await asyncio.sleep(fault.seconds)
            else:
                await asyncio.sleep(fault.seconds)
                status, body = await self._execute(spec, raw, files, record)
            return self._finish(record, status, body)
        if fault.kind is FaultKind.LOST_REPLY:
            _, record.response = await self._execute(spec, raw, files, record)
        # DROP and LOST_REPLY: close the connection without an HTTP response (status 0).
        record.status = 0
        self.requests_signal.fire()
        if request.transport is not None:
            request.transport.close()
        return web.Response()

    def _finish(
        self, record: RecordedRequest, status: int, body: dict[str, Any] | None
    ) -> web.Response:
        record.status = status
        record.response = body
        self.requests_signal.fire()
        return web.json_response(body, status=status)

    async def _read_params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if not request.can_read_body:
            return raw, files
        if request.content_type == "application/json":
            body = await request.read()
            if body.strip():
                try:
                    data = json.loads(body)
                except ValueError:
                    raise bad_request("can't parse JSON encoded request") from None
                if not isinstance(data, dict):
                    raise bad_request("can't parse JSON encoded request")
                raw.update(data)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = UploadedFile(value.filename, value.content_type, value.file.read())
                else:
                    raw[key] = value
        return raw, files

    async def _execute(
        self,
        spec: MethodSpec,
        raw: dict[str, Any],
        files: dict[str, UploadedFile],
        record: RecordedRequest,
    ) -> tuple[int, dict[str, Any]]:
        try:
            params = validate(spec, raw, files)
            record.params = params
            handler = self.methods.table.get(spec.name)
            if handler is None:
                raise bad_request(f"method {spec.name} is not supported by the Bot API emulator")
            result = handler(params)
            if inspect.isawaitable(result):
                result = await result
        except ApiError as exc:
            record.rate_limited = exc.code == 429
            return exc.code, exc.payload()
        reply = result if isinstance(result, Reply) else Reply(result)
        body: dict[str, Any] = {"ok": True, "result": reply.result}
        if reply.description:
            body["description"] = reply.description
        record.performed = True
        return 200, body

    async def call(
        self, method: str, params: dict[str, Any], *, via: str = "internal"
    ) -> dict[str, Any]:
        """Run a method without HTTP (e.g. a webhook reply); recorded like a request."""
        record = RecordedRequest(len(self.requests) + 1, method, via, "", params, {}, self._now())
        self.requests.append(record)
        spec = self.spec.method(method)
        if spec is None:
            status, body = METHOD_NOT_FOUND.code, METHOD_NOT_FOUND.payload()
        else:
            record.method = spec.name
            status, body = await self._execute(spec, params, {}, record)
        self._finish(record, status, body)
        return body

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(UNAUTHORIZED.payload(), status=401)
        stored = self.world.files_by_path.get(request.match_info["path"])
        if stored is None or stored.data is None:
            error = ApiError(404, "Not Found")
            return web.json_response(error.payload(), status=404)
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    # --- fake users and chats ---------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str = "User",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        phone_number: str | None = None,
        started: bool = True,
    ) -> FakeUser:
        """A fake user with a private chat (chat id == user id); same object per id.

        ``started=False`` models a user who never pressed Start: sends to them get 403
        until they write to the bot.
        """
        existing = self._users.get(user_id)
        if existing is not None:
            return existing
        info = UserInfo(
            user_id,
            first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            phone_number=phone_number or f"+1555{user_id % 10**7:07d}",
        )
        chat = self.world.add_user(info, started=started)
        fake = self._users[user_id] = FakeUser(self, info, chat)
        return fake

    def group(
        self,
        chat_id: int,
        title: str = "Group",
        *,
        kind: str = "supergroup",
        username: str | None = None,
        admins: Iterable[int] = (),
    ) -> FakeGroup:
        """A group chat (use a negative id); users post there with ``user.send(..., chat=g)``."""
        existing = self._groups.get(chat_id)
        if existing is not None:
            return existing
        chat = self.world.add_group(chat_id, title, kind, username)
        chat.admins.update(admins)
        group = self._groups[chat_id] = FakeGroup(self, chat)
        return group

    def block(self, user_id: int, *, notify: bool = True) -> None:
        """The user blocks the bot: sends to them fail with 403 ``bot was blocked by the user``.

        With ``notify`` the bot gets a ``my_chat_member`` update (member -> kicked) like on
        Telegram.
        """
        self.world.blocked.add(user_id)
        if notify:
            self._my_chat_member(user_id, "member", "kicked")

    def unblock(self, user_id: int, *, notify: bool = True) -> None:
        self.world.blocked.discard(user_id)
        if notify:
            self._my_chat_member(user_id, "kicked", "member")

    def _my_chat_member(self, user_id: int, old: str, new: str) -> None:
        chat = self.world.chats.get(user_id)
        user = self.world.users.get(user_id)
        if chat is None or user is None:
            return
        bot = self.world.bot.to_api()

        def member(status: str) -> dict[str, Any]:
            data: dict[str, Any] = {"status": status, "user": bot}
            if status == "kicked":
                data["until_date"] = 0
            return data

        self.world.push_update(
            "my_chat_member",
            {
                "chat": chat.to_api(),
                "from": user.to_api(),
                "date": int(time.time()),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            },
        )

    def commands_for(
        self, user_id: int, language_code: str | None = None, chat_id: int | None = None
    ) -> list[dict[str, str]]:
        """The command menu ``user_id`` sees (in their private chat unless ``chat_id``)."""
        if language_code is None and user_id in self.world.users:
            language_code = self.world.users[user_id].language_code
        return self.world.commands_for(user_id, language_code, chat_id)

    # --- recorded requests ------------------------------------------------------------

    def calls(
        self, method: str | None = None, *, status: int | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests, optionally filtered by method (case-insensitive) and status."""
        return [
            r
            for r in self.requests
            if (method is None or r.method.lower() == method.lower())
            and (status is None or r.status == status)
        ]

    def count(self, method: str | None = None, *, status: int | None = None) -> int:
        return len(self.calls(method, status=status))

    @property
    def errors(self) -> list[RecordedRequest]:
        """Requests answered with an error or dropped by a fault (status 0), in order.

        Requests the client abandoned (e.g. a long poll cancelled at shutdown) are left out.
        """
        return [r for r in self.requests if r.status not in (None, 200) and not r.abandoned]

    async def wait_for_request(
        self,
        method: str,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
        since: int = 0,
        finished: bool = True,
    ) -> RecordedRequest:
        """Wait until a request to ``method`` (matching ``predicate``) exists.

        ``since`` skips requests with ``seq <= since`` (use ``len(emu.requests)``);
        ``finished=False`` also accepts a request still in flight (e.g. a waiting long poll).
        """

        def find() -> RecordedRequest | None:
            for record in self.requests[since:]:
                if record.method.lower() != method.lower():
                    continue
                if finished and record.status is None:
                    continue
                if predicate is None or predicate(record):
                    return record
            return None

        try:
            return await self.requests_signal.wait_for(find, timeout)
        except TimeoutError:
            recent = "\n  ".join(str(r) for r in self.requests[-10:])
            raise AssertionError(
                f"no {method} request within {timeout}s; recent requests:\n  {recent}"
            ) from None

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by the bot."""
        return list(self.world.updates)

    def __repr__(self) -> str:
        where = self.base_url if self.port else "stopped"
        return f"<BotApiEmulator {where} requests={len(self.requests)}>"
