"""The ``engine`` command line. Each command lives in its own module; heavy imports happen inside
the command bodies so that ``engine --help`` and ``engine validate`` start fast."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="engine",
    help="Declarative crypto trading bots: YAML bots and strategies, a rule DSL, backtest/paper/testnet/live.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported for their @app.command side effects; each module keeps its imports light.
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"engine.cli.{name}")


# One line per command module; add yours here.
COMMAND_MODULES: tuple[str, ...] = (
    "cmd_validate",
    "cmd_schema",
    "cmd_eval",
    "cmd_backtest",
    "cmd_demo",
    "cmd_data",
    "cmd_db",
    "cmd_functions",
    "cmd_optimize",
    "cmd_run",
    "cmd_status",
    "cmd_serve",
    "cmd_users",
    "cmd_feeds",
    "cmd_ml",
    "cmd_sentiment",
)


def main() -> None:
    _register()
    app()
