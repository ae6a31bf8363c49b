"""Personal data stays in private chats, edits never act, and /mydata exports without
warnings (issue 13). Group, supergroup and channel chats through the emulator; the gate is
bot/app.py's first handler group (handlers/privacy.py)."""

from __future__ import annotations

import json
import warnings

import pytest
from sqlmodel import select

from models import Alert, CheckIn, OutboxMessage, Person, Role, Status, Tier
from models.knowledge import KbQuestion
from services import own_data, people
from services.health import checkins
from tests.services.test_health_checkins import AMBER, RED
from tests.support.checkin_helpers import CONFIG, POLICY, make_person
from tests.support.sos_support import CADRE, ON_DUTY, staff

# ------------------------------------------------------------------ /mydata's warnings


def test_the_export_of_a_person_with_check_ins_and_an_alert_raises_no_warning(db):
    """Enum columns come back as their enums, so model_dump has nothing to warn about
    (it wrote PydanticSerializationUnexpectedValue to the log at every /mydata)."""
    person = make_person(db, 1001)
    db.call(checkins.submit, person.id, AMBER, config=CONFIG, policy=POLICY)
    db.call(checkins.submit, person.id, RED, config=CONFIG, policy=POLICY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = db.call(own_data.export, 1001)
    json.dumps(data)
    assert data["person"]["role"] == "cadre" and data["person"]["status"] == "active"
    tiers = {c["tier"] for c in data["health_check_ins"]["check_ins"]}
    assert tiers == {"amber", "red"}
    with db.session() as session:
        stored = session.exec(select(Person).where(Person.telegram_id == 1001)).one()
        assert type(stored.role) is Role and type(stored.status) is Status
        assert {type(c.tier) for c in session.exec(select(CheckIn))} == {Tier}
        assert session.exec(select(Alert)).first() is not None


# ------------------------------------------------------------------ groups and channels

GROUP = -100_555


async def pointer_at_the_end(group, member) -> None:
    """Updates of one chat are handled in order: once /help's pointer is there, everything
    sent to the group before it has been handled."""
    await member.send("/help", chat=group)
    await group.wait_for("t.me/test_bot", timeout=10)


def assert_only_pointers(group, count: int) -> None:
    texts = [m.text or "" for m in group.bot_messages]
    assert len(texts) == count, texts
    for text in texts:
        assert text.count("\n") == 0 and "https://t.me/test_bot" in text, text
    assert not any(m.document or m.photo or m.reply_markup for m in group.bot_messages)


@pytest.mark.parametrize("kind", ["group", "supergroup"])
async def test_in_a_group_personal_commands_and_questions_get_nothing(bot, kind):
    people_ = staff(bot.db)
    group = bot.emulator.group(GROUP, "Litang cadres", kind=kind)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    stranger = bot.user(4242, "Mallory", language_code="en")
    for command in ("/me", "/mydata", "/history", "/trend", "/contacts", "/checkin"):
        await cadre.send(command, chat=group)
    await cadre.send("How many days of low-altitude rest do I get?", chat=group)
    await cadre.send("86", chat=group)
    await officer.send("/today", chat=group)
    await officer.send("/overdue", chat=group)
    await stranger.send("hello bot", chat=group)
    await stranger.send("/me", chat=group)
    await stranger.send("/start@other_bot", chat=group)
    await cadre.send("/start@test_bot", chat=group)
    await group.wait_for("t.me/test_bot", timeout=10)
    await stranger.send("/start", chat=group)
    await group.wait_for("t.me/test_bot", timeout=10)
    await pointer_at_the_end(group, cadre)
    assert_only_pointers(group, 3)
    pointer = group.bot_messages[0].text
    assert pointer.startswith("To protect your personal information")
    # Nothing went to anyone's private chat either, and nothing was stored.
    for person in (cadre, officer, stranger):
        person.assert_no_unread()
    with bot.db.session() as session:
        assert session.exec(select(CheckIn)).first() is None
        assert session.exec(select(KbQuestion)).first() is None
    assert people_["cadre"].phone not in str([m.text for m in group.messages])


async def test_in_a_group_the_menu_shows_only_start_and_help(bot):
    staff(bot.db)
    group = bot.emulator.group(GROUP, "Litang cadres")
    cadre = bot.user(CADRE, "Li", language_code="en")
    admin = bot.admin()
    assert {c["command"] for c in cadre.commands(group)} == {"start", "help"}
    assert {c["command"] for c in admin.commands(group)} == {"start", "help"}
    assert {"sos", "language"} <= {c["command"] for c in cadre.commands()}  # private chat


async def test_channel_posts_anonymous_admins_and_senderless_updates_are_ignored(bot):
    staff(bot.db)
    channel = bot.emulator.group(-100_777, "News", kind="channel")
    group = bot.emulator.group(GROUP, "Litang cadres")
    cadre = bot.user(CADRE, "Li", language_code="en")
    await channel.post("/start")
    await channel.post("/help@test_bot")
    await channel.post("How many days of rest?")
    await group.post("/help")  # an anonymous admin
    await group.post("/sos")
    world = bot.emulator.world
    senderless = {"message_id": 99, "date": 1, "chat": {"id": GROUP, "type": "supergroup"}}
    world.push_update("message", {**senderless, "text": "/help"})
    world.push_update("message", {**senderless, "chat": {"id": CADRE, "type": "private"}})
    await pointer_at_the_end(group, cadre)
    assert_only_pointers(group, 1)
    assert channel.bot_messages == []
    cadre.assert_no_unread()
    with bot.db.session() as session:
        assert session.exec(select(Alert)).first() is None
    assert not any("Traceback" in str(e) for e in bot.emulator.errors)


async def test_an_sos_description_typed_in_a_group_is_not_taken(bot):
    people_ = staff(bot.db)
    group = bot.emulator.group(GROUP, "Litang cadres")
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    await cadre.send("/sos")
    await officer.wait_for("紧急求助")
    await cadre.wait_for("What is wrong?")
    await cadre.send("headache and vomiting, in the dormitory", chat=group)
    await cadre.send("/sos", chat=group)
    await pointer_at_the_end(group, cadre)
    assert_only_pointers(group, 1)
    cadre.assert_no_unread()
    with bot.db.session() as session:
        alerts = session.exec(select(Alert)).all()
    assert len(alerts) == 1 and not alerts[0].details
    await cadre.send("I slipped on ice")  # the private chat still waits for it
    await cadre.wait_for("Passed on")
    await officer.wait_for("I slipped on ice")
    with bot.db.session() as session:
        alert = session.exec(select(Alert)).one()
    assert alert.person_id == people_["cadre"].id and alert.details == "I slipped on ice"


async def test_a_button_pressed_in_a_group_is_answered_without_text_and_posts_nothing(bot):
    staff(bot.db)
    group = bot.emulator.group(GROUP, "Litang cadres")
    cadre = bot.user(CADRE, "Li", language_code="en")
    await cadre.send("/start@test_bot", chat=group)
    pointer = await group.wait_for("t.me/test_bot")
    for data in ("del:yes", "me:edit:phone", "ci:feeling:fine", "sos:ack:1"):
        await cadre.press_forged(data, message=pointer)
        answer = await cadre.callback_answer()
        assert not answer.text
    await pointer_at_the_end(group, cadre)
    assert_only_pointers(group, 2)
    cadre.assert_no_unread()


# ------------------------------------------------------------------ edits never act


async def test_an_edited_sos_raises_nothing_and_an_edited_mydata_sends_nothing(bot):
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    typed = await cadre.send("/me")
    await cadre.wait_for("Li Wei")
    await cadre.edit(typed, "/sos")
    export = await cadre.send("/mydata")
    await cadre.wait_for(lambda m: m.document is not None)
    await cadre.edit(export, "/mydata")
    await cadre.edit(export, "/deleteme")
    await cadre.send("/language")
    await cadre.wait_for(lambda m: m.reply_markup is not None and "lang:" in str(m.reply_markup))
    cadre.assert_no_unread()
    assert len(cadre.files) == 1
    with bot.db.session() as session:
        assert session.exec(select(Alert)).first() is None
        assert session.exec(select(OutboxMessage)).first() is None
        assert session.exec(select(Person).where(Person.telegram_id == CADRE)).one()
    officer.assert_no_unread()


async def test_an_edit_in_the_middle_of_a_form_is_answered_once_and_changes_nothing(bot):
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    await cadre.send("/me")
    await cadre.next_message()
    await cadre.press("me:edit:name")
    await cadre.wait_for("real name")
    typed = await cadre.send("<script>")
    await cadre.wait_for("A name can contain")
    await cadre.wait_for("real name")
    await cadre.edit(typed, "Li Xiaowei")
    told = await cadre.wait_for("Edited messages are not read")
    assert "new message" in told.text
    await cadre.send("/help")  # handled after the edit: nothing else came of it
    await cadre.wait_for("/checkin")
    assert [m.text for m in cadre.bot_messages].count(told.text) == 1
    assert bot.db.call(people.find, CADRE).real_name == "Li Wei"
    await cadre.send("/cancel")
    await cadre.wait_for("unchanged")
    await cadre.edit(typed, "Li Xiaowei again")  # no form now: ignored
    await cadre.send("/help")
    await cadre.wait_for("/checkin")
    cadre.assert_no_unread()
    assert [m.text for m in cadre.bot_messages].count(told.text) == 1
