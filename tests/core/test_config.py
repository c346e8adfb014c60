"""Settings from PORTAL_* variables and a TOML file; bad values name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.config import ConfigError, load_settings


def test_defaults_need_no_configuration() -> None:
    settings = load_settings({})
    assert settings.embedded and settings.base_domain == "portal.localhost" and settings.data_dir == ".portal"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    file = tmp_path / "portal.toml"
    file.write_text('base_domain = "portal.example.com"\nport = 9000\nload_plugins = ["cards"]\n', encoding="utf-8")
    settings = load_settings({"PORTAL_CONFIG": str(file), "PORTAL_PORT": "9100", "PORTAL_DATA_DIR": "/var/lib/p"})
    assert settings.base_domain == "portal.example.com"
    assert settings.port == 9100 and settings.load_plugins == ("cards",) and settings.data_dir == "/var/lib/p"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PORTAL_PORT": "eighty"}, "PORTAL_PORT: Expected `int`"),
        ({"PORTAL_PORT": "70000"}, "PORTAL_PORT: Expected `int` <= 65535"),
        ({"PORTAL_BASE_DOMAIN": "Not A Domain"}, "PORTAL_BASE_DOMAIN: Expected `str` matching"),
        ({"PORTAL_DATABASE_URL": "localhost:5432"}, "PORTAL_DATABASE_URL: expected a URL"),
        ({"PORTAL_LOG_LEVEL": "loud"}, "PORTAL_LOG_LEVEL: Invalid enum value 'loud'"),
        ({"PORTAL_DB_POOL_MIN": "5", "PORTAL_DB_POOL_MAX": "2"}, "PORTAL_DB_POOL_MIN (5) is larger"),
    ],
)
def test_invalid_values_name_the_setting(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(environ)
    assert message in str(error.value)


def test_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    file = tmp_path / "portal.toml"
    file.write_text("prot = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="portal.toml: unknown setting 'prot'"):
        load_settings({"PORTAL_CONFIG": str(file)})
    file.write_text("port = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"portal.toml: port: Expected `int`"):
        load_settings({"PORTAL_CONFIG": str(file)})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({"PORTAL_CONFIG": str(tmp_path / "missing.toml")})
