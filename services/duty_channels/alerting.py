"""Alert channels beyond Telegram: WeCom and DingTalk duty groups, and SMS.

Telegram is blocked in mainland China; duty officers work in WeCom (企业微信) and DingTalk
(钉钉). SOS and RED alerts therefore also go, in the same transaction that raises them:

* to the prefecture's duty groups: a WeCom group robot and/or a DingTalk custom robot,
  set by admins with /dutygroup (services.duty_channels.groups);
* by SMS to each officer alerted who gave an SMS number with /sms (their consent), through
  the HTTP gateway of CADRE_SMS_URL (services.duty_channels.sms).

Each is an outbox row with ``channel`` wecom / dingtalk / sms and ``target`` naming the
duty group or person: the webhook URL, the signing secret and the number are read when the
message is sent (bot/duty_channels.py, services.duty_channels.worker), never copied into
the row. Outcomes are recorded like Telegram's, so the alert's timeline shows each
channel's. Texts are plain and short (an SMS segment is 70 Chinese characters): who, where,
altitude, what, phone, alert number and how to acknowledge, which stays in Telegram (a
t.me link that acknowledges). This module: those texts and the rows of an alert's rounds
and updates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from config import Settings
from models import Alert, Channel, DutyGroup, OutboxMessage, OutboxStatus, Person, Priority
from services import clock, outbox
from services.duty_channels.groups import (
    GROUP_CHANNELS,
    group_label,
    groups_of,
    mask_phone,
    national_number,
)
from services.duty_channels.sms import may_have_sms
from services.i18n import DEFAULT_LANGUAGE, plain_text, t
from services.people import name_of, posting_text


@dataclass(frozen=True)
class ChannelConfig:
    """What an alert's messages on these channels need: the bot's username (the t.me
    acknowledgement link, known once the bot has started), whether SMS is configured, the
    duty groups' language and the time zone of the texts. services.alerts.Policy carries
    one; the functions below take it as an argument."""

    bot_username: str | None = None
    sms_enabled: bool = False
    default_language: str = DEFAULT_LANGUAGE
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))

    @classmethod
    def from_settings(cls, settings: Settings, bot_username: str | None = None) -> ChannelConfig:
        return cls(
            bot_username=bot_username,
            sms_enabled=settings.sms_enabled,
            default_language=settings.default_language,
            zone=settings.zone,
        )


# ---------------------------------------------------------------------------- alert texts


def ack_hint(alert_id: int, lang: str, bot_username: str | None) -> str:
    """How to acknowledge: a t.me link that acknowledges (for an officer of the area),
    else the button to press in cadre-bot."""
    if bot_username:
        link = f"https://t.me/{bot_username}?start=ack_{alert_id}"
        return t(lang, "channels.alert.ack_link", link=link)
    return t(lang, "channels.alert.ack_open", button=t(lang, "sos.btn.ack"))


def alert_text(
    session: Session, alert: Alert, lang: str, *, stage: int, short: bool, config: ChannelConfig
) -> str:
    """The alert for a duty group (`short` False: time and location too) or an SMS."""
    cadre = session.get(Person, alert.person_id)
    assert cadre is not None
    where = plain_text(posting_text(cadre, lang))
    if alert.category:
        what = t(lang, f"channels.what.{alert.category}")
    else:
        what = t(
            lang, "channels.what.red" if alert.cause == "checkin_red" else "channels.what.unknown"
        )
    key = "channels.alert.red" if alert.cause == "checkin_red" else "channels.alert.sos"
    values = {
        "id": alert.id,
        "name": name_of(cadre),
        "where": where,
        "what": what,
        "phone": cadre.phone or "-",
    }
    lines = [t(lang, key, **values)]
    if stage > 1:
        lines.insert(0, t(lang, "channels.alert.escalated", stage=stage))
    if not short:
        zone = config.zone
        lines.append(
            t(
                lang,
                "channels.alert.time",
                time=alert.created_at.astimezone(zone).strftime("%m-%d %H:%M"),
            )
        )
        if alert.latitude is not None and alert.longitude is not None:
            lines.append(
                t(
                    lang,
                    "channels.alert.location",
                    lat=f"{alert.latitude:.5f}",
                    lon=f"{alert.longitude:.5f}",
                )
            )
    lines.append(ack_hint(alert.id or 0, lang, config.bot_username))
    return plain_text("\n".join(lines) if not short else "".join(lines))


def alert_round(
    session: Session,
    alert: Alert,
    responders: list[Person],
    config: ChannelConfig,
    *,
    escalated: bool = False,
) -> int:
    """Queue one notification round of `alert` on every channel besides Telegram: the
    prefecture's duty groups and the SMS numbers of the responders of this round, all at
    emergency priority. Returns how many messages were queued. `escalated`: the round
    follows one nobody took (the texts say so); the first round of an unverified caller's
    alert, or of one raised while nobody was on duty, starts at stage 2 without being one."""
    stage = alert.stage
    shown_stage = stage if escalated else 1
    queued = 0
    mentions = [national_number(p.sms_phone) for p in responders if p.sms_phone]
    group_lang = config.default_language
    group_text: str | None = None
    for group in groups_of(session, alert.prefecture):
        group_text = group_text or alert_text(
            session, alert, group_lang, stage=shown_stage, short=False, config=config
        )
        outbox.enqueue(
            session,
            chat_id=0,
            channel=group.channel,
            target=f"duty_group:{group.id}",
            text=group_text,
            payload={
                "mentions": mentions,
                "label": plain_text(group_label(group, group_lang)),
                "alert": alert.id,
            },
            priority=Priority.EMERGENCY,
            idempotency_key=f"alert:{alert.id}:g{stage}:{group.id}",
            source=f"alert:{alert.id}",
            language=group_lang,
        )
        queued += 1
    if not config.sms_enabled:
        return queued
    texts: dict[str, str] = {}
    for person in responders:
        if not person.sms_phone or not may_have_sms(person):
            continue
        lang = person.language
        if lang not in texts:
            texts[lang] = alert_text(
                session, alert, lang, stage=shown_stage, short=True, config=config
            )
        outbox.enqueue(
            session,
            chat_id=0,
            person_id=person.id,
            channel=Channel.SMS,
            target=f"person:{person.id}",
            text=texts[lang],
            payload={"label": mask_phone(person.sms_phone), "alert": alert.id},
            priority=Priority.EMERGENCY,
            idempotency_key=f"alert:{alert.id}:s{stage}:{person.id}",
            source=f"alert:{alert.id}",
            language=lang,
        )
        queued += 1
    return queued


def alert_update(
    session: Session, alert: Alert, what: str, actor: Person | None, config: ChannelConfig
) -> int:
    """Tell the duty groups the alert reached that it was taken, resolved or cancelled, so
    nobody else in the group sets out. Returns how many notices were queued."""
    lang = config.default_language
    reached = session.exec(
        select(OutboxMessage.target).where(
            OutboxMessage.source == f"alert:{alert.id}",
            col(OutboxMessage.channel).in_([c.value for c in GROUP_CHANNELS]),
            col(OutboxMessage.status).in_([OutboxStatus.SENT, OutboxStatus.SENDING]),
            col(OutboxMessage.idempotency_key).startswith(f"alert:{alert.id}:g"),
        )
    ).all()
    ids = {int(target.split(":")[1]) for target in reached if target}
    zone = config.zone
    values = {
        "id": alert.id,
        "name": name_of(actor) if actor else "-",
        "time": clock.now().astimezone(zone).strftime("%H:%M"),
        "outcome": t(lang, f"sos.outcome.{alert.outcome}") if alert.outcome else "-",
    }
    queued = 0
    for group_id in sorted(ids):
        group = session.get(DutyGroup, group_id)
        if group is None:
            continue
        outbox.enqueue(
            session,
            chat_id=0,
            channel=group.channel,
            target=f"duty_group:{group.id}",
            text=plain_text(t(lang, f"channels.update.{what}", **values)),
            payload={"label": plain_text(group_label(group, lang))},
            priority=Priority.EMERGENCY,
            idempotency_key=f"alert:{alert.id}:{what}:g{group.id}",
            source=f"alert:{alert.id}",
            language=lang,
        )
        queued += 1
    return queued


def timeline_text(row: OutboxMessage, lang: str) -> tuple[datetime, str] | None:
    """A channel message of an alert, as a line of its timeline: ``delivered to WeCom
    group 甘孜值班群``, ``SMS to +86…1234 failed: …``."""
    if row.channel == Channel.TELEGRAM:
        return None
    label = str((row.payload or {}).get("label") or row.target or "-")
    to = label if row.channel != Channel.SMS else t(lang, "channels.label.sms", phone=label)
    if row.status == OutboxStatus.SENT and row.sent_at:
        return row.sent_at, t(lang, "channels.tl.delivered", to=to)
    if row.status == OutboxStatus.FAILED:
        reason = row.outcome or row.outcome_code or "-"
        when = row.next_attempt_at or row.created_at
        return when, t(lang, "channels.tl.failed", to=to, reason=str(reason)[:120])
    if row.status == OutboxStatus.CANCELLED:
        return row.next_attempt_at or row.created_at, t(lang, "channels.tl.cancelled", to=to)
    reason = f": {row.outcome}" if row.outcome else ""
    return row.created_at, t(
        lang, "channels.tl.pending", to=to, attempts=row.attempts, reason=reason[:120]
    )
