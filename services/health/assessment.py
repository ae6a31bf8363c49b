"""Risk assessment of one check-in: a pure function, no database, no Telegram.

Input: the readings, the posting altitude, the person's recent history (from which the
personal baseline is taken) and the time of the last ascent (arrival, or return from a
low-altitude rest). Output: GREEN / AMBER / RED with the reasons, as catalog keys
``health.reason.<key>``. Every cut-off comes from `Thresholds` (services/health/thresholds.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.health import RED_FLAGS, Tier
from services.health.thresholds import DEFAULT, Thresholds


@dataclass(frozen=True, slots=True)
class Readings:
    """What the person answered. None means not asked, not answered or not measured."""

    red_flags: frozenset[str] = frozenset()
    cough_or_breathless: bool | None = None
    headache: int | None = None
    gi: int | None = None
    fatigue: int | None = None
    dizziness: int | None = None
    functional: int | None = None
    spo2: int | None = None
    heart_rate: int | None = None
    temperature_c: float | None = None
    systolic: int | None = None
    diastolic: int | None = None
    systolic_2: int | None = None  # the repeated measurement, asked when the first is high
    diastolic_2: int | None = None

    @property
    def lls_items(self) -> tuple[int | None, ...]:
        return (self.headache, self.gi, self.fatigue, self.dizziness)

    @property
    def lls_total(self) -> int | None:
        items = self.lls_items
        if any(item is None for item in items):
            return None
        return sum(item for item in items if item is not None)


@dataclass(frozen=True, slots=True)
class Past:
    """An earlier check-in, as the assessment needs it."""

    at: datetime
    tier: Tier
    spo2: int | None = None
    heart_rate: int | None = None
    lls_total: int | None = None
    altitude_m: int | None = None


@dataclass(frozen=True, slots=True)
class Baseline:
    spo2: float | None = None
    heart_rate: float | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    key: str
    tier: Tier

    @property
    def catalog_key(self) -> str:
        return f"health.reason.{self.key}"


@dataclass(frozen=True, slots=True)
class Assessment:
    tier: Tier
    reasons: tuple[Reason, ...]
    lls_total: int | None = None
    ams: bool = False  # the Lake Louise AMS definition is met (recent ascent, headache, >= 3)
    expected_spo2: int | None = None
    baseline: Baseline = field(default_factory=Baseline)

    @property
    def reason_keys(self) -> list[str]:
        return [reason.key for reason in self.reasons]

    def keys_at(self, tier: Tier) -> list[str]:
        return [reason.key for reason in self.reasons if reason.tier == tier]


def round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def expected_spo2(
    altitude_m: int | None, low_altitude: bool, thresholds: Thresholds = DEFAULT
) -> int:
    """The expected resting SpO2 of a healthy lowlander in the first days at this altitude:
    the health.md table, linear between its rows and beyond its last; below its first row
    the Med Clin 2016 fit, capped at the low-altitude value."""
    sea_level = thresholds.spo2_expected_low_altitude
    if low_altitude or altitude_m is None:
        return round_half_up(sea_level)
    table = thresholds.spo2_table()
    first_alt, first_value = table[0]
    if altitude_m < first_alt:
        fit = thresholds.spo2_fit_intercept - thresholds.spo2_fit_slope_per_m * altitude_m
        return round_half_up(min(sea_level, max(fit, first_value)))
    for (alt_a, val_a), (alt_b, val_b) in itertools.pairwise(table):
        if altitude_m <= alt_b:
            return round_half_up(val_a + (val_b - val_a) * (altitude_m - alt_a) / (alt_b - alt_a))
    (alt_a, val_a), (alt_b, val_b) = table[-2], table[-1]
    return round_half_up(val_b + (val_b - val_a) * (altitude_m - alt_b) / (alt_b - alt_a))


def baseline(
    history: Sequence[Past],
    now: datetime,
    altitude_m: int | None,
    thresholds: Thresholds = DEFAULT,
) -> Baseline:
    """The person's own recent values: the mean of the readings of the previous days at the
    same altitude, when there are enough of them."""
    since = now - timedelta(days=thresholds.baseline_days)
    same = [p for p in history if since <= p.at < now and p.altitude_m == altitude_m]
    minimum = int(thresholds.baseline_min_readings)

    def mean(values: list[int]) -> float | None:
        return sum(values) / len(values) if len(values) >= minimum and values else None

    return Baseline(
        spo2=mean([p.spo2 for p in same if p.spo2 is not None]),
        heart_rate=mean([p.heart_rate for p in same if p.heart_rate is not None]),
    )


def _bp_level(systolic: int, diastolic: int, th: Thresholds) -> Tier:
    if systolic >= th.bp_red_systolic or diastolic >= th.bp_red_diastolic:
        return Tier.RED
    if systolic >= th.bp_amber_systolic or diastolic >= th.bp_amber_diastolic:
        return Tier.AMBER
    return Tier.GREEN


def bp_needs_repeat(systolic: int, diastolic: int, thresholds: Thresholds = DEFAULT) -> bool:
    """A high first reading is measured again before it counts (the table's 'repeated')."""
    return _bp_level(systolic, diastolic, thresholds) != Tier.GREEN


def assess(
    readings: Readings,
    *,
    altitude_m: int | None,
    low_altitude: bool,
    now: datetime,
    history: Sequence[Past] = (),
    ascent_at: datetime | None = None,
    thresholds: Thresholds = DEFAULT,
) -> Assessment:
    """GREEN / AMBER / RED with the reasons. `history` holds earlier check-ins (any order);
    `ascent_at` is when the person last arrived at this altitude (None: long ago/unknown)."""
    th = thresholds
    reasons: list[Reason] = []

    def add(key: str, tier: Tier) -> None:
        reasons.append(Reason(key, tier))

    for flag in RED_FLAGS:
        if flag in readings.red_flags:
            add(f"red_{flag}", Tier.RED)

    breathless = bool(readings.cough_or_breathless)

    # --- Lake Louise --------------------------------------------------------------------
    total = readings.lls_total
    ams = False
    if total is not None:
        headache = readings.headache or 0
        with_headache = headache >= th.lls_headache_min
        at_altitude = not low_altitude and (altitude_m or 0) >= th.altitude_features_min_m
        recent = False
        if ascent_at is not None and at_altitude:
            since = now - ascent_at
            recent = (
                timedelta(hours=th.ascent_min_hours)
                <= since
                <= timedelta(days=th.ascent_window_days)
            )
        ams = recent and with_headache and total >= th.lls_ams_total
        if with_headache and total >= th.lls_severe_total:
            add("lls_severe", Tier.RED)
        elif with_headache and total >= th.lls_moderate_total:
            window = now - timedelta(hours=th.lls_worse_window_hours)
            earlier = sorted(
                (p for p in history if window <= p.at < now and p.lls_total is not None),
                key=lambda p: p.at,
            )
            if earlier and earlier[-1].lls_total is not None and total > earlier[-1].lls_total:
                add("lls_worse", Tier.RED)
            else:
                add("lls_moderate", Tier.AMBER)
        elif with_headache and total >= th.lls_ams_total:
            add("lls_mild", Tier.AMBER)
        elif not with_headache and total >= th.lls_ams_total:
            add("lls_no_headache", Tier.GREEN)
    if readings.functional is not None and readings.functional >= th.lls_functional_red:
        add("lls_functional", Tier.RED)

    # --- SpO2 ---------------------------------------------------------------------------
    expected = expected_spo2(altitude_m, low_altitude, th)
    base = baseline(history, now, altitude_m, th)
    spo2 = readings.spo2
    if spo2 is not None:
        below_expected = spo2 < expected - th.spo2_amber_drop
        below_baseline = base.spo2 is not None and spo2 <= base.spo2 - th.spo2_baseline_drop
        if spo2 < expected - th.spo2_red_drop:
            add("spo2_very_low", Tier.RED)
        elif (below_expected or below_baseline) and breathless:
            add("spo2_low_breathless", Tier.RED)
        else:
            if below_expected:
                add("spo2_low", Tier.AMBER)
            if below_baseline:
                add("spo2_baseline", Tier.AMBER)

    # --- heart rate ---------------------------------------------------------------------
    hr = readings.heart_rate
    if hr is not None:
        high = hr > th.hr_amber_over
        risen = base.heart_rate is not None and hr >= base.heart_rate + th.hr_baseline_rise
        if (high or risen) and breathless:
            add("hr_breathless", Tier.RED)
        else:
            if high:
                add("hr_high", Tier.AMBER)
            if risen:
                add("hr_baseline", Tier.AMBER)

    # --- temperature --------------------------------------------------------------------
    temp = readings.temperature_c
    if temp is not None:
        if temp >= th.temp_red_c:
            add("temp_very_high", Tier.RED)
        elif temp >= th.temp_red_with_cough_c and breathless:
            add("temp_fever_breathless", Tier.RED)
        elif temp >= th.temp_amber_c:
            add("temp_fever", Tier.AMBER)

    # --- blood pressure (the table's tiers are for a repeated reading) ------------------
    if readings.systolic is not None and readings.diastolic is not None:
        first = _bp_level(readings.systolic, readings.diastolic, th)
        if readings.systolic_2 is not None and readings.diastolic_2 is not None:
            second = _bp_level(readings.systolic_2, readings.diastolic_2, th)
            level = min(first, second, key=_RANK.__getitem__)
            if level == Tier.RED:
                add("bp_very_high", Tier.RED)
            elif level == Tier.AMBER:
                add("bp_high", Tier.AMBER)
        elif first == Tier.RED:
            add("bp_very_high_once", Tier.AMBER)
        elif first == Tier.AMBER:
            add("bp_high_once", Tier.GREEN)

    tier = max((r.tier for r in reasons), key=_RANK.__getitem__, default=Tier.GREEN)
    return Assessment(
        tier=tier,
        reasons=tuple(reasons),
        lls_total=total,
        ams=ams,
        expected_spo2=expected,
        baseline=base,
    )


_RANK = {Tier.GREEN: 0, Tier.AMBER: 1, Tier.RED: 2}


def rank(tier: Tier | str) -> int:
    return _RANK[Tier(tier)]


def worsened(
    current: Assessment,
    previous_tier: Tier,
    previous_reasons: Sequence[str],
    previous_lls: int | None,
) -> bool:
    """An AMBER that is worse than the AMBER before it: a new reason, or a higher score."""
    if current.tier != Tier.AMBER or previous_tier != Tier.AMBER:
        return False
    new_reasons = set(current.keys_at(Tier.AMBER)) - set(previous_reasons)
    higher = (
        current.lls_total is not None
        and previous_lls is not None
        and current.lls_total > previous_lls
    )
    return bool(new_reasons) or higher
