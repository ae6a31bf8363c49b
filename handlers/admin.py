"""Admin commands: /people (list, filter, act on a person) and /invite.

Everything here goes through `guarded`: the commands, every button (``ppl:`` and ``inv:``)
and the steps of the altitude question. Callback data (all well under 64 bytes):

    ppl:l:<status>:<prefecture|->:<page>   the list, filtered (status: all/pending/...)
    ppl:nop                               the "page x/y" indicator of lists sent before the
                                          pages turned with handlers.paging.page_buttons
    ppl:back                              back from a card to the last list shown
    ppl:c:<id>                            a person's card
    ppl:ok:<id> / ppl:no:<id> / ppl:noy:<id>  approve / reject (asks) / reject, confirmed
    ppl:r:<id>                            choose a new role
    ppl:role:<id>:<role>                  set the role
    ppl:alt:<id>                          ask for the posting altitude (a short conversation)
    ppl:da:<id>                           the duty-area toggles
    ppl:dt:<id>:<prefecture>              toggle one duty area
    ppl:sus:<id> / ppl:susy:<id>          suspend: ask (they keep 🆘) / confirmed
    ppl:act:<id>                          reinstate
    inv:r:<role>                          invitation: role chosen
    inv:e:<role>:<days>                   invitation: expiry chosen (0 = never)
    inv:u:<role>:<days>:<uses>            invitation: uses chosen (0 = unlimited) -> created
    inv:x                                 invitation: cancelled
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from telegram import (
    InlineKeyboardMarkup,
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
from handlers.callbacks import Press, pressed
from handlers.common import (
    Context,
    answer,
    buttons,
    current_person,
    edit_or_reply,
    guarded,
    language_of,
    link_buttons,
    plain_text,
    reply,
)
from handlers.conversation import FormDraft, form_conversation
from handlers.paging import page_buttons
from models import Person, Priority, Role, Status
from services import clock, outbox, people
from services.i18n import t
from services.people import PeoplePage, RegistrationError, name_of
from services.permissions import Action
from services.postings import load_postings
from services.validation import ALTITUDE_RANGE, InvalidInput, parse_altitude, parse_int

ALTITUDE_CONVERSATION = "admin_altitude"
ALTITUDE = "altitude"
ALTITUDE_TIMEOUT = 600  # seconds an unanswered altitude question stays open
# user_data["admin_altitude"]: the person whose altitude is being asked
ALTITUDE_DRAFT = FormDraft("admin_altitude", alive="person", timeout=ALTITUDE_TIMEOUT)
_VIEW_KEY = "people_view"  # user_data: the last list shown (status, prefecture, page)

STATUS_FILTERS = ("pending", "active", "suspended", "all")
_LIST_STATUSES = {*STATUS_FILTERS, "rejected"}
STATUS_ICONS = {
    Status.PENDING: "🕓",
    Status.ACTIVE: "✅",
    Status.SUSPENDED: "⛔",
    Status.REJECTED: "❌",
}
ASSIGNABLE_ROLES = (Role.CADRE, Role.DUTY_OFFICER, Role.ADMIN)  # by /people and /invite
_ROLE_CODES = {role.value for role in ASSIGNABLE_ROLES}
INVITE_DAYS = (1, 7, 30, 0)  # 0: never expires
INVITE_USES = (1, 5, 20, 0)  # 0: unlimited

Callback = Callable[[Update, Context], Awaitable[Any]]


# ---------------------------------------------------------------------------- helpers


async def _toast(update: Update, text: str, alert: bool = False) -> None:
    await answer(update.callback_query, text, alert=alert)


def _name(person: Person) -> str:
    return name_of(person, str(person.telegram_id))


def _posting(lang: str, person: Person) -> str:
    postings = load_postings()
    if person.county and postings.county(person.county):
        prefecture = postings.name(person.prefecture or "", lang, short=True)
        return f"{prefecture} · {postings.name(person.county, lang)}"
    if person.prefecture and postings.prefecture(person.prefecture):
        return postings.name(person.prefecture, lang, short=True)
    return "-"


def _altitude(lang: str, person: Person) -> str:
    if person.posting_altitude_m is None:
        return t(lang, "form.not_applicable")
    metres = t(lang, "form.metres", metres=person.posting_altitude_m)
    if not person.altitude_source:
        return metres
    source = t(lang, f"people.alt_source.{person.altitude_source}")
    return t(lang, "people.altitude_with_source", altitude=metres, source=source)


async def _tell(context: Context, person: Person, key: str, **values: Any) -> None:
    await tell(context.db, person, key, **values)


async def tell(db: Any, person: Person, key: str, **values: Any) -> None:
    """A message to the person concerned, in their language, through the outbox (they may
    have blocked the bot; the delivery engine records that; enqueue wakes it). The board's
    people view tells them the same way.

    An active person gets the main keyboard (SOS, check-in) with it; a suspended person
    keeps only 🆘 (suspension never takes the call for help away)."""
    markup: Any = None
    location = await menus.alert_open(db, person)  # 📍 stays while their alert is open
    if person.status == Status.ACTIVE:
        markup = menus.main_keyboard(person.language, location).to_dict()
    elif person.status == Status.SUSPENDED:
        markup = menus.main_keyboard(person.language, location, checkin=False).to_dict()
    await db.run(
        outbox.enqueue,
        chat_id=person.telegram_id,
        person_id=person.id,
        text=t(person.language, key, **values),
        reply_markup=markup,
        priority=Priority.URGENT,
        idempotency_key=f"people:{key}:{person.id}:{clock.now().isoformat()}",
        language=person.language,
        source=f"people:{person.id}",
    )


# ---------------------------------------------------------------------------- the list


def _view(context: Context) -> tuple[str, str, int]:
    saved = (context.user_data or {}).get(_VIEW_KEY) or ["all", "-", 0]
    try:
        status, prefecture, page = str(saved[0]), str(saved[1]), int(saved[2])
    except (IndexError, TypeError, ValueError):
        return "all", "-", 0
    return status, prefecture, page


def _list_data(status: str, prefecture: str, page: int) -> str:
    return f"ppl:l:{status}:{prefecture}:{page}"


def list_view(
    lang: str, result: PeoplePage, status: str, prefecture: str
) -> tuple[str, InlineKeyboardMarkup]:
    postings = load_postings()
    status_label = t(lang, f"people.filter.{status}")
    area_label = (
        t(lang, "people.filter.any_area")
        if prefecture == "-"
        else postings.name(prefecture, lang, short=True)
    )
    lines = [
        t(
            lang,
            "people.list.header",
            status=plain_text(status_label),
            prefecture=area_label,
            total=result.total,
            page=result.page + 1,
            pages=result.pages,
        ),
        "",
    ]
    person_buttons: list[tuple[str, str]] = []
    for person in result.people:  # each with their number (#id), which /tag accepts
        icon = STATUS_ICONS.get(Status(person.status), "")
        number = person.id
        lines.append(
            t(
                lang,
                "people.list.line",
                number=number,
                icon=icon,
                name=_name(person),
                role=t(lang, f"role.{person.role}"),
                status=t(lang, f"people.status.{person.status}"),
                posting=_posting(lang, person),
            )
        )
        person_buttons.append((f"#{number} {icon} {_name(person)}"[:60], f"ppl:c:{person.id}"))
    if not result.people:
        lines.append(t(lang, "people.list.empty"))

    def mark(selected: bool, label: str) -> str:
        return f"• {label}" if selected else label

    rows: list[list[tuple[str, str]]] = [
        person_buttons[i : i + 2] for i in range(0, len(person_buttons), 2)
    ]
    rows.append(
        [
            (
                mark(code == status, t(lang, f"people.filter.{code}")),
                _list_data(code, prefecture, 0),
            )
            for code in STATUS_FILTERS
        ]
    )
    areas = [(mark(prefecture == "-", t(lang, "people.filter.any_area")), "-")]
    areas += [
        (mark(p.code == prefecture, postings.name(p.code, lang, short=True)), p.code)
        for p in postings.prefectures()
    ]
    area_buttons = [(label, _list_data(status, code, 0)) for label, code in areas]
    rows += [area_buttons[i : i + 3] for i in range(0, len(area_buttons), 3)]
    paging = page_buttons(
        lang, result.page, result.pages, lambda page: _list_data(status, prefecture, page)
    )
    if paging:
        rows.append(paging)
    return "\n".join(lines), buttons(rows)


async def _send_list(
    update: Update, context: Context, admin: Person, status: str, prefecture: str, page: int
) -> None:
    result = await context.db.run(
        people.list_people,
        status=None if status == "all" else status,
        prefecture=None if prefecture == "-" else prefecture,
        page=page,
    )
    context.user_data[_VIEW_KEY] = [status, prefecture, result.page]  # type: ignore[index]
    text, markup = list_view(admin.language, result, status, prefecture)
    await edit_or_reply(update, text, markup)


@guarded(Action.MANAGE_PEOPLE)
async def people_command(update: Update, context: Context, admin: Person) -> None:
    """/people: the first page of everyone, with filters."""
    await _send_list(update, context, admin, "all", "-", 0)


# ---------------------------------------------------------------------------- the card


def card_text(lang: str, person: Person, areas: list[str]) -> str:
    postings = load_postings()
    names = ", ".join(postings.name(code, lang, short=True) for code in areas)
    card = t(
        lang,
        "people.card",
        name=_name(person),
        display_name=person.display_name or "-",
        role=t(lang, f"role.{person.role}"),
        status=t(lang, f"people.status.{person.status}"),
        phone=person.phone or "-",
        home_unit=person.home_unit or "-",
        posting=_posting(lang, person),
        altitude=_altitude(lang, person),
    )
    if person.role == Role.DUTY_OFFICER or names:  # nobody else has areas: no "-" line
        card += "\n" + t(lang, "people.card.areas", areas=names or "-")
    return card


def card_markup(lang: str, person: Person) -> InlineKeyboardMarkup:
    pid = person.id
    rows: list[list[tuple[str, str]]] = []
    if person.status == Status.PENDING:  # on separate rows: a slip never rejects
        rows.append([(t(lang, "approve.yes"), f"ppl:ok:{pid}")])
        rows.append([(t(lang, "approve.no"), f"ppl:no:{pid}")])
    rows.append(
        [
            (t(lang, "people.btn.role"), f"ppl:r:{pid}"),
            (t(lang, "people.btn.altitude"), f"ppl:alt:{pid}"),
        ]
    )
    if person.role == Role.DUTY_OFFICER:
        rows.append([(t(lang, "people.btn.duty_areas"), f"ppl:da:{pid}")])
    if person.status == Status.ACTIVE:
        rows.append([(t(lang, "people.btn.suspend"), f"ppl:sus:{pid}")])
    elif person.status == Status.SUSPENDED:
        rows.append([(t(lang, "people.btn.reinstate"), f"ppl:act:{pid}")])
    rows.append([(t(lang, "people.btn.back_to_list"), "ppl:back")])
    return buttons(rows)


async def _load(context: Context, person_id: int) -> tuple[Person | None, list[str]]:
    db = context.db
    person = await db.run(people.get, person_id)
    if person is None or person.id is None:
        return None, []
    return person, await db.run(people.duty_areas, person.id)


async def _show_card(update: Update, context: Context, admin: Person, person_id: int) -> None:
    """Refresh the card (the button press has already been answered)."""
    person, areas = await _load(context, person_id)
    if person is not None:
        lang = admin.language
        await edit_or_reply(update, card_text(lang, person, areas), card_markup(lang, person))


async def _show_gone(update: Update, context: Context, admin: Person) -> None:
    """The person no longer exists (deleted their data) or never did (forged data)."""
    await _toast(update, t(admin.language, "people.not_found"), alert=True)


def _role_markup(lang: str, person: Person) -> InlineKeyboardMarkup:
    rows = [
        [
            (
                ("✓ " if person.role == role else "") + t(lang, f"role.{role}"),
                f"ppl:role:{person.id}:{role}",
            )
        ]
        for role in ASSIGNABLE_ROLES
    ]
    rows.append([(t(lang, "people.btn.back"), f"ppl:c:{person.id}")])
    return buttons(rows)


def _duty_markup(lang: str, person: Person, areas: list[str]) -> InlineKeyboardMarkup:
    postings = load_postings()
    rows = [
        [
            (
                ("☑️ " if p.code in areas else "⬜ ") + postings.name(p.code, lang, short=True),
                f"ppl:dt:{person.id}:{p.code}",
            )
        ]
        for p in postings.prefectures()
    ]
    rows.append([(t(lang, "people.btn.back"), f"ppl:c:{person.id}")])
    return buttons(rows)


# ---------------------------------------------------------------------------- card actions


async def _decide(update: Update, context: Context, admin: Person, person_id: int) -> None:
    """Approve / reject from the card: the approvals handler does the work (and tells the
    person and the other admins), then the card is refreshed."""
    person, _ = await _load(context, person_id)
    if person is None:
        await _show_gone(update, context, admin)
        return
    if person.status != Status.PENDING:
        await _toast(update, t(admin.language, "approve.already_decided"), alert=True)
        await _show_card(update, context, admin, person_id)
        return
    await approvals.on_decision(update, context)  # answers the button press
    await _show_card(update, context, admin, person_id)


async def _confirm(
    update: Update, context: Context, admin: Person, person_id: int, *, suspend: bool
) -> None:
    """Suspend and reject ask first: the card says what will happen (a suspended person
    keeps 🆘), with the action and the way back on separate rows."""
    lang = admin.language
    person, areas = await _load(context, person_id)
    if person is None:
        await _show_gone(update, context, admin)
        return
    if suspend and person.id == admin.id:
        await _toast(update, t(lang, "people.cannot_suspend_self"), alert=True)
        return
    expected = Status.ACTIVE if suspend else Status.PENDING
    if person.status != expected:
        key = "people.no_change" if suspend else "approve.already_decided"
        await _toast(update, t(lang, key), alert=not suspend)
        await _show_card(update, context, admin, person_id)
        return
    await answer(update.callback_query)
    if suspend:
        question, yes = (
            "people.suspend.confirm",
            ("people.btn.suspend_yes", f"ppl:susy:{person_id}"),
        )
    else:
        question, yes = "approve.reject_confirm", ("approve.reject_yes", f"ppl:noy:{person_id}")
    text = card_text(lang, person, areas) + "\n\n" + t(lang, question, name=_name(person))
    rows = [[(t(lang, yes[0]), yes[1])], [(t(lang, "people.btn.back"), f"ppl:c:{person_id}")]]
    await edit_or_reply(update, text, buttons(rows))


async def _set_role(
    update: Update, context: Context, admin: Person, person_id: int, raw_role: str
) -> None:
    lang = admin.language
    if raw_role not in _ROLE_CODES:
        await _toast(update, t(lang, "form.stale"), alert=True)
        return
    role = Role(raw_role)
    before, _ = await _load(context, person_id)
    if before is None:
        await _show_gone(update, context, admin)
        return
    if before.role == role:
        await _toast(update, t(lang, "people.no_change"))
        await _show_card(update, context, admin, person_id)
        return
    try:
        person = await context.db.run(people.set_role, admin, person_id, role)
    except RegistrationError as error:
        await _toast(update, t(lang, error.key), alert=True)
        return
    if person is None:
        await _show_gone(update, context, admin)
        return
    await _toast(update, t(lang, "people.done.role", role=t(lang, f"role.{role}")))
    await menus.set_person_menu(context.bot, person, context.settings.webapp_url)
    await _tell(context, person, "people.told.role", role=t(person.language, f"role.{role}"))
    await _show_card(update, context, admin, person_id)


async def _set_status(
    update: Update, context: Context, admin: Person, person_id: int, suspend: bool
) -> None:
    lang = admin.language
    before, _ = await _load(context, person_id)
    if before is None:
        await _show_gone(update, context, admin)
        return
    expected, target = (
        (Status.ACTIVE, Status.SUSPENDED) if suspend else (Status.SUSPENDED, Status.ACTIVE)
    )
    if before.status != expected:
        await _toast(update, t(lang, "people.no_change"))
        await _show_card(update, context, admin, person_id)
        return
    try:
        person = await context.db.run(people.set_status, admin, person_id, target)
    except RegistrationError as error:
        await _toast(update, t(lang, error.key), alert=True)
        return
    if person is None:
        await _show_gone(update, context, admin)
        return
    outcome = "suspended" if suspend else "reinstated"
    await _toast(update, t(lang, f"people.done.{outcome}", name=_name(person)))
    await menus.set_person_menu(context.bot, person, context.settings.webapp_url)
    await _tell(context, person, f"people.told.{outcome}")
    await _show_card(update, context, admin, person_id)


async def _role_menu(update: Update, context: Context, admin: Person, person_id: int) -> None:
    person, areas = await _load(context, person_id)
    if person is None:
        await _show_gone(update, context, admin)
        return
    lang = admin.language
    await answer(update.callback_query)
    text = card_text(lang, person, areas) + "\n\n" + t(lang, "people.role.choose")
    await edit_or_reply(update, text, _role_markup(lang, person))


async def _duty_menu(
    update: Update, context: Context, admin: Person, person_id: int, toggle: str | None = None
) -> None:
    lang = admin.language
    person, areas = await _load(context, person_id)
    if person is None:
        await _show_gone(update, context, admin)
        return
    if person.role != Role.DUTY_OFFICER:
        await _toast(update, t(lang, "people.duty.not_duty_officer"), alert=True)
        return
    if toggle is None:
        await answer(update.callback_query)
    else:
        if load_postings().prefecture(toggle) is None:
            await _toast(update, t(lang, "form.stale"), alert=True)
            return
        changed = await context.db.run(people.toggle_duty_area, admin, person_id, toggle)
        if changed is None:
            await _show_gone(update, context, admin)
            return
        areas = changed
        name = load_postings().name(toggle, lang, short=True)
        key = "people.duty.added" if toggle in areas else "people.duty.removed"
        await _toast(update, t(lang, key, area=name))
    text = card_text(lang, person, areas) + "\n\n" + t(lang, "people.duty.choose")
    await edit_or_reply(update, text, _duty_markup(lang, person, areas))


@guarded(Action.MANAGE_PEOPLE)
async def on_people_button(update: Update, context: Context, admin: Person) -> None:
    """Every ``ppl:`` button except the altitude question (see the conversation below)."""
    press = pressed(update)
    query, parts, what = press.query, press.parts, press.step
    lang = admin.language
    if what == "nop" and len(parts) == 2:
        await answer(query)
        return
    if what == "back" and len(parts) == 2:
        await answer(query)
        await _send_list(update, context, admin, *_view(context))
        return
    if what == "l" and len(parts) == 5:
        _, _, status, prefecture, raw_page = parts
        valid_area = prefecture == "-" or load_postings().prefecture(prefecture) is not None
        page = parse_int(raw_page, max_digits=5)
        if status in _LIST_STATUSES and valid_area and page is not None:
            await answer(query)
            await _send_list(update, context, admin, status, prefecture, page)
            return
    person_id = press.number(2)
    if person_id is not None:
        if what == "c" and len(parts) == 3:
            person, _ = await _load(context, person_id)
            if person is None:
                await _show_gone(update, context, admin)
                return
            await answer(query)
            await _show_card(update, context, admin, person_id)
            return
        if what in {"ok", "noy"} and len(parts) == 3:
            await _decide(update, context, admin, person_id)
            return
        if what in {"no", "sus"} and len(parts) == 3:
            await _confirm(update, context, admin, person_id, suspend=what == "sus")
            return
        if what == "r" and len(parts) == 3:
            await _role_menu(update, context, admin, person_id)
            return
        if what == "role" and len(parts) == 4:
            await _set_role(update, context, admin, person_id, parts[3])
            return
        if what == "da" and len(parts) == 3:
            await _duty_menu(update, context, admin, person_id)
            return
        if what == "dt" and len(parts) == 4:
            await _duty_menu(update, context, admin, person_id, toggle=parts[3])
            return
        if what in {"susy", "act"} and len(parts) == 3:
            await _set_status(update, context, admin, person_id, suspend=what == "susy")
            return
    await _toast(update, t(lang, "form.stale"), alert=True)


# ---------------------------------------------------------------------------- altitude


async def _ask_altitude_again(update: Update, context: Context, admin: Person, name: str) -> None:
    low, high = ALTITUDE_RANGE
    await reply(update, t(admin.language, "people.altitude.ask", name=name, low=low, high=high))


@guarded(Action.MANAGE_PEOPLE)
async def ask_altitude(update: Update, context: Context, admin: Person) -> str | int:
    """``ppl:alt:<id>``: ask the admin to type the altitude in metres."""
    person_id = pressed(update).number(2)
    person = (await _load(context, person_id))[0] if person_id is not None else None
    if person is None:
        await _show_gone(update, context, admin)
        return ConversationHandler.END
    await answer(update.callback_query)
    ALTITUDE_DRAFT.clear(context)
    ALTITUDE_DRAFT.of(context).update({"person": person.id, "name": _name(person)})
    ALTITUDE_DRAFT.touch(context)
    await _ask_altitude_again(update, context, admin, _name(person))
    return ALTITUDE


@guarded(Action.MANAGE_PEOPLE)
async def receive_altitude(update: Update, context: Context, admin: Person) -> str | int:
    assert context.user_data is not None
    lang = admin.language
    if ALTITUDE_DRAFT.expired(context):
        ALTITUDE_DRAFT.clear(context)
        await reply(update, t(lang, "people.altitude.expired"))
        return ConversationHandler.END
    pending = ALTITUDE_DRAFT.of(context)
    message = update.effective_message
    try:
        metres = parse_altitude(message.text if message else None)
    except InvalidInput:
        low, high = ALTITUDE_RANGE
        await reply(update, t(lang, "invalid.altitude", low=low, high=high))
        ALTITUDE_DRAFT.touch(context)
        await _ask_altitude_again(update, context, admin, pending.get("name", ""))
        return ALTITUDE
    ALTITUDE_DRAFT.clear(context)
    person = await context.db.run(people.set_altitude, admin, int(pending["person"]), metres)
    if person is None or person.id is None:
        await reply(update, t(lang, "people.not_found"))
        return ConversationHandler.END
    areas = await context.db.run(people.duty_areas, person.id)
    await reply(update, t(lang, "people.altitude.done", name=_name(person), metres=metres))
    await reply(update, card_text(lang, person, areas), reply_markup=card_markup(lang, person))
    return ConversationHandler.END


@guarded(Action.MANAGE_PEOPLE)
async def cancel_altitude(update: Update, context: Context, admin: Person) -> int:
    assert context.user_data is not None
    ALTITUDE_DRAFT.clear(context)
    await reply(update, t(admin.language, "people.altitude.cancelled"))
    return ConversationHandler.END


async def altitude_timeout(update: Update, context: Context) -> int:
    """The question waited too long (no admin action happens here, so no gate)."""
    if context.user_data is not None:
        ALTITUDE_DRAFT.clear(context)
    lang = language_of(update, context, await current_person(update, context))
    await reply(update, t(lang, "people.altitude.expired"))
    return ConversationHandler.END


def _leaving(handler: Callback) -> Callback:
    """Another admin command or button while the altitude question waits: the question
    is dropped and the other action runs (its own gate applies)."""

    async def run(update: Update, context: Context) -> int:
        if context.user_data is not None:
            ALTITUDE_DRAFT.clear(context)
        await handler(update, context)
        return ConversationHandler.END

    return run


# ---------------------------------------------------------------------------- /invite


def _expiry_label(lang: str, days: int) -> str:
    return t(lang, f"invite.days.{days}")


def _uses_label(lang: str, uses: int) -> str:
    return t(lang, f"invite.uses.{uses}")


def _cancel_row(lang: str) -> list[tuple[str, str]]:
    return [(t(lang, "invite.btn.cancel"), "inv:x")]


@guarded(Action.INVITE)
async def invite_command(update: Update, context: Context, admin: Person) -> None:
    lang = admin.language
    rows = [[(t(lang, f"role.{role}"), f"inv:r:{role}")] for role in ASSIGNABLE_ROLES]
    await reply(
        update, t(lang, "invite.choose_role"), reply_markup=buttons([*rows, _cancel_row(lang)])
    )


def _parse_invite(press: Press) -> tuple[Role, int | None, int | None] | None:
    """(role, days, uses) from ``inv:<step>:<role>[:<days>[:<uses>]]``; None when forged."""
    role = press.word(2)
    if role not in _ROLE_CODES:
        return None
    days = uses = None
    if len(press.parts) > 3:
        days = press.number(3)
        if days not in INVITE_DAYS:
            return None
    if len(press.parts) > 4:
        uses = press.number(4)
        if uses not in INVITE_USES:
            return None
    return Role(role), days, uses


@guarded(Action.INVITE)
async def on_invite_button(update: Update, context: Context, admin: Person) -> None:
    press = pressed(update)
    query, lang, step = press.query, admin.language, press.step
    if step == "x" and len(press.parts) == 2:
        await answer(query)
        await edit_or_reply(update, t(lang, "invite.cancelled"), None)
        return
    expected_length = {"r": 3, "e": 4, "u": 5}.get(step)
    parsed = _parse_invite(press) if len(press.parts) == expected_length else None
    if parsed is None:
        await _toast(update, t(lang, "form.stale"), alert=True)
        return
    role, days, uses = parsed
    role_label = t(lang, f"role.{role}")
    if step == "r":
        await answer(query)
        rows = [[(_expiry_label(lang, d), f"inv:e:{role}:{d}")] for d in INVITE_DAYS]
        text = t(lang, "invite.choose_expiry", role=role_label)
        await edit_or_reply(update, text, buttons([*rows, _cancel_row(lang)]))
        return
    assert days is not None
    if step == "e":
        await answer(query)
        rows = [[(_uses_label(lang, u), f"inv:u:{role}:{days}:{u}")] for u in INVITE_USES]
        text = t(lang, "invite.choose_uses", role=role_label, expiry=_expiry_label(lang, days))
        await edit_or_reply(update, text, buttons([*rows, _cancel_row(lang)]))
        return
    assert uses is not None
    invitation = await context.db.run(
        people.create_invitation,
        admin,
        role,
        timedelta(days=days) if days else None,
        uses or None,
    )
    await answer(query)
    link = f"https://t.me/{context.bot.username}?start={invitation.code}"
    zone = context.settings.zone
    expires = (
        invitation.expires_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        if invitation.expires_at
        else t(lang, "invite.never")
    )
    text = t(
        lang,
        "invite.created",
        role=role_label,
        expires=expires,
        uses=_uses_label(lang, uses),
        link=link,
    )
    markup = link_buttons(t(lang, "invite.btn.copy"), t(lang, "invite.btn.share"), link)
    await edit_or_reply(update, text, markup)


# ---------------------------------------------------------------------------- assembly


def _altitude_conversation() -> ConversationHandler[Any]:
    leave_buttons = [
        CallbackQueryHandler(_leaving(on_people_button), pattern=r"^ppl:"),
        CallbackQueryHandler(_leaving(on_invite_button), pattern=r"^inv:"),
    ]
    private = filters.ChatType.PRIVATE
    # A tap on the main keyboard (SOS, check-in) is not an answer: it goes to its feature.
    main_buttons = menus.main_button_texts("main.sos") | menus.main_button_texts("main.checkin")
    answer_filter = ~filters.COMMAND & ~filters.Text(sorted(main_buttons))
    # One altitude question per admin at a time.
    return form_conversation(
        ALTITUDE_CONVERSATION,
        entry_points=[CallbackQueryHandler(ask_altitude, pattern=r"^ppl:alt:")],
        states={ALTITUDE: [MessageHandler(answer_filter, receive_altitude), *leave_buttons]},
        fallbacks=[
            CommandHandler("cancel", cancel_altitude),
            CommandHandler("people", _leaving(people_command), filters=private),
            CommandHandler("invite", _leaving(invite_command), filters=private),
        ],
        timeout=ALTITUDE_TIMEOUT,
        on_timeout=altitude_timeout,
    )


def build() -> list[BaseHandler]:
    private = filters.ChatType.PRIVATE
    return [
        _altitude_conversation(),
        CommandHandler("people", people_command, filters=private),
        CommandHandler("invite", invite_command, filters=private),
        CallbackQueryHandler(on_people_button, pattern=r"^ppl:"),
        CallbackQueryHandler(on_invite_button, pattern=r"^inv:"),
    ]
