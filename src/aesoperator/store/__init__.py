"""Persistence behind one seam: :func:`open_store` and the protocols in :mod:`.base`.

``open_store`` takes a URL — ``sqlite:///path/to/data-dir`` (or ``.../file.sqlite3``),
``postgresql://user:pw@host:5432/db?artifacts=/shared/dir`` (the ``postgresql`` extra) — or
a plain path of a data directory, the default being ``$AESOP_DATA_DIR`` or
``~/.aesoperator``. A new store is a module implementing :class:`.base.Store` that passes
``tests/store/test_contract.py``, and a scheme here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import UserError
from .base import ArtifactStore, ExecutionStore, MemoryStore, Store
from .sqlite import default_data_dir

__all__ = [
    "ArtifactStore",
    "ExecutionStore",
    "MemoryStore",
    "Store",
    "default_data_dir",
    "locate",
    "open_store",
]

SCHEMES = ("sqlite", "postgresql", "postgres")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_DB_SUFFIXES = (".sqlite3", ".sqlite", ".db")  # a sqlite:// URL naming a file, not a folder


def locate(url: str | os.PathLike[str] | None = None) -> tuple[Path, Path | None] | str:
    """Where a store URL points, without opening it: ``(data directory, database file or
    None)`` for SQLite, the URL itself for PostgreSQL; a ``UserError`` for anything else.

    What :func:`open_store` takes (see there); anything kept beside a store (its schedules)
    is opened from the same answer.
    """
    if url is None:
        return default_data_dir(), None
    if isinstance(url, os.PathLike):
        return Path(url).expanduser(), None
    if not isinstance(url, str) or not url:
        raise UserError(f"store: got {url!r}; give a data directory or a sqlite:/// URL")
    match = _URL.match(url)
    if match is None:
        return Path(url).expanduser(), None
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "sqlite":
        if not rest or rest == "/":
            raise UserError(f"store {url!r}: no path; use sqlite:///path/to/data-dir")
        path = Path(rest).expanduser()
        if path.suffix in _DB_SUFFIXES:
            return path.parent, path
        return path, None
    if scheme in ("postgresql", "postgres"):
        return url
    raise UserError(
        f"store {url!r}: unknown scheme {scheme + '://'!r}; known: "
        f"{', '.join(s + '://' for s in SCHEMES)} or a plain path of a data directory"
    )


def open_store(url: str | os.PathLike[str] | None = None) -> Store:
    """The store at ``url``: ``sqlite:///path``, ``postgresql://...`` or a data directory's path.

    ``sqlite:///dir`` is a data directory (database file and artifacts in it, as a plain path);
    ``sqlite:///dir/name.sqlite3`` (or ``.sqlite``, ``.db``) is that database file, with the
    artifacts beside it. ``postgresql://user:password@host:5432/db?artifacts=/shared/dir`` (or
    ``postgres://``) is a PostgreSQL database, the files on a directory every worker mounts
    (see :mod:`aesoperator.store.postgres`). Any other scheme is a ``UserError`` that lists
    the known ones.
    """
    where = locate(url)
    if isinstance(where, str):
        from .postgres import open_postgres

        return open_postgres(where)
    from .sqlite import open_sqlite

    return open_sqlite(*where)
