"""Text helpers shared by the knowledge base: normalisation, scripts, redaction, slugs."""

from __future__ import annotations

import hashlib
import re
import unicodedata

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TAG = re.compile(r"<[^>\n]{0,200}>")
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"\s+")
_SLUG_DROP = re.compile(r"[^a-z0-9]+")

# Numbers that look like vital signs are not kept in question logs (no health data).
_VITALS = re.compile(
    r"(?:spo2|血氧(?:饱和度)?|心率|脉搏|体温|血压|heart rate|pulse|temperature|blood pressure|"
    r"saturation)\s*[:：]?\s*(?:是|为|is|of|at|was)?\s*\d{1,3}(?:[.,]\d+)?(?:\s*/\s*\d{1,3})?"
    r"|\d{1,3}(?:[.,]\d+)?\s*(?:%|％|bpm|次/分|次每分钟|℃|°c|°|度|mmhg|毫米汞柱)"
    r"|\d{2,3}\s*/\s*\d{2,3}",
    re.IGNORECASE,
)


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lower case, HTML-like tags dropped, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _TAG.sub(" ", _SCRIPT.sub(" ", text))
    return _SPACES.sub(" ", text).strip().lower()


def has_cjk(text: str) -> bool:
    return CJK.search(text) is not None


def guess_language(text: str) -> str:
    """zh-Hans when a fair share of the letters are Chinese characters, else en."""
    cjk = len(CJK.findall(text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "zh-Hans" if cjk and cjk * 3 >= latin else "en"


def meaningful_length(text: str) -> int:
    """Letters, digits and Chinese characters: what is left of a question without symbols."""
    return sum(1 for ch in text if ch.isalnum())


def redact(text: str) -> str:
    """Drop readings that look like vital signs (SpO2 85%, 38.5℃, 150/95) from logged text."""
    return _VITALS.sub("…", text)


def grouping_key(text: str, limit: int = 200) -> str:
    """Questions that differ only in case, punctuation or spacing group together."""
    cleaned = "".join(ch for ch in normalize(text) if ch.isalnum() or ch == " ")
    return _SPACES.sub(" ", cleaned).strip()[:limit]


def slugify(text: str) -> str:
    """ASCII slug for anchors and ids; Chinese-only text gets a short stable hash."""
    slug = _SLUG_DROP.sub("-", unicodedata.normalize("NFKC", text).lower()).strip("-")
    if slug:
        return slug[:48]
    return "s" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def short(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary where one is near, with an ellipsis."""
    text = _SPACES.sub(" ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + "…"
