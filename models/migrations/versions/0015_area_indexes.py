"""area indexes: the board's and /today's area pages from indexes alone

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONITORED = "status = 'active' AND role IN ('cadre', 'duty_officer') AND prefecture IS NOT NULL"


def upgrade() -> None:
    # The area pages (the board's Today, /today) count an area's people by their state
    # today: who the check-in is for, by prefecture and id, with what decides whether they
    # are due (PostgreSQL reads it without the table: INCLUDE), and each person's latest
    # check-in of the day with its tier, in the order the ranking needs (no sort). The
    # second replaces the index on local_date alone (its first column). The people list
    # is newest first (/people, the board). Plain CREATE INDEX on SQLite too: a batch
    # rebuild would drop the tables' AUTOINCREMENT (0011).
    op.create_index(
        "ix_person_monitored",
        "person",
        ["prefecture", "id"],
        postgresql_include=["county", "created_at", "assignment_start", "assignment_end"],
        postgresql_where=sa.text(MONITORED),
        sqlite_where=sa.text(MONITORED),
    )
    op.create_index("ix_person_listed", "person", ["created_at", "id"])
    op.create_index(
        "ix_health_checkin_day",
        "health_checkin",
        ["local_date", "person_id", sa.text("at DESC"), sa.text("id DESC")],
        postgresql_include=["tier"],
    )
    op.drop_index("ix_health_checkin_local_date", table_name="health_checkin")


def downgrade() -> None:
    op.create_index("ix_health_checkin_local_date", "health_checkin", ["local_date"])
    op.drop_index("ix_health_checkin_day", table_name="health_checkin")
    op.drop_index("ix_person_listed", table_name="person")
    op.drop_index("ix_person_monitored", table_name="person")
