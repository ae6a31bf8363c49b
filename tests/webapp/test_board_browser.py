"""The board in a real headless Chromium (Debian's chromium and chromium-driver, driven
with Selenium) at 390 x 844, opened as Telegram opens a Mini App: the page's URL fragment
carries tgWebAppData (initData signed by the test with the test token) and the theme.
telegram-web-app.js cannot load here (no network): the page works without it.

A screenshot of each view is written under the test's tmp folder (screenshots/)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlmodel import select

from models import Alert, AlertStatus
from services import people
from tests.support import factories
from tests.support.sos_support import ABA, CADRE, ON_DUTY, emergency_running, staff
from tests.webapp.test_board import TOKEN, registered_days_ago, with_board
from webapp import auth

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 390, 844
THEME = {
    "bg_color": "#17212b",
    "text_color": "#f5f5f5",
    "hint_color": "#708499",
    "link_color": "#6ab3f3",
    "button_color": "#5288c1",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#232e3c",
}

webdriver = pytest.importorskip("selenium.webdriver")
pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMEDRIVER) and os.path.exists(CHROMIUM)),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@pytest.fixture
def settings(settings):
    return with_board(settings)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(flag)
    options.page_load_strategy = "eager"  # telegram-web-app.js may never load here
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The browser, driven off the event loop (the bot and its board run on it)."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver, self.base, self.shots = driver, base, shots
        shots.mkdir(exist_ok=True)

    async def call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def open(self, telegram_id: int, view: str, *, init_data: str | None = None) -> None:
        data = init_data or auth.sign(TOKEN, telegram_id)
        fragment = (
            f"tgWebAppData={quote(data, safe='')}&tgWebAppVersion=8.0&tgWebAppPlatform=ios"
            f"&tgWebAppThemeParams={quote(json.dumps(THEME), safe='')}"
        )
        await self.call(self.driver.get, f"{self.base}?v={quote(view)}#{fragment}")

    async def text(self) -> str:
        return await self.call(lambda: self.driver.find_element("id", "view").text)

    async def wait_text(self, wanted: str, within: float = 15) -> str:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            text = await self.text()
            if wanted in text:
                return text
            assert asyncio.get_running_loop().time() < deadline, f"{wanted!r} not in {text!r}"
            await asyncio.sleep(0.1)

    async def click(self, css: str) -> None:
        await self.call(lambda: self.driver.find_element("css selector", css).click())

    async def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await self.call(self.driver.save_screenshot, str(path))
        assert path.stat().st_size > 1000
        return path


@pytest.fixture
def page(bot, browser, tmp_path) -> Page:
    server = bot.app.bot_data["board"]
    return Page(browser, f"http://127.0.0.1:{server.port}/board/", tmp_path / "screenshots")


def in_english(db: Any, *telegram_ids: int) -> None:
    """Legible screenshots: this machine has no CJK font (phones do)."""
    for telegram_id in telegram_ids:
        db.call(people.set_language, telegram_id, "en")


async def test_each_view_in_chromium_and_acknowledging_there_reaches_the_chat(bot, page):
    people_ = staff(bot.db)
    registered_days_ago(bot.db)
    factories.person(bot.db, 3333, real_name="New Today")  # registered now: not due today
    in_english(bot.db, ON_DUTY)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await cadre.send("/sos")
        card = await officer.wait_for(lambda m: "sos:ack" in str(m.reply_markup))
        with bot.db.session() as s:
            alert = s.exec(select(Alert).where(Alert.person_id == people_["cadre"].id)).one()

        await page.open(ON_DUTY, "alerts")
        text = await page.wait_text("Li Wei")
        assert "Alerts in progress (1)" in text
        background = await page.call(
            page.driver.execute_script,
            "return getComputedStyle(document.body).backgroundColor",
        )
        assert background == "rgb(23, 33, 43)"  # Telegram's themeParams applied
        await page.shot("alerts")

        await page.click(f'[data-view="alert/{alert.id}"]')
        await page.wait_text("Timeline")
        await page.shot("alert")
        await page.click("button.primary")  # ✋
        await page.wait_text(f"You have taken #{alert.id}")
        left = await page.call(page.driver.find_elements, "css selector", "button.primary")
        assert left == []  # taken: only resolving is left
        await page.shot("alert-acknowledged")
        await officer.wait_edit(card, "Zhang On")
        told = await cadre.wait_for("is handling your call for help")
        assert "Zhang On" in told.text
        with bot.db.session() as s:
            assert s.get(Alert, alert.id).status == AlertStatus.ACKNOWLEDGED

        await page.click(".back")
        await page.wait_text("Alerts in progress")
        await page.click('.tabs [data-view="today"]')
        await page.wait_text("Today's check-ins")
        await page.click(".chip-missing")
        text = await page.wait_text("Li Wei")
        await no_overflow(page)
        await page.shot("today")
        await page.click(".chip-none")  # not due today: registered today
        text = await page.wait_text("New Today")
        assert "Li Wei" not in text and "➖ Not due today 1" in text
        await page.shot("today-not-due")
        await page.click(".chip-missing")
        await page.wait_text("Li Wei")
        search = 'input[name="q"]'
        await page.call(lambda: page.driver.find_element("css selector", search).send_keys("zhang"))
        await page.click(".filters button")
        text = await page.wait_text("1–1 of 1")  # of the three missing, one is a Zhang
        assert "Li Wei" not in text and "⏰ Not yet 1" in text and "Wang Off" not in text
        await page.shot("today-search")
        await page.click(".chip-checked")  # the chips keep the name searched for
        text = await page.wait_text("Nobody here")
        assert "Zhang On" not in text and 'value="zhang"' in await page.call(
            lambda: page.driver.find_element("id", "view").get_attribute("innerHTML")
        )
        await page.click('.tabs [data-view="today"]')  # the tab: no filter
        await page.wait_text("Li Wei")

        await page.click(f'[data-view="person/{people_["cadre"].id}"]')
        await page.wait_text("Last 30 days")
        width = await page.call(
            page.driver.execute_script,
            "return document.querySelector('img.chart').getBoundingClientRect().width",
        )
        assert 300 < width <= WIDTH  # the chart fits the phone
        await page.shot("person")
        overflow = await page.call(
            page.driver.execute_script,
            "return document.documentElement.scrollWidth",
        )
        assert overflow <= WIDTH  # nothing wider than the screen


async def test_in_chromium_an_aba_officer_does_not_see_a_ganzi_person(bot, page):
    people_ = staff(bot.db)
    registered_days_ago(bot.db)
    in_english(bot.db, ABA)
    await page.open(ABA, "today?state=missing")
    text = await page.wait_text("Today's check-ins")
    assert "Li Wei" not in text and "⏰ Not yet 1" in text  # the Aba officer themself
    await page.shot("today-aba")
    await page.open(ABA, f"person/{people_['cadre'].id}")
    text = await page.wait_text("not in your area")
    assert "Li Wei" not in text
    await page.shot("aba-refused")


async def test_in_chromium_forged_expired_and_other_bot_initdata_are_refused(bot, page):
    staff(bot.db)
    import time

    cases = {
        "expired": auth.sign(TOKEN, ON_DUTY, auth_date=int(time.time()) - 7200),
        "other-bot": auth.sign("654321:OTHER-token", ON_DUTY),
        "forged": auth.sign(TOKEN, 2999).replace("2999", str(ON_DUTY)),
    }
    for name, data in cases.items():
        await page.open(ON_DUTY, "alerts", init_data=data)
        text = await page.wait_text("请从 Telegram")
        assert "Li Wei" not in text
        await page.shot(f"refused-{name}")


async def no_overflow(page: Page) -> None:
    width = await page.call(
        page.driver.execute_script, "return document.documentElement.scrollWidth"
    )
    assert width <= WIDTH  # nothing wider than the phone


async def test_in_chromium_an_officers_overdue_care_and_oxygen_views(bot, page):
    from datetime import timedelta

    from services import clock, oxygen
    from services.oxygen import OxygenConfig

    people_ = staff(bot.db)
    in_english(bot.db, ON_DUTY)
    start = (clock.now().astimezone(bot.settings.zone).date() - timedelta(days=20)).isoformat()
    factories.person(bot.db, 1101, real_name="Ganzi Overdue", assignment_start=start,
                     assignment_end="2030-01-01")  # fmt: skip
    config = OxygenConfig.from_settings(bot.settings)
    bot.db.call(oxygen.create_request, people_["cadre"].id, "cylinder", "Litang office",
                "urgent", config)  # fmt: skip
    await page.open(ON_DUTY, "alerts")
    await page.wait_text("Alerts in progress")
    await page.click('.tabs [data-view="care"]')
    text = await page.wait_text("Ganzi Overdue")
    assert "overdue" in text
    await no_overflow(page)
    await page.shot("care")
    await page.click('.tabs [data-view="oxygen"]')
    text = await page.wait_text("Litang office")
    assert "Open oxygen requests (1)" in text
    await no_overflow(page)
    await page.shot("oxygen")


async def test_in_chromium_the_admins_views(bot, page, tmp_path):
    from services import broadcasts, roster_import
    from services.kb import handoffs, questions
    from services.kb.answering import Outcome, Result
    from tests.services.test_roster_import import BAD, GOOD, xlsx

    people_ = staff(bot.db)
    in_english(bot.db, factories.ADMIN_ID)
    admin_chat = bot.admin(language_code="en")
    admin = bot.db.call(people.find, factories.ADMIN_ID)
    factories.person(bot.db, 3001, approve=False, real_name="New Comer")
    draft = broadcasts.Draft(kind="text", texts={"zh-Hans": "通知", "en": "Notice"})
    bot.db.call(broadcasts.create, admin, factories.ADMIN_ID, draft)
    row = bot.db.call(questions.log, people_["cadre"].id, "en", "Where is the canteen?",
                      Result(Outcome.NOT_SURE))  # fmt: skip
    bot.db.call(handoffs.open_handoff, row.id, people_["cadre"])
    cadre = bot.user(CADRE, "Li", language_code="en")
    async with emergency_running(bot):
        # People: the list, a card, suspending asks first (and says they keep 🆘).
        await page.open(factories.ADMIN_ID, "people")
        await page.wait_text("New Comer")
        await no_overflow(page)
        await page.shot("people")
        await page.click(f'[data-view="people/{people_["cadre"].id}"]')
        await page.wait_text("Home unit")
        await page.shot("people-card")
        await page.click(f'[data-action="people/{people_["cadre"].id}/suspend"] button')
        text = await page.wait_text("Suspend the account of Li Wei?")
        assert "keep 🆘" in text
        await page.shot("people-suspend-confirm")
        await page.click("button.danger")
        await page.wait_text("Li Wei is suspended")
        await cadre.wait_for("suspended your account")
        await page.click(".back")
        await page.wait_text("New Comer")

        # The weekly roster as a grid; a night shift added with the form.
        await page.click('.tabs [data-view="roster"]')
        await page.wait_text("weekly duty roster")
        await page.click('input[name="day"][value="0"]')
        await page.click('input[name="day"][value="6"]')
        await page.click(".add button.primary")
        text = await page.wait_text("Shift added")
        assert text.count("Zhang On") >= 2
        await no_overflow(page)
        await page.shot("roster")

        # Import: a file chosen and sent from the page; the report comes back.
        roster_file = tmp_path / "cohort.xlsx"
        roster_file.write_bytes(xlsx(GOOD + BAD[:2]))
        await page.click('.tabs [data-view="import"]')
        await page.wait_text("Roster import")
        await page.call(
            lambda: page.driver.find_element("css selector", 'input[type="file"]').send_keys(
                str(roster_file)
            )
        )
        await page.click(".upload button.primary")
        text = await page.wait_text("5 rows read: 3 accepted")
        assert "Not joined yet: 3" in text and "Chen Jing" in text
        await no_overflow(page)
        await page.shot("import")
        await admin_chat.wait_for(lambda m: m.document is not None)
        await page.click('[data-action="import/links"] button')
        await page.wait_text("invitation-links.xlsx has been sent")
        links = await admin_chat.wait_for(
            lambda m: m.document is not None and "links" in m.document.file_name
        )
        assert links.caption.startswith("Personal invitation links (3)")
        assert len(bot.db.call(roster_import.not_joined)[1]) == 3

        # Broadcast reports, and a handed-over question answered.
        await page.click('.tabs [data-view="broadcasts"]')
        await page.wait_text("Broadcast reports")
        await page.shot("broadcasts")
        await page.click('.tabs [data-view="questions"]')
        await page.wait_text("Where is the canteen?")
        await page.shot("questions")
        await page.call(
            lambda: page.driver.find_element("css selector", "textarea").send_keys("By the gate.")
        )
        await page.click(".answer button.primary")
        await page.wait_text("Your answer has been sent to Li Wei")
        await cadre.wait_for("By the gate.")
