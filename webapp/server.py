"""The board's HTTP server: the Telegram Mini App for duty officers and admins.

It runs in the bot's event loop (aiohttp), on its own listener (CADRE_WEBAPP_LISTEN, behind
the reverse proxy serving CADRE_WEBAPP_URL), apart from the private /healthz and /metrics.
Under /board/:

    GET  /board/                 the page: a shell whose script loads the views
    GET  /board/static/<file>    board.js, board.css
    GET  /board/api/<view>       a view as an HTML fragment (alerts, alert/<id>, today,
                                 person/<id>; more in webapp/admin_views.py)
    POST /board/api/alert/<id>/ack | resolve     the chat's ✋ and ✅

Every /board/api/ request carries Telegram's initData (`Authorization: tma <initData>`),
checked by webapp.auth; the person, their role and areas are read from the database on
each request. 401: forged, expired or another bot's initData; 403: someone the board is
not for (a cadre, a contact, a suspended officer), with a pointer back to the chat.
Like handlers, this layer is thin: the services decide and do; it renders.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web
from telegram.ext import Application

from config import Settings
from handlers import menus
from handlers.roster_import import MAX_FILE_BYTES
from models import Role
from services import board, clock, i18n
from services.alerts import cards, policy, respond
from services.care.rules import CareConfig
from services.db import Database
from services.health.config import HealthConfig
from services.i18n import t
from services.people import name_of
from webapp import auth, pages
from webapp.admin_views import MoreViews, path_id, query_int

log = logging.getLogger(__name__)

PREFIX = "/board"
STATIC = {"board.js": "text/javascript", "board.css": "text/css"}
View = Callable[[web.Request, "Viewer"], Awaitable[Any]]


class Viewer:
    """The person behind a request, as the database has them now."""

    def __init__(self, person: Any, lang: str) -> None:
        self.person = person
        self.lang = lang
        self.admin = person.role == Role.ADMIN  # the admins' tabs (each view checks itself)


# How the bot serves an aiohttp app on host:port (bot.http.listen, passed in by bot/app.py):
# the runner and the port bound, or None when it cannot bind.
Listen = Callable[[web.Application, str, int, str], Awaitable[tuple[web.AppRunner, int] | None]]
# How the bot runs a server until the Application stops (bot.http.start).
Serve = Callable[[Application, Any, str, int], Awaitable[None]]


class BoardServer(MoreViews):
    def __init__(
        self, application: Application, settings: Settings, db: Database, listen: Listen
    ) -> None:
        self.application = application
        self.settings = settings
        self.db = db
        self._listen = listen
        token = settings.telegram_token
        self.token = token.get_secret_value() if token else ""
        self.health = HealthConfig.from_settings(settings)
        self.care = CareConfig.from_settings(settings)
        self.host: str | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        # a roster file may be uploaded (as large as the chat accepts); read only after
        # initData is checked
        app = web.Application(client_max_size=MAX_FILE_BYTES + 64 * 1024)
        app.router.add_get(PREFIX, self.redirect)
        app.router.add_get(PREFIX + "/", self.shell)
        app.router.add_get(PREFIX + "/static/{name}", self.static)
        views: dict[str, View] = {
            "alerts": self.alerts_view,
            "alert/{id:\\d+}": self.alert_view,
            "today": self.today_view,
            "person/{id:\\d+}": self.person_view,
            "person/{id:\\d+}/chart.png": self.chart_view,
        }
        for path, view in views.items():
            app.router.add_get(f"{PREFIX}/api/{path}", self._authenticated(view))
        app.router.add_post(f"{PREFIX}/api/alert/{{id:\\d+}}/ack", self._authenticated(self.ack))
        app.router.add_post(
            f"{PREFIX}/api/alert/{{id:\\d+}}/resolve", self._authenticated(self.resolve)
        )
        for method, path, name in self.ROUTES:  # webapp/admin_views.py
            app.router.add_route(
                method, f"{PREFIX}/api/{path}", self._authenticated(getattr(self, name))
            )
        return app

    # --- lifecycle ----------------------------------------------------------------

    async def start(self, host: str, port: int) -> bool:
        served = await self._listen(self.app(), host, port, "board")
        if served is None:
            return False
        self._runner, self.port = served
        self.host = host
        log.info("board on http://%s:%s%s/", host, self.port, PREFIX)
        return True

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner.cleanup()

    # --- the page -----------------------------------------------------------------

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(
            PREFIX + "/" + (f"?{request.query_string}" if request.query_string else "")
        )

    async def shell(self, request: web.Request) -> web.Response:
        return _html(pages.shell(self.settings.default_language))

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        body = (resources.files("webapp") / "static" / name).read_bytes()
        return web.Response(
            body=body,
            content_type=STATIC[name],
            headers={"Cache-Control": "no-cache"},
        )

    # --- authentication -------------------------------------------------------------

    def _authenticated(self, view: View) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            default = self.settings.default_language
            header = request.headers.get("Authorization", "")
            scheme, _, init_data = header.partition(" ")
            try:
                if scheme.lower() != "tma":
                    raise auth.AuthError("no tma authorization")
                user = auth.validate(
                    init_data.strip(),
                    self.token,
                    self.settings.webapp_auth_max_age,
                    now=clock.now().timestamp(),
                )
            except auth.AuthError as exc:
                log.info("board: initData refused (%s)", exc)
                return _html(pages.notice(t(default, "board.unauthorized")), status=401)
            person = await self.db.run(board.viewer, user.telegram_id)
            lang = (
                person.language if person else i18n.normalize_language(user.language_code, default)
            )
            if not board.may_open(person):
                return _html(pages.notice(t(lang, "board.not_for_you")), status=403)
            try:
                body = await view(request, Viewer(person, lang))
            except web.HTTPException:
                raise
            except Exception:
                log.exception("board: error in %s", request.path)
                return _html(pages.notice(t(lang, "board.error")), status=500)
            if isinstance(body, web.Response):  # the chart
                return body
            return _html(body)

        return handler

    # --- views ----------------------------------------------------------------------

    async def alerts_view(self, request: web.Request, viewer: Viewer) -> str:
        def load(session: Any) -> str:
            found = board.open_alerts(session, viewer.person)
            lines = cards.list_lines(session, found, viewer.lang, self.settings.zone)
            rows = list(zip(found, lines, strict=True))
            return pages.alert_list(viewer.lang, rows, viewer.admin)

        return await self.db.run(load)

    async def alert_view(self, request: web.Request, viewer: Viewer, flash: str = "") -> str:
        alert_id = path_id(request)
        zone = self.settings.zone
        found = await self.db.run(board.alert_view, viewer.person, alert_id, viewer.lang, zone)
        if found is None:
            return pages.notice(t(viewer.lang, "board.alert.not_found"), back="alerts")
        return pages.alert(viewer.lang, found, zone, flash)

    def _policy(self) -> policy.Policy:
        return policy.Policy.from_settings(self.settings, self.application.bot.username)

    async def ack(self, request: web.Request, viewer: Viewer) -> str:
        alert_id = path_id(request)
        result = await self.db.run(
            respond.acknowledge, alert_id=alert_id, actor=viewer.person, policy=self._policy()
        )
        lang = viewer.lang
        if result.outcome == respond.Ack.WON:
            flash = t(lang, "sos.ack.won", id=alert_id)
        elif result.outcome == respond.Ack.TAKEN:
            flash = t(lang, "sos.ack.taken", name=name_of(result.by))
        elif result.outcome == respond.Ack.CLOSED:
            flash = t(lang, "sos.closed_already")
        else:
            flash = t(lang, f"sos.denied.{result.refusal}")
        return await self.alert_view(request, viewer, flash)

    async def resolve(self, request: web.Request, viewer: Viewer) -> str:
        alert_id = path_id(request)
        form = await request.post()
        outcome = str(form.get("outcome", ""))
        result = await self.db.run(
            respond.resolve,
            alert_id=alert_id,
            actor=viewer.person,
            outcome=outcome,
            policy=self._policy(),
        )
        lang = viewer.lang
        if result.outcome == respond.Close.DONE:
            flash = t(lang, "sos.resolved", id=alert_id)
        elif result.outcome == respond.Close.REFUSED:
            flash = t(lang, f"sos.denied.{result.refusal}")
        elif result.outcome == respond.Close.INVALID:
            flash = t(lang, "form.stale")
        else:
            flash = t(lang, "sos.closed_already")
        return await self.alert_view(request, viewer, flash)

    async def today_view(self, request: web.Request, viewer: Viewer) -> str:
        from services.health import reports

        query = request.query
        state = query.get("state", "missing")
        filters = {  # as area_page and the page take them
            "state": state if state in reports.LISTED else "missing",
            "prefecture": query.get("prefecture") or None,
            "county": query.get("county") or None,
            "name": " ".join(query.get("q", "").split())[: pages.SEARCH_MAX] or None,
        }
        page = max(1, query_int(query.get("page"), 1))  # shown as "51–100 of ..."
        after = query_int(query.get("after"), 0) or None  # the ids the page follows or precedes
        before = query_int(query.get("before"), 0) or None

        def load(session: Any) -> tuple[Any, list[str] | None]:
            def read(after: int | None, before: int | None) -> Any:
                return reports.area_page(
                    session,
                    viewer.person,
                    self.health,
                    **filters,
                    after=after,
                    before=before,
                    limit=pages.PAGE_SIZE,
                )

            found = read(after, before)
            if not found.people and (after or before):  # they have all moved on: page 1
                found = read(None, None)
            return found, reports.area_of(session, viewer.person)

        found, area = await self.db.run(load)
        if area == []:  # an officer without a duty area yet
            return pages.no_area(viewer.lang, "today", viewer.admin)
        if not found.more_before:  # the first page, however it was reached
            page = 1
        day = clock.now().astimezone(self.settings.zone).date()
        return pages.today(
            viewer.lang, day, found, area=area, page=page, admin=viewer.admin, **filters
        )

    async def person_view(self, request: web.Request, viewer: Viewer) -> str:
        from services.care import records

        person_id = path_id(request)

        def load(session: Any) -> tuple[Any, Any]:
            found = board.person_view(session, viewer.person, person_id, self.health)
            schedule = records.schedule_for(session, person_id, self.care) if found else None
            return found, schedule

        found, schedule = await self.db.run(load)
        if found is None:
            return pages.notice(t(viewer.lang, "board.person.not_found"), back="today")
        return pages.person(viewer.lang, found, schedule, self.settings.zone)

    async def chart_view(self, request: web.Request, viewer: Viewer) -> Any:
        """The person page's chart, fetched by board.js after the page (with initData)."""
        person_id = path_id(request)
        png = await self.db.run(board.chart, viewer.person, person_id, self.health)
        if png is None:
            raise web.HTTPNotFound()
        return web.Response(
            body=png, content_type="image/png", headers={"Cache-Control": "private, no-store"}
        )


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


# ------------------------------------------------------------------- with the bot


def install(application: Application, settings: Settings, db: Database, listen: Listen) -> None:
    """Keep the board's server ready to start in post_init (only when CADRE_WEBAPP_URL is
    set; the services get the address from the settings: services.board_links)."""
    if settings.webapp_url is not None:
        application.bot_data["board"] = BoardServer(application, settings, db, listen)


def standby_app(settings: Settings) -> web.Application:
    """What the board's address answers while this process stands by (bot/leader.py):
    503 with a notice. The board follows the leader: a proxy in front of both hosts tries
    the other one on a 503 (docs/deploy.md), and someone who reaches a standby anyway is
    told to try again in a moment."""
    body = pages.notice(t(settings.default_language, "board.standby"))

    async def answer(_request: web.Request) -> web.Response:
        response = _html(body, status=503)
        response.headers["Retry-After"] = "5"
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def start(application: Application, serve: Serve) -> None:
    server: BoardServer | None = application.bot_data.get("board")
    if server is not None:
        await serve(application, server, *server.settings.webapp_address)  # type: ignore[arg-type]
        # Admins got theirs with their command menu (post_init); duty officers here.
        for person in await server.db.run(board.duty_officers):
            await menus.set_board_button(application.bot, person, server.settings.webapp_url)


async def stop(application: Application) -> None:
    server: BoardServer | None = application.bot_data.get("board")
    if server is not None:
        await server.stop()
