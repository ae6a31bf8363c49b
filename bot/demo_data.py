"""The offline demo's people and their history (`cadre-bot demo`, bot/demo_chat.py): three
personas to act as (a cadre at 4,014 m, the duty officer on duty, an admin), a registration
waiting for approval, a week of check-ins with a RED evening, an open oxygen request, an
overdue examination and the demo's directory entries, created through the services as an
admin would create them, on a database that holds no one else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlmodel import Session, col, select

from config import Settings
from models import CareKind, CheckIn, OxygenUrgency, OxygenWhat, Person, Role
from services import clock, directory, oxygen, people, roster
from services.approvals import queue_requests as queue_approval_requests
from services.care import records
from services.care.rules import CareConfig
from services.health import checkins
from services.health.assessment import Readings, assess
from services.health.config import HealthConfig
from services.oxygen import OxygenConfig


@dataclass(frozen=True)
class PersonaSpec:
    key: str  # what /as takes
    telegram_id: int
    names: dict[str, str]  # real name by language (a Chinese name, or its romanisation)
    language: str  # the language of the person's bot, unless --language says otherwise
    location: tuple[float, float]  # what their location button sends


PERSONAS = (
    PersonaSpec("cadre", 1001, {"zh-Hans": "李伟", "en": "Li Wei"}, "zh-Hans", (29.9966, 100.2695)),
    PersonaSpec(
        "duty", 2001, {"zh-Hans": "张强", "en": "Zhang Qiang"}, "zh-Hans", (30.0498, 101.9630)
    ),
    PersonaSpec("admin", 9001, {"zh-Hans": "陈静", "en": "Chen Jing"}, "en", (30.6570, 104.0660)),
)
CADRE, DUTY, ADMIN = PERSONAS
# Someone who registered and waits for approval (the admin can approve them); not a persona.
PENDING = PersonaSpec(
    "pending", 1002, {"zh-Hans": "王小明", "en": "Wang Xiaoming"}, "zh-Hans", (30.0, 101.96)
)
HOME_UNIT = {
    "cadre": {"zh-Hans": "杭州市卫生健康委员会", "en": "Hangzhou Health Commission"},
    "pending": {"zh-Hans": "宁波市教育局（基础教育处）", "en": "Ningbo Education Bureau"},
    "duty": {
        "zh-Hans": "中共甘孜州委组织部",
        "en": "Organization Department of the Ganzi Prefecture Party Committee",
    },
}
DEMO_DIRECTORY = (
    ("hospital", {"zh-Hans": "演示医院（虚构号码）", "en": "Demo hospital (fictitious number)"}),
    (
        "oxygen",
        {"zh-Hans": "演示制氧站（虚构号码）", "en": "Demo oxygen station (fictitious number)"},
    ),
)
DEMO_PHONE = "0000-0000000"
# Six mornings since the arrival a week ago: SpO2 around the expected 84 % at 4,014 m, a
# headache and poor appetite on the second and third days (Lake Louise 3: AMBER).
HISTORY = (
    Readings(headache=1, gi=0, fatigue=1, dizziness=0, functional=0, spo2=86, heart_rate=92),
    Readings(headache=1, gi=1, fatigue=1, dizziness=0, functional=1, spo2=85, heart_rate=94),
    Readings(headache=2, gi=1, fatigue=0, dizziness=0, functional=1, spo2=84, heart_rate=96),
    Readings(headache=1, gi=0, fatigue=1, dizziness=0, functional=0, spo2=86, heart_rate=90),
    Readings(headache=0, gi=0, fatigue=1, dizziness=0, functional=0, spo2=87, heart_rate=88),
    Readings(headache=0, gi=0, fatigue=0, dizziness=0, functional=0, spo2=88, heart_rate=86),
)
# An evening check-in on the third day: severe headache and SpO2 78 % (RED), since better.
RED_EVENING = (
    2,
    Readings(headache=3, gi=2, fatigue=2, dizziness=2, functional=2, spo2=78, heart_rate=118),
)
OVERDUE_EXAM_DAYS = 3  # the cadre's examination was due this many days ago


def persona_languages(language: str | None) -> dict[str, str]:
    return {spec.key: language or spec.language for spec in PERSONAS}


class NotADemoDatabase(Exception):
    """The database has people of its own: the demo would mix its people into real data."""


def seed(session: Session, languages: dict[str, str], settings: Settings) -> bool:
    """The demo's people, duty, directory and check-in history (a RED evening among them),
    an open oxygen request, an overdue examination and a registration waiting for approval,
    through the services as an admin would create them. Returns whether anybody was missing
    (False: a kept database that has them all already)."""
    config = HealthConfig.from_settings(settings)
    ours = [spec.telegram_id for spec in (*PERSONAS, PENDING)]
    others = select(Person.id).where(
        col(Person.telegram_id).is_not(None), col(Person.telegram_id).not_in(ours)
    )
    if session.exec(others.limit(1)).first() is not None:
        raise NotADemoDatabase
    today = checkins.local_date(clock.now(), config.zone)

    def language(spec: PersonaSpec) -> str:
        return languages.get(spec.key, languages["cadre"])

    def name(spec: PersonaSpec) -> str:
        return spec.names[language(spec)]

    def draft(spec: PersonaSpec, county: str, start: date | None) -> people.Draft:
        """A seconded cadre has assignment dates (so schedules); a local officer has none."""
        lang = language(spec)
        return people.Draft(
            language=lang,
            consent_version=people.CONSENT_VERSION,
            real_name=name(spec),
            phone=f"+86138{spec.telegram_id:08d}",
            home_unit=HOME_UNIT[spec.key][lang],
            prefecture="ganzi",
            county=county,
            posting_altitude_m=people.posting_altitude("ganzi", county),
            altitude_source="county",
            assignment_start=start.isoformat() if start else None,
            assignment_end=(start + timedelta(days=730)).isoformat() if start else None,
            contact_name="王芳" if lang == "zh-Hans" else "Wang Fang",
            contact_phone="+8613900139000",
        )

    # Each person only if missing: a kept database may have lost one to /deleteme.
    created = False
    new_cadre: Person | None = None
    people.ensure_admins(session, [ADMIN.telegram_id], languages["admin"])
    admin = people.find(session, ADMIN.telegram_id)
    assert admin is not None
    if admin.real_name is None:
        created = True
        people.update_profile(
            session,
            ADMIN.telegram_id,
            real_name=name(ADMIN),
            phone=f"+86138{ADMIN.telegram_id:08d}",
            language=languages["admin"],
        )
    if people.find(session, CADRE.telegram_id) is None:
        created = True
        arrived = today - timedelta(days=len(HISTORY) + 1)
        cadre = people.submit_registration(
            session, CADRE.telegram_id, name(CADRE), draft(CADRE, "ganzi.litang", arrived)
        )
        assert cadre.id is not None
        # registered on arrival: monitored since (today's /today counts them as not yet in)
        cadre.created_at = checkins.local_midnight(arrived, config.zone)
        session.add(cadre)
        people.decide(session, admin, cadre.id, True)
        _history(session, cadre, arrived, config)
        new_cadre = cadre
    if people.find(session, DUTY.telegram_id) is None:
        created = True
        officer = people.submit_registration(
            session, DUTY.telegram_id, name(DUTY), draft(DUTY, "ganzi.kangding", None)
        )
        assert officer.id is not None
        people.decide(session, admin, officer.id, True)
        people.set_role(session, admin, officer.id, Role.DUTY_OFFICER)
        roster.go_on_duty(session, officer, None)
    if new_cadre is not None:  # after the officer is on duty: the request reaches them
        assert new_cadre.id is not None
        oxygen.create_request(
            session,
            new_cadre.id,
            OxygenWhat.CYLINDER,
            "理塘县城宿舍 3 号楼" if language(CADRE) == "zh-Hans" else "Litang dormitory, block 3",
            OxygenUrgency.TODAY,
            OxygenConfig.from_settings(settings),
        )
        due = today - timedelta(days=OVERDUE_EXAM_DAYS)
        care_config = CareConfig.from_settings(settings)
        records.set_due(session, admin, new_cadre.id, CareKind.EXAM, due, care_config)
    if people.find(session, PENDING.telegram_id) is None:
        created = True
        waiting = people.submit_registration(
            session, PENDING.telegram_id, name(PENDING), draft(PENDING, "ganzi.litang", today)
        )
        queue_approval_requests(session, waiting)
    directory.ensure_seeded(session)
    if not any(e.phone == DEMO_PHONE for e in directory.entries_of(session, "ganzi")):
        for kind, names in DEMO_DIRECTORY:
            entry = directory.add(session, admin, "ganzi", kind, names["zh-Hans"])
            entry.name_en = names["en"]
            assert entry.id is not None
            directory.update_field(session, admin, entry.id, "phone", DEMO_PHONE)
    return created


def _history(session: Session, cadre: Person, arrived: date, config: HealthConfig) -> None:
    """Morning check-ins since the arrival, assessed like real ones (no one is notified:
    they are in the past)."""
    assert cadre.id is not None
    altitude = cadre.posting_altitude_m
    ascent = checkins.local_midnight(arrived, config.zone)
    earlier: list[CheckIn] = []
    red_offset, red_readings = RED_EVENING
    moments = [(offset, time(8, 40), readings) for offset, readings in enumerate(HISTORY)]
    moments.insert(red_offset + 1, (red_offset, time(20, 10), red_readings))
    for offset, at_time, readings in moments:
        day = arrived + timedelta(days=offset + 1)
        at = datetime.combine(day, at_time, tzinfo=config.zone).astimezone(clock.now().tzinfo)
        assessment = assess(
            readings,
            altitude_m=altitude,
            low_altitude=False,
            now=at,
            history=[checkins.past(c) for c in earlier],
            ascent_at=ascent,
            thresholds=config.thresholds,
        )
        checkin = CheckIn(
            person_id=cadre.id,
            at=at,
            local_date=day,
            feeling={"green": "fine", "red": "unwell"}.get(assessment.tier, "not_well"),
            cough_or_breathless=False,
            headache=readings.headache,
            gi=readings.gi,
            fatigue=readings.fatigue,
            dizziness=readings.dizziness,
            functional=readings.functional,
            lls_total=assessment.lls_total,
            spo2=readings.spo2,
            heart_rate=readings.heart_rate,
            temperature_c=36.5,
            altitude_m=altitude,
            tier=assessment.tier,
            reasons=assessment.reason_keys,
            ams=assessment.ams,
        )
        session.add(checkin)
        earlier.append(checkin)
    session.flush()
