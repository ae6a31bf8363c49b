"""The update inbox (services/inbox.py, bot/inbox.py): an update taken from Telegram is
stored before Telegram is told it arrived, so that a process dying (or losing the
leadership) before it handled it leaves it to the next process, which handles it; one
that Telegram sends again after it was handled is not handled twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bot.inbox import NotStored, UpdateInbox
from bot.request import Unavailable
from models import UpdateInbox as Row
from services import inbox

ANSWER = "/start"  # every /help answer names it


def message(update_id: int, user_id: int = 501, text: str = "/help") -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Dawa"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_790_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": "Dawa"},
            "from": user,
            "text": text,
        },
    }


def rows(db) -> dict[int, Row]:
    with db.session() as s:
        return {r.update_id: r for r in s.exec(select(Row))}


# --- the service -----------------------------------------------------------------------


def test_stored_updates_are_taken_until_handled_then_recognized_when_sent_again(db):
    assert db.call(inbox.store, [message(10), message(11)]) == [10, 11]
    assert rows(db)[10].payload["message"]["text"] == "/help"
    assert rows(db)[10].user_id == 501
    # Fetched again before they were handled (the process before died): still to handle.
    assert db.call(inbox.store, [message(11), message(12)]) == [11, 12]
    db.call(inbox.mark_handled, [10, 11])
    stored = rows(db)
    assert stored[10].handled_at is not None and stored[10].payload is None  # cleared
    assert db.call(inbox.store, [message(10), message(11), message(13)]) == [13]


def test_handled_ids_go_once_telegram_can_no_longer_send_them_again(db):
    with time_machine.travel("2026-12-01 08:00:00+00:00", tick=False) as traveller:
        db.call(inbox.store, [message(n) for n in (20, 21, 22)])
        db.call(inbox.mark_handled, [20, 22])
        # getUpdates with offset 22 confirmed 20 and 21: 20 (handled) goes, 21 is kept
        # until it is handled, 22 until it is confirmed.
        db.call(inbox.store, [message(23)], confirmed_below=22)
        assert sorted(rows(db)) == [21, 22, 23]
        db.call(inbox.mark_handled, [23])
        traveller.shift(timedelta(days=1, seconds=1))  # webhook mode: a day later
        db.call(inbox.store, [message(24)])
        assert sorted(rows(db)) == [21, 24]


def test_a_start_takes_up_what_was_not_handled_in_order_and_gives_up_after_three(db):
    db.call(inbox.store, [message(32), message(30), message(31)])
    db.call(inbox.mark_handled, [31])
    for _ in range(inbox.MAX_RESUMES):
        assert [u["update_id"] for u in db.call(inbox.unhandled)] == [30, 32]
    assert db.call(inbox.unhandled) == []  # three starts died on them: given up
    assert all(r.handled_at is not None and r.payload is None for r in rows(db).values())


def test_a_person_deleting_their_data_takes_their_stored_updates_with_it(db):
    db.call(inbox.store, [message(40, user_id=601), message(41, user_id=602)])
    assert db.call(inbox.forget_user, 601) == 1
    assert sorted(rows(db)) == [41]
    callback = {"update_id": 42, "callback_query": {"id": "q", "from": {"id": 603}}}
    assert inbox.user_of(callback) == 603


# --- the running bot, through the emulator -----------------------------------------------


async def test_an_update_taken_by_a_process_that_died_is_handled_at_the_next_start(bot):
    """The process before fetched the update, stored it, confirmed it with its next
    getUpdates (Telegram forgot it) and died before handling it."""
    user = bot.user(4711, "Dawa", language_code="en")
    await bot.stop()
    await user.send("/help")
    world = bot.emulator.world
    update = world.updates[-1]
    await bot.db.run(inbox.store, [update])
    world.confirm(update["update_id"] + 1)  # the dead process's next getUpdates
    await bot.start()
    await user.wait_for(ANSWER, timeout=15)
    assert bot.app is not None and bot.app.bot_data["inbox"].resumed == 1
    await until_handled(bot, update["update_id"])


async def test_an_update_sent_again_after_it_was_handled_is_not_handled_twice(bot):
    """Telegram sends an update again when it did not see the confirmation (the process
    that handled it died before its next getUpdates)."""
    user = bot.user(4712, "Dawa", language_code="en")
    await user.send("/help")
    await user.wait_for(ANSWER, timeout=15)
    world = bot.emulator.world
    again = dict(world.update_log[-1])
    await until_handled(bot, again["update_id"])
    world.updates.append(again)  # sent again...
    await user.send("/help")  # ...ahead of a new one, in the same chat
    await user.wait_for(ANSWER, timeout=15)
    # The chat's updates are handled in order: a second run would have answered first.
    assert len([m for m in user.bot_messages if ANSWER in (m.text or "")]) == 2


async def until_handled(bot, update_id: int) -> None:
    for _ in range(300):
        row = rows(bot.db).get(update_id)
        if row is not None and row.handled_at is not None:
            assert row.payload is None
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"update {update_id} not marked handled")


# --- when the database cannot be reached --------------------------------------------------


class Unreachable:
    """A database that cannot be reached (`tried` is set at the third attempt)."""

    def __init__(self) -> None:
        self.attempts = 0
        self.tried = asyncio.Event()

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self.attempts += 1
        if self.attempts >= 3:
            self.tried.set()
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))


def with_leadership(standbys: int, leads: bool = True) -> UpdateInbox:
    box = UpdateInbox(Unreachable())  # type: ignore[arg-type]
    leadership = SimpleNamespace(standbys=standbys, may_talk=lambda: leads)
    box.application = SimpleNamespace(bot_data={"leadership": leadership})
    return box


async def test_updates_that_cannot_be_stored_stay_with_telegram_when_another_could_lead():
    box = with_leadership(standbys=1)
    with pytest.raises(NotStored):  # a webhook post: answered 503, posted again
        await box.posted(message(50))
    fetching = asyncio.ensure_future(box.fetched(None, [message(51)]))
    await asyncio.wait_for(box.db.tried.wait(), 10)  # tried again and again...
    assert not fetching.done()  # ...and not returned: not confirmed to Telegram
    fetching.cancel()
    assert box.held == set()


async def test_a_process_alone_handles_them_from_memory_as_in_any_outage():
    box = with_leadership(standbys=0)
    assert await box.posted(message(60)) is True
    await box.fetched(None, [message(61)])
    assert box.held == {60, 61} and box.duplicates == set()


async def test_a_leader_that_lost_its_lock_stores_nothing_and_confirms_nothing():
    box = with_leadership(standbys=1, leads=False)
    with pytest.raises(Unavailable):  # python-telegram-bot asks again: the gate holds it
        await box.fetched(None, [message(70)])
    with pytest.raises(NotStored):
        await box.posted(message(71))


async def test_what_a_start_took_up_is_not_run_again_when_telegram_sends_it_too(db):
    """The usual takeover: the old leader never confirmed the update, so the new one both
    takes it up from the inbox and gets it from Telegram; it runs once. A batch fetched
    again because python-telegram-bot did not queue it the first time is taken again."""
    db.call(inbox.store, [message(80)])
    box = UpdateInbox(db)
    box.application = SimpleNamespace(bot_data={}, bot=None, update_queue=asyncio.Queue())
    assert await box.resume() == 1
    await box.fetched(None, [message(80), message(81)])
    assert box.duplicates == {80}
    await box.fetched(None, [message(81)])  # asked again: not queued the first time
    assert box.duplicates == {80}
    assert box.admit(SimpleNamespace(update_id=80)) is False  # the copy from Telegram
    assert box.admit(SimpleNamespace(update_id=80)) is True  # the one taken up
