"""Input kept as typed (issue 16, point 5): names and units keep their full-width
punctuation; only digits are normalised."""

from __future__ import annotations

import pytest

from services import people
from services.validation import InvalidInput, parse_name, parse_unit
from tests.handlers.test_registration import answer_until_summary, finish_after_altitude
from tests.support import factories

UNIT = "杭州市卫健委（办公室）"


def test_units_and_names_keep_full_width_punctuation_and_only_digits_change():
    assert parse_unit(UNIT) == UNIT
    assert parse_unit("浙江省人民医院，第２门诊部。") == "浙江省人民医院，第2门诊部。"
    assert parse_unit("  杭州市　 卫健委  ") == "杭州市 卫健委"  # runs of spaces: one space
    assert parse_name("阿依·木呷") == "阿依·木呷"
    assert parse_name("欧阳－明") == "欧阳－明"  # checked as "欧阳-明", kept as typed
    # what the half-width form refuses, the full-width form refuses too
    for refused in ("＜script＞ 单位", "１"):
        with pytest.raises(InvalidInput):
            parse_unit(refused)
    with pytest.raises(InvalidInput):
        parse_name("李１伟")


async def test_a_unit_typed_with_full_width_brackets_is_saved_and_shown_as_typed(bot):
    bot.admin()
    user = bot.user(1001, "小明", phone_number="+8613800138000")
    await answer_until_summary(user, unit=UNIT)
    await user.next_message()
    await user.press("f:alt:seat")
    summary = await finish_after_altitude(user)
    assert UNIT in summary.text
    await user.press("f:ok:submit")
    await user.wait_for("管理员审核")
    assert bot.db.call(people.find, 1001).home_unit == UNIT


async def test_a_profile_edit_keeps_the_unit_as_typed(bot):
    factories.person(bot.db, 1001, language="zh-Hans", assignment_end=None)
    user = bot.user(1001, "小明", language_code="zh-hans")
    await user.send("/me")
    await user.next_message()
    await user.press("me:edit:unit")
    await user.next_message()
    await user.send("四川省甘孜州（理塘县）人民医院")
    await user.wait_for("已保存")
    assert bot.db.call(people.find, 1001).home_unit == "四川省甘孜州（理塘县）人民医院"
    await user.send("/me")
    card = await user.next_message()
    assert "四川省甘孜州（理塘县）人民医院" in card.text
