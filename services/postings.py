"""Posting places for seconded cadres: prefectures, counties and county-seat elevations.

The data lives in ``services/data/postings.json`` (transcribed from the project's domain
note). A ``seat_elevation_m`` of ``None`` means no source gave a figure; it is never
estimated. In that case registration asks the cadre for their posting altitude, and the
cadre's own figure always wins over the county's anyway.

Codes are short ASCII strings (``"ganzi.kangding"``) so they fit in Telegram callback data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

MAX_CODE_LENGTH = 24
"""Longest allowed prefecture/county code (callback data is limited to 64 bytes)."""

_DATA_PACKAGE = "services"
_DATA_PATH = "data/postings.json"


@dataclass(frozen=True, slots=True)
class County:
    """A county (or, for Zhejiang, a host unit) a cadre can be posted to."""

    code: str
    prefecture_code: str
    name_zh: str
    name_en: str
    seat_zh: str | None
    seat_elevation_m: int | None
    note_zh: str | None
    note_en: str | None
    is_prefecture_seat: bool
    low_altitude: bool = False


@dataclass(frozen=True, slots=True)
class Prefecture:
    """A prefecture (or the Zhejiang training/study group) with its counties in source order."""

    code: str
    name_zh: str
    name_en: str
    counties: tuple[County, ...]
    low_altitude: bool
    short_name_zh: str | None = None
    short_name_en: str | None = None


def _is_zh(lang: str) -> bool:
    """``"zh-Hans"`` (or any ``zh*`` tag) selects Chinese; everything else selects English."""
    return lang.lower().startswith("zh")


def _check_code(code: Any, seen: set[str]) -> str:
    if not isinstance(code, str) or not code.isascii() or not 0 < len(code) <= MAX_CODE_LENGTH:
        raise ValueError(f"bad posting code: {code!r}")
    if code in seen:
        raise ValueError(f"duplicate posting code: {code!r}")
    seen.add(code)
    return code


class Postings:
    """Read-only lookup over all posting places."""

    def __init__(self, prefectures: list[Prefecture], *, version: int, sources: dict[str, str]):
        self.version = version
        self.sources = sources
        self._prefectures = {p.code: p for p in prefectures}
        self._counties = {c.code: c for p in prefectures for c in p.counties}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Postings:
        """Build from the parsed JSON, validating codes (ASCII, unique, short)."""
        seen: set[str] = set()
        prefectures = []
        for p in data["prefectures"]:
            pcode = _check_code(p["code"], seen)
            low = bool(p.get("low_altitude", False))
            counties = []
            for c in p["counties"]:
                ccode = _check_code(c["code"], seen)
                if not ccode.startswith(pcode + "."):
                    raise ValueError(f"county {ccode!r} is not under prefecture {pcode!r}")
                elevation = c.get("seat_elevation_m")
                if elevation is not None and (
                    isinstance(elevation, bool) or not isinstance(elevation, int)
                ):
                    raise ValueError(f"seat_elevation_m of {ccode!r} must be an integer or null")
                counties.append(
                    County(
                        code=ccode,
                        prefecture_code=pcode,
                        name_zh=c["name_zh"],
                        name_en=c["name_en"],
                        seat_zh=c.get("seat_zh"),
                        seat_elevation_m=elevation,
                        note_zh=c.get("note_zh"),
                        note_en=c.get("note_en"),
                        is_prefecture_seat=bool(c.get("is_prefecture_seat", False)),
                        low_altitude=low or bool(c.get("low_altitude", False)),
                    )
                )
            prefectures.append(
                Prefecture(
                    code=pcode,
                    name_zh=p["name_zh"],
                    name_en=p["name_en"],
                    counties=tuple(counties),
                    low_altitude=low,
                    short_name_zh=p.get("short_name_zh"),
                    short_name_en=p.get("short_name_en"),
                )
            )
        return cls(prefectures, version=int(data["version"]), sources=dict(data.get("sources", {})))

    def prefectures(self) -> list[Prefecture]:
        """All prefectures in source order (the Zhejiang group last)."""
        return list(self._prefectures.values())

    def prefecture(self, code: str) -> Prefecture | None:
        return self._prefectures.get(code)

    def county(self, code: str) -> County | None:
        return self._counties.get(code)

    def counties(self, prefecture_code: str) -> list[County]:
        """Counties of a prefecture in source order; empty for an unknown code."""
        prefecture = self._prefectures.get(prefecture_code)
        return list(prefecture.counties) if prefecture else []

    def name(self, code: str, lang: str, *, short: bool = False) -> str:
        """Display name of a prefecture or county code.

        ``lang`` is ``"zh-Hans"`` or ``"en"`` (any ``zh*`` tag means Chinese, anything else
        English). ``short`` picks a prefecture's short name (e.g. "甘孜州"/"Ganzi") when it has
        one. Raises ``KeyError`` for an unknown code.
        """
        zh = _is_zh(lang)
        if (p := self._prefectures.get(code)) is not None:
            short_name = p.short_name_zh if zh else p.short_name_en
            if short and short_name:
                return short_name
            return p.name_zh if zh else p.name_en
        if (c := self._counties.get(code)) is not None:
            return c.name_zh if zh else c.name_en
        raise KeyError(code)

    def seat_name(self, code: str, lang: str) -> str:
        """A county's seat as the reader knows it: the town's Chinese name for a Chinese
        reader, the county's name otherwise (the catalog says "the county seat of …")."""
        county = self._counties[code]
        if _is_zh(lang) and county.seat_zh:
            return county.seat_zh
        return self.name(code, lang)

    def needs_altitude(self, county_code: str) -> bool:
        """Whether registration must ask the cadre for their posting altitude.

        True when the county has no known seat elevation and is not a low-altitude posting.
        False for an unknown code. (Even when False, a cadre-supplied altitude wins.)
        """
        county = self._counties.get(county_code)
        if county is None:
            return False
        return county.seat_elevation_m is None and not county.low_altitude


@cache
def load_postings() -> Postings:
    """Load and cache the bundled ``services/data/postings.json``."""
    text = files(_DATA_PACKAGE).joinpath(_DATA_PATH).read_text(encoding="utf-8")
    return Postings.from_dict(json.loads(text))
