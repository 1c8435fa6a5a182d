"""Point-in-time feed observations and feed source health (``engine.feeds``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Types are spelled out (not imported from the models) so this file keeps describing the same schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_observations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("series", sa.String(200), nullable=False),
        sa.Column("event_time", sa.BigInteger(), nullable=False),
        sa.Column("available_at", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("fetched_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feed_observations"),
        sa.UniqueConstraint(
            "series", "event_time", "value", name="uq_feed_observations_series_event_time_value"
        ),
    )
    op.create_index(
        "ix_feed_observations_series_available_at", "feed_observations", ["series", "available_at"]
    )
    op.create_table(
        "feed_health",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("last_success", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("down_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_feed_health"),
    )


def downgrade() -> None:
    op.drop_table("feed_health")
    op.drop_index("ix_feed_observations_series_available_at", table_name="feed_observations")
    op.drop_table("feed_observations")
