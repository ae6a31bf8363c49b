"""Roster import: a spreadsheet becomes expected people, who join with their own phone."""

from __future__ import annotations

import io
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook, load_workbook
from sqlmodel import select

from models import AuditEntry, Person, PersonTag, Status
from services import people, roster_import, tables
from tests.support import factories
from tests.support.flows import begin_in_english

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the example dates of a refusal are local ones

HEADER = ["姓名 name", "手机 phone", "派出单位 home unit", "州 prefecture", "县 county",
          "开始 start", "结束 end", "批次 cohort"]  # fmt: skip


def xlsx(rows: list[list]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


GOOD = [
    ["Chen Jing", "13800000001", "Hangzhou CDC", "ganzi", "ganzi.litang",
     date(2026, 3, 1), date(2027, 3, 1), "2026-spring"],
    ["Liu Yang", 13800000002.0, "Ningbo", "甘孜州", "康定市", "2026-09-01", "2027/09/01", ""],
    ["He Ping", "+86 138 0000 0003", "Wenzhou", "Aba", "Barkam", "2026-09-01", "2027-09-01", None],
]  # fmt: skip
BAD = [
    ["", "13800000010", "Unit", "ganzi", "ganzi.litang", "2026-03-01", "2027-03-01", ""],
    ["Bad Phone", "12345", "Unit", "ganzi", "ganzi.litang", "2026-03-01", "2027-03-01", ""],
    ["No Unit", "13800000011", "", "ganzi", "ganzi.litang", "2026-03-01", "2027-03-01", ""],
    ["Bad Pref", "13800000012", "Unit", "Tibet", "x", "2026-03-01", "2027-03-01", ""],
    ["Bad County", "13800000013", "Unit", "ganzi", "aba.barkam", "2026-03-01", "2027-03-01", ""],
    ["Bad Start", "13800000014", "Unit", "ganzi", "ganzi.litang", "soon", "2027-03-01", ""],
    ["Bad End", "13800000015", "Unit", "ganzi", "ganzi.litang", "2026-03-01", "2027-02-30", ""],
    ["Backwards", "13800000016", "Unit", "ganzi", "ganzi.litang", "2027-03-01", "2026-03-01", ""],
    ["Bad Tag", "13800000017", "Unit", "ganzi", "ganzi.litang", "2026-03-01", "2027-03-01", "@x"],
    ["Twin", "13800000001", "Unit", "ganzi", "ganzi.litang", "2026-03-01", "2027-03-01", ""],
    ["Known", "13800138000", "Unit", "ganzi", "ganzi.litang", "2026-03-01", "2027-03-01", ""],
]  # fmt: skip
REASONS = ["name", "phone", "unit", "prefecture", "county", "start", "end", "dates", "cohort",
           "duplicate", "registered"]  # fmt: skip


def test_good_rows_become_expected_people_and_each_bad_row_is_refused_with_its_reason(db):
    factories.person(db, 1001)  # registered with +8613800138000
    admin = factories.admin(db)
    rows = tables.read_rows(xlsx(GOOD + BAD), "cohort.xlsx")
    result = db.call(roster_import.import_rows, admin, rows, "zh-Hans")
    assert result.rows == 14 and result.accepted == 3
    assert [r.row for r in result.refused] == list(range(5, 16))
    assert [r.reason.removeprefix("import.reason.") for r in result.refused] == REASONS
    assert result.refused[9].text("en", SHANGHAI) == "same phone as row 2"
    with db.session() as s:
        expected = s.exec(select(Person).where(Person.status == Status.EXPECTED)).all()
        tags = s.exec(select(PersonTag)).all()
        audit = s.exec(select(AuditEntry).where(AuditEntry.action == "roster.imported")).one()
    by_name = {p.real_name: p for p in expected}
    assert set(by_name) == {"Chen Jing", "Liu Yang", "He Ping"}
    assert by_name["Liu Yang"].phone == "+8613800000002" and by_name["Liu Yang"].county == (
        "ganzi.kangding"
    )
    assert by_name["He Ping"].county == "aba.barkam" and by_name["He Ping"].telegram_id is None
    assert by_name["Chen Jing"].posting_altitude_m == 4014
    assert by_name["Chen Jing"].assignment_end == date(2027, 3, 1)
    assert [(t.person_id, t.tag) for t in tags] == [(by_name["Chen Jing"].id, "2026-spring")]
    assert audit.detail["accepted"] == 3 and audit.detail["refused"] == 11
    # The same file again: every good row is now "already expected".
    again = db.call(roster_import.import_rows, admin, rows, "zh-Hans")
    assert again.accepted == 0
    assert [r.reason for r in again.refused[:3]] == ["import.reason.expected"] * 3


def test_the_report_lists_each_refused_row_and_guards_against_formulas(db):
    admin = factories.admin(db)
    rows = tables.read_rows(xlsx(BAD), "x.xlsx")
    result = db.call(roster_import.import_rows, admin, rows, "en")
    sheet = load_workbook(io.BytesIO(roster_import.report_xlsx(result, "en", SHANGHAI))).active
    lines = list(sheet.iter_rows(values_only=True))
    assert lines[0][0] == "row" and lines[0][-1] == "reason"
    assert [line[0] for line in lines[1:]] == [r.row for r in result.refused]
    assert lines[4][-1] == "unknown prefecture: Tibet"
    assert lines[9][8] == "'@x"  # never a formula


def test_csv_files_and_a_wrong_header_or_an_empty_file(db):
    admin = factories.admin(db)
    text = (
        "name,phone,home_unit,prefecture,county,assignment_start,assignment_end\n"
        "Wu Lan,13800000021,Unit,liangshan,xichang,2026-01-01,2027-01-01\n"
    )
    rows = tables.read_rows(text.encode("gb18030"), "r.CSV")
    result = db.call(roster_import.import_rows, admin, rows, "en")
    assert result.accepted == 1 and not result.refused
    assert db.call(roster_import.import_rows, admin, [["who", "what"]], "en").problem == (
        "import.bad_header"
    )
    assert db.call(roster_import.import_rows, admin, [], "en").problem == "import.empty"
    with pytest.raises(tables.UnreadableFile):
        tables.read_rows(b"not a workbook", "r.xlsx")


def test_the_template_is_accepted_as_it_is(db):
    admin = factories.admin(db)
    rows = tables.read_rows(roster_import.template_xlsx("en"), "roster-template.xlsx")
    result = db.call(roster_import.import_rows, admin, rows, "en")
    assert result.accepted == 1 and not result.refused


# ---------------------------------------------------------------------------- through the bot


@pytest.mark.asyncio
async def test_an_admin_sends_a_roster_and_gets_the_report_and_the_template(bot):
    factories.admin(bot.db)
    bot.db.call(people.set_language, factories.ADMIN_ID, "en")
    admin = bot.admin(language_code="en")
    await admin.send("/import")
    await admin.wait_for("Roster import")
    template = await admin.wait_for(lambda m: m.document is not None)
    assert template.document.file_name == "roster-template.xlsx"
    await admin.send_document("cohort.xlsx", xlsx(GOOD + BAD[:2]))
    await admin.wait_for("Checking cohort.xlsx")
    report = await admin.wait_for("rows read")
    assert "5 rows read: 3 accepted (expected), 2 refused." in report.text
    assert "Row 5: name missing or invalid" in report.text
    assert "Row 6: invalid phone number" in report.text
    attached = await admin.wait_for(lambda m: m.document is not None)
    assert attached.document.file_name == "roster-report.xlsx"


@pytest.mark.asyncio
async def test_a_cadre_cannot_import(bot):
    factories.person(bot.db, 1001)
    cadre = bot.user(1001, "Li", language_code="en")
    await cadre.send_document("cohort.xlsx", xlsx(GOOD))
    await cadre.wait_for(lambda m: m.text and "Checking" not in m.text)
    with bot.db.session() as s:
        assert not s.exec(select(Person).where(Person.status == Status.EXPECTED)).all()


async def _import(bot, rows) -> None:
    admin = factories.admin(bot.db)
    bot.db.call(roster_import.import_rows, admin, tables.read_rows(xlsx(rows), "c.xlsx"), "en")


async def _finish(user) -> None:
    """From the emergency contact question to the submitted summary."""
    await user.wait_for("emergency contact")
    await user.send("Wang Fang")
    await user.wait_for("emergency contact's phone")
    await user.send("13900139000")
    summary = await user.wait_for("check your details")
    return summary


@pytest.mark.asyncio
async def test_an_expected_person_shares_the_matching_phone_and_is_active_after_consent(bot):
    await _import(bot, GOOD[:1])
    user = bot.emulator.user(7001, "Chen", language_code="en", phone_number="+8613800000001")
    await begin_in_english(user)  # /start, language, consent: never imported
    await user.send("Chen Jing")
    await user.wait_for("phone number")
    await user.share_contact()
    await user.wait_for("You are on the roster")
    summary = await _finish(user)
    assert "Hangzhou CDC" in summary.text and "2027-03-01" in summary.text
    await user.press("f:ok:submit")
    await user.wait_for("You are registered, welcome")
    with bot.db.session() as s:
        person = s.exec(select(Person).where(Person.telegram_id == 7001)).one()
        assert person.status == Status.ACTIVE and person.county == "ganzi.litang"
        assert not s.exec(select(Person).where(Person.status == Status.EXPECTED)).all()
        tags = s.exec(select(PersonTag).where(PersonTag.person_id == person.id)).all()
        assert [t.tag for t in tags] == ["2026-spring"]
        approved = s.exec(
            select(AuditEntry).where(AuditEntry.action == "registration.approved")
        ).all()
    assert any(e.target_person_id == person.id for e in approved)
    consents = bot.db.call(people.export_own_data, 7001)
    assert consents is not None


@pytest.mark.asyncio
async def test_a_non_matching_phone_goes_to_approval_as_today(bot):
    await _import(bot, GOOD[:1])
    user = bot.emulator.user(7002, "Other", language_code="en", phone_number="+8613800009999")
    await begin_in_english(user)
    await user.send("Other Person")
    await user.wait_for("phone number")
    await user.share_contact()
    await user.wait_for("home unit")  # nothing pre-filled: the whole form
    with bot.db.session() as s:
        assert len(s.exec(select(Person).where(Person.status == Status.EXPECTED)).all()) == 1
