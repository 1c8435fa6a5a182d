"""Initial schema.

Bots, orders, fills, positions, trades, equity snapshots, events, paper balances, engine leases,
backtest runs and their trades.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

The column types are spelled out here rather than imported from engine.store.types, so this file keeps
describing the same schema whatever later versions of the models look like. Money is NUMERIC(38, 18) on
PostgreSQL and exact decimal text on SQLite; enumerations are VARCHAR(24).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _money() -> sa.types.TypeEngine:
    return sa.Numeric(38, 18).with_variant(sa.String(48), "sqlite")


def _time() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _enum() -> sa.types.TypeEngine:
    return sa.String(24)


def _pk(table: str, column: str = "id") -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(column, name=f"pk_{table}")


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "bots",
        sa.Column("id", _id(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("config_path", sa.String(500), nullable=True),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("mode", _enum(), nullable=False),
        sa.Column("account", sa.String(100), nullable=True),
        sa.Column("status", _enum(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        _pk("bots"),
        sa.UniqueConstraint("name", name="uq_bots_name"),
    )

    op.create_table(
        "orders",
        sa.Column("id", _id(), nullable=False),
        sa.Column("bot_id", _id(), nullable=False),
        sa.Column("pair", sa.String(40), nullable=False),
        sa.Column("client_order_id", sa.String(36), nullable=False),
        sa.Column("exchange_order_id", sa.String(64), nullable=True),
        sa.Column("side", _enum(), nullable=False),
        sa.Column("type", _enum(), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("price", _money(), nullable=True),
        sa.Column("stop_price", _money(), nullable=True),
        sa.Column("status", _enum(), nullable=False),
        sa.Column("filled", _money(), nullable=False),
        sa.Column("cost", _money(), nullable=False),
        sa.Column("average_price", _money(), nullable=True),
        sa.Column("fees", _json(), nullable=False),
        sa.Column("reason", sa.String(100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("signal_time", _time(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        _fk("orders", "bot_id", "bots"),
        _pk("orders"),
        sa.UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
    )
    op.create_index("ix_orders_bot_id_status", "orders", ["bot_id", "status"])
    op.create_index("ix_orders_exchange_order_id", "orders", ["exchange_order_id"])

    op.create_table(
        "fills",
        sa.Column("id", _id(), nullable=False),
        sa.Column("order_id", _id(), nullable=False),
        sa.Column("exchange_trade_id", sa.String(64), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("price", _money(), nullable=False),
        sa.Column("fee", _money(), nullable=False),
        sa.Column("fee_currency", sa.String(16), nullable=True),
        sa.Column("time", _time(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        _fk("fills", "order_id", "orders"),
        _pk("fills"),
        sa.UniqueConstraint("order_id", "exchange_trade_id", name="uq_fills_order_id_exchange_trade_id"),
    )

    op.create_table(
        "positions",
        sa.Column("id", _id(), nullable=False),
        sa.Column("bot_id", _id(), nullable=False),
        sa.Column("pair", sa.String(40), nullable=False),
        sa.Column("side", _enum(), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("entry_price", _money(), nullable=False),
        sa.Column("stop", _money(), nullable=True),
        sa.Column("take_profit", _money(), nullable=True),
        sa.Column("trailing", _json(), nullable=True),
        sa.Column("status", _enum(), nullable=False),
        sa.Column("opened_at", _time(), nullable=False),
        sa.Column("closed_at", _time(), nullable=True),
        sa.Column("updated_at", _time(), nullable=False),
        _fk("positions", "bot_id", "bots"),
        _pk("positions"),
    )
    op.create_index(
        "uq_positions_open_bot_pair",
        "positions",
        ["bot_id", "pair"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )

    op.create_table(
        "trades",
        sa.Column("id", _id(), nullable=False),
        sa.Column("bot_id", _id(), nullable=False),
        sa.Column("position_id", _id(), nullable=True),
        sa.Column("pair", sa.String(40), nullable=False),
        sa.Column("side", _enum(), nullable=False),
        sa.Column("open_time", _time(), nullable=False),
        sa.Column("close_time", _time(), nullable=False),
        sa.Column("open_price", _money(), nullable=False),
        sa.Column("close_price", _money(), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("profit_ratio", sa.Double(), nullable=False),
        sa.Column("profit_abs", _money(), nullable=False),
        sa.Column("fees", _money(), nullable=False),
        sa.Column("exit_reason", sa.String(40), nullable=False),
        _fk("trades", "bot_id", "bots"),
        _fk("trades", "position_id", "positions"),
        _pk("trades"),
    )
    op.create_index("ix_trades_bot_id_close_time", "trades", ["bot_id", "close_time"])

    op.create_table(
        "equity_snapshots",
        sa.Column("id", _id(), nullable=False),
        sa.Column("bot_id", _id(), nullable=True),
        sa.Column("time", _time(), nullable=False),
        sa.Column("equity", sa.Double(), nullable=False),
        sa.Column("cash", sa.Double(), nullable=False),
        _fk("equity_snapshots", "bot_id", "bots"),
        _pk("equity_snapshots"),
    )
    op.create_index("ix_equity_snapshots_bot_id_time", "equity_snapshots", ["bot_id", "time"])

    op.create_table(
        "events",
        sa.Column("id", _id(), nullable=False),
        sa.Column("time", _time(), nullable=False),
        sa.Column("bot_id", _id(), nullable=True),
        sa.Column("category", _enum(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", _json(), nullable=True),
        _fk("events", "bot_id", "bots"),
        _pk("events"),
    )
    op.create_index("ix_events_time", "events", ["time"])
    op.create_index("ix_events_bot_id_time", "events", ["bot_id", "time"])

    op.create_table(
        "balances",
        sa.Column("id", _id(), nullable=False),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("free", _money(), nullable=False),
        sa.Column("used", _money(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        _pk("balances"),
        sa.UniqueConstraint("account", "asset", name="uq_balances_account_asset"),
    )

    op.create_table(
        "engine_leases",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", _time(), nullable=False),
        sa.Column("heartbeat_at", _time(), nullable=False),
        sa.Column("expires_at", _time(), nullable=False),
        _pk("engine_leases", "name"),
    )

    op.create_table(
        "backtest_runs",
        sa.Column("id", _id(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("bot_name", sa.String(100), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("strategy_name", sa.String(100), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("data_start", _time(), nullable=False),
        sa.Column("data_end", _time(), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("pairs", _json(), nullable=False),
        sa.Column("metrics", _json(), nullable=False),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        _pk("backtest_runs"),
    )
    op.create_index("ix_backtest_runs_bot_name_created_at", "backtest_runs", ["bot_name", "created_at"])
    op.create_index("ix_backtest_runs_config_hash", "backtest_runs", ["config_hash"])

    op.create_table(
        "backtest_trades",
        sa.Column("id", _id(), nullable=False),
        sa.Column("run_id", _id(), nullable=False),
        sa.Column("pair", sa.String(40), nullable=False),
        sa.Column("side", _enum(), nullable=False),
        sa.Column("open_time", _time(), nullable=False),
        sa.Column("close_time", _time(), nullable=False),
        sa.Column("open_price", sa.Double(), nullable=False),
        sa.Column("close_price", sa.Double(), nullable=False),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.Column("profit_ratio", sa.Double(), nullable=False),
        sa.Column("profit_abs", sa.Double(), nullable=False),
        sa.Column("fees", sa.Double(), nullable=False),
        sa.Column("exit_reason", sa.String(40), nullable=False),
        _fk("backtest_trades", "run_id", "backtest_runs", ondelete="CASCADE"),
        _pk("backtest_trades"),
    )
    op.create_index("ix_backtest_trades_run_id", "backtest_trades", ["run_id"])


def downgrade() -> None:
    for table in (
        "backtest_trades",
        "backtest_runs",
        "engine_leases",
        "balances",
        "events",
        "equity_snapshots",
        "trades",
        "positions",
        "fills",
        "orders",
        "bots",
    ):
        op.drop_table(table)
