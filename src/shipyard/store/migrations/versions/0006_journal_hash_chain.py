"""journal hash chain

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 18:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from shipyard.store import chain

    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    # chain the entries written before the chain existed, in sequence order
    conn = op.get_bind()
    journal = sa.table(
        "journal",
        sa.column("seq", sa.BigInteger),
        sa.column("ts", sa.BigInteger),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("entity_type", sa.String),
        sa.column("entity_id", sa.String),
        sa.column("payload", sa.JSON),
        sa.column("hash", sa.String),
    )
    previous = chain.GENESIS
    rows = conn.execute(sa.select(journal).order_by(journal.c.seq)).all()
    for row in rows:
        previous = chain.entry_hash(previous, row)
        conn.execute(journal.update().where(journal.c.seq == row.seq).values(hash=previous))


def downgrade() -> None:
    with op.batch_alter_table("journal", schema=None) as batch_op:
        batch_op.drop_column("hash")
