"""The board's officers' care and oxygen views and the admins' views, over HTTP on the bot's
own board server, with what people are told seen through the emulator: the same services,
messages and audit as the chat's /people, /roster, /import, /broadcasts and handoffs."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import aiohttp
from openpyxl import load_workbook
from sqlmodel import select

from models import AuditEntry, DutyShift, Invitation, KbHandoff, Person, Role, Status
from services import broadcasts, clock, oxygen, people, roster_import, tables
from services.kb import handoffs, questions
from services.kb.answering import Outcome, Result
from services.oxygen import OxygenConfig
from tests.services.test_roster_import import BAD, GOOD, xlsx
from tests.support import factories
from tests.support.flows import begin_in_english
from tests.support.sos_support import ABA, CADRE, ON_DUTY, emergency_running, staff
from tests.webapp import test_board
from webapp import auth

TOKEN = test_board.TOKEN
board = test_board.board  # the board's fixtures: its server on a free port, a client
settings = test_board.settings


def actions(db, prefix: str) -> list[AuditEntry]:
    with db.session() as s:
        found = s.exec(select(AuditEntry).where(AuditEntry.action.startswith(prefix)))  # type: ignore[attr-defined]
        return list(found)


def english_admin(bot):
    factories.admin(bot.db)
    bot.db.call(people.set_language, factories.ADMIN_ID, "en")
    return bot.admin(language_code="en")  # their chat exists: files can be sent to it


async def upload(board, name: str, data: bytes, telegram_id: int) -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    headers = {"Authorization": "tma " + auth.sign(TOKEN, telegram_id)}
    async with board.session.post(board.base + "api/import", data=form, headers=headers) as r:
        return r.status, await r.text()


# ---------------------------------------------------------------------------- officers


async def test_officers_see_overdue_care_and_open_oxygen_requests_of_their_area_only(bot, board):
    people_ = staff(bot.db)
    today = clock.now().astimezone(bot.settings.zone).date()
    start = (today - timedelta(days=20)).isoformat()  # the first exam is 6 days overdue
    factories.person(bot.db, 1101, real_name="Ganzi Overdue", assignment_start=start,
                     assignment_end="2030-01-01")  # fmt: skip
    factories.person(bot.db, 1102, real_name="Aba Overdue", prefecture="aba",
                     county="aba.barkam", posting_altitude_m=3600, assignment_start=start,
                     assignment_end="2030-01-01")  # fmt: skip
    config = OxygenConfig.from_settings(bot.settings)
    bot.db.call(oxygen.create_request, people_["cadre"].id, "cylinder", "Litang office",
                "urgent", config)  # fmt: skip
    status, body = await board.get("care", ON_DUTY)
    assert status == 200 and "Ganzi Overdue" in body and "Aba Overdue" not in body
    assert 'data-view="person/' in body and 'data-view="people"' not in body  # no admin tabs
    status, body = await board.get("care", ABA)
    assert "Aba Overdue" in body and "Ganzi Overdue" not in body
    status, body = await board.get("oxygen", ON_DUTY)
    assert status == 200 and "Li Wei" in body and "Litang office" in body
    status, body = await board.get("oxygen", ABA)
    assert "Li Wei" not in body and "暂无待处理的供氧申请" in body
    # The admins' views are refused to an officer, and the attempt audited as in the chat.
    for view in ("people", "roster", "import", "broadcasts", "questions"):
        status, body = await board.get(view, ON_DUTY)
        assert status == 403, view
    refused = actions(bot.db, "denied.manage_people")
    assert refused and refused[-1].target_person_id == people_["on"].id
    # The admin sees both areas, and the admins' tabs.
    status, body = await board.get("care", factories.ADMIN_ID)
    assert "Ganzi Overdue" in body and "Aba Overdue" in body and 'data-view="people"' in body
    status, body = await board.get("care?prefecture=aba", factories.ADMIN_ID)  # a chip
    assert "Aba Overdue" in body and "Ganzi Overdue" not in body
    assert 'class="chip on" data-view="care?prefecture=aba"' in body
    status, body = await board.get("care?prefecture=aba", ON_DUTY)  # not the Ganzi officer's
    assert status == 200 and "Aba Overdue" not in body and "Ganzi Overdue" not in body


# ---------------------------------------------------------------------------- people


async def test_an_admin_approves_rejects_and_suspends_after_confirming(bot, board):
    people_ = staff(bot.db)
    english_admin(bot)
    pending = factories.person(bot.db, 3001, approve=False, real_name="New Comer", language="en")
    refused = factories.person(bot.db, 3002, approve=False, real_name="Not Him", language="en")
    newcomer, cadre = bot.user(3001, "New"), bot.user(CADRE, "Li")
    admin_id = factories.ADMIN_ID
    async with emergency_running(bot):
        status, body = await board.get("people?status=pending", admin_id)
        assert status == 200 and "New Comer" in body and "Li Wei" not in body
        assert "Pending <b>2</b>" in body and "Everyone <b>7</b>" in body  # counted
        status, body = await board.get(f"people/{pending.id}", admin_id)
        assert f"people/{pending.id}/approve" in body and "Home unit" in body
        status, body = await board.post(f"people/{pending.id}/approve", admin_id)
        assert "Approved by" in body
        await newcomer.wait_for("approved")
        # Rejecting asks first; nothing changes until confirmed.
        status, body = await board.post(f"people/{refused.id}/reject", admin_id)
        assert "Reject the registration of Not Him?" in body and 'value="yes"' in body
        assert bot.db.call(people.get, refused.id).status == Status.PENDING
        await board.post(f"people/{refused.id}/reject", admin_id, confirm="yes")
        assert bot.db.call(people.get, refused.id).status == Status.REJECTED
        # Suspending asks first and says that they keep 🆘; they keep the 🆘 button.
        cid = people_["cadre"].id
        status, body = await board.post(f"people/{cid}/suspend", admin_id)
        assert "Suspend the account of Li Wei?" in body and "they keep 🆘" in body
        assert bot.db.call(people.get, cid).status == Status.ACTIVE
        status, body = await board.post(f"people/{cid}/suspend", admin_id, confirm="yes")
        assert "Li Wei is suspended" in body and f"people/{cid}/reinstate" in body
        told = await cadre.wait_for("suspended your account")
        assert told.reply_markup["keyboard"] == [[{"text": "🆘 SOS"}]]
        # A role and a duty area: the same services, and the board's menu button follows.
        bot.user(3001)
        status, body = await board.post(f"people/{pending.id}/role", admin_id, role="duty_officer")
        assert "duty officer" in body and f"people/{pending.id}/area" in body
        assert bot.user(3001).menu_button["type"] == "web_app"
        await board.post(f"people/{pending.id}/area", admin_id, prefecture="aba")
        assert bot.db.call(people.duty_areas, pending.id) == ["aba", "ganzi"]
    done = [e.action for e in actions(bot.db, "")]
    for action in ("registration.approved", "registration.rejected", "person.suspended",
                   "person.role", "person.duty_area"):  # fmt: skip
        assert action in done, action
    # A forged id is not found (never an error page), a forged role changes nothing.
    assert (await board.get("people/99999999999999999999", admin_id))[0] == 404
    status, body = await board.post(f"people/{pending.id}/role", admin_id, role="god")
    assert bot.db.call(people.get, pending.id).role == Role.DUTY_OFFICER


async def test_an_admin_finds_people_by_a_part_of_their_name(bot, board):
    """Tens of thousands of people do not fit a phone: the people list searches names as
    /people <name> does (expected people, who have not joined, left out)."""
    staff(bot.db)
    english_admin(bot)
    for n in range(3):
        factories.person(bot.db, 3100 + n, real_name=f"Wang Fang {n}")
    factories.person(bot.db, 3200, real_name="Wangxi Other", prefecture="aba", county="aba.barkam")
    _, body = await board.get("people?q=++wang++FANG", factories.ADMIN_ID)
    assert "People (3)" in body and "Wang Fang 2" in body and "Wangxi" not in body
    assert "Li Wei" not in body and 'value="wang FANG"' in body
    _, body = await board.get("people?q=%25", factories.ADMIN_ID)  # a wildcard finds no one
    assert "People (0)" in body
    for n in range(55):
        factories.person(bot.db, 4000 + n, real_name=f"Zhang {n:02d}")
    _, body = await board.get("people?q=zhang", factories.ADMIN_ID)
    assert "People (50)" in body and "type more of it" in body
    assert (await board.get("people?q=zhang", ON_DUTY))[0] == 403  # admins only, as /people


# ---------------------------------------------------------------------------- roster


async def test_the_weekly_roster_is_a_grid_where_an_admin_adds_and_removes_shifts(bot, board):
    people_ = staff(bot.db)
    english_admin(bot)
    admin_id = factories.ADMIN_ID
    status, body = await board.get("roster?prefecture=ganzi", admin_id)
    assert status == 200 and "<table>" in body and "Mon" in body and "Sun" in body
    assert "Zhang On" not in body.split("<table>")[1].split("</table>")[0]
    status, body = await board.post(
        "roster/add", admin_id, prefecture="ganzi", officer=str(people_["on"].id), day="0",
        block="night",
    )  # fmt: skip
    assert "Shift added" in body
    grid = body.split("<table>")[1].split("</table>")[0]
    assert grid.count("Zhang On") == 1 and "20:00–08:00" in body
    with bot.db.session() as s:
        shift = s.exec(select(DutyShift)).one()
    assert shift.weekday == 0 and shift.start_minute == 20 * 60
    # An Aba officer cannot be given a Ganzi shift (the chat's rule).
    status, body = await board.post(
        "roster/add", admin_id, prefecture="ganzi", officer=str(people_["aba"].id), day="1",
        block="day",
    )  # fmt: skip
    assert "not a duty officer of that area" in body
    status, body = await board.post(f"roster/{shift.id}/remove", admin_id, prefecture="ganzi")
    assert "Shift removed" in body and "Zhang On" not in body.split("</table>")[0]
    assert [e.action for e in actions(bot.db, "roster.")] == ["roster.added", "roster.removed"]


# ---------------------------------------------------------------------------- import


async def test_a_roster_is_imported_on_the_board_with_the_chats_report(bot, board):
    admin = english_admin(bot)
    factories.person(bot.db, 1001)  # registered with +8613800138000
    status, body = await upload(board, "cohort.xlsx", xlsx(GOOD + BAD), factories.ADMIN_ID)
    assert status == 200 and "14 rows read: 3 accepted (expected), 11 refused." in body
    assert "Row 5: name missing or invalid" in body and "Row 15: someone with this phone" in body
    report = await admin.wait_for(lambda m: m.document is not None)
    assert report.document.file_name == "roster-report.xlsx"
    sheet = load_workbook(io.BytesIO(admin.files[-1].data)).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == list(range(5, 16))
    assert "Not joined yet: 3" in body and "Chen Jing" in body
    assert actions(bot.db, "roster.imported")
    # A file that is not a spreadsheet is refused politely, and changes nothing.
    status, body = await upload(board, "notes.txt", b"hello", factories.ADMIN_ID)
    assert "This file cannot be read" in body and "Not joined yet: 3" in body
    # The template comes to the chat.
    status, body = await board.post("import/template", factories.ADMIN_ID)
    assert "roster-template.xlsx has been sent" in body
    template = await admin.wait_for(lambda m: m.document is not None)
    assert template.document.file_name == "roster-template.xlsx"


async def test_personal_invitation_links_one_per_expected_person_on_the_board_and_in_chat(
    bot, board
):
    admin = english_admin(bot)
    bot.db.call(roster_import.import_rows, bot.db.call(people.find, factories.ADMIN_ID),
                tables.read_rows(xlsx(GOOD), "c.xlsx"), "en")  # fmt: skip
    _, body = await board.post("import/links", factories.ADMIN_ID, format="csv")
    assert "invitation-links.csv has been sent" in body
    await admin.wait_for(lambda m: m.document is not None)
    rows = list(csv.reader(io.StringIO(admin.files[-1].data.decode("utf-8-sig"))))
    assert rows[0] == ["name", "phone", "prefecture", "county", "cohort", "link"]
    assert [r[0] for r in rows[1:]] == ["Chen Jing", "Liu Yang", "He Ping"]
    assert rows[1][4] == "2026-spring"
    links = [r[5] for r in rows[1:]]
    assert all(link.startswith(f"https://t.me/{bot.app.bot.username}?start=") for link in links)
    assert len(set(links)) == 3
    # In the chat: /import lists who has not joined, and the same links come as XLSX.
    await admin.send("/import")
    waiting = await admin.wait_for("Not joined yet (3)")
    assert "Chen Jing" in waiting.text and "He Ping" in waiting.text
    await admin.press("imp:links:xlsx", message=waiting)
    await admin.wait_for(lambda m: m.document is not None and "links" in m.document.file_name)
    sheet = load_workbook(io.BytesIO(admin.files[-1].data)).active
    again = [row[5] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert again == links  # the same link each time: one per person
    with bot.db.session() as s:
        assert len(s.exec(select(Invitation)).all()) == 3
    assert len(actions(bot.db, "roster.links_exported")) == 2


async def test_a_personal_link_joins_the_expected_person_without_approval(bot):
    admin = factories.admin(bot.db)
    bot.db.call(roster_import.import_rows, admin, tables.read_rows(xlsx(GOOD[:1]), "c.xlsx"),
                "en")  # fmt: skip
    _, rows = bot.db.call(roster_import.invitation_links, admin, lambda code: code, "en")
    code = rows[0][5]
    user = bot.emulator.user(7101, "Chen", language_code="en")
    await begin_in_english(user, payload=code)
    await user.send("Chen Jing")
    await user.wait_for("phone number")
    await user.send("13800000777")  # a new number: the link, not the phone, says who they are
    await user.wait_for("emergency contact")  # home unit, posting and dates not asked
    await user.send("Wang Fang")
    await user.wait_for("emergency contact's phone")
    await user.send("13900139000")
    summary = await user.wait_for("check your details")
    assert "Hangzhou CDC" in summary.text and "2027-03-01" in summary.text
    await user.press("f:ok:submit")
    await user.wait_for("You are registered, welcome")
    with bot.db.session() as s:
        person = s.exec(select(Person).where(Person.telegram_id == 7101)).one()
        assert person.status == Status.ACTIVE and person.county == "ganzi.litang"
        assert not s.exec(select(Person).where(Person.status == Status.EXPECTED)).all()
        link = s.exec(select(Invitation).where(Invitation.code == code)).one()
        assert link.uses == 1 and person.invitation_id == link.id
    approved = actions(bot.db, "registration.approved")
    assert [e.detail.get("via") for e in approved if e.target_person_id == person.id] == [
        "roster_link"
    ]
    # The link is used up: someone else pressing it goes the ordinary way.
    assert bot.db.call(roster_import.expected_by_invitation, code) is None


# ---------------------------------------------------------------------------- reports, questions


async def test_broadcast_reports_and_handed_over_questions_answered_on_the_board(bot, board):
    people_ = staff(bot.db)
    admin = bot.db.call(people.find, factories.ADMIN_ID)
    draft = broadcasts.Draft(kind="text", texts={"zh-Hans": "通知", "en": "Notice"})
    sent = bot.db.call(broadcasts.create, admin, factories.ADMIN_ID, draft)
    status, body = await board.get("broadcasts", factories.ADMIN_ID)
    assert status == 200 and f"#{sent.id}" in body
    row = bot.db.call(questions.log, people_["cadre"].id, "en", "Where is the canteen?",
                      Result(Outcome.NOT_SURE))  # fmt: skip
    handoff, _ = bot.db.call(handoffs.open_handoff, row.id, people_["cadre"])
    cadre = bot.user(CADRE, "Li")
    status, body = await board.get("questions", factories.ADMIN_ID)
    assert "Where is the canteen?" in body and f"questions/{handoff.id}/answer" in body
    async with emergency_running(bot):
        status, body = await board.post(
            f"questions/{handoff.id}/answer", factories.ADMIN_ID, answer="Next to the gate."
        )
        assert "已发送给 Li Wei" in body and "Where is the canteen?" not in body
        told = await cadre.wait_for("Next to the gate.")
        assert "canteen" in told.text
    with bot.db.session() as s:
        assert s.get(KbHandoff, handoff.id).status == "answered"
    assert actions(bot.db, "knowledge.handoff.answered")
