"""Every label in the reader's language (issue 16, point 3): the county seat, a place tapped
on a button and shown on another person's card, and directory names are stored so that
each reader gets them in their own language."""

from __future__ import annotations

import re

from models import Role
from services import directory, oxygen, people, roster
from services.postings import load_postings
from tests.support import factories
from tests.support.flows import to_the_altitude_in_english

HAN = re.compile(r"[\u4e00-\u9fff]")


async def test_an_english_reader_is_told_the_county_seat_in_english(bot):
    user = bot.user(1002, "Li", language_code="en")
    question = await to_the_altitude_in_english(user, "ganzi.litang")
    assert "The county seat of Litang lies at about 4014 m" in question.text
    assert not HAN.search(question.text), question.text  # it said "(高城镇)"


def test_a_chinese_reader_gets_the_seat_town_and_everyone_else_the_county():
    postings = load_postings()
    assert postings.seat_name("ganzi.litang", "zh-Hans") == "高城镇"
    assert postings.seat_name("ganzi.litang", "en") == "Litang"
    assert postings.seat_name("liangshan.dechang", "zh-Hans") == "德昌县"  # no town known


async def test_a_place_tapped_in_chinese_reaches_an_english_officer_in_english(bot):
    bot.db.call(people.set_language, 9001, "en")
    factories.person(bot.db, 1001, real_name="李伟", language="zh-Hans")
    duty_p = factories.person(
        bot.db, 2001, role=Role.DUTY_OFFICER, real_name="Zhou Duty", language="en"
    )
    bot.db.call(roster.go_on_duty, duty_p, 8)
    cadre = bot.user(1001, "李伟")
    duty = bot.user(2001, "Zhou", language_code="en")
    await duty.send("/help")
    await duty.next_message()
    await cadre.send("/oxygen")
    await cadre.wait_for("需要什么")
    await cadre.press("cf:ox:w:cylinder")
    await cadre.wait_for("在哪里")
    await cadre.press("cf:ox:p:dorm")
    await cadre.wait_for("有多急")
    await cadre.press("cf:ox:u:today")
    confirm = await cadre.wait_for("请确认")
    assert "宿舍" in confirm.text
    await cadre.press("cf:ox:ok")
    notice = await duty.wait_for("Oxygen request #", timeout=10)
    assert "Dormitory" in notice.text and "宿舍" not in notice.text
    await cadre.send("/oxygen")
    mine = await cadre.wait_for("我的供氧申请")
    assert "宿舍" in mine.text and "Dormitory" not in mine.text


def test_a_tapped_place_is_stored_as_a_choice_and_a_typed_one_as_typed():
    stored = oxygen.place_key("posting")
    assert stored is not None and oxygen.place_key("attic") is None
    assert oxygen.place_text("en", stored, "ganzi.litang") == "My posting (Litang)"
    assert oxygen.place_text("zh-Hans", stored, "ganzi.litang") == "我的岗位（理塘县）"
    assert oxygen.place_text("en", "县招待所 3 楼", None) == "县招待所 3 楼"


def test_a_directory_name_changed_in_one_language_keeps_the_other(db):
    zh_admin = factories.admin(db)
    en_admin = factories.admin(db, 9002)
    db.call(people.set_language, 9002, "en")
    en_admin = db.call(people.find, 9002)
    with db.session() as s:
        hospital = directory.entries_of(s, "ganzi")[0]
    english = hospital.name_en
    assert english and not HAN.search(english)
    db.call(directory.update_field, zh_admin, hospital.id, "name", "甘孜州人民医院（新院区）")
    renamed = db.call(directory.get, hospital.id)
    assert renamed.name_zh == "甘孜州人民医院（新院区）" and renamed.name_en == english
    # an entry added in Chinese is a copy in English until an English name is given...
    added = db.call(directory.add, zh_admin, "ganzi", "hospital", "理塘县人民医院")
    assert directory.entry_name(added, "en") == "理塘县人民医院"
    db.call(directory.update_field, zh_admin, added.id, "name", "理塘县人民医院（总院）")
    assert db.call(directory.get, added.id).name_en == "理塘县人民医院（总院）"
    # ...and an English name never replaces the Chinese one
    db.call(directory.update_field, en_admin, added.id, "name", "Litang County People's Hospital")
    both = db.call(directory.get, added.id)
    assert both.name_zh == "理塘县人民医院（总院）"
    assert both.name_en == "Litang County People's Hospital"
