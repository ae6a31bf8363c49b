"""The health settings that the services need, in one object built from Settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from zoneinfo import ZoneInfo

from config import Settings
from services.health.thresholds import DEFAULT, ThresholdError, Thresholds, load


def check(settings: Settings) -> None:
    """Refuse health settings the rules do not know: CADRE_HEALTH_THRESHOLDS with an unknown
    name, a non-number or rules that contradict each other (a typo must not silently switch
    a rule off). Raises ValueError naming the setting; `cadre-bot` checks at start-up."""
    try:
        load(settings.health_thresholds)
    except ThresholdError as exc:
        raise ValueError(f"health_thresholds: {exc}") from exc


def parse_hhmm(value: str) -> time:
    hour, minute = value.split(":")
    return time(int(hour), int(minute))


@dataclass(frozen=True)
class HealthConfig:
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    thresholds: Thresholds = DEFAULT
    reminder_time: time = time(9, 0)
    second_time: time = time(19, 0)
    nudge_after_hours: float = 3
    cutoff_after_hours: float = 9
    close_monitoring_days: int = 5
    retention_days: int = 90
    outbox_sent_days: int = 30  # sent payloads' text is cleared after this (erasure.py)
    quiet_start: time = time(22, 0)  # AMBER rechecks are not sent at night...
    quiet_end: time = time(7, 0)  # ...unless the latest recheck time falls there

    @classmethod
    def from_settings(cls, settings: Settings) -> HealthConfig:
        return cls(
            zone=settings.zone,
            thresholds=load(settings.health_thresholds),
            reminder_time=parse_hhmm(settings.health_reminder_time),
            second_time=parse_hhmm(settings.health_second_time),
            nudge_after_hours=min(
                settings.health_nudge_after_hours, settings.health_cutoff_after_hours - 0.25
            ),
            cutoff_after_hours=settings.health_cutoff_after_hours,
            close_monitoring_days=settings.health_close_monitoring_days,
            retention_days=settings.health_retention_days,
            outbox_sent_days=settings.outbox_sent_retention_days,
        )
