"""People can be named (issue 16, point 9): /people shows each person's number (#id);
/tag and /untag take a name (or part of one), offer buttons when it fits several people,
and answer with the names affected."""

from __future__ import annotations

from sqlmodel import select

from models import PersonTag
from services import people
from tests.support.botfixtures import ADMIN_ID
from tests.support.factories import person


def tags_of(db, person_id: int) -> set[str]:
    with db.session() as s:
        return set(s.exec(select(PersonTag.tag).where(PersonTag.person_id == person_id)))


def team(bot, language: str = "zh-Hans"):
    bot.db.call(people.set_language, ADMIN_ID, language)
    admin = bot.admin(language_code="zh-hans" if language == "zh-Hans" else "en")
    li = person(bot.db, 1001, real_name="李伟", language="zh-Hans")
    li2 = person(bot.db, 1002, real_name="李伟华", language="zh-Hans")
    zhang = person(bot.db, 1003, real_name="张强", language="zh-Hans")
    return admin, li, li2, zhang


async def test_people_shows_each_persons_number(bot):
    admin, li, li2, zhang = team(bot, "en")
    await admin.send("/people")
    listing = await admin.wait_for("People")
    for p in (li, li2, zhang):
        assert f"#{p.id} ✅ {p.real_name}" in listing.text
    labels = [b["text"] for b in listing.buttons]
    assert f"#{li.id} ✅ 李伟" in labels


async def test_a_name_that_fits_one_person_is_tagged_and_named(bot):
    admin, li, li2, zhang = team(bot)
    await admin.send("/tag zj2026 张强")
    done = await admin.wait_for("标签")
    assert "已给 张强 加上标签“zj2026”" in done.text
    assert tags_of(bot.db, zhang.id) == {"zj2026"}
    # an exact name wins over longer names that contain it
    await admin.send("/tag zj2026 李伟")
    done = await admin.wait_for("李伟")
    assert "已给 李伟 加上标签" in done.text
    assert tags_of(bot.db, li.id) == {"zj2026"} and tags_of(bot.db, li2.id) == set()
    # numbers and ids work together; the answer names everyone affected
    await admin.send(f"/untag zj2026 #{li.id} 1003")
    done = await admin.wait_for("移除")
    assert "已从 李伟、张强 移除标签“zj2026”" in done.text
    assert tags_of(bot.db, li.id) == set() == tags_of(bot.db, zhang.id)


async def test_a_name_that_fits_several_people_offers_buttons(bot):
    admin, li, li2, _ = team(bot, "en")
    await admin.send("/tag spring 李")
    choose = await admin.wait_for("Several people match")
    labels = [b["text"] for b in choose.buttons]
    assert labels == [f"#{li.id} 李伟", f"#{li2.id} 李伟华"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in choose.buttons)
    assert tags_of(bot.db, li2.id) == set()  # nothing until one is picked
    await admin.press(f"#{li2.id} 李伟华")
    done = await admin.wait_for("given to")
    assert "Tag “spring” given to 李伟华." in done.text
    assert tags_of(bot.db, li2.id) == {"spring"} and tags_of(bot.db, li.id) == set()
    await admin.wait_edit(choose, lambda m: not m.buttons)  # the choice stays visible
    assert choose.text.endswith(f"Your answer: #{li2.id} 李伟华")


async def test_a_name_nobody_has_is_reported_and_changes_nothing(bot):
    admin, li, li2, zhang = team(bot, "en")
    await admin.send("/tag spring 王五")
    done = await admin.wait_for("Not found")
    assert "Not found: 王五" in done.text and "given to" not in done.text
    assert all(tags_of(bot.db, p.id) == set() for p in (li, li2, zhang))


async def test_a_cadre_cannot_tag_by_pressing_a_forged_button(bot):
    admin, li, _, _ = team(bot, "en")
    await admin.send("/tag spring 李")
    choose = await admin.wait_for("Several people match")
    cadre = bot.user(1003, "Zhang", language_code="zh-hans")
    await cadre.press(choose.buttons[0]["callback_data"], message=choose)
    refused = await cadre.callback_answer()
    assert refused.text  # the gate's refusal, in a pop-up
    assert tags_of(bot.db, li.id) == set()
