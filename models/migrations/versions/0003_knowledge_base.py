"""knowledge base

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import models.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kb_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("doc_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("issuer", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("issued", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("retired_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retired_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("doc_id", "language", "version", name="uq_kb_document_version"),
    )
    with op.batch_alter_table("kb_document", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_document_doc_id"), ["doc_id"], unique=False)

    op.create_table(
        "kb_question",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("grouping", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("topic_key", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("doc_ref", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("chosen_topic", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("feedback", sa.Integer(), nullable=True),
        sa.Column("feedback_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kb_question", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_question_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_kb_question_grouping"), ["grouping"], unique=False)
        batch_op.create_index(batch_op.f("ix_kb_question_outcome"), ["outcome"], unique=False)
        batch_op.create_index(batch_op.f("ix_kb_question_person_id"), ["person_id"], unique=False)

    op.create_table(
        "kb_handoff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("asker_telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("question", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("guess_topic", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("guess_title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("answered_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.BigInteger(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("faq_doc_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("admin_messages", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["question_id"], ["kb_question.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kb_handoff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_handoff_person_id"), ["person_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_kb_handoff_question_id"), ["question_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_kb_handoff_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("kb_handoff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_handoff_status"))
        batch_op.drop_index(batch_op.f("ix_kb_handoff_question_id"))
        batch_op.drop_index(batch_op.f("ix_kb_handoff_person_id"))

    op.drop_table("kb_handoff")
    with op.batch_alter_table("kb_question", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_question_person_id"))
        batch_op.drop_index(batch_op.f("ix_kb_question_outcome"))
        batch_op.drop_index(batch_op.f("ix_kb_question_grouping"))
        batch_op.drop_index(batch_op.f("ix_kb_question_created_at"))

    op.drop_table("kb_question")
    with op.batch_alter_table("kb_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_document_doc_id"))

    op.drop_table("kb_document")
