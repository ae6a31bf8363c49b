"""Policy questions through the emulator: answers, not sure, bad input, feedback, the
handoff to a person and back, FAQ saving, uploads and the admin commands."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlmodel import select

from models import AuditEntry, KbHandoff, KbQuestion
from services import clock, people
from services.i18n import t
from services.kb import handoffs
from tests.support import factories
from tests.support.screens import SCREEN, lines_on_phone

CADRE = 1001


def cadre(bot, language="en", telegram_id=CADRE):
    return factories.person(bot.db, telegram_id, language=language, assignment_end=None)


def admin_user(bot, language="en"):
    """The bootstrap admin (active from the start), speaking `language`."""
    bot.db.call(people.set_language, factories.ADMIN_ID, language)
    return bot.admin(language_code="zh-hans" if language == "zh-Hans" else "en")


def questions(bot):
    with bot.db.session() as session:
        return list(session.exec(select(KbQuestion).order_by(KbQuestion.id)))


def errors(bot):
    """Refused requests, except menus for people who never opened the chat (set up by the
    factories before the test's users write)."""
    return [e for e in bot.emulator.errors if e.method != "setMyCommands"]


def labels(message):
    return [b["text"] for b in message.buttons]


async def test_a_question_is_answered_with_its_source_and_buttons(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    await user.send("How many section-level cadres go to Zhejiang this year?")
    answer = await user.next_message()
    assert "150" in answer.text
    assert "Organization Department of the Sichuan Provincial Party Committee" in answer.text
    assert "Key Tasks" in answer.text and "1 April 2022" in answer.text
    first, *rest = labels(answer)  # the answer a screen at a time (issue 16): "More ▶ 2/5"
    assert first.startswith("More ▶ 2/") and rest[:2] == ["👍", "👎"]
    assert t("en", "kb.button.person") in rest
    assert answer.parse_mode == "HTML" and len(answer.text) <= 4096
    [logged] = questions(bot)
    assert logged.outcome == "answer" and logged.doc_ref.startswith("key-tasks-2022#quotas")


async def test_chinese_question_gets_the_chinese_version(bot):
    cadre(bot, language="zh-Hans")
    user = bot.user(CADRE, "李")
    await user.send("今年选派多少名科级以下干部到浙江跟岗学习？")
    answer = await user.next_message()
    assert "50名科级以下干部" in answer.text and "四川省委组织部" in answer.text


async def test_ask_command_and_its_usage(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    await user.send("/ask")
    assert (await user.next_message()).text == t("en", "kb.ask.usage").replace(
        "<code>", ""
    ).replace("</code>", "")
    await user.send("/ask How do I raise an SOS?")
    assert "/sos" in (await user.next_message()).text


async def test_out_of_scope_and_small_talk_never_get_a_policy_passage(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    await user.send("Who won the football match last night?")
    reply = await user.next_message()
    assert "Source:" not in reply.text
    assert t("en", "kb.button.person") in labels(reply)
    await user.send("hello")
    greeting = await user.next_message()
    assert "Source:" not in greeting.text and "How do I raise an SOS?" in greeting.text


async def test_not_sure_offers_three_topics_and_a_topic_button_answers(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    await user.send("What's the weather like on the plateau?")
    unsure = await user.next_message()
    assert unsure.text.startswith("🤔")
    topics = [b for b in unsure.buttons if b["callback_data"].startswith("kb:t:")]
    assert len(topics) == 3
    await user.press(topics[0]["callback_data"], message=unsure)
    answer = await user.next_message()
    assert "Source:" in answer.text
    assert questions(bot)[0].chosen_topic is not None


@pytest.mark.parametrize(
    "bad",
    [
        "x",
        "😀😀😀",
        "<b>bold</b> <script>alert(1)</script>",
        "' OR 1=1; DROP TABLE kb_question; --",
        'title:"oxygen" AND (rest OR exam)* ~2 ^3 {}[]',
        "氧" * 4000,
        "a" * 4000,
        "   ",
    ],
)
async def test_bad_input_gets_a_clear_answer_never_an_error(bot, bad):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    await user.send(bad)
    reply = await user.next_message()
    assert reply.text and t("en", "error.generic") not in reply.text
    assert not errors(bot)
    assert len(questions(bot)) == 1


async def test_feedback_is_recorded_and_forged_feedback_refused(bot):
    cadre(bot)
    cadre(bot, telegram_id=1002)
    user = bot.user(CADRE, "Li", language_code="en")
    other = bot.user(1002, "Wang", language_code="en")
    await user.send("How can I delete my personal data?")
    answer = await user.next_message()
    await user.press("👎", message=answer)
    assert (await user.callback_answer()).text == t("en", "kb.feedback.sorry")
    edited = await user.wait_edit(answer)
    assert "👎" not in labels(edited) and t("en", "kb.button.person") in labels(edited)
    assert questions(bot)[0].feedback == -1
    qid = questions(bot)[0].id
    await other.send("/ask how do I check in?")
    own = await other.next_message()
    own.reply_markup["inline_keyboard"][0][0]["callback_data"] = f"kb:up:{qid}"  # forged
    await other.press(f"kb:up:{qid}", message=own)
    assert (await other.callback_answer()).show_alert
    assert questions(bot)[0].feedback == -1


async def test_unregistered_people_cannot_ask(bot):
    stranger = bot.user(5555, "Nobody", language_code="en")
    await stranger.send("/ask How do I raise an SOS?")
    assert "not registered" in (await stranger.next_message()).text
    assert bot.db.call(lambda s: list(s.exec(select(KbQuestion)))) == []


async def test_handoff_to_a_person_and_back_then_saved_as_faq(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    admin = admin_user(bot, "zh-Hans")
    question = "Can my family visit me at my posting in Litang?"
    await user.send(question)
    unsure = await user.next_message()
    await user.press(t("en", "kb.button.person"), message=unsure)
    assert (await user.next_message()).text == t("en", "kb.handoff.sent")

    forwarded = await admin.wait_for("Can my family visit me")
    assert "Li Wei" in forwarded.text and "理塘" in forwarded.text
    await admin.press(t("zh-Hans", "kb.button.reply"), message=forwarded)
    await admin.wait_for("请输入对问题")
    await admin.send("Yes, family visits can be arranged with your home unit.")
    confirmation = await admin.wait_for("已发给")

    received = await user.wait_for("A person answered your question")
    assert "family visits can be arranged" in received.text and question in received.text
    copy = await admin.wait_edit(forwarded)  # a record now: one screen, the question named
    assert "已答复" in copy.text and "Can my family visit me" in copy.text
    assert lines_on_phone(copy.text) <= SCREEN

    await admin.press(t("zh-Hans", "kb.button.save_faq"), message=confirmation)
    assert (await admin.callback_answer()).text == t("zh-Hans", "kb.handoff.saved")
    await user.send(question)
    direct = await user.wait_for("Source:")
    assert "family visits can be arranged" in direct.text
    with bot.db.session() as session:
        handoff = session.exec(select(KbHandoff)).one()
        assert handoff.status == "answered" and handoff.faq_doc_id == f"faq-{handoff.id}"
        actions = [e.action for e in session.exec(select(AuditEntry))]
    assert {"knowledge.handoff.opened", "knowledge.handoff.answered"} <= set(actions)


async def test_an_admin_can_answer_by_replying_to_the_forwarded_question(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    admin = admin_user(bot)
    await user.send("Is there a canteen at the county office?")
    await user.press(t("en", "kb.button.person"), message=await user.next_message())
    forwarded = await admin.wait_for("canteen")
    await admin.send("Yes, on the ground floor.", reply_to=forwarded)
    received = await user.wait_for("A person answered")
    assert "ground floor" in received.text


async def test_a_handed_over_answer_survives_telegram_failing_for_a_while(bot):
    from emulator.faults import Fault

    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    admin = admin_user(bot)
    await user.send("Is there a canteen at the county office?")
    await user.press(t("en", "kb.button.person"), message=await user.next_message())
    forwarded = await admin.wait_for("canteen")
    bot.emulator.faults.add(Fault.server_error(), methods="sendMessage", times=2)
    await admin.send("Yes, on the ground floor.", reply_to=forwarded)
    received = await user.wait_for("A person answered", timeout=15)
    assert "ground floor" in received.text
    assert bot.emulator.faults.count() == 2  # both failures happened on the way


async def test_asking_twice_hands_over_once_and_cancel_sends_nothing(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    admin = admin_user(bot)
    await user.send("Is there a canteen at the county office?")
    unsure = await user.next_message()
    await user.press(t("en", "kb.button.person"), message=unsure)
    await user.next_message()
    await user.press(t("en", "kb.button.person"), message=unsure)
    assert (await user.next_message()).text == t("en", "kb.handoff.already")
    forwarded = await admin.wait_for("canteen")
    await admin.press(t("en", "kb.button.reply"), message=forwarded)
    await admin.wait_for("Type your reply")
    await admin.press("kb:rc")
    await admin.wait_for(t("en", "kb.handoff.cancelled"))
    await admin.send("Who issued the Key Tasks?")
    assert "Source:" in (await admin.next_message()).text  # a question again, not a reply
    assert bot.db.call(handoffs.count_open) == 1


async def test_reminders_reach_admins_for_unanswered_questions(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    admin = admin_user(bot)
    await user.send("Is there a canteen at the county office?")
    await user.press(t("en", "kb.button.person"), message=await user.next_message())
    await admin.wait_for("canteen")
    assert bot.db.call(handoffs.remind_admins) == 0
    later = clock.now() + handoffs.FIRST_REMINDER + timedelta(minutes=1)
    assert bot.db.call(handoffs.remind_admins, later) == 1
    reminder = await admin.wait_for("still waiting for a person")
    assert "canteen" in reminder.text and reminder.buttons[0]["callback_data"].startswith("kb:rp:")
    assert bot.db.call(handoffs.remind_admins, later) == 0
    await admin.send("/questions")
    assert "canteen" in (await admin.wait_for("waiting for a person")).text


async def test_questions_and_kbstats_are_for_admins_only(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    admin = admin_user(bot)
    await user.send("/kbstats")
    assert (await user.next_message()).text == t("en", "deny.role.admin")
    await user.send("How many section-level cadres go to Zhejiang?")
    answer = await user.next_message()
    await user.press("👎", message=answer)
    await user.send("Who won the football match?")
    await user.next_message()
    await admin.send("/kbstats")
    stats = await admin.wait_for("Questions in the last 30 days: 2")
    assert "👎 1" in stats.text and "football" in stats.text
    await admin.send("/questions")
    assert (await admin.next_message()).text == t("en", "kb.questions.none").replace("&amp;", "&")


UPLOAD = """---
id: oxygen-rules-2023
language: en
title: Oxygen rules for county offices
issuer: Test Prefecture Health Bureau
date: 2023-05-01
---
## How many oxygen concentrators does a county office get? {#concentrators}

Every county office above 3,000 m keeps **four** oxygen concentrators (test document).
"""


async def test_an_uploaded_document_is_answerable_at_once_and_versions_are_kept(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    admin = admin_user(bot)
    await admin.send("/kb upload")
    assert "id: example-document" in (await admin.next_message()).text
    await admin.send_document("oxygen-rules-2023.md", UPLOAD.encode())
    done = await admin.wait_for("is now version 1")
    assert "oxygen-rules-2023" in done.text
    await user.send("How many oxygen concentrators does a county office get?")
    answer = await user.next_message()
    assert "four" in answer.text and "Test Prefecture Health Bureau" in answer.text

    second = UPLOAD.replace("**four**", "**six**").replace("date: 2023-05-01", "date: 2023-09-01")
    await admin.send_document("oxygen-rules-2023.md", second.encode())
    assert "Version 1 is kept" in (await admin.wait_for("is now version 2")).text
    await user.send("How many oxygen concentrators does a county office get?")
    assert "six" in (await user.next_message()).text
    await admin.send("/kb show oxygen-rules-2023")
    shown = await admin.wait_for("Versions")
    assert "v2" in shown.text and "v1" in shown.text and "superseded by a newer" in shown.text

    await admin.send("/kb retire oxygen-rules-2023")
    await admin.wait_for("Retired")
    await user.send("How many oxygen concentrators does a county office get?")
    assert "six" not in (await user.next_message()).text


async def test_a_superseded_document_is_labelled(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    admin = admin_user(bot)
    await admin.send_document("oxygen-rules-2023.md", UPLOAD.encode())
    await admin.wait_for("is now version 1")
    newer = (
        UPLOAD.replace(
            "id: oxygen-rules-2023", "id: oxygen-rules-2024\nsupersedes: [oxygen-rules-2023]"
        )
        .replace("Oxygen rules for county offices", "Oxygen rules 2024")
        .replace("{#concentrators}", "{#rooms}")
        .replace("How many oxygen concentrators does a county office get?", "Oxygen rooms")
        .replace("keeps **four** oxygen concentrators", "opens an oxygen room")
    )
    await admin.send_document("oxygen-rules-2024.md", newer.encode())
    await admin.wait_for("is now version 1")
    await user.send("How many oxygen concentrators does a county office get?")
    answer = await user.next_message()
    assert "four" in answer.text and "superseded by “Oxygen rules 2024”" in answer.text
    await admin.send("/kb")
    listing = await admin.wait_for("Policy documents")
    assert "oxygen-rules-2023 · en · superseded" in listing.text


async def test_a_bad_upload_is_explained_and_cadres_cannot_upload(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    admin = admin_user(bot)
    await admin.send_document("notes.md", b"## Only a heading\n\nBut no issuer.")
    assert "must give" in (await admin.next_message()).text
    await admin.send_document("bad.txt", b"\xff\xfe\x00\x00garbage")
    assert (await admin.next_message()).text
    await user.send_document("oxygen-rules-2023.md", UPLOAD.encode())
    assert (await user.next_message()).text == t("en", "deny.role.admin")
    assert not errors(bot)


async def test_a_deleted_asker_takes_their_questions_with_them(bot):
    cadre(bot)
    user = bot.user(CADRE, "Li", language_code="en")
    await user.send("Is there a canteen at the county office?")
    await user.press(t("en", "kb.button.person"), message=await user.next_message())
    await user.next_message()
    with time_machine.travel(clock.now() + timedelta(seconds=1)):
        await user.send("/deleteme")
        await user.press("del:yes", message=await user.next_message())
        await user.wait_for(lambda m: "del" not in str(m.reply_markup))
    with bot.db.session() as session:
        assert list(session.exec(select(KbQuestion))) == []
        assert list(session.exec(select(KbHandoff))) == []
