"""Alert channels beyond Telegram: a prefecture's duty groups on WeCom or DingTalk.

The webhook URL (it carries the robot's key or access token) and DingTalk's signing secret
are credentials: stored here for admins to manage, never copied into outbox rows, never
shown or logged in full (services/duty_channels/groups.py masks them).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class Channel(StrEnum):
    """Where an outbox message goes. Everything but Telegram is sent by bot/duty_channels.py."""

    TELEGRAM = "telegram"
    WECOM = "wecom"  # a WeCom (企业微信) group robot webhook
    DINGTALK = "dingtalk"  # a DingTalk (钉钉) custom robot webhook, signed
    SMS = "sms"  # the configured HTTP SMS gateway


class DutyGroup(SQLModel, table=True):
    """A prefecture's duty group on WeCom or DingTalk: its robot receives the prefecture's
    SOS and RED alerts. One per prefecture and channel."""

    __tablename__ = "duty_group"
    __table_args__ = (UniqueConstraint("prefecture", "channel", name="uq_duty_group_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    prefecture: str = Field(max_length=24, index=True)
    channel: str = Field(max_length=10)  # wecom | dingtalk
    name: str | None = Field(default=None, max_length=100)  # e.g. 甘孜值班群
    webhook_url: str = Field(max_length=500)  # a credential
    secret: str | None = Field(default=None, max_length=200)  # DingTalk signing secret
    created_by: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_ok_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when the service refuses the robot for good (bad key, bad signature): the admins
    # are told once; cleared by the next success or when an admin sets the group again.
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failing_reason: str | None = Field(default=None, max_length=200)
