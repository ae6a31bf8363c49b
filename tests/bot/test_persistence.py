"""The bot's persistence (bot/persistence.py): a form's question and answers are in the
database before the question goes out, survive a restart, and stay right when many people
answer at once - with far fewer transactions than writes (the check-in benchmark)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

import bot.persistence as persistence_module
from bot.persistence import DatabasePersistence
from services import state
from services.db import Database

FORM = "checkin"


def restarted(db: Database) -> DatabasePersistence:
    """What a new `cadre-bot run` reads at start-up."""
    return DatabasePersistence(Database(db.engine))


async def stored(db: Database) -> tuple[dict[Any, Any], dict[int, Any]]:
    fresh = restarted(db)
    return await fresh.get_conversations(FORM), await fresh.get_user_data()


async def test_a_form_resumes_after_a_restart_at_the_question_asked_last(db: Database) -> None:
    persistence = DatabasePersistence(db)
    await persistence.write_form(FORM, (7, 7), "feeling", 7, {"checkin": {"step": "feeling"}})
    await persistence.write_form(FORM, (7, 7), "flags", 7, {"checkin": {"step": "flags"}})

    conversations, users = await stored(db)
    assert conversations == {(7, 7): "flags"}
    assert users == {7: {"checkin": {"step": "flags"}}}

    # The form ends: its state and the emptied data leave the database.
    await persistence.update_conversation(FORM, (7, 7), None)
    await persistence.update_user_data(7, {})
    await persistence.committed()
    assert await stored(db) == ({}, {})


async def test_a_thousand_people_answering_at_once_each_keep_their_own_last_answer(
    db: Database,
) -> None:
    persistence = DatabasePersistence(db)

    async def person(user_id: int) -> None:
        for step in ("feeling", "flags", "cough"):
            data = {"checkin": {"step": step, "who": user_id}}
            await persistence.write_form(FORM, (user_id, user_id), step, user_id, data)

    await asyncio.gather(*(person(user_id) for user_id in range(1, 1001)))

    conversations, users = await stored(db)
    assert conversations == {(u, u): "cough" for u in range(1, 1001)}
    assert users == {u: {"checkin": {"step": "cough", "who": u}} for u in range(1, 1001)}
    # 3,000 form writes (6,000 rows) went in a handful of transactions, not 3,000.
    assert persistence.writer.transactions <= 30


async def test_a_state_already_stored_is_not_written_again(db: Database) -> None:
    persistence = DatabasePersistence(db)
    data = {"checkin": {"step": "flags"}}
    await persistence.write_form(FORM, (7, 7), "flags", 7, data)
    after_question = persistence.writer.transactions

    # The flush after the update finds the same state: nothing to write.
    await persistence.update_conversation(FORM, (7, 7), "flags")
    await persistence.update_user_data(7, {"checkin": {"step": "flags"}})
    await persistence.committed()
    assert persistence.writer.transactions == after_question


async def test_an_older_copy_queued_first_never_overwrites_the_newer_one(db: Database) -> None:
    persistence = DatabasePersistence(db)
    # PTB's periodic flush copied the data before the handler asked the next question.
    await persistence.update_user_data(7, {"checkin": {"step": "feeling"}})
    await persistence.write_form(FORM, (7, 7), "flags", 7, {"checkin": {"step": "flags"}})
    await persistence.committed()
    assert (await stored(db))[1] == {7: {"checkin": {"step": "flags"}}}


class GatedDatabase(Database):
    """Holds each transaction until the test lets it go; fails the first `failures`."""

    def __init__(self, db: Database, failures: int = 0) -> None:
        super().__init__(db.engine)
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = asyncio.Event()
        self.failures = failures

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self.waiting.set()
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return await super().run(fn, *args, **kwargs)


async def test_a_value_written_back_while_another_is_being_stored_is_not_lost(
    db: Database,
) -> None:
    gated = GatedDatabase(db)
    persistence = DatabasePersistence(gated)
    await persistence.write_form(FORM, (7, 7), "feeling", 7, {"step": "feeling"})
    gated.gate.clear()
    gated.waiting.clear()
    second = asyncio.create_task(
        persistence.write_form(FORM, (7, 7), "flags", 7, {"step": "flags"})
    )
    await gated.waiting.wait()  # "flags" is being written
    # ... and the person goes back to the first question before it is committed
    third = asyncio.create_task(
        persistence.write_form(FORM, (7, 7), "feeling", 7, {"step": "feeling"})
    )
    gated.gate.set()
    await asyncio.gather(second, third)
    assert await stored(db) == ({(7, 7): "feeling"}, {7: {"step": "feeling"}})


async def test_while_the_database_is_down_the_step_fails_and_its_state_is_written_later(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(persistence_module, "RETRY_SECONDS", 0.01)
    persistence = DatabasePersistence(GatedDatabase(db, failures=2))
    with pytest.raises(OperationalError):
        await persistence.write_form(FORM, (7, 7), "flags", 7, {"step": "flags"})
    # The flush after the update does not fail it (the update is done): the rows are
    # kept, and written once the database answers, though nobody asks again.
    await persistence.committed()
    for _ in range(200):
        if await db.run(state.load_all, "user_data"):
            break
        await asyncio.sleep(0.01)
    assert await stored(db) == ({(7, 7): "flags"}, {7: {"step": "flags"}})
