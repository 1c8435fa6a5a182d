"""News items, the model answer cache and the daily model budget (``engine.sentiment``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Types are spelled out (not imported from the models) so this file keeps describing the same schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "news_items",
        sa.Column("id", _id(), nullable=False),
        sa.Column("url_key", sa.String(500), nullable=False),
        sa.Column("title_key", sa.String(300), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("source_kind", sa.String(24), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(8), nullable=True),
        sa.Column("published_at", sa.BigInteger(), nullable=False),
        sa.Column("fetched_at", sa.BigInteger(), nullable=False),
        sa.Column("available_at", sa.BigInteger(), nullable=False),
        sa.Column("coins", _json(), nullable=False),
        sa.Column("also_from", _json(), nullable=False),
        sa.Column("local_score", sa.Double(), nullable=False),
        sa.Column("local_why", sa.Text(), nullable=False),
        sa.Column("model_score", sa.Double(), nullable=True),
        sa.Column("model_confidence", sa.Double(), nullable=True),
        sa.Column("model_at", sa.BigInteger(), nullable=True),
        sa.Column("model_why", sa.Text(), nullable=True),
        sa.Column("model_status", sa.String(24), nullable=False),
        sa.Column("events", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_news_items"),
        sa.UniqueConstraint("url_key", name="uq_news_items_url_key"),
    )
    op.create_index("ix_news_items_published_at", "news_items", ["published_at"])
    op.create_index("ix_news_items_title_key", "news_items", ["title_key"])
    op.create_table(
        "sentiment_model_cache",
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("answer", _json(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("content_hash", "model", name="pk_sentiment_model_cache"),
    )
    op.create_table(
        "sentiment_budget",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_sentiment_budget"),
    )


def downgrade() -> None:
    op.drop_table("sentiment_budget")
    op.drop_table("sentiment_model_cache")
    op.drop_index("ix_news_items_title_key", table_name="news_items")
    op.drop_index("ix_news_items_published_at", table_name="news_items")
    op.drop_table("news_items")
