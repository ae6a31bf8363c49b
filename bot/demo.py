"""`cadre-bot demo`: try the bot offline, in a terminal chat, without a token.

The real bot (assembled by bot.app, as `cadre-bot run` does) runs in-process against the
project's Bot API emulator (package `emulator`), with demo data: a cadre posted to Litang,
a duty officer for Ganzi and an admin. The person at the terminal acts as any of them.
This module is the command line's side (kept light: `cadre-bot --help` imports it); the
demo itself is bot/demo_chat.py. docs/development.md explains how it works.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from config import Settings

DEFAULT_LOG = "var/demo.log"
DEFAULT_FILES = "var/demo-files"  # bot.demo_chat.DEFAULT_FILES (kept light: not imported)


def add_parser(commands: Any) -> None:
    """The `demo` verb (bot/cli.py adds it to its subcommands)."""
    parser = commands.add_parser(
        "demo",
        help="try the bot offline: a terminal chat against the built-in Bot API emulator",
        description="Run the real bot against the built-in Bot API emulator, with demo "
        "data, and chat with it in the terminal as a cadre, a duty officer or an admin. "
        "No token is needed. Lines are read from stdin, so a script works too.",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="keep the demo in this database (an SQLAlchemy URL or an SQLite file path); "
        "default: a fresh SQLite database in a temporary directory, deleted at the end",
    )
    parser.add_argument(
        "--log", metavar="PATH", default=DEFAULT_LOG, help=f"the bot's log (default: {DEFAULT_LOG})"
    )
    parser.add_argument(
        "--files",
        metavar="DIR",
        default=DEFAULT_FILES,
        help="save the pictures and files the bot sends here (default: %(default)s)",
    )
    parser.add_argument(
        "--open",
        action="store_true",
        help="open each picture or file the bot sends with xdg-open as it arrives",
    )
    parser.add_argument(
        "--language",
        choices=("zh-Hans", "en"),
        help="everyone's language, the demo's too (default: Chinese for the cadre and the "
        "duty officer, English for the admin)",
    )


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo; the database is a temporary one unless --database names one."""
    from bot.demo_chat import run_demo

    log_path = Path(args.log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    workdir = None
    database_url = args.database
    if not database_url:
        workdir = Path(tempfile.mkdtemp(prefix="cadre-demo-"))
        database_url = f"sqlite:///{workdir / 'cadre-demo.sqlite'}"
    elif "://" not in database_url:
        database_url = f"sqlite:///{Path(database_url).resolve()}"
    _log_to(log_path, settings.log_level)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    try:
        return asyncio.run(
            run_demo(
                settings,
                database_url,
                args.language,
                log_path,
                files_dir=Path(args.files),
                open_files=args.open,
            )
        )
    finally:
        logging.shutdown()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _log_to(path: Path, level: str) -> None:
    """Every log record to the file, redacted like the bot's own log: the chat stays clean."""
    from bot.logs import RedactingFilter

    handler = logging.FileHandler(path, encoding="utf-8")
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "alembic", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
    logging.captureWarnings(True)
