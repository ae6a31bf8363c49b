"""Every spreadsheet the bot hands out goes through the one writer (services/tables.py), so a
name that a spreadsheet program would run as a formula reaches it as text."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from openpyxl import load_workbook

from services import broadcasts, people, roster_import, tables
from services.alerts import policy as alerts_policy
from services.alerts import raising, timeline
from services.broadcasts import Draft
from services.care import areas
from services.care.rules import CareConfig
from services.health import checkins, reports
from services.health.assessment import Readings
from tests.support import factories
from tests.support.checkin_helpers import CONFIG, POLICY

ROOT = Path(__file__).resolve().parents[2]
CARE = CareConfig(
    zone=POLICY.zone, reminder_seconds=9 * 3600, grace=timedelta(hours=8), escalation_days=7
)
HOSTILE = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "@SUM(1)"]


def csv_cells(data: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) for cell in row]


def xlsx_cells(data: bytes) -> list[object]:
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    return [cell for row in sheet.values for cell in row]


def assert_defused(cells: list[object], names: list[str]) -> None:
    cells = [c.replace("\r", "\n") if isinstance(c, str) else c for c in cells]  # XLSX: \n
    for name in (n.replace("\r", "\n") for n in names):
        assert "'" + name in cells, f"{name!r} not defused"
        assert name not in cells
    assert not [c for c in cells if isinstance(c, str) and c[:1] in tables.FORMULA_STARTS]


@pytest.fixture
def hostile(db) -> list:
    """One cadre per hostile name, all in Ganzi, registered a while ago."""
    with time_machine.travel(datetime(2026, 3, 1, 2, 0, tzinfo=UTC), tick=False):
        return [
            factories.person(db, 1001 + n, real_name=name, display_name=name)
            for n, name in enumerate(HOSTILE)
        ]


def test_the_guard_covers_every_formula_start():
    for value in [*HOSTILE, "-2+3"]:
        assert tables.safe_cell(value) == "'" + value
    assert tables.safe_cell(-3) == -3 and tables.safe_cell("Li Wei") == "Li Wei"
    assert_defused(csv_cells(tables.to_csv(["name"], [[v] for v in HOSTILE])), HOSTILE)
    assert_defused(xlsx_cells(tables.to_xlsx(["name"], [[v] for v in HOSTILE], "t")), HOSTILE)


def test_no_module_writes_a_spreadsheet_of_its_own():
    """csv.writer and openpyxl's Workbook appear in services/tables.py only."""
    pattern = re.compile(r"csv\.(writer|DictWriter)\(|\bWorkbook\(")
    found = [
        str(path.relative_to(ROOT))
        for package in ("services", "handlers", "webapp", "bot", "scheduler")
        for path in (ROOT / package).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert found == ["services/tables.py"]


def test_the_overdue_and_upcoming_csv_defuses_names(db, hostile):
    with time_machine.travel(datetime(2026, 3, 20, 2, 0, tzinfo=UTC), tick=False):
        rows = db.call(areas.area_rows, CARE, None)
    assert_defused(csv_cells(areas.rows_to_csv(rows, "en")), HOSTILE)


def test_the_alerts_csv_and_timeline_csv_defuse_names(db, hostile):
    admin = db.call(people.find, factories.ADMIN_ID)
    policy = alerts_policy.Policy(ack_timeout=180, repeat_interval=300, zone=POLICY.zone)
    ids = [
        db.call(raising.raise_alert, person_id=p.id, cause="sos", policy=policy) for p in hostile
    ]
    assert_defused(csv_cells(db.call(timeline.export_csv, admin)), HOSTILE)
    events = csv_cells(db.call(timeline.timeline_csv, ids[0], "en", POLICY.zone))
    assert not [c for c in events if c[:1] in tables.FORMULA_STARTS]


def test_the_broadcast_report_csv_defuses_names(db, hostile):
    admin = factories.admin(db)
    draft = Draft(kind="text", texts={"zh-Hans": "中文", "en": "English"})
    broadcast = db.call(broadcasts.create, admin, admin.telegram_id, draft)
    data = db.call(broadcasts.csv_export, admin, broadcast.id, POLICY.zone)
    assert_defused(csv_cells(data), HOSTILE)


def test_the_checkin_export_defuses_names_in_csv_and_xlsx(db, hostile):
    admin = db.call(people.find, factories.ADMIN_ID)
    now = datetime.now(UTC)
    with time_machine.travel(now - timedelta(minutes=5), tick=False):
        for person in hostile:
            db.call(checkins.submit, person.id, Readings(spo2=95), config=CONFIG, policy=POLICY)
    today = now.astimezone(POLICY.zone).date()
    data = db.call(reports.export, admin, today - timedelta(days=1), today, CONFIG)
    assert_defused(csv_cells(reports.to_csv(data)), HOSTILE)
    assert_defused(xlsx_cells(reports.to_xlsx(data)), HOSTILE)


def test_the_roster_report_defuses_cells(db):
    admin = factories.admin(db)
    rows = [list(roster_import.COLUMNS)] + [
        [name] + [""] * (len(roster_import.COLUMNS) - 1) for name in HOSTILE
    ]
    result = db.call(roster_import.import_rows, admin, rows, "en")
    assert len(result.refused) == len(HOSTILE)
    cells = xlsx_cells(roster_import.report_xlsx(result, "en", CONFIG.zone))
    assert_defused(cells, [name for name in HOSTILE if name == name.strip()])  # cells stripped
