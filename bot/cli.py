"""The `cadre-bot` command line: run, db upgrade, db backup, check."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from bot import logs
from config import Settings

EXIT_CONFIG = 2
log = logging.getLogger("bot.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cadre-bot",
        description="Telegram assistant for seconded cadres: health, SOS, schedules, policy.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run_command = commands.add_parser(
        "run",
        help="run the bot (long polling, or --webhook); migrates the database first",
        description="Run the bot with long polling, or with --webhook. Migrates the database "
        "first; stops cleanly on SIGINT or SIGTERM.",
    )
    run_command.add_argument(
        "--webhook",
        action="store_true",
        help="receive updates by webhook instead of long polling: listen on "
        "CADRE_WEBHOOK_LISTEN for Telegram's posts to CADRE_WEBHOOK_URL, each carrying "
        "CADRE_WEBHOOK_SECRET (requests without it are refused)",
    )
    db = commands.add_parser("db", help="database maintenance", description="Database maintenance.")
    db_commands = db.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)
    db_commands.add_parser(
        "upgrade",
        help="migrate the database to this version's schema",
        description="Migrate the database to this version's schema.",
    )
    backup = db_commands.add_parser(
        "backup",
        help="copy the SQLite database to PATH while the bot runs",
        description="Copy the SQLite database to PATH with SQLite's online backup API: a "
        "consistent snapshot, safe while the bot runs. The copy is checked, then renamed into "
        "place. For PostgreSQL use pg_dump (docs/deploy.md).",
    )
    backup.add_argument("path", metavar="PATH", help="the backup file to write")
    backup.add_argument(
        "--force", action="store_true", help="replace PATH if it exists (default: refuse)"
    )
    commands.add_parser(
        "status",
        help="this host's role and the leader's host, since when (high availability)",
        description="Print this host's role (leader or standby) and which host leads, since "
        "when. With SQLite: whether a `cadre-bot run` holds the database.",
    )
    commands.add_parser(
        "check",
        help="validate settings, reach the database and the Bot API",
        description="Validate the settings, reach the database and the Bot API, "
        "and print what was found.",
    )
    from bot import demo

    demo.add_parser(commands)
    return parser


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CADRE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        _fail(f"invalid settings: {problems}")
        raise  # unreachable
    # Settings hold values; the services check those that feed their rules.
    from services.health import config as health_config

    try:
        health_config.check(settings)
    except ValueError as exc:
        name, _, problem = str(exc).partition(": ")
        _fail(f"invalid settings: CADRE_{name.upper()}: {problem}")
    return settings


def _fail(message: str) -> None:
    print(f"cadre-bot: {message}", file=sys.stderr)
    sys.exit(EXIT_CONFIG)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings()
    if args.command == "run" and (problem := settings.token_problem()):
        _fail(problem)
    if args.command == "run" and args.webhook and (problem := settings.webhook_problem()):
        _fail(problem)
    secrets = [
        s.get_secret_value() for s in (settings.telegram_token, settings.webhook_secret) if s
    ]
    logs.configure(settings.log_level, json_lines=settings.log_format == "json", secrets=secrets)
    if args.command == "demo":
        from bot import demo

        return demo.main(args, settings)
    if args.command == "run":
        return run(settings, webhook=args.webhook)
    if args.command == "db" and args.db_command == "backup":
        return db_backup(settings, args.path, force=args.force)
    if args.command == "db":
        return db_upgrade(settings)
    if args.command == "status":
        return status(settings)
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


def db_backup(settings: Settings, path: str, *, force: bool) -> int:
    """`db backup PATH`: exit 0 with a one-line report, 2 for a usage problem (PATH exists,
    no database, PostgreSQL), 1 if the copy failed."""
    import sqlite3
    from pathlib import Path

    from models.db import make_engine
    from services.backup import BackupNotSupported, sqlite_path, write_backup

    try:
        sqlite_path(settings.database_url)
    except BackupNotSupported as exc:
        _fail(str(exc))
    engine = make_engine(settings.database_url)
    try:
        report = write_backup(engine, Path(path), overwrite=force)
    except (FileExistsError, FileNotFoundError, IsADirectoryError) as exc:
        _fail(str(exc))
    except (OSError, RuntimeError, sqlite3.Error) as exc:  # disk full, a damaged database...
        print(f"cadre-bot: backup failed: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(report.describe())
    return 0


def run(settings: Settings, webhook: bool = False) -> int:
    from bot.app import build_application, build_database
    from models.db import SchemaTooNew

    problem = settings.token_problem()
    if problem:
        _fail(problem)
    exclusive = _hold_sqlite_lock(settings.database_url)
    asked = _finish_migration_first()
    log.info("database: migrating the schema to this version's, if needed")
    try:
        db = build_database(settings)
    except SchemaTooNew as exc:
        _fail(str(exc))
    if asked.is_set():
        log.info("stopped during the start-up, once the database migration had finished")
        db.engine.dispose()
        return 0
    if exclusive:  # the only process on this SQLite file: whatever is left sending is ours
        from services.outbox.leases import reclaim_all

        db.call(reclaim_all)
    application = build_application(settings, db)
    # One event loop for the wait and the bot (run_polling and run_webhook take the current one).
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stopping = _stop_on_signals(loop)
    if asked.is_set():  # between the migration and the loop's own handlers
        stopping.set()
    leadership = None
    try:
        if db.engine.dialect.name == "postgresql":  # one leader, warm standbys (bot/leader.py)
            from bot import leader

            leadership = leader.Leadership(db.engine, settings.ha_lease)
            if not loop.run_until_complete(
                leader.stand_by(application, leadership, settings, webhook, stopping)
            ):
                return 0
            loop.run_until_complete(leader.take_over(application, leadership))
        return _lead(application, settings, loop, webhook, stopping)
    except KeyboardInterrupt:
        return 0
    finally:
        if leadership is not None:
            leadership.stop()  # frees the lock at once: a standby takes over


def _finish_migration_first() -> Any:
    """SIGTERM or SIGINT during the start-up's database migration: the migration finishes
    (on SQLite, whose schema changes are not transactional, a migration cut off half-way
    could leave a table half-copied), then `run` exits with code 0. Returns the event set
    by the first signal; a second one acts as before (SIGTERM kills, SIGINT interrupts)."""
    import signal
    import threading

    asked = threading.Event()
    previous: dict[int, Any] = {}

    def finish_first(signum: int, _frame: Any) -> None:
        asked.set()
        signal.signal(signum, previous[signum])
        log.warning(
            "asked to stop during the database migration: it finishes first, then the process exits"
        )

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, finish_first)
    return asked


def _stop_on_signals(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    """SIGTERM and SIGINT from the end of the migration to the stop: the event is set.
    During the start-up (standing by, taking over, waiting for the Bot API) the start-up
    ends cleanly with exit code 0; once the Application runs (run_polling, run_webhook,
    with stop_signals=None: these handlers stay) `_stop_when_asked` stops it."""
    import signal

    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    return stopping


def _lead(
    application: Any, settings: Settings, loop: Any, webhook: bool, stopping: asyncio.Event
) -> int:
    from bot.app import freeze_startup_objects

    reached = loop.run_until_complete(_reach_bot_api(application.bot, settings, stopping))
    if stopping.is_set():
        log.info("stopped during the start-up")
        return 0
    if not reached:
        _fail("CADRE_TELEGRAM_TOKEN: the Bot API refused this token (revoked, or another bot's)")
    freeze_startup_objects()
    watcher = loop.create_task(_stop_when_asked(application, stopping), name="stop-on-signal")
    try:
        _run_application(application, settings, webhook)
    finally:
        if not watcher.done():
            watcher.cancel()
            loop.run_until_complete(asyncio.gather(watcher, return_exceptions=True))
        elif not watcher.cancelled():
            watcher.exception()  # the SystemExit that stopped the Application: retrieved
    return 0


async def _stop_when_asked(application: Any, stopping: asyncio.Event) -> None:
    """Stop the Application on SIGTERM or SIGINT as PTB's own signal handler does (a
    SystemExit out of the event loop), except while its updater starts: PTB's, raised while
    the updater was registering the webhook (or deleting it, polling), left that step's
    task behind and its error in the log. A signal then lets the step finish; the
    Application starts and stops at once, cleanly. (A start that fails ends the run with
    its own error, as before.)"""
    await stopping.wait()
    updater = application.updater
    starting = False
    while updater is not None and updater.running and not application.running:
        starting = True
        await asyncio.sleep(0.05)
    if starting and not application.running:
        return
    raise SystemExit(0)


def _run_application(application: Any, settings: Settings, webhook: bool) -> None:
    from telegram import Update

    if not webhook:
        application.run_polling(
            allowed_updates=Update.ALL_TYPES, close_loop=False, stop_signals=None
        )
        return
    assert settings.webhook_secret is not None
    from bot.webhook import GuardedUpdater

    # Refuses a wrong secret or an oversized body before reading it (bot/webhook.py).
    application.updater = GuardedUpdater(
        application.bot,
        application.update_queue,
        settings.webhook_max_body_bytes,
        application.bot_data.get("inbox"),
    )
    url, path = settings.webhook_endpoint()
    host, port = settings.webhook_address
    log.info("webhook mode: listening on %s:%d%s for %s", host, port, path, url)
    try:
        application.run_webhook(
            listen=host,
            port=port,
            url_path=path,
            webhook_url=url,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=Update.ALL_TYPES,
            close_loop=False,
            stop_signals=None,  # `_stop_on_signals` keeps them
        )
    except OSError as exc:  # the address is taken or cannot be bound
        _fail(f"CADRE_WEBHOOK_LISTEN: cannot listen on {settings.webhook_listen} ({exc.strerror})")


_sqlite_lock: int | None = None  # the lock file's descriptor, held while `run` lives


def _sqlite_lock_path(database_url: str) -> Any:
    from pathlib import Path

    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(f"{url.database}.lock")


def _hold_sqlite_lock(database_url: str) -> bool:
    """SQLite serves one `cadre-bot run`: a second one on the same file refuses to start
    (an exclusive lock on a file beside the database, freed by the kernel at any exit).
    True when this process now holds it."""
    import fcntl
    import os

    global _sqlite_lock
    path = _sqlite_lock_path(database_url)
    if path is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        _fail(
            f"the database {str(path)[:-5]} is in use by another `cadre-bot run` (lock file "
            f"{path}); SQLite allows one process: stop the other one, or use PostgreSQL "
            "for two hosts (docs/deploy.md)"
        )
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _sqlite_lock = fd
    return True


def status(settings: Settings) -> int:
    """`cadre-bot status`: this host's role and the leader's host, since when."""
    import fcntl
    import os
    import socket

    from models.db import make_engine

    path = _sqlite_lock_path(settings.database_url)
    if path is not None:
        running = False
        if path.exists():
            fd = os.open(path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                running = True
            finally:
                os.close(fd)
        state = "a `cadre-bot run` holds it" if running else "no `cadre-bot run` holds it"
        print(f"SQLite, a single host (no leader election): {state}")
        return 0
    engine = make_engine(settings.database_url)
    host = socket.gethostname()
    try:
        from bot.leader import describe_leader

        leader = describe_leader(engine)
    except Exception as exc:
        print(f"database: NOT reachable ({exc.__class__.__name__}: {exc})")
        return 1
    finally:
        engine.dispose()
    role = _local_role(settings)
    print(f"this host ({host}): {role}")
    if leader is None:
        print("leader: none yet (no `cadre-bot run` has led on this database)")
        return 0
    stale = leader["heartbeat_age_seconds"] > settings.ha_lease
    print(
        f"leader: {leader['host']} (pid {leader['pid']}) since {leader['since']}, "
        f"term {leader['term']}, heartbeat {leader['heartbeat_age_seconds']:.1f} s ago"
        + (" (STALE: the leader is not running)" if stale else "")
    )
    return 0


def _local_role(settings: Settings) -> str:
    """The role the local `cadre-bot run` reports on /healthz (CADRE_HTTP_LISTEN)."""
    import json
    import urllib.request

    address = settings.http_address
    if address is None:
        return "unknown (CADRE_HTTP_LISTEN is empty)"
    host, port = address
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503: unhealthy, but it says its role
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return f"not running (nothing answers {url})"
    return str(body.get("role") or "unknown")


BOT_API_WAIT_MAX = 60.0  # seconds between two start-up attempts, at most


async def _reach_bot_api(bot: Any, settings: Settings, stopping: asyncio.Event) -> bool:
    """Whether the Bot API takes the token, waiting while it cannot be reached: in mainland
    China Telegram is reached through a VPN, which comes and goes, and a bot that exited at
    start-up would leave the outbox, the escalations and the WeCom, DingTalk and SMS
    channels waiting for someone to restart it. A warning says why at every attempt.
    Returns at once when `stopping` is set (SIGTERM, SIGINT)."""
    from telegram.error import InvalidToken, TelegramError

    delay = 1.0
    await bot.request.initialize()
    try:
        while not stopping.is_set():
            try:
                await bot.get_me()
                return True
            except InvalidToken:
                return False
            except TelegramError as exc:  # unreachable, timed out, 5xx, flood control
                log.warning(
                    "the Telegram Bot API at %s cannot be reached (%s: %s); trying again in %.0f s",
                    settings.telegram_base_url,
                    type(exc).__name__,
                    str(exc).split(". Parsing the server response")[0][:160],  # not the page
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                delay = min(delay * 2, BOT_API_WAIT_MAX)
        return False
    finally:
        await bot.request.shutdown()  # the Application opens its own, in this loop


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
