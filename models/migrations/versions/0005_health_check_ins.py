"""health check-ins

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import models.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "health_checkin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("feeling", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("red_flags", sa.JSON(), nullable=False),
        sa.Column("cough_or_breathless", sa.Boolean(), nullable=True),
        sa.Column("headache", sa.Integer(), nullable=True),
        sa.Column("gi", sa.Integer(), nullable=True),
        sa.Column("fatigue", sa.Integer(), nullable=True),
        sa.Column("dizziness", sa.Integer(), nullable=True),
        sa.Column("functional", sa.Integer(), nullable=True),
        sa.Column("lls_total", sa.Integer(), nullable=True),
        sa.Column("spo2", sa.Integer(), nullable=True),
        sa.Column("no_oximeter", sa.Boolean(), nullable=False),
        sa.Column("heart_rate", sa.Integer(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("systolic", sa.Integer(), nullable=True),
        sa.Column("diastolic", sa.Integer(), nullable=True),
        sa.Column("systolic_2", sa.Integer(), nullable=True),
        sa.Column("diastolic_2", sa.Integer(), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("altitude_m", sa.Integer(), nullable=True),
        sa.Column("tier", sa.String(length=8), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("ams", sa.Boolean(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("health_checkin", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_health_checkin_local_date"), ["local_date"], unique=False
        )
        batch_op.create_index("ix_health_checkin_person_at", ["person_id", "at"], unique=False)

    op.create_table(
        "health_missed_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("notified_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("person_id", "local_date", name="uq_health_missed_day"),
    )
    with op.batch_alter_table("health_missed_day", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_health_missed_day_local_date"), ["local_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_health_missed_day_person_id"), ["person_id"], unique=False
        )

    op.create_table(
        "health_reminder",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("local_time", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=True),
        sa.Column("paused_from", sa.Date(), nullable=True),
        sa.Column("paused_until", sa.Date(), nullable=True),
        sa.Column("updated_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("person_id"),
    )


def downgrade() -> None:
    op.drop_table("health_reminder")
    with op.batch_alter_table("health_missed_day", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_missed_day_person_id"))
        batch_op.drop_index(batch_op.f("ix_health_missed_day_local_date"))

    op.drop_table("health_missed_day")
    with op.batch_alter_table("health_checkin", schema=None) as batch_op:
        batch_op.drop_index("ix_health_checkin_person_at")
        batch_op.drop_index(batch_op.f("ix_health_checkin_local_date"))

    op.drop_table("health_checkin")
