"""A backup taken while the bot writes restores to a working database."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import Session, select

from models import Person
from models.db import head_revision, make_engine, schema_revision, upgrade
from services.backup import BackupNotSupported, backup_sqlite


def test_a_backup_under_concurrent_writes_restores_to_a_working_database(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/live.db")
    upgrade(engine)
    stop = threading.Event()

    def write() -> None:
        telegram_id = 1
        while not stop.is_set() and telegram_id < 5000:
            with Session(engine) as session:
                session.add(Person(telegram_id=telegram_id))
                session.commit()
            telegram_id += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copy = backup_sqlite(engine, tmp_path / "backup" / "copy.db", pages_per_step=1)
    finally:
        stop.set()
        writer.join()
    restored = make_engine(f"sqlite:///{copy}")
    assert schema_revision(restored) == head_revision(restored)
    with Session(restored) as session:
        ids = [p.telegram_id for p in session.exec(select(Person))]
    assert ids == list(range(1, len(ids) + 1))  # a consistent prefix of the writes


def test_backup_refuses_to_overwrite_and_to_pretend_for_postgresql(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/live.db")
    upgrade(engine)
    target = backup_sqlite(engine, tmp_path / "copy.db")
    with pytest.raises(FileExistsError):
        backup_sqlite(engine, target)
    with pytest.raises(BackupNotSupported, match="pg_dump"):
        backup_sqlite(make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test"), target)
