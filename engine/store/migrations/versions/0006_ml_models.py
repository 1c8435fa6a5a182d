"""The model registry (``engine.ml``): one row per trained model version.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Types are spelled out (not imported from the models) so this file keeps describing the same schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ml_models",
        sa.Column("id", _id(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("learner", sa.String(16), nullable=False),
        sa.Column("data_start", sa.BigInteger(), nullable=False),
        sa.Column("data_end", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("metrics", _json(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("importance", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("promoted_by", sa.String(100), nullable=True),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ml_models"),
        sa.UniqueConstraint("name", "version", name="uq_ml_models_name_version"),
    )
    op.create_index("ix_ml_models_name_status", "ml_models", ["name", "status"])


def downgrade() -> None:
    op.drop_index("ix_ml_models_name_status", table_name="ml_models")
    op.drop_table("ml_models")
