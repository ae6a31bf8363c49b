"""Duty officers on duty: /onduty, /offduty, and the weekly roster admins manage (/roster;
duty officers read their own areas' roster, and are told when a shift of theirs changes).

Callback data:
    duty:on:<hours> / duty:off                 on duty (0 = until /offduty) / off duty
    ros:home / ros:p:<pref>                    areas / one area's week
    ros:a:<pref> / ros:o:<pref>:<pid>          add a shift: choose the officer
    ros:d:<pref>:<pid>:<days>                  toggle days (a 7-bit mask, Monday = 1)
    ros:b:<pref>:<pid>:<days>                  choose the hours
    ros:s:<pref>:<pid>:<days>:<block>          create the shifts
    ros:rm:<shift>                             remove a shift
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from handlers.callbacks import pressed
from handlers.common import Context, answer, buttons, edit_or_reply, guarded, reply
from handlers.sos_common import forged, policy
from models import Person
from services import clock, people, roster
from services.alerts import coverage
from services.i18n import escape, t
from services.people import name_of
from services.permissions import Action, check
from services.postings import load_postings

WEEKDAYS = range(7)
DAY_PRESETS = (("sos.roster.weekdays", 0b0011111), ("sos.roster.weekend", 0b1100000))


# ---------------------------------------------------------------------------- /onduty, /offduty


@guarded(Action.GO_ON_DUTY)
async def onduty_command(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    areas = await context.db.run(people.duty_areas, person.id or 0)
    if not areas:
        await reply(update, t(lang, "sos.duty.no_areas"))
        return
    rows = [
        [(t(lang, "sos.duty.hours", hours=h), f"duty:on:{h}") for h in roster.ON_DUTY_HOURS],
        [(t(lang, "sos.duty.until_off"), "duty:on:0")],
    ]
    status = await context.db.run(_duty_status, person, lang, context.settings.zone)
    await reply(update, status + "\n\n" + t(lang, "sos.duty.ask_hours"), reply_markup=buttons(rows))


def _duty_status(session: Any, person: Person, lang: str, zone: Any) -> str:
    now = clock.now()
    areas = people.duty_areas(session, person.id or 0)
    postings = load_postings()
    lines = []
    duty = roster.current_duty(session, person.id or 0, now)
    if duty is not None:
        until = (
            duty.until.astimezone(zone).strftime("%m-%d %H:%M")
            if duty.until
            else t(lang, "sos.duty.until_off")
        )
        lines.append(t(lang, "sos.duty.you_on", until=until))
    else:
        lines.append(t(lang, "sos.duty.you_off"))
    for area in areas:
        on = roster.on_duty_now(session, area, now, zone)
        names = ", ".join(name_of(p) for p in on) or t(lang, "sos.duty.nobody")
        name = postings.name(area, lang, short=True) if postings.prefecture(area) else area
        lines.append(t(lang, "sos.duty.area_line", area=name, names=names))
    return "\n".join(lines)


@guarded(Action.GO_ON_DUTY)
async def on_duty_button(update: Update, context: Context, person: Person) -> None:
    press = pressed(update)
    query, lang, db, zone = press.query, person.language, context.db, context.settings.zone
    if press.step == "on" and len(press.parts) == 3 and press.number(2) is not None:
        hours = press.number(2) or None
        if hours is not None and hours not in roster.ON_DUTY_HOURS:
            await forged(update, context, person)
            return
        try:
            await db.run(roster.go_on_duty, person, hours)
        except roster.RosterError as error:
            await answer(query, t(lang, error.key), alert=True)
            return
        await answer(query)
        await db.run(coverage.coverage_warnings, policy(context))
        await edit_or_reply(update, await db.run(_duty_status, person, lang, zone))
    elif press.parts[1:] == ("off",):
        await answer(query)
        await _go_off(update, context, person)
    else:
        await forged(update, context, person)


@guarded(Action.GO_ON_DUTY)
async def offduty_command(update: Update, context: Context, person: Person) -> None:
    await _go_off(update, context, person)


async def _go_off(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    db = context.db
    was_on = await db.run(roster.go_off_duty, person)
    await db.run(coverage.coverage_warnings, policy(context))
    status = await db.run(_duty_status, person, lang, context.settings.zone)
    key = "sos.duty.off_done" if was_on else "sos.duty.was_not_on"
    await reply(update, t(lang, key) + "\n\n" + status)


# ---------------------------------------------------------------------------- /roster


def pref_buttons(lang: str, prefix: str) -> list[list[tuple[str, str]]]:
    """One button per prefecture (callback data: prefix + code)."""
    postings = load_postings()
    return [
        [(postings.name(p.code, lang, short=True), f"{prefix}{p.code}")]
        for p in postings.prefectures()
    ]


@guarded(Action.GO_ON_DUTY)
async def roster_command(update: Update, context: Context, person: Person) -> None:
    """Admins edit the roster; a duty officer reads their own areas' (no buttons)."""
    lang = person.language
    if check(person, Action.MANAGE_ROSTER) is None:
        await reply(
            update,
            t(lang, "sos.roster.choose_area"),
            reply_markup=buttons(pref_buttons(lang, "ros:p:")),
        )
        return
    db = context.db
    areas = await db.run(people.duty_areas, person.id or 0)
    if not areas:
        await reply(update, t(lang, "sos.duty.no_areas"))
        return
    zone = context.settings.zone
    views = [(await db.run(_roster_view, area, lang, zone))[0] for area in areas]
    await reply(update, "\n\n".join(views) + "\n\n" + t(lang, "sos.roster.read_only"))


def _days_label(lang: str, mask: int) -> str:
    names = [t(lang, f"sos.day.{d}") for d in WEEKDAYS if mask & (1 << d)]
    return " ".join(names) or "-"


def _roster_view(
    session: Any, prefecture: str, lang: str, zone: Any
) -> tuple[str, list[list[tuple[str, str]]]]:
    postings = load_postings()
    area = postings.name(prefecture, lang, short=True)
    shifts = roster.shifts_of(session, prefecture)
    lines = [t(lang, "sos.roster.header", area=area)]
    rows: list[list[tuple[str, str]]] = []
    if not shifts:
        lines.append(t(lang, "sos.roster.none"))
    for shift, officer in shifts:
        when = roster.shift_text(lang, shift)
        lines.append(f"{when} · {escape(name_of(officer))}")  # the message is HTML
        if len(rows) < 40:  # a button's label is plain text
            rows.append([(f"✖ {when} {name_of(officer)}"[:60], f"ros:rm:{shift.id}")])
    on = roster.on_duty_now(session, prefecture, clock.now(), zone)
    names = ", ".join(name_of(p) for p in on) or t(lang, "sos.duty.nobody")
    lines.append("")
    lines.append(t(lang, "sos.roster.now", names=names))
    rows.append([(t(lang, "sos.roster.add"), f"ros:a:{prefecture}")])
    rows.append([(t(lang, "sos.btn.back"), "ros:home")])
    return "\n".join(lines), rows


@guarded(Action.MANAGE_ROSTER)
async def on_roster_button(update: Update, context: Context, admin: Person) -> None:
    press = pressed(update)
    query, lang, db, zone = press.query, admin.language, context.db, context.settings.zone
    postings = load_postings()
    step = press.step
    if step == "home":
        await answer(query)
        await edit_or_reply(
            update, t(lang, "sos.roster.choose_area"), buttons(pref_buttons(lang, "ros:p:"))
        )
        return
    if step == "rm" and len(press.parts) == 3 and (shift_id := press.number(2)) is not None:
        removed = await db.run(roster.remove_shift, admin, shift_id)
        if removed is None:
            await answer(query, t(lang, "form.stale"), alert=True)
            return
        await answer(query, t(lang, "sos.roster.removed"))
        text, rows = await db.run(_roster_view, removed.prefecture, lang, zone)
        await edit_or_reply(update, text, buttons(rows))
        return
    prefecture = press.word(2)
    if postings.prefecture(prefecture) is None:
        await forged(update, context, admin)
        return
    area = postings.name(prefecture, lang, short=True)
    if step == "p":
        await answer(query)
        text, rows = await db.run(_roster_view, prefecture, lang, zone)
        await edit_or_reply(update, text, buttons(rows))
        return
    if step == "a":
        officers = await db.run(_area_officers, prefecture)
        await answer(query)
        if not officers:
            back = [[(t(lang, "sos.btn.back"), f"ros:p:{prefecture}")]]
            await edit_or_reply(update, t(lang, "sos.roster.no_officers", area=area), buttons(back))
            return
        rows = [[(name_of(o), f"ros:o:{prefecture}:{o.id}")] for o in officers[:30]]
        rows.append([(t(lang, "sos.btn.back"), f"ros:p:{prefecture}")])
        await edit_or_reply(update, t(lang, "sos.roster.choose_officer", area=area), buttons(rows))
        return
    officer_id = press.number(3)
    officer = await db.run(people.get, officer_id) if officer_id else None
    if officer is None:
        await forged(update, context, admin)
        return
    mask = press.number(4) if len(press.parts) > 4 else 0
    if mask is None or mask > 127:
        await forged(update, context, admin)
        return
    if step in ("o", "d"):
        await answer(query)
        await edit_or_reply(
            update,
            t(
                lang,
                "sos.roster.choose_days",
                name=name_of(officer),
                area=area,
                days=_days_label(lang, mask),
            ),
            buttons(_day_rows(lang, prefecture, officer.id or 0, mask)),
        )
        return
    if step == "b":
        if not mask:
            await answer(query, t(lang, "sos.roster.pick_a_day"), alert=True)
            return
        await answer(query)
        rows = [
            [(t(lang, f"sos.block.{code}"), f"ros:s:{prefecture}:{officer.id}:{mask}:{code}")]
            for code in roster.SHIFT_BLOCKS
        ]
        rows.append([(t(lang, "sos.btn.back"), f"ros:d:{prefecture}:{officer.id}:{mask}")])
        text = t(
            lang,
            "sos.roster.choose_block",
            name=name_of(officer),
            days=_days_label(lang, mask),
        )
        await edit_or_reply(update, text, buttons(rows))
        return
    if step == "s" and len(press.parts) > 5:
        days = [d for d in WEEKDAYS if mask & (1 << d)]
        try:
            block = press.word(5)
            await db.run(roster.add_shifts, admin, officer.id or 0, prefecture, days, block)
        except roster.RosterError as error:
            await answer(query, t(lang, error.key), alert=True)
            return
        await answer(query, t(lang, "sos.roster.added"))
        await db.run(coverage.coverage_warnings, policy(context))
        text, rows = await db.run(_roster_view, prefecture, lang, zone)
        await edit_or_reply(update, text, buttons(rows))
        return
    await forged(update, context, admin)


def _area_officers(session: Any, prefecture: str) -> list[Person]:
    """Who can take a shift there: its duty officers, and admins with that duty area."""
    officers = roster.duty_officers(session, prefecture)
    ids = {o.id for o in officers}
    admins = [
        a
        for a in people.admins(session)
        if a.id not in ids and prefecture in people.duty_areas(session, a.id or 0)
    ]
    return [*officers, *admins]


def _day_rows(
    lang: str, prefecture: str, officer_id: int, mask: int
) -> list[list[tuple[str, str]]]:
    base = f"ros:d:{prefecture}:{officer_id}:"
    days = [
        (("✅ " if mask & (1 << d) else "") + t(lang, f"sos.day.{d}"), f"{base}{mask ^ (1 << d)}")
        for d in WEEKDAYS
    ]
    rows = [days[:4], days[4:]]
    rows.append([(t(lang, key), f"{base}{preset}") for key, preset in DAY_PRESETS])
    rows.append([(t(lang, "sos.roster.every_day"), f"{base}127")])
    rows.append(
        [
            (t(lang, "sos.btn.back"), f"ros:a:{prefecture}"),
            (t(lang, "sos.roster.next"), f"ros:b:{prefecture}:{officer_id}:{mask}"),
        ]
    )
    return rows


def build() -> list[BaseHandler]:
    return [
        CommandHandler("onduty", onduty_command),
        CommandHandler("offduty", offduty_command),
        CommandHandler("roster", roster_command),
        CallbackQueryHandler(on_duty_button, pattern=r"^duty:"),
        CallbackQueryHandler(on_roster_button, pattern=r"^ros:"),
    ]
