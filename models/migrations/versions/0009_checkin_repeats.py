"""check-in repeats: identical readings counted when a check-in is stored

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VITALS = ("spo2", "heart_rate", "temperature_c", "systolic", "diastolic")
BATCH = 5000


def upgrade() -> None:
    # /today and the exports read the few check-ins that repeat earlier days' readings
    # instead of comparing three days of everyone's check-ins (docs/benchmarks.md).
    with op.batch_alter_table("health_checkin", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("identical_days_before", sa.Integer(), nullable=False, server_default="0")
        )
    connection = op.get_bind()
    update = sa.text("UPDATE health_checkin SET identical_days_before = :n WHERE id = :id")
    found = [{"n": repeats, "id": checkin_id} for checkin_id, repeats in _repeats(connection)]
    for start in range(0, len(found), BATCH):  # read first: few rows repeat (1 % at scale)
        connection.execute(update, found[start : start + BATCH])
    with op.batch_alter_table("health_checkin", schema=None) as batch_op:
        batch_op.create_index(
            "ix_health_checkin_repeats",
            ["local_date"],
            unique=False,
            postgresql_where=sa.text("identical_days_before > 0"),
            sqlite_where=sa.text("identical_days_before > 0"),
        )


def _repeats(connection: Any) -> Iterator[tuple[int, int]]:
    """(id, days) of the existing check-ins that repeat the previous days' readings, by
    the rule services.health.checkins.identical_days_before applies to new ones: the last
    check-in of the day before with the same readings (not all missing) adds its count + 1."""
    query = (
        sa.text(
            "SELECT id, person_id, local_date, " + ", ".join(VITALS) + " FROM health_checkin "
            "ORDER BY person_id, local_date, at, id"
        )
        .columns(local_date=sa.Date)
        .execution_options(stream_results=True, yield_per=BATCH)
    )
    person: int | None = None
    day: date | None = None
    before: tuple[tuple[Any, ...], int] | None = None  # the day before's last: readings, count
    last: tuple[tuple[Any, ...], int] | None = None  # this day's last so far
    for row in connection.execute(query):
        readings = tuple(row[3:])
        if row.person_id != person:
            person, day, before, last = row.person_id, None, None, None
        if row.local_date != day:
            follows = day is not None and row.local_date - day == timedelta(days=1)
            before = last if follows else None
            day = row.local_date
        repeats = 0
        if before is not None and readings == before[0] and any(v is not None for v in readings):
            repeats = before[1] + 1
        last = (readings, repeats)
        if repeats:
            yield row.id, repeats


def downgrade() -> None:
    with op.batch_alter_table("health_checkin", schema=None) as batch_op:
        batch_op.drop_index("ix_health_checkin_repeats")
        batch_op.drop_column("identical_days_before")
