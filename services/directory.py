"""The emergency directory: national numbers and, per prefecture, hospitals and other
medical contacts, each with who last confirmed it and when.

The data file ``services/data/emergency_directory.json`` seeds the table: entries whose
``key`` is not in the database yet are added; admins' edits are never overwritten. The
hospitals ship as names without numbers (see docs/sources.md: a wrong number in an
emergency is worse than none) and admins fill them with /directory. The shipped national
numbers say where they were checked (``checked_zh``/``checked_en``) and when. An entry
without a phone is for the admins to fill: a cadre after an SOS never sees it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, or_, select

from models import DirectoryEntry, Person
from services import audit, clock
from services.db import insert_ignoring_existing
from services.i18n import t
from services.people import name_of
from services.postings import load_postings
from services.validation import number_text

KINDS = ("number", "hospital", "oxygen", "other")
EDITABLE = ("name", "phone", "address")
MAX_LENGTH = {"name": 100, "phone": 40, "address": 200}
NATIONAL = "cn"  # the pseudo-prefecture code of national entries in callback data


class DirectoryError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class SeedEntry:
    key: str
    prefecture: str | None
    kind: str
    name_zh: str
    name_en: str
    phone: str | None
    address: str | None
    sort: int
    confirmed_by: str | None
    confirmed_at: datetime | None
    checked_zh: str | None = None  # where a shipped number was checked
    checked_en: str | None = None


# What older data files stored as the confirmer of the national numbers: a source, not a
# person, shown untranslated. ensure_seeded() clears it so that `checked_*` is shown.
_LEGACY_SOURCE = "national number"


@cache
def seed_entries() -> tuple[SeedEntry, ...]:
    text = files("services").joinpath("data/emergency_directory.json").read_text("utf-8")
    data = json.loads(text)
    result = []
    for raw in data["entries"]:
        if raw["kind"] not in KINDS:
            raise ValueError(f"unknown directory kind {raw['kind']!r}")
        if raw.get("prefecture") and load_postings().prefecture(raw["prefecture"]) is None:
            raise ValueError(f"unknown prefecture {raw['prefecture']!r}")
        confirmed = raw.get("confirmed_at")
        result.append(
            SeedEntry(
                key=raw["key"],
                prefecture=raw.get("prefecture"),
                kind=raw["kind"],
                name_zh=raw["name_zh"],
                name_en=raw.get("name_en") or raw["name_zh"],
                phone=raw.get("phone"),
                address=raw.get("address"),
                sort=int(raw.get("sort", 100)),
                confirmed_by=raw.get("confirmed_by"),
                confirmed_at=datetime.fromisoformat(confirmed).replace(tzinfo=UTC)
                if confirmed
                else None,
                checked_zh=raw.get("checked_zh"),
                checked_en=raw.get("checked_en") or raw.get("checked_zh"),
            )
        )
    return tuple(result)


def _seed_of(entry: DirectoryEntry) -> SeedEntry | None:
    if entry.key is None:
        return None
    return next((seed for seed in seed_entries() if seed.key == entry.key), None)


def ensure_seeded(session: Session) -> int:
    """Add the data file's entries that the database does not have yet; returns how many.
    Safe when two transactions seed at once (the first SOS of two people, say): an entry
    another one added meanwhile is skipped, never an error. A shipped entry still carrying
    the old untranslated source as its confirmer gets the data file's source (an admin's
    confirmation is never touched)."""
    legacy = session.exec(
        select(DirectoryEntry).where(
            DirectoryEntry.confirmed_by == _LEGACY_SOURCE, col(DirectoryEntry.key).is_not(None)
        )
    )
    for entry in legacy:
        if _seed_of(entry) is not None:
            entry.confirmed_by = None
            session.add(entry)
    known = set(
        session.exec(select(DirectoryEntry.key).where(col(DirectoryEntry.key).is_not(None)))
    )
    rows: list[dict[str, object]] = [
        {
            "key": seed.key,
            "prefecture": seed.prefecture,
            "kind": seed.kind,
            "name_zh": seed.name_zh,
            "name_en": seed.name_en,
            "phone": seed.phone,
            "address": seed.address,
            "sort": seed.sort,
            "confirmed_by": seed.confirmed_by,
            "confirmed_at": seed.confirmed_at,
            "updated_at": clock.now(),
        }
        for seed in seed_entries()
        if seed.key not in known
    ]
    if rows:
        table = DirectoryEntry.__table__  # type: ignore[attr-defined]
        insert_ignoring_existing(session, table, rows, ["key"])
    return len(rows)


def entries_for(session: Session, prefecture: str | None) -> list[DirectoryEntry]:
    """National entries, then the prefecture's, in display order."""
    ensure_seeded(session)
    query = select(DirectoryEntry)
    if prefecture:
        query = query.where(
            or_(col(DirectoryEntry.prefecture).is_(None), DirectoryEntry.prefecture == prefecture)
        )
    else:
        query = query.where(col(DirectoryEntry.prefecture).is_(None))
    rows = list(session.exec(query))
    rows.sort(key=lambda e: (e.prefecture is not None, e.sort, e.id or 0))
    return rows


def entries_of(session: Session, prefecture: str | None) -> list[DirectoryEntry]:
    """Only one area's entries (national when None), for the admin editor."""
    ensure_seeded(session)
    if prefecture:
        query = select(DirectoryEntry).where(DirectoryEntry.prefecture == prefecture)
    else:
        query = select(DirectoryEntry).where(col(DirectoryEntry.prefecture).is_(None))
    rows = list(session.exec(query))
    rows.sort(key=lambda e: (e.sort, e.id or 0))
    return rows


def get(session: Session, entry_id: int) -> DirectoryEntry | None:
    return session.get(DirectoryEntry, entry_id)


def _confirmer(actor: Person) -> str:
    return name_of(actor, str(actor.telegram_id))[:100]


def _clean(field: str, value: str) -> str:
    text = " ".join(value.split())
    if not text or len(text) > MAX_LENGTH[field]:
        raise DirectoryError("sos.dir.invalid_value")
    if field == "phone" and not re.fullmatch(r"[0-9+() -]+", number_text(text)):
        raise DirectoryError("sos.dir.invalid_phone")
    return text


def _in_script(chinese: bool, name: str) -> bool:
    """Whether a name is written for Chinese readers (has Han characters) or, with
    `chinese` false, for English readers (has none)."""
    han = any("\u4e00" <= ch <= "\u9fff" for ch in name)
    return han if chinese else bool(name) and not han


def update_field(
    session: Session, actor: Person, entry_id: int, field: str, value: str
) -> DirectoryEntry | None:
    """Change one field; the admin who changed it has confirmed the entry now. A name is
    the name in the admin's language; the other language's name follows it only while it
    was a copy of the old one (an entry added in one language), so a Chinese renaming
    never puts Chinese into English texts."""
    if field not in EDITABLE:
        raise DirectoryError("sos.dir.invalid_value")
    entry = session.get(DirectoryEntry, entry_id)
    if entry is None:
        return None
    text = _clean(field, value)
    if field == "name":
        zh = actor.language.startswith("zh")
        old = entry.name_zh if zh else entry.name_en
        other = entry.name_en if zh else entry.name_zh
        # the other language's name was a copy (never translated): it follows, unless
        # that would put the wrong script where the copy had the right one
        follows = other in (old, "") and not (
            _in_script(not zh, other) and not _in_script(not zh, text)
        )
        entry.name_zh = text if zh or follows else entry.name_zh
        entry.name_en = text if not zh or follows else entry.name_en
    else:
        setattr(entry, field, text)
    _mark_confirmed(session, actor, entry, f"directory.{field}")
    return entry


def confirm(session: Session, actor: Person, entry_id: int) -> DirectoryEntry | None:
    """An admin checked that the entry is still right; an entry without a number has
    nothing to confirm (type its phone instead)."""
    entry = session.get(DirectoryEntry, entry_id)
    if entry is None:
        return None
    if not has_phone(entry):
        raise DirectoryError("sos.dir.confirm_no_phone")
    _mark_confirmed(session, actor, entry, "directory.confirmed")
    return entry


def _mark_confirmed(session: Session, actor: Person, entry: DirectoryEntry, action: str) -> None:
    now = clock.now()
    entry.confirmed_by = _confirmer(actor)
    entry.confirmed_at = now
    entry.updated_at = now
    session.add(entry)
    session.flush()
    audit.record(session, action, actor=actor.telegram_id, entry=entry.id)


def add(
    session: Session, actor: Person, prefecture: str | None, kind: str, name: str
) -> DirectoryEntry:
    if kind not in KINDS:
        raise DirectoryError("sos.dir.invalid_value")
    if prefecture is not None and load_postings().prefecture(prefecture) is None:
        raise DirectoryError("sos.dir.invalid_value")
    text = _clean("name", name)
    entry = DirectoryEntry(prefecture=prefecture, kind=kind, name_zh=text, name_en=text, sort=50)
    session.add(entry)
    session.flush()
    _mark_confirmed(session, actor, entry, "directory.added")
    return entry


def remove(session: Session, actor: Person, entry_id: int) -> bool:
    entry = session.get(DirectoryEntry, entry_id)
    if entry is None:
        return False
    if entry.key is not None and entry.key.startswith("cn."):
        raise DirectoryError("sos.dir.cannot_remove_national")
    session.delete(entry)
    audit.record(session, "directory.removed", actor=actor.telegram_id, entry=entry_id)
    return True


# ---------------------------------------------------------------------------- rendering


def entry_name(entry: DirectoryEntry, lang: str) -> str:
    return entry.name_zh if lang.startswith("zh") else (entry.name_en or entry.name_zh)


def has_phone(entry: DirectoryEntry) -> bool:
    """A number someone can dial (not empty, not a placeholder such as "-")."""
    return any(ch.isdigit() for ch in entry.phone or "")


def confirmed_text(entry: DirectoryEntry, lang: str, zone: ZoneInfo | None = None) -> str:
    if entry.confirmed_at is None:
        return t(lang, "sos.dir.never_confirmed")
    local = entry.confirmed_at.astimezone(zone) if zone else entry.confirmed_at
    seed = _seed_of(entry) if entry.confirmed_by is None else None
    if seed is not None and seed.checked_zh:
        source = seed.checked_zh if lang.startswith("zh") else seed.checked_en
        return t(lang, "sos.dir.checked_source", date=local.strftime("%Y-%m-%d"), source=source)
    return t(
        lang,
        "sos.dir.confirmed",
        date=local.strftime("%Y-%m-%d"),
        by=entry.confirmed_by or "-",
    )


def entry_line(entry: DirectoryEntry, lang: str, zone: ZoneInfo | None = None) -> str:
    """One line for the cadre: the number first, then what it is and when it was checked."""
    name = entry_name(entry, lang)
    confirmed = confirmed_text(entry, lang, zone)
    if has_phone(entry):
        return t(lang, "sos.dir.line", phone=entry.phone, name=name, confirmed=confirmed)
    return t(lang, "sos.dir.line_no_phone", name=name, confirmed=confirmed)


def render_for(
    session: Session, prefecture: str | None, lang: str, zone: ZoneInfo | None = None
) -> str:
    """What a cadre reads after an SOS: only entries with a number to call. Numbers in a
    row checked the same way and day (the national ones) say so once, under them."""
    entries = [e for e in entries_for(session, prefecture) if has_phone(e)]
    lines: list[str] = []
    index = 0
    while index < len(entries):
        confirmed = confirmed_text(entries[index], lang, zone)
        end = index + 1
        while end < len(entries) and confirmed_text(entries[end], lang, zone) == confirmed:
            end += 1
        if end - index == 1:
            lines.append(entry_line(entries[index], lang, zone))
        else:
            for entry in entries[index:end]:
                name = entry_name(entry, lang)
                lines.append(t(lang, "sos.dir.line_seed", phone=entry.phone, name=name))
            lines.append(t(lang, "sos.dir.above_confirmed", confirmed=confirmed))
        index = end
    return "\n".join(lines)


def render_seed(prefecture: str | None, lang: str) -> str:
    """The numbers of the data file alone (when the database cannot be read)."""
    lines = []
    for seed in seed_entries():
        if seed.prefecture not in (None, prefecture):
            continue
        name = seed.name_zh if lang.startswith("zh") else seed.name_en
        if seed.phone:
            lines.append(t(lang, "sos.dir.line_seed", phone=seed.phone, name=name))
    return "\n".join(lines)


def area_name(prefecture: str | None, lang: str) -> str:
    if prefecture is None:
        return t(lang, "sos.dir.national")
    return load_postings().name(prefecture, lang, short=True)


def snapshot(entry: DirectoryEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json")
