"""events: subscribers with their cursors, webhook dead letters, processed sequence numbers

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 04:27:45.251697
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("subscriber", sa.String(length=250), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_dead_letters")),
    )
    with op.batch_alter_table("event_dead_letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_dead_letters_subscriber_seq"), ["subscriber", "seq"], unique=False)

    op.create_table(
        "event_processed",
        sa.Column("subscriber", sa.String(length=250), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("processed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subscriber", "seq", name=op.f("pk_event_processed")),
    )
    op.create_table(
        "event_subscribers",
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("entity_types", sa.JSON(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("secret", sa.String(length=200), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_event_subscribers")),
    )


def downgrade() -> None:
    op.drop_table("event_subscribers")
    op.drop_table("event_processed")
    with op.batch_alter_table("event_dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_dead_letters_subscriber_seq"))

    op.drop_table("event_dead_letters")
