"""cheaper projection writes: the archive keeps payloads as json, campaign index partial

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:40:00

See docs/adr/0013-projector-throughput.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # json keeps the text exactly as the producer wrote it (jsonb re-orders keys and drops
    # duplicates) and costs PostgreSQL a validation instead of a conversion per event.
    op.alter_column(
        "event_archive",
        "payload",
        type_=postgresql.JSON(),
        existing_type=postgresql.JSONB(),
        existing_nullable=False,
        postgresql_using="payload::text::json",
    )
    # Most tasks belong to no campaign; lookups are always by a campaign id.
    op.drop_index("idx_campaign_id", table_name="tasks")
    op.create_index("idx_campaign_id", "tasks", ["campaign_id"], postgresql_where=sa.text("campaign_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("idx_campaign_id", table_name="tasks")
    op.create_index("idx_campaign_id", "tasks", ["campaign_id"])
    op.alter_column(
        "event_archive",
        "payload",
        type_=postgresql.JSONB(),
        existing_type=postgresql.JSON(),
        existing_nullable=False,
        postgresql_using="payload::jsonb",
    )
