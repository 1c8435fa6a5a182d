"""Keeps numba's on-disk cache of the trading kernel honest.

numba invalidates a cached function only when the function's own source file changes; it does not
notice a change in the functions it calls from other files, nor in the module constants it froze
(``layout``). The kernel spans several files, so this drops the cached machine code of all of them
whenever any of them changes. It runs once, at import of ``engine.trading.kernel``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

JIT_MODULES = ("layout", "risk", "protections", "kernel")


def invalidate_stale_cache() -> None:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in JIT_MODULES:
        digest.update((here / f"{name}.py").read_bytes())
    stamp_text = digest.hexdigest()
    cache_dir = here / "__pycache__"
    stamp = cache_dir / "numba-sources.sha256"
    try:
        if stamp.read_text() == stamp_text:
            return
    except OSError:
        pass
    try:
        cache_dir.mkdir(exist_ok=True)
        for name in JIT_MODULES:
            for suffix in ("nbi", "nbc"):
                for path in cache_dir.glob(f"{name}.*.{suffix}"):
                    path.unlink(missing_ok=True)
        # Write then rename, so a concurrent process never reads half a stamp.
        tmp = cache_dir / f"numba-sources.{os.getpid()}.tmp"
        tmp.write_text(stamp_text)
        tmp.replace(stamp)
    except OSError:
        # A read-only install: numba then caches elsewhere (or not at all); nothing to clean here.
        pass
