"""Duty channels (WeCom, DingTalk, SMS): a prefecture's duty groups, set by admins with
/dutygroup (`DutyGroup`, one per prefecture and service: a WeCom group robot and/or a
DingTalk custom robot), and the masking of their credentials.

Webhook URLs and secrets are credentials: shown and logged only masked (`mask_url`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from sqlmodel import Session, col, select

from models import Channel, DutyGroup, Person
from services import audit, clock
from services.i18n import t
from services.postings import load_postings

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
