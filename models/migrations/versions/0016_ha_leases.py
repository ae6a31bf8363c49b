"""high availability: leases on outbox rows being sent, the leader's row, the update inbox

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.types import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild on SQLite, so outbox ids stay AUTOINCREMENT).
    # Rows left in "sending" get no lease: recovery treats them as expired.
    op.add_column("outbox", sa.Column("lease_owner", sa.String(length=80), nullable=True))
    op.add_column("outbox", sa.Column("lease_expires_at", UTCDateTime(), nullable=True))
    op.create_table(
        "ha_leader",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=80), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("backend_pid", sa.Integer(), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Updates stored before Telegram is told they arrived (services/inbox.py).
    op.create_table(
        "update_inbox",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("handled_at", UTCDateTime(), nullable=True),
        sa.Column("resumed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("update_id"),
    )
    op.create_index("ix_update_inbox_user_id", "update_inbox", ["user_id"])
    op.create_index("ix_update_inbox_handled_at", "update_inbox", ["handled_at"])


def downgrade() -> None:
    op.drop_index("ix_update_inbox_handled_at", table_name="update_inbox")
    op.drop_index("ix_update_inbox_user_id", table_name="update_inbox")
    op.drop_table("update_inbox")
    op.drop_table("ha_leader")
    # SQLite rebuilds the table: keep AUTOINCREMENT (0011), so that ids are never reused.
    with op.batch_alter_table(
        "outbox", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
