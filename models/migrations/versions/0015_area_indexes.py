"""area indexes: the area pages (the board, /today, /overdue, /people) from indexes

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

ACTIVE = "status = 'active'"
# what the area pages read of a person besides the prefecture and id (models.people, as it
# is at this revision: a migration does not import the models)
AREA_COLUMNS = (
    "role county created_at assignment_start assignment_end posting_altitude_m"
    " real_name display_name telegram_id"
).split()


def upgrade() -> None:
    # The area pages (the board's Today and Overdue, /today, /overdue) count and page an
    # area's people by their state today and their care items: the active people of a
    # prefecture in id order with what those pages read (PostgreSQL reads it without the
    # table: INCLUDE), and each person's latest check-in of the day with its tier in the
    # order the ranking needs (no sort; it replaces the index on local_date alone, its
    # first column). The people list is newest first (/people, the board), counted by
    # status and prefecture. Plain CREATE INDEX on SQLite too: a batch rebuild would drop
    # the tables' AUTOINCREMENT (0011).
    op.create_index(
        "ix_person_active",
        "person",
        ["prefecture", "id"],
        postgresql_include=AREA_COLUMNS,
        postgresql_where=sa.text(ACTIVE),
        sqlite_where=sa.text(ACTIVE),
    )
    op.create_index("ix_person_listed", "person", ["created_at", "id"])
    op.drop_index("ix_person_status", table_name="person")
    op.create_index("ix_person_status", "person", ["status", "prefecture"])
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
    op.drop_index("ix_person_status", table_name="person")
    op.create_index("ix_person_status", "person", ["status"])
    op.drop_index("ix_person_listed", table_name="person")
    op.drop_index("ix_person_active", table_name="person")
