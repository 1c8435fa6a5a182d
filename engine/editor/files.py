"""Strategy and bot files of a directory as the web app addresses them: by a safe name (the file's
stem), never by a path a request could aim outside the directory; which bots use a strategy; and
atomic writes (a reader such as hot reload sees the old file or the new one, never half of one)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "NAME_PATTERN",
    "bots_using",
    "create_file",
    "file_for",
    "is_safe_name",
    "listed_files",
    "read_mapping",
    "replace_file",
]

# The config's own name rule (letters, digits, '_', '-', '.'; a letter or digit first): no '/', no
# '\\', no NUL, no leading dot, so a name is always one plain file inside its directory.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_NAME = re.compile(NAME_PATTERN)
_SUFFIXES = (".yaml", ".yml")


def is_safe_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def file_for(directory: Path, name: str) -> Path:
    """The file of ``name`` in ``directory`` (an existing ``.yml`` wins over a missing ``.yaml``).
    Raises ValueError for a name that is not a plain file name."""
    if not is_safe_name(name):
        raise ValueError(
            f"invalid name {name!r}: use letters, digits, '_', '-' and '.', starting with a letter or digit"
        )
    for suffix in _SUFFIXES:
        path = directory / f"{name}{suffix}"
        if path.is_file():
            return path
    return directory / f"{name}.yaml"


def listed_files(directory: Path) -> list[Path]:
    """The YAML files of ``directory`` that have a safe name (others cannot be addressed anyway)."""
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.suffix in _SUFFIXES and p.is_file() and is_safe_name(p.stem)
    )


def read_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file as plain data; {} when it cannot be read as one."""
    from engine.config import read_yaml_file

    try:
        document = read_yaml_file(path)
    except (OSError, ValueError):
        return {}
    root = document.root
    if root is None or root.kind != "map":
        return {}
    data = root.to_python()
    return data if isinstance(data, dict) else {}


def bots_using(strategy: Path, bots_dir: Path) -> list[Path]:
    """Bot files of ``bots_dir`` whose ``strategy:`` points at ``strategy``."""
    target = strategy.resolve()
    found = []
    for bot in listed_files(bots_dir):
        reference = read_mapping(bot).get("strategy")
        if (
            isinstance(reference, str)
            and reference.strip()
            and (bot.parent / reference.strip()).resolve() == target
        ):
            found.append(bot)
    return found


def _temporary(path: Path, text: str) -> Path:
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as handle:
        temporary = Path(handle.name)
        try:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            handle.close()
            temporary.unlink(missing_ok=True)
            raise
    return temporary


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file beside it, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path, text)
    try:
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        else:
            os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def create_file(path: Path, text: str) -> None:
    """Write a new file atomically; raises FileExistsError when ``path`` exists (two creations of one
    name: one wins), without touching the existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path, text)
    try:
        os.chmod(temporary, 0o644)
        os.link(temporary, path)  # fails when the target exists, unlike a rename
    finally:
        temporary.unlink(missing_ok=True)
