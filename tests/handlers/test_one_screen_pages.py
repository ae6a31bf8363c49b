"""One screen per message for what is long by nature (issue 16, point 7): a policy answer,
/kb's document list and its upload help, /kbstats and /dutygroup are shown a phone screen
at a time, measured where they are sent, in both languages, with realistic long content (a
long answer, many documents, many questions, every duty group there can be). "More ▶"
edits the message in place to the next page, every page of an answer keeps its source,
nothing is lost on the way, and a stale or forged page button gets the polite answer."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from models import Channel, DutyGroup, KbQuestion
from services import clock, people
from services.duty_channels import groups
from services.i18n import plain_text, t
from services.kb import handoffs
from tests.support import factories
from tests.support.screens import SCREEN, lines_on_phone, too_long

pytestmark = pytest.mark.asyncio

CADRE = 1001
LANGS = ["en", "zh-Hans"]

ITEMS = {
    "en": [
        "Who: every cadre and professional on a posting of six months or more.",
        "How often: once every three months, and at once after a RED check-in.",
        "How long: at least 14 days, the days of travel not counted.",
        "Where: Chengdu, Ya'an or the cadre's home city in Zhejiang, as they choose.",
        "Travel: the unit books and pays for the journey there and back.",
        "Pay: salary and post allowances continue in full during the rest.",
        "Cover: the unit names a colleague to cover the post before the rest starts.",
        "Health: an examination is offered in the rest city, within the 14 days.",
        "Family: a spouse may join the cadre for the rest, travel at their own cost.",
        "Return: go back up in two stages, a night at 2,500 m on the way.",
        "Delays: a rest postponed by work is taken within the next month.",
        "Records: the unit records every rest in the cadre's care schedule.",
    ],
    "zh-Hans": [
        "对象：派驻半年及以上的全体干部人才。",
        "频次：每三个月一次；健康打卡为红色且需要时，立即安排。",
        "时长：不少于 14 天，路途时间不计在内。",
        "地点：成都、雅安或浙江家乡城市，由本人选择。",
        "交通：往返交通由派驻单位预订并承担费用。",
        "待遇：休整期间工资和岗位津贴照常发放。",
        "顶岗：休整开始前，单位指定同事临时顶岗。",
        "体检：休整期间在休整城市安排一次体检。",
        "家属：配偶可同去休整，路费自理。",
        "返岗：分两段返回高海拔岗位，途中在 2500 米处住一晚。",
        "顺延：因工作推迟的休整，在下一个月内补休。",
        "记录：单位在本人的关怀计划中记录每次休整。",
    ],
}
PARAGRAPHS = {
    "en": [
        "Cadres posted above 3,000 m take regular rest at low altitude, arranged by their "
        "unit together with the prefecture's organization department, so that the body "
        "can recover from months of thin air before the next stretch at the post.",
        "Ask your unit's contact person if anything here is unclear; the rules of your own "
        "unit may add to these, never take from them.",
    ],
    "zh-Hans": [
        "派驻海拔 3000 米以上岗位的干部，由派驻单位会同州委组织部定期安排到低海拔地区休整，"
        "让身体在长时间缺氧之后得到恢复，再回到岗位。",
        "如有不清楚的地方，请咨询本单位联系人；本单位的规定只能在此基础上增加，不能减少。",
    ],
}
QUESTION = {"en": "What is the Litang rest rota?", "zh-Hans": "理塘轮休制度是什么？"}


def long_document(lang: str) -> str:
    en = lang == "en"
    items = "\n".join(f"- {item}" for item in ITEMS[lang])
    first, last = PARAGRAPHS[lang]
    return f"""---
id: litang-rest-rota-{lang.lower()}
language: {lang}
title: {"Litang rest rota for high-altitude cadres" if en else "理塘高海拔岗位干部轮休制度"}
issuer: {"Litang County Organization Department" if en else "理塘县委组织部"}
date: 2026-03-01
---
## {QUESTION[lang].rstrip("?？")} {{#rota}}

{first}

{items}

{last}
"""


def flat(text: str) -> str:
    """Text without any white space (a paragraph cut across pages still reads the same)."""
    return re.sub(r"\s+", "", plain_text(text))


async def read_every_page(user, message, lang: str) -> list[str]:
    """The page shown, then each next one through "More ▶" (edited in place, each press
    answered once), then back to the first through "◀"."""
    pages = [message.text]
    more, back = t(lang, "page.more", page=0, pages=0)[:3], "◀"
    while (found := [b for b in message.buttons if b["text"].startswith(more)]) != []:
        query = await user.press(found[0]["callback_data"], message=message)
        await user.callback_answer(query)
        message = await user.wait_edit(message)
        pages.append(message.text)
        assert len(pages) <= 20
    while (found := [b for b in message.buttons if b["text"].startswith(back)]) != []:
        await user.press(found[0]["callback_data"], message=message)
        await user.callback_answer()
        message = await user.wait_edit(message)
    assert message.text == pages[0]
    return pages


def assert_one_screen_each(pages: list[str]) -> None:
    assert [n for n in map(lines_on_phone, pages) if n > SCREEN] == []


async def paged(user, command: str, lang: str) -> list[str]:
    """Every page of what `command` answers: more than one, each one screen."""
    await user.send(command)
    pages = await read_every_page(user, await user.next_message(), lang)
    assert len(pages) >= 2
    assert_one_screen_each(pages)
    return pages


def assert_each_answered_once(bot) -> None:
    answered = [a.query_id for a in bot.emulator.world.callback_answers]
    assert len(answered) == len(set(answered))


def admin_user(bot, lang: str):
    bot.db.call(people.set_language, factories.ADMIN_ID, lang)
    return bot.admin(language_code="zh-hans" if lang == "zh-Hans" else "en")


@pytest.mark.parametrize("lang", LANGS)
async def test_a_long_answer_is_a_screen_a_page_each_with_its_source_and_nothing_lost(bot, lang):
    factories.person(bot.db, CADRE, language=lang, assignment_end=None)
    admin = admin_user(bot, lang)
    await admin.send_document(f"rota-{lang}.md", long_document(lang).encode())
    await admin.wait_for(f"litang-rest-rota-{lang.lower()}")
    user = bot.user(CADRE, "Li", language_code=lang)
    await user.send(QUESTION[lang])
    first = await user.next_message()
    pages = await read_every_page(user, first, lang)
    assert len(pages) >= 3
    assert_one_screen_each(pages)
    issuer = "Litang County Organization Department" if lang == "en" else "理塘县委组织部"
    source = (
        "📄 Source: Litang rest rota" if lang == "en" else "📄 出处：《理塘高海拔岗位干部轮休制度》"
    )
    title = QUESTION[lang].rstrip("?？")
    assert issuer in pages[0] and "2026-03-01" in pages[0]  # the full source on the first page
    assert all(page.startswith(title) and source in page for page in pages)  # and on each
    bodies = "".join(flat(page.split("\n", 1)[1].split("📄")[0]) for page in pages)
    for line in [*PARAGRAPHS[lang], *ITEMS[lang]]:
        assert flat(line) in bodies, line
    # feedback given on page 1 stays given on every page; the buttons under it stay
    await user.press("👍", message=first)
    await user.callback_answer()
    await user.wait_edit(first)
    again = await read_every_page(user, first, lang)
    assert again == pages
    assert "👍" not in str(first.buttons) and t(lang, "kb.button.person") in str(first.buttons)
    assert_each_answered_once(bot)
    assert too_long(bot) == []  # and every other message sent, in every chat


async def test_a_topic_chosen_after_not_sure_is_paged_too(bot):
    factories.person(bot.db, CADRE, language="en", assignment_end=None)
    user = bot.user(CADRE, "Li", language_code="en")
    await user.send("What's the weather like on the plateau?")
    unsure = await user.next_message()
    counts = []
    for topic in [b["callback_data"] for b in unsure.buttons if b["callback_data"][:5] == "kb:t:"]:
        await user.press(topic, message=unsure)
        answer = await user.wait_for("Source:")
        pages = await read_every_page(user, answer, "en")
        assert_one_screen_each(pages)
        assert all("📄 Source:" in page for page in pages)
        counts.append(len(pages))
    assert len(counts) == 3 and max(counts) > 1
    assert_each_answered_once(bot)
    assert too_long(bot) == []


async def test_a_stale_or_forged_answer_page_is_answered_politely(bot):
    factories.person(bot.db, CADRE, language="en", assignment_end=None)
    admin = admin_user(bot, "en")
    await admin.send_document("rota-en.md", long_document("en").encode())
    await admin.wait_for("is now version 1")
    user = bot.user(CADRE, "Li", language_code="en")
    await user.send(QUESTION["en"])
    first = await user.next_message()
    more = next(b["callback_data"] for b in first.buttons if b["callback_data"].startswith("kb:pg"))
    _, _, question, key, _ = more.split(":")
    other = bot.user(1002, "Wang", language_code="en")
    factories.person(bot.db, 1002, language="en", assignment_end=None)
    for data, presser in (
        (f"kb:pg:{question}:{key}:99", user),  # a page the answer does not have
        (f"kb:pg:{question}:0000000000:1", user),  # a topic that is gone
        (more, other),  # someone else's answer
    ):
        await presser.press_forged(data, message=first)
        told = await presser.callback_answer()
        assert told.text == t("en", "form.stale")
    assert first.history == []  # nothing was edited
    assert_each_answered_once(bot)
    assert too_long(bot) == []  # and every other message sent, in every chat


@pytest.mark.parametrize("lang", LANGS)
async def test_the_document_list_and_the_upload_help_are_a_screen_a_page(bot, lang):
    admin = admin_user(bot, lang)
    for number in range(8):
        document = long_document(lang).replace(
            f"id: litang-rest-rota-{lang.lower()}", f"id: county-rules-{number}"
        )
        await admin.send_document(f"county-rules-{number}.md", document.encode())
        await admin.wait_for(f"county-rules-{number}")
    pages = await paged(admin, "/kb", lang)
    everything = "\n".join(pages)
    assert all(f"county-rules-{n}" in everything for n in range(8))
    assert "key-tasks-2022" in everything and "/kb retire" in everything
    header = plain_text(t(lang, "kb.docs.header", count=10))
    assert all(page.startswith(header) for page in pages)
    listing = admin.last_message
    await admin.press_forged("kb:dl:99", message=listing)  # a page the list does not have
    assert (await admin.callback_answer()).text == t(lang, "form.stale")

    everything = flat("".join(await paged(admin, "/kb upload", lang)))
    for line in ("id: example-document", "supersedes: [key-tasks-2022]", "正文 Text", "##"):
        assert flat(line) in everything
    assert_each_answered_once(bot)
    assert too_long(bot) == []  # and every other message sent, in every chat


@pytest.mark.parametrize("lang", LANGS)
async def test_kbstats_is_a_screen_a_page(bot, lang):
    cadre = factories.person(bot.db, CADRE, language=lang, assignment_end=None)
    asked = [
        (
            f"Question {n}: can my unit pay my family's flights to Kangding for my winter rest?"
            if lang == "en"
            else f"问题{n}：今年冬天我去低海拔休整时，单位能否报销家属往返康定的机票费用？"
        )
        for n in range(10)
    ]
    with bot.db.session() as session:
        for n, text in enumerate(asked):
            unanswered = n < 5
            session.add(
                KbQuestion(
                    person_id=cadre.id,
                    language=lang,
                    text=text,
                    grouping=f"q{n}",
                    outcome="not_sure" if unanswered else "answer",
                    feedback=None if unanswered else -1,
                    created_at=clock.now() - timedelta(days=1),
                )
            )
        session.commit()
    admin = admin_user(bot, lang)
    everything = flat("".join(await paged(admin, "/kbstats", lang)))
    assert all(flat(text) in everything for text in asked)
    assert_each_answered_once(bot)
    assert too_long(bot) == []  # and every other message sent, in every chat


def every_duty_group(bot) -> list[str]:
    """A WeCom and a DingTalk group for each prefecture: the most there can be."""
    admin = bot.db.call(people.find, factories.ADMIN_ID)
    names = []
    for prefecture in ("ganzi", "aba", "liangshan"):
        for channel in (Channel.WECOM, Channel.DINGTALK):
            name = f"{prefecture} {channel.value} duty group of the county offices"
            request = groups.GroupRequest(
                prefecture=prefecture,
                channel=channel,
                url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=0123456789abcdef"
                if channel == Channel.WECOM
                else "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef",
                secret="SEC0123456789abcdef" if channel == Channel.DINGTALK else None,
                name=name,
            )
            bot.db.call(groups.set_group, admin, request)
            names.append(name)
    return names


@pytest.mark.parametrize("lang", LANGS)
async def test_dutygroup_is_a_screen_a_page_with_the_buttons_of_its_groups(bot, lang):
    admin = admin_user(bot, lang)
    names = every_duty_group(bot)
    await admin.send("/dutygroup")
    listing = await admin.next_message()
    pages, buttons = [listing.text], [listing.buttons]
    more = t(lang, "page.more", page=0, pages=0)[:3]
    while found := [b for b in listing.buttons if b["text"].startswith(more)]:
        await admin.press(found[0]["callback_data"], message=listing)
        await admin.callback_answer()
        listing = await admin.wait_edit(listing)
        pages.append(listing.text)
        buttons.append(listing.buttons)
    assert len(pages) >= 2
    assert_one_screen_each(pages)
    assert all(name in "\n".join(pages) for name in names)
    assert "/dutygroup set" in pages[-1]
    with bot.db.session() as session:
        ids = [g.id for g in session.exec(select(DutyGroup))]
    for page, shown in zip(pages, buttons, strict=True):  # a group's buttons where it is
        on_page = {int(m) for m in re.findall(r"^#(\d+) ", page, re.M)}
        tested = {int(b["callback_data"].split(":")[2]) for b in shown if "dg:test:" in str(b)}
        assert tested == on_page
    assert set().union(*[{int(m) for m in re.findall(r"^#(\d+) ", p, re.M)} for p in pages]) == set(
        ids
    )
    await admin.press_forged("dg:pg:40", message=listing)
    assert (await admin.callback_answer()).text == t(lang, "form.stale")
    assert_each_answered_once(bot)
    assert too_long(bot) == []  # and every other message sent, in every chat


LONG_ID = "county-office-oxygen-concentrators-and-cylinders-rules.2023-reva"  # 64 characters


@pytest.mark.parametrize("lang", LANGS)
async def test_kb_show_of_a_document_with_many_versions_is_a_screen_a_page(bot, lang):
    assert len(LONG_ID) == 64
    admin = admin_user(bot, lang)
    for number in range(1, 13):
        document = long_document("en").replace("id: litang-rest-rota-en", f"id: {LONG_ID}")
        document = document.replace("## ", f"## Revision {number}: ", 1)
        await admin.send_document(f"{LONG_ID}.md", document.encode())
        await admin.wait_for(LONG_ID)
    pages = await paged(admin, f"/kb show {LONG_ID}", lang)
    everything = "\n".join(pages)
    assert all(f"v{n} " in everything for n in range(1, 13))  # nothing lost
    shown = admin.last_message
    assert all(len(b["callback_data"].encode()) <= 64 for b in shown.buttons)
    await admin.press_forged("kb:sv:000000000000:1", message=shown)  # no such document
    assert (await admin.callback_answer()).text == t(lang, "form.stale")
    assert_each_answered_once(bot)
    assert too_long(bot) == []


@pytest.mark.parametrize("lang", LANGS)
async def test_questions_waiting_for_a_person_are_a_screen_a_page(bot, lang):
    cadre = factories.person(bot.db, CADRE, language=lang, real_name="Zhuoma Ciren Lhamo")
    asked = []
    with bot.db.session() as s:
        for number in range(9):
            text = f"Question {number}: " + "can my family visit me at my posting in winter? " * 3
            question = KbQuestion(
                person_id=cadre.id, language=lang, text=text, grouping=str(number), outcome="none"
            )
            s.add(question)
            s.flush()
            assert question.id is not None
            handoffs.open_handoff(s, question.id, s.merge(cadre))
            asked.append(f"Question {number}:")
        s.commit()
    admin = admin_user(bot, lang)
    pages = await paged(admin, "/questions", lang)
    everything = "\n".join(pages)
    assert all(question in everything for question in asked)  # every one, oldest first
    assert everything.index("Question 0:") < everything.index("Question 8:")
    replies = {
        b["callback_data"] for b in admin.last_message.buttons if "kb:rp:" in b["callback_data"]
    }
    assert replies  # each page keeps the Reply buttons of its questions
    # the reminder lists the oldest and sends the admin to /questions for the others
    later = clock.now() + handoffs.FIRST_REMINDER + timedelta(minutes=1)
    assert bot.db.call(handoffs.remind_admins, later) == 9
    reminder = await admin.wait_for("/questions")
    assert "Question 0:" in reminder.text and "7" in reminder.text.splitlines()[-1]
    assert_each_answered_once(bot)
    assert too_long(bot) == []
