"""The live runtime: many bots on one event loop, closed-candle feeds (replay), shared portfolio risk,
state in the SQL store with a checkpoint per candle, hot reload and a status view. See docs/runtime.md."""

from __future__ import annotations

from engine.runtime.bot import BotRunner, BotView, config_hash
from engine.runtime.feed import Batch, ReplayFeed
from engine.runtime.ids import client_order_id
from engine.runtime.loader import LoadResult, load_bots
from engine.runtime.orchestrator import LEASE_NAME, Runtime, RuntimeConfig
from engine.runtime.portfolio import PortfolioLimits, PortfolioRisk
from engine.runtime.session import RunOptions, run_engine
from engine.runtime.status import render_status, views_from_db

__all__ = [
    "LEASE_NAME",
    "Batch",
    "BotRunner",
    "BotView",
    "LoadResult",
    "PortfolioLimits",
    "PortfolioRisk",
    "ReplayFeed",
    "RunOptions",
    "Runtime",
    "RuntimeConfig",
    "client_order_id",
    "config_hash",
    "load_bots",
    "render_status",
    "run_engine",
    "views_from_db",
]
