"""Migration 0017: admins that an earlier version bootstrapped from CADRE_ADMIN_IDS follow
their Telegram app's language until they choose one, as new ones do (issue 16)."""

from __future__ import annotations

from alembic import command

from models.db import alembic_config, schema_revision, upgrade
from services import people, state


def _as_an_earlier_version_left_them(db, telegram_id: int, language: str) -> None:
    db.call(people.ensure_admins, [telegram_id], "zh-Hans")
    db.call(state.drop, people.LANGUAGE_UNCHOSEN, str(telegram_id))
    if language != "zh-Hans":
        db.call(people.set_language, telegram_id, language)


def test_admins_bootstrapped_earlier_follow_their_telegram_language_after_the_upgrade(engine, db):
    _as_an_earlier_version_left_them(db, 9001, "zh-Hans")  # never chose: the default
    _as_an_earlier_version_left_them(db, 9002, "en")  # chose English: keeps it
    command.downgrade(alembic_config(engine), "0016")
    assert schema_revision(engine) == "0016"
    upgrade(engine)
    assert db.call(people.language_unchosen) == {9001}
