"""Roster import: the Organization Department's spreadsheet of a cohort becomes *expected*
people, who join by /start and sharing their own phone number (docs/board.md).

Every row is checked (name, phone, prefecture and county known in postings.json, dates,
duplicates within the file and against everyone already registered or expected); the
report lists the accepted count and each refused row with its reason. Consent is never
imported: the person gives it themselves when they join.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models import Invitation, Person, PersonTag, Role, Status
from models.people import AltitudeSource
from services import audit, clock, examples, people, tables
from services.broadcasts import normalize_tag
from services.i18n import t
from services.people import Draft, RegistrationError
from services.postings import load_postings
from services.validation import InvalidInput, parse_name, parse_phone, parse_unit

COLUMNS = (
    "name",
    "phone",
    "home_unit",
    "prefecture",
    "county",
    "assignment_start",
    "assignment_end",
    "cohort",
)
REQUIRED = COLUMNS[:-1]
# What a header cell may say for each column (lower case; the template's own words first).
ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "姓名"),
    "phone": ("phone", "手机", "电话"),
    "home_unit": ("home_unit", "home unit", "派出单位", "单位"),
    "prefecture": ("prefecture", "州", "市"),
    "county": ("county", "县", "区"),
    "assignment_start": ("assignment_start", "start", "开始"),
    "assignment_end": ("assignment_end", "end", "结束"),
    "cohort": ("cohort", "批次", "tag"),
}
MAX_ROWS = 10_000
INSERT_BATCH = 1000


@dataclass
class Refused:
    row: int  # the spreadsheet's row number (the header is row 1)
    values: list[Any]
    reason: str  # catalog key (import.reason.*)
    detail: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str, zone: ZoneInfo) -> str:
        """The reason in `lang`; a date refused suggests one, local to `zone`."""
        return t(lang, self.reason, **examples.values(zone), **self.detail)


@dataclass
class Result:
    accepted: int = 0
    refused: list[Refused] = field(default_factory=list)
    problem: str | None = None  # a catalog key when the file as a whole was refused
    rows: int = 0


# ---------------------------------------------------------------------------- template


def template_xlsx(lang: str) -> bytes:
    """The template: the column names and one example row."""
    example = [
        t(lang, "import.example.name"),
        "13800138000",
        t(lang, "import.example.unit"),
        "ganzi",
        "ganzi.litang",
        "2026-03-01",
        "2027-03-01",
        "2026-spring",
    ]
    return tables.to_xlsx(COLUMNS, [example], "roster")


# ---------------------------------------------------------------------------- checking


def _header(cells: list[Any]) -> dict[str, int] | None:
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        text = str(cell or "").strip().lower()
        if not text:
            continue
        for column in COLUMNS:
            if column not in found and any(alias in text for alias in ALIASES[column]):
                found[column] = index
                break
    return found if all(c in found for c in REQUIRED) else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a phone number Excel stored as a number
    return str(value).strip()


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value).replace("/", "-").replace(".", "-")
    try:
        return date.fromisoformat(text)
    except ValueError:
        parts = text.split("-")
        if len(parts) == 3 and all(p.isascii() and p.isdigit() for p in parts):
            try:
                return date(int(parts[0]), int(parts[1]), int(parts[2]))
            except ValueError:
                return None
        return None


class _Places:
    """Prefectures and counties by code or by name (Chinese or English)."""

    def __init__(self) -> None:
        postings = load_postings()
        self.prefectures: dict[str, str] = {}
        self.counties: dict[tuple[str, str], str] = {}
        for pref in postings.prefectures():
            for name in (
                pref.code,
                pref.name_zh,
                pref.name_en,
                pref.short_name_zh,
                pref.short_name_en,
            ):
                if name:
                    self.prefectures[name.strip().lower()] = pref.code
            for county in pref.counties:
                short = county.code.split(".", 1)[-1]  # "aba.barkam": "barkam"
                for name in (county.code, short, county.name_zh, county.name_en):
                    if name:
                        self.counties[(pref.code, name.strip().lower())] = county.code

    def prefecture(self, raw: str) -> str | None:
        return self.prefectures.get(raw.strip().lower())

    def county(self, prefecture: str, raw: str) -> str | None:
        return self.counties.get((prefecture, raw.strip().lower()))


def check_rows(session: Session, rows: list[list[Any]]) -> tuple[Result, list[dict[str, Any]]]:
    """Check every row; the accepted ones as Person column values (not yet stored)."""
    result = Result()
    if not rows:
        result.problem = "import.empty"
        return result, []
    header = _header(rows[0])
    if header is None:
        result.problem = "import.bad_header"
        return result, []
    body = [
        (number, row) for number, row in enumerate(rows[1:], start=2) if any(_text(c) for c in row)
    ]
    if len(body) > MAX_ROWS:
        result.problem = "import.too_many"
        return result, []
    result.rows = len(body)
    places = _Places()
    seen: dict[str, int] = {}
    accepted: list[dict[str, Any]] = []
    candidates: list[tuple[int, list[Any]]] = []
    today = clock.now().date()
    for number, row in body:
        cells = {c: row[i] if i < len(row) else None for c, i in header.items()}
        values = [cells.get(c) for c in COLUMNS]

        def refuse(reason: str, **detail: Any) -> None:
            result.refused.append(Refused(number, values, f"import.reason.{reason}", detail))  # noqa: B023

        try:
            name = parse_name(_text(cells["name"]))
        except InvalidInput:
            refuse("name")
            continue
        try:
            phone = parse_phone(_text(cells["phone"]))
        except InvalidInput:
            refuse("phone")
            continue
        try:
            unit = parse_unit(_text(cells["home_unit"]))
        except InvalidInput:
            refuse("unit")
            continue
        prefecture = places.prefecture(_text(cells["prefecture"]))
        if prefecture is None:
            refuse("prefecture", value=_text(cells["prefecture"]))
            continue
        county = places.county(prefecture, _text(cells["county"]))
        if county is None:
            refuse("county", value=_text(cells["county"]))
            continue
        start, end = _date(cells["assignment_start"]), _date(cells["assignment_end"])
        if start is None:
            refuse("start")
            continue
        if end is None:
            refuse("end")
            continue
        if end <= start or end < today:
            refuse("dates")
            continue
        raw_tag = _text(cells.get("cohort"))
        tag = normalize_tag(raw_tag) if raw_tag else None
        if raw_tag and tag is None:
            refuse("cohort")
            continue
        if phone in seen:
            refuse("duplicate", row=seen[phone])
            continue
        seen[phone] = number
        altitude = people.posting_altitude(prefecture, county)
        candidates.append(
            (number, values),
        )
        accepted.append(
            {
                "real_name": name,
                "display_name": name,
                "phone": phone,
                "home_unit": unit,
                "prefecture": prefecture,
                "county": county,
                "posting_altitude_m": altitude,
                "altitude_source": AltitudeSource.COUNTY if altitude is not None else None,
                "assignment_start": start,
                "assignment_end": end,
                "tag": tag,
            }
        )
    # Against everyone registered or expected: only this file's phones are looked up (by
    # the phone index), not the whole population.
    known = _known_phones(session, [row["phone"] for row in accepted])
    kept: list[dict[str, Any]] = []
    for (number, values), entry in zip(candidates, accepted, strict=True):
        status = known.get(entry["phone"])
        if status is None:
            kept.append(entry)
            continue
        reason = "expected" if status == Status.EXPECTED else "registered"
        result.refused.append(Refused(number, values, f"import.reason.{reason}"))
    result.refused.sort(key=lambda refused: refused.row)
    result.accepted = len(kept)
    return result, kept


def _known_phones(session: Session, phones: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    person = Person.__table__  # type: ignore[attr-defined]
    for start in range(0, len(phones), INSERT_BATCH):
        batch = phones[start : start + INSERT_BATCH]
        query = sa_select(person.c.phone, person.c.status).where(person.c.phone.in_(batch))
        found.update({phone: status for phone, status in session.execute(query)})
    return found


def import_rows(session: Session, actor: Person, rows: list[list[Any]], language: str) -> Result:
    """Check the rows and store the accepted ones as expected people (with their cohort
    tag), in one transaction; audited."""
    result, accepted = check_rows(session, rows)
    if result.problem is not None:
        return result
    now = clock.now()
    person = Person.__table__  # type: ignore[attr-defined]
    tag_table = PersonTag.__table__  # type: ignore[attr-defined]
    for start in range(0, len(accepted), INSERT_BATCH):
        batch = accepted[start : start + INSERT_BATCH]
        values = [
            {
                **{k: v for k, v in row.items() if k != "tag"},
                "telegram_id": None,
                "language": language,
                "role": Role.CADRE.value,
                "status": Status.EXPECTED.value,
                "created_at": now,
                "updated_at": now,
            }
            for row in batch
        ]
        copy = session.get_bind().dialect.name == "postgresql"
        if copy:
            ids = _copy_people(session, values)
        else:
            ids = list(
                session.execute(insert(person).returning(person.c.id), values).scalars().all()
            )
        tags = [
            {"person_id": pid, "tag": row["tag"]}
            for pid, row in zip(ids, batch, strict=True)
            if row["tag"]
        ]
        if tags and copy:
            _copy(session, "person_tag", tags)
        elif tags:
            session.execute(insert(tag_table), tags)
    audit.record(
        session,
        "roster.imported",
        actor=actor.telegram_id,
        accepted=result.accepted,
        refused=len(result.refused),
    )
    return result


def _copy_people(session: Session, values: list[dict[str, Any]]) -> list[int]:
    """PostgreSQL: the rows by COPY (a multi-row INSERT of 5,000 people spent seconds
    building and parsing its statement), then their ids by phone, in `values`' order.
    The phones are new (check_rows refused any already known), so each finds its row."""
    raw = _copy(session, "person", values)
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT phone, id FROM person WHERE status = 'expected' AND phone = ANY(%s)",
            ([row["phone"] for row in values],),
        )
        found = dict(cursor.fetchall())
    return [found[row["phone"]] for row in values]


def _copy(session: Session, table: str, values: list[dict[str, Any]]) -> Any:
    """COPY `values` (dicts of the same columns) into `table`; the psycopg connection."""
    columns = list(values[0])
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        names = ", ".join(columns)
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in values:
                copy.write_row([_plain(row[c]) for c in columns])
    return raw


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, AltitudeSource) else value


def report_text(lang: str, result: Result, shown: int, zone: ZoneInfo) -> str:
    """The report as the chat and the board give it: the counts and the first `shown`
    refused rows (all of them are in report_xlsx); example dates local to `zone`."""
    lines = [
        t(
            lang,
            "import.report",
            count=result.rows,
            accepted=result.accepted,
            refused=len(result.refused),
        )
    ]
    for refused in result.refused[:shown]:
        lines.append(
            t(lang, "import.report.line", row=refused.row, reason=refused.text(lang, zone))
        )
    if len(result.refused) > shown:
        lines.append(t(lang, "import.report.more", count=len(result.refused) - shown))
    return "\n".join(lines)


def report_xlsx(result: Result, lang: str, zone: ZoneInfo) -> bytes:
    """Each refused row: its number, its cells as read, and the reason."""
    columns = ("row", *COLUMNS, "reason")
    rows = [[r.row, *(_text(v) for v in r.values), r.text(lang, zone)] for r in result.refused]
    return tables.to_xlsx(columns, rows, "refused")


# ---------------------------------------------------------------------------- joining


def expected_by_phone(session: Session, phone: str) -> Person | None:
    return session.exec(
        select(Person).where(Person.phone == phone, Person.status == Status.EXPECTED)
    ).first()


def prefill(draft: Draft, expected: Person) -> list[str]:
    """Fill the draft from the roster; the form fields no longer to ask."""
    draft.home_unit = expected.home_unit
    draft.prefecture = expected.prefecture
    draft.county = expected.county
    draft.posting_altitude_m = expected.posting_altitude_m
    draft.altitude_source = expected.altitude_source
    draft.assignment_start = (
        expected.assignment_start.isoformat() if expected.assignment_start else None
    )
    draft.assignment_end = expected.assignment_end.isoformat() if expected.assignment_end else None
    filled = ["home_unit", "prefecture", "county", "assignment_start", "assignment_end"]
    if expected.posting_altitude_m is not None:
        filled.append("altitude")
    return filled


def claim(
    session: Session, telegram_id: int, display_name: str, draft: Draft, expected_id: int
) -> Person:
    """The expected person joins: registered from the confirmed draft (with their own
    consent and emergency contact) and active at once, their cohort tags kept. When the
    roster entry is gone or the phone was changed since, this is an ordinary registration
    waiting for approval."""
    expected = session.get(Person, expected_id)
    by_link = expected is not None and _personal_code(session, expected) == draft.invitation
    if (
        expected is None
        or expected.status != Status.EXPECTED
        or not (by_link or expected.phone == draft.phone)
    ):
        return people.submit_registration(session, telegram_id, display_name, draft)
    if people.find(session, telegram_id) is not None:
        raise RegistrationError("reg.already_registered")
    tags = [
        row.tag for row in session.exec(select(PersonTag).where(PersonTag.person_id == expected_id))
    ]
    link = session.get(Invitation, expected.invitation_id) if expected.invitation_id else None
    session.delete(expected)  # its tags go with it (ON DELETE CASCADE), re-added below
    session.flush()
    person = people.submit_registration(
        session, telegram_id, display_name, replace(draft, invitation=None)
    )
    if link is not None:  # their personal link: used now, or no longer needed
        if by_link:
            link.uses += 1
            person.invitation_id = link.id
        else:
            link.revoked = True
        session.add(link)
    person.status = Status.ACTIVE
    session.add(person)
    assert person.id is not None
    for tag in tags:
        session.add(PersonTag(person_id=person.id, tag=tag))
    audit.record(
        session,
        "registration.approved",
        actor=None,
        target_person_id=person.id,
        via="roster_link" if by_link else "roster",
    )
    return person


def _personal_code(session: Session, expected: Person) -> str | None:
    if expected.invitation_id is None:
        return None
    link = session.get(Invitation, expected.invitation_id)
    return link.code if link is not None and not link.revoked else None


def expected_by_invitation(session: Session, code: str) -> Person | None:
    """The expected person whose personal invitation link this is (usable), or None."""
    if people.invitation_problem(session, code) is not None:
        return None
    return session.exec(
        select(Person)
        .join(Invitation, col(Invitation.id) == col(Person.invitation_id))
        .where(Invitation.code == code, Person.status == Status.EXPECTED)
    ).first()


INVITATION_COLUMNS = ("name", "phone", "prefecture", "county", "cohort", "link")


def invitation_links(
    session: Session, actor: Person, link_of: Callable[[str], str], lang: str
) -> tuple[list[str], list[list[Any]]]:
    """One personal invitation link per expected person (created on first export: a
    single-use cadre invitation, kept on the person), as the rows of a spreadsheet for
    services.tables. Audited (`roster.links_exported`)."""
    expected = list(
        session.exec(
            select(Person).where(Person.status == Status.EXPECTED).order_by(col(Person.id))
        )
    )
    codes: dict[int, str] = {}
    ids = [p.invitation_id for p in expected if p.invitation_id is not None]
    for start in range(0, len(ids), INSERT_BATCH):
        batch = ids[start : start + INSERT_BATCH]
        for link in session.exec(select(Invitation).where(col(Invitation.id).in_(batch))):
            if not link.revoked and link.uses == 0 and link.id is not None:
                codes[link.id] = link.code
    created = 0
    for person in expected:
        if person.invitation_id in codes:
            continue
        link = Invitation(
            code=secrets.token_urlsafe(12),
            role=Role.CADRE,
            created_by=actor.telegram_id,
            created_at=clock.now(),
            max_uses=1,
        )
        session.add(link)
        session.flush()
        assert link.id is not None
        person.invitation_id = link.id
        session.add(person)
        codes[link.id] = link.code
        created += 1
    tags = _tags_of(session, [p.id for p in expected if p.id is not None])
    postings = load_postings()
    rows = [
        [
            p.real_name,
            p.phone,
            postings.name(p.prefecture, lang, short=True) if p.prefecture else "",
            postings.name(p.county, lang) if p.county else "",
            " ".join(tags.get(p.id or 0, [])),
            link_of(codes[p.invitation_id or 0]),
        ]
        for p in expected
    ]
    audit.record(
        session, "roster.links_exported", actor=actor.telegram_id, rows=len(rows), created=created
    )
    return list(INVITATION_COLUMNS), rows


def _tags_of(session: Session, person_ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for start in range(0, len(person_ids), INSERT_BATCH):
        batch = person_ids[start : start + INSERT_BATCH]
        query = select(PersonTag).where(col(PersonTag.person_id).in_(batch))
        for row in session.exec(query.order_by(col(PersonTag.tag))):
            found.setdefault(row.person_id, []).append(row.tag)
    return found


def not_joined(session: Session, limit: int = 100, offset: int = 0) -> tuple[int, list[Person]]:
    """Expected people who have not joined yet: how many, and `limit` of them from
    `offset` (in the order they were imported)."""
    from sqlalchemy import func

    count = session.exec(
        select(func.count()).select_from(Person).where(Person.status == Status.EXPECTED)
    ).one()
    first = list(
        session.exec(
            select(Person)
            .where(Person.status == Status.EXPECTED)
            .order_by(col(Person.id))
            .offset(offset)
            .limit(limit)
        )
    )
    return count, first
