"""One grammar for numbers and button data, through the emulator: digits that only look like
digits are refused with the usual message and change nothing, full-width digits are
accepted, forged or outdated button data gets the stale-button answer (once), a guest
cannot confirm a broadcast, and the form's confirmation step is asked again properly."""

from __future__ import annotations

import pytest
from sqlmodel import select

from handlers.callbacks import GRAMMAR
from models import AlertStatus, AuditEntry
from services import people
from services.alerts import policy, raising
from services.i18n import plain_text, t
from tests.support import factories
from tests.support.flows import finish_after_altitude_in_english, to_the_altitude_in_english
from tests.support.sos_support import CADRE, ON_DUTY, emergency_running, staff, until

pytestmark = pytest.mark.asyncio

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5f6c2f80000000049454e44ae426082"
)
STALE = t("en", "form.stale")


async def answered_once(bot, user, query_id: str) -> str:
    """The press's one answer; a later /help round trip shows that no second one came."""
    answer = await user.callback_answer(query_id)
    sent = await user.send("/help")
    await user.wait_for(lambda m: m.message_id > sent.message_id)
    answers = [a for a in bot.emulator.world.callback_answers if a.query_id == query_id]
    assert len(answers) == 1
    return answer.text or ""


async def to_the_altitude_question(user) -> None:
    question = await to_the_altitude_in_english(user, "ganzi.xinlong")
    assert "no reliable altitude" in question.text


async def test_odd_digits_at_the_altitude_question_get_the_usual_answer(bot):
    user = bot.user(1002, "Li", language_code="en")
    await to_the_altitude_question(user)
    refusal = t("en", "invalid.altitude", low=0, high=6000)
    for typed in ("፩፪፫", "²", "٣٦٥٠", "3⁶50"):
        await user.send(typed)
        answer = await user.next_message()
        assert answer.text == plain_text(refusal).strip()
        await user.wait_for("altitude")  # the same question again, nothing stored
    await user.send("３６５０米")  # full-width, from a Chinese keyboard
    summary = await finish_after_altitude_in_english(user, "１３９００１３９０００")
    assert "3650 m" in summary.text and "13900139000" in summary.text


async def test_the_confirmation_step_is_asked_again_after_a_stray_message_or_photo(bot):
    user = bot.user(1002, "Li", language_code="en")
    await to_the_altitude_question(user)
    await user.send("3650")
    await finish_after_altitude_in_english(user)
    for stray in ("hello?", None):
        if stray is None:
            await user.send_photo(PNG)
        else:
            await user.send(stray)
        again = await user.wait_for("check your details")
        assert "f:ok:submit" in str(again.reply_markup)
        assert all("form.ask" not in m.text for m in user.bot_messages)
    await user.press("f:ok:submit")
    await user.wait_for("administrator has approved")
    assert bot.db.call(people.find, 1002).posting_altitude_m == 3650


async def test_an_officer_typing_odd_digits_after_alert_gets_the_usage(bot):
    staff(bot.db)
    officer = bot.user(ON_DUTY, "Zhang")
    usage = t("zh-Hans", "sos.alert_usage")
    for typed in ("/alert ²", "/alert ፩", "/alert ١", "/alert 1²"):
        await officer.send(typed)
        assert (await officer.next_message()).text == usage


async def test_forged_alert_buttons_are_stale_and_change_nothing(bot):
    found = staff(bot.db)
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        alert_id = bot.db.call(
            raising.raise_alert, person_id=found["cadre"].id, cause="sos", policy=bot.policy
        )
        card = await officer.wait_for(lambda m: f"sos:ack:{alert_id}" in str(m.reply_markup))
        for data in (
            "sos:ack:١",
            f"sos:ack:{alert_id}:extra:stuff",
            f"sos:ack:{alert_id}²",
            f"sos:res:{alert_id}:1",
            "sos:ack:",
        ):
            query = await officer.press_forged(data, message=card)
            assert await answered_once(bot, officer, query) == t("zh-Hans", "form.stale")
            assert bot.db.call(policy.get, alert_id).status == AlertStatus.OPEN
        query = await officer.press(f"sos:ack:{alert_id}", message=card)
        await officer.callback_answer(query)
        await until(lambda: bot.db.call(policy.get, alert_id).status == AlertStatus.ACKNOWLEDGED)
    with bot.db.session() as s:
        forged = s.exec(select(AuditEntry).where(AuditEntry.action == "denied.button")).all()
    assert len(forged) == 5 and {e.actor_telegram_id for e in forged} == {ON_DUTY}


async def test_a_guest_cannot_confirm_a_broadcast(bot):
    guest = bot.user(5555, "Guest", language_code="en")
    await guest.send("/help")
    await guest.next_message()
    for data in ("bc:ok:1", "bc:done"):
        query = await guest.press_forged(data)
        answer = await answered_once(bot, guest, query)
        assert answer == plain_text(t("en", "deny.unregistered"))[:200]
        assert "recorded" not in answer and t("en", "broadcast.thanks") != answer
    with bot.db.session() as s:
        denied = s.exec(
            select(AuditEntry).where(AuditEntry.action == "denied.confirm_notice")
        ).all()
    assert len(denied) == 2


async def test_every_kind_of_button_data_ending_in_a_superscript_is_stale(bot):
    """As an admin, who may press every button: the data itself is refused, never an error."""
    factories.person(bot.db, CADRE, real_name="Li Wei", language="en")
    admin = bot.admin(language_code="en")
    bot.db.call(people.set_language, factories.ADMIN_ID, "en")
    await admin.send("/help")
    await admin.next_message()
    samples = []
    for shapes in GRAMMAR.values():
        for shape, _ in shapes:
            kinds = shape.split(":")
            if "{n}" in kinds or "{-n}" in kinds:
                samples.append(
                    ":".join(
                        "1²" if k in ("{n}", "{-n}") else "x" if k == "{w}" else k.split("|")[0]
                        for k in kinds
                    )
                )
    assert len(samples) >= 21
    for data in samples:
        query = await admin.press_forged(data)
        assert (await admin.callback_answer(query)).text == STALE, data
    sent = await admin.send("/help")
    await admin.wait_for(lambda m: m.message_id > sent.message_id)
    assert all("went wrong" not in m.text for m in admin.bot_messages)
