"""The assessment reproduces health.md's tables case by case (a pure function: no database,
no Telegram). Each test names the row of the domain note it checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from config import Settings
from models.health import RED_FLAGS, Tier
from services.health.assessment import Past, Readings, assess, baseline, expected_spo2
from services.health.config import check
from services.health.thresholds import DEFAULTS, ThresholdError, Thresholds, load

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
ARRIVED = NOW - timedelta(days=2)  # a recent ascent
ZERO = {"headache": 0, "gi": 0, "fatigue": 0, "dizziness": 0, "functional": 0}


def run(
    altitude: int | None = 3500, *, low: bool = False, history=(), ascent=ARRIVED, th=None, **values
):
    readings = Readings(**{**ZERO, **values})
    return assess(
        readings,
        altitude_m=altitude,
        low_altitude=low,
        now=NOW,
        history=history,
        ascent_at=ascent,
        thresholds=th or Thresholds(),
    )


def days_ago(days: float, **values) -> Past:
    return Past(at=NOW - timedelta(days=days), tier=Tier.GREEN, altitude_m=3500, **values)


# ---------------------------------------------------------------------------- nothing wrong


def test_no_signal_is_green_with_no_reasons():
    result = run(spo2=90, heart_rate=72, temperature_c=36.5, systolic=120, diastolic=80)
    assert (result.tier, result.reasons) == (Tier.GREEN, ())


# ---------------------------------------------------------------------------- red flags


@pytest.mark.parametrize("flag", RED_FLAGS)
def test_row_red_flag_any_yes_is_red(flag):
    result = run(red_flags=frozenset({flag}))
    assert result.tier == Tier.RED
    assert f"red_{flag}" in result.reason_keys


def test_a_red_flag_alone_without_any_readings_is_red():
    """The form ends at the first 'yes': nothing else has been asked."""
    result = assess(
        Readings(red_flags=frozenset({"confused"})), altitude_m=4000, low_altitude=False, now=NOW
    )
    assert result.tier == Tier.RED and result.reason_keys == ["red_confused"]


# ---------------------------------------------------------------------------- Lake Louise


@pytest.mark.parametrize(
    ("items", "total", "tier", "key"),
    [
        ((1, 1, 1, 0), 3, Tier.AMBER, "lls_mild"),  # mild 3-5, lower edge
        ((2, 2, 1, 0), 5, Tier.AMBER, "lls_mild"),  # mild, upper edge
        ((2, 2, 1, 1), 6, Tier.AMBER, "lls_moderate"),  # moderate 6-9, not worse
        ((3, 2, 2, 2), 9, Tier.AMBER, "lls_moderate"),
        ((3, 3, 2, 2), 10, Tier.RED, "lls_severe"),  # severe 10-12: RED
        ((3, 3, 3, 3), 12, Tier.RED, "lls_severe"),
    ],
)
def test_row_lake_louise_with_headache_each_severity_band(items, total, tier, key):
    headache, gi, fatigue, dizziness = items
    result = run(headache=headache, gi=gi, fatigue=fatigue, dizziness=dizziness)
    assert (result.lls_total, result.tier, result.reason_keys) == (total, tier, [key])
    assert result.ams  # recent ascent, headache, total >= 3


def test_a_total_of_two_is_green():
    result = run(headache=1, gi=1)
    assert (result.tier, result.ams, result.reason_keys) == (Tier.GREEN, False, [])


def test_three_or_more_without_headache_is_not_ams():
    result = run(headache=0, gi=2, fatigue=2, dizziness=2)
    assert result.lls_total == 6 and not result.ams
    assert (result.tier, result.reason_keys) == (Tier.GREEN, ["lls_no_headache"])


def test_ams_needs_six_hours_at_the_new_altitude_and_a_recent_ascent():
    symptoms = {"headache": 2, "gi": 1}
    assert not run(ascent=NOW - timedelta(hours=5), **symptoms).ams
    assert run(ascent=NOW - timedelta(hours=6), **symptoms).ams
    assert run(ascent=NOW - timedelta(days=7), **symptoms).ams
    assert not run(ascent=NOW - timedelta(days=8), **symptoms).ams
    assert not run(ascent=None, **symptoms).ams
    # the tier follows the symptoms, with or without the AMS label
    assert run(ascent=None, **symptoms).tier == Tier.AMBER


def test_ams_rule_is_off_at_low_altitude():
    result = run(altitude=None, low=True, headache=2, gi=2)
    assert not result.ams and result.tier == Tier.AMBER


@pytest.mark.parametrize(
    ("functional", "tier"), [(0, Tier.GREEN), (1, Tier.GREEN), (2, Tier.RED), (3, Tier.RED)]
)
def test_row_functional_score_two_or_more_is_red(functional, tier):
    result = run(headache=1, functional=functional)
    assert result.tier == tier
    assert ("lls_functional" in result.reason_keys) == (tier == Tier.RED)


def test_row_moderate_and_worse_than_within_24_hours_is_red():
    earlier = [days_ago(0.6, lls_total=5)]  # about 14 hours ago
    worse = run(history=earlier, headache=2, gi=2, fatigue=1, dizziness=1)
    assert (worse.tier, worse.reason_keys) == (Tier.RED, ["lls_worse"])
    same = run(history=[days_ago(0.6, lls_total=6)], headache=2, gi=2, fatigue=1, dizziness=1)
    assert same.tier == Tier.AMBER
    too_old = run(history=[days_ago(1.1, lls_total=3)], headache=2, gi=2, fatigue=1, dizziness=1)
    assert too_old.tier == Tier.AMBER


# ---------------------------------------------------------------------------- SpO2 table

SPO2_TABLE = [  # altitude, expected, AMBER below, RED below (health.md)
    (2500, 92, 87, 82),
    (3000, 90, 85, 80),
    (3500, 87, 82, 77),
    (4000, 84, 79, 74),
    (4500, 81, 76, 71),
]


@pytest.mark.parametrize(("altitude", "expected", "amber_below", "red_below"), SPO2_TABLE)
def test_spo2_table_row(altitude, expected, amber_below, red_below):
    assert expected_spo2(altitude, False) == expected
    assert run(altitude, spo2=amber_below).tier == Tier.GREEN
    assert run(altitude, spo2=amber_below - 1).reason_keys == ["spo2_low"]
    assert run(altitude, spo2=red_below).tier == Tier.AMBER
    very_low = run(altitude, spo2=red_below - 1)
    assert (very_low.tier, very_low.reason_keys) == (Tier.RED, ["spo2_very_low"])


def test_expected_spo2_between_and_beyond_the_rows_and_below_2500():
    assert expected_spo2(3250, False) == 89  # halfway between 90 and 87, rounded half up
    assert expected_spo2(4014, False) == 84  # Litang
    assert expected_spo2(5000, False) == 78  # the last row's slope continued
    assert expected_spo2(2000, False) == 94  # Med Clin 2016 fit: 103.3 - 0.0047 x 2000
    assert expected_spo2(1321, False) == 96  # the fit, capped at the low-altitude value
    assert expected_spo2(None, True) == 96  # Zhejiang


def test_row_spo2_five_below_own_three_day_baseline_is_amber():
    history = [days_ago(1, spo2=92), days_ago(2, spo2=91)]  # mean 91.5
    assert run(3500, history=history, spo2=87).tier == Tier.GREEN  # 4.5 below
    drop = run(3500, history=history, spo2=86)  # 5.5 below, still above expected - 5 (82)
    assert (drop.tier, drop.reason_keys) == (Tier.AMBER, ["spo2_baseline"])
    assert drop.baseline.spo2 == pytest.approx(91.5)


def test_baseline_needs_two_recent_readings_at_the_same_altitude():
    assert baseline([days_ago(1, spo2=95)], NOW, 3500).spo2 is None
    assert baseline([days_ago(1, spo2=95), days_ago(4, spo2=93)], NOW, 3500).spo2 is None
    elsewhere = Past(at=NOW - timedelta(days=1), tier=Tier.GREEN, spo2=98, altitude_m=1500)
    assert baseline([days_ago(1, spo2=95), elsewhere], NOW, 3500).spo2 is None


@pytest.mark.parametrize("cause", ["below_expected", "below_baseline"])
def test_row_amber_spo2_with_cough_or_breathlessness_is_red(cause):
    history = [days_ago(1, spo2=92), days_ago(2, spo2=92)]
    spo2 = 81 if cause == "below_expected" else 86
    result = run(3500, history=history, spo2=spo2, cough_or_breathless=True)
    assert (result.tier, result.reason_keys) == (Tier.RED, ["spo2_low_breathless"])


def test_normal_spo2_with_a_cough_stays_green():
    assert run(3500, spo2=88, cough_or_breathless=True).tier == Tier.GREEN


def test_no_oximeter_is_not_an_error():
    assert run(3500, spo2=None).tier == Tier.GREEN


# ---------------------------------------------------------------------------- heart rate


@pytest.mark.parametrize(("hr", "tier"), [(100, Tier.GREEN), (101, Tier.AMBER), (140, Tier.AMBER)])
def test_row_heart_rate_over_100_is_amber(hr, tier):
    assert run(heart_rate=hr).tier == tier


def test_row_heart_rate_20_above_own_baseline_is_amber():
    history = [days_ago(1, heart_rate=70), days_ago(2, heart_rate=70)]
    assert run(history=history, heart_rate=89).tier == Tier.GREEN
    assert run(history=history, heart_rate=90).reason_keys == ["hr_baseline"]


def test_row_heart_rate_is_red_only_with_breathlessness_or_a_red_flag():
    assert run(heart_rate=120).tier == Tier.AMBER
    assert run(heart_rate=120, cough_or_breathless=True).reason_keys == ["hr_breathless"]
    with_flag = run(heart_rate=120, red_flags=frozenset({"breathless_rest"}))
    assert with_flag.tier == Tier.RED
    assert run(heart_rate=90, cough_or_breathless=True).tier == Tier.GREEN


# ---------------------------------------------------------------------------- temperature


@pytest.mark.parametrize(
    ("temp", "cough", "tier", "key"),
    [
        (37.2, False, Tier.GREEN, None),
        (37.3, False, Tier.AMBER, "temp_fever"),  # China: fever from 37.3
        (37.9, True, Tier.AMBER, "temp_fever"),
        (38.0, False, Tier.AMBER, "temp_fever"),
        (38.0, True, Tier.RED, "temp_fever_breathless"),
        (39.0, False, Tier.AMBER, "temp_fever"),
        (39.1, False, Tier.RED, "temp_very_high"),
    ],
)
def test_row_axillary_temperature(temp, cough, tier, key):
    result = run(temperature_c=temp, cough_or_breathless=cough)
    assert result.tier == tier
    assert result.reason_keys == ([key] if key else [])


# ---------------------------------------------------------------------------- blood pressure


@pytest.mark.parametrize(
    ("first", "second", "tier", "key"),
    [
        ((159, 99), (159, 99), Tier.GREEN, None),
        ((160, 90), (162, 95), Tier.AMBER, "bp_high"),  # 160/100 or more (repeated)
        ((150, 100), (150, 100), Tier.AMBER, "bp_high"),
        ((180, 100), (185, 105), Tier.RED, "bp_very_high"),  # 180/100 or more (repeated)
        ((185, 105), (165, 95), Tier.AMBER, "bp_high"),  # the repeat was lower
        ((185, 105), (150, 90), Tier.GREEN, None),  # the repeat was normal
        ((180, 100), None, Tier.AMBER, "bp_very_high_once"),  # not repeated yet
        ((165, 95), None, Tier.GREEN, "bp_high_once"),
    ],
)
def test_row_blood_pressure_counts_when_repeated(first, second, tier, key):
    values = {"systolic": first[0], "diastolic": first[1]}
    if second:
        values |= {"systolic_2": second[0], "diastolic_2": second[1]}
    result = run(**values)
    assert result.tier == tier
    assert result.reason_keys == ([key] if key else [])


# ---------------------------------------------------------------------------- combined


def test_the_worst_signal_decides_and_every_reason_is_kept():
    result = run(4000, spo2=77, heart_rate=110, temperature_c=37.5, headache=1, gi=1, fatigue=1)
    assert result.tier == Tier.AMBER
    assert set(result.reason_keys) == {"lls_mild", "spo2_low", "hr_high", "temp_fever"}
    result = run(4000, spo2=70, heart_rate=110)
    assert result.tier == Tier.RED and set(result.reason_keys) == {"spo2_very_low", "hr_high"}


# ---------------------------------------------------------------------------- the table


def test_every_threshold_has_a_source_and_a_meaning():
    for name, item in DEFAULTS.items():
        assert item.source and item.meaning and item.unit, name


def test_overrides_change_the_result_and_the_table_says_so():
    th = Thresholds({"temp_amber_c": 37.5, "spo2_red_drop": 12})
    assert run(temperature_c=37.4, th=th).tier == Tier.GREEN
    assert run(3500, spo2=76, th=th).tier == Tier.AMBER  # 87 - 12 = 75
    rows = {row[0]: row for row in th.table()}
    assert rows["temp_amber_c"][1] == 37.5 and "override" in rows["temp_amber_c"][3]


def test_overrides_from_a_file(tmp_path):
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"hr_amber_over": 110}))
    assert load(str(path)).hr_amber_over == 110
    assert run(heart_rate=105, th=load(str(path))).tier == Tier.GREEN


@pytest.mark.parametrize(
    "raw",
    [
        '{"no_such_threshold": 1}',
        '{"temp_amber_c": "high"}',
        "[1, 2]",
        "{oops",
        "/no/such/file.json",
        '{"spo2_amber_drop": 20}',
    ],
)
def test_bad_overrides_are_refused_by_the_settings(raw):
    with pytest.raises(ThresholdError):
        load(raw)
    with pytest.raises(ValueError, match="health_thresholds"):
        check(Settings(_env_file=None, health_thresholds=raw))
