"""Registration through the emulator, as a cadre on a phone would do it."""

from __future__ import annotations

import pytest
from sqlmodel import select

from models import AuditEntry, Consent, EmergencyContact, Person, Status
from services import people
from tests.support import factories
from tests.support.flows import begin_in_english

ZH = "zh-hans"


async def answer_until_summary(
    user, *, lang: str = "zh-Hans", county: str = "理塘县", unit: str = "杭州市卫健委"
):
    """Walk the form with valid answers; returns the summary message."""
    await user.send("/start")
    await user.wait_for("choose your language")
    await user.press("中文" if lang == "zh-Hans" else "English")
    await user.wait_for("f:consent:yes" if False else (lambda m: bool(m.inline_keyboard)))
    await user.press("f:consent:yes")
    await user.wait_for("姓名" if lang == "zh-Hans" else "real name")
    await user.send("王小明" if lang == "zh-Hans" else "Li Wei")
    await user.next_message()
    await user.press_reply_button("📱 分享我的手机号")
    await user.next_message()
    await user.send(unit)
    await user.next_message()
    await user.press("f:pref:ganzi")
    await user.next_message()
    await user.press(county)
    return user


async def finish_after_altitude(user):
    await user.next_message()
    await user.press("f:start:today")
    await user.next_message()
    await user.press("f:end:2")
    await user.next_message()
    await user.send("王芳")
    await user.next_message()
    await user.send("13900139000")
    return await user.next_message()


async def test_a_cadre_registers_in_chinese_and_an_admin_approves(bot):
    admin = bot.admin()
    user = bot.user(1001, "小明", phone_number="+8613800138000")
    await answer_until_summary(user)
    seat = await user.next_message()
    assert "4014" in seat.text and "高城镇" in seat.text
    await user.press("f:alt:seat")
    summary = await finish_after_altitude(user)
    for expected in ("王小明", "+8613800138000", "理塘县", "4014 米", "王芳"):
        assert expected in summary.text
    await user.press("f:ok:submit")
    await user.wait_for("管理员审核")

    request = await admin.wait_for("新的注册申请")
    assert "王小明" in request.text and "4014" in request.text
    await admin.press("✅ 批准")
    await admin.wait_edit(request, "已由")
    welcome = await user.wait_for("已获批准")
    assert "/help" in welcome.text
    menu = [c["command"] for c in user.commands()]
    assert {"me", "mydata", "deleteme", "help"} <= set(menu)
    assert "people" not in menu
    assert any("我的资料" == c["description"] for c in user.commands())

    person = bot.db.call(people.find, 1001)
    assert person.status == Status.ACTIVE and person.posting_altitude_m == 4014
    assert person.altitude_source == "county"


async def test_an_english_speaker_posted_where_no_elevation_is_known_types_it(bot):
    user = bot.user(1002, "Wei", language_code="en-GB")
    await user.send("/start")
    first = await user.wait_for("choose your language")
    assert "Please choose your language" in first.text
    await user.press("English")
    consent = await user.next_message()
    assert "/deleteme" in consent.text  # one screen; the whole text one tap away
    await user.press("📄 Full text", message=consent)
    full = await user.next_message()
    assert "PIPL" in full.text and "retention period" in full.text
    await user.press("✅ I have read this and agree", message=consent)
    await user.next_message()
    await user.send("Li Wei")
    await user.next_message()
    await user.send("13800138000")
    await user.next_message()
    await user.send("Hangzhou Health & Family Commission")
    await user.next_message()
    await user.press("f:pref:ganzi")
    await user.next_message()
    await user.press("Xinlong")
    question = await user.next_message()
    assert "no reliable altitude" in question.text
    assert "f:alt:seat" not in str(question.reply_markup)
    await user.send("3650")
    summary = await finish_after_altitude(user)
    assert "3650 m" in summary.text
    assert "Health &amp; Family" in summary.raw_text
    await user.press("✅ Submit")
    await user.wait_for("administrator has approved")
    person = bot.db.call(people.find, 1002)
    assert (person.language, person.posting_altitude_m, person.altitude_source) == (
        "en",
        3650,
        "self",
    )
    with bot.db.session() as s:
        assert s.exec(select(Consent)).one().language == "en"


async def test_zhejiang_training_postings_skip_the_altitude_question(bot):
    user = bot.user(1003, "Tashi")
    await answer_until_summary(user)  # picks Ganzi first...
    await user.next_message()
    await user.send("/cancel")
    await user.wait_for("已取消")
    await user.send("/start")
    await user.wait_for("choose your language")
    await user.press("中文")
    await user.next_message()
    await user.press("f:consent:yes")
    await user.next_message()
    await user.send("扎西")
    await user.next_message()
    await user.send("13800138001")
    await user.next_message()
    await user.send("甘孜州人民医院")
    await user.next_message()
    await user.press("f:pref:zhejiang")
    await user.next_message()
    await user.press("f:cty:zhejiang.hangzhou")
    question = await user.next_message()
    assert "开始日期" in question.text


BAD_TEXT = ["", "x" * 5000, "<b>&", "😀😀😀"]


@pytest.mark.parametrize("bad", BAD_TEXT, ids=["empty", "5000", "html", "emoji"])
async def test_bad_input_at_every_typed_step_is_refused_politely(bot, bad):
    user = bot.user(1004, "Bad", language_code="en")
    await user.send("/start")
    await user.wait_for("choose your language")
    await user.press("English")
    await user.next_message()
    await user.press("f:consent:yes")
    steps = [
        ("real name", "Li Wei"),
        ("phone number", "13800138000"),
        ("home unit", "Hangzhou Health Commission"),
    ]
    await user.next_message()
    for prompt, good in steps:
        await user.send(bad or " ")
        refusal = await user.next_message()
        assert refusal.text and "Traceback" not in refusal.text
        again = await user.next_message()
        assert prompt in again.text
        await user.send(good)
        await user.next_message()
    await user.press("f:pref:aba")
    await user.next_message()
    await user.press("f:cty:aba.mao")
    await user.next_message()
    await user.send(bad or " ")
    refusal = (await user.next_message()).text
    assert "whole number of metres" in refusal or "empty" in refusal
    await user.next_message()
    await user.send("2600")
    await user.next_message()
    await user.send(bad or " ")
    refusal = (await user.next_message()).text
    assert "year-month-day" in refusal or "empty" in refusal
    assert "When did your assignment start?" in (await user.next_message()).text
    assert bot.db.call(people.find, 1004) is None


async def test_a_phone_number_of_letters_and_a_county_that_does_not_exist(bot):
    user = bot.user(1005, "Bad", language_code="en")
    await begin_in_english(user)
    await user.send("Li Wei")
    await user.next_message()
    await user.send("one three eight")
    assert "not a valid phone number" in (await user.next_message()).text
    await user.next_message()
    await user.send("13800138000")
    await user.next_message()
    await user.send("Hangzhou Health Commission")
    await user.next_message()
    await user.press("f:pref:ganzi")
    await user.next_message()
    await user.press_forged("f:cty:ganzi.atlantis")  # no such county
    assert "does not exist" in (await user.next_message()).text
    await user.press_forged("f:cty:aba.barkam")  # a real county of another prefecture
    assert "does not exist" in (await user.wait_for("does not exist")).text
    with bot.db.session() as s:
        assert s.exec(select(Person)).all() == [] or all(
            p.telegram_id != 1005 for p in s.exec(select(Person))
        )


async def test_someone_elses_contact_is_not_accepted_as_ones_own_phone(bot):
    user = bot.user(1006, "Bad", language_code="en")
    await begin_in_english(user)
    await user.send("Li Wei")
    await user.next_message()
    await user.share_contact("+8613900139000", user_id=4242, first_name="Other")
    assert "your own number" in (await user.next_message()).text


async def test_declining_consent_stores_nothing(bot):
    user = bot.user(1007, "No", language_code="en")
    await user.send("/start")
    await user.wait_for("choose your language")
    await user.press("English")
    await user.next_message()
    await user.press("I do not agree")
    assert "nothing has been stored" in (await user.next_message()).text
    assert bot.db.call(people.find, 1007) is None
    await user.send("/me")
    assert "not registered" in (await user.next_message()).text


async def test_a_restart_mid_registration_loses_nothing(bot):
    user = bot.user(1008, "Restart", language_code="en")
    await begin_in_english(user)
    await user.send("Li Wei")
    await user.next_message()
    await user.send("13800138000")
    await user.next_message()
    await bot.restart()
    await user.send("Hangzhou Health Commission")
    await user.wait_for("Where are you posted?")
    await user.press("f:pref:liangshan")
    await user.next_message()
    await user.press("f:cty:liangshan.xichang")
    await user.next_message()
    await user.send("1542")
    summary = await finish_after_altitude(user)
    assert "Li Wei" in summary.text and "+8613800138000" in summary.text


async def test_an_old_button_after_the_form_moved_on_is_answered_not_obeyed(bot):
    user = bot.user(1009, "Stale", language_code="en")
    await user.send("/start")
    language = await user.wait_for("choose your language")
    await user.press("English")
    await user.next_message()
    await user.press_forged("f:lang:zh-Hans", message=language)
    answer = await user.callback_answer()
    assert answer is not None


async def test_pending_people_are_told_they_wait_and_can_still_see_their_data(bot):
    factories.person(bot.db, 1010, approve=False)
    user = bot.user(1010, "P", language_code="en")
    await user.send("/start")
    assert "waiting for an administrator" in (await user.next_message()).text
    await user.send("hello")
    assert "waiting for an administrator" in (await user.next_message()).text
    await user.send("/mydata")
    document = await user.next_message()
    assert document.document is not None and document.document.file_name.endswith(".json")


async def test_admins_see_a_refusal_audited_when_a_stranger_presses_approve(bot):
    factories.person(bot.db, 1011, approve=False)
    person = bot.db.call(people.find, 1011)
    stranger = bot.user(1012, "Eve", language_code="en")
    await stranger.send("/help")
    await stranger.next_message()
    await stranger.press_forged(f"adm:ok:{person.id}")
    answer = await stranger.callback_answer()
    assert "not registered" in answer.text
    assert bot.db.call(people.find, 1011).status == Status.PENDING
    with bot.db.session() as s:
        denied = s.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
    assert [e.action for e in denied] == ["denied.approve"]
    with bot.db.session() as s:
        assert s.exec(select(EmergencyContact)).one().name == "Wang Fang"
