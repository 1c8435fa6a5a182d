"""``engine users``: create, list, disable users of the web app and reset their two-factor set-up.
No default account exists: the first admin is made here or by ``engine serve`` on first start."""

from __future__ import annotations

import typer

from engine.cli import app

users_app = typer.Typer(
    name="users", help="Web app users: create, list, disable, reset-2fa.", no_args_is_help=True
)
app.add_typer(users_app, name="users")

_URL = typer.Option(
    None, "--url", help="Database URL (default: $ENGINE_DATABASE_URL, else $ENGINE_HOME/engine.db)."
)


def _run(work, url: str | None):
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from engine.store import StoreError
    from engine.store.db import run_with_session
    from engine.web.auth.passwords import PasswordPolicyError

    try:
        return asyncio.run(run_with_session(work, url))
    except (ValueError, PasswordPolicyError) as exc:
        typer.echo(f"error: {exc}", err=True)
    except (StoreError, SQLAlchemyError, OSError) as exc:
        typer.echo(
            f"error: cannot use the database: {str(getattr(exc, 'orig', None) or exc).splitlines()[0]}",
            err=True,
        )
    raise typer.Exit(1)


def prompt_password() -> str:
    from engine.web.auth.passwords import PasswordPolicyError, check_policy

    while True:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            check_policy(password)
        except PasswordPolicyError as exc:
            typer.echo(f"error: {exc}", err=True)
            continue
        return password


@users_app.command("create")
def create_command(
    username: str = typer.Option(..., "--username", "-u", prompt=True),
    email: str = typer.Option(..., "--email", "-e", prompt=True),
    role: str = typer.Option("viewer", "--role", "-r", help="viewer, trader or admin"),
    url: str | None = _URL,
) -> None:
    """Create a user (the password is asked twice, hidden). Two-factor set-up happens at first login."""
    from engine.web import users_admin
    from engine.web.auth.roles import Role

    try:
        chosen = Role(role.lower())
    except ValueError:
        typer.echo(f"error: unknown role {role!r}: use viewer, trader or admin", err=True)
        raise typer.Exit(2) from None
    password = prompt_password()
    user = _run(lambda db: users_admin.create(db, username, email, password, chosen), url)
    typer.echo(f"created {user.username} ({user.role}); two-factor set-up at first login")


@users_app.command("list")
def list_command(url: str | None = _URL) -> None:
    """List users: name, email, role, 2FA, active, last login."""
    from engine.web import users_admin

    users = _run(users_admin.list_users, url)
    if not users:
        typer.echo("no users yet: engine users create --role admin")
        return
    for u in users:
        last = u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "never"
        flags = f"2fa={'on' if u.totp_enabled else 'off'} {'active' if u.active else 'DISABLED'}"
        typer.echo(f"{u.username:<20} {u.email:<30} {u.role:<7} {flags}  last login {last}")


@users_app.command("disable")
def disable_command(username: str, url: str | None = _URL) -> None:
    """Disable a user: no login, and every session ends at once."""
    from engine.web import users_admin

    _run(lambda db: users_admin.disable(db, username), url)
    typer.echo(f"disabled {username}; their sessions are ended")


@users_app.command("reset-2fa")
def reset_2fa_command(username: str, url: str | None = _URL) -> None:
    """Remove a user's 2FA (lost device): they enrol again at next login; sessions end."""
    from engine.web import users_admin

    _run(lambda db: users_admin.reset_2fa(db, username), url)
    typer.echo(f"two-factor set-up of {username} reset; they enrol again at next login")
