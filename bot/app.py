"""Assembly: the Application with its handlers, persistence and start-up work."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import Application, Defaults, TypeHandler

from bot.delivery import Delivery
from bot.delivery import install as install_delivery
from bot.persistence import DatabasePersistence
from bot.updates import PerChatUpdateProcessor
from config import Settings
from handlers import (
    account,
    admin,
    approvals,
    ask,
    broadcast,
    checkin,
    form,
    menus,
    schedules,
    sos,
)
from handlers.common import Context, Deps
from models.db import make_engine, upgrade
from scheduler import broadcasts as _broadcast_jobs  # noqa: F401  (registers its rebuilder)
from scheduler import jobs
from services import broadcasts, care, people
from services.db import Database

log = logging.getLogger(__name__)

EMERGENCY_GROUP = -10
REACHABILITY_GROUP = 900  # sees every my_chat_member update (blocked / unblocked)
FLUSH_GROUP = 1000


def build_database(settings: Settings, migrate: bool = True) -> Database:
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    return Database(engine)


def build_application(settings: Settings, db: Database) -> Application:
    """The real bot. Tests build it exactly like `cadre-bot run` does."""
    token = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    # The delivery worker sends every proactive message; replies sent here count against
    # the same Telegram limits through its rate limiter (never delayed).
    delivery = Delivery(settings, db)
    application = (
        Application.builder()
        .token(token)
        .base_url(settings.bot_api_url)
        .base_file_url(settings.bot_file_url)
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=settings.zone))
        .persistence(DatabasePersistence(db))
        .post_init(_post_init)
        .concurrent_updates(PerChatUpdateProcessor(settings.max_concurrent_updates))
        .rate_limiter(delivery.rate_limiter())
        .build()
    )
    application.bot_data["deps"] = Deps(settings=settings, db=db, delivery=delivery)
    care_config = care.CareConfig.from_settings(settings)
    broadcasts.register_overdue_source(
        "care", lambda session: care.overdue_people(session, care_config)
    )
    application.bot_data["wake"] = delivery.wake
    register_handlers(application, settings)
    return application


def register_handlers(application: Application, settings: Settings) -> None:
    """Groups run in order for every update. The emergency group comes first and stops
    further processing, so an SOS works in the middle of any form."""
    application.add_handlers(sos.build_emergency(), group=EMERGENCY_GROUP)
    application.add_handler(form.build(settings.form_timeout))
    # Conversations that take typed answers come before features that read free text.
    for feature in (approvals, admin, checkin, schedules, broadcast, sos, ask, account):
        application.add_handlers(feature.build())
    application.add_handlers(account.build_fallbacks())
    application.add_handler(broadcast.reachability_handler(), group=REACHABILITY_GROUP)
    application.add_handler(TypeHandler(Update, flush_after_update), group=FLUSH_GROUP)
    application.add_error_handler(on_error)


async def flush_after_update(update: Update, context: Context) -> None:
    """Write conversation states and form data now, not in a minute: a crash loses nothing."""
    await context.application.update_persistence()


async def on_error(update: object, context: Context) -> None:
    """Never a traceback to the user, never silence: log it and say something went wrong."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        from handlers.common import language_of
        from services.i18n import t

        try:
            lang = language_of(update, context)
            if update.callback_query is not None:
                await update.callback_query.answer()
            await update.effective_chat.send_message(t(lang, "error.generic"))
        except Exception:
            log.exception("could not tell the user about an error")


async def _post_init(application: Application) -> None:
    deps: Deps = application.bot_data["deps"]
    settings = deps.settings
    await deps.db.run(people.ensure_admins, settings.admin_ids, settings.default_language)
    await menus.set_default_menus(application.bot, settings.default_language)
    for person in await deps.db.run(people.admins):
        await menus.set_person_menu(application.bot, person)
    # Scheduled work: the delivery worker starts with the scheduler (and stops with it),
    # and every feature's jobs are rebuilt from the database.
    if settings.delivery_worker:
        install_delivery(application, deps.delivery)
    await jobs.rebuild_all(application)
