"""Outputs appear whole or not at all: write to a temporary sibling, fsync, rename."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqdiff.errors import SeqdiffError


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed onto ``path``.

    On any error (or a kill) the temporary file is removed or left as a hidden ``.tmp`` file, and
    ``path`` is untouched: a reader never sees a half-written output.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_path(out) as tmp:
        ...     _ = tmp.write_text("done")
        >>> out.read_text(), [p.name for p in out.parent.iterdir()]
        ('done', ['out.txt'])
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise SeqdiffError(f"{path}: cannot write ({err.strerror or err})") from None
        raise


@contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden scratch folder next to ``path``; on success it is renamed onto ``path``.

    For outputs that are folders (a model): a reader sees the whole folder or none. If another
    process made ``path`` first, its folder is kept and this one discarded.

    Example:
        >>> import tempfile
        >>> model = Path(tempfile.mkdtemp()) / "runs" / "model"
        >>> with atomic_folder(model) as tmp:
        ...     _ = (tmp / "config.json").write_text("{}")
        >>> sorted(p.name for p in model.iterdir()), [p.name for p in model.parent.iterdir()]
        (['config.json'], ['model'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.mkdir()
    try:
        yield tmp
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
