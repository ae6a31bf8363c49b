"""Duty channels: test messages (an admin's /dutygroup test, an officer's /sms test), what
their outcomes tell the person who asked, and why a channel failed, in words.
"""

from __future__ import annotations

from sqlmodel import Session

from models import Channel, DutyGroup, OutboxMessage, OutboxStatus, Person, Priority
from services import clock, outbox
from services.duty_channels.groups import group_label, mask_phone, prefecture_name
from services.duty_channels.worker import TEST_SOURCE
from services.i18n import plain_text, t
from services.outbox.outcomes import Outcome

# What a failed send's detail means, for the person who has to fix it (checked in order).
_WHY = (
    (
        "dns",
        (
            "DNSError",
            "Name or service not known",
            "name resolution",
            "nodename nor servname",
            "getaddrinfo",
            "No address associated",
        ),
    ),
    ("tls", ("SSL", "certificate", "Certificate")),
    (
        "connect",
        (
            "ClientConnectorError",
            "Connection refused",
            "ClientOSError",
            "ServerDisconnected",
            "Cannot connect",
        ),
    ),
    ("timeout", ("timed out", "Timeout")),
    ("url", ("InvalidURL", "InvalidUrl", "ValueError")),
    (
        "key",
        (
            "errcode 93000",
            "errcode 300001",
            "errcode 310000",
            "errcode 400",
            "HTTP 401",
            "HTTP 403",
        ),
    ),
    ("http4", ("HTTP 404", "HTTP 405", "HTTP 400")),
    ("busy", ("HTTP 5", "errcode -1", "errcode 45009", "errcode 130101", "errcode 410100")),
)


def why(detail: str | None, lang: str) -> str:
    """A failed send's detail with what to do about it: ``host not found: check the
    webhook URL (ClientConnectorDNSError: …)``."""
    text = detail or "-"
    for key, marks in _WHY:
        if any(mark in text for mark in marks):
            return t(lang, f"channels.why.{key}", detail=text)
    return text


def queue_test(session: Session, actor: Person, group_id: int, lang: str) -> OutboxMessage | None:
    """A test message to the group, in `lang` (the groups' language, CADRE_DEFAULT_LANGUAGE);
    the admin is told its outcome (`on_test_outcomes`)."""
    group = session.get(DutyGroup, group_id)
    if group is None:
        return None
    text = t(lang, "channels.test.text", area=prefecture_name(group.prefecture, lang))
    stamp = clock.now().strftime("%Y%m%d%H%M%S%f")
    return outbox.enqueue(
        session,
        chat_id=0,
        channel=group.channel,
        target=f"duty_group:{group.id}",
        text=plain_text(text),
        payload={"label": plain_text(group_label(group, lang))},
        priority=Priority.URGENT,
        idempotency_key=f"dgtest:{group.id}:{stamp}",
        source=f"{TEST_SOURCE}{actor.id}",
        language=lang,
    )


def queue_sms_test(session: Session, person: Person, sms_enabled: bool) -> OutboxMessage | None:
    """A test SMS to the person's own alert number; they are told its outcome. Nothing
    without an SMS gateway (`sms_enabled`: CADRE_SMS_URL is set)."""
    if not person.sms_phone or not sms_enabled:
        return None
    lang = person.language
    stamp = clock.now().strftime("%Y%m%d%H%M%S%f")
    return outbox.enqueue(
        session,
        chat_id=0,
        channel=Channel.SMS,
        target=f"person:{person.id}",
        person_id=person.id,
        text=plain_text(t(lang, "channels.sms.test_text")),
        payload={"label": t(lang, "channels.label.sms", phone=mask_phone(person.sms_phone))},
        priority=Priority.URGENT,
        idempotency_key=f"dgtest:sms:{person.id}:{stamp}",
        source=f"{TEST_SOURCE}{person.id}",
        language=lang,
    )


def on_test_outcomes(session: Session, outcomes: list[Outcome]) -> None:
    """The admin who pressed Test hears how it went (sent, or refused and why)."""
    for outcome in outcomes:
        if outcome.status not in (OutboxStatus.SENT, OutboxStatus.FAILED):
            continue
        admin_id = (outcome.source or "").partition(":")[2]
        admin = session.get(Person, int(admin_id)) if admin_id.isdigit() else None
        row = session.get(OutboxMessage, outcome.id)
        if admin is None or row is None:
            continue
        lang = admin.language
        label = str((row.payload or {}).get("label") or "-")
        if outcome.status == OutboxStatus.SENT:
            text = t(lang, "channels.test.ok", label=label)
        else:
            text = t(lang, "channels.test.failed", label=label, reason=why(outcome.detail, lang))
        outbox.enqueue_to(
            session,
            admin,
            text=text,
            priority=Priority.URGENT,
            idempotency_key=f"dgtest:told:{outcome.id}",
            source="channels:test",
        )
