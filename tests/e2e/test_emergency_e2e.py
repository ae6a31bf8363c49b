"""Issue 12 ("Emergency channel without gaps") point by point, with the real `cadre-bot run`
process and the emulator: one process for the whole module (started once, like a
deployment that has run all day), each test with people of its own, in both languages
where the wording matters. Also in test_sos_e2e.py: points 1 (pending, suspended, guest),
4 and 5 in the other language; point 6 is test_reply_limits_e2e.py (it needs the
emulator's limits), point 10's escalated header test_care_e2e.py (it needs the care jobs)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from sqlmodel import col, select

from emulator.driver import FakeUser
from emulator.faults import Fault
from emulator.server import BotApiEmulator
from models import Alert, AlertEvent, AlertStatus, DirectoryEntry, Status
from services import approvals, people, roster
from services.db import Database
from tests.conftest import empty_tables
from tests.support import factories
from tests.support.channel_servers import SmsGateway, running_services
from tests.support.checkin_helpers import markup_has, start_checkin
from tests.support.screens import page_button
from tests.support.sos_support import (
    ABA,
    CADRE,
    OFF_DUTY,
    ON_DUTY,
    BotProcess,
    officer,
    process_env,
    staff,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

LANGS = ("en", "zh-Hans")  # the ids of the tests run in each language
ADMIN_EN = 9002  # a second administrator, reading English (9001 reads Chinese)
LIANGSHAN_EN = 2101  # Liangshan's duty officers: nobody else's alerts reach them
LIANGSHAN_ZH = 2102
LIANGSHAN_CADRES = range(1301, 1305)  # with the two officers, six: /today names five


@dataclass
class World:
    emulator: BotApiEmulator
    db: Database
    process: BotProcess
    sms: SmsGateway


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(migrated_engine, database_url, tmp_path_factory) -> AsyncIterator[World]:
    """Ganzi's two officers on duty (2001 reads Chinese, 2002 English), two admins (one
    each), Liangshan's two officers and six cadres; then `cadre-bot run`."""
    empty_tables(migrated_engine)
    db = Database(migrated_engine)
    people_ = staff(db)
    db.call(people.set_language, OFF_DUTY, "en")
    db.call(roster.go_on_duty, people_["off"], None)
    factories.admin(db, ADMIN_EN)
    db.call(people.set_language, ADMIN_EN, "en")
    for telegram_id, lang in ((LIANGSHAN_EN, "en"), (LIANGSHAN_ZH, "zh-Hans")):
        name = "Ma En" if lang == "en" else "马中"
        officer(db, telegram_id, prefecture="liangshan", county="liangshan.xichang", name=name)
        db.call(people.set_language, telegram_id, lang)
    for telegram_id in LIANGSHAN_CADRES:
        factories.person(
            db,
            telegram_id,
            real_name=f"Yi {telegram_id}",
            prefecture="liangshan",
            county="liangshan.xichang",
            posting_altitude_m=1500,
        )
    async with BotApiEmulator() as emulator, running_services() as (_, _, sms):
        env = process_env(
            emulator,
            database_url,
            CADRE_ADMIN_IDS=f"{factories.ADMIN_ID},{ADMIN_EN}",
            CADRE_SMS_URL=sms.url("/sms"),
            CADRE_SMS_HEADERS=json.dumps({"X-Api-Key": sms.api_key}),
            CADRE_SMS_BODY_TEMPLATE='{"phone": "{phone}", "text": "{text}"}',
        )
        process = BotProcess(env, tmp_path_factory.mktemp("emergency"))
        await process.start()
        for telegram_id in (
            CADRE,
            ON_DUTY,
            OFF_DUTY,
            ABA,
            factories.ADMIN_ID,
            LIANGSHAN_EN,
            LIANGSHAN_ZH,
            *LIANGSHAN_CADRES,
        ):
            emulator.user(telegram_id, "Someone")  # reachable, like everyone on the roster
        try:
            admin = emulator.user(ADMIN_EN, "Ada", language_code="en")
            await admin.send("/help")
            await admin.wait_for("/help", timeout=30)  # polling: the process is up
            yield World(emulator, db, process, sms)
        finally:
            code, log = await process.stop()
    assert code == 0, log
    assert "Traceback" not in log and " ERROR " not in log, log


def alert_of(db: Database, telegram_id: int) -> Alert | None:
    """The newest alert of the person with this Telegram id."""
    with db.session() as s:
        person = people.find_caller(s, telegram_id)
        if person is None:
            return None
        query = select(Alert).where(Alert.person_id == person.id)
        return s.exec(query.order_by(col(Alert.id).desc())).first()


async def until_alert(db: Database, telegram_id: int) -> Alert:
    from tests.support.sos_support import until

    await until(lambda: alert_of(db, telegram_id) is not None)
    found = alert_of(db, telegram_id)
    assert found is not None
    return found


def new_cadre(world: World, telegram_id: int, lang: str) -> FakeUser:
    """A cadre of Ganzi of this test's own, and their chat."""
    factories.person(world.db, telegram_id, real_name=f"Cadre {telegram_id}", language=lang)
    return world.emulator.user(telegram_id, "Cadre", language_code=lang)


def ganzi_officers(world: World) -> tuple[FakeUser, FakeUser]:
    """Ganzi's two officers on duty: every alert of a Ganzi cadre reaches both."""
    zh = world.emulator.user(ON_DUTY, "Zhang")
    return zh, world.emulator.user(OFF_DUTY, "Wang", language_code="en")


async def sos_taken_to(
    en_officer: FakeUser, world: World, telegram_id: int, lang: str
) -> tuple[FakeUser, Alert]:
    """A new cadre presses /sos; their alert, once its card reached the English officer."""
    cadre = new_cadre(world, telegram_id, lang)
    await cadre.send("/sos")
    alert = await until_alert(world.db, telegram_id)
    await en_officer.wait_for(about(alert.id, "SOS #"), timeout=10)
    return cadre, alert


async def every_page(user: FakeUser, message) -> str:
    """The text of every page of a paged list (one screen a page), pressing More ▶."""
    texts = [message.text]
    while (more := page_button(message)) is not None:
        shown = message.text
        await user.press(more, message=message)
        await user.wait_edit(message, lambda m, shown=shown: m.text != shown)
        texts.append(message.text)
    return "\n".join(texts)


async def red_check_in(cadre: FakeUser) -> None:
    """A check-in with a red flag (breathless at rest): a RED alert."""
    await start_checkin(cadre)
    await cadre.press("ci:feeling:unwell")
    await cadre.wait_for(markup_has("ci:flags:none"))
    await cadre.press("ci:flags:breathless_rest")
    # the result has come (through the outbox) when 📍 is on the keyboard
    await cadre.wait_until(lambda: "📍" in str(cadre.reply_keyboard))


def about(alert_id: int, text: str):
    """A bot message about this alert (other tests' alerts reach the same officers)."""
    return lambda m: f"#{alert_id}" in (m.text or "") and text in (m.text or "")


# ---------------------------------------------------------------------------- 1. anyone


async def test_1_a_chinese_guest_and_a_rejected_person_reach_both_admins_and_are_taken(world):
    """test_sos_e2e.py has a pending registrant, a suspended cadre and a guest in English;
    here a guest reading Chinese and a rejected person: each admin reads the unverified
    card in their own language, with ✋, and the caller is told who took it."""
    db, emulator = world.db, world.emulator
    rejected = factories.person(db, 1111, approve=False, real_name="Rejected", language="en")
    db.call(people.decide, db.call(people.find, factories.ADMIN_ID), rejected.id, False)
    zh_admin = emulator.user(factories.ADMIN_ID, "Admin")
    en_admin = emulator.user(ADMIN_EN, "Ada", language_code="en")
    callers = (
        (emulator.user(1110, "高", language_code="zh-hans"), zh_admin, "正在处理您的求助"),
        (emulator.user(1111, "Re", language_code="en"), en_admin, "is handling your call"),
    )
    for caller, taker, told in callers:
        await caller.send("/sos")
        alert = await until_alert(db, caller.id)
        zh_card = await zh_admin.wait_for(about(alert.id, "身份未核实"), timeout=10)
        en_card = await en_admin.wait_for(about(alert.id, "Unverified caller"), timeout=10)
        assert "sos:ack:" in str(zh_card.reply_markup) and "sos:ack:" in str(en_card.reply_markup)
        await caller.wait_for(lambda m: "120" in (m.text or ""))  # the numbers, at once
        await taker.press(f"sos:ack:{alert.id}", message=zh_card if taker is zh_admin else en_card)
        await taker.callback_answer()
        await caller.wait_for(told)
        assert alert_of(db, caller.id).status == AlertStatus.ACKNOWLEDGED
        assert alert_of(db, caller.id).unverified


# ---------------------------------------------------------------------------- 4, 5. after close


async def test_4_5_an_officer_closes_by_command_and_the_chinese_cadres_next_words_reach_him(
    world,
):
    """/ack and /resolve by an officer reading English (test_sos_e2e.py has them in
    Chinese); the cadre reads Chinese, and what they write after the close reaches him."""
    _, en_officer = ganzi_officers(world)
    cadre, alert = await sos_taken_to(en_officer, world, 1401, "zh-Hans")
    await en_officer.send(f"/alert {alert.id}")
    view = await en_officer.wait_for(about(alert.id, "Timeline"))
    assert "round 1: delivered 2/2, " in view.text and "delivered to" not in view.text
    assert "✋ I'm on it" in [b["text"] for b in view.buttons]
    await en_officer.send(f"/ack {alert.id}")
    await cadre.wait_for(f"正在处理您的求助 #{alert.id}")
    await en_officer.send(f"/resolve {alert.id}")
    choose = await en_officer.wait_for(f"How did alert #{alert.id} end?")
    await en_officer.press("Handled on site", message=choose)
    closed = await cadre.wait_for(f"您的求助 #{alert.id} 已由")
    assert "24 小时内" in closed.text
    await en_officer.send(f"/alert {alert.id}")
    view = await en_officer.wait_for(about(alert.id, "Timeline"))
    assert "I'm on it" not in view.text and "sos:ack:" not in str(view.reply_markup)
    await cadre.send("脚踝肿了，谢谢 <b>")
    passed = await cadre.wait_for(f"处理您求助 #{alert.id}")
    assert "Wang Off" in passed.text and "🆘" in passed.text
    relayed = await en_officer.wait_for(about(alert.id, "脚踝肿了"))
    assert relayed.text.startswith(f"💬 About #{alert.id} (Cadre 1401), closed at ")
    assert "谢谢 <b>" in relayed.text  # as typed, escaped


# ---------------------------------------------------------------------------- 2. nothing untrue


CANCELLING = {  # a cadre of each language: what /cancel and the false alarm say
    "en": (1201, "Your call for help #{id} is still open", "is cancelled"),
    "zh-Hans": (1202, "您的求助 #{id} 仍然有效", "已取消"),
}


@pytest.mark.parametrize("lang", CANCELLING)
async def test_2_cancel_during_the_sos_questions_stops_the_questions_not_the_alert(world, lang):
    cadre_id, still_open, cancelled = CANCELLING[lang]
    db, emulator = world.db, world.emulator
    cadre = new_cadre(world, cadre_id, lang)
    officer_ = emulator.user(ON_DUTY, "Zhang")
    await cadre.send("/sos")
    alert = await until_alert(db, cadre_id)
    await officer_.wait_for(about(alert.id, "紧急求助"), timeout=10)
    await cadre.wait_for(markup_has(f"sos:cat:{alert.id}:"))
    await cadre.send("/cancel")
    kept = await cadre.wait_for(still_open.format(id=alert.id))
    assert "sos:cxl:" in str(kept.reply_markup)
    await cadre.send("/cancel")  # no question left: still about the open alert
    kept = await cadre.wait_for(still_open.format(id=alert.id))
    assert alert_of(db, cadre_id).status == AlertStatus.OPEN
    await cadre.press(f"sos:cxl:{alert.id}", message=kept)
    confirm = await cadre.wait_for(markup_has(f"sos:cxly:{alert.id}"))
    await cadre.press(f"sos:cxly:{alert.id}", message=confirm)
    await cadre.wait_edit(confirm, cancelled)
    await officer_.wait_for(about(alert.id, "取消"))  # everyone alerted is told
    assert alert_of(db, cadre_id).status == AlertStatus.CANCELLED


@pytest.mark.parametrize(
    ("cadre_id", "lang", "sos_button", "joined", "injury", "described"),
    [
        (1211, "en", "🆘 SOS", "added to alert", "🩹 Injury", "Passed on"),
        (1212, "zh-Hans", "🆘 紧急求助", "已并入警报", "🩹 受伤", "已转告值班人员"),
    ],
    ids=LANGS,
)
async def test_2_an_sos_during_a_red_check_in_alert_is_recorded_as_its_own_cause(
    world, cadre_id, lang, sos_button, joined, injury, described
):
    db = world.db
    cadre = new_cadre(world, cadre_id, lang)
    zh_officer, en_officer = ganzi_officers(world)
    await red_check_in(cadre)
    alert = await until_alert(db, cadre_id)
    await zh_officer.wait_for(about(alert.id, "健康打卡红色"), timeout=10)
    await cadre.press_reply_button(sos_button)
    relayed_zh = await zh_officer.wait_for(about(alert.id, "按下了紧急求助"))
    relayed_en = await en_officer.wait_for(about(alert.id, "pressed SOS"))
    assert "再次" not in relayed_zh.text and "健康打卡红色结果发起" in relayed_zh.text
    assert "again" not in relayed_en.text and "opened by a RED health check-in" in relayed_en.text
    await cadre.wait_for(joined)
    asked = await cadre.wait_for(markup_has(f"sos:cat:{alert.id}:"))
    await cadre.press(injury, message=asked)
    await cadre.wait_for(markup_has(f"sos:skip:{alert.id}"))
    await cadre.send("fell on ice")
    await cadre.wait_for(described)
    await en_officer.send(f"/alert {alert.id}")
    card = await en_officer.wait_for(about(alert.id, "What happened"))
    line = next(x for x in card.text.splitlines() if x.startswith("What happened"))
    assert "RED check-in at" in line and "; SOS pressed at" in line
    assert line.endswith("🩹 Injury, fell on ice")
    assert "RED check-in reasons:" in card.text and "again" not in card.text
    await zh_officer.send(f"/alert {alert.id}")
    card = await zh_officer.wait_for(about(alert.id, "经过："))
    assert "健康打卡红色" in card.text and "按下紧急求助" in card.text
    with db.session() as s:
        kinds = [e.kind for e in s.exec(select(AlertEvent).where(AlertEvent.alert_id == alert.id))]
    assert "cause_added" in kinds and "raised_again" not in kinds


async def test_2_a_red_check_in_during_an_open_sos_joins_it_as_its_own_cause(world):
    """The other order: the SOS first, then a RED check-in. One alert, the check-in's
    own event, both steps on the card; never "another RED check-in"."""
    db = world.db
    zh_officer, en_officer = ganzi_officers(world)
    cadre, alert = await sos_taken_to(en_officer, world, 1213, "en")
    await red_check_in(cadre)
    relayed = await en_officer.wait_for(about(alert.id, "health check-in at"))
    assert "was RED (this alert was opened by an SOS at" in relayed.text
    relayed_zh = await zh_officer.wait_for(about(alert.id, "的健康打卡为红色"))
    assert "紧急求助发起" in relayed_zh.text and "又出现" not in relayed_zh.text
    assert alert_of(db, 1213).id == alert.id  # joined, not a second alert
    await en_officer.send(f"/alert {alert.id}")
    card = await en_officer.wait_for(about(alert.id, "What happened"))
    line = next(x for x in card.text.splitlines() if x.startswith("What happened"))
    assert line.index("SOS pressed at") < line.index("RED check-in at"), line
    with db.session() as s:
        kinds = [e.kind for e in s.exec(select(AlertEvent).where(AlertEvent.alert_id == alert.id))]
    assert "cause_added" in kinds


# ---------------------------------------------------------------------------- 3. location


@pytest.mark.parametrize(
    ("cadre_id", "lang", "ask", "pin"),
    [
        (1221, "en", "Share live location", "📍 Send my location"),
        (1222, "zh-Hans", "共享实时位置", "📍 发送我的位置"),
    ],
    ids=LANGS,
)
async def test_3_a_red_check_in_asks_for_the_location_and_it_updates_every_card(
    world, cadre_id, lang, ask, pin
):
    db = world.db
    cadre = new_cadre(world, cadre_id, lang)
    zh_officer, en_officer = ganzi_officers(world)
    await red_check_in(cadre)
    await cadre.wait_for(ask)
    keyboard = [b["text"] for row in cadre.reply_keyboard or [] for b in row]
    assert keyboard[0] == pin
    alert = await until_alert(db, cadre_id)
    cards = [
        await zh_officer.wait_for(about(alert.id, "健康打卡红色"), timeout=10),
        await en_officer.wait_for(about(alert.id, "RED health check-in"), timeout=10),
    ]
    cadre.location = (29.5 + cadre_id / 10000, 100.25)
    await cadre.press_reply_button(pin)
    expected = f"{cadre.location[0]:.5f}"
    for reader, card in zip((zh_officer, en_officer), cards, strict=True):
        await reader.wait_edit(card, expected, timeout=10)
        assert "sos:ack:" in str(card.reply_markup)  # still open: ✋ stays
    asked = await cadre.send("/help")  # what a worried cadre may send next: 📍 stays
    await cadre.wait_for(
        lambda m: m.message_id > asked.message_id and "keyboard" in str(m.reply_markup)
    )
    keyboard = [b["text"] for row in cadre.reply_keyboard or [] for b in row]
    assert keyboard[0] == pin  # until the alert is closed
    assert alert_of(db, cadre_id).latitude == pytest.approx(cadre.location[0])
    with db.session() as s:
        kinds = [e.kind for e in s.exec(select(AlertEvent).where(AlertEvent.alert_id == alert.id))]
    assert "location" in kinds


# ---------------------------------------------------------------------------- 6. replies


async def test_6_a_5xx_on_the_answer_and_the_card_edit_of_an_ack_is_retried_not_lost(world):
    """Telegram answers the officer's ✋ with a 502 (the press's answer) and a 503 (the
    card's edit): both are sent again; the officer is confirmed, the card says who took
    it, and nothing says "something went wrong" (test_reply_limits_e2e.py: the 429 during
    a broadcast)."""
    _, en_officer = ganzi_officers(world)
    cadre, alert = await sos_taken_to(en_officer, world, 1601, "en")
    card = next(m for m in reversed(en_officer.bot_messages) if f"SOS #{alert.id}" in m.text)
    faults = world.emulator.faults
    faults.add(Fault.server_error(502), methods="answerCallbackQuery", times=1)  # no chat_id
    faults.add(Fault.server_error(503), methods="editMessageText", times=1, chats=OFF_DUTY)
    try:
        await en_officer.press(f"sos:ack:{alert.id}", message=card)
        answer = await en_officer.callback_answer(timeout=10)
        await en_officer.wait_edit(card, "Wang Off", timeout=10)
    finally:
        faults.clear()  # nothing left for the next test
    assert f"#{alert.id}" in answer.text
    await cadre.wait_for("Wang Off (duty officer) is handling your call for help")
    assert not [m for m in en_officer.bot_messages if "went wrong" in (m.text or "")]
    assert faults.count("server_error", "answerCallbackQuery") == 1
    assert faults.count("server_error", "editMessageText") == 1


# ---------------------------------------------------------------------------- 7. confirmation


@pytest.mark.parametrize(
    ("admin_id", "cadre_id", "lang", "words"),
    [
        (
            ADMIN_EN,
            1231,
            "en",
            ("⛔ Suspend", "still call for help with 🆘", "⛔ Yes, suspend", "❌ Reject"),
        ),
        (
            factories.ADMIN_ID,
            1232,
            "zh-Hans",
            ("⛔ 暂停账号", "仍可随时用 🆘（/sos）求助", "⛔ 确认暂停", "❌ 拒绝"),
        ),
    ],
    ids=LANGS,
)
async def test_7_suspend_and_reject_ask_first_with_the_actions_on_separate_rows(
    world, admin_id, cadre_id, lang, words
):
    suspend, keeps_sos, suspend_yes, reject = words
    db, emulator = world.db, world.emulator
    cadre_p = factories.person(db, cadre_id, real_name=f"Cadre {cadre_id}", language=lang)
    admin = emulator.user(admin_id, "Admin", language_code=lang)
    await admin.send("/people")
    listing = await admin.wait_for(markup_has(f"ppl:c:{cadre_p.id}"))
    await admin.press(f"ppl:c:{cadre_p.id}", message=listing)
    card = await admin.wait_edit(listing, lambda m: f"ppl:sus:{cadre_p.id}" in str(m.reply_markup))
    await admin.press(suspend, message=card)
    asked = await admin.wait_edit(card, keeps_sos)
    rows = asked.reply_markup["inline_keyboard"]
    assert [len(row) for row in rows] == [1, 1] and rows[0][0]["text"] == suspend_yes
    assert db.call(people.get, cadre_p.id).status == Status.ACTIVE  # asking changed nothing
    await admin.press(suspend_yes, message=asked)
    await admin.wait_edit(card, markup_has(f"ppl:act:{cadre_p.id}"))  # ✅ Reinstate
    assert db.call(people.get, cadre_p.id).status == Status.SUSPENDED

    newcomer_id = cadre_id + 100
    newcomer = factories.person(
        db, newcomer_id, approve=False, real_name=f"New {newcomer_id}", language=lang
    )
    newcomer_user = emulator.user(newcomer_id, "New", language_code=lang)
    db.call(approvals.queue_requests, newcomer)  # what registering queues
    request = await admin.wait_for(markup_has(f"adm:no:{newcomer.id}"), timeout=10)
    rows = [[b["text"] for b in row] for row in request.reply_markup["inline_keyboard"]]
    assert len(rows) == 2 and rows[1] == [reject]  # approve and reject on separate rows
    await admin.press(reject, message=request)
    asked = await admin.wait_edit(request, markup_has(f"adm:noy:{newcomer.id}"))
    assert all(len(row) == 1 for row in asked.reply_markup["inline_keyboard"])
    assert db.call(people.find, newcomer_id).status == Status.PENDING
    await admin.press(f"adm:noy:{newcomer.id}", message=asked)
    await admin.wait_edit(request, lambda m: "adm:" not in str(m.reply_markup))
    assert db.call(people.find, newcomer_id).status == Status.REJECTED
    await newcomer_user.wait_for(lambda m: True)  # they are told


# ---------------------------------------------------------------------------- 8. directory


@pytest.mark.parametrize(
    ("cadre_id", "lang", "numbers", "checked"),
    [
        (
            1241,
            "en",
            "Emergency numbers",
            "checked 2026-11-26: national number, free from any phone in mainland China",
        ),
        (1242, "zh-Hans", "急救电话", "全国统一号码，中国大陆任何电话均可免费拨打"),
    ],
    ids=LANGS,
)
async def test_8_the_directory_a_cadre_reads_after_an_sos_tells_the_truth(
    world, cadre_id, lang, numbers, checked
):
    db, emulator = world.db, world.emulator
    cadre = new_cadre(world, cadre_id, lang)
    await cadre.send("/sos")
    shown = (await cadre.wait_for(numbers, timeout=10)).text
    assert "☎️ 120" in shown and checked in shown
    with db.session() as s:
        numberless = [e for e in s.exec(select(DirectoryEntry)) if not e.phone]
    assert numberless  # the shipped hospitals have names only
    for entry in numberless:
        assert entry.name_zh not in shown and entry.name_en not in shown
    for untrue in ("national number)", "verified", "电话待管理员核实", "to be verified"):
        assert untrue not in shown

    # an admin cannot confirm an entry that has no number (a forged press included)
    admin = emulator.user(ADMIN_EN, "Ada", language_code="en")
    await admin.send("/directory")
    listing = await admin.wait_for(markup_has("dir:p:"))
    await admin.press_forged(f"dir:ok:{numberless[0].id}", message=listing)
    refused = await admin.callback_answer()
    assert refused.show_alert and "has no phone number" in refused.text
    with db.session() as s:
        assert s.get(DirectoryEntry, numberless[0].id).confirmed_at is None


# ---------------------------------------------------------------------------- 9. tests report


@pytest.mark.parametrize(
    ("admin_id", "lang", "area", "failed", "reason", "header"),
    [
        (
            ADMIN_EN,
            "en",
            "aba",
            "did not reach",
            "host not found: check the webhook URL",
            "Duty groups",
        ),
        (factories.ADMIN_ID, "zh-Hans", "liangshan", "测试消息未能送达", "找不到主机", "值班群"),
    ],
    ids=LANGS,
)
async def test_9_a_duty_group_test_reports_back_with_a_reason_and_dutygroup_shows_it(
    world, admin_id, lang, area, failed, reason, header
):
    admin = world.emulator.user(admin_id, "Admin", language_code=lang)
    bad = f"https://qyapi.no-such-host-{area}.invalid/cgi-bin/webhook/send?key=0000-1111"
    await admin.send(f"/dutygroup set {area} wecom {bad} Group{admin_id}")
    stored = await admin.wait_for(markup_has("dg:test:"))
    await admin.press(next(b["text"] for b in stored.buttons if "dg:test:" in b["callback_data"]))
    report = await admin.wait_for(failed, timeout=60)  # "within a minute"
    assert reason in report.text
    await admin.send("/dutygroup")
    listing = await every_page(admin, await admin.wait_for(header))  # a group a page
    ours = listing[listing.index(f"Group{admin_id}") :]
    assert reason in ours.split("\n#")[0]
    assert "key=0000-1111" not in listing  # the key is masked


async def test_9_an_sms_test_reports_a_failing_gateway_then_success_in_both_languages(world):
    """The gateway answers 500 twice: the officer reads why within a minute; the next
    test arrives; the Chinese officer's test arrives at once."""
    for telegram_id, lang, failed, ok in (
        (LIANGSHAN_EN, "en", "did not reach", "reached"),
        (LIANGSHAN_ZH, "zh-Hans", None, "测试消息已送达"),
    ):
        officer_ = world.emulator.user(telegram_id, "Officer", language_code=lang)
        await officer_.send(f"/sms 1380013{telegram_id}")
        await officer_.wait_for(f"+861380013{telegram_id}")
        await officer_.send("/sms")
        shown = await officer_.wait_for("/sms off")
        test = next(b["text"] for b in shown.buttons if b["text"].startswith("🧪"))
        if failed:
            world.sms.fail("server_error", times=2)
            await officer_.press(test, message=shown)
            report = await officer_.wait_for(failed, timeout=60)  # "within a minute"
            assert "the service is busy or failing: try again later (HTTP 500" in report.text
            admin = world.emulator.user(ADMIN_EN, "Ada", language_code="en")
            await admin.send("/dutygroup")
            listing = await admin.wait_for("Duty groups")  # (the admins were also told)
            assert "SMS gateway: ⚠️ failing: the service is busy" in await every_page(admin, listing)
        await officer_.press(test, message=shown)
        assert f"…{str(telegram_id)[-4:]}" in (await officer_.wait_for(ok, timeout=30)).text


# ---------------------------------------------------------------------------- 10. oxygen card


@pytest.mark.parametrize(
    ("cadre_id", "lang", "what", "urgency", "send", "sent", "disclaimer"),
    [
        (1251, "en", "Oxygen cylinder", "Today", "📨 Send", "Oxygen request #", "schedule"),
        (1252, "zh-Hans", "氧气瓶", "今天内", "📨 发送", "已发送供氧申请", "日程提醒"),
    ],
    ids=LANGS,
)
async def test_10_the_oxygen_request_confirmation_is_about_the_request(
    world, cadre_id, lang, what, urgency, send, sent, disclaimer
):
    emulator = world.emulator
    cadre = new_cadre(world, cadre_id, lang)
    await cadre.send("/oxygen")
    await cadre.wait_for(markup_has("cf:ox:w:"))
    await cadre.press(what)
    await cadre.wait_for(markup_has("cf:ox:p:"))
    await cadre.send("County dormitory 3")
    await cadre.wait_for(markup_has("cf:ox:u:"))
    await cadre.press(urgency)
    await cadre.wait_for(markup_has("cf:ox:ok"))
    await cadre.press(send)
    confirmation = await cadre.wait_for(sent)
    assert "🆘" in confirmation.text and disclaimer not in confirmation.text
    officer_ = emulator.user(ON_DUTY, "Zhang")
    card = await officer_.wait_for(
        lambda m: "供氧申请 #" in (m.text or "") and f"Cadre {cadre_id}" in m.text, timeout=10
    )
    assert "⚠️" not in card.text  # nobody has been waiting: no escalated header


# ---------------------------------------------------------------------------- 11. roster, today


async def test_11_duty_officers_read_the_roster_hear_of_their_shifts_and_see_everyone_today(
    world,
):
    db, emulator = world.db, world.emulator
    ma = emulator.user(LIANGSHAN_EN, "Ma", language_code="en")
    zh = emulator.user(LIANGSHAN_ZH, "马")
    admin_p = db.call(people.find, factories.ADMIN_ID)
    ma_p = db.call(people.find, LIANGSHAN_EN)
    added = db.call(roster.add_shifts, admin_p, ma_p.id, "liangshan", [0, 2], "day")
    told = await ma.wait_for("gave you duty shifts in Liangshan", timeout=10)
    assert "Mon 08:00–20:00, Wed 08:00–20:00" in told.text and "/roster" in told.text
    await ma.send("/roster")
    view = await ma.wait_for("weekly duty roster")
    assert "Mon 08:00–20:00 · Ma En" in view.text and view.reply_markup is None  # read-only
    await zh.send("/roster")
    shown = await zh.wait_for("每周值班表")
    assert "凉山" in shown.text and "Ma En" in shown.text
    db.call(roster.remove_shift, admin_p, added[0].id)
    removed = await ma.wait_for("removed your duty shift in Liangshan", timeout=10)
    assert removed.text.startswith("🗓 An administrator removed")  # 9001 has no name
    assert "Mon 08:00–20:00" in removed.text

    # /today counts six people (none is due today): the button of their state lists
    # all six, in both languages; /today all too
    names = ["Ma En", "马中", *(f"Yi {i}" for i in LIANGSHAN_CADRES)]
    for reader, counted in ((ma, "checked in 0/6"), (zh, "0/6")):
        await reader.send("/today")
        today = await reader.wait_for(counted)
        await reader.press("➖ 6", message=today)
        listed = await reader.wait_for(lambda m: "Yi 1304" in (m.text or ""))
        assert all(n in listed.text for n in names), listed.text
    await zh.send("/today all")
    everyone = await zh.wait_for(lambda m: "Yi 1304" in (m.text or ""))
    assert all(n in everyone.text for n in names), everyone.text
