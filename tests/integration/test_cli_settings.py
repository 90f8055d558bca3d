"""Settings resolve flag, then environment, then default; the `gridmarket` command runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gridmarket import __version__
from gridmarket.settings import Settings


def test_defaults_put_a_sqlite_file_under_the_home_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/ada")

    settings = Settings.resolve(environ={})

    assert settings.data_dir == Path("/home/ada/.gridmarket")
    assert settings.database_url == "sqlite:////home/ada/.gridmarket/gridmarket.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_the_environment_overrides_defaults() -> None:
    env = {
        "GRIDMARKET_HOME": "/srv/gm",
        "GRIDMARKET_DATABASE_URL": "postgresql+psycopg://gm@db/gm",
    }

    settings = Settings.resolve(environ=env)

    assert settings.data_dir == Path("/srv/gm")
    assert settings.database_url == "postgresql+psycopg://gm@db/gm"


def test_flags_override_the_environment() -> None:
    env = {"GRIDMARKET_HOME": "/srv/gm", "GRIDMARKET_DATABASE_URL": "sqlite:////srv/gm/x.db"}

    settings = Settings.resolve(
        data_dir="/data",
        database_url="sqlite:////data/y.db",
        host="0.0.0.0",
        port=9000,
        environ=env,
    )

    assert settings == Settings(Path("/data"), "sqlite:////data/y.db", "0.0.0.0", 9000)


def test_the_sqlite_default_follows_the_data_dir_and_empty_env_counts_as_unset() -> None:
    env = {"GRIDMARKET_HOME": "/srv/gm", "GRIDMARKET_DATABASE_URL": ""}

    assert Settings.resolve(environ=env).database_url == "sqlite:////srv/gm/gridmarket.db"


def test_a_relative_data_dir_becomes_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)

    settings = Settings.resolve(data_dir="state", environ={})

    assert settings.data_dir == tmp_path / "state"
    assert settings.database_url == f"sqlite:///{tmp_path}/state/gridmarket.db"


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
def test_plain_postgres_urls_get_the_shipped_driver(scheme: str) -> None:
    settings = Settings.resolve(database_url=f"{scheme}gm:pw@db:5432/gm", environ={})

    assert settings.database_url == "postgresql+psycopg://gm:pw@db:5432/gm"


def test_the_password_stays_out_of_logs_and_repr() -> None:
    settings = Settings.resolve(database_url="postgresql://gm:hunter2@db/gm", environ={})

    assert "hunter2" not in settings.database_url_for_logs()
    assert "hunter2" not in repr(settings)


def test_ensure_data_dir_creates_it_private(tmp_path: Path) -> None:
    settings = Settings.resolve(data_dir=tmp_path / "a" / "b", environ={})

    settings.ensure_data_dir()
    settings.ensure_data_dir()

    assert settings.data_dir.is_dir()
    assert settings.data_dir.stat().st_mode & 0o777 == 0o700


def test_ensure_data_dir_leaves_an_existing_dir_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)

    Settings.resolve(data_dir=tmp_path, environ={}).ensure_data_dir()

    assert tmp_path.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize(
    "command",
    [
        [str(Path(sys.executable).with_name("gridmarket")), "version"],
        [sys.executable, "-m", "gridmarket", "version"],
    ],
    ids=["console-script", "python-m"],
)
def test_version_prints_the_package_version(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)

    assert result.stdout.strip() == f"gridmarket {__version__}"


def test_serve_rejects_a_port_out_of_range() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gridmarket", "serve", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "--port" in result.stderr
