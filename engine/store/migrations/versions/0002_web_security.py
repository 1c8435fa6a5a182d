"""Web app security: users, sessions and refresh tokens, backup codes, encrypted API secrets, the audit
log, web settings, and the bot command queue the runtime polls.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Types are spelled out (not imported from the models) so this file keeps describing the same schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _uuid() -> sa.types.TypeEngine:
    return sa.String(36)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", _uuid(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("totp_enabled", sa.Boolean(), nullable=False),
        sa.Column("totp_secret", sa.Text(), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", _time(), nullable=True),
        sa.Column("last_login_at", _time(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("id", _uuid(), nullable=False),
        sa.Column("user_id", _uuid(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("expires_at", _time(), nullable=False),
        sa.Column("last_used_at", _time(), nullable=False),
        sa.Column("revoked_at", _time(), nullable=True),
        sa.Column("revoked_reason", sa.String(40), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_auth_sessions_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_auth_sessions"),
    )
    op.create_index("ix_auth_sessions_user_id_revoked_at", "auth_sessions", ["user_id", "revoked_at"])
    op.create_table(
        "refresh_tokens",
        sa.Column("id", _id(), nullable=False),
        sa.Column("session_id", _uuid(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("spent_at", _time(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["auth_sessions.id"],
            name="fk_refresh_tokens_session_id_auth_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_refresh_tokens_token_hash"),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"])
    op.create_table(
        "backup_codes",
        sa.Column("id", _id(), nullable=False),
        sa.Column("user_id", _uuid(), nullable=False),
        sa.Column("code_hash", sa.String(255), nullable=False),
        sa.Column("used_at", _time(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_backup_codes_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_backup_codes"),
    )
    op.create_index("ix_backup_codes_user_id", "backup_codes", ["user_id"])
    op.create_table(
        "api_secrets",
        sa.Column("id", _id(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("masked", sa.String(40), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("updated_by", _uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_secrets"),
        sa.UniqueConstraint("name", name="uq_api_secrets_name"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _id(), nullable=False),
        sa.Column("time", _time(), nullable=False),
        sa.Column("user_id", _uuid(), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("detail", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_time", "audit_log", ["time"])
    op.create_table(
        "web_settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", _json(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_web_settings"),
    )
    op.create_table(
        "bot_commands",
        sa.Column("id", _id(), nullable=False),
        sa.Column("bot_id", _id(), nullable=False),
        sa.Column("command", sa.String(24), nullable=False),
        sa.Column("position_id", _id(), nullable=True),
        sa.Column("requested_by", _uuid(), nullable=True),
        sa.Column("requested_at", _time(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("handled_at", _time(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name="fk_bot_commands_bot_id_bots"),
        sa.ForeignKeyConstraint(
            ["position_id"], ["positions.id"], name="fk_bot_commands_position_id_positions"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_bot_commands"),
    )
    op.create_index("ix_bot_commands_status_id", "bot_commands", ["status", "id"])


def downgrade() -> None:
    for table in (
        "bot_commands",
        "web_settings",
        "audit_log",
        "api_secrets",
        "backup_codes",
        "refresh_tokens",
        "auth_sessions",
        "users",
    ):
        op.drop_table(table)
