"""Settings: one msgspec Struct, read from ``PORTAL_*`` variables and an optional TOML file.

Precedence, lowest first: defaults, the TOML file (``PORTAL_CONFIG`` or ``--config``), then
environment variables. An invalid value stops start-up with a :class:`ConfigError` that names
the setting and what is wrong with it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

ENV_PREFIX = "PORTAL_"

Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")]
Domain = Annotated[
    str,
    msgspec.Meta(pattern=r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::[0-9]{1,5})?$"),
]


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the platform reads from its environment."""

    database_url: str | None = None
    """Owner connection (migrations, tenant files). Unset: start an embedded PostgreSQL."""
    app_database_url: str | None = None
    """Connection of the application role. Unset: ``database_url`` as role ``portal_app``."""
    app_role_password: str | None = None
    """Password ``portal migrate`` sets for ``portal_app`` (none: trust or peer auth)."""
    data_dir: str = ".portal"
    """Where the embedded PostgreSQL keeps its data."""
    base_domain: Domain = "portal.localhost"
    """Merchants answer on ``<slug>.<base_domain>`` besides their custom domains."""
    load_plugins: tuple[str, ...] | None = None
    """Entry-point names of feature plugins to load; unset loads all installed."""
    broker_url: str | None = None
    """taskiq broker; unset uses PostgreSQL (the same database)."""
    tenant_cache_ttl: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    """Seconds a resolved host stays cached (changes also invalidate it at once)."""
    db_pool_min: Annotated[int, msgspec.Meta(ge=1)] = 1
    db_pool_max: Annotated[int, msgspec.Meta(ge=1)] = 10
    db_acquire_timeout: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """Seconds to wait for a pooled connection, opening a new one included; then 503."""
    db_statement_timeout: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """Seconds one query may take before it is cancelled (every process of the platform)."""
    unavailable_retry_after: Annotated[int, msgspec.Meta(ge=0)] = 5
    """``Retry-After`` seconds of the 503 answered while the database cannot be reached."""
    session_idle_timeout: Annotated[float, msgspec.Meta(gt=0)] = 1800.0
    """Seconds of inactivity after which a customer session ends."""
    session_absolute_timeout: Annotated[float, msgspec.Meta(gt=0)] = 28800.0
    """Seconds after sign-in at which a customer session ends regardless of activity."""
    public_scheme: Literal["https", "http"] = "https"
    """Scheme of the portal's public URLs (links in emails and API answers)."""
    public_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    """Port in the portal's public URLs when it is not the scheme's default (the demo's)."""
    hsts_max_age: Annotated[int, msgspec.Meta(ge=0)] = 31536000
    """``Strict-Transport-Security`` max-age on HTTPS responses; 0 sends none."""
    smtp_host: str = "127.0.0.1"
    smtp_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 25
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    """``tls``: implicit TLS (port 465); ``starttls``: upgrade after connecting; ``none``: plain."""
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    mail_from: str = "portal@portal.localhost"
    """Envelope and header sender; the merchant's name is shown as the display name."""
    webhook_allow_private: bool = False
    """Allow webhook endpoints on private, loopback and link-local addresses (tests, development)."""
    webhook_timeout: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    """Seconds one webhook attempt may take."""
    webhook_secret_overlap_hours: Annotated[float, msgspec.Meta(ge=0)] = 24.0
    """After a secret rotation, hours during which messages carry signatures of both secrets."""
    webhook_disable_after_days: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """An endpoint failing this long is disabled and the merchant emailed."""
    login_rate_per_email: Annotated[int, msgspec.Meta(ge=1)] = 5
    """Sign-in emails per address per hour."""
    login_rate_per_ip: Annotated[int, msgspec.Meta(ge=1)] = 20
    """Sign-in requests per client address per hour."""
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    forwarded_allow_ips: str = "127.0.0.1"
    """Proxies trusted for ``X-Forwarded-Proto``/``-For`` (comma-separated addresses, or ``*``)."""
    web_workers: Annotated[int, msgspec.Meta(ge=1)] = 1
    demo: bool = False
    """Demo mode: enables demo-only conveniences. Never set in production."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object per line (time, level, logger, message, request id, merchant)."""
    task_lease_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    """How long a claimed task is held; a worker killed without warning gives it up after this."""
    task_poll_interval: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    """Seconds between a worker's looks for due work (broker messages only wake it sooner)."""
    task_retention_days: Annotated[float, msgspec.Meta(gt=0)] = 7.0
    """Finished tasks are kept this long (for inspection), then removed."""
    worker_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    """After SIGTERM, how long a worker may finish what it holds; the rest is handed back at once."""
    ops_host: str = "127.0.0.1"
    """Interface of the operator listener (health, readiness, metrics) of workers and the demo."""
    ops_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None
    """Port of the operator listener; unset: none for ``portal worker``, the web port + 1 for the demo."""
    metrics_token: str | None = None
    """Bearer token that opens ``/-/metrics`` on the web port; unset: metrics only on the operator listener."""
    otel_enabled: bool = False
    """Trace requests with OpenTelemetry (needs ``portal-core[otel]``; exporter from ``OTEL_*`` variables)."""

    def __post_init__(self) -> None:
        for name in ("database_url", "app_database_url", "broker_url"):
            value = getattr(self, name)
            if value is not None and not re.match(r"^[a-z][a-z0-9+.-]*://", value):
                raise ConfigError(f"{ENV_PREFIX}{name.upper()}: expected a URL, got {value!r}")
        if self.db_pool_min > self.db_pool_max:
            raise ConfigError(
                f"{ENV_PREFIX}DB_POOL_MIN ({self.db_pool_min}) is larger than "
                f"{ENV_PREFIX}DB_POOL_MAX ({self.db_pool_max})"
            )

    @property
    def embedded(self) -> bool:
        """True when the platform runs its own PostgreSQL."""
        return self.database_url is None


_FIELDS = {f.name: f for f in msgspec.structs.fields(Settings)}


def _env_value(name: str, raw: str) -> Any:
    """Turn one environment string into the shape msgspec expects for ``name``."""
    if name == "load_plugins":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    defaults: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Settings:
    """Read settings; raise :class:`ConfigError` naming the first bad setting.

    ``defaults`` replace the built-in defaults (the file, the environment and ``overrides``
    still win over them); commands run beside a demo take its public URL this way.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = dict(defaults or {})
    sources: dict[str, str] = {key: f"default {key}" for key in raw}

    file_path = config_file or (Path(environ[f"{ENV_PREFIX}CONFIG"]) if environ.get(f"{ENV_PREFIX}CONFIG") else None)
    if file_path is not None:
        try:
            data = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{file_path}: cannot read the configuration file ({exc.strerror})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file_path}: not valid TOML ({exc})") from exc
        for key, value in data.items():
            if key not in _FIELDS:
                raise ConfigError(f"{file_path}: unknown setting {key!r}")
            raw[key] = value
            sources[key] = f"{file_path}: {key}"

    for env_name, value in environ.items():
        if not env_name.startswith(ENV_PREFIX) or env_name == f"{ENV_PREFIX}CONFIG":
            continue
        key = env_name[len(ENV_PREFIX) :].lower()
        if key not in _FIELDS:
            continue
        raw[key] = _env_value(key, value)
        sources[key] = env_name

    for key, value in overrides.items():
        if value is not None:
            raw[key] = value
            sources[key] = f"--{key.replace('_', '-')}"

    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(exc, sources)) from exc


def _describe(exc: msgspec.ValidationError, sources: Mapping[str, str]) -> str:
    message = str(exc)
    match = re.search(r"at `\$\.([a-z_]+)", message)
    if match:
        key = match.group(1)
        where = sources.get(key, f"{ENV_PREFIX}{key.upper()}")
        detail = message.split(" - at ")[0]
        return f"{where}: {detail}"
    return message
