"""The `cadre-bot` command line: run, db upgrade, check."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from config import Settings

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cadre-bot",
        description="Telegram assistant for seconded cadres: health, SOS, schedules, policy.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "run",
        help="run the bot (long polling); migrates the database first",
        description="Run the bot with long polling. Migrates the database first; "
        "stops cleanly on SIGINT or SIGTERM.",
    )
    db = commands.add_parser("db", help="database maintenance", description="Database maintenance.")
    db_commands = db.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)
    db_commands.add_parser(
        "upgrade",
        help="migrate the database to this version's schema",
        description="Migrate the database to this version's schema.",
    )
    commands.add_parser(
        "check",
        help="validate settings, reach the database and the Bot API",
        description="Validate the settings, reach the database and the Bot API, "
        "and print what was found.",
    )
    return parser


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CADRE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        _fail(f"invalid settings: {problems}")
        raise  # unreachable


def _fail(message: str) -> None:
    print(f"cadre-bot: {message}", file=sys.stderr)
    sys.exit(EXIT_CONFIG)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings()
    if args.command == "run" and (problem := settings.token_problem()):
        _fail(problem)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "run":
        return run(settings)
    if args.command == "db":
        return db_upgrade(settings)
    return asyncio.run(check(settings))


def db_upgrade(settings: Settings) -> int:
    from models.db import SchemaTooNew, head_revision, make_engine, upgrade

    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    except SchemaTooNew as exc:
        _fail(str(exc))
    print(f"database at revision {head_revision(engine)}")
    return 0


def run(settings: Settings) -> int:
    from telegram import Update

    from bot.app import build_application, build_database
    from models.db import SchemaTooNew

    problem = settings.token_problem()
    if problem:
        _fail(problem)
    try:
        db = build_database(settings)
    except SchemaTooNew as exc:
        _fail(str(exc))
    application = build_application(settings, db)
    application.run_polling(allowed_updates=Update.ALL_TYPES, close_loop=False)
    return 0


async def check(settings: Settings) -> int:
    from sqlalchemy import text
    from telegram import Bot
    from telegram.error import TelegramError

    from models.db import head_revision, make_engine, schema_revision

    ok = True
    print(
        f"settings: database {settings.database_url.split('@')[-1]}, "
        f"time zone {settings.timezone}, language {settings.default_language}, "
        f"{len(settings.admin_ids)} admin id(s)"
    )
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current, head = schema_revision(engine), head_revision(engine)
        if current == head:
            state = "up to date"
        elif current is None:
            state = "not created yet (run `cadre-bot db upgrade`)"
        else:
            state = f"at {current}, this version expects {head}"
        print(f"database: reachable, schema {state}")
    except Exception as exc:
        ok = False
        print(f"database: NOT reachable ({exc.__class__.__name__}: {exc})")
    problem = settings.token_problem()
    if problem:
        print(f"bot api: {problem}")
        ok = False
    else:
        assert settings.telegram_token is not None
        bot = Bot(
            settings.telegram_token.get_secret_value(),
            base_url=settings.bot_api_url,
            base_file_url=settings.bot_file_url,
        )
        try:
            async with bot:
                me = await bot.get_me()
            print(f"bot api: reachable at {settings.telegram_base_url}, bot @{me.username}")
        except TelegramError as exc:
            ok = False
            print(f"bot api: NOT reachable at {settings.telegram_base_url} ({exc})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
