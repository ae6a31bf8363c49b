"""unverified SOS: alerts raised by guests, pending, suspended or rejected people

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A guest who calls for help gets a minimal person row (status 'guest': a string
    # column, no schema change); the alert remembers that its caller was not verified.
    # Plain ADD COLUMN (SQLite too): a batch rebuild would drop the table's AUTOINCREMENT.
    op.add_column(
        "alert", sa.Column("unverified", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("alert", sa.Column("caller", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Older code knows no 'guest': keep the rows (they own alerts) as people without access.
    op.execute(sa.text("UPDATE person SET status = 'rejected' WHERE status = 'guest'"))
    autoincrement = {"sqlite_autoincrement": True}  # keep ids from being reused
    with op.batch_alter_table("alert", schema=None, table_kwargs=autoincrement) as batch_op:
        batch_op.drop_column("caller")
        batch_op.drop_column("unverified")
