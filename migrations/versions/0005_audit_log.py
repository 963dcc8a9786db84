"""audit log: operator actions (OperatorActed), who did what, why

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 03:00:00

See docs/adr/0027-operator-actions-and-audit.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("audit_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target_kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(128)),
        sa.Column("detail", postgresql.JSONB(), nullable=False),
    )
    op.create_index("idx_audit_log_occurred_at", "audit_log", [sa.text("occurred_at DESC"), sa.text("audit_id DESC")])
    op.create_index("idx_audit_log_target", "audit_log", ["target"])


def downgrade() -> None:
    op.drop_table("audit_log")
