"""Where Gridmarket keeps its state and where it listens, resolved once at start-up.

Each setting comes from, in order: a command-line flag, an environment variable, a default.

    data dir      --data-dir       GRIDMARKET_HOME          ~/.gridmarket
    database URL  --database-url   GRIDMARKET_DATABASE_URL  sqlite:///<data dir>/gridmarket.db
    host          --host                                    127.0.0.1
    port          --port                                    8000

An empty environment variable counts as unset. `postgresql://` and `postgres://` URLs are
rewritten to `postgresql+psycopg://`, the only PostgreSQL driver Gridmarket ships with.
Resolving settings touches nothing on disk; `ensure_data_dir` creates the data dir.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

HOME_ENV = "GRIDMARKET_HOME"
DATABASE_URL_ENV = "GRIDMARKET_DATABASE_URL"
DEFAULT_DATA_DIR = "~/.gridmarket"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DATABASE_FILE_NAME = "gridmarket.db"
DATA_DIR_MODE = 0o700

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_POSTGRES_DRIVER_SCHEME = "postgresql+psycopg://"


@dataclass(frozen=True, slots=True)
class Settings:
    """One server's configuration; build it with `Settings.resolve`."""

    data_dir: Path
    database_url: str = field(repr=False)  # may hold a password; see database_url_for_logs
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT

    @classmethod
    def resolve(
        cls,
        *,
        data_dir: str | Path | None = None,
        database_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Settings from flags (arguments; None when not given), then `environ`, then defaults."""
        env = os.environ if environ is None else environ
        home = data_dir or env.get(HOME_ENV) or DEFAULT_DATA_DIR
        resolved_dir = Path(home).expanduser().absolute()
        url = database_url or env.get(DATABASE_URL_ENV) or default_database_url(resolved_dir)
        return cls(
            data_dir=resolved_dir,
            database_url=_with_psycopg_driver(url),
            host=host or DEFAULT_HOST,
            port=DEFAULT_PORT if port is None else port,
        )

    def ensure_data_dir(self) -> None:
        """Create the data dir, readable by its owner only, if it does not exist yet.

        An existing directory keeps its permissions: the operator may have chosen them.
        """
        if self.data_dir.is_dir():
            return
        self.data_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
        self.data_dir.chmod(DATA_DIR_MODE)  # mkdir's mode is filtered by the umask

    def database_url_for_logs(self) -> str:
        """The database URL with any password masked, safe to print."""
        return make_url(self.database_url).render_as_string(hide_password=True)


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file inside the data dir."""
    return f"sqlite:///{data_dir / DATABASE_FILE_NAME}"


def _with_psycopg_driver(url: str) -> str:
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return _POSTGRES_DRIVER_SCHEME + url.removeprefix(scheme)
    return url
