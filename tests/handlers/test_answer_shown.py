"""The chosen answer stays visible (issue 16, point 6): a form's question, answered by a
button, is edited to show the answer under it, and its buttons go."""

from __future__ import annotations

from services.i18n import t
from tests.handlers.test_oxygen_conversation import team
from tests.support import factories
from tests.support.checkin_helpers import make_person, start_checkin


def answered(lang: str, label: str) -> str:
    return t(lang, "form.answered", answer=label)


async def test_the_check_in_feeling_stays_visible_in_english(bot):
    make_person(bot.db, 1001)
    user = bot.user(1001, "Li", language_code="en")
    await start_checkin(user)
    question = user.bot_messages[-1]
    asked = question.text
    label = question.button("ci:feeling:fine")["text"]
    await user.press("ci:feeling:fine")
    await user.wait_edit(question, lambda m: not m.buttons)
    assert question.text.startswith(asked)  # the question stays
    assert question.text.endswith(f"Your answer: {label}")
    await user.wait_for(lambda m: "ci:flags:none" in str(m.reply_markup))


async def test_the_check_in_feeling_stays_visible_in_chinese(bot):
    make_person(bot.db, 1002, "王小明", language="zh-Hans")
    user = bot.user(1002, "小明")
    await user.send("📝 健康打卡")
    question = await user.wait_for("今天您感觉怎么样")
    await user.press("😊 感觉良好")
    await user.wait_edit(question, lambda m: not m.buttons)
    assert "今天您感觉怎么样" in question.text
    assert question.text.endswith(answered("zh-Hans", "😊 感觉良好"))
    assert question.text.endswith("您的选择：😊 感觉良好")


async def test_registration_answers_stay_visible_with_their_formatting(bot):
    user = bot.user(1003, "小明", phone_number="+8613800138000")
    await user.send("/start")
    choose = await user.wait_for("choose your language")
    await user.press("中文")
    await user.wait_edit(choose, lambda m: not m.buttons)
    assert choose.text.endswith("您的选择：中文")
    consent = await user.wait_for(lambda m: "f:consent:yes" in str(m.reply_markup))
    bold_before = [e for e in consent.entities if e["type"] == "bold"]
    assert bold_before  # the title is bold
    label = consent.button("f:consent:yes")["text"]
    await user.press("f:consent:yes")
    await user.wait_edit(consent, lambda m: not m.buttons)
    assert consent.text.endswith(answered("zh-Hans", label))
    # the question's own formatting survives the edit
    assert [e for e in consent.entities if e["type"] == "bold"] == bold_before


async def test_the_oxygen_form_shows_what_was_chosen_in_english(bot):
    team(bot)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/oxygen")
    what = await user.wait_for("What do you need?")
    await user.press("Oxygen cylinder")
    await user.wait_edit(what, lambda m: not m.buttons)
    assert "What do you need?" in what.text
    assert what.text.endswith("Your answer: Oxygen cylinder")


async def test_a_profile_edit_in_chinese_shows_the_chosen_prefecture(bot):
    factories.person(bot.db, 1004, language="zh-Hans", assignment_end=None)
    user = bot.user(1004, "小明", language_code="zh-hans")
    await user.send("/me")
    await user.next_message()
    await user.press("me:edit:posting")
    question = await user.wait_for(lambda m: "f:pref:ganzi" in str(m.reply_markup))
    label = question.button("f:pref:ganzi")["text"]
    await user.press("f:pref:ganzi")
    await user.wait_edit(question, lambda m: not m.buttons)
    assert question.text.endswith(f"您的选择：{label}")
