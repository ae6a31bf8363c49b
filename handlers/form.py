"""The profile form: registration (/start) and editing one's profile (/me -> Edit).

One ConversationHandler serves both, so the steps (prompt, buttons, validation) are
written once. The form lives in user_data["form"], which the database persistence
writes after every update: a restart mid-form loses nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from telegram import (
    ReplyKeyboardRemove,
    Update,
)
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from handlers import approvals, menus
from handlers.callbacks import pressed
from handlers.common import (
    Context,
    answer,
    buttons,
    current_caller,
    current_person,
    language_of,
    reply,
    show_answer,
)
from handlers.conversation import FormDraft, form_conversation, once_per_update, persist_now
from models import Person, Role, Status
from services import examples, people, roster_import
from services.i18n import LANGUAGES, t
from services.people import CONSENT_VERSION, Draft, RegistrationError
from services.postings import load_postings
from services.validation import (
    InvalidInput,
    parse_altitude,
    parse_date,
    parse_int,
    parse_name,
    parse_phone,
    parse_unit,
)

NAME = "profile_form"
CONFIRM = "confirm"
REGISTER_FIELDS = (
    "language",
    "consent",
    "real_name",
    "phone",
    "home_unit",
    "prefecture",
    "county",
    "altitude",
    "assignment_start",
    "assignment_end",
    "contact_name",
    "contact_phone",
)
CONTACT_FIELDS = ("language", "consent", "real_name", "phone")  # a cadre's emergency contact
EDIT_GROUPS: dict[str, tuple[str, ...]] = {
    "name": ("real_name",),
    "phone": ("phone",),
    "unit": ("home_unit",),
    "posting": ("prefecture", "county", "altitude"),
    "dates": ("assignment_start", "assignment_end"),
    "contact": ("contact_name", "contact_phone"),
}
TEXT_PARSERS = {
    "real_name": parse_name,
    "home_unit": parse_unit,
    "phone": parse_phone,
    "contact_name": parse_name,
    "contact_phone": parse_phone,
    "altitude": parse_altitude,
}
ALTITUDE_BANDS = (  # (label key, representative altitude in metres)
    ("alt.band.low", 2000),
    ("alt.band.mid", 3000),
    ("alt.band.high", 4000),
    ("alt.band.extreme", 4700),
)
LANGUAGE_LABELS = {"zh-Hans": "中文", "en": "English"}


# ---------------------------------------------------------------------------- form state


# user_data["form"]; abandoned longer than CADRE_FORM_TIMEOUT, or cleared (no "mode"): expired
# (the timeout may have passed while the bot was stopped)
FORM = FormDraft("form", alive="mode")


def _form(context: Context) -> dict[str, Any]:
    return FORM.of(context)


def _draft(context: Context) -> Draft:
    return Draft.from_dict(_form(context).get("draft"))


def _save_draft(context: Context, draft: Draft) -> None:
    form = _form(context)
    form["draft"] = draft.to_dict()
    FORM.touch(context)


def _lang(update: Update, context: Context) -> str:
    return _draft(context).language or language_of(update, context)


# ---------------------------------------------------------------------------- prompts


async def ask(update: Update, context: Context, field: str) -> str:
    """Show the prompt for `field` and return it as the conversation state."""
    if field == CONFIRM:  # asked again after a stray message: the summary and its buttons
        return await _show_confirmation(update, context)
    lang = _lang(update, context)
    draft = _draft(context)
    markup: Any = await _plain_keyboard(update, context, lang)
    key = f"form.ask.{field}"
    values: dict[str, Any] = {}
    postings = load_postings()
    if field == "language":
        markup = buttons([[(LANGUAGE_LABELS[code], f"f:lang:{code}") for code in LANGUAGES]])
    elif field == "consent":
        markup = buttons(
            [
                [(t(lang, "form.consent.yes"), "f:consent:yes")],
                [(t(lang, "form.consent.read_full"), "f:consent:full")],
                [(t(lang, "form.consent.no"), "f:consent:no")],
            ]
        )
        values["version"] = CONSENT_VERSION
        if _form(context).get("contact"):
            key = "form.ask.consent_contact"
    elif field == "phone":
        markup = menus.share_phone_keyboard(lang)
    elif field == "prefecture":
        markup = buttons(
            [[(postings.name(p.code, lang), f"f:pref:{p.code}")] for p in postings.prefectures()]
        )
    elif field == "county":
        counties = postings.counties(draft.prefecture or "")
        rows = [
            [(postings.name(c.code, lang), f"f:cty:{c.code}") for c in counties[i : i + 2]]
            for i in range(0, len(counties), 2)
        ]
        rows.append([(t(lang, "form.back"), "f:cty:back")])
        markup = buttons(rows)
        values["prefecture"] = postings.name(draft.prefecture or "", lang)
    elif field == "altitude":
        county = postings.county(draft.county or "")
        rows = []
        if county and county.seat_elevation_m:
            key = "form.ask.altitude_seat"
            values["seat"] = postings.seat_name(county.code, lang)
            values["metres"] = county.seat_elevation_m
            rows.append([(t(lang, "form.alt.at_seat"), "f:alt:seat")])
        rows += [[(t(lang, label), f"f:alt:{metres}")] for label, metres in ALTITUDE_BANDS]
        markup = buttons(rows)
    elif field == "assignment_start":
        markup = buttons([[(t(lang, "form.today"), "f:start:today")]])
        values = examples.values(context.settings.zone)
    elif field == "assignment_end":
        values = examples.values(context.settings.zone)
        markup = buttons(
            [
                [(t(lang, f"form.end.{years}y"), f"f:end:{years}") for years in (1, 2, 3)],
                [(t(lang, "form.end.unknown"), "f:end:none")],
            ]
        )
    _form(context)["current"] = field
    FORM.touch(context)
    await persist_now(update, context, NAME, field)
    await reply(update, t(lang, key, **values), reply_markup=markup)
    return field


async def _plain_keyboard(update: Update, context: Context, lang: str) -> Any:
    """An active person editing keeps SOS (and the check-in) at hand; registration shows no
    keyboard, except to someone whose call for help is still open (a guest or a pending
    registrant who pressed 🆘): they keep 🆘 and «📍 Send my location» until it is closed."""
    if _form(context).get("mode") == "edit":
        return await menus.main_keyboard_of(context, await current_person(update, context), lang)
    if await menus.alert_open(context.db, await current_caller(update, context)):
        return menus.main_keyboard(lang, location=True, checkin=False)
    return ReplyKeyboardRemove()


async def advance(update: Update, context: Context) -> str | int:
    """Ask the next field in the queue; at the end, confirm (registration) or save (edit)."""
    form = _form(context)
    queue: list[str] = form.get("queue", [])
    postings = load_postings()
    while queue:
        field = queue.pop(0)
        form["queue"] = queue
        if field == "altitude":
            county = postings.county(_draft(context).county or "")
            if county is not None and county.low_altitude:
                draft = _draft(context)
                draft.posting_altitude_m, draft.altitude_source = None, None
                _save_draft(context, draft)
                continue
        return await ask(update, context, field)
    if form.get("mode") == "edit":
        return await _save_edit(update, context)
    return await _show_confirmation(update, context)


# ---------------------------------------------------------------------------- entry points


async def start(update: Update, context: Context) -> str | int:
    """/start: begin (or resume) registration; `/start <code>` carries an invitation."""
    person = await current_person(update, context)
    if person is not None:
        return await _already_known(update, context, person)
    form = _form(context)
    if form.get("mode") == "register" and form.get("current") and not FORM.expired(context):
        lang = _lang(update, context)
        await reply(update, t(lang, "form.resume"))
        return await ask(update, context, form["current"])
    FORM.clear(context)
    draft = Draft(language=None)
    code = context.args[0] if context.args else None
    fields = REGISTER_FIELDS
    form = _form(context)
    if code:
        problem = await context.db.run(people.invitation_problem, code[:64])
        if problem:
            await reply(update, t(language_of(update, context), problem))
        else:
            draft.invitation = code
            if await context.db.run(people.invitation_role, code) == Role.CONTACT:
                fields, form["contact"] = CONTACT_FIELDS, True
    # A personal link from an imported roster: the roster fills the draft, as a shared
    # phone number on the roster does (_match_roster).
    expected = None
    if draft.invitation and not form.get("contact"):
        expected = await context.db.run(roster_import.expected_by_invitation, draft.invitation)
    if expected is not None:
        filled = roster_import.prefill(draft, expected)
        fields = tuple(f for f in fields if f not in filled)
        form["expected"] = expected.id
    form.update({"mode": "register", "queue": list(fields)})
    _save_draft(context, draft)
    await reply(update, t(language_of(update, context), "form.welcome"))
    if expected is not None:
        await reply(update, t(language_of(update, context), "import.matched"))
    return await advance(update, context)


async def _already_known(update: Update, context: Context, person: Person) -> int:
    lang = person.language
    if person.status == Status.ACTIVE:
        await menus.set_person_menu(context.bot, person, context.settings.webapp_url)
        markup = await menus.main_keyboard_of(context, person, lang)
        await reply(update, t(lang, "form.already_active"), reply_markup=markup)
    else:
        await reply(update, t(lang, f"deny.{person.status}"))
    return ConversationHandler.END


async def begin_edit(update: Update, context: Context) -> str | int:
    """A press on /me's Edit buttons (me:edit:<group>)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    person = await current_person(update, context)
    group = pressed(update).word(2)  # me:edit:<group>
    if person is None or person.status != Status.ACTIVE or group not in EDIT_GROUPS:
        await answer(query, t(language_of(update, context, person), "form.stale"), alert=True)
        return ConversationHandler.END
    await answer(query)
    FORM.clear(context)
    draft = Draft(language=person.language, prefecture=person.prefecture, county=person.county)
    form = _form(context)
    form.update({"mode": "edit", "group": group, "queue": list(EDIT_GROUPS[group])})
    _save_draft(context, draft)
    return await advance(update, context)


# ---------------------------------------------------------------------------- receivers


async def _invalid(update: Update, context: Context, error: InvalidInput, field: str) -> str:
    suggested = examples.values(context.settings.zone)  # invalid.date suggests a date
    await reply(update, t(_lang(update, context), error.key, **suggested, **error.values))
    return await ask(update, context, field)


@once_per_update("form", "current")
async def on_text(update: Update, context: Context) -> str | int:
    """Typed answer for the current field."""
    if FORM.expired(context):
        return await on_timeout(update, context)
    form = _form(context)
    field = form.get("current", "")
    message = update.effective_message
    assert message is not None
    text = message.text or ""
    draft = _draft(context)
    try:
        if field in {"assignment_start", "assignment_end"}:
            not_before = (
                date.fromisoformat(draft.assignment_start)
                if field == "assignment_end" and draft.assignment_start
                else None
            )
            setattr(draft, field, parse_date(text, not_before=not_before).isoformat())
        elif field == "altitude":
            draft.posting_altitude_m = parse_altitude(text)
            draft.altitude_source = "self"
        elif field in TEXT_PARSERS:
            setattr(draft, field, TEXT_PARSERS[field](text))
        else:
            raise InvalidInput("form.use_buttons")
    except InvalidInput as error:
        return await _invalid(update, context, error, field)
    _save_draft(context, draft)
    return await advance(update, context)


@once_per_update("form", "current")
async def on_contact(update: Update, context: Context) -> str | int:
    """A shared contact: one's own number (phone step) or the emergency contact."""
    if FORM.expired(context):
        return await on_timeout(update, context)
    field = _form(context).get("current", "")
    message = update.effective_message
    user = update.effective_user
    assert message is not None and message.contact is not None and user is not None
    contact = message.contact
    draft = _draft(context)
    try:
        # Telegram sends a shared contact's number in international form, often without "+".
        phone = parse_phone("+" + contact.phone_number.lstrip("+"))
        if field == "phone":
            if contact.user_id != user.id:
                raise InvalidInput("form.own_phone_only")
            draft.phone = phone
            await _match_roster(update, context, draft)
        elif field in {"contact_name", "contact_phone"}:
            if contact.user_id == user.id:
                raise InvalidInput("form.contact_not_self")
            name = " ".join(filter(None, [contact.first_name, contact.last_name]))
            draft.contact_name = parse_name(name) if field == "contact_name" else draft.contact_name
            draft.contact_phone = phone
            queue = _form(context).get("queue", [])
            if "contact_phone" in queue:
                queue.remove("contact_phone")
        else:
            raise InvalidInput("form.use_buttons")
    except InvalidInput as error:
        return await _invalid(update, context, error, field)
    _save_draft(context, draft)
    return await advance(update, context)


async def _match_roster(update: Update, context: Context, draft: Draft) -> None:
    """A shared own number that an imported roster expects: the roster fills the draft,
    and its fields are not asked (the person checks them in the summary)."""
    form = _form(context)
    if form.get("mode") != "register" or form.get("contact") or draft.invitation:
        return
    found = await context.db.run(roster_import.expected_by_phone, draft.phone or "")
    if found is None:
        form.pop("expected", None)
        return
    filled = roster_import.prefill(draft, found)
    form["queue"] = [f for f in form.get("queue", []) if f not in filled]
    form["expected"] = found.id
    await reply(update, t(_lang(update, context), "import.matched"))


@once_per_update("form", "current")
async def on_button(update: Update, context: Context) -> str | int:
    """Button presses inside the form: f:<what>:<value>."""
    query = update.callback_query
    assert query is not None and query.data is not None
    if FORM.expired(context):
        await answer(query)
        return await on_timeout(update, context)
    press = pressed(update)
    what, value = press.step, press.word(2)
    field = _form(context).get("current", "")
    expected = {
        "lang": "language",
        "consent": "consent",
        "pref": "prefecture",
        "cty": "county",
        "alt": "altitude",
        "start": "assignment_start",
        "end": "assignment_end",
        "ok": CONFIRM,
    }
    if expected.get(what) != field:
        await answer(query, t(_lang(update, context), "form.stale"), alert=True)
        return field or ConversationHandler.END
    await answer(query)
    if what == "consent" and value == "full":  # the whole text, below the summary
        contact = "form.consent_contact.full" if _form(context).get("contact") else None
        full = t(_lang(update, context), contact or "form.consent.full", version=CONSENT_VERSION)
        await reply(update, full)
        return field
    await show_answer(query, _lang(update, context))
    draft = _draft(context)
    postings = load_postings()
    if what == "lang":
        if value not in LANGUAGES:
            return await ask(update, context, field)
        draft.language = value
        context.user_data["language"] = value  # type: ignore[index]
    elif what == "consent":
        if value != "yes":
            await reply(update, t(_lang(update, context), "form.consent.declined"))
            FORM.clear(context)
            return ConversationHandler.END
        draft.consent_version = CONSENT_VERSION
    elif what == "pref":
        if postings.prefecture(value) is None:
            return await _invalid(update, context, InvalidInput("invalid.county"), field)
        draft.prefecture, draft.county = value, None
    elif what == "cty":
        if value == "back":
            _form(context)["queue"].insert(0, "county")
            _save_draft(context, draft)
            return await ask(update, context, "prefecture")
        county = postings.county(value)
        if county is None or county.prefecture_code != draft.prefecture:
            return await _invalid(update, context, InvalidInput("invalid.county"), field)
        draft.county = value
    elif what == "alt":
        county = postings.county(draft.county or "")
        if value == "seat" and county and county.seat_elevation_m:
            draft.posting_altitude_m, draft.altitude_source = county.seat_elevation_m, "county"
        elif (metres := parse_int(value)) in {m for _, m in ALTITUDE_BANDS}:
            draft.posting_altitude_m, draft.altitude_source = metres, "self"
        else:
            return await ask(update, context, field)
    elif what == "start":
        draft.assignment_start = people.local_today(context.settings.zone).isoformat()
    elif what == "end":
        if value == "none":
            draft.assignment_end = None
        elif value in {"1", "2", "3"}:
            start_day = (
                date.fromisoformat(draft.assignment_start)
                if draft.assignment_start
                else people.local_today(context.settings.zone)
            )
            draft.assignment_end = _add_years(start_day, int(value)).isoformat()
        else:
            return await ask(update, context, field)
    elif what == "ok":
        return await _confirm(update, context, value)
    _save_draft(context, draft)
    return await advance(update, context)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


async def on_unexpected(update: Update, context: Context) -> str | int:
    """Stickers, photos, voice... while a question waits: say what is expected."""
    field = _form(context).get("current", "")
    await reply(update, t(_lang(update, context), "form.unexpected"))
    if not field:
        return ConversationHandler.END
    return await ask(update, context, field)


# ---------------------------------------------------------------------------- finishing


def summary(lang: str, draft: Draft) -> str:
    postings = load_postings()
    posting = ""
    if draft.county:
        posting = (
            f"{postings.name(draft.prefecture or '', lang)} · {postings.name(draft.county, lang)}"
        )
    altitude = (
        t(lang, "form.metres", metres=draft.posting_altitude_m)
        if draft.posting_altitude_m is not None
        else t(lang, "form.not_applicable")
    )
    return t(
        lang,
        "form.summary",
        real_name=draft.real_name or "-",
        phone=draft.phone or "-",
        home_unit=draft.home_unit or "-",
        posting=posting or "-",
        altitude=altitude,
        start=draft.assignment_start or "-",
        end=draft.assignment_end or t(lang, "form.end.unknown"),
        contact=f"{draft.contact_name or '-'} {draft.contact_phone or ''}".strip(),
    )


async def _show_confirmation(update: Update, context: Context) -> str:
    lang = _lang(update, context)
    markup = buttons(
        [[(t(lang, "form.submit"), "f:ok:submit")], [(t(lang, "form.restart"), "f:ok:restart")]]
    )
    _form(context)["current"] = CONFIRM
    await persist_now(update, context, NAME, CONFIRM)
    draft = _draft(context)
    if _form(context).get("contact"):
        text = t(lang, "form.summary_contact", real_name=draft.real_name, phone=draft.phone)
    else:
        text = summary(lang, draft)
    await reply(update, text, reply_markup=markup)
    return CONFIRM


async def _confirm(update: Update, context: Context, value: str) -> str | int:
    lang = _lang(update, context)
    if value == "restart":
        draft = _draft(context)
        fresh = Draft(
            language=draft.language,
            consent_version=draft.consent_version,
            invitation=draft.invitation,
        )
        fields = CONTACT_FIELDS if _form(context).get("contact") else REGISTER_FIELDS
        _form(context)["queue"] = list(fields[2:])
        _save_draft(context, fresh)
        return await advance(update, context)
    user = update.effective_user
    assert user is not None
    expected = _form(context).get("expected")  # on the roster (services/roster_import.py)
    try:
        if expected:
            person = await context.db.run(
                roster_import.claim, user.id, user.full_name, _draft(context), expected
            )
        else:
            person = await context.db.run(
                people.submit_registration, user.id, user.full_name, _draft(context)
            )
    except RegistrationError as error:
        await reply(update, t(lang, error.key))
        FORM.clear(context)
        return ConversationHandler.END
    FORM.clear(context)
    context.user_data.pop("language", None)  # type: ignore[union-attr]
    if person.status == Status.ACTIVE:
        await menus.set_person_menu(context.bot, person, context.settings.webapp_url)
        await reply(update, t(lang, "form.welcome_active"), reply_markup=menus.main_keyboard(lang))
    else:
        await reply(update, t(lang, "form.submitted"))
        await approvals.notify_admins(context, person)
    return ConversationHandler.END


async def _save_edit(update: Update, context: Context) -> int:
    user = update.effective_user
    assert user is not None
    group = _form(context).get("group", "")
    draft = _draft(context)
    lang = _lang(update, context)
    db = context.db
    try:
        if group == "contact":
            await db.run(
                people.replace_contact, user.id, draft.contact_name or "", draft.contact_phone or ""
            )
        else:
            changes = _changes(group, draft)
            await db.run(people.update_profile, user.id, **changes)
    except RegistrationError as error:
        await reply(update, t(lang, error.key))
        FORM.clear(context)
        return ConversationHandler.END
    FORM.clear(context)
    markup = await menus.main_keyboard_of(context, await current_person(update, context), lang)
    await reply(update, t(lang, "form.saved"), reply_markup=markup)
    return ConversationHandler.END


def _changes(group: str, draft: Draft) -> dict[str, Any]:
    if group == "posting":
        return {
            "prefecture": draft.prefecture,
            "county": draft.county,
            "posting_altitude_m": draft.posting_altitude_m,
            "altitude_source": draft.altitude_source,
        }
    if group == "dates":
        return {
            "assignment_start": date.fromisoformat(draft.assignment_start)
            if draft.assignment_start
            else None,
            "assignment_end": date.fromisoformat(draft.assignment_end)
            if draft.assignment_end
            else None,
        }
    field = EDIT_GROUPS[group][0]
    return {field: getattr(draft, field)}


async def cancel(update: Update, context: Context) -> int:
    lang = _lang(update, context)
    mode = _form(context).get("mode")
    markup = await _plain_keyboard(update, context, lang)
    key = "form.cancelled_edit" if mode == "edit" else "form.cancelled"
    FORM.clear(context)
    await reply(update, t(lang, key), reply_markup=markup)
    return ConversationHandler.END


async def on_timeout(update: Update, context: Context) -> int:
    lang = _lang(update, context)
    markup = await _plain_keyboard(update, context, lang)
    FORM.clear(context)
    await reply(update, t(lang, "form.expired"), reply_markup=markup)
    return ConversationHandler.END


def build(form_timeout: int) -> BaseHandler[Any, Any, Any]:
    text = filters.TEXT & ~filters.COMMAND
    button = CallbackQueryHandler(on_button, pattern=r"^f:")
    states: dict[object, list[BaseHandler[Any, Any, Any]]] = {
        field: [
            MessageHandler(text, on_text),
            MessageHandler(filters.CONTACT, on_contact),
            button,
            MessageHandler(~filters.COMMAND, on_unexpected),
        ]
        for field in (*REGISTER_FIELDS, CONFIRM)
    }
    return form_conversation(
        NAME,
        entry_points=[
            CommandHandler("start", start),
            CallbackQueryHandler(begin_edit, pattern=r"^me:edit:"),
        ],
        states=states,
        fallbacks=[CommandHandler("cancel", cancel), CommandHandler("start", start)],
        timeout=form_timeout,
        on_timeout=on_timeout,
        allow_reentry=False,
    )
