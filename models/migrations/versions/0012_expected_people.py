"""expected people: imported from a roster, without a Telegram account until they join

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # status "expected" needs no schema change (a string column); an expected person has no
    # telegram_id yet, and /start finds them by phone.
    # SQLite rebuilds the table: keep AUTOINCREMENT (0011), so that ids are never reused.
    with op.batch_alter_table(
        "person", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.alter_column("telegram_id", existing_type=sa.BigInteger(), nullable=True)
        batch_op.create_index("ix_person_phone", ["phone"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM person WHERE telegram_id IS NULL")
    # SQLite rebuilds the table: keep AUTOINCREMENT (0011), so that ids are never reused.
    with op.batch_alter_table(
        "person", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_index("ix_person_phone")
        batch_op.alter_column("telegram_id", existing_type=sa.BigInteger(), nullable=False)
