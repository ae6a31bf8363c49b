"""Daily health check-in (/checkin, the 📝 button, the reminder's button), /history,
/trend, /reminders. What duty officers see of their area (/today, /export, the chart) is
handlers/checkin_area.py.

The check-in is a persistent ConversationHandler like the profile form: its answers live in
user_data["checkin"], and the state is written before each question goes out, so a restart
mid-check-in loses nothing. Red-flag questions come first; any "yes" ends the form and
raises RED at once. Assessment and everything it causes happen in services.health.
"""

from __future__ import annotations

import logging
import re
from datetime import date, time, timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, InputFile, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from handlers import menus
from handlers.callbacks import pressed
from handlers.common import (
    Context,
    answer,
    buttons,
    current_person,
    edit_or_reply,
    guarded,
    language_of,
    refuse,
    reply,
    show_answer,
)
from handlers.conversation import FormDraft, form_conversation, once_per_update, persist_now
from handlers.paging import Page, page_buttons, turn
from handlers.sos_common import policy as alert_policy
from models import Person
from models.health import RED_FLAGS, Feeling, Tier
from services import clock, examples
from services.health import checkins, reminders, reports, summary
from services.health.assessment import Readings, bp_needs_repeat
from services.health.checkins import CheckinError, Outcome
from services.health.config import HealthConfig
from services.i18n import Html, t
from services.permissions import Action, check
from services.screens import SCREEN, lines_on_phone, paginate
from services.validation import number_text, parse_int

log = logging.getLogger(__name__)

NAME = "checkin"
LLS_ITEMS = ("headache", "gi", "fatigue", "dizziness")
STEPS = (
    "feeling",
    "flags",
    "cough",
    *LLS_ITEMS,
    "functional",
    "spo2",
    "hr",
    "temp",
    "bp",
    "bp2",
    "note",
)
TYPED_STEPS = {"spo2", "hr", "temp", "bp", "bp2", "note"}
SPO2_CHOICES = tuple(range(99, 79, -1))  # 99 ... 80, five to a row
HR_CHOICES = tuple(range(55, 125, 5))
TEMP_CHOICES = ("36.0", "36.3", "36.5", "36.8", "37.0", "37.3", "37.6", "38.0", "38.5", "39.0")
REMINDER_CHOICES = ("07:00", "08:00", "09:00", "10:00", "11:00", "12:00")
PAUSE_CHOICES = (3, 7, 14)
NOTE_MAX = checkins.NOTE_MAX
_CONFIG = "health_config"  # bot_data: the HealthConfig, built once


def config(context: Context) -> HealthConfig:
    """The health settings, built once per application from CADRE_* settings."""
    data = context.application.bot_data
    if _CONFIG not in data:
        data[_CONFIG] = HealthConfig.from_settings(context.settings)
    built: HealthConfig = data[_CONFIG]
    return built


# ---------------------------------------------------------------------------- draft state


DRAFT = FormDraft("checkin", alive="step")


def _draft(context: Context) -> dict[str, Any]:
    return DRAFT.of(context)


def _answers(context: Context) -> dict[str, Any]:
    return _draft(context).setdefault("answers", {})


def _lang(update: Update, context: Context) -> str:
    return _draft(context).get("lang") or language_of(update, context)


# ---------------------------------------------------------------------------- questions


def _lls_total(answers: dict[str, Any]) -> int:
    return sum(int(answers.get(item) or 0) for item in LLS_ITEMS)


def _next_step(step: str, answers: dict[str, Any], cfg: HealthConfig) -> str | None:
    index = STEPS.index(step) + 1
    while index < len(STEPS):
        candidate = STEPS[index]
        if candidate == "functional" and _lls_total(answers) == 0:
            answers["functional"] = 0  # no symptoms: nothing to ask about their effect
        elif candidate == "bp2" and not (
            answers.get("sys") is not None
            and bp_needs_repeat(answers["sys"], answers["dia"], cfg.thresholds)
        ):
            pass
        else:
            return candidate
        index += 1
    return None


def _grid(items: list[tuple[str, str]], per_row: int) -> list[list[tuple[str, str]]]:
    return [items[i : i + per_row] for i in range(0, len(items), per_row)]


def _question(lang: str, step: str, cfg: HealthConfig) -> tuple[str, Any]:
    th = cfg.thresholds
    rows: list[list[tuple[str, str]]]
    values: dict[str, Any] = {}
    if step == "feeling":
        rows = [[(t(lang, f"health.feel.{f}"), f"ci:feeling:{f}")] for f in Feeling]
    elif step == "flags":
        rows = [[(t(lang, f"health.flag.{flag}"), f"ci:flags:{flag}")] for flag in RED_FLAGS]
        rows.append([(t(lang, "health.flag.none"), "ci:flags:none")])
    elif step == "cough":
        rows = [[(t(lang, "health.yes"), "ci:cough:yes"), (t(lang, "health.no"), "ci:cough:no")]]
    elif step in LLS_ITEMS:
        rows = [
            [(t(lang, f"health.lls.{step}.{level}"), f"ci:{step}:{level}")] for level in range(4)
        ]
    elif step == "functional":
        rows = [
            [(t(lang, f"health.functional.{level}"), f"ci:functional:{level}")]
            for level in range(4)
        ]
    elif step == "spo2":
        rows = _grid([(str(v), f"ci:spo2:{v}") for v in SPO2_CHOICES], 5)
        rows.append([(t(lang, "health.no_oximeter"), "ci:spo2:none")])
        values = {"low": int(th.range_spo2_min), "high": int(th.range_spo2_max)}
    elif step == "hr":
        rows = _grid([(str(v), f"ci:hr:{v}") for v in HR_CHOICES], 5)
        rows.append([(t(lang, "health.not_measured"), "ci:hr:none")])
    elif step == "temp":
        rows = _grid([(v, f"ci:temp:{v}") for v in TEMP_CHOICES], 5)
        rows.append([(t(lang, "health.not_measured"), "ci:temp:none")])
    elif step == "bp":
        rows = [[(t(lang, "health.bp_skip"), "ci:bp:none")]]
    elif step == "bp2":
        rows = [[(t(lang, "health.skip"), "ci:bp2:none")]]
    else:  # note
        rows = [[(t(lang, "health.no_note"), "ci:note:none")]]
        values = {"max": NOTE_MAX}
    return t(lang, f"health.ask.{step}", **values), buttons(rows)


async def ask(update: Update, context: Context, step: str) -> str:
    """Show the question for `step` and return it as the conversation state."""
    lang = _lang(update, context)
    draft = _draft(context)
    draft["step"] = step
    DRAFT.touch(context)
    await persist_now(update, context, NAME, step)
    text, markup = _question(lang, step, config(context))
    if step == "feeling":
        text = t(lang, "health.intro") + "\n\n" + text
    await reply(update, text, reply_markup=markup)
    return step


async def _advance(update: Update, context: Context, step: str) -> str | int:
    following = _next_step(step, _answers(context), config(context))
    if following is None:
        return await _finish(update, context)
    return await ask(update, context, following)


# ---------------------------------------------------------------------------- entry points


@guarded(Action.CHECKIN)
async def start(update: Update, context: Context, person: Person) -> str | int:
    """/checkin, the 📝 button or the reminder's button: begin, or resume an open check-in."""
    await answer(update.callback_query)
    draft = _draft(context)
    if draft.get("step") and not DRAFT.expired(context):
        await reply(update, t(person.language, "health.resume"))
        return await ask(update, context, draft["step"])
    DRAFT.clear(context)
    _draft(context).update({"lang": person.language, "answers": {}})
    return await ask(update, context, "feeling")


async def resume(update: Update, context: Context) -> str | int:
    """/checkin or 📝 while a check-in is open: ask the current question again."""
    await answer(update.callback_query)
    if DRAFT.expired(context):
        return await start(update, context)
    await reply(update, t(_lang(update, context), "health.resume"))
    return await ask(update, context, _draft(context)["step"])


# ---------------------------------------------------------------------------- answers


def _number(text: str) -> str:
    """Full-width digits and punctuation from Chinese keyboards become ASCII; what only looks
    like a digit (² ፩ ١) is not read as one (services.validation.number_text)."""
    return number_text(text).replace("，", ",")


def parse_reading(text: str, low: float, high: float, error: str) -> int:
    cleaned = _number(text).rstrip("%").rstrip().removesuffix("/min").strip()
    value = parse_int(cleaned, max_digits=3)
    if value is None or not low <= value <= high:
        raise CheckinError(error)
    return value


def parse_temperature(text: str, low: float, high: float) -> float:
    cleaned = _number(text).replace(",", ".").rstrip("C").rstrip("℃").rstrip("°").strip()
    if not re.fullmatch(r"[0-9]{2}(\.[0-9])?", cleaned):
        raise CheckinError("health.invalid.temp")
    value = float(cleaned)
    if not low <= value <= high:
        raise CheckinError("health.invalid.temp")
    return value


def parse_bp(text: str, cfg: HealthConfig) -> tuple[int, int]:
    th = cfg.thresholds
    match = re.fullmatch(
        r"([0-9]{2,3})\s*[/\s\-]\s*([0-9]{2,3})", _number(text).removesuffix("mmHg").strip()
    )
    if not match:
        raise CheckinError("health.invalid.bp")
    systolic, diastolic = int(match[1]), int(match[2])
    if not (
        th.range_systolic_min <= systolic <= th.range_systolic_max
        and th.range_diastolic_min <= diastolic <= th.range_diastolic_max
        and systolic > diastolic
    ):
        raise CheckinError("health.invalid.bp")
    return systolic, diastolic


def _store_typed(step: str, text: str, answers: dict[str, Any], cfg: HealthConfig) -> None:
    th = cfg.thresholds
    if step == "spo2":
        answers["spo2"] = parse_reading(
            text, th.range_spo2_min, th.range_spo2_max, "health.invalid.spo2"
        )
        answers["no_oximeter"] = False
    elif step == "hr":
        answers["hr"] = parse_reading(text, th.range_hr_min, th.range_hr_max, "health.invalid.hr")
    elif step == "temp":
        answers["temp"] = parse_temperature(text, th.range_temp_min, th.range_temp_max)
    elif step in {"bp", "bp2"}:
        systolic, diastolic = parse_bp(text, cfg)
        suffix = "2" if step == "bp2" else ""
        answers[f"sys{suffix}"], answers[f"dia{suffix}"] = systolic, diastolic
    elif step == "note":
        note = text.strip()
        if not note:
            raise CheckinError("health.invalid.note_empty")
        if len(note) > NOTE_MAX:
            raise CheckinError("health.invalid.note_long")
        answers["note"] = note
    else:
        raise CheckinError("health.use_buttons")


async def _invalid(update: Update, context: Context, key: str, step: str) -> str:
    th = config(context).thresholds
    values = {
        "health.invalid.spo2": {"low": int(th.range_spo2_min), "high": int(th.range_spo2_max)},
        "health.invalid.hr": {"low": int(th.range_hr_min), "high": int(th.range_hr_max)},
        "health.invalid.temp": {"low": th.range_temp_min, "high": th.range_temp_max},
        "health.invalid.note_long": {"max": NOTE_MAX},
    }.get(key, {})
    await reply(update, t(_lang(update, context), key, **values))
    return await ask(update, context, step)


@once_per_update("checkin", "step")
async def on_text(update: Update, context: Context) -> str | int:
    if DRAFT.expired(context):
        return await on_timeout(update, context)
    step = _draft(context).get("step", "")
    message = update.effective_message
    assert message is not None
    try:
        _store_typed(step, message.text or "", _answers(context), config(context))
    except CheckinError as error:
        return await _invalid(update, context, error.key, step)
    return await _advance(update, context, step)


@once_per_update("checkin", "step")
async def on_button(update: Update, context: Context) -> str | int:
    """ci:<step>:<value> inside the check-in."""
    query = update.callback_query
    assert query is not None and query.data is not None
    lang = _lang(update, context)
    if DRAFT.expired(context):
        await answer(query)
        return await on_timeout(update, context)
    press = pressed(update)
    step, value = press.step, press.word(2)
    current = _draft(context).get("step", "")
    if step != current:
        await answer(query, t(lang, "health.stale"), alert=True)
        return current or ConversationHandler.END
    answers = _answers(context)
    try:
        red_flag = _store_button(step, value, answers)
    except CheckinError:
        user = update.effective_user
        await context.db.run(checkins.record_forged, user.id if user else None, query.data)
        await answer(query, t(lang, "health.stale"), alert=True)
        return current
    await answer(query)
    await show_answer(query, lang)
    if red_flag:
        return await _finish(update, context, red_flag=red_flag)
    return await _advance(update, context, step)


def _store_button(step: str, value: str, answers: dict[str, Any]) -> str | None:
    """Apply a button's value; returns the red flag when one was pressed."""
    if step == "feeling" and value in set(Feeling):
        answers["feeling"] = value
    elif step == "flags" and value in RED_FLAGS:
        answers["flags"] = [value]
        return value
    elif step == "flags" and value == "none":
        answers["flags"] = []
    elif step == "cough" and value in {"yes", "no"}:
        answers["cough"] = value == "yes"
    elif step in (*LLS_ITEMS, "functional") and value in {"0", "1", "2", "3"}:
        answers[step] = int(value)
    elif step == "spo2" and value == "none":
        answers["spo2"], answers["no_oximeter"] = None, True
    elif step == "spo2" and parse_int(value) in SPO2_CHOICES:
        answers["spo2"], answers["no_oximeter"] = parse_int(value), False
    elif step == "hr" and (value == "none" or parse_int(value) in HR_CHOICES):
        answers["hr"] = None if value == "none" else parse_int(value)
    elif step == "temp" and (value == "none" or value in TEMP_CHOICES):
        answers["temp"] = None if value == "none" else float(value)
    elif step == "bp" and value == "none":
        answers["sys"] = answers["dia"] = None
    elif step == "bp2" and value == "none":
        answers["sys2"] = answers["dia2"] = None
    elif step == "note" and value == "none":
        answers["note"] = None
    else:
        raise CheckinError("health.stale")
    return None


async def on_unexpected(update: Update, context: Context) -> str | int:
    """Stickers, photos, voice... while a question waits: say what is expected."""
    step = _draft(context).get("step", "")
    await reply(update, t(_lang(update, context), "health.unexpected"))
    if not step:
        return ConversationHandler.END
    return await ask(update, context, step)


# ---------------------------------------------------------------------------- finishing


def readings_from(answers: dict[str, Any]) -> Readings:
    return Readings(
        red_flags=frozenset(answers.get("flags") or ()),
        cough_or_breathless=answers.get("cough"),
        headache=answers.get("headache"),
        gi=answers.get("gi"),
        fatigue=answers.get("fatigue"),
        dizziness=answers.get("dizziness"),
        functional=answers.get("functional"),
        spo2=answers.get("spo2"),
        heart_rate=answers.get("hr"),
        temperature_c=answers.get("temp"),
        systolic=answers.get("sys"),
        diastolic=answers.get("dia"),
        systolic_2=answers.get("sys2"),
        diastolic_2=answers.get("dia2"),
    )


async def _finish(update: Update, context: Context, red_flag: str | None = None) -> int:
    person = await current_person(update, context)
    denial = check(person, Action.CHECKIN)
    if denial is not None:
        DRAFT.clear(context)
        await refuse(update, context, person, Action.CHECKIN, denial)
        return ConversationHandler.END
    assert person is not None and person.id is not None
    answers = _answers(context)
    cfg = config(context)
    lang = person.language
    try:
        outcome = await context.db.run(
            checkins.submit,
            person.id,
            readings_from(answers),
            config=cfg,
            policy=alert_policy(context),
            feeling=answers.get("feeling"),
            note=answers.get("note"),
            no_oximeter=bool(answers.get("no_oximeter")),
            complete=red_flag is None,
        )
    except CheckinError as error:
        DRAFT.clear(context)
        markup = await menus.main_keyboard_of(context, person, lang)
        await reply(update, t(lang, error.key), reply_markup=markup)
        return ConversationHandler.END
    DRAFT.clear(context)
    texts = result_text(lang, person, outcome, cfg)
    # While an alert of theirs is open (this RED result's, or an SOS), 📍 stays on the
    # keyboard; a RED result asks for the location like an SOS does.
    alert_open = outcome.alert_id is not None or await menus.alert_open(context.db, person)
    if outcome.alert_id is not None:
        texts[-1] += "\n\n" + t(lang, "sos.ask_location_live")
    # one phone screen a message: what is longer goes on in a follow-up
    texts = [page.text for text in texts for page in paginate(text.split("\n"))]
    keyboard = menus.main_keyboard(lang, location=alert_open)
    for index, text in enumerate(texts):
        await reply(update, text, reply_markup=keyboard if index == 0 else None)
    return ConversationHandler.END


def result_text(lang: str, person: Person, outcome: Outcome, cfg: HealthConfig) -> list[str]:
    """The result, one phone screen a message: GREEN in one; AMBER and RED first what it
    means and what to do now (and that the duty officer knows), then the figures."""
    assessment = outcome.assessment
    checkin = outcome.checkin
    parts: list[str] = []
    reasons = checkins.reasons_text(lang, assessment.reason_keys)
    first: list[str] = []  # for AMBER and RED, the message to act on
    if assessment.tier == Tier.RED:
        first.append(t(lang, "health.result.red", reasons=Html(reasons)))
        first.append(t(lang, "health.advice.red"))
        told = outcome.alert_id is not None or outcome.officers_told > 0
        first.append(t(lang, "health.result.red_told" if told else "health.result.red_nobody"))
        if lines_on_phone("\n\n".join(first), html=True) > SCREEN:
            # many reasons: what to do now and who was told stay first, why comes next
            first[0] = t(lang, "health.result.red", reasons="").strip()
            parts.append(t(lang, "health.result.why", reasons=Html(reasons)))
    elif assessment.tier == Tier.AMBER:
        when = summary.format_local(outcome.recheck_at, cfg.zone) if outcome.recheck_at else "-"
        first.append(t(lang, "health.result.amber", reasons=Html(reasons)))
        first.append(t(lang, "health.advice.amber"))
        parts.append(t(lang, "health.result.recheck", when=when))
        if outcome.officers_told:
            parts.append(t(lang, "health.result.amber_told"))
    else:
        parts.append(t(lang, "health.result.green"))
        if reasons:
            parts.append(t(lang, "health.result.notes", reasons=Html(reasons)))
    if assessment.ams:
        parts.append(t(lang, "health.result.ams"))
    if checkin.spo2 is not None and assessment.expected_spo2 is not None:
        if checkin.altitude_m is not None:
            parts.append(
                t(
                    lang,
                    "health.result.spo2_expected",
                    spo2=checkin.spo2,
                    expected=assessment.expected_spo2,
                    altitude=checkin.altitude_m,
                )
            )
    parts.append(t(lang, "health.disclaimer"))
    if not first:
        return ["\n\n".join(parts)]
    return ["\n\n".join(first), "\n".join(parts)]


async def _ended(update: Update, context: Context, key: str) -> int:
    """The check-in ends without a result (cancelled, timed out): the main keyboard back,
    with 📍 while an alert of theirs is open."""
    lang = _lang(update, context)
    DRAFT.clear(context)
    person = await current_person(update, context)
    markup = await menus.main_keyboard_of(context, person, lang)
    await reply(update, t(lang, key), reply_markup=markup)
    return ConversationHandler.END


async def cancel(update: Update, context: Context) -> int:
    return await _ended(update, context, "health.cancelled")


async def on_timeout(update: Update, context: Context) -> int:
    return await _ended(update, context, "health.expired")


# ---------------------------------------------------------------------------- history, trend


HISTORY_PAGE = 3  # check-ins a page of /history: one phone screen with their reasons


async def _history_page(
    context: Context, person: Person, number: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """Page `number` of /history, newest first, with ◀ n/m and More ▶ (hs:<page>) under it; the
    database counts and reads only the page."""
    assert person.id is not None
    lang = person.language
    db = context.db
    page = Page(number, HISTORY_PAGE, await db.run(checkins.history_count, person.id)).within()
    if not page.total:
        return t(lang, "health.history.empty"), None
    rows = await db.run(checkins.history, person.id, HISTORY_PAGE, page.offset)
    zone = config(context).zone
    lines = [summary.history_line(lang, row, zone) for row in rows]
    # The lines hold only catalog texts (escaped) and numbers.
    text = t(lang, "health.history.title", count=page.total) + "\n" + "\n".join(lines)
    nav = page_buttons(lang, page.number, page.pages, lambda n: f"hs:{n}")
    return text, buttons([nav]) if nav else None


@guarded(Action.CHECKIN)
async def history_command(update: Update, context: Context, person: Person) -> None:
    """/history: the newest check-ins, a page at a time; then, in a message of its own,
    what the abbreviations mean and that this is not a diagnosis."""
    lang = person.language
    text, markup = await _history_page(context, person, 0)
    await reply(update, text, reply_markup=markup)
    if text != t(lang, "health.history.empty"):
        legend = t(lang, "health.history.legend")
        await reply(update, f"{legend}\n{t(lang, 'health.disclaimer')}")


@guarded(Action.CHECKIN)
async def on_history_page(update: Update, context: Context, person: Person) -> None:
    """hs:<page>: another page of /history, edited in place."""
    await turn(update, context, lambda number: _history_page(context, person, number))


@guarded(Action.CHECKIN)
async def trend_command(update: Update, context: Context, person: Person) -> None:
    from services.health import charts

    assert person.id is not None
    lang = person.language
    cfg = config(context)
    db = context.db
    start = clock.now() - timedelta(days=30)
    points = await db.run(summary.since, person.id, start)
    if not points:
        await reply(update, t(lang, "health.trend.empty"))
        return
    png = await db.run(charts.render_for, person, cfg)
    message = update.effective_message
    assert message is not None
    await message.chat.send_photo(
        InputFile(png, filename="trend.png"),
        caption=t(lang, "health.trend.caption", count=len(points)),
    )


# ---------------------------------------------------------------------------- reminders


def _reminder_status(lang: str, person: Person, pref: Any, cfg: HealthConfig) -> str:
    if summary.is_low_altitude(person):
        return t(lang, "health.reminders.low_altitude")
    at = reminders.reminder_time(pref, cfg).strftime("%H:%M")
    second = cfg.second_time.strftime("%H:%M")
    suggested = examples.values(cfg.zone)  # the /reminders pause example dates
    text = t(lang, "health.reminders.status", time=at, second=second, **suggested)
    if pref is not None and pref.paused_from and pref.paused_until:
        text += "\n" + t(
            lang,
            "health.reminders.paused",
            start=pref.paused_from.isoformat(),
            end=pref.paused_until.isoformat(),
        )
    return text


def _reminder_buttons(lang: str, pref: Any) -> InlineKeyboardMarkup:
    rows = _grid([(v, f"rm:t:{v.replace(':', '')}") for v in REMINDER_CHOICES], 3)
    rows.append(
        [(t(lang, "health.reminders.pause_days", count=d), f"rm:p:{d}") for d in PAUSE_CHOICES]
    )
    if pref is not None and pref.paused_until:
        rows.append([(t(lang, "health.reminders.resume"), "rm:r")])
    return buttons(rows)


def local_today(context: Context) -> date:
    return checkins.local_date(clock.now(), config(context).zone)


@guarded(Action.CHECKIN)
async def reminders_command(update: Update, context: Context, person: Person) -> None:
    """/reminders, /reminders 08:30, /reminders pause 2026-12-01 2026-12-10, /reminders resume."""
    assert person.id is not None
    lang = person.language
    db = context.db
    cfg = config(context)
    args = list(context.args or [])
    try:
        if args and args[0].lower() in {"pause", "暂停"}:
            dates = reports.parse_range(args[1:])
            if dates is None or dates[0] < local_today(context):
                raise CheckinError("health.reminders.bad_range")
            await db.run(checkins.pause, person, dates[0], dates[1])
        elif args and args[0].lower() in {"resume", "恢复"}:
            await db.run(checkins.pause, person, local_today(context), None)
        elif args:
            match = re.fullmatch(r"([01]?[0-9]|2[0-3])[:：]([0-5][0-9])", _number(args[0]))
            if not match:
                raise CheckinError("health.reminders.bad_time")
            await db.run(checkins.set_reminder_time, person, time(int(match[1]), int(match[2])))
    except CheckinError as error:  # health.reminders.bad_range suggests dates
        await reply(update, t(lang, error.key, **examples.values(cfg.zone)))
    pref = await db.run(checkins.preference, person.id)
    markup = None if summary.is_low_altitude(person) else _reminder_buttons(lang, pref)
    await reply(update, _reminder_status(lang, person, pref, cfg), reply_markup=markup)


@guarded(Action.CHECKIN)
async def on_reminder_button(update: Update, context: Context, person: Person) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and person.id is not None
    lang = person.language
    db = context.db
    press = pressed(update)  # rm:t:<hhmm>, rm:p:<days>, rm:r
    step, value = press.step, press.word(2)
    try:
        if step == "t" and f"{value[:2]}:{value[2:]}" in REMINDER_CHOICES:
            await db.run(checkins.set_reminder_time, person, time(int(value[:2]), int(value[2:])))
        elif step == "p" and value in {str(d) for d in PAUSE_CHOICES}:
            today = local_today(context)
            end = today + timedelta(days=int(value) - 1)
            await db.run(checkins.pause, person, today, end)
        elif press.parts == ("rm", "r"):
            await db.run(checkins.pause, person, local_today(context), None)
        else:
            raise CheckinError("health.stale")
    except CheckinError as error:  # health.reminders.bad_range suggests dates
        await answer(
            query, t(lang, error.key, **examples.values(context.settings.zone)), alert=True
        )
        return
    await answer(query, t(lang, "health.reminders.saved"))
    pref = await db.run(checkins.preference, person.id)
    status = _reminder_status(lang, person, pref, config(context))
    await edit_or_reply(update, status, _reminder_buttons(lang, pref))


# ---------------------------------------------------------------------------- assembly


def _checkin_button() -> filters.BaseFilter:
    return filters.Text(sorted(menus.main_button_texts("main.checkin")))


def build(form_timeout: int) -> list[BaseHandler[Any, Any, Any]]:
    return [
        build_conversation(form_timeout),
        CommandHandler("history", history_command),
        CallbackQueryHandler(on_history_page, pattern=r"^hs:"),
        CommandHandler("trend", trend_command),
        CommandHandler("reminders", reminders_command),
        CallbackQueryHandler(on_reminder_button, pattern=r"^rm:"),
    ]


def build_conversation(form_timeout: int) -> ConversationHandler[Any]:
    text = filters.TEXT & ~filters.COMMAND
    again = MessageHandler(_checkin_button(), resume)
    step_handlers: list[BaseHandler[Any, Any, Any]] = [
        again,
        CallbackQueryHandler(on_button, pattern=r"^ci:(?!start$)"),
        CallbackQueryHandler(resume, pattern=r"^ci:start$"),
        MessageHandler(text, on_text),
        MessageHandler(~filters.COMMAND, on_unexpected),
    ]
    return form_conversation(
        NAME,
        entry_points=[
            CommandHandler("checkin", start),
            MessageHandler(_checkin_button(), start),
            CallbackQueryHandler(start, pattern=r"^ci:start$"),
        ],
        states={step: step_handlers for step in STEPS},
        fallbacks=[CommandHandler("cancel", cancel), CommandHandler("checkin", resume)],
        timeout=form_timeout,
        on_timeout=on_timeout,
        allow_reentry=False,
    )
