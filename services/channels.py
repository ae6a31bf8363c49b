"""Alert channels beyond Telegram: WeCom and DingTalk duty groups, and SMS.

Telegram is blocked in mainland China; duty officers work in WeCom (企业微信) and DingTalk
(钉钉). SOS and RED alerts therefore also go, in the same transaction that raises them:

* to the prefecture's duty groups: a WeCom group robot and/or a DingTalk custom robot,
  set by admins with /dutygroup (`DutyGroup`, one per prefecture and service);
* by SMS to each officer alerted who gave an SMS number with /sms (their consent), through
  the HTTP gateway of CADRE_SMS_URL.

Each is an outbox row with ``channel`` wecom / dingtalk / sms and ``target`` naming the
duty group or person: the webhook URL, the signing secret and the number are read when the
message is sent (bot/channels.py), never copied into the row. Outcomes are recorded like
Telegram's, so the alert's timeline shows each channel's. Texts are plain and short (an
SMS segment is 70 Chinese characters): who, where, altitude, what, phone, alert number and
how to acknowledge, which stays in Telegram (a t.me link that acknowledges).

Webhook URLs and secrets are credentials: shown and logged only masked (`mask_url`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import text, update
from sqlmodel import Session, col, select

from config import Settings
from models import (
    Alert,
    AlertStatus,
    Channel,
    DutyGroup,
    OutboxMessage,
    OutboxStatus,
    OutcomeCode,
    Person,
    Priority,
    Role,
    Status,
)
from models.outbox import CHANNEL_ROWS
from services import audit, clock, outbox, state
from services.i18n import DEFAULT_LANGUAGE, plain_text, t
from services.people import name_of, posting_text
from services.postings import load_postings
from services.validation import InvalidInput, parse_phone

log = logging.getLogger(__name__)

GROUP_CHANNELS = (Channel.WECOM, Channel.DINGTALK)
CHANNEL_WORDS = {  # what an admin may type for a service
    "wecom": Channel.WECOM,
    "wechatwork": Channel.WECOM,
    "企业微信": Channel.WECOM,
    "企微": Channel.WECOM,
    "dingtalk": Channel.DINGTALK,
    "钉钉": Channel.DINGTALK,
}
# The query parameter that carries each robot's credential.
CREDENTIAL_PARAM = {Channel.WECOM: "key", Channel.DINGTALK: "access_token"}
MAX_NAME = 100
_FAILING = "channel_failing"  # bot_state kind: a channel refusing for good (key "sms")
SMS_ROLES = (Role.DUTY_OFFICER, Role.ADMIN)  # the people alerts are sent to for action


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


# ---------------------------------------------------------------------------- masking


def mask_secret(value: str | None, keep: int = 4) -> str:
    """``693a…5aaa``: enough to recognise a key, not to use it."""
    if not value:
        return "-"
    if len(value) <= keep * 2 + 2:
        return value[:2] + "…"
    return f"{value[:keep]}…{value[-keep:]}"


def mask_url(url: str | None) -> str:
    """A webhook URL with its key or token masked and nothing else of the query."""
    if not url:
        return "-"
    parts = urlsplit(url)
    shown = [
        f"{name}={mask_secret(value)}"
        for name, value in parse_qsl(parts.query)
        if name in ("key", "access_token")
    ]
    query = ("?" + "&".join(shown)) if shown else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}{query}"


def mask_phone(phone: str | None) -> str:
    """``+86…1234``."""
    if not phone:
        return "-"
    digits = phone.lstrip("+")
    prefix = "+86" if phone.startswith("+86") else ("+" if phone.startswith("+") else "")
    return f"{prefix}…{digits[-4:]}"


def national_number(phone: str) -> str:
    """The number without +86 (what WeCom and DingTalk @mentions and most Chinese gateways
    expect); other numbers as digits with their country code."""
    return phone[3:] if phone.startswith("+86") else phone.lstrip("+")


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with every secret in it masked (error messages may quote a URL)."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, mask_secret(secret))
    return text


# ---------------------------------------------------------------------------- duty groups


def prefecture_name(code: str, lang: str) -> str:
    postings = load_postings()
    return postings.name(code, lang, short=True) if postings.prefecture(code) else code


def find_prefecture(word: str) -> str | None:
    """A prefecture code from its code or its Chinese or English name (short or full)."""
    postings = load_postings()
    lowered = word.strip().lower()
    for prefecture in postings.prefectures():
        names = {
            prefecture.code,
            postings.name(prefecture.code, "zh-Hans"),
            postings.name(prefecture.code, "zh-Hans", short=True),
            postings.name(prefecture.code, "en"),
            postings.name(prefecture.code, "en", short=True),
        }
        if lowered in {n.lower() for n in names} or lowered + "州" in names:
            return prefecture.code
    return None


def group_label(group: DutyGroup, lang: str) -> str:
    """``WeCom group 甘孜值班群`` (or the prefecture's name when the group has none)."""
    name = group.name or t(
        lang, "channels.group.unnamed", area=prefecture_name(group.prefecture, lang)
    )
    return t(lang, f"channels.label.{group.channel}", name=name)


def list_groups(session: Session) -> list[DutyGroup]:
    return list(
        session.exec(select(DutyGroup).order_by(col(DutyGroup.prefecture), col(DutyGroup.channel)))
    )


def groups_of(session: Session, prefecture: str | None) -> list[DutyGroup]:
    if not prefecture:
        return []
    return list(
        session.exec(
            select(DutyGroup)
            .where(DutyGroup.prefecture == prefecture)
            .order_by(col(DutyGroup.channel))
        )
    )


@dataclass
class GroupRequest:
    """`/dutygroup set ...` understood: which prefecture, service, URL, secret and name."""

    prefecture: str | None = None
    channel: Channel | None = None
    url: str | None = None
    secret: str | None = None
    name: str | None = None


def parse_set(words: list[str]) -> GroupRequest:
    """Read ``<prefecture> wecom|dingtalk <webhook URL> [secret] [group name]`` in any
    order: the URL starts with http, DingTalk's secret with SEC (or follows the URL), the
    service and prefecture are recognised by name, and the rest is the group's name."""
    request = GroupRequest()
    rest: list[str] = []
    after_url = False
    for word in words:
        lowered = word.lower()
        if request.url is None and re.match(r"^https?://", lowered):
            request.url, after_url = word, True
            continue
        if request.channel is None and lowered in CHANNEL_WORDS:
            request.channel = CHANNEL_WORDS[lowered]
        elif request.prefecture is None and find_prefecture(word):
            request.prefecture = find_prefecture(word)
        elif request.secret is None and (word.startswith("SEC") and len(word) > 20):
            request.secret = word
        elif (
            request.secret is None
            and after_url
            and request.channel == Channel.DINGTALK
            and re.fullmatch(r"[A-Za-z0-9+/=_-]{16,}", word)
        ):
            request.secret = word
        else:
            rest.append(word)
        after_url = False
    name = " ".join(rest).strip()
    request.name = name[:MAX_NAME] or None
    return request


def check_request(request: GroupRequest) -> str | None:
    """A catalog key explaining what is wrong with `request`, or None."""
    if request.prefecture is None:
        return "channels.set.no_prefecture"
    if request.channel is None:
        return "channels.set.no_channel"
    if request.url is None:
        return "channels.set.no_url"
    parts = urlsplit(request.url)
    param = CREDENTIAL_PARAM[request.channel]
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "channels.set.bad_url"
    if not dict(parse_qsl(parts.query)).get(param):
        return f"channels.set.bad_url_{request.channel}"
    if len(request.url) > 500 or (request.secret and len(request.secret) > 200):
        return "channels.set.too_long"
    return None


def set_group(session: Session, actor: Person, request: GroupRequest) -> DutyGroup:
    """Store (or replace) the prefecture's duty group on that service. Audited without
    the URL or secret."""
    assert request.prefecture and request.channel and request.url
    group = session.exec(
        select(DutyGroup).where(
            DutyGroup.prefecture == request.prefecture, DutyGroup.channel == request.channel
        )
    ).first()
    now = clock.now()
    if group is None:
        group = DutyGroup(
            prefecture=request.prefecture,
            channel=request.channel,
            webhook_url=request.url,
            created_by=actor.id,
            created_at=now,
        )
    group.webhook_url = request.url
    group.secret = request.secret if request.channel == Channel.DINGTALK else None
    group.name = request.name or group.name
    group.updated_at = now
    group.failing_since = None
    group.failing_reason = None
    session.add(group)
    session.flush()
    audit.record(
        session,
        "dutygroup.set",
        actor=actor.telegram_id,
        target_person_id=actor.id,
        group=group.id,
        prefecture=group.prefecture,
        channel=group.channel,
        signed=bool(group.secret),
    )
    return group


def remove_group(session: Session, actor: Person, group_id: int) -> DutyGroup | None:
    group = session.get(DutyGroup, group_id)
    if group is None:
        return None
    session.delete(group)
    audit.record(
        session,
        "dutygroup.removed",
        actor=actor.telegram_id,
        target_person_id=actor.id,
        group=group_id,
        prefecture=group.prefecture,
        channel=group.channel,
    )
    return group


TEST_SOURCE = "dgtest:"  # source of test messages: dgtest:<admin or officer id>

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


def is_test(message: ChannelMessage) -> bool:
    return (message.source or "").startswith(TEST_SOURCE)


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
        text=_plain(text),
        payload={"label": _plain(group_label(group, lang))},
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
        text=_plain(t(lang, "channels.sms.test_text")),
        payload={"label": t(lang, "channels.label.sms", phone=mask_phone(person.sms_phone))},
        priority=Priority.URGENT,
        idempotency_key=f"dgtest:sms:{person.id}:{stamp}",
        source=f"{TEST_SOURCE}{person.id}",
        language=lang,
    )


# ---------------------------------------------------------------------------- SMS numbers


def may_have_sms(person: Person) -> bool:
    return person.status == Status.ACTIVE and person.role in SMS_ROLES


def set_sms(session: Session, person: Person, raw: str) -> Person:
    """The person's own number for alert texts (their consent, timestamped). Raises
    InvalidInput for a number that is not one."""
    phone = parse_phone(raw)
    person = session.get(Person, person.id) or person
    person.sms_phone = phone
    person.sms_consented_at = clock.now()
    session.add(person)
    audit.record(session, "sms.set", actor=person.telegram_id, target_person_id=person.id)
    return person


def clear_sms(session: Session, person: Person) -> Person:
    person = session.get(Person, person.id) or person
    person.sms_phone = None
    person.sms_consented_at = None
    session.add(person)
    audit.record(session, "sms.cleared", actor=person.telegram_id, target_person_id=person.id)
    return person


# ---------------------------------------------------------------------------- alert texts


def _plain(text: str) -> str:
    """Catalog output (Telegram HTML, values escaped) as the plain text these services
    show."""
    return plain_text(text)


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
    where = _plain(posting_text(cadre, lang))
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
    return _plain("\n".join(lines) if not short else "".join(lines))


def alert_round(
    session: Session, alert: Alert, responders: list[Person], config: ChannelConfig
) -> int:
    """Queue one notification round of `alert` on every channel besides Telegram: the
    prefecture's duty groups and the SMS numbers of the responders of this round, all at
    emergency priority. Returns how many messages were queued."""
    stage = alert.stage
    queued = 0
    mentions = [national_number(p.sms_phone) for p in responders if p.sms_phone]
    group_lang = config.default_language
    group_text: str | None = None
    for group in groups_of(session, alert.prefecture):
        group_text = group_text or alert_text(
            session, alert, group_lang, stage=stage, short=False, config=config
        )
        outbox.enqueue(
            session,
            chat_id=0,
            channel=group.channel,
            target=f"duty_group:{group.id}",
            text=group_text,
            payload={
                "mentions": mentions,
                "label": _plain(group_label(group, group_lang)),
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
            texts[lang] = alert_text(session, alert, lang, stage=stage, short=True, config=config)
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
            text=_plain(t(lang, f"channels.update.{what}", **values)),
            payload={"label": _plain(group_label(group, lang))},
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


# ---------------------------------------------------------------------------- the worker's side


@dataclass
class ChannelMessage:
    """A message the channel worker has taken (status ``sending``)."""

    id: int
    channel: str
    target: str | None
    priority: int
    payload: dict[str, Any]
    attempts: int
    source: str | None
    person_id: int | None

    @property
    def endpoint(self) -> str:
        """Who limits the rate: one duty group's robot, or the SMS gateway."""
        return "sms" if self.channel == Channel.SMS else str(self.target)


_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]


def recover_interrupted(session: Session) -> int:
    """At start-up: channel messages left ``sending`` by a crash are sent again."""
    result = session.execute(
        update(_TABLE)
        .where(text(CHANNEL_ROWS), _TABLE.c.status == OutboxStatus.SENDING.value)
        .values(
            status=OutboxStatus.PENDING.value,
            next_attempt_at=clock.now(),
            outcome_code=OutcomeCode.RESTART.value,
            outcome="the bot stopped while sending: outcome unknown, sending again",
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim_due(session: Session, limit: int) -> list[ChannelMessage]:
    """Take up to `limit` due channel messages, most urgent first (status ``sending``)."""
    if limit <= 0:
        return []
    due = select(_TABLE.c.id).where(
        text(CHANNEL_ROWS),  # literally the partial index's condition, so that it is used
        _TABLE.c.status == OutboxStatus.PENDING.value,
        _TABLE.c.next_attempt_at <= clock.now(),
    )
    # Usually there is nothing: find out with a read, so that this once-a-second check
    # never takes SQLite's write lock from the Telegram worker.
    if session.execute(due.limit(1)).first() is None:
        return []
    chosen = due.order_by(_TABLE.c.priority, _TABLE.c.next_attempt_at, _TABLE.c.id).limit(limit)
    rows = outbox.mark_sending(
        session,
        chosen,
        _TABLE.c.id,
        _TABLE.c.channel,
        _TABLE.c.target,
        _TABLE.c.priority,
        _TABLE.c.payload,
        _TABLE.c.attempts,
        _TABLE.c.source,
        _TABLE.c.person_id,
    )
    claimed = [ChannelMessage(*row) for row in rows]
    claimed.sort(key=lambda m: (m.priority, m.id))
    return claimed


@dataclass
class Destination:
    """Where a claimed message goes, read from the stored settings when it is sent."""

    channel: str
    url: str | None = None  # the robot's webhook (a credential)
    secret: str | None = None  # DingTalk's signing secret
    phone: str | None = None  # an SMS number
    group_id: int | None = None
    problem: str | None = None  # why it cannot be sent (removed, SMS switched off...)
    cancelled: str | None = None  # why it need not be sent any more


def destination(session: Session, message: ChannelMessage, sms_enabled: bool) -> Destination:
    kind, _, raw_id = (message.target or "").partition(":")
    found = Destination(message.channel)
    alert_id = (message.payload or {}).get("alert")
    if alert_id:
        alert = session.get(Alert, int(alert_id))
        if alert is not None and alert.status != AlertStatus.OPEN:
            found.cancelled = f"alert #{alert_id} was {alert.status} before this was sent"
            return found
    if kind == "duty_group" and raw_id.isdigit():
        group = session.get(DutyGroup, int(raw_id))
        if group is None or group.channel != message.channel:
            found.problem = "the duty group was removed"
            return found
        found.url, found.secret, found.group_id = group.webhook_url, group.secret, group.id
    elif kind == "person" and raw_id.isdigit():
        person = session.get(Person, int(raw_id))
        if person is None or not person.sms_phone:
            found.problem = "no SMS number any more"
        elif not sms_enabled:
            found.problem = "the SMS gateway is not configured"
        else:
            found.phone = person.sms_phone
    else:
        found.problem = f"unknown target {message.target!r}"
    return found


@dataclass
class Result:
    """What became of one attempt at a channel message."""

    message: ChannelMessage
    status: OutboxStatus
    code: OutcomeCode
    detail: str | None = None
    retry_at: datetime | None = None
    group_id: int | None = None
    at: datetime = field(default_factory=clock.now)


def record(session: Session, results: list[Result]) -> None:
    """Write outcomes like Telegram's (outbox.record_outcomes: the alert timeline and its
    hooks), keep each duty group's health, and tell the admins once when a channel starts
    refusing for good."""
    outbox.record_outcomes(
        session,
        [
            outbox.Outcome(
                id=r.message.id,
                chat_id=0,
                status=r.status,
                code=r.code,
                detail=r.detail,
                person_id=r.message.person_id,
                source=r.message.source,
                retry_at=r.retry_at,
                at=r.at,
            )
            for r in results
        ],
    )
    for result in results:
        _channel_health(session, result)


def _channel_health(session: Session, result: Result) -> None:
    sent = result.status == OutboxStatus.SENT
    refused = result.status == OutboxStatus.FAILED and (
        result.code == OutcomeCode.REFUSED
        or (result.code == OutcomeCode.GAVE_UP and is_test(result.message))
    )
    if result.message.channel == Channel.SMS:
        failing = state.load_all(session, _FAILING).get("sms")
        if sent and failing:
            state.drop(session, _FAILING, "sms")
        elif refused and not failing:
            state.put(
                session,
                _FAILING,
                "sms",
                {"since": result.at.isoformat(), "reason": (result.detail or "-")[:200]},
            )
            _tell_admins(session, "sms", None, result.detail or "-", result.at)
        return
    if result.group_id is None or not (sent or refused):
        return
    group = session.get(DutyGroup, result.group_id)
    if group is None:
        return
    if sent:
        group.last_ok_at = result.at
        group.failing_since = None
        group.failing_reason = None
    elif group.failing_since is None:
        group.failing_since = result.at
        group.failing_reason = (result.detail or "-")[:200]
        _tell_admins(session, f"g{group.id}", group, group.failing_reason, result.at)
    session.add(group)


def _tell_admins(
    session: Session, key: str, group: DutyGroup | None, reason: str, at: datetime
) -> None:
    """One notice per admin when a channel starts refusing (a bad key, say)."""
    admins = session.exec(
        select(Person).where(Person.role == Role.ADMIN, Person.status == Status.ACTIVE)
    ).all()
    stamp = int(at.timestamp())
    for admin in admins:
        lang = admin.language
        if group is not None:
            text = t(lang, "channels.failing.group", label=group_label(group, lang), reason=reason)
        else:
            text = t(lang, "channels.failing.sms", reason=reason)
        outbox.enqueue_to(
            session,
            admin,
            text=text,
            priority=Priority.URGENT,
            idempotency_key=f"chfail:{key}:{stamp}:{admin.id}",
            source="channels:failing",
        )


def sms_failing(session: Session) -> dict[str, Any] | None:
    return state.load_all(session, _FAILING).get("sms")


def on_test_outcomes(session: Session, outcomes: list[outbox.Outcome]) -> None:
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


def sms_body(template: str, phone: str, text: str) -> tuple[str, str]:
    """The SMS gateway's request body and its content type: a JSON template gets its
    values JSON-escaped, anything else is taken as form fields (values URL-encoded)."""
    from urllib.parse import quote_plus

    values = {"{phone}": phone, "{phone_national}": national_number(phone), "{text}": text}
    probe = template
    for placeholder in values:
        probe = probe.replace(placeholder, "x")
    try:
        json.loads(probe)
        is_json = True
    except ValueError:
        is_json = False
    body = template
    for placeholder, value in values.items():
        escaped = json.dumps(value, ensure_ascii=False)[1:-1] if is_json else quote_plus(value)
        body = body.replace(placeholder, escaped)
    kind = "application/json" if is_json else "application/x-www-form-urlencoded"
    return body, kind


def invalid_phone_key(raw: str) -> str | None:
    try:
        parse_phone(raw)
    except InvalidInput as exc:
        return exc.key
    return None
