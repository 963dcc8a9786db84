"""task progress

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("progress_percent", sa.Float(), nullable=True))
    op.add_column("tasks", sa.Column("progress_message", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("tasks", "progress_message")
    op.drop_column("tasks", "progress_percent")
