"""Assembly, the composition root: the Application with its handlers, hooks, timers,
persistence and start-up work.

What the bot does is listed here, in order, in three places a newcomer reads first:
`register_handlers` (every update goes through these groups), `register_hooks` (what the
services call back) and `start_timers` (the scheduled work, scheduler/). Nothing registers
itself when imported.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from telegram import Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, RetryAfter, TimedOut
from telegram.ext import Application, ApplicationHandlerStop, Defaults, TypeHandler

from bot.delivery import Delivery
from bot.delivery import install as install_delivery
from bot.duty_channels import install as install_channels
from bot.http import HealthServer, listen
from bot.http import start as start_http
from bot.inbox import UpdateInbox
from bot.metrics import DatabaseGauges, Metrics, instrument_handlers
from bot.outage import DatabaseProbe, OutageGuard, database_unavailable
from bot.persistence import DatabasePersistence
from bot.request import AiohttpRequest, Unavailable
from bot.updates import PerChatUpdateProcessor
from config import Settings
from handlers import (
    account,
    admin,
    approvals,
    ask,
    broadcast,
    callbacks,
    checkin,
    checkin_area,
    contacts,
    duty_channels,
    form,
    menus,
    oxygen,
    privacy,
    roster_import,
    sos,
    tags,
)
from handlers.care import forms as care_forms
from handlers.care import overdue as care_overdue
from handlers.care import policy as care_policy
from handlers.care import schedule as care_schedule
from handlers.context import CONTEXT_TYPES, DEPS, Context, Deps, deps_of
from models.db import make_engine, upgrade
from scheduler import jobs
from scheduler.timers import Timers
from services import broadcasts, people
from services.alerts.messages import on_delivery_outcomes as alert_outcomes
from services.care.areas import overdue_people
from services.care.rules import CareConfig
from services.db import Database
from services.duty_channels.checks import on_test_outcomes as duty_channel_test_outcomes
from services.health import checkins, summary
from services.health.config import HealthConfig
from services.outbox.attachments import register_renderer
from services.outbox.outcomes import add_outcome_hook
from webapp import server as board_server

log = logging.getLogger(__name__)

PRIVACY_GROUP = -100  # private chats only, edits never act (handlers/privacy.py)
LANGUAGE_GROUP = -50  # an admin who never chose a language speaks their Telegram app's
BUTTON_GROUP = -20  # every button press: its data parsed and its permission checked first
ACK_LINK_GROUP = -11  # /start ack_<id>: the link in WeCom, DingTalk and SMS alerts
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
    inbox = UpdateInbox(db)  # updates stored before Telegram is told they arrived
    application = (
        Application.builder()
        .token(token)
        .base_url(settings.bot_api_url)
        .base_file_url(settings.bot_file_url)
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=settings.zone))
        .persistence(DatabasePersistence(db))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .concurrent_updates(PerChatUpdateProcessor(settings.max_concurrent_updates))
        .rate_limiter(delivery.rate_limiter())
        .request(AiohttpRequest())  # cheaper than httpx under load (bot/request.py)
        .get_updates_request(AiohttpRequest(connection_pool_size=1, fetched=inbox.fetched))
        .context_types(CONTEXT_TYPES)  # handlers get context.db, .settings, .timers
        .build()
    )
    timers = Timers(application, db, settings, cadre_keyboard=sos.cadre_keyboard)
    application.bot_data[DEPS] = Deps(settings=settings, db=db, timers=timers, delivery=delivery)
    register_hooks(settings)
    register_handlers(application, settings)
    board_server.install(application, settings, db, listen)  # the Mini App (docs/board.md)
    _observe(application, settings, db, delivery, CareConfig.from_settings(settings))
    inbox.install(application)  # hooks into the update processor (bot/inbox.py)
    return application


def _observe(
    application: Application,
    settings: Settings,
    db: Database,
    delivery: Delivery,
    care_config: CareConfig,
) -> None:
    """Health, metrics and the survival of database outages (bot/outage.py, bot/http.py)."""
    probe = DatabaseProbe(db.engine)
    guard = OutageGuard(probe)
    processor = application.update_processor
    if isinstance(processor, PerChatUpdateProcessor):
        guard.reprocess = application.process_update
        processor.after_update = guard.run_deferred
    metrics = Metrics()
    instrument_handlers(application, metrics)
    delivery.metrics = metrics
    gauges = DatabaseGauges(db, care_config, guard)
    metrics.registry.register(gauges)
    application.bot_data["outage"] = guard
    application.bot_data["metrics"] = metrics
    application.bot_data["http"] = HealthServer(application, db, probe, metrics, gauges, guard)


# ---------------------------------------------------------------------------- the wiring


def register_handlers(application: Application, settings: Settings) -> None:
    """Groups run in order for every update; within a group, the first handler that takes
    the update wins."""
    form_timeout = settings.form_timeout
    # The privacy gate first: only what a person does in their private chat with the bot
    # goes further (a group gets at most a pointer to a private chat); edits never act.
    application.add_handlers(privacy.build(), group=PRIVACY_GROUP)
    # An admin who never chose a language is answered in their Telegram app's.
    application.add_handler(
        TypeHandler(Update, account.follow_telegram_language), group=LANGUAGE_GROUP
    )
    # Every button press: its data parsed by the one grammar, its permission checked.
    application.add_handler(callbacks.build_gate(), group=BUTTON_GROUP)
    # /start ack_<id>: the acknowledgement link in WeCom, DingTalk and SMS alerts.
    application.add_handlers(duty_channels.build_deep_links(), group=ACK_LINK_GROUP)
    # The emergency channel stops further processing: an SOS works in the middle of any form.
    application.add_handlers(sos.build_emergency(), group=EMERGENCY_GROUP)
    # Group 0. The profile form (registration, profile edits) first; then the features,
    # conversations that take typed answers before the features that read free text.
    application.add_handler(form.build(form_timeout))
    application.add_handlers(approvals.build())  # registration requests: approve, reject
    application.add_handlers(admin.build())  # /people, roles, suspensions, duty areas
    application.add_handlers(roster_import.build())  # roster uploads (CSV, XLSX)
    application.add_handlers(checkin.build(form_timeout))  # the daily check-in, /reminders
    application.add_handlers(checkin_area.build())  # /today, /export, the 30-day chart
    application.add_handler(care_forms.build(form_timeout))  # care forms, the /oxygen request
    application.add_handlers(care_schedule.build())  # /schedule, reminder time, snooze
    application.add_handlers(care_overdue.build())  # /overdue, /upcoming, a person's schedule
    application.add_handlers(care_policy.build())  # /carepolicy
    application.add_handlers(oxygen.build())  # oxygen requests taken, delivered, cancelled
    application.add_handlers(broadcast.build(form_timeout))  # /broadcast, notices
    application.add_handlers(tags.build())  # /tag, /untag, /tags: cohorts to address
    application.add_handlers(sos.build())  # /alerts, /ack, /resolve, the roster, the directory
    application.add_handlers(contacts.build())  # /contacts: emergency contacts' links
    application.add_handlers(ask.build())  # policy questions, handoffs to a person
    application.add_handlers(account.build())  # /me, /mydata, /deleteme, /language
    application.add_handlers(duty_channels.build())  # /dutygroup, /sms
    # Fallbacks: free text is a policy question; unknown commands, stale buttons.
    application.add_handlers(account.build_fallbacks())
    # Who blocked or unblocked the bot.
    application.add_handler(broadcast.reachability_handler(), group=REACHABILITY_GROUP)
    # After every update: conversation states and form data written at once.
    application.add_handler(TypeHandler(Update, flush_after_update), group=FLUSH_GROUP)
    application.add_error_handler(on_error)


def register_hooks(settings: Settings) -> None:
    """What the services call back. The registries are the process's (the outbox and the
    broadcasts keep them); registering again replaces, so every Application built in a
    process (the tests build many) leaves the same hooks."""
    # The outbox calls these in the transaction that records delivery outcomes:
    # a round of alert messages that all failed for good escalates at once;
    add_outcome_hook("alert:", alert_outcomes)
    # the admin who pressed "Test" on a duty group hears how it went.
    add_outcome_hook("dgtest:", duty_channel_test_outcomes)
    # The delivery worker draws these files when their message is sent: the 30-day chart.
    health = HealthConfig.from_settings(settings)
    register_renderer(summary.CHART_RENDERER, functools.partial(checkins.chart_attachment, health))
    # A broadcast to "the overdue" reaches the people overdue for rest or an examination.
    care_config = CareConfig.from_settings(settings)
    broadcasts.register_overdue_source("care", lambda session: overdue_people(session, care_config))


async def start_timers(application: Application, timers: Timers) -> None:
    """The scheduled work (scheduler/), rebuilt from the database at start-up, before the
    scheduler starts. A feature whose start fails is logged; the others still start."""
    for feature in (
        # SOS first: alerts whose timers ran out while the bot was stopped escalate at
        # once; an SOS answer lost to a crash is queued; coverage gaps are checked.
        timers.sos,
        # Check-ins: reminders, cut-offs, AMBER rechecks, escalations; retention at 03:30.
        timers.health,
        # Care schedules' reminders and escalations; urgent oxygen requests' escalations.
        timers.care,
        # Scheduled broadcasts' starts; the progress pass.
        timers.broadcasts,
        # Reminders of policy questions waiting for a person.
        timers.kb,
    ):
        try:
            await feature.start()
        except Exception:
            log.exception("starting the timers of %s failed", type(feature).__name__)
    # The policy questions' index, built in the background so that the first question is
    # quick (not application.create_task: the Application is not running yet).
    application.bot_data["kb:warm-up"] = asyncio.create_task(ask.warm_up(application))


async def flush_after_update(update: Update, context: Context) -> None:
    """Write conversation states and form data now, not in a minute: a crash loses nothing.
    PTB marks the update's user for writing only after the last group, hence the mark."""
    application = context.application
    if update.effective_user is not None:
        application.mark_data_for_update_persistence(user_ids=update.effective_user.id)
    await application.update_persistence()
    if isinstance(application.persistence, DatabasePersistence):
        try:
            await application.persistence.committed()  # one transaction for many updates
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # The update was handled (its replies are out); its state stays queued and is
            # written when the database is back. Handling it again would answer twice.
            log.warning("database unreachable: state of update %s kept", update.update_id)


async def on_error(update: object, context: Context) -> None:
    """Never a traceback to the user, never silence: log it and say something went wrong.

    Except when the database is unreachable: the person would rather get their answer late
    than an error, so the update is kept and handled again once the database is back
    (bot/outage.py); they are told once that their message is kept."""
    if database_unavailable(context.error):
        guard: OutageGuard | None = context.application.bot_data.get("outage")
        if isinstance(update, Update) and guard is not None and guard.defer(update):
            log.warning(
                "database unreachable: update %s will be handled when it is back (%s)",
                update.update_id,
                context.error.__class__.__name__,
            )
            await _tell_kept(update, context, guard)
            raise ApplicationHandlerStop
        if update is None:  # a job or the persistence: they run again by themselves
            log.warning("database unreachable: %s", _first_line(context.error))
            return
    if isinstance(context.error, RetryAfter | Unavailable | TimedOut):
        # Telegram refused or did not answer a reply even after the rate limiter's retries
        # (bot.delivery.ReplyAccounting; text replies were handed to the outbox there). The
        # bot did nothing wrong, and an error message would meet the same refusal.
        update_id = update.update_id if isinstance(update, Update) else None
        log.warning(
            "Telegram did not take a reply to update %s: %s: %s",
            update_id,
            context.error.__class__.__name__,
            _first_line(context.error),
        )
        return
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and _private(update):
        from handlers.common import language_of
        from services.i18n import t

        try:
            lang = language_of(update, context)
            if update.callback_query is not None:
                try:
                    await update.callback_query.answer()
                except BadRequest:  # the handler answered it before it failed
                    pass
            await update.effective_chat.send_message(t(lang, "error.generic"))
        except Exception:
            log.exception("could not tell the user about an error")


async def _tell_kept(update: Update, context: Context, guard: OutageGuard) -> None:
    """Once per chat and outage: "your message is kept, the answer comes shortly"."""
    from handlers.common import language_of
    from services.i18n import t

    try:
        lang = language_of(update, context)
        if update.callback_query is not None:
            # The late handler's own answer will be refused as too old; this one stops
            # the button spinning now.
            await update.callback_query.answer(_plain(t(lang, "outage.wait")))
        elif guard.should_tell(update) and _private(update):
            await update.effective_chat.send_message(t(lang, "outage.wait"))
    except Exception:
        log.warning("could not tell the person their message is kept", exc_info=True)


def _private(update: Update) -> bool:
    """Error and outage notices go to private chats only, never into a group."""
    chat = update.effective_chat
    return chat is not None and chat.type == ChatType.PRIVATE


def _plain(text: str) -> str:
    from handlers.common import plain_text

    return plain_text(text)


def _first_line(error: BaseException | None) -> str:
    return (str(error).strip().splitlines() or [""])[0][:200]


def freeze_startup_objects() -> None:
    """What start-up built (modules, catalogs, mapped classes, the Application) lives as
    long as the process: frozen out of the garbage collector's full passes, which otherwise
    paused an answer by about 90 ms now and then at 100,000 people (docs/benchmarks.md).
    For `cadre-bot run` only: a test process builds many Applications."""
    gc.collect()
    gc.freeze()


async def _post_init(application: Application) -> None:
    deps = deps_of(application)
    settings = deps.settings
    await deps.db.run(people.ensure_admins, settings.admin_ids, settings.default_language)
    await menus.set_default_menus(application.bot, settings.default_language)
    for person in await deps.db.run(people.admins):
        await menus.set_person_menu(application.bot, person, settings.webapp_url)
    # Scheduled work: the delivery worker starts with the scheduler (and stops with it),
    # and every feature's jobs are rebuilt from the database.
    if settings.delivery_worker:
        install_delivery(application, deps.delivery)
    install_channels(application, settings)  # WeCom, DingTalk, SMS (its own worker)
    await start_timers(application, deps.timers)
    guard: OutageGuard = application.bot_data["outage"]
    jobs.scheduler_of(application).add_listener(
        lambda _event: guard.request_stop(), EVENT_SCHEDULER_SHUTDOWN
    )
    if settings.http_address is not None:
        await start_http(application, application.bot_data["http"], *settings.http_address)
    await board_server.start(application, start_http)
    await application.bot_data["inbox"].resume()  # what the process before left unhandled


async def _post_shutdown(application: Application) -> None:
    server: HealthServer | None = application.bot_data.get("http")
    if server is not None:
        await server.stop()
    await board_server.stop(application)
