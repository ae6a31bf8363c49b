"""The altitude-band care policy: how often and how long a low-altitude rest is due, and how
often a physical examination is due, per posting altitude band.

No public rule fixes these intervals (see docs/care.md and the domain note on health): the
defaults below are PROPOSALS, shown as such until an administrator confirms or changes
them. Three layers, each overriding the one before:

1. ``DEFAULT_POLICY`` in this module (documented in docs/care.md);
2. the ``CADRE_CARE_POLICY`` setting (JSON, per band and field), for operators;
3. the ``care_policy`` table, written by admins with ``/carepolicy`` in the bot.

Postings at low altitude (Zhejiang, the training/study direction) have no schedule at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from sqlmodel import Session, select

from config.settings import CARE_BANDS, CARE_LIMITS, EXAM_CONTENTS, CarePolicyOverride
from models import CarePolicyBand
from services import audit, clock

__all__ = [
    "CARE_LIMITS",
    "DEFAULT_POLICY",
    "EXAM_CONTENTS",
    "Band",
    "BandPolicy",
    "PolicyError",
    "band_for_altitude",
    "confirm_band",
    "effective_policy",
    "set_value",
    "toggle_content",
]


class Band(StrEnum):
    LOW = "low"  # below 2,500 m
    MID = "mid"  # 2,500 to 3,499 m
    HIGH = "high"  # 3,500 to 4,499 m
    EXTREME = "extreme"  # 4,500 m and above


assert tuple(Band) == CARE_BANDS

# The lowest altitude (m) of each band; a band runs up to the next one's lower bound.
BAND_FLOOR: dict[Band, int] = {Band.LOW: 0, Band.MID: 2500, Band.HIGH: 3500, Band.EXTREME: 4500}
FIELDS = tuple(CARE_LIMITS)  # the editable numbers, in days


@dataclass(frozen=True)
class BandPolicy:
    """One band's rules. ``None`` switches a schedule off for the band.

    rest_every_days   a low-altitude rest is due this many days after arrival, then after
                      each return from a rest;
    rest_length_days  how long that rest should be;
    exam_first_days   the first examination is due this many days after arrival (0: on the
                      day of arrival); None: the first one is due after exam_every_days;
    exam_every_days   later examinations, counted from the last one;
    exam_contents     what an examination should include (EXAM_CONTENTS codes).
    """

    band: Band
    rest_every_days: int | None
    rest_length_days: int | None
    exam_first_days: int | None
    exam_every_days: int | None
    exam_contents: tuple[str, ...]
    source: str = "default"  # default | setting | admin
    confirmed: bool = False
    updated_by: int | None = None
    updated_at: Any = None

    @property
    def has_rest(self) -> bool:
        return self.rest_every_days is not None

    @property
    def has_exam(self) -> bool:
        return self.exam_every_days is not None or self.exam_first_days is not None


_ALL = EXAM_CONTENTS
DEFAULT_POLICY: dict[Band, BandPolicy] = {
    # Below 2,500 m (e.g. Xichang 1,542 m, Luding 1,321 m): no rotation; a yearly check-up.
    Band.LOW: BandPolicy(Band.LOW, None, None, None, 365, ("bp", "pulse", "heart_lung", "ecg")),
    # 2,500-3,500 m: a two-week rest twice a year; an exam within a month of arrival, yearly.
    Band.MID: BandPolicy(Band.MID, 180, 14, 30, 365, _ALL),
    # 3,500-4,500 m: a two-week rest every four months; an exam within two weeks, twice a year.
    Band.HIGH: BandPolicy(Band.HIGH, 120, 14, 14, 180, _ALL),
    # Above 4,500 m (chronic mountain sickness risk rises here): a rest every three months;
    # an exam in the first week, then twice a year.
    Band.EXTREME: BandPolicy(Band.EXTREME, 90, 14, 7, 180, _ALL),
}


class PolicyError(ValueError):
    """A value outside the limits (the key names a catalog message)."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def band_for_altitude(altitude_m: int | None) -> Band | None:
    if altitude_m is None:
        return None
    band = Band.LOW
    for candidate, floor in BAND_FLOOR.items():
        if altitude_m >= floor:
            band = candidate
    return band


def _apply(policy: BandPolicy, values: dict[str, Any], source: str) -> BandPolicy:
    changes: dict[str, Any] = {k: v for k, v in values.items() if k in FIELDS}
    if "exam_contents" in values and values["exam_contents"] is not None:
        order = {code: i for i, code in enumerate(EXAM_CONTENTS)}
        known = [c for c in values["exam_contents"] if c in order]
        changes["exam_contents"] = tuple(sorted(set(known), key=order.__getitem__))
    return replace(policy, source=source, **changes) if changes else policy


def effective_policy(
    session: Session, override: CarePolicyOverride | None = None
) -> dict[Band, BandPolicy]:
    """The policy in force: defaults, then the setting's override, then admins' rows."""
    policy = dict(DEFAULT_POLICY)
    for band_name, values in (override or {}).items():
        band = Band(band_name)
        policy[band] = _apply(policy[band], dict(values), "setting")
    for row in session.exec(select(CarePolicyBand)):
        if row.band not in CARE_BANDS:
            continue
        band = Band(row.band)
        values = {name: getattr(row, name) for name in FIELDS}
        values["exam_contents"] = list(row.exam_contents or [])
        policy[band] = replace(
            _apply(policy[band], values, "admin"),
            confirmed=row.confirmed,
            updated_by=row.updated_by,
            updated_at=row.updated_at,
        )
    return policy


def _row(
    session: Session, band: Band, override: CarePolicyOverride | None
) -> tuple[CarePolicyBand, BandPolicy]:
    """The admin row for a band, created from the policy in force when it does not exist."""
    current = effective_policy(session, override)[band]
    row = session.get(CarePolicyBand, str(band))
    if row is None:
        row = CarePolicyBand(
            band=str(band),
            **{name: getattr(current, name) for name in FIELDS},
            exam_contents=list(current.exam_contents),
        )
    return row, current


def set_value(
    session: Session,
    actor_telegram_id: int,
    band: Band,
    field: str,
    value: int | None,
    override: CarePolicyOverride | None = None,
) -> BandPolicy:
    """An admin sets one number of a band (None switches the schedule off). Confirms it."""
    if field not in CARE_LIMITS:
        raise PolicyError("care.policy.bad_field")
    low, high = CARE_LIMITS[field]
    if value is not None and not low <= value <= high:
        raise PolicyError("care.policy.out_of_range", low=low, high=high)
    row, _ = _row(session, band, override)
    setattr(row, field, value)
    if field == "rest_every_days" and value is not None and row.rest_length_days is None:
        row.rest_length_days = 14
    row.confirmed = True
    row.updated_by = actor_telegram_id
    row.updated_at = clock.now()
    session.add(row)
    session.flush()
    audit.record(
        session,
        "schedule.policy_set",
        actor=actor_telegram_id,
        band=str(band),
        field=field,
        value=value,
    )
    return effective_policy(session, override)[band]


def toggle_content(
    session: Session,
    actor_telegram_id: int,
    band: Band,
    code: str,
    override: CarePolicyOverride | None = None,
) -> BandPolicy:
    if code not in EXAM_CONTENTS:
        raise PolicyError("care.policy.bad_field")
    row, _ = _row(session, band, override)
    contents = list(row.exam_contents or [])
    contents = [c for c in contents if c != code] if code in contents else [*contents, code]
    order = {c: i for i, c in enumerate(EXAM_CONTENTS)}
    row.exam_contents = sorted(contents, key=order.__getitem__)
    row.confirmed = True
    row.updated_by = actor_telegram_id
    row.updated_at = clock.now()
    session.add(row)
    session.flush()
    audit.record(
        session, "schedule.policy_contents", actor=actor_telegram_id, band=str(band), code=code
    )
    return effective_policy(session, override)[band]


def confirm_band(
    session: Session,
    actor_telegram_id: int,
    band: Band,
    override: CarePolicyOverride | None = None,
) -> BandPolicy:
    """An admin accepts the values in force for a band as they are."""
    row, _ = _row(session, band, override)
    row.confirmed = True
    row.updated_by = actor_telegram_id
    row.updated_at = clock.now()
    session.add(row)
    session.flush()
    audit.record(session, "schedule.policy_confirmed", actor=actor_telegram_id, band=str(band))
    return effective_policy(session, override)[band]
