"""quarantine: stream entries that could not be projected or run, kept whole

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 15:30:00

See docs/adr/0014-poison-input-and-quarantine.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantined_entries",
        sa.Column("stream", sa.String(255), nullable=False),
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("partition", sa.SmallInteger(), nullable=False),
        sa.Column("id_ms", sa.BigInteger(), nullable=False),
        sa.Column("id_seq", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("event_type", sa.String(64)),
        sa.Column("aggregate_id", sa.String(64)),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("stream", "entry_id", name="quarantined_entries_pkey"),
    )


def downgrade() -> None:
    op.drop_table("quarantined_entries")
