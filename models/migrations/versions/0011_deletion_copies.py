"""deletion copies: alerts outlive their person, ids are never reused on SQLite

- ``alert.person_id`` becomes nullable, ``ON DELETE SET NULL``: when a person deletes their
  data (/deleteme) their alerts stay in the officers' record as "a deleted person" with
  their times (services/erasure.py), instead of vanishing with them.
- SQLite reuses the highest id after a delete ("SOS alert 1" again, for someone else)
  unless a table is ``AUTOINCREMENT``: every table with one integer id is rebuilt that way,
  its rows kept (their ids too; ``sqlite_sequence`` starts from the highest). PostgreSQL
  sequences never go back: nothing to rebuild there.

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-28
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names for the foreign keys SQLite reflects without one, so that batch mode can drop one.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
ALERT_PERSON_FK = "fk_alert_person_id_person"


def _integer_id_tables(connection: Any, autoincrement: bool) -> list[str]:
    """SQLite tables keyed by one INTEGER column (a rowid alias) whose AUTOINCREMENT is not
    `autoincrement` yet, parents first."""
    inspector = sa.inspect(connection)
    found = []
    for name in inspector.get_table_names():
        if name.startswith("sqlite_") or name == "alembic_version":
            continue
        key = inspector.get_pk_constraint(name)["constrained_columns"]
        if len(key) != 1:
            continue
        column = next(c for c in inspector.get_columns(name) if c["name"] == key[0])
        if not isinstance(column["type"], sa.Integer):
            continue
        if any(key[0] in fk["constrained_columns"] for fk in inspector.get_foreign_keys(name)):
            continue  # keyed by another table's id (e.g. care_profile): nothing to reuse
        sql = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).scalar()
        if ("AUTOINCREMENT" in (sql or "").upper()) != autoincrement:
            found.append(name)
    return found


def _rebuild_sqlite(autoincrement: bool, alert_person_nullable: bool) -> None:
    connection = op.get_bind()
    tables = _integer_id_tables(connection, autoincrement)
    if "alert" not in tables:
        tables.append("alert")
    for name in tables:
        with op.batch_alter_table(
            name,
            recreate="always",
            table_kwargs={"sqlite_autoincrement": autoincrement},
            naming_convention=NAMING,
        ) as batch_op:
            if name == "alert":
                batch_op.alter_column(
                    "person_id", existing_type=sa.Integer(), nullable=alert_person_nullable
                )
                batch_op.drop_constraint(ALERT_PERSON_FK, type_="foreignkey")
                batch_op.create_foreign_key(
                    ALERT_PERSON_FK,
                    "person",
                    ["person_id"],
                    ["id"],
                    ondelete="SET NULL" if alert_person_nullable else "CASCADE",
                )


def _postgresql_alert_person(nullable: bool) -> None:
    inspector = sa.inspect(op.get_bind())
    for fk in inspector.get_foreign_keys("alert"):
        if fk["constrained_columns"] == ["person_id"] and fk["name"]:
            op.drop_constraint(fk["name"], "alert", type_="foreignkey")
    op.alter_column("alert", "person_id", existing_type=sa.Integer(), nullable=nullable)
    op.create_foreign_key(
        "alert_person_id_fkey",
        "alert",
        "person",
        ["person_id"],
        ["id"],
        ondelete="SET NULL" if nullable else "CASCADE",
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(autoincrement=True, alert_person_nullable=True)
    else:
        _postgresql_alert_person(nullable=True)


def downgrade() -> None:
    # Alerts of deleted people cannot point at anyone again: they go, with their rows (the
    # migration runs with SQLite's foreign keys off, so nothing cascades by itself).
    orphans = "SELECT id FROM alert WHERE person_id IS NULL"
    for child in ("alert_event", "alert_recipient"):
        op.execute(f"DELETE FROM {child} WHERE alert_id IN ({orphans})")
    op.execute("DELETE FROM alert WHERE person_id IS NULL")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(autoincrement=False, alert_person_nullable=False)
    else:
        _postgresql_alert_person(nullable=False)
