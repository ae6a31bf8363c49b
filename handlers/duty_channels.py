"""Alert channels beyond Telegram, on Telegram: /dutygroup (admins set a prefecture's
WeCom or DingTalk duty group), /sms (a duty officer's own number for alert texts) and the
acknowledgement link those texts carry (``/start ack_<id>``).

Callback data:
    dg:test:<id> / dg:rm:<id> / dg:rmy:<id> / dg:rmn   test, remove (ask, yes, no)
    dg:pg:<page>                                       a page of the list (one screen each)
    sms:profile / sms:off / sms:test                   use the profile's number / stop / test
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    filters,
)

from handlers.callbacks import button_id, pressed
from handlers.common import (
    Context,
    answer,
    answer_stale,
    buttons,
    current_person,
    edit_or_reply,
    guarded,
    reply,
)
from handlers.paging import page_buttons
from handlers.sos import acknowledge_and_reply
from models import Channel, DutyGroup, Person
from services.alerts import policy, respond
from services.duty_channels import checks, sms, worker
from services.duty_channels import groups as duty_groups
from services.i18n import t
from services.permissions import Action
from services.screens import paginate
from services.validation import InvalidInput

log = logging.getLogger(__name__)

DEEP_LINK_PREFIX = "ack_"


# ---------------------------------------------------------------------------- /dutygroup


def _when(moment: Any, zone: Any) -> str:
    return moment.astimezone(zone).strftime("%m-%d %H:%M") if moment else "-"


def _group_line(group: DutyGroup, lang: str, zone: Any) -> str:
    if group.failing_since is not None:
        health = t(
            lang,
            "channels.list.failing",
            since=_when(group.failing_since, zone),
            reason=checks.why(group.failing_reason, lang),
        )
    elif group.last_ok_at is not None:
        health = t(lang, "channels.list.ok", time=_when(group.last_ok_at, zone))
    else:
        health = t(lang, "channels.list.untested")
    return t(
        lang,
        "channels.list.group",
        id=group.id,
        area=duty_groups.prefecture_name(group.prefecture, lang),
        label=duty_groups.group_label(group, lang),
        url=duty_groups.mask_url(group.webhook_url),
        signed=t(lang, "channels.list.signed") if group.secret else "",
        health=health,
    )


def _list_view(
    session: Any, lang: str, settings: Any, page: int = 0
) -> tuple[str, list[list[tuple[str, str]]]] | None:
    """Page `page` of the list (a phone screen each: the groups, the SMS gateway, how to
    set a group), with the test and remove buttons of the groups it shows and the row that
    turns the pages; None for a page the list no longer has."""
    groups = duty_groups.list_groups(session)
    zone = settings.zone
    header = t(lang, "channels.list.header") + "\n"
    lines = []
    if groups:
        lines += [_group_line(group, lang, zone) for group in groups]
    else:
        lines.append(t(lang, "channels.list.none"))
    if settings.sms_enabled:
        failing = worker.sms_failing(session)
        key = "channels.list.sms_failing" if failing else "channels.list.sms_on"
        reason = checks.why((failing or {}).get("reason"), lang)
        lines.append(t(lang, key, rate=f"{settings.sms_per_minute:g}", reason=reason))
    else:
        lines.append(t(lang, "channels.list.sms_off"))
    lines.append("")
    lines.append(t(lang, "channels.usage"))
    pages = paginate(lines, header=header, whole=True)
    if not 0 <= page < len(pages):
        return None
    shown = pages[page]
    rows = [
        [
            (t(lang, "channels.btn.test", id=group.id), f"dg:test:{group.id}"),
            (t(lang, "channels.btn.remove", id=group.id), f"dg:rm:{group.id}"),
        ]
        for number, group in enumerate(groups)
        if number in shown.lines
    ]
    turn = page_buttons(lang, page, len(pages), lambda number: f"dg:pg:{number}")
    return shown.text, [*rows, turn] if turn else rows


@guarded(Action.MANAGE_ROSTER)
async def dutygroup_command(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    words = list(context.args or [])
    db = context.db
    if words and words[0].lower() in ("set", "设置"):
        await _set(update, context, person, words[1:])
        return
    shown = await db.run(_list_view, lang, context.settings)
    assert shown is not None  # the first page is always there
    text, rows = shown
    await reply(update, text, reply_markup=buttons(rows) if rows else None)


async def _set(update: Update, context: Context, person: Person, words: list[str]) -> None:
    lang = person.language
    request = duty_groups.parse_set(words)
    if request.url is not None:
        await _delete_credential_message(update)
    problem = duty_groups.check_request(request)
    if problem is not None:
        await reply(update, t(lang, problem) + "\n\n" + t(lang, "channels.usage"))
        return
    group = await context.db.run(duty_groups.set_group, person, request)
    text = t(
        lang,
        "channels.set.done",
        label=duty_groups.group_label(group, lang),
        area=duty_groups.prefecture_name(group.prefecture, lang),
        url=duty_groups.mask_url(group.webhook_url),
    )
    if group.channel == Channel.DINGTALK and not group.secret:
        text += "\n" + t(lang, "channels.set.unsigned")
    await reply(
        update,
        text,
        reply_markup=buttons(
            [[(t(lang, "channels.btn.test", id=group.id), f"dg:test:{group.id}")]]
        ),
    )


async def _delete_credential_message(update: Update) -> None:
    """The admin's message holds the robot's key: remove it from the chat."""
    message = update.effective_message
    if message is None:
        return
    try:
        await message.delete()
    except TelegramError:
        log.info("could not delete the message holding a webhook URL")


@guarded(Action.MANAGE_ROSTER)
async def on_dutygroup_button(update: Update, context: Context, person: Person) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    lang = person.language
    press = pressed(update)
    action, group_id = press.step, press.number(2)
    db = context.db
    if action == "rmn":
        await answer(query)
        await edit_or_reply(update, t(lang, "channels.remove.kept"))
        return
    if action == "pg" and group_id is not None:  # here the field is a page
        shown = await db.run(_list_view, lang, context.settings, group_id)
        if shown is None:
            await answer_stale(update, context)
            return
        await answer(query)
        await edit_or_reply(update, shown[0], buttons(shown[1]) if shown[1] else None)
        return
    if group_id is None or action not in ("test", "rm", "rmy"):
        await answer(query, t(lang, "form.stale"), alert=True)
        return
    group = await db.run(lambda s: s.get(DutyGroup, group_id))
    if group is None:
        await answer(query, t(lang, "channels.gone"), alert=True)
        return
    label = duty_groups.group_label(group, lang)
    if action == "test":
        await db.run(checks.queue_test, person, group_id, context.settings.default_language)
        await answer(query, t(lang, "channels.test.queued", label=label))
        await reply(update, t(lang, "channels.test.queued", label=label))
    elif action == "rm":
        await answer(query)
        rows = [
            [
                (t(lang, "channels.btn.remove_yes"), f"dg:rmy:{group_id}"),
                (t(lang, "channels.btn.remove_no"), "dg:rmn"),
            ]
        ]
        await edit_or_reply(update, t(lang, "channels.remove.ask", label=label), buttons(rows))
    else:
        await db.run(duty_groups.remove_group, person, group_id)
        await answer(query)
        await edit_or_reply(update, t(lang, "channels.remove.done", label=label))


# ---------------------------------------------------------------------------- /sms


def _sms_view(person: Person, lang: str, settings: Any) -> tuple[str, list[list[tuple[str, str]]]]:
    lines = [t(lang, "channels.sms.explain")]
    if person.sms_phone:
        when = _when(person.sms_consented_at, settings.zone)
        lines.append(t(lang, "channels.sms.current", phone=person.sms_phone, since=when))
    else:
        lines.append(t(lang, "channels.sms.none"))
    if not settings.sms_enabled:
        lines.append(t(lang, "channels.sms.gateway_off"))
    lines.append(t(lang, "channels.sms.usage"))
    rows = []
    if person.phone and person.phone != person.sms_phone:
        rows.append([(t(lang, "channels.btn.sms_profile", phone=person.phone), "sms:profile")])
    if person.sms_phone and settings.sms_enabled:
        rows.append([(t(lang, "channels.btn.sms_test"), "sms:test")])
    if person.sms_phone:
        rows.append([(t(lang, "channels.btn.sms_off"), "sms:off")])
    return "\n\n".join(lines), rows


@guarded(Action.HANDLE_ALERTS)
async def sms_command(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    settings = context.settings
    db = context.db
    raw = " ".join(context.args or []).strip()
    if raw.lower() in ("off", "stop", "关闭", "停止"):
        person = await db.run(sms.clear_sms, person)
        await reply(update, t(lang, "channels.sms.cleared"))
        return
    if raw:
        try:
            person = await db.run(sms.set_sms, person, raw)
        except InvalidInput as exc:
            await reply(
                update, t(lang, exc.key, **exc.values) + "\n" + t(lang, "channels.sms.usage")
            )
            return
        await reply(update, t(lang, "channels.sms.saved", phone=person.sms_phone or "-"))
        return
    text, rows = _sms_view(person, lang, settings)
    await reply(update, text, reply_markup=buttons(rows) if rows else None)


@guarded(Action.HANDLE_ALERTS)
async def on_sms_button(update: Update, context: Context, person: Person) -> None:
    query = update.callback_query
    assert query is not None
    lang = person.language
    db = context.db
    if query.data == "sms:profile" and person.phone:
        person = await db.run(sms.set_sms, person, person.phone)
        await answer(query)
        await edit_or_reply(update, t(lang, "channels.sms.saved", phone=person.sms_phone or "-"))
    elif query.data == "sms:test":
        queued = await db.run(checks.queue_sms_test, person, context.settings.sms_enabled)
        if queued is None:
            await answer(query, t(lang, "form.stale"), alert=True)
            return
        label = duty_groups.mask_phone(person.sms_phone)
        await answer(query)
        await reply(update, t(lang, "channels.test.queued", label=label))
    elif query.data == "sms:off":
        await db.run(sms.clear_sms, person)
        await answer(query)
        await edit_or_reply(update, t(lang, "channels.sms.cleared"))
    else:
        await answer(query, t(lang, "form.stale"), alert=True)


# ---------------------------------------------------------------------------- /start ack_<id>


async def on_ack_link(update: Update, context: Context) -> None:
    """The link in a WeCom, DingTalk or SMS alert: acknowledges for an officer of the area
    (the same permission check and first-wins rule as the button), then shows the alert."""
    arg = (context.args or [""])[0]
    alert_id = button_id(arg[len(DEEP_LINK_PREFIX) :])
    person = await current_person(update, context)
    db = context.db
    lang = person.language if person else context.settings.default_language
    alert = await db.run(policy.get, alert_id) if alert_id is not None else None
    refusal = (
        await db.run(respond.handling_refusal, person, alert)
        if person is not None
        else respond.Refusal.ROLE
    )
    if refusal is not None:
        await db.run(respond.refuse, person, alert_id, f"/start {arg}"[:64], str(refusal))
        await reply(update, t(lang, f"sos.denied.{refusal}"))
        raise ApplicationHandlerStop
    assert alert is not None and person is not None
    await acknowledge_and_reply(update, context, person, alert)  # as /ack <id>
    raise ApplicationHandlerStop


class _AckLink(filters.MessageFilter):
    """``/start ack_<digits>``."""

    def filter(self, message: Any) -> bool:
        words = (message.text or "").split()
        return len(words) == 2 and words[1].startswith(DEEP_LINK_PREFIX)


# ---------------------------------------------------------------------------- assembly


def build_deep_links() -> list[BaseHandler]:
    """Before the emergency group (whose command handler would otherwise see /start)."""
    return [CommandHandler("start", on_ack_link, filters=_AckLink())]


def build() -> list[BaseHandler]:
    return [
        CommandHandler("dutygroup", dutygroup_command),
        CommandHandler("sms", sms_command),
        CallbackQueryHandler(on_dutygroup_button, pattern=r"^dg:"),
        CallbackQueryHandler(on_sms_button, pattern=r"^sms:"),
    ]
