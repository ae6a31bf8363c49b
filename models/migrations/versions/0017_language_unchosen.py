"""admins bootstrapped before 0017 follow their Telegram app's language until they choose

An admin created from CADRE_ADMIN_IDS by an earlier version was given the default language
for good. Since then a new one follows the language of their Telegram app until they use
/language (a ``language_unchosen`` row in bot_state, services.people). This marks the
earlier ones the same way: every admin the bootstrap created (audit ``admin.bootstrap``)
who still speaks the model default (zh-Hans). One who had chosen Chinese with /language on
an app in another language is answered in the app's language until they choose again.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from models.types import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND = "language_unchosen"  # services.people.LANGUAGE_UNCHOSEN

bot_state = sa.table(
    "bot_state",
    sa.column("kind", sa.String),
    sa.column("key", sa.String),
    sa.column("data", sa.JSON),
    sa.column("updated_at", UTCDateTime()),
)


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT DISTINCT p.telegram_id FROM person p"
            " JOIN audit_log a ON a.target_person_id = p.id"
            " WHERE a.action = 'admin.bootstrap' AND p.role = 'admin'"
            " AND p.language = 'zh-Hans'"
        )
    ).all()
    known = {
        key
        for (key,) in connection.execute(
            sa.text("SELECT key FROM bot_state WHERE kind = :kind"), {"kind": KIND}
        )
    }
    now = datetime.now(UTC)
    new = [
        {"kind": KIND, "key": str(telegram_id), "data": True, "updated_at": now}
        for (telegram_id,) in rows
        if str(telegram_id) not in known
    ]
    if new:
        op.bulk_insert(bot_state, new)


def downgrade() -> None:
    # The markers are data, not schema: earlier versions ignore them.
    pass
