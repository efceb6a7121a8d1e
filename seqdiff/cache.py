"""Where seqdiff keeps what it computes once for a user: adapted models, converted checkpoints.

``$SEQDIFF_CACHE`` if set, else ``$XDG_CACHE_HOME/seqdiff``, else ``~/.cache/seqdiff`` (the XDG base
directory convention). Entries are named by a digest of what made them, so a changed input never
reuses a stale entry, and they appear whole (`seqdiff.atomic.atomic_folder`).

Example:
    >>> import os; os.environ["SEQDIFF_CACHE"] = "/tmp/seqdiff-cache"
    >>> str(cache_root())
    '/tmp/seqdiff-cache'
    >>> del os.environ["SEQDIFF_CACHE"]
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root() -> Path:
    if os.environ.get("SEQDIFF_CACHE"):
        return Path(os.environ["SEQDIFF_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqdiff"


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
