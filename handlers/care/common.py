"""What the care rooms share: the settings they read, forged buttons, care errors."""

from __future__ import annotations

from telegram import Update

from handlers.common import Context, answer, refuse_forged, reply
from models import Person
from services.care.rules import CareConfig, CareError
from services.i18n import t
from services.oxygen import OxygenConfig
from services.permissions import Action

# ---------------------------------------------------------------------------- helpers


def care_config(context: Context) -> CareConfig:
    return CareConfig.from_settings(context.settings)


def oxygen_config(context: Context) -> OxygenConfig:
    return OxygenConfig.from_settings(context.settings)


async def forged(update: Update, context: Context, person: Person, action: Action) -> None:
    """A button that names someone else's item, or data no button of ours carries: the
    care buttons' own answer (care.forged) to `refuse_forged`."""
    await refuse_forged(update, context, person, action, "care.forged")


async def care_error(update: Update, context: Context, person: Person, error: CareError) -> None:
    if error.key == "care.forged":
        await forged(update, context, person, Action.OWN_DATA)
        return
    text = t(person.language, error.key, **error.values)
    if update.callback_query is not None:
        await answer(update.callback_query, text, alert=True)
    else:
        await reply(update, text)


def days_text(lang: str, days: int | None) -> str:
    """ "90 days" ("1 day"), or "-" when the policy has no value."""
    return t(lang, "care.policy.days", count=days) if days is not None else "-"


def hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
