"""`engine demo`: the README's first command runs this after set-up.

By default the example bots trade (paper) on a replay of sample candles with the web app on one port;
``--no-web`` keeps the quick backtest demo (CI smoke runs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from engine.cli import app

ADMIN_PASSWORD_ENV = "ENGINE_DEMO_ADMIN_PASSWORD"


@app.command("demo")
def demo_command(
    bots: Annotated[Path, typer.Option("--bots", help="Directory of bot files.")] = Path("bots"),
    strategies: Annotated[Path, typer.Option("--strategies", help="Directory of strategy files.")] = Path(
        "strategies"
    ),
    web: Annotated[
        bool,
        typer.Option(
            "--web/--no-web",
            help="Run the bots on a replay with the web app (default), or only backtest them (--no-web).",
        ),
    ] = True,
    host: Annotated[str, typer.Option("--host", help="Address of the web app.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
    speed: Annotated[
        float | None,
        typer.Option("--speed", min=0.0, help="Replay speed, N times real time (default 300; 0 = flat out)."),
    ] = None,
    admin_user: Annotated[
        str, typer.Option("--admin-user", help="Name of the first admin, when none exists.")
    ] = "admin",
    admin_password_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-password-file",
            help=f"First line: the first admin's password, when none exists (or ${ADMIN_PASSWORD_ENV}); "
            "without either, asked on the console.",
        ),
    ] = None,
    insecure_http: Annotated[
        bool,
        typer.Option("--insecure-http", help="See `engine serve --insecure-http` (local use only)."),
    ] = False,
) -> None:
    """The example bots on sample candles: paper trading on a replay with the web app (default), or
    validate and backtest every bot (--no-web)."""
    if not web:
        from engine.demo import run_demo

        if not run_demo(bots, strategies).ok:
            raise typer.Exit(1)
        return

    from engine.cli.cmd_serve import AdminSeed, ServeOptions, serve
    from engine.demo import DEMO_SPEED, prepare_live_demo, replay_start

    seed = None
    password = _admin_password(admin_password_file)
    if password is not None:
        from engine.web.auth.passwords import PasswordPolicyError, check_policy

        try:  # before the data is written and the server built: fail fast on a refused password
            check_policy(password)
        except PasswordPolicyError as exc:
            typer.echo(f"error: the first admin's password: {exc}", err=True)
            raise typer.Exit(2) from None
        seed = AdminSeed(admin_user, f"{admin_user}@example.org", password)
    speed = DEMO_SPEED if speed is None else speed
    start = replay_start()
    data_dir = prepare_live_demo(bots, strategies, start=start, speed=speed)
    if data_dir is None:
        raise typer.Exit(1)
    serve(
        ServeOptions(
            host=host,
            port=port,
            bots_dir=bots,
            strategies_dir=strategies,
            replay=data_dir,
            speed=speed,
            start=start,
            insecure_http=insecure_http,
            admin=seed,
            no_admin_hint=f"run the demo in a terminal to be asked for one, or set ${ADMIN_PASSWORD_ENV}",
        )
    )


def _admin_password(path: Path | None) -> str | None:
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            typer.echo(f"error: --admin-password-file {path}: {exc.strerror}", err=True)
            raise typer.Exit(2) from None
        if not lines or not lines[0]:
            typer.echo(f"error: --admin-password-file {path}: the first line is empty", err=True)
            raise typer.Exit(2)
        return lines[0]
    return os.environ.get(ADMIN_PASSWORD_ENV) or None
