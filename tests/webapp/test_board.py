"""The board (Telegram Mini App): Telegram's initData check, and the officers' views over
HTTP on the bot's own board server, with the chat seen through the emulator."""

from __future__ import annotations

import html
import re
import time
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest
from sqlmodel import select

from models import Alert, AlertStatus, AuditEntry, Role
from services import people
from services.alerts import policy
from tests.support import factories
from tests.support.sos_support import ABA, CADRE, ON_DUTY, emergency_running, staff
from webapp import auth

TOKEN = "123456:TEST-token"
ABA_CADRE = 1002


# ---------------------------------------------------------------------------- initData


def test_valid_init_data_names_the_user():
    now = time.time()
    data = auth.sign(TOKEN, 2001, auth_date=int(now) - 10, language_code="en")
    user = auth.validate(data, TOKEN, 3600, now=now)
    assert user.telegram_id == 2001 and user.language_code == "en"


def test_the_hash_is_telegrams_hmac_of_the_sorted_fields():
    """secret_key = HMAC_SHA256(key="WebAppData", msg=token); hash = hex(HMAC_SHA256(
    key=secret_key, msg=data_check_string)), computed here independently."""
    import hashlib
    import hmac

    fields = dict(parse_qsl(auth.sign(TOKEN, 7, auth_date=1_700_000_000)))
    check = "\n".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "hash")
    secret = hmac.new(b"WebAppData", TOKEN.encode(), hashlib.sha256).digest()
    assert fields["hash"] == hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def test_forged_init_data_is_refused():
    now = time.time()
    fields = dict(parse_qsl(auth.sign(TOKEN, 2001, auth_date=int(now))))
    fields["user"] = fields["user"].replace("2001", "9001")  # pretend to be the admin
    with pytest.raises(auth.AuthError):
        auth.validate(urlencode(fields), TOKEN, 3600, now=now)
    fields = dict(parse_qsl(auth.sign(TOKEN, 2001, auth_date=int(now))))
    fields["hash"] = "0" * 64
    with pytest.raises(auth.AuthError):
        auth.validate(urlencode(fields), TOKEN, 3600, now=now)
    for broken in ("", "hash=abc", "user=%7B%7D&hash=", "a=1&a=2", "%%%"):
        with pytest.raises(auth.AuthError):
            auth.validate(broken, TOKEN, 3600, now=now)


def test_expired_init_data_is_refused():
    now = time.time()
    data = auth.sign(TOKEN, 2001, auth_date=int(now) - 3601)
    with pytest.raises(auth.AuthError, match="expired"):
        auth.validate(data, TOKEN, 3600, now=now)
    assert auth.validate(data, TOKEN, 7200, now=now).telegram_id == 2001


def test_init_data_of_another_bot_is_refused():
    now = time.time()
    data = auth.sign("654321:OTHER-token", 2001, auth_date=int(now))
    with pytest.raises(auth.AuthError):
        auth.validate(data, TOKEN, 3600, now=now)


# ---------------------------------------------------------------------------- over HTTP


def registered_days_ago(db, days: int = 3) -> None:
    """Everyone registered a few days ago: monitored today (missing until they check in)."""
    from datetime import timedelta

    from sqlalchemy import update

    from models import Person
    from services import clock

    with db.session() as s:
        s.execute(update(Person).values(created_at=clock.now() - timedelta(days=days)))


def with_board(settings):
    """A board on any free port; the officers' chats may get messages quickly."""
    return settings.model_copy(
        update={
            "webapp_url": "https://board.example.org/board/",
            "webapp_listen": "127.0.0.1:0",
            "delivery_chat_rate": 50.0,
            "delivery_chat_burst": 20,
        }
    )


@pytest.fixture
def settings(settings):
    return with_board(settings)


class Board:
    def __init__(self, bot, session: aiohttp.ClientSession) -> None:
        server = bot.app.bot_data["board"]
        self.base = f"http://127.0.0.1:{server.port}/board/"
        self.session = session

    async def get(self, view: str, telegram_id: int | None, *, init_data: str | None = None):
        headers = {}
        if telegram_id is not None or init_data is not None:
            headers["Authorization"] = "tma " + (init_data or auth.sign(TOKEN, telegram_id))
        async with self.session.get(self.base + "api/" + view, headers=headers) as response:
            return response.status, await response.text()

    async def post(self, view: str, telegram_id: int, **form: str):
        headers = {"Authorization": "tma " + auth.sign(TOKEN, telegram_id)}
        async with self.session.post(self.base + "api/" + view, headers=headers, data=form) as r:
            return r.status, await r.text()


@pytest.fixture
async def board(bot):
    async with aiohttp.ClientSession() as session:
        yield Board(bot, session)


async def test_the_page_and_its_script_are_served_without_initdata(bot, board):
    async with board.session.get(board.base) as response:
        page = await response.text()
        assert response.status == 200 and 'src="static/board.js"' in page
    async with board.session.get(board.base + "static/board.js") as response:
        assert response.status == 200 and "tgWebAppData" in await response.text()


async def test_forged_expired_other_bot_and_missing_initdata_get_401(bot, board):
    staff(bot.db)
    old = auth.sign(TOKEN, ON_DUTY, auth_date=int(time.time()) - 3700)
    other = auth.sign("654321:OTHER-token", ON_DUTY)
    forged = auth.sign(TOKEN, 2005).replace("2005", str(ON_DUTY))
    for init_data in (old, other, forged):
        status, body = await board.get("alerts", None, init_data=init_data)
        assert status == 401 and "请从 Telegram" in body
    assert (await board.get("alerts", None))[0] == 401


async def test_a_cadre_gets_only_a_pointer_back_to_the_chat(bot, board):
    staff(bot.db)
    status, body = await board.get("today", CADRE)
    assert status == 403 and "/checkin" in body and "Li Wei" not in body
    assert (await board.get("alerts", 5555))[0] == 403  # a stranger


async def test_an_officer_of_aba_does_not_see_a_ganzi_person(bot, board):
    people_ = staff(bot.db)
    aba_cadre = factories.person(
        bot.db, ABA_CADRE, real_name="Zhou Aba", prefecture="aba", county="aba.barkam"
    )
    registered_days_ago(bot.db)
    status, body = await board.get("today?state=missing", ABA)
    assert status == 200 and "Zhou Aba" in body and "Li Wei" not in body
    status, body = await board.get("today?state=missing&prefecture=ganzi", ABA)
    assert "Li Wei" not in body
    status, body = await board.get(f"person/{people_['cadre'].id}", ABA)
    assert "Li Wei" not in body and ("not in your area" in body or "不在您的辖区" in body)
    status, body = await board.get(f"person/{aba_cadre.id}", ABA)
    assert "Zhou Aba" in body and f'data-chart="person/{aba_cadre.id}/chart.png"' in body
    async with board.session.get(  # the chart comes apart, with initData too
        board.base + f"api/person/{aba_cadre.id}/chart.png",
        headers={"Authorization": "tma " + auth.sign(TOKEN, ABA)},
    ) as response:
        assert response.content_type == "image/png" and (await response.read())[:4] == b"\x89PNG"
    status, _ = await board.get(f"person/{people_['cadre'].id}/chart.png", ABA)
    assert status == 404
    with bot.db.session() as s:
        refused = s.exec(select(AuditEntry).where(AuditEntry.action == "denied.view_area")).all()
    assert any(e.target_person_id == people_["cadre"].id for e in refused)
    # The admin sees both; the Ganzi officer sees Li Wei.
    status, body = await board.get("today?state=missing", factories.ADMIN_ID)
    assert "Li Wei" in body and "Zhou Aba" in body
    status, body = await board.get("today?state=missing", ON_DUTY)
    assert "Li Wei" in body and "Zhou Aba" not in body
    # A forged id (too long for one) is not found, never an error page.
    for view in ("alert/99999999999999999999", "person/99999999999999999999"):
        assert (await board.get(view, ON_DUTY))[0] == 404, view


def link(body: str, label: str) -> str:
    """The view a pager link (◀ Previous, Next ▶) opens."""
    found = re.search(r'data-view="([^"]+)">' + re.escape(label) + "<", body)
    assert found, (label, body[-600:])
    return html.unescape(found.group(1))


async def test_today_is_filtered_by_county_counted_and_paginated(bot, board):
    staff(bot.db)
    admin = factories.admin(bot.db)
    for n in range(60):
        factories.person(bot.db, 50_000 + n, real_name=f"Cadre {n:02d}", county="ganzi.daocheng")
    bot.db.call(people.set_language, admin.telegram_id, "en")
    registered_days_ago(bot.db)
    _, body = await board.get("today?state=missing&prefecture=ganzi", admin.telegram_id)
    assert "⏰ Not yet <b>63</b>" in body  # 60 + Li Wei + two Ganzi officers
    assert "1–50 of 63" in body and "Next ▶" in body and "◀ Previous" not in body
    _, body = await board.get(
        "today?state=missing&prefecture=ganzi&county=ganzi.daocheng", admin.telegram_id
    )
    assert "1–50 of 60" in body and "Cadre 00" in body and "Cadre 49" in body
    second = link(body, "Next ▶")
    assert "after=" in second and "page=2" in second and "county=ganzi.daocheng" in second
    _, body = await board.get(second, admin.telegram_id)
    assert "51–60 of 60" in body and "Cadre 59" in body and "Cadre 00" not in body
    assert "Li Wei" not in body and "Next ▶" not in body
    _, body = await board.get(link(body, "◀ Previous"), admin.telegram_id)  # back again
    assert "1–50 of 60" in body and "Cadre 00" in body and "Cadre 50" not in body
    # A page whose people have all moved on (a stale link) shows the first page.
    _, body = await board.get(
        "today?state=missing&prefecture=ganzi&after=99999999&page=9", admin.telegram_id
    )
    assert "1–50 of 63" in body
    # A part of a name narrows the counts and the list alike.
    _, body = await board.get("today?state=missing&q=cadre+5", admin.telegram_id)
    assert "⏰ Not yet <b>10</b>" in body and "Cadre 55" in body and "Cadre 45" not in body
    assert 'name="q" value="cadre 5"' in body


async def test_today_shows_those_not_due_today_too(bot, board):
    """The chat's /today counts and lists people not due today (registered today, a
    low-altitude posting, the assignment not begun or ended): so does the board."""
    staff(bot.db)
    registered_days_ago(bot.db)
    factories.person(bot.db, 3333, real_name="New Today")  # registered now: not due yet
    bot.db.call(people.set_language, ON_DUTY, "en")
    _, body = await board.get("today", ON_DUTY)
    assert "➖ Not due today <b>1</b>" in body and "New Today" not in body
    assert 'class="chip chip-none"' in body
    _, body = await board.get("today?state=none", ON_DUTY)
    assert "New Today" in body and "Li Wei" not in body


async def test_today_on_the_board_counts_as_the_chats_today_and_flags_repeated_readings(bot, board):
    """The /today population: every state's chip counts what /today counts, and the one
    who repeats identical readings day after day is marked ❓ with a line to verify."""
    from tests.handlers.test_checkin_reports import _population

    made = _population(bot, green=7, missing=5)
    gamer = made.pop("suspicious")[0]
    _, body = await board.get("today?state=checked", 5001)
    for state, names in made.items():
        assert f"chip-{state}" in body and f"<b>{len(names)}</b>" in body, state
    assert f"{gamer} ❓" in body and "Identical readings day after day: 1" in body
    assert "Checked 1 ❓" not in body
    _, body = await board.get("today?state=missing", 5001)  # the line stays, no one marked
    assert "Identical readings day after day: 1" in body and "❓<small>" not in body


async def test_an_officer_without_a_duty_area_is_told_who_can_give_one(bot, board):
    people_ = staff(bot.db)
    admin = factories.admin(bot.db)
    assert bot.db.call(people.toggle_duty_area, admin, people_["aba"].id, "aba") == []
    for view in ("today", "care"):
        status, body = await board.get(view, ABA)
        assert status == 200 and "联系管理员" in body and 'class="tabs"' in body, view
        assert "Li Wei" not in body


def test_area_pages_walk_every_state_by_id_both_ways(db):
    """Page after page (the `after` id) and back (the `before` id), two a page: every
    person of each state once, in id order, the counts those of /today."""
    from services.health import reports
    from tests.handlers.test_checkin_reports import _population
    from tests.support.checkin_helpers import CONFIG

    made = _population(SimpleNamespace(db=db), green=5, missing=4)
    made.pop("suspicious")
    viewer = db.call(people.find, 5001)

    def page(state: str, **where: int | str) -> reports.AreaPage:
        return db.call(
            lambda s: reports.area_page(s, viewer, CONFIG, state=state, limit=2, **where)
        )

    for state, names in made.items():
        forward, after = [], None
        while True:
            found = page(state, after=after) if after else page(state)
            assert found.counts == {s: len(n) for s, n in made.items() if n}
            assert found.total == len(names)
            forward += found.people
            if not found.more_after:
                break
            after = found.people[-1].id
        assert sorted(p.real_name for p in forward) == sorted(names), state
        assert [p.id for p in forward] == sorted(p.id for p in forward)
        backward, before = [], forward[-1].id + 1
        while True:
            found = page(state, before=before)
            backward = found.people + backward
            if not found.more_before:
                break
            before = found.people[0].id
        assert backward == forward, state
    offset = page("missing", offset=2)  # /today all's numbered pages
    assert offset.people == page("missing", after=page("missing").people[-1].id).people
    found = page("checked", name="  CHECKED  1 ")
    assert [p.real_name for p in found.people] == ["Checked 1"] and found.counts == {"checked": 1}
    assert page("checked", name="%").total == len(made["checked"])  # no wildcards


async def test_acknowledging_on_the_board_updates_the_chat_cards_and_tells_the_cadre(bot, board):
    people_ = staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await cadre.send("/sos")
        card = await officer.wait_for("紧急求助")
        assert "https://board.example.org/board/" in str(card.reply_markup)  # Open board
        with bot.db.session() as s:
            alert = s.exec(select(Alert).where(Alert.person_id == people_["cadre"].id)).one()
        status, body = await board.get("alerts", ON_DUTY)
        assert status == 200 and "Li Wei" in body and f'data-view="alert/{alert.id}"' in body
        status, body = await board.get(f"alert/{alert.id}", ON_DUTY)
        assert f"alert/{alert.id}/ack" in body and "时间线" in body
        # The Aba officer may not take a Ganzi alert, on the board as in the chat.
        status, body = await board.post(f"alert/{alert.id}/ack", ABA)
        assert f"alert/{alert.id}/ack" not in body or "辖区" in body
        status, body = await board.post(f"alert/{alert.id}/ack", ON_DUTY)
        assert status == 200 and f"#{alert.id}" in body
        await officer.wait_edit(card, "Zhang On")
        told = await cadre.wait_for("is handling your call for help")
        assert "Zhang On" in told.text
        # First acknowledgement wins: a second press is told who has it.
        status, body = await board.post(f"alert/{alert.id}/ack", OFF_DUTY_ID)
        assert "Zhang On" in body
        status, body = await board.post(f"alert/{alert.id}/resolve", ON_DUTY, outcome="on_site")
        closed = await cadre.wait_for("was closed by Zhang On")
        assert closed is not None
    with bot.db.session() as s:
        alert = s.get(Alert, alert.id)
        assert alert.status == AlertStatus.RESOLVED and alert.outcome == "on_site"
        actions = [e.action for e in s.exec(select(AuditEntry))]
    assert "alert.acknowledged" in actions and "alert.resolved" in actions


OFF_DUTY_ID = 2002


async def test_the_role_is_read_on_every_request(bot, board):
    people_ = staff(bot.db)
    assert (await board.get("alerts", ON_DUTY))[0] == 200
    admin = factories.admin(bot.db)
    bot.db.call(people.set_role, admin, people_["on"].id, Role.CADRE)
    assert (await board.get("alerts", ON_DUTY))[0] == 403


def test_alerts_module_is_untouched_by_the_board():
    assert policy.OUTCOMES  # the board resolves with the chat's outcomes


# ---------------------------------------------------------------------------- menu button


async def test_the_menu_button_opens_the_board_for_officers_and_admins_only(bot):
    from handlers import menus

    people_ = staff(bot.db)
    for telegram_id in (factories.ADMIN_ID, ON_DUTY, ABA, CADRE):
        bot.user(telegram_id)  # their chats with the bot exist
    await bot.restart()  # start-up sets the admins' and the duty officers' buttons
    board_button = {
        "type": "web_app",
        "text": "看板",
        "web_app": {"url": "https://board.example.org/board/"},
    }
    assert bot.admin().menu_button == board_button
    assert bot.user(ON_DUTY).menu_button == board_button
    assert bot.user(ABA).menu_button == board_button
    assert bot.user(CADRE).menu_button == {"type": "commands"}
    # Someone who stops being an officer loses it (as when an admin changes the role).
    admin = factories.admin(bot.db)
    demoted = bot.db.call(people.set_role, admin, people_["aba"].id, Role.CADRE)
    await menus.set_person_menu(bot.app.bot, demoted, bot.settings.webapp_url)
    assert bot.user(ABA).menu_button == {"type": "commands"}


async def test_today_has_an_open_board_button_in_a_private_chat(bot):
    staff(bot.db)
    officer = bot.user(ON_DUTY, "Zhang")
    await officer.send("/today")
    message = await officer.wait_for(lambda m: m.reply_markup is not None)
    button = message.reply_markup["inline_keyboard"][-1][0]
    assert button["web_app"]["url"] == "https://board.example.org/board/?v=today"


async def test_the_emulator_refuses_web_app_buttons_over_http_and_in_groups(emulator):
    import telegram
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

    bot_ = telegram.Bot(emulator.token, base_url=emulator.base_url + "/bot")
    user = emulator.user(4242, "Ann")
    emulator.group(-100777, "Duty")
    async with bot_:
        http = InlineKeyboardMarkup(
            [[InlineKeyboardButton("x", web_app=WebAppInfo("http://a.b/"))]]
        )
        with pytest.raises(telegram.error.BadRequest, match=r"(?i)only https"):
            await bot_.send_message(user.id, "hi", reply_markup=http)
        good = InlineKeyboardMarkup(
            [[InlineKeyboardButton("x", web_app=WebAppInfo("https://a.b/"))]]
        )
        await bot_.send_message(user.id, "hi", reply_markup=good)
        with pytest.raises(telegram.error.BadRequest, match=r"(?i)button_type_invalid"):
            await bot_.send_message(-100777, "hi", reply_markup=good)
