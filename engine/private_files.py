"""The engine's state is private to the account that runs it: ``$ENGINE_HOME`` (the SQLite database and
its WAL, the log files, the keys) holds password hashes, encrypted secrets and audit trails.

Directories the engine creates are 0700 and files 0600, whatever the umask (a umask can only take
permission bits away, so creating with these modes is enough; nothing is chmod-ed after the fact, which
would leave a window). SQLite creates the ``-wal`` and ``-shm`` files with the permissions of the
database file, so creating that file 0600 first covers them. Files that already exist are left as they
are (the operator may have chosen), but :func:`loose_state_files` names those others can read, and ``engine serve``
and ``engine run`` warn about them at start.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path

__all__ = [
    "PrivateRotatingFileHandler",
    "loose_state_files",
    "loose_state_warnings",
    "make_private_dir",
    "make_private_file",
    "state_paths",
]

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700 directories; an existing one is left as it is."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # created meanwhile by another process
            directory.mkdir(mode=DIR_MODE)
    return path


def make_private_file(path: Path) -> Path:
    """Create ``path`` empty and 0600 if it does not exist yet (its directory as in :func:`make_private_dir`)."""
    make_private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    return path


class PrivateRotatingFileHandler(TimedRotatingFileHandler):
    """A daily-rotated log file opened 0600: every new file after a rotation too."""

    def _open(self):  # type: ignore[no-untyped-def]
        make_private_file(Path(self.baseFilename))
        return super()._open()


def loose_state_files(paths: Iterable[Path]) -> list[tuple[Path, int]]:
    """The given paths that exist, and the files directly inside the given directories, that other users
    may read or enter, with their modes (sub-directories such as demo candles are not state)."""
    found: list[tuple[Path, int]] = []
    seen: set[Path] = set()
    for path in paths:
        candidates = [path]
        if path.is_dir():
            candidates += sorted(p for p in path.iterdir() if p.is_file())
        for candidate in candidates:
            if candidate in seen or not candidate.exists() or candidate.is_symlink():
                continue
            seen.add(candidate)
            mode = stat.S_IMODE(candidate.stat().st_mode)
            if mode & 0o077:
                found.append((candidate, mode))
    return found


def loose_state_warnings(paths: Iterable[Path]) -> list[str]:
    """One warning per state file or directory that other users can read or enter."""
    messages = []
    for path, mode in loose_state_files(paths):
        kind, wanted = ("directory", DIR_MODE) if path.is_dir() else ("file", FILE_MODE)
        messages.append(
            f"{kind} {path} is mode {mode:o}: other users can read the engine's state; chmod {wanted:o} {path}"
        )
    return messages


def state_paths(home: Path, database: Path | None = None) -> list[Path]:
    """What :func:`loose_state_warnings` looks at: ``$ENGINE_HOME`` (and its files), its ``logs``
    directory (and the log files), and a SQLite database elsewhere with its WAL and shared memory."""
    paths = [home, home / "logs"]
    if database is not None:
        paths += [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm", "-journal"))]
    return paths
