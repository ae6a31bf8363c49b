"""The board's views beyond alerts and today (mixed into webapp.server.BoardServer):

    GET  care                        overdue rest and examinations of the viewer's area
    GET  oxygen                      open oxygen requests of the viewer's area
    GET  people, people/<id>         admins: /people's list and card
    POST people/<id>/approve|reject|role|area|suspend|reinstate
    GET  roster                      admins: the weekly duty roster as a grid
    POST roster/add, roster/<id>/remove
    GET  import                      admins: roster import, who has not joined yet
    POST import (a file), import/template, import/links (XLSX or CSV)
    GET  broadcasts                  admins: broadcast reports
    GET  questions                   admins: handed-over questions
    POST questions/<id>/answer

Each view passes the same permission gate as the chat's command (services.permissions,
refusals audited as `denied.<action>`), and each change calls the same service as the
chat and is followed by the same messages (menus, the person told), so that it is
audited and felt alike. Files (the template, invitation links, an import's report) are
sent to the admin's own chat by the bot: Telegram's in-app browser does not download.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web
from telegram import InputFile
from telegram.error import TelegramError

from handlers.roster_import import MAX_FILE_BYTES, SHOWN_REFUSALS, invitation_file
from models import Role, Status
from services import broadcasts, oxygen, people, roster, roster_import, tables
from services.alerts import respond
from services.care import areas as care_areas
from services.i18n import t
from services.people import name_of
from services.permissions import Action, check, refusal_key, visible_prefectures
from services.postings import load_postings
from services.validation import MAX_ID_DIGITS, parse_int
from webapp import admin_pages, pages

if TYPE_CHECKING:
    from config import Settings
    from services.care.rules import CareConfig
    from services.db import Database
    from webapp.server import Viewer

log = logging.getLogger(__name__)


def query_int(raw: str | None, default: int) -> int:
    """A page number or an id from a form: the one number grammar, else `default`."""
    found = parse_int(raw, max_digits=6 if default else MAX_ID_DIGITS)
    return default if found is None else found


def path_id(request: web.Request) -> int:
    found = parse_int(request.match_info["id"])
    if found is None:  # forged: too long for an id
        raise web.HTTPNotFound()
    return found


class MoreViews:
    """Mixed into BoardServer, which provides these."""

    application: Any
    settings: Settings
    db: Database
    care: CareConfig

    ROUTES = (
        ("GET", "care", "care_view"),
        ("GET", "oxygen", "oxygen_view"),
        ("GET", "people", "people_view"),
        ("GET", "people/{id:\\d+}", "card_view"),
        ("POST", "people/{id:\\d+}/{what:approve|reject|role|area|suspend|reinstate}", "act"),
        ("GET", "roster", "roster_view"),
        ("POST", "roster/add", "roster_add"),
        ("POST", "roster/{id:\\d+}/remove", "roster_remove"),
        ("GET", "import", "import_view"),
        ("POST", "import", "import_file"),
        ("POST", "import/template", "import_template"),
        ("POST", "import/links", "import_links"),
        ("GET", "broadcasts", "broadcasts_view"),
        ("GET", "questions", "questions_view"),
        ("POST", "questions/{id:\\d+}/answer", "answer_question"),
    )

    # --- the gate -------------------------------------------------------------------

    async def gate(self, request: web.Request, viewer: Viewer, action: Action) -> None:
        """The chat's permission for the same thing; a refusal is audited and a 403."""
        denial = check(viewer.person, action)
        if denial is None:
            return
        attempted = f"board:{request.method} {request.path}"[:64]
        await self.db.run(respond.refuse, viewer.person, None, attempted, str(denial), action)
        raise web.HTTPForbidden(
            text=pages.notice(t(viewer.lang, refusal_key(action, denial))), content_type="text/html"
        )

    async def send_file(self, viewer: Viewer, data: bytes, name: str, caption: str) -> str:
        """A file to the viewer's own chat; the flash that says so (or that it failed)."""
        try:
            await self.application.bot.send_document(
                chat_id=viewer.person.telegram_id,
                document=InputFile(data, filename=name),
                caption=caption,
            )
        except TelegramError:
            log.warning("board: could not send %s to %s", name, viewer.person.id, exc_info=True)
            return t(viewer.lang, "board.file_failed")
        return t(viewer.lang, "board.file_sent", name=name)

    # --- overdue care and oxygen (officers and admins) ------------------------------

    async def _visible(self, viewer: Viewer) -> frozenset[str] | None:
        person = viewer.person
        return visible_prefectures(person, await self.db.run(people.duty_areas, person.id))

    async def care_view(self, request: web.Request, viewer: Viewer) -> str:
        await self.gate(request, viewer, Action.VIEW_AREA)
        visible = await self._visible(viewer)
        if visible is not None and not visible:
            return pages.no_area(viewer.lang, "care", viewer.admin)
        chosen = request.query.get("prefecture") or None  # one of the area's prefectures
        if chosen is None or load_postings().prefecture(chosen) is None:
            chosen, shown = None, visible
        elif visible is None or chosen in visible:
            shown = frozenset({chosen})
        else:  # outside the viewer's area: nothing of it
            shown = frozenset()
        summary = await self.db.run(
            care_areas.area_summary, self.care, shown, overdue=True, limit=pages.PAGE_SIZE
        )
        day = people.local_today(self.settings.zone)
        areas = sorted(visible) if visible is not None else None
        return admin_pages.overdue(viewer.lang, day, summary, viewer.admin, areas, chosen)

    async def oxygen_view(self, request: web.Request, viewer: Viewer) -> str:
        await self.gate(request, viewer, Action.HANDLE_OXYGEN)
        visible = await self._visible(viewer)
        zone, lang = self.settings.zone, viewer.lang

        def load(session: Any) -> list[tuple[Any, str, str]]:
            found = oxygen.open_in_area(session, visible, limit=pages.PAGE_SIZE)
            return [
                (
                    r,
                    oxygen.notice_text(session, r, lang, zone, escalated=False),
                    oxygen.status_line(session, r, lang, zone),
                )
                for r in found
            ]

        return admin_pages.oxygen_list(lang, await self.db.run(load), viewer.admin)

    # --- people (admins) ------------------------------------------------------------

    async def people_view(self, request: web.Request, viewer: Viewer) -> str:
        await self.gate(request, viewer, Action.MANAGE_PEOPLE)
        status = request.query.get("status", "all")
        if status not in admin_pages.PEOPLE_FILTERS:
            status = "all"
        prefecture = request.query.get("prefecture") or None
        if prefecture and load_postings().prefecture(prefecture) is None:
            prefecture = None
        page = max(1, query_int(request.query.get("page"), 1))
        name = " ".join(request.query.get("q", "").split())[: pages.SEARCH_MAX]
        if name:  # /people <name>'s search, a page of it
            matches = await self.db.run(people.search_by_name, name, pages.PAGE_SIZE)
            shown = [p for p in matches[: pages.PAGE_SIZE] if p.status != Status.GUEST]
            found = people.PeoplePage(shown, len(shown), 0, 1)
            more = len(matches) > pages.PAGE_SIZE
            return admin_pages.people_list(viewer.lang, found, "all", None, name, more)

        def load(session: Any) -> tuple[Any, dict[str, int]]:
            found = people.list_people(
                session,
                status=None if status == "all" else status,
                prefecture=prefecture,
                page=page - 1,
                page_size=pages.PAGE_SIZE,
            )
            return found, people.status_counts(session, prefecture)

        found, counts = await self.db.run(load)
        return admin_pages.people_list(viewer.lang, found, status, prefecture, counts=counts)

    async def card_view(self, request: web.Request, viewer: Viewer, flash: str = "") -> str:
        from handlers.admin import card_text

        await self.gate(request, viewer, Action.MANAGE_PEOPLE)
        person_id = path_id(request)
        person = await self.db.run(people.get, person_id)
        if person is None or person.status == Status.EXPECTED:
            return pages.notice(t(viewer.lang, "people.not_found"), back="people")
        areas = await self.db.run(people.duty_areas, person_id)
        card = card_text(viewer.lang, person, areas)
        return admin_pages.person_card(viewer.lang, person, card, areas, viewer.person, flash)

    async def act(self, request: web.Request, viewer: Viewer) -> str:
        """The card's buttons: the same services, messages and audit as /people's."""
        from handlers import approvals, menus
        from handlers.admin import tell

        what = request.match_info["what"]
        await self.gate(
            request,
            viewer,
            Action.APPROVE if what in ("approve", "reject") else Action.MANAGE_PEOPLE,
        )
        lang, admin = viewer.lang, viewer.person
        person_id = path_id(request)
        form = await request.post()
        person = await self.db.run(people.get, person_id)
        if person is None or person.status == Status.EXPECTED:
            return pages.notice(t(lang, "people.not_found"), back="people")
        name = name_of(person)
        confirmed = form.get("confirm") == "yes"
        flash = ""
        if what in ("approve", "reject"):
            if person.status != Status.PENDING:
                flash = t(lang, "approve.already_decided")
            elif what == "reject" and not confirmed:
                question = t(lang, "board.people.reject_confirm", name=name)
                return admin_pages.confirm(
                    lang, person, "reject", question, t(lang, "board.people.reject_yes")
                )
            else:
                decided = await self.db.run(people.decide, admin, person_id, what == "approve")
                if decided is None:
                    flash = t(lang, "approve.already_decided")
                else:
                    await approvals.announce_decision(
                        self.application.bot, self.db, admin, decided, self.settings.webapp_url
                    )
                    outcome = "approve.done_yes" if what == "approve" else "approve.done_no"
                    flash = t(lang, outcome, admin=name_of(admin))
        elif what == "role":
            raw = str(form.get("role", ""))
            if raw not in {r.value for r in admin_pages.ROLES}:
                flash = t(lang, "form.stale")
            elif raw == person.role:
                flash = t(lang, "people.no_change")
            else:
                role = Role(raw)
                try:
                    changed = await self.db.run(people.set_role, admin, person_id, role)
                except people.RegistrationError as error:
                    changed, flash = None, t(lang, error.key)
                if changed is not None:
                    await menus.set_person_menu(
                        self.application.bot, changed, self.settings.webapp_url
                    )
                    await tell(
                        self.db,
                        changed,
                        "people.told.role",
                        role=t(changed.language, f"role.{role}"),
                    )
                    flash = t(lang, "people.done.role", role=t(lang, f"role.{role}"))
        elif what == "area":
            prefecture = str(form.get("prefecture", ""))
            if person.role != Role.DUTY_OFFICER:
                flash = t(lang, "people.duty.not_duty_officer")
            elif load_postings().prefecture(prefecture) is None:
                flash = t(lang, "form.stale")
            else:
                areas = await self.db.run(people.toggle_duty_area, admin, person_id, prefecture)
                area = load_postings().name(prefecture, lang, short=True)
                added = areas is not None and prefecture in areas
                flash = t(lang, "people.duty.added" if added else "people.duty.removed", area=area)
        else:  # suspend, reinstate
            suspend = what == "suspend"
            before, target = (
                (Status.ACTIVE, Status.SUSPENDED) if suspend else (Status.SUSPENDED, Status.ACTIVE)
            )
            if person.status != before:
                flash = t(lang, "people.no_change")
            elif suspend and person.id == admin.id:
                flash = t(lang, "people.cannot_suspend_self")
            elif suspend and not confirmed:
                question = t(lang, "board.people.suspend_confirm", name=name)
                return admin_pages.confirm(
                    lang, person, "suspend", question, t(lang, "board.people.suspend_yes")
                )
            else:
                changed = await self.db.run(people.set_status, admin, person_id, target)
                if changed is not None:
                    outcome = "suspended" if suspend else "reinstated"
                    await menus.set_person_menu(
                        self.application.bot, changed, self.settings.webapp_url
                    )
                    await tell(self.db, changed, f"people.told.{outcome}")
                    flash = t(lang, f"people.done.{outcome}", name=name)
        return await self.card_view(request, viewer, flash)

    # --- the weekly duty roster (admins) ---------------------------------------------

    async def roster_view(
        self, request: web.Request, viewer: Viewer, prefecture: str | None = None, flash: str = ""
    ) -> str:
        await self.gate(request, viewer, Action.MANAGE_ROSTER)
        postings = load_postings()
        prefecture = prefecture or request.query.get("prefecture") or ""
        if postings.prefecture(prefecture) is None:
            prefecture = postings.prefectures()[0].code

        def load(session: Any) -> tuple[Any, Any]:
            return roster.shifts_of(session, prefecture), roster.duty_officers(session, prefecture)

        shifts, officers = await self.db.run(load)
        return admin_pages.roster_grid(viewer.lang, prefecture, shifts, officers, flash)

    async def roster_add(self, request: web.Request, viewer: Viewer) -> str:
        await self.gate(request, viewer, Action.MANAGE_ROSTER)
        form = await request.post()
        prefecture = str(form.get("prefecture", ""))
        days = [query_int(str(d), -1) for d in form.getall("day", [])]
        officer = query_int(str(form.get("officer", "")), 0)
        block = str(form.get("block", ""))
        lang = viewer.lang
        if not days:
            flash = t(lang, "sos.roster.pick_a_day")
        else:
            try:
                await self.db.run(
                    roster.add_shifts, viewer.person, officer, prefecture, days, block
                )
                flash = t(lang, "sos.roster.added")
            except roster.RosterError as error:
                flash = t(lang, str(error.args[0]) if error.args else "sos.roster.invalid")
        return await self.roster_view(request, viewer, prefecture, flash)

    async def roster_remove(self, request: web.Request, viewer: Viewer) -> str:
        await self.gate(request, viewer, Action.MANAGE_ROSTER)
        form = await request.post()
        removed = await self.db.run(roster.remove_shift, viewer.person, path_id(request))
        flash = t(viewer.lang, "sos.roster.removed" if removed else "form.stale")
        prefecture = removed.prefecture if removed else str(form.get("prefecture", ""))
        return await self.roster_view(request, viewer, prefecture, flash)

    # --- roster import (admins) ------------------------------------------------------

    async def import_view(self, request: web.Request, viewer: Viewer, flash: str = "") -> str:
        await self.gate(request, viewer, Action.MANAGE_PEOPLE)
        page = max(1, query_int(request.query.get("page"), 1))
        count, waiting = await self.db.run(
            roster_import.not_joined, pages.PAGE_SIZE, (page - 1) * pages.PAGE_SIZE
        )
        return admin_pages.import_view(viewer.lang, count, waiting, page, flash)

    async def import_file(self, request: web.Request, viewer: Viewer) -> str:
        """The same import as a file sent to the bot: the same checks, report and audit."""
        await self.gate(request, viewer, Action.MANAGE_PEOPLE)
        lang = viewer.lang
        name, data = "roster", b""
        try:
            reader = await request.multipart()
            async for part in reader:
                if getattr(part, "name", None) == "file":
                    name = part.filename or name  # type: ignore[union-attr]
                    data = await part.read()  # type: ignore[union-attr]
                    break
        except (ValueError, AssertionError):
            data = b""
        try:
            if not data or len(data) > MAX_FILE_BYTES:
                raise tables.UnreadableFile("no file, or too large")
            rows = await asyncio.to_thread(tables.read_rows, data, name)  # off the loop
        except tables.UnreadableFile:
            return await self.import_view(request, viewer, t(lang, "import.unreadable"))
        result = await self.db.run(roster_import.import_rows, viewer.person, rows, lang)
        if result.problem is not None:
            return await self.import_view(request, viewer, t(lang, result.problem))
        text = roster_import.report_text(lang, result, SHOWN_REFUSALS, self.settings.zone)
        if result.refused:
            sent = await self.send_file(
                viewer,
                roster_import.report_xlsx(result, lang, self.settings.zone),
                "roster-report.xlsx",
                t(lang, "import.report_caption"),
            )
            text += "\n" + sent
        return await self.import_view(request, viewer, text)

    async def import_template(self, request: web.Request, viewer: Viewer) -> str:
        await self.gate(request, viewer, Action.MANAGE_PEOPLE)
        lang = viewer.lang
        flash = await self.send_file(
            viewer,
            roster_import.template_xlsx(lang),
            "roster-template.xlsx",
            t(lang, "import.template_caption"),
        )
        return await self.import_view(request, viewer, flash)

    async def import_links(self, request: web.Request, viewer: Viewer) -> str:
        await self.gate(request, viewer, Action.MANAGE_PEOPLE)
        form = await request.post()
        kind = "csv" if form.get("format") == "csv" else "xlsx"
        data, count = await invitation_file(self.db, self.application.bot, viewer.person, kind)
        lang = viewer.lang
        if not count:
            return await self.import_view(request, viewer, t(lang, "import.links.none"))
        flash = await self.send_file(
            viewer, data, f"invitation-links.{kind}", t(lang, "import.links.caption", count=count)
        )
        return await self.import_view(request, viewer, flash)

    # --- broadcasts and questions (admins) -------------------------------------------

    async def broadcasts_view(self, request: web.Request, viewer: Viewer) -> str:
        await self.gate(request, viewer, Action.BROADCAST)
        lang = viewer.lang

        def load(session: Any) -> list[tuple[Any, str]]:
            return [(b, broadcasts.report_text(lang, b, s)) for b, s in broadcasts.recent(session)]

        reports = await self.db.run(load)
        return admin_pages.broadcast_reports(lang, reports, self.settings.zone)

    async def questions_view(self, request: web.Request, viewer: Viewer, flash: str = "") -> str:
        from services.kb import handoffs

        await self.gate(request, viewer, Action.MANAGE_KB)
        lang = viewer.lang

        def load(session: Any) -> list[tuple[Any, str]]:
            found = handoffs.open_handoffs(session, limit=pages.PAGE_SIZE)
            asked = handoffs.askers(session, found)
            return [(h, handoffs.admin_text(lang, h, asked.get(h.person_id))) for h in found]

        items = await self.db.run(load)
        return admin_pages.handoff_list(lang, items, self.settings.zone, flash)

    async def answer_question(self, request: web.Request, viewer: Viewer) -> str:
        from services.kb import handoffs

        await self.gate(request, viewer, Action.MANAGE_KB)
        form = await request.post()
        text = str(form.get("answer", "")).strip()
        lang = viewer.lang
        if not text:
            flash = t(lang, "kb.handoff.empty_reply")
        else:
            sent = await self.db.run(handoffs.reply, path_id(request), viewer.person, text)
            if sent is None:
                flash = t(lang, "kb.handoff.gone")
            else:
                flash = t(lang, "board.questions.sent", name=name_of(sent[1]))
        return await self.questions_view(request, viewer, flash)
