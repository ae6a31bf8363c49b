"""/carepolicy: the care policy by altitude band, and its editor (cs:pol, cs:pv, cs:ps, cs:pt,
cs:pc)."""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from handlers.callbacks import pressed
from handlers.care.common import days_text, forged
from handlers.common import Context, answer, buttons, edit_or_reply, guarded, reply
from models import Person
from services import care_policy
from services.care import texts as care_texts
from services.care_policy import Band, BandPolicy
from services.i18n import t
from services.permissions import Action
from services.validation import parse_int

POLICY_FIELDS = {  # short code in callback data -> field
    "re": "rest_every_days",
    "rl": "rest_length_days",
    "ef": "exam_first_days",
    "ee": "exam_every_days",
}
POLICY_CHOICES: dict[str, tuple[int, ...]] = {
    "rest_every_days": (60, 90, 120, 180, 365),
    "rest_length_days": (7, 10, 14, 21, 28),
    "exam_first_days": (0, 7, 14, 30, 60),
    "exam_every_days": (90, 180, 365),
}


# ---------------------------------------------------------------------------- /carepolicy


def _rest_value(lang: str, policy: BandPolicy) -> str:
    if policy.rest_every_days is None:
        return t(lang, "care.policy.off")
    return t(
        lang,
        "care.policy.rest_value",
        every=days_text(lang, policy.rest_every_days),
        length=days_text(lang, policy.rest_length_days),
    )


def _exam_value(lang: str, policy: BandPolicy) -> str:
    if not policy.has_exam:
        return t(lang, "care.policy.off")
    first = policy.exam_first_days
    every = policy.exam_every_days
    if first is None:
        return t(lang, "care.policy.exam_every", every=days_text(lang, every))
    if every is None:
        return t(lang, "care.policy.exam_first", first=days_text(lang, first))
    return t(
        lang, "care.policy.exam_value", first=days_text(lang, first), every=days_text(lang, every)
    )


def _state(lang: str, policy: BandPolicy, zone: Any, *, short: bool = False) -> str:
    """Confirmed (when), or a proposal (`short`: in a word, for the table)."""
    kind = "state_short" if short else "state"
    if policy.confirmed:
        when = policy.updated_at.astimezone(zone).date().isoformat() if policy.updated_at else "-"
        return t(lang, f"care.policy.{kind}.confirmed", date=when)
    if policy.source == "setting":
        return t(lang, f"care.policy.{kind}.setting")
    return t(lang, f"care.policy.{kind}.proposed")


def _every(lang: str, days: int | None, first: int | None = None) -> str:
    """How often, for the table: "every 120 days" (the rest, the rest's length and when
    the first exam falls, are on the band's card)."""
    if days is not None:
        return t(lang, "care.policy.exam_every", every=days_text(lang, days))
    if first is not None:
        return t(lang, "care.policy.exam_first", first=days_text(lang, first))
    return t(lang, "care.policy.off")


def policy_table(lang: str, policy: dict[Band, BandPolicy], zone: Any) -> str:
    """One phone screen (issue 16): a line or two a band, how often a rest and an exam
    come and whether it is confirmed; the band's button opens everything (`band_card`)."""
    lines = []
    for band in Band:
        p = policy[band]
        exam = _every(lang, p.exam_every_days, p.exam_first_days) if p.has_exam else None
        lines.append(
            t(
                lang,
                "care.policy.band_line",
                band=t(lang, f"care.band.{band}"),
                rest=_every(lang, p.rest_every_days),
                exam=exam or t(lang, "care.policy.off"),
                state=_state(lang, p, zone, short=True),
            )
        )
    return t(lang, "care.policy.title") + "\n\n" + "\n".join(lines)


def band_card(
    lang: str, band: Band, policy: BandPolicy, zone: Any
) -> tuple[str, InlineKeyboardMarkup]:
    text = t(
        lang,
        "care.policy.band_card",
        band=t(lang, f"care.band.{band}"),
        rest=_rest_value(lang, policy),
        exam=_exam_value(lang, policy),
        contents=care_texts.contents_text(lang, policy),
        state=_state(lang, policy, zone),
    )
    rows = [
        [
            (t(lang, f"care.btn.policy.{code}"), f"cs:pv:{band}:{code}")
            for code in list(POLICY_FIELDS)[i : i + 2]
        ]
        for i in range(0, len(POLICY_FIELDS), 2)
    ]
    toggles = [
        (
            ("☑️ " if code in policy.exam_contents else "⬜ ") + t(lang, f"care.content.{code}"),
            f"cs:pt:{band}:{code}",
        )
        for code in care_policy.EXAM_CONTENTS
    ]
    rows += [toggles[i : i + 2] for i in range(0, len(toggles), 2)]
    rows.append([(t(lang, "care.btn.confirm"), f"cs:pc:{band}")])
    rows.append([(t(lang, "care.btn.back"), "cs:pol")])
    return text, buttons(rows)


async def _policy(context: Context) -> dict[Band, BandPolicy]:
    override = context.settings.care_policy
    return await context.db.run(care_policy.effective_policy, override)


@guarded(Action.MANAGE_SCHEDULES)
async def carepolicy_command(update: Update, context: Context, admin: Person) -> None:
    lang = admin.language
    policy = await _policy(context)
    rows = [[(t(lang, f"care.band.{band}"), f"cs:pol:{band}")] for band in Band]
    zone = context.settings.zone
    await reply(update, policy_table(lang, policy, zone), reply_markup=buttons(rows))


@guarded(Action.MANAGE_SCHEDULES)
async def on_policy_button(update: Update, context: Context, admin: Person) -> None:
    parts = pressed(update).parts  # cs:<pol|pc|pv|pt|ps>:<band>:...
    lang = admin.language
    zone = context.settings.zone
    override = context.settings.care_policy
    db = context.db
    what = parts[1]
    if what == "pol" and len(parts) == 2:
        await answer(update.callback_query)
        rows = [[(t(lang, f"care.band.{band}"), f"cs:pol:{band}")] for band in Band]
        await edit_or_reply(update, policy_table(lang, await _policy(context), zone), buttons(rows))
        return
    band_name = parts[2] if len(parts) > 2 else ""
    if band_name not in set(Band):
        await forged(update, context, admin, Action.MANAGE_SCHEDULES)
        return
    band = Band(band_name)
    try:
        if what == "pol":
            await answer(update.callback_query)
        elif what == "pv" and len(parts) == 4 and parts[3] in POLICY_FIELDS:
            await answer(update.callback_query)
            field = POLICY_FIELDS[parts[3]]
            label = t(lang, f"care.btn.policy.{parts[3]}")
            choices = [
                (
                    t(lang, "care.policy.on_arrival")
                    if v == 0
                    else t(lang, "care.policy.days", count=v),
                    f"cs:ps:{band}:{parts[3]}:{v}",
                )
                for v in POLICY_CHOICES[field]
            ]
            rows = [choices[i : i + 3] for i in range(0, len(choices), 3)]
            if field != "rest_length_days":
                rows.append([(t(lang, "care.policy.off"), f"cs:ps:{band}:{parts[3]}:off")])
            rows.append([(t(lang, "care.btn.back"), f"cs:pol:{band}")])
            await edit_or_reply(update, t(lang, "care.policy.choose", field=label), buttons(rows))
            return
        elif what == "ps" and len(parts) == 5 and parts[3] in POLICY_FIELDS:
            field = POLICY_FIELDS[parts[3]]
            raw = parts[4]
            if raw != "off" and parse_int(raw) not in POLICY_CHOICES[field]:
                await forged(update, context, admin, Action.MANAGE_SCHEDULES)
                return
            value = None if raw == "off" else parse_int(raw)
            await db.run(care_policy.set_value, admin.telegram_id, band, field, value, override)
            await answer(update.callback_query, t(lang, "care.policy.saved"))
        elif what == "pt" and len(parts) == 4:
            await db.run(care_policy.toggle_content, admin.telegram_id, band, parts[3], override)
            await answer(update.callback_query, t(lang, "care.policy.saved"))
        elif what == "pc" and len(parts) == 3:
            await db.run(care_policy.confirm_band, admin.telegram_id, band, override)
            await answer(update.callback_query, t(lang, "care.policy.confirmed"))
        else:
            await forged(update, context, admin, Action.MANAGE_SCHEDULES)
            return
    except care_policy.PolicyError:
        await forged(update, context, admin, Action.MANAGE_SCHEDULES)
        return
    policy = (await _policy(context))[band]
    text, markup = band_card(lang, band, policy, zone)
    await edit_or_reply(update, text, markup)
    if what in {"ps", "pt", "pc"}:
        await context.timers.replan_care(None)


def build() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler("carepolicy", carepolicy_command),
        CallbackQueryHandler(on_policy_button, pattern=r"^cs:(pol|pv|ps|pt|pc)(:|$)"),
    ]
