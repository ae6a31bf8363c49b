"""The SOS of one caller, as two transactions (handlers/sos.py runs them, in this order):

1. `raise_sos`: the alert is stored and its first-tier messages are queued (the delivery
   worker wakes when it commits). Anyone may call: a guest gets a minimal person row.
2. `tell_cadre`: what the caller reads (help is called, what to do now, what is wrong?),
   queued at emergency priority, and the wait for their description.

An SOS stored just before a crash may have missed the second transaction:
`repair_cadre_notices` (scheduler/sos.py, at start-up) queues it then.

The caller's reply keyboard is Telegram's (handlers/sos.py builds it): it is passed in as
`keyboard(person) -> Bot API JSON`, so this module stays free of Telegram.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from models import Person, Priority
from services import clock, directory, outbox, people, state
from services.alerts import policy as alerts_policy
from services.alerts import raising, timeline
from services.i18n import t

Keyboard = Callable[[Person], dict[str, Any]]  # the caller's reply keyboard, as Bot API JSON


@dataclass(frozen=True)
class Caller:
    """Who pressed 🆘, as Telegram tells it, and what they gave the registration form."""

    telegram_id: int
    name: str
    username: str | None
    language: str
    draft: people.Draft | None


def waiting_for(what: str, **values: Any) -> dict[str, Any]:
    """What is stored (bot_state kind alerts.WAIT_KIND) while the emergency channel waits
    for a typed answer (``what``: details, note, dir...)."""
    return {"what": what, **values, "since": clock.now().isoformat()}


def what_to_do(
    session: Session,
    person: Person,
    lang: str,
    zone: ZoneInfo,
    count: int,
    head: str | None = None,
) -> list[str]:
    """What the cadre reads at once, one phone screen a message: first that help is
    called (or how their open call stands: `head`) and what to do now; then the numbers
    to call; then what to do if it may be altitude illness."""
    if head is None:
        key = "sos.help_called" if count else "sos.help_called_nobody"
        head = t(lang, key, count=count)
    numbers = directory.render_for(session, person.prefecture, lang, zone)
    area = directory.area_name(person.prefecture, lang)
    return [
        head + "\n\n" + t(lang, "sos.do_now"),
        t(lang, "sos.numbers", area=area) + "\n" + numbers,
        t(lang, "sos.altitude_steps"),
    ]


def raise_sos(
    session: Session, caller: Caller, policy: alerts_policy.Policy, update_id: int | None = None
) -> tuple[int, bool, int]:
    """The first transaction: the alert is stored and its first-tier messages are queued.
    The alert of someone who is not an active member is marked unverified. Returns the
    alert id, whether it is new, and the caller's person id. `update_id`: the update that
    called; handled a second time (services/inbox.py), it raises nothing new and the
    alert it raised counts as new."""
    person = people.record_caller(
        session, caller.telegram_id, caller.name, caller.language, caller.draft
    )
    assert person.id is not None
    existing = raising.open_alert_of(session, person.id)
    who = {"telegram_name": caller.name[:100], "username": caller.username}
    alert_id = raising.raise_alert(
        session, person_id=person.id, cause="sos", policy=policy, caller=who, update_id=update_id
    )
    new = existing is None or raising.raised_by(session, existing, update_id)
    return alert_id, new, person.id


def tell_cadre(
    session: Session,
    person_id: int,
    alert_id: int,
    new: bool,
    update_id: int,
    zone: ZoneInfo,
    keyboard: Keyboard,
) -> dict[str, Any]:
    """The second transaction: queue what the cadre reads (help is called and what to do
    now; the numbers; the first steps for altitude illness; what is wrong?) at emergency
    priority, and start waiting for their description. The
    outbox delivers it through errors and restarts; the keys hold the update id, so a
    redelivered update queues nothing twice."""
    responders, contacts = timeline.alerted_counts(session, alert_id)
    alert = alerts_policy.get(session, alert_id)
    person = session.get(Person, person_id)
    assert alert is not None and person is not None
    lang = person.language
    status = None
    if not new:
        taker = session.get(Person, alert.acknowledged_by) if alert.acknowledged_by else None
        if taker:
            status = t(lang, "sos.already_taken", id=alert_id, name=people.name_of(taker))
        elif alert.cause != "sos":  # the alert of their RED check-in: the SOS joined it
            status = t(lang, "sos.added_to_red", id=alert_id)
        else:
            status = t(lang, "sos.already_open", id=alert_id)
    now, numbers, steps = what_to_do(session, person, lang, zone, responders, status)
    told = t(lang, "sos.contacts_told", count=contacts) if contacts else None
    if alert.unverified:  # who they are matters first; the contacts go with the numbers
        now += "\n\n" + t(lang, "sos.unverified_note")
        numbers += f"\n\n{told}" if told else ""
    elif told:
        now += "\n\n" + told
    steps += "\n\n" + t(lang, "sos.ask_location_live")
    for key, body, markup in (
        ("help", now, keyboard(person)),
        ("numbers", numbers, None),
        ("steps", steps, None),
        (
            "ask",
            t(lang, "sos.ask_category"),
            outbox.inline_keyboard(_category_rows(lang, alert_id)),
        ),
    ):
        outbox.enqueue(
            session,
            chat_id=person.telegram_id,
            person_id=person.id,
            language=lang,
            priority=Priority.EMERGENCY,
            source=f"alert:{alert_id}",
            idempotency_key=f"alert:{alert_id}:{key}:{update_id}",
            text=body,
            reply_markup=markup,
        )
    waiting = waiting_for("details", alert=alert_id)
    state.put(session, alerts_policy.WAIT_KIND, str(person.telegram_id), waiting)
    return waiting


def repair_cadre_notices(session: Session, zone: ZoneInfo, keyboard: Keyboard) -> list[int]:
    """At start-up: an SOS stored just before a crash may have missed the second
    transaction (what the cadre reads); queue it now."""
    repaired = []
    for alert_id, person_id in timeline.without_cadre_notice(session):
        tell_cadre(session, person_id, alert_id, True, 0, zone, keyboard)
        repaired.append(alert_id)
    return repaired


def _category_rows(lang: str, alert_id: int) -> list[list[tuple[str, str]]]:
    return [
        [
            (t(lang, "sos.category.altitude"), f"sos:cat:{alert_id}:altitude"),
            (t(lang, "sos.category.injury"), f"sos:cat:{alert_id}:injury"),
        ],
        [
            (t(lang, "sos.category.accident"), f"sos:cat:{alert_id}:accident"),
            (t(lang, "sos.category.other"), f"sos:cat:{alert_id}:other"),
        ],
        [(t(lang, "sos.btn.cancel_alarm"), f"sos:cxl:{alert_id}")],
    ]
