"""Care schedules: the texts and buttons of a reminder, an item and a posting (every string
from the catalogs).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from models import CareKind
from services import outbox
from services.care.rules import Due, PersonFacts
from services.care_policy import BandPolicy
from services.i18n import t
from services.postings import load_postings

# ---------------------------------------------------------------------------- texts


def item_name(lang: str, kind: CareKind) -> str:
    return t(lang, "care.item.rest") if kind == CareKind.REST else t(lang, "care.item.exam")


def contents_text(lang: str, policy: BandPolicy | None) -> str:
    if policy is None or not policy.exam_contents:
        return "-"
    return t(lang, "care.list_sep").join(t(lang, f"care.content.{c}") for c in policy.exam_contents)


def posting_text(lang: str, person: PersonFacts) -> str:
    postings = load_postings()
    parts = []
    if person.prefecture and postings.prefecture(person.prefecture):
        parts.append(postings.name(person.prefecture, lang, short=True))
    if person.county and postings.county(person.county):
        parts.append(postings.name(person.county, lang))
    return " · ".join(parts) or "-"


def _compact(day: date) -> str:
    return day.strftime("%Y%m%d")


def parse_compact(raw: str) -> date | None:
    if not re.fullmatch(r"\d{8}", raw):
        return None
    try:
        return datetime.strptime(raw, "%Y%m%d").date()
    except ValueError:
        return None


def reminder_buttons(lang: str, item_id: int, due: date) -> dict[str, Any]:
    tail = f"{item_id}:{_compact(due)}"
    return outbox.inline_keyboard(
        [
            [
                (t(lang, "care.btn.done"), f"cs:d:{tail}"),
                (t(lang, "care.btn.booked"), f"cs:b:{tail}"),
            ],
            [(t(lang, "care.btn.snooze"), f"cs:z:{tail}")],
        ]
    )


def reminder_text(lang: str, due: Due, day: date, policy: BandPolicy | None) -> str:
    delta = (day - due.due).days
    if delta < 0:
        key = "care.remind.before"
    elif delta == 0:
        key = "care.remind.today"
    else:
        key = "care.remind.overdue"
    detail = _detail(lang, due.kind, policy)
    text = t(
        lang,
        key,
        item=item_name(lang, due.kind),
        due=due.due.isoformat(),
        count=abs(delta),
        detail=detail,
    )
    if due.booked_for is not None:
        text += "\n" + t(lang, "care.remind.booked", date=due.booked_for.isoformat())
    return text + "\n\n" + t(lang, "care.not_diagnosis")


def _detail(lang: str, kind: CareKind, policy: BandPolicy | None) -> str:
    if policy is None:
        return ""
    if kind == CareKind.REST:
        if policy.rest_length_days:
            return t(lang, "care.detail.rest", count=policy.rest_length_days)
        return ""
    return t(lang, "care.detail.exam", contents=contents_text(lang, policy))
