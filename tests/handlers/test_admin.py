"""Admin commands through the emulator: /people (list, card, actions) and /invite."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from models import AuditEntry, Invitation, Person, Role, Status
from services import approvals, clock, people
from services.people import Draft
from tests.support.botfixtures import ADMIN_ID

COUNTIES = {"ganzi": "ganzi.litang", "aba": "aba.barkam", "liangshan": "liangshan.xichang"}


# ---------------------------------------------------------------------------- helpers


def make_person(
    db,
    telegram_id: int,
    name: str = "Li Wei",
    *,
    status: Status = Status.ACTIVE,
    role: Role = Role.CADRE,
    language: str = "en",
    prefecture: str = "ganzi",
) -> Person:
    """A registered person, created through the services (not the form)."""
    county = COUNTIES[prefecture]
    draft = Draft(
        language=language,
        consent_version=people.CONSENT_VERSION,
        real_name=name,
        phone="+8613800138000",
        home_unit="Hangzhou Health Commission",
        prefecture=prefecture,
        county=county,
        posting_altitude_m=people.posting_altitude(prefecture, county),
        altitude_source="county",
        assignment_start="2026-03-01",
        contact_name="Wang Fang",
        contact_phone="+8613900139000",
    )
    person = db.call(people.submit_registration, telegram_id, name, draft)
    admin = db.call(people.find, ADMIN_ID)
    if status != Status.PENDING:
        db.call(people.decide, admin, person.id, status != Status.REJECTED)
    if role != Role.CADRE:
        db.call(people.set_role, admin, person.id, role)
    if status == Status.SUSPENDED:
        db.call(people.set_status, admin, person.id, Status.SUSPENDED)
    return db.call(people.get, person.id)


def admin_speaks(bot, language: str = "en"):
    """The bootstrapped admin (Telegram id 9001), with their profile language set."""
    bot.db.call(people.set_language, ADMIN_ID, language)
    return bot.admin(language_code="en" if language == "en" else "zh-hans")


async def forge_press(user, data: str, message=None) -> str:
    """Press a button that was never shown: any callback data, under any bot message."""
    world = user.emu.world
    message = message or user.bot_messages[-1]
    query = world.new_callback_query(user.info, message, data)
    world.push_update(
        "callback_query",
        {
            "id": query.id,
            "from": user.info.to_api(),
            "message": world.message_to_api(message),
            "chat_instance": world.chat_instance(message.chat_id),
            "data": data,
        },
    )
    user._last_query = query.id
    return query.id


async def open_card(admin, person: Person):
    """/people, then the person's button: the list message turns into their card."""
    await admin.send("/people")
    listing = await admin.wait_for(lambda m: bool(m.buttons))
    await admin.press(f"ppl:c:{person.id}", message=listing)
    return await admin.wait_edit(listing, lambda m: "ppl:back" in str(m.reply_markup))


def denials(db, telegram_id: int) -> list[AuditEntry]:
    with db.session() as session:
        query = select(AuditEntry).where(
            AuditEntry.actor_telegram_id == telegram_id, AuditEntry.outcome == "denied"
        )
        return list(session.exec(query))


def failed_requests(bot) -> list[str]:
    """Bot API calls that failed, other than edits that changed nothing (ignored on purpose)
    and the admin's menu set at start-up before the fake admin's chat existed."""
    ignored = ("not modified", "setMyCommands -> 400 Bad Request: chat not found")
    return [str(r) for r in bot.emulator.errors if not any(i in str(r) for i in ignored)]


def menu(user) -> set[str]:
    return {c["command"] for c in user.commands()}


# ---------------------------------------------------------------------------- /people


async def test_people_lists_pages_and_filters_in_place_in_chinese(bot):
    for number in range(10):
        make_person(bot.db, 2000 + number, f"干部{number:02d}", language="zh-Hans")
    make_person(bot.db, 2100, "Li <Wei> & Co", status=Status.PENDING, prefecture="aba")
    make_person(bot.db, 2101, "卓玛", status=Status.PENDING, prefecture="aba")
    admin = admin_speaks(bot, "zh-Hans")

    await admin.send("/people")
    listing = await admin.next_message()
    assert "共 13 人" in listing.text and "第 1/2 页" in listing.text
    assert "Li <Wei> & Co" in listing.text  # HTML-escaped, shown literally
    person_buttons = [b for b in listing.buttons if b["callback_data"].startswith("ppl:c:")]
    assert len(person_buttons) == 8
    assert all(len(b["callback_data"].encode()) <= 64 for b in listing.buttons)

    await admin.press("更多 ▶ 2/2", message=listing)  # handlers.paging.page_buttons
    await admin.wait_edit(listing, "第 2/2 页")
    assert len([b for b in listing.buttons if b["callback_data"].startswith("ppl:c:")]) == 5
    assert admin.last_callback_answer is not None

    await admin.press("ppl:l:pending:-:0", message=listing)
    await admin.wait_edit(listing, "共 2 人")
    assert "卓玛" in listing.text and "干部00" not in listing.text
    assert "• 🕓 待审核" in [b["text"] for b in listing.buttons]

    await admin.press("甘孜州", message=listing)  # both filters at once
    await admin.wait_edit(listing, "共 0 人")
    await admin.press("全部", message=listing)  # the prefecture filter stays
    await admin.wait_edit(listing, "共 10 人")
    assert "甘孜州" in listing.text and "卓玛" not in listing.text

    await admin.press("⛔ 已暂停", message=listing)
    await admin.wait_edit(listing, "没有符合条件的人员")
    admin.assert_no_unread()  # every view was an edit of the same message
    assert bot.emulator.count("editMessageText") >= 4
    assert failed_requests(bot) == []


async def test_the_card_shows_the_person_and_back_returns_to_the_same_list(bot):
    areas_officer = make_person(bot.db, 2001, "Dawa", role=Role.DUTY_OFFICER)
    admin = admin_speaks(bot)
    await admin.send("/people")
    listing = await admin.next_message()
    await admin.press("✅ Active", message=listing)
    await admin.wait_edit(listing, lambda m: "• ✅ Active" in str(m.reply_markup))
    await admin.press("Ganzi", message=listing)
    await admin.wait_edit(listing, "1 found")
    await admin.press("Dawa", message=listing)
    card = await admin.wait_edit(listing, "Role: duty officer")
    for expected in (
        "Status: active",
        "Ganzi · Litang",
        "4014 m (county seat figure)",
        "Duty areas: Ganzi",
        "Hangzhou Health Commission",
    ):
        assert expected in card.text
    labels = [b["text"] for b in card.buttons]
    assert "⛔ Suspend" in labels and "🗺 Duty areas" in labels and "✅ Approve" not in labels
    await admin.press("ppl:back", message=card)
    await admin.wait_edit(card, "1 found")
    assert "• ✅ Active" in [b["text"] for b in listing.buttons]
    assert areas_officer.id is not None


async def test_approve_from_the_card_tells_the_person_in_their_language(bot):
    pending = make_person(bot.db, 2001, "王小明", status=Status.PENDING, language="zh-Hans")
    user = bot.user(2001, "小明")
    admin = admin_speaks(bot)
    card = await open_card(admin, pending)
    assert "pending approval" in card.text
    await admin.press("✅ Approve", message=card)
    await admin.wait_edit(card, "Status: active")
    assert "✅ Approve" not in [b["text"] for b in card.buttons]
    welcome = await user.wait_for("已获批准")
    assert "/help" in welcome.text
    assert {"me", "mydata"} <= menu(user) and "people" not in menu(user)
    assert bot.db.call(people.get, pending.id).status == Status.ACTIVE
    assert failed_requests(bot) == []


async def test_reject_from_the_card_and_a_second_decision_is_refused(bot):
    pending = make_person(bot.db, 2001, "Tom", status=Status.PENDING)
    user = bot.user(2001, "Tom", language_code="en")
    admin = admin_speaks(bot)
    card = await open_card(admin, pending)
    rows = [[b["text"] for b in row] for row in card.reply_markup["inline_keyboard"]]
    assert ["✅ Approve"] in rows and ["❌ Reject"] in rows  # never side by side
    await admin.press("❌ Reject", message=card)
    await admin.wait_edit(card, "Reject the registration of Tom? They will be told.")
    assert bot.db.call(people.get, pending.id).status == Status.PENDING  # nothing yet
    await admin.press("⬅️ Back", message=card)
    await admin.wait_edit(card, lambda m: "ppl:no:" in str(m.reply_markup))
    await admin.press("❌ Reject", message=card)
    await admin.wait_edit(card, lambda m: "ppl:noy:" in str(m.reply_markup))
    await admin.press("❌ Yes, reject", message=card)
    await admin.wait_edit(card, "Status: rejected")
    await user.wait_for("not approved")
    await forge_press(admin, f"ppl:ok:{pending.id}", message=card)
    answer = await admin.callback_answer()
    assert answer.show_alert and "already been decided" in answer.text
    assert bot.db.call(people.get, pending.id).status == Status.REJECTED


async def test_a_role_change_follows_the_persons_menu_and_tells_them(bot):
    cadre = make_person(bot.db, 2001, "Li Wei")
    user = bot.user(2001, "Li", language_code="en")
    admin = admin_speaks(bot)
    card = await open_card(admin, cadre)
    await admin.press("👤 Change role", message=card)
    await admin.wait_edit(card, "Choose the new role")
    assert "✓ cadre" in [b["text"] for b in card.buttons]
    await admin.press("administrator", message=card)
    await admin.wait_edit(card, "Role: administrator")
    assert "administrator" in (await admin.callback_answer()).text
    told = await user.wait_for("changed your role")
    assert "administrator" in told.text
    await user.wait_until(lambda: "people" in menu(user))
    assert "invite" in menu(user)

    await user.send("/people")  # the new admin can use it at once
    assert "found" in (await user.next_message()).text

    await admin.press("👤 Change role", message=card)
    await admin.wait_edit(card, "Choose the new role")
    await admin.press("duty officer", message=card)
    await admin.wait_edit(card, "Role: duty officer")
    await user.wait_for("duty officer")
    await user.wait_until(lambda: "people" not in menu(user))
    person = bot.db.call(people.get, cadre.id)
    assert person.role == Role.DUTY_OFFICER
    assert bot.db.call(people.duty_areas, cadre.id) == ["ganzi"]
    assert "🗺 Duty areas" in [b["text"] for b in card.buttons]


async def test_an_admin_cannot_demote_or_suspend_themselves(bot):
    admin = admin_speaks(bot)
    me = bot.db.call(people.find, ADMIN_ID)
    card = await open_card(admin, me)
    await forge_press(admin, f"ppl:role:{me.id}:cadre", message=card)
    answer = await admin.callback_answer()
    assert answer.show_alert and "cannot remove your own admin role" in answer.text
    await admin.press(f"ppl:sus:{me.id}", message=card)
    answer = await admin.callback_answer()
    assert answer.show_alert and "cannot suspend your own account" in answer.text
    me = bot.db.call(people.find, ADMIN_ID)
    assert (me.role, me.status) == (Role.ADMIN, Status.ACTIVE)


async def test_set_altitude_asks_again_after_bad_input(bot):
    cadre = make_person(bot.db, 2001, "Li Wei")
    admin = admin_speaks(bot)
    card = await open_card(admin, cadre)
    await admin.press("⛰ Set altitude", message=card)
    await admin.wait_for("altitude of Li Wei's workplace in metres")
    for bad in ("abc", "99999", ""):
        await admin.send(bad)
        refusal = await admin.next_message()
        assert "whole number of metres between 0 and 6000" in refusal.text
        await admin.wait_for("altitude of Li Wei's workplace")
    await admin.send("3650 m")
    await admin.wait_for("is now 3650 m")
    fresh = await admin.next_message()
    assert "3650 m (set by an administrator)" in fresh.text and fresh.buttons
    person = bot.db.call(people.get, cadre.id)
    assert (person.posting_altitude_m, person.altitude_source) == (3650, "admin")

    await admin.send("4200")  # the question is over: a number is just text again
    assert "is now" not in (await admin.next_message()).text
    assert bot.db.call(people.get, cadre.id).posting_altitude_m == 3650


async def test_set_altitude_survives_a_restart_and_can_be_cancelled(bot):
    cadre = make_person(bot.db, 2001, "Li Wei")
    admin = admin_speaks(bot)
    card = await open_card(admin, cadre)
    await admin.press(f"ppl:alt:{cadre.id}", message=card)
    await admin.wait_for("in metres")
    await bot.restart()
    await admin.send("4100")
    await admin.wait_for("is now 4100 m")
    assert bot.db.call(people.get, cadre.id).posting_altitude_m == 4100

    await admin.press(f"ppl:alt:{cadre.id}")
    await admin.wait_for("in metres")
    await admin.send("/cancel")
    await admin.wait_for("altitude is unchanged")
    await admin.send("3000")
    await admin.next_message()
    assert bot.db.call(people.get, cadre.id).posting_altitude_m == 4100


async def test_an_unanswered_altitude_question_expires(bot, time_machine):
    cadre = make_person(bot.db, 2001, "Li Wei")
    admin = admin_speaks(bot)
    card = await open_card(admin, cadre)
    await admin.press(f"ppl:alt:{cadre.id}", message=card)
    await admin.wait_for("in metres")
    time_machine.move_to(clock.now() + timedelta(hours=2))
    await admin.send("3900")
    await admin.wait_for("has expired")
    assert bot.db.call(people.get, cadre.id).posting_altitude_m == 4014


async def test_duty_areas_are_toggled_for_duty_officers_only(bot):
    officer = make_person(bot.db, 2001, "Dawa", role=Role.DUTY_OFFICER)
    cadre = make_person(bot.db, 2002, "Li Wei")
    admin = admin_speaks(bot)
    card = await open_card(admin, officer)
    await admin.press("🗺 Duty areas", message=card)
    await admin.wait_edit(card, "Tap a prefecture")
    labels = [b["text"] for b in card.buttons]
    assert "☑️ Ganzi" in labels and "⬜ Aba" in labels
    await admin.press("⬜ Aba", message=card)
    assert (await admin.callback_answer()).text == "Aba added."
    await admin.wait_edit(card, "Duty areas: Aba, Ganzi")
    await admin.press("☑️ Ganzi", message=card)
    assert (await admin.callback_answer()).text == "Ganzi removed."
    await admin.wait_edit(card, "Duty areas: Aba\n")
    assert bot.db.call(people.duty_areas, officer.id) == ["aba"]
    await admin.press("⬅️ Back", message=card)
    await admin.wait_edit(card, lambda m: "⛔ Suspend" in str(m.reply_markup))

    await forge_press(admin, f"ppl:dt:{cadre.id}:aba", message=card)
    answer = await admin.callback_answer()
    assert answer.show_alert and "duty officers only" in answer.text
    assert bot.db.call(people.duty_areas, cadre.id) == []


async def test_suspend_and_reinstate(bot):
    cadre = make_person(bot.db, 2001, "王小明", language="zh-Hans")
    colleague = make_person(bot.db, 2002, "Anna", role=Role.ADMIN)
    user = bot.user(2001, "小明")
    other_admin = bot.user(2002, "Anna", language_code="en")
    admin = admin_speaks(bot)

    card = await open_card(admin, cadre)
    await admin.press("⛔ Suspend", message=card)
    asked = await admin.wait_edit(card, "they can still call for help with 🆘")
    rows = [[b["text"] for b in row] for row in asked.reply_markup["inline_keyboard"]]
    assert rows == [["⛔ Yes, suspend"], ["⬅️ Back"]]
    assert bot.db.call(people.get, cadre.id).status == Status.ACTIVE  # nothing yet
    await admin.press("⛔ Yes, suspend", message=card)
    await admin.wait_edit(card, "Status: suspended")
    assert "✅ Reinstate" in [b["text"] for b in card.buttons]
    await user.wait_for("管理员已暂停您的账号")
    await user.wait_until(lambda: "me" not in menu(user))
    # only 🆘 is left: suspension never takes the call for help away
    assert user.reply_keyboard == [[{"text": "🆘 紧急求助"}]]
    await user.send("你好")
    assert "已被暂停" in (await user.next_message()).text
    await user.send("/me")  # one's own data stays reachable (PIPL arts. 45, 47)
    assert "王小明" in (await user.next_message()).text

    await admin.press("✅ Reinstate", message=card)
    await admin.wait_edit(card, "Status: active")
    await user.wait_for("已恢复")
    await user.wait_until(lambda: "me" in menu(user))
    assert user.reply_keyboard  # the main keyboard is back

    colleague_card = await open_card(admin, colleague)
    await admin.press("⛔ Suspend", message=colleague_card)
    await admin.wait_edit(colleague_card, "Suspend Anna?")
    await admin.press("⛔ Yes, suspend", message=colleague_card)
    await admin.wait_edit(colleague_card, "Status: suspended")
    await other_admin.wait_for("suspended your account")
    for command in ("/people", "/invite"):
        await other_admin.send(command)
        assert "Your account is suspended" in (await other_admin.next_message()).text
    assert len(denials(bot.db, 2002)) == 2


async def test_suspend_and_reject_ask_first_in_chinese_with_the_actions_on_separate_rows(bot):
    """#12 point 7: a suspension says the person keeps SOS; the registration request an
    admin receives asks before rejecting, and ◀ brings the request's buttons back."""
    cadre = make_person(bot.db, 2001, "王小明", language="zh-Hans")
    admin = admin_speaks(bot, "zh-Hans")
    card = await open_card(admin, cadre)
    await admin.press("⛔ 暂停账号", message=card)
    asked = await admin.wait_edit(card, "仍可随时用 🆘（/sos）求助")
    assert "确定暂停 王小明 的账号吗" in asked.text
    rows = [[b["text"] for b in row] for row in asked.reply_markup["inline_keyboard"]]
    assert rows == [["⛔ 确认暂停"], ["⬅️ 返回"]]
    await admin.press("⬅️ 返回", message=card)
    await admin.wait_edit(card, lambda m: "ppl:sus:" in str(m.reply_markup))
    assert bot.db.call(people.get, cadre.id).status == Status.ACTIVE

    newcomer = bot.user(2002, "小李")
    pending = make_person(bot.db, 2002, "李新", status=Status.PENDING, language="zh-Hans")
    bot.db.call(approvals.queue_requests, pending)  # what registering queues
    request = await admin.wait_for("新的注册申请")
    rows = [[b["text"] for b in row] for row in request.reply_markup["inline_keyboard"]]
    assert rows == [["✅ 批准"], ["❌ 拒绝"]]
    await admin.press("❌ 拒绝", message=request)
    await admin.wait_edit(request, lambda m: "adm:noy:" in str(m.reply_markup))
    assert bot.db.call(people.find, 2002).status == Status.PENDING  # asking changed nothing
    await admin.press("⬅️ 返回", message=request)
    await admin.wait_edit(request, lambda m: "adm:ok:" in str(m.reply_markup))
    await admin.press("❌ 拒绝", message=request)
    await admin.wait_edit(request, lambda m: "adm:noy:" in str(m.reply_markup))
    await admin.press("❌ 确认拒绝", message=request)
    await admin.wait_edit(request, "拒绝")
    await newcomer.wait_for("未获批准")
    assert bot.db.call(people.find, 2002).status == Status.REJECTED


async def test_forged_or_stale_admin_buttons_get_a_polite_answer(bot):
    gone = make_person(bot.db, 2001, "Li Wei")
    bot.db.call(people.delete_own_data, 2001)
    admin = admin_speaks(bot)
    await admin.send("/people")
    listing = await admin.next_message()
    for data in (
        f"ppl:c:{gone.id}",
        f"ppl:role:{gone.id}:admin",
        f"ppl:alt:{gone.id}",
        f"ppl:sus:{gone.id}",
        f"ppl:susy:{gone.id}",
        f"ppl:dt:{gone.id}:aba",
        "ppl:ok:424242",
    ):
        await forge_press(admin, data, message=listing)
        answer = await admin.callback_answer()
        assert answer.show_alert and "no longer registered" in answer.text, data
    for data in (
        "ppl:c:abc",
        "ppl:c:123456789012345678901234567890",
        "ppl:role:1:emperor",
        "ppl:role:1:contact",
        "inv:r:contact",
        "ppl:l:all:atlantis:0",
        "ppl:l:nobody:-:0",
        "ppl:zzz",
        "inv:u:admin:3:0",
        "inv:e:emperor:7",
        "inv:u:admin:7",
    ):
        await forge_press(admin, data, message=listing)
        answer = await admin.callback_answer()
        assert answer.show_alert and "no longer active" in answer.text, data
    admin.assert_no_unread()  # no "something went wrong" message
    assert failed_requests(bot) == []
    with bot.db.session() as session:
        assert session.exec(select(Invitation)).first() is None


# ---------------------------------------------------------------------------- /invite


async def test_an_invitation_link_registers_a_duty_officer_without_approval(bot):
    admin = admin_speaks(bot)
    await admin.send("/invite")
    menu_message = await admin.next_message()
    assert "Which role" in menu_message.text
    await admin.press("duty officer", message=menu_message)
    await admin.wait_edit(menu_message, "How long")
    await admin.press("7 days", message=menu_message)
    await admin.wait_edit(menu_message, "How many")
    assert all(len(b["callback_data"].encode()) <= 64 for b in menu_message.buttons)
    await admin.press("5 people", message=menu_message)
    created = await admin.wait_edit(menu_message, "Invitation created")
    with bot.db.session() as session:
        invitation = session.exec(select(Invitation)).one()
    link = f"https://t.me/test_bot?start={invitation.code}"
    assert link in created.text and "duty officer" in created.text and "5 people" in created.text
    assert (invitation.role, invitation.max_uses) == (Role.DUTY_OFFICER, 5)
    assert timedelta(days=6) < invitation.expires_at - clock.now() <= timedelta(days=7)
    assert created.button("📋 Copy the link")["copy_text"]["text"] == link

    newcomer = bot.user(3001, "Dawa", language_code="en", phone_number="+8613800138001")
    await newcomer.send(f"/start {invitation.code}")
    await newcomer.wait_for("Hello!")
    await newcomer.wait_for("choose your language")
    await newcomer.press("f:lang:en")
    await newcomer.next_message()
    await newcomer.press("f:consent:yes")
    await newcomer.next_message()
    await newcomer.send("Dawa Tsering")
    await newcomer.next_message()
    await newcomer.send("13800138001")
    await newcomer.next_message()
    await newcomer.send("Hangzhou Health Commission")
    await newcomer.next_message()
    await newcomer.press("f:pref:ganzi")
    await newcomer.next_message()
    await newcomer.press("f:cty:ganzi.litang")
    await newcomer.next_message()
    await newcomer.press("f:alt:seat")
    await newcomer.next_message()
    await newcomer.press("f:start:today")
    await newcomer.next_message()
    await newcomer.press("f:end:2")
    await newcomer.next_message()
    await newcomer.send("Wang Fang")
    await newcomer.next_message()
    await newcomer.send("13900139000")
    await newcomer.wait_for("Please check your details")
    await newcomer.press("f:ok:submit")
    await newcomer.wait_for("You are registered, welcome")
    person = bot.db.call(people.find, 3001)
    assert (person.status, person.role) == (Status.ACTIVE, Role.DUTY_OFFICER)
    assert bot.db.call(people.duty_areas, person.id) == ["ganzi"]
    assert {"me", "help"} <= menu(newcomer)
    with bot.db.session() as session:
        assert session.get(Invitation, invitation.id).uses == 1


async def test_an_invitation_that_never_expires_for_unlimited_admins_in_chinese(bot):
    admin = admin_speaks(bot, "zh-Hans")
    await admin.send("/invite")
    message = await admin.next_message()
    await admin.press("inv:r:admin", message=message)
    await admin.wait_edit(message, "有效期")
    await admin.press("长期有效", message=message)
    await admin.wait_edit(message, "多少人")
    await admin.press("不限人数", message=message)
    created = await admin.wait_edit(message, "邀请链接已创建")
    assert "长期有效" in created.text and "不限人数" in created.text
    with bot.db.session() as session:
        invitation = session.exec(select(Invitation)).one()
    assert (invitation.role, invitation.expires_at, invitation.max_uses) == (Role.ADMIN, None, None)
    make_person(bot.db, 3001, "Anna", status=Status.PENDING)  # an ordinary registration...
    draft_person = bot.db.call(
        people.submit_registration,
        3002,
        "Bo",
        Draft(
            language="en",
            consent_version=people.CONSENT_VERSION,
            real_name="Bo",
            phone="+8613800138002",
            home_unit="Ningbo Health Commission",
            prefecture="aba",
            county="aba.barkam",
            contact_name="Wang Fang",
            contact_phone="+8613900139000",
            invitation=invitation.code,
        ),
    )
    assert (draft_person.status, draft_person.role) == (Status.ACTIVE, Role.ADMIN)


async def test_an_invitation_can_be_cancelled(bot):
    admin = admin_speaks(bot)
    await admin.send("/invite")
    message = await admin.next_message()
    await admin.press("cadre", message=message)
    await admin.wait_edit(message, "How long")
    await admin.press("Cancel", message=message)
    await admin.wait_edit(message, "no invitation was created")
    with bot.db.session() as session:
        assert session.exec(select(Invitation)).first() is None


# ---------------------------------------------------------------------------- refusals


FORGED = (
    "ppl:l:all:-:0",
    "ppl:l:pending:aba:1",
    "ppl:nop",
    "ppl:back",
    "ppl:c:{target}",
    "ppl:ok:{target}",
    "ppl:no:{target}",
    "ppl:r:{target}",
    "ppl:role:{target}:admin",
    "ppl:role:{me}:admin",
    "ppl:alt:{target}",
    "ppl:da:{target}",
    "ppl:dt:{target}:aba",
    "ppl:sus:{target}",
    "ppl:susy:{target}",
    "ppl:noy:{target}",
    "ppl:act:{target}",
    "ppl:ok:{me}",
    "ppl:act:{me}",
    "inv:r:admin",
    "inv:e:admin:0",
    "inv:u:admin:0:0",
    "inv:x",
)


@pytest.mark.parametrize(
    ("who", "language_code", "refusal"),
    [
        ("stranger", "en", "You are not registered yet"),
        ("pending", "zh-hans", "等待管理员审核"),
        ("suspended", "en", "Your account is suspended"),
        ("cadre", "zh-hans", "这是管理员使用的功能"),
        ("duty_officer", "en", "This is for administrators."),
    ],
)
async def test_non_admins_are_refused_every_admin_command_and_button(
    bot, who, language_code, refusal
):
    language = "en" if language_code == "en" else "zh-Hans"
    me = None
    if who != "stranger":
        status = {"pending": Status.PENDING, "suspended": Status.SUSPENDED}.get(who, Status.ACTIVE)
        role = Role.DUTY_OFFICER if who == "duty_officer" else Role.CADRE
        me = make_person(bot.db, 4001, "Me", status=status, role=role, language=language)
    target = make_person(bot.db, 4002, "Target", status=Status.PENDING)
    user = bot.user(4001, "Me", language_code=language_code)

    for command in ("/people 李伟 13800138000 SpO2 82%", "/invite"):
        await user.send(command)
        said = (await user.next_message()).text
        assert refusal in said, command
        assert "recorded" not in said and "记录" not in said  # audited, without a warning
    anchor = user.bot_messages[-1]
    attempts = [data.format(target=target.id, me=me.id if me else 4242) for data in FORGED]
    for data in attempts:
        await forge_press(user, data, message=anchor)
        answer = await user.callback_answer()
        assert answer.show_alert and refusal in answer.text, data
    user.assert_no_unread()

    entries = denials(bot.db, 4001)
    assert len(entries) == 2 + len(attempts)
    # the command word only: never what else was typed (a phone, a reading)
    assert {e.detail["attempted"] for e in entries} >= {*attempts, "/people", "/invite"}
    assert not any("138" in e.detail["attempted"] for e in entries)
    assert {e.action for e in entries} == {"denied.manage_people", "denied.invite"}
    after = bot.db.call(people.get, target.id)
    assert (after.status, after.role) == (Status.PENDING, Role.CADRE)
    if me is not None:
        mine = bot.db.call(people.get, me.id)
        assert (mine.status, mine.role) == (me.status, me.role)
    with bot.db.session() as session:
        assert session.exec(select(Invitation)).first() is None
    assert failed_requests(bot) == []
