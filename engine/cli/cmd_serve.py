"""``engine serve``: the web app (NiceGUI pages and the REST/WebSocket API) on one port.
On first start with no admin, asks on the console for the first one (or use ``engine users create --role admin``)."""

from __future__ import annotations

import typer

from engine.cli import app


@app.command("serve")
def serve_command(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (put TLS in front for anything but localhost)."
    ),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
    url: str | None = typer.Option(
        None, "--url", help="Database URL (default: $ENGINE_DATABASE_URL, else $ENGINE_HOME/engine.db)."
    ),
) -> None:
    """Serve the web app and its API (OpenAPI at /docs)."""
    import asyncio
    import os
    import secrets
    import sys
    from pathlib import Path

    from engine.store.db import run_with_session
    from engine.web import users_admin
    from engine.web.app import build_context
    from engine.web.auth.crypto import SecretBoxError
    from engine.web.auth.roles import Role
    from engine.web.auth.tokens import TokenError

    home = Path(os.environ.get("ENGINE_HOME") or "var")
    try:
        ctx = asyncio.run(build_context(home, url))
    except (SecretBoxError, TokenError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    asyncio.run(ctx.sessions.kw["bind"].dispose())  # connections are made again in the server's event loop

    if not asyncio.run(run_with_session(users_admin.admin_exists, url)):
        if not sys.stdin.isatty():
            typer.echo("error: no admin yet: run `engine users create --role admin` first", err=True)
            raise typer.Exit(1)
        from engine.cli.cmd_users import prompt_password

        typer.echo("No admin account exists yet. Create the first one:")
        username = typer.prompt("Username")
        email = typer.prompt("Email")
        password = prompt_password()
        asyncio.run(
            run_with_session(lambda db: users_admin.create(db, username, email, password, Role.ADMIN), url)
        )
        typer.echo(f"created admin {username}; set up two-factor authentication at first login")

    from nicegui import app as web_app
    from nicegui import ui

    from engine.web.app import include_api
    from engine.web.pages import register_pages

    web_app.state.web = ctx
    web_app.title, web_app.version = "engine API", "1"
    include_api(web_app)
    register_pages(ctx)
    from engine.web.app import cleanup_loop

    cleanup_tasks: list[asyncio.Task[None]] = []  # a reference, so the task is not garbage-collected
    web_app.on_startup(lambda: cleanup_tasks.append(asyncio.create_task(cleanup_loop(ctx))))
    typer.echo(f"engine web app: http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    ui.run(
        host=host,
        port=port,
        title="engine",
        reload=False,
        show=False,
        show_welcome_message=False,
        fastapi_docs=True,
        storage_secret=secrets.token_urlsafe(32),
        session_middleware_kwargs={"https_only": True, "same_site": "strict", "max_age": 8 * 3600},
        # Access lines would carry /trades/live?token=...: no access log (errors still go to the log).
        access_log=False,
    )
