"""``engine serve``: the web app (NiceGUI pages and the REST/WebSocket API) on one port, and with
``--run BOTS_DIR`` the bots' runtime in the same process (``engine demo`` starts it that way).
On first start with no admin, asks on the console for the first one (or use ``engine users create --role admin``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from engine.cli import app
from engine.cli._options import Start

__all__ = ["LOOPBACK_HOSTS", "AdminSeed", "ServeOptions", "serve", "serve_command"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
RECONNECT_TIMEOUT_S = 15.0  # how long a page survives a lost socket before the server drops it


@dataclass(frozen=True)
class AdminSeed:
    """The first admin, created without a prompt when the database has none (the demo)."""

    username: str
    email: str
    password: str


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    url: str | None = None
    bots_dir: Path | None = None  # run these bots in the web process (None: web app only)
    strategies_dir: Path | None = None
    replay: Path | None = None  # candle files to replay; None with bots_dir: the exchanges' live candles
    speed: float = 0.0
    start: str | None = None
    watch: bool = True
    insecure_http: bool = False
    # Proxies whose X-Forwarded-For/-Proto are believed (comma-separated addresses or networks);
    # None: no one's, the connecting address is the client's.
    forwarded_allow_ips: str | None = None
    admin: AdminSeed | None = None
    no_admin_hint: str = "run `engine users create --role admin` first"


@app.command("serve")
def serve_command(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (put TLS in front for anything but localhost)."
    ),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
    url: str | None = typer.Option(
        None, "--url", help="Database URL (default: $ENGINE_DATABASE_URL, else $ENGINE_HOME/engine.db)."
    ),
    run: Path | None = typer.Option(
        None,
        "--run",
        help="Also run the bots of this directory in the web process (as `engine run` does), "
        "paper fills on --replay data, else on the exchanges' live closed candles.",
    ),
    replay: Path | None = typer.Option(
        None, "--replay", help="With --run: play the candle files of this directory through the live path."
    ),
    speed: float = typer.Option(
        0.0, "--speed", min=0.0, help="With --replay: N times real time; 0 = as fast as possible."
    ),
    start: Start = None,
    strategies: Path | None = typer.Option(
        None,
        "--strategies",
        help="Strategy directory (hot reload and the editor; default: ../strategies beside the bots).",
    ),
    watch: bool = typer.Option(True, "--watch/--no-watch", help="With --run: hot reload changed files."),
    insecure_http: bool = typer.Option(
        False,
        "--insecure-http",
        help="Send the session cookies over plain http too. Only for a browser that refuses Secure "
        "cookies from http://127.0.0.1; never on a network.",
    ),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        "--forwarded-allow-ips",
        help="Comma-separated addresses or networks of the reverse proxies in front whose "
        "X-Forwarded-For/-Proto headers are believed (default: none; the connecting address is the "
        "client's, whatever the headers say).",
    ),
) -> None:
    """Serve the web app and its API (OpenAPI document at /openapi.json); with --run, the bots too."""
    if run is not None and not run.is_dir():
        typer.echo(f"error: --run {run}: not a directory of bot files", err=True)
        raise typer.Exit(2)
    if replay is not None and run is None:
        typer.echo("error: --replay needs --run BOTS_DIR (the bots to replay it to)", err=True)
        raise typer.Exit(2)
    if replay is not None and not replay.is_dir():
        typer.echo(f"error: --replay {replay}: data directory not found", err=True)
        raise typer.Exit(2)
    from engine.web.serving import ForwardedIpsError, parse_forwarded_allow_ips

    try:
        parse_forwarded_allow_ips(forwarded_allow_ips)
    except ForwardedIpsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    serve(
        ServeOptions(
            host=host,
            port=port,
            url=url,
            bots_dir=run,
            strategies_dir=strategies,
            replay=replay,
            speed=speed,
            start=start,
            watch=watch,
            insecure_http=insecure_http,
            forwarded_allow_ips=forwarded_allow_ips,
        )
    )


def _strategies_dir(options: ServeOptions) -> Path:
    if options.strategies_dir is not None:
        return options.strategies_dir
    if options.bots_dir is not None:
        return options.bots_dir.resolve().parent / "strategies"
    return Path("strategies")


def _ensure_admin(url: str | None, seed: AdminSeed | None, hint: str) -> None:
    """No admin ships: the first one is created here, from ``seed`` or by asking on the console."""
    import asyncio
    import sys

    from engine.store.db import run_with_session
    from engine.web import users_admin
    from engine.web.auth.roles import Role

    if asyncio.run(run_with_session(users_admin.admin_exists, url)):
        return
    if seed is None:
        if not sys.stdin.isatty():
            typer.echo(f"error: no admin yet: {hint}", err=True)
            raise typer.Exit(1)
        from engine.cli.cmd_users import prompt_password

        typer.echo("No admin account exists yet. Create the first one:")
        username = typer.prompt("Username")
        email = typer.prompt("Email")
        seed = AdminSeed(username, email, prompt_password())
    account = seed
    try:
        asyncio.run(
            run_with_session(
                lambda db: users_admin.create(
                    db, account.username, account.email, account.password, Role.ADMIN
                ),
                url,
            )
        )
    except ValueError as exc:  # the password policy, a taken name, a malformed e-mail
        typer.echo(f"error: cannot create the admin {account.username!r}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"created admin {account.username}; set up two-factor authentication at first login")


def serve(options: ServeOptions) -> None:
    """Build the context, make sure an admin exists, register the pages and the API, start the runtime
    (when asked) on the server's event loop, and serve until stopped (Ctrl-C)."""
    import asyncio
    import os
    import secrets

    from engine.private_files import loose_state_warnings, state_paths
    from engine.store.db import sqlite_path
    from engine.web.app import build_context
    from engine.web.auth.crypto import SecretBoxError
    from engine.web.auth.tokens import TokenError

    if options.insecure_http and options.host not in LOOPBACK_HOSTS:
        typer.echo(
            f"error: --insecure-http only with a loopback --host ({', '.join(LOOPBACK_HOSTS)}): "
            "anywhere else put TLS in front",
            err=True,
        )
        raise typer.Exit(2)
    home = Path(os.environ.get("ENGINE_HOME") or "var")
    secure = not options.insecure_http
    try:
        ctx = asyncio.run(build_context(home, options.url, secure_cookies=secure))
    except (SecretBoxError, TokenError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    asyncio.run(ctx.sessions.kw["bind"].dispose())  # connections are made again in the server's event loop
    for warning in loose_state_warnings(state_paths(home, sqlite_path(options.url))):
        typer.echo(f"warning: {warning}", err=True)
    _ensure_admin(options.url, options.admin, options.no_admin_hint)
    ctx.bots_dir = options.bots_dir or Path("bots")
    ctx.strategies_dir = _strategies_dir(options)
    ctx.data_dir = options.replay  # the chart, the editor and the valuation read what the bots replay

    from nicegui import app as web_app
    from nicegui import ui

    from engine.web.app import cleanup_loop, include_api
    from engine.web.pages import register_pages
    from engine.web.serving import parse_forwarded_allow_ips, proxy_settings

    web_app.state.web = ctx
    web_app.title, web_app.version = "engine API", "1"
    # The OpenAPI document only: FastAPI's /docs and /redoc load Swagger UI and ReDoc from a CDN.
    web_app.openapi_url = "/openapi.json"
    web_app.setup()
    include_api(web_app)
    register_pages(ctx)

    tasks: list[asyncio.Task[object]] = []  # references, so the tasks are not garbage-collected
    web_app.on_startup(lambda: tasks.append(asyncio.create_task(cleanup_loop(ctx))))
    if options.bots_dir is not None:
        runner = _BotsInProcess(options)
        web_app.on_startup(runner.start)
        web_app.on_shutdown(runner.stop)
    base = f"http://{options.host}:{options.port}"
    typer.echo(f"engine web app: {base}/  (OpenAPI document: {base}/openapi.json)")
    if options.insecure_http:
        typer.echo("warning: --insecure-http: session cookies travel unencrypted; for this machine only")
    ui.run(
        host=options.host,
        port=options.port,
        title="engine",
        reload=False,
        show=False,
        show_welcome_message=False,
        fastapi_docs=False,
        storage_secret=secrets.token_urlsafe(32),
        session_middleware_kwargs={"https_only": secure, "same_site": "strict", "max_age": 8 * 3600},
        # Access lines would carry /trades/live?token=...: no access log (errors still go to the log).
        access_log=False,
        # NiceGUI derives the socket's ping timeout from this (40 %, at least 2 s) and reloads the page
        # when the server dropped the client: at its 3 s default a server busy for 2 s with its bots,
        # or a phone switching networks, lost a half-typed form (a sign-in page came back empty).
        reconnect_timeout=RECONNECT_TIMEOUT_S,
        **proxy_settings(parse_forwarded_allow_ips(options.forwarded_allow_ips)),
    )


class _BotsInProcess:
    """The runtime as a task of the web server's event loop; stopped gracefully on shutdown.

    The web app still talks to it only through the database (bot_commands), as it would to an
    ``engine run`` in another process."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.task = None
        self.runtime = None
        self.stopping = False

    async def start(self) -> None:
        import asyncio

        from engine.cli._logs import start_logging

        start_logging()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        import logging

        from engine.runtime import RunOptions, RuntimeConfig, run_engine
        from engine.store import LeaseHeldError

        options = self.options
        assert options.bots_dir is not None
        strategies = _strategies_dir(options)
        run_options = RunOptions(
            config=RuntimeConfig(
                bots_dir=options.bots_dir,
                strategies_dir=strategies if strategies.is_dir() else None,
                watch=options.watch,
            ),
            replay=options.replay,
            speed=options.speed,
            start=options.start,
            database_url=options.url,
            signals=False,  # the web server owns SIGINT/SIGTERM; its shutdown stops the runtime
        )
        log = logging.getLogger("engine")
        try:
            await run_engine(run_options, on_runtime=self._attach)
        except LeaseHeldError as error:
            log.error("bots not started: another engine is running on this database (%s)", error)
        except ValueError as error:  # no valid bot, unreachable market data, bad dates
            log.error("bots not started: %s", error)
        else:
            if not self.stopping:
                log.info("the replay is over: the bots stopped; the web app keeps serving")

    def _attach(self, runtime) -> None:
        self.runtime = runtime

    async def stop(self) -> None:
        import asyncio

        if self.task is None or self.task.done():
            return
        self.stopping = True
        if self.runtime is not None:
            self.runtime.request_stop()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=20)
        except TimeoutError:
            self.task.cancel()
