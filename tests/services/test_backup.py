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


@pytest.mark.e2e
async def test_the_backup_command_refuses_overwrites_and_postgresql_in_one_line(tmp_path):
    from tests.e2e.test_cli import env_for, run_cli

    url = f"sqlite:///{tmp_path}/live.db"
    code, out, _ = await run_cli("db", "backup", "--help", env=env_for(url), cwd=tmp_path)
    assert code == 0 and "usage: cadre-bot db backup" in out and "--force" in out
    code, _, err = await run_cli("db", "backup", "copy.db", env=env_for(url), cwd=tmp_path)
    assert code == 2 and "no database at" in err  # a typo in the URL creates nothing
    assert not (tmp_path / "live.db").exists()

    await run_cli("db", "upgrade", env=env_for(url), cwd=tmp_path)
    code, out, _ = await run_cli("db", "backup", "copy.db", env=env_for(url), cwd=tmp_path)
    assert code == 0 and "0 people" in out and "integrity ok" in out
    assert (tmp_path / "copy.db").stat().st_mode & 0o077 == 0  # health data: owner only
    first = (tmp_path / "copy.db").stat().st_mtime_ns
    code, _, err = await run_cli("db", "backup", "copy.db", env=env_for(url), cwd=tmp_path)
    assert code == 2 and "--force" in err and err.count("\n") == 1
    code, out, _ = await run_cli(
        "db", "backup", "copy.db", "--force", env=env_for(url), cwd=tmp_path
    )
    assert code == 0 and (tmp_path / "copy.db").stat().st_mtime_ns >= first
    assert sorted(p.name for p in tmp_path.iterdir() if "copy" in p.name) == ["copy.db"]

    pg = env_for("postgresql+psycopg://cadre:secret@db.example:5432/cadre")
    code, _, err = await run_cli("db", "backup", "x.dump", env=pg, cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1 and "pg_dump --format=custom" in err
    assert "secret" not in err and "'postgresql://cadre@db.example:5432/cadre'" in err


@pytest.mark.e2e
async def test_a_failed_backup_says_so_and_leaves_nothing_behind(tmp_path):
    from tests.e2e.test_cli import env_for, run_cli

    (tmp_path / "damaged.db").write_bytes(b"not a database " * 500)
    env = env_for(f"sqlite:///{tmp_path}/damaged.db")
    code, _, err = await run_cli("db", "backup", "out/copy.db", env=env, cwd=tmp_path)
    assert code == 1 and "backup failed" in err and "Traceback" not in err
    assert list((tmp_path / "out").iterdir()) == []
