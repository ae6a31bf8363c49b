"""The 30-day trend chart: SpO2, heart rate and Lake Louise score with the person's
threshold bands, drawn with matplotlib's Agg backend into a PNG (no display, thread-safe:
each chart has its own Figure, pyplot is never used)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure
from sqlmodel import Session

from models import CheckIn, Person
from services import clock
from services.health import summary
from services.health.assessment import expected_spo2
from services.health.config import HealthConfig
from services.health.thresholds import Thresholds
from services.i18n import t

CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "SimHei")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GREEN, AMBER, RED = "#2e7d32", "#ef6c00", "#c62828"


@cache
def _cjk_font() -> str | None:
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def chart_language(lang: str) -> str:
    """Chinese labels need a CJK font; without one the axis labels fall back to English
    (the caption that goes with the picture is still in the person's language)."""
    if lang == "zh-Hans" and _cjk_font() is None:
        return "en"
    return lang


@dataclass(frozen=True)
class Bands:
    spo2_expected: int
    spo2_amber_below: float
    spo2_red_below: float
    hr_amber_over: float
    lls_amber_from: float
    lls_red_from: float


def bands_for(person: Person, thresholds: Thresholds) -> Bands:
    low = summary.is_low_altitude(person)
    expected = expected_spo2(None if low else person.posting_altitude_m, low, thresholds)
    return Bands(
        spo2_expected=expected,
        spo2_amber_below=expected - thresholds.spo2_amber_drop,
        spo2_red_below=expected - thresholds.spo2_red_drop,
        hr_amber_over=thresholds.hr_amber_over,
        lls_amber_from=thresholds.lls_ams_total,
        lls_red_from=thresholds.lls_severe_total,
    )


def render(
    points: Sequence[CheckIn],
    bands: Bands,
    lang: str,
    *,
    start: datetime,
    end: datetime,
    zone: object,
) -> bytes:
    """A PNG of three stacked panels over [start, end]."""
    lang = chart_language(lang)
    font = _cjk_font() if lang == "zh-Hans" else None
    fontkw: dict[str, str] = {"fontname": font} if font else {}
    figure = Figure(figsize=(7, 7.5), dpi=100)
    FigureCanvasAgg(figure)
    if font:
        figure.set_layout_engine("constrained")
    axes = figure.subplots(3, 1, sharex=True)
    times = [c.at.astimezone(zone) for c in points]  # type: ignore[arg-type]
    left, right = start.astimezone(zone), end.astimezone(zone)  # type: ignore[arg-type]

    def series(values: list[float | None]) -> tuple[list[datetime], list[float]]:
        pairs = [(x, y) for x, y in zip(times, values, strict=True) if y is not None]
        return [x for x, _ in pairs], [y for _, y in pairs]

    spo2_ax, hr_ax, lls_ax = axes
    # SpO2 with the expected value and the AMBER / RED bands
    spo2_ax.axhspan(0, bands.spo2_red_below, color=RED, alpha=0.15, lw=0)
    spo2_ax.axhspan(bands.spo2_red_below, bands.spo2_amber_below, color=AMBER, alpha=0.15, lw=0)
    spo2_ax.axhline(bands.spo2_expected, color=GREEN, ls="--", lw=1)
    xs, ys = series([c.spo2 for c in points])
    spo2_ax.plot(xs, ys, marker="o", color="#1565c0", lw=1.5, ms=4)
    low_y = min([*ys, bands.spo2_red_below]) - 3
    spo2_ax.set_ylim(max(50, low_y), 100)
    spo2_ax.set_ylabel(t(lang, "health.chart.spo2"), **fontkw)
    # heart rate
    hr_ax.axhspan(bands.hr_amber_over, 230, color=AMBER, alpha=0.15, lw=0)
    xs, ys = series([c.heart_rate for c in points])
    hr_ax.plot(xs, ys, marker="o", color="#6a1b9a", lw=1.5, ms=4)
    hr_ax.set_ylim(max(30, min([*ys, 60]) - 10), max([*ys, bands.hr_amber_over]) + 15)
    # Lake Louise total
    lls_ax.axhspan(bands.lls_amber_from, bands.lls_red_from, color=AMBER, alpha=0.15, lw=0)
    lls_ax.axhspan(bands.lls_red_from, 12.5, color=RED, alpha=0.15, lw=0)
    xs, ys = series([c.lls_total for c in points])
    lls_ax.bar(xs, ys, width=0.3, color="#455a64")
    lls_ax.set_ylim(0, 12.5)
    for ax, key in ((hr_ax, "health.chart.hr"), (lls_ax, "health.chart.lls")):
        ax.set_ylabel(t(lang, key), **fontkw)
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.set_xlim(left - timedelta(hours=12), right + timedelta(hours=12))
    lls_ax.xaxis.set_major_formatter(DateFormatter("%m-%d", tz=zone))  # type: ignore[no-untyped-call]
    figure.autofmt_xdate()
    title = t(
        lang, "health.chart.title", start=left.strftime("%Y-%m-%d"), end=right.strftime("%Y-%m-%d")
    )
    figure.suptitle(title, **fontkw)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def render_for(
    session: Session,
    person: Person,
    config: HealthConfig,
    *,
    days: int = 30,
    lang: str | None = None,
) -> bytes:
    """The person's chart over the last `days` days, in `lang` (default: theirs)."""
    assert person.id is not None
    end = clock.now()
    start = end - timedelta(days=days)
    points = summary.since(session, person.id, start)
    bands = bands_for(person, config.thresholds)
    return render(points, bands, lang or person.language, start=start, end=end, zone=config.zone)
