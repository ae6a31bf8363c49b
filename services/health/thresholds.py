"""Every health threshold in one configuration table, with the source of each.

The defaults come from the project's domain note (../shared/domain/health.md), which cites
the published sources named below. They are proposals that were not validated for this
product: an administrator can override any of them with ``CADRE_HEALTH_THRESHOLDS``, a JSON
object (or the path of a JSON file) mapping names to numbers, e.g.
``{"temp_amber_c": 37.5, "spo2_red_drop": 12}``. Unknown names and non-numbers are refused
at start-up, so a typo cannot silently switch a rule off.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

LLS = "Lake Louise AMS score 2018 (Roach et al., High Alt Med Biol 2018;19(1):4-6)"
TIERS = "health.md, proposed default tiers (derived from WMS 2019 guidelines and Lake Louise)"
SPO2_TABLE = (
    "health.md, expected SpO2 by altitude (CDC Yellow Book; Wu et al. 2014; Med Clin 2016 fit)"
)
RANGES = "health.md, plausible input ranges"
CHINA_FEVER = "health.md, temperature conventions (China, axillary: fever from 37.3 °C)"


@dataclass(frozen=True, slots=True)
class Threshold:
    value: float
    unit: str
    source: str
    meaning: str


def _t(value: float, unit: str, source: str, meaning: str) -> Threshold:
    return Threshold(value, unit, source, meaning)


DEFAULTS: Mapping[str, Threshold] = MappingProxyType(
    {
        # --- Lake Louise score and the AMS rule -------------------------------------------
        "lls_ams_total": _t(3, "points", LLS, "AMS: total at least this, with headache"),
        "lls_headache_min": _t(1, "points", LLS, "AMS needs a headache score of at least this"),
        "lls_moderate_total": _t(6, "points", LLS, "moderate AMS from this total"),
        "lls_severe_total": _t(10, "points", LLS, "severe AMS from this total: RED"),
        "lls_functional_red": _t(2, "points", TIERS, "functional score from this: RED"),
        "lls_worse_window_hours": _t(
            24, "h", TIERS, "moderate and worse than a check-in within this many hours: RED"
        ),
        "ascent_min_hours": _t(6, "h", LLS, "AMS needs at least this long at the new altitude"),
        "ascent_window_days": _t(
            7,
            "days",
            "health.md: acclimatisation in 3-5 days; re-entry risk 5-7 days after a rest",
            "an ascent (arrival, return from rest) counts as recent for this many days",
        ),
        # --- SpO2 --------------------------------------------------------------------------
        "spo2_expected_2500": _t(92, "%", SPO2_TABLE, "expected resting SpO2 at 2,500 m"),
        "spo2_expected_3000": _t(90, "%", SPO2_TABLE, "expected resting SpO2 at 3,000 m"),
        "spo2_expected_3500": _t(87, "%", SPO2_TABLE, "expected resting SpO2 at 3,500 m"),
        "spo2_expected_4000": _t(84, "%", SPO2_TABLE, "expected resting SpO2 at 4,000 m"),
        "spo2_expected_4500": _t(81, "%", SPO2_TABLE, "expected resting SpO2 at 4,500 m"),
        "spo2_fit_intercept": _t(
            103.3, "%", "Med Clin 2016 fit (health.md)", "below 2,500 m: intercept of the fit"
        ),
        "spo2_fit_slope_per_m": _t(
            0.0047, "%/m", "Med Clin 2016 fit (health.md)", "below 2,500 m: slope of the fit"
        ),
        "spo2_expected_low_altitude": _t(
            96,
            "%",
            "general clinical reference (95-100 % at sea level); NOT in health.md: confirm",
            "expected SpO2 at low altitude (Zhejiang postings); also caps the fit",
        ),
        "spo2_amber_drop": _t(5, "points", TIERS, "AMBER below expected minus this"),
        "spo2_red_drop": _t(10, "points", TIERS, "RED below expected minus this"),
        "spo2_baseline_drop": _t(5, "points", TIERS, "AMBER this far below own baseline"),
        "baseline_days": _t(3, "days", TIERS, "own baseline: mean of the previous N days"),
        "baseline_min_readings": _t(
            2, "readings", "cadre-bot choice", "fewer readings than this: no personal baseline"
        ),
        # --- heart rate --------------------------------------------------------------------
        "hr_amber_over": _t(100, "/min", TIERS, "AMBER above this resting heart rate"),
        "hr_baseline_rise": _t(20, "/min", TIERS, "AMBER this far above own baseline"),
        # --- temperature (axillary) --------------------------------------------------------
        "temp_amber_c": _t(37.3, "°C", CHINA_FEVER, "AMBER from this temperature"),
        "temp_red_with_cough_c": _t(
            38.0, "°C", TIERS, "RED from this with cough or breathlessness"
        ),
        "temp_red_c": _t(39.1, "°C", TIERS + "; China: high fever 39.1-41.0", "RED from this"),
        # --- blood pressure (a repeated reading) -------------------------------------------
        "bp_amber_systolic": _t(160, "mmHg", TIERS, "AMBER from this systolic (repeated)"),
        "bp_amber_diastolic": _t(100, "mmHg", TIERS, "AMBER from this diastolic (repeated)"),
        "bp_red_systolic": _t(180, "mmHg", TIERS, "RED from this systolic (repeated)"),
        "bp_red_diastolic": _t(
            110,
            "mmHg",
            "health.md gives 180/100, but 100 is already the AMBER diastolic; 110 is grade 3 "
            "hypertension (Chinese hypertension guideline 2018): confirm",
            "RED from this diastolic (repeated)",
        ),
        # --- AMBER follow-up ---------------------------------------------------------------
        "amber_recheck_min_hours": _t(6, "h", TIERS, "AMBER: recheck reminder at the earliest"),
        "amber_recheck_max_hours": _t(12, "h", TIERS, "AMBER: recheck reminder at the latest"),
        "amber_escalate_hours": _t(24, "h", TIERS, "AMBER persisting this long: tell the officer"),
        # --- altitude features -------------------------------------------------------------
        "altitude_features_min_m": _t(
            2500,
            "m",
            "health.md: HAPE from 2,500 m; 'plateau' moving from 3,000 to 2,500 m",
            "below this the expected SpO2 comes from the fit, not the table",
        ),
        # --- suspicious self-reports -------------------------------------------------------
        "suspicious_identical_days": _t(
            5,
            "days",
            "health.md: self-reported vitals get gamed; flag identical readings (cadre-bot choice)",
            "identical vitals on this many days in a row are flagged for the duty officer",
        ),
        # --- plausible input ranges --------------------------------------------------------
        "range_spo2_min": _t(50, "%", RANGES, "lowest SpO2 accepted"),
        "range_spo2_max": _t(100, "%", RANGES, "highest SpO2 accepted"),
        "range_hr_min": _t(30, "/min", RANGES, "lowest heart rate accepted"),
        "range_hr_max": _t(220, "/min", RANGES, "highest heart rate accepted"),
        "range_temp_min": _t(34.0, "°C", RANGES, "lowest temperature accepted"),
        "range_temp_max": _t(43.0, "°C", RANGES, "highest temperature accepted"),
        "range_systolic_min": _t(70, "mmHg", RANGES, "lowest systolic accepted"),
        "range_systolic_max": _t(260, "mmHg", RANGES, "highest systolic accepted"),
        "range_diastolic_min": _t(40, "mmHg", RANGES, "lowest diastolic accepted"),
        "range_diastolic_max": _t(160, "mmHg", RANGES, "highest diastolic accepted"),
    }
)

SPO2_TABLE_ALTITUDES = (2500, 3000, 3500, 4000, 4500)


class ThresholdError(ValueError):
    """An override that cannot be used (unknown name, not a number, unreadable file)."""


class Thresholds:
    """The effective values: the defaults with any overrides applied. Read as attributes
    (``thresholds.temp_amber_c``) or with ``table()`` for documentation and /help."""

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        values = {name: item.value for name, item in DEFAULTS.items()}
        for name, value in (overrides or {}).items():
            if name not in DEFAULTS:
                raise ThresholdError(f"unknown health threshold {name!r}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ThresholdError(f"health threshold {name!r} must be a number")
            values[name] = float(value)
        self._values = values
        self.overridden = frozenset(overrides or {})
        self._check()

    def _check(self) -> None:
        v = self._values
        if not v["amber_recheck_min_hours"] <= v["amber_recheck_max_hours"]:
            raise ThresholdError("amber_recheck_min_hours must not exceed amber_recheck_max_hours")
        if not v["spo2_amber_drop"] <= v["spo2_red_drop"]:
            raise ThresholdError("spo2_amber_drop must not exceed spo2_red_drop")
        if not v["lls_ams_total"] <= v["lls_moderate_total"] <= v["lls_severe_total"]:
            raise ThresholdError("lls totals must rise: ams <= moderate <= severe")

    def __getattr__(self, name: str) -> float:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def table(self) -> list[tuple[str, float, str, str, str]]:
        """(name, effective value, unit, source, meaning) for every threshold."""
        rows = []
        for name, item in DEFAULTS.items():
            source = item.source if name not in self.overridden else "override (settings)"
            rows.append((name, self._values[name], item.unit, source, item.meaning))
        return rows

    def spo2_table(self) -> list[tuple[int, float]]:
        return [(alt, self._values[f"spo2_expected_{alt}"]) for alt in SPO2_TABLE_ALTITUDES]


def parse_overrides(raw: str | None) -> dict[str, Any]:
    """The override setting: empty, a JSON object, or the path of a file holding one."""
    if raw is None or not raw.strip():
        return {}
    text = raw.strip()
    if not text.startswith("{"):
        path = Path(text)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ThresholdError(f"cannot read health thresholds file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ThresholdError(f"health thresholds are not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ThresholdError("health thresholds must be a JSON object of name: number")
    Thresholds(data)  # validates names and values
    return data


def load(raw: str | None) -> Thresholds:
    return Thresholds(parse_overrides(raw))


DEFAULT = Thresholds()
