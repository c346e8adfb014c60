"""The ``portal`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from portal.config import ConfigError, Settings, load_settings
from portal.db.migrate import MigrationError
from portal.i18n.cli import register as register_i18n_commands
from portal.logs import configure_logging
from portal.plugin_kit.cli import register as register_plugin_kit_commands
from portal.plugins.manager import PluginLoadError, discover
from portal.theming.engine import ThemeError

P = ParamSpec("P")
R = TypeVar("R")

DEMO_TENANTS = Path("tenants/demo.toml")
KNOWN_ERRORS = (ConfigError, PluginLoadError, ThemeError, MigrationError)


def _fail_cleanly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the platform's own errors into a one-line message and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from portal.platform import PendingMigrationsError
        from portal.tenancy.files import TenantFileError

        try:
            return func(*args, **kwargs)
        except (*KNOWN_ERRORS, PendingMigrationsError, TenantFileError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


DATA_DIR = "portal.data_dir"
"""Where ``--data-dir`` keeps its value in ``ctx.meta``."""


def _remember_data_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        folder = str(value.expanduser().resolve())
        ctx.meta[DATA_DIR] = folder
        os.environ["PORTAL_DATA_DIR"] = folder  # for what the command starts: web workers, plugins' settings


def data_dir_option() -> click.Option:
    """``--data-dir``, which every command takes (see :class:`PortalCommand`)."""
    return click.Option(
        ["--data-dir"],
        type=click.Path(file_okay=False, path_type=Path),
        expose_value=False,
        is_eager=True,
        callback=_remember_data_dir,
        help="Folder of the embedded PostgreSQL, the one `portal demo` or `portal migrate` used "
        "(default: PORTAL_DATA_DIR, else ./.portal).",
    )


class PortalCommand(click.Command):
    """A ``portal`` command. Each one takes ``--data-dir`` and reads its settings with :func:`_settings`.

    ``creates_database``: the command may create the embedded database (``migrate``, ``demo``);
    every other one refuses a data folder without one. ``beside_demo``: public URLs follow a
    demo running on the same data folder (not for commands that serve themselves).
    """

    def __init__(self, *args: Any, creates_database: bool = False, beside_demo: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.creates_database = creates_database
        self.beside_demo = beside_demo
        if not any("--data-dir" in param.opts for param in self.params):
            self.params.append(data_dir_option())


class CommandGroup(click.Group):
    """A group whose commands are :class:`PortalCommand` (and whose subgroups are groups like it)."""

    command_class = PortalCommand
    group_class: type[click.Group] | type[type] | None = type


def _settings(ctx: click.Context, *, database: bool = True, public_urls: bool = False, **overrides: Any) -> Settings:
    """The command's settings, with ``--data-dir`` and the public URL of a demo running on that folder.

    ``database``: the command is about to use the database; without a database URL, a data
    folder holding no embedded database is refused (unless the command creates one).
    ``public_urls``: the command prints public URLs, so a demo record whose process is gone is
    an error (its links would open nothing), not only a warning.
    """
    from portal.db.embedded import has_database
    from portal.demo import data_folder, read_record, record_path

    config: Path | None = ctx.obj.get("config") if ctx.obj else None
    overrides = {"data_dir": ctx.meta.get(DATA_DIR), **overrides}
    settings = load_settings(config_file=config, **overrides)
    command = ctx.command
    if database and not getattr(command, "creates_database", False):
        folder = data_folder(settings)
        if settings.database_url is None and settings.app_database_url is None and not has_database(folder):
            raise click.ClickException(
                f"no embedded database in {folder}, and PORTAL_DATABASE_URL is not set. Give the data folder "
                "of your `portal demo` (or `portal migrate`) with --data-dir DIR (or PORTAL_DATA_DIR), or create "
                "the database here first with `portal migrate` (or `portal demo`)."
            )
    if not getattr(command, "beside_demo", True):
        return settings
    demo = read_record(settings)
    if demo is None:
        return settings
    if not demo.running():
        stale = (
            f"the `portal demo` recorded in {record_path(settings)} (pid {demo.pid}, {demo.url}) is no longer "
            f"running; start it again with `portal demo --data-dir {demo.data_dir}`, or delete that file"
        )
        if public_urls:
            raise click.ClickException(f"{stale}. Its links would open nothing.")
        click.echo(f"Warning: {stale}.", err=True)
        return settings
    return load_settings(config_file=config, defaults=demo.public_settings(), **overrides)


def _run(coroutine: Awaitable[R]) -> R:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


class PortalGroup(CommandGroup):
    """The command group, extended with commands plugins add through ``portal_cli_commands``.

    Plugins' commands take ``--data-dir`` too (it sets ``PORTAL_DATA_DIR`` for them).
    """

    group_class = CommandGroup

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in and plugin command names."""
        return sorted({*super().list_commands(ctx), *self._plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in command, else a plugin's."""
        return super().get_command(ctx, cmd_name) or self._plugin_commands().get(cmd_name)

    @functools.cached_property
    def _plugins(self) -> dict[str, click.Command]:
        try:
            from portal.plugins.manager import create_plugin_manager
            from portal.plugins.registry import PluginRegistry

            settings = load_settings()
            registry = PluginRegistry(create_plugin_manager(settings.load_plugins))
        except (ConfigError, PluginLoadError):
            return {}
        commands = {
            c.command.name: c.command
            for c in registry.cli_commands
            if isinstance(c.command, click.Command) and c.command.name
        }
        for command in commands.values():
            if not any("--data-dir" in param.opts for param in command.params):
                command.params.append(data_dir_option())
        return commands

    def _plugin_commands(self) -> dict[str, click.Command]:
        return self._plugins


@click.group(cls=PortalGroup)
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TOML settings file.")
@click.version_option(package_name="portal-core")
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """Self-hosted, white-label customer portal."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    if config is not None:
        os.environ["PORTAL_CONFIG"] = str(config)


def _logging(settings: Settings) -> None:
    configure_logging(settings.log_level, fmt=settings.log_format)


# --- database -----------------------------------------------------------------------------


@main.command(creates_database=True)
@click.pass_context
@_fail_cleanly
def migrate(ctx: click.Context) -> None:
    """Apply every installed app's pending migrations (core first)."""
    from portal.platform import Platform

    settings = _settings(ctx)
    _logging(settings)

    async def go() -> dict[str, list[str]]:
        platform = Platform(settings)
        try:
            return await platform.migrate()
        finally:
            await platform.stop()

    applied = _run(go())
    if not applied:
        click.echo("Nothing to migrate.")
    for app, ids in applied.items():
        click.echo(f"{app}: applied {len(ids)} migration(s): {', '.join(ids)}")


# --- tenants -------------------------------------------------------------------------------


@main.group()
def tenants() -> None:
    """Declarative tenant files."""


@tenants.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and show what would change; write nothing.")
@click.pass_context
@_fail_cleanly
def tenants_apply(ctx: click.Context, file: Path, dry_run: bool) -> None:
    """Validate FILE completely, then create or update what it describes (idempotent)."""
    from portal.platform import Platform
    from portal.tenancy.files import apply_tenant_file, load_tenant_file, tenant_file_warnings

    settings = _settings(ctx)

    async def go() -> list[str]:
        platform = Platform(settings)
        spec = load_tenant_file(file, platform.registry, settings.base_domain)
        for warning in tenant_file_warnings(spec, file):
            click.echo(f"warning: {warning}", err=True)
        await platform.start()
        try:
            changes = await apply_tenant_file(spec, platform.registry, dry_run=dry_run, source=str(file))
        finally:
            await platform.stop()
        return [change.describe() for change in changes]

    lines = _run(go())
    prefix = "would " if dry_run else ""
    for line in lines:
        click.echo(f"{prefix}{line}")
    click.echo(f"{len(lines)} change(s){' (dry run, nothing written)' if dry_run else ''}.")


# --- plugins -------------------------------------------------------------------------------


@main.group()
def plugins() -> None:
    """Installed plugins and themes."""


@plugins.command("list")
@click.option("--merchant", "merchant_slug", help="Also show whether each plugin is on for this merchant.")
@click.pass_context
@_fail_cleanly
def plugins_list(ctx: click.Context, merchant_slug: str | None) -> None:
    """List installed plugins and themes (and, with --merchant, which are on there)."""
    from portal.platform import Platform

    settings = _settings(ctx, database=bool(merchant_slug))
    platform = Platform(settings)
    enabled: dict[str, str] = {}
    if merchant_slug:
        enabled = _run(_merchant_plugin_states(platform, merchant_slug))
    versions = {ep.name: _version(ep) for ep in discover()}
    for key, info in sorted(platform.registry.plugins.items()):
        state = f"  {enabled.get(key, 'off')}" if merchant_slug else ""
        click.echo(f"plugin  {key:<20} {versions.get(key, '-'):<10} {info.title}{state}")
    for key, spec in sorted(platform.registry.themes.items()):
        parent = f" (on {spec.parent})" if spec.parent else ""
        click.echo(f"theme   {key:<20} {versions.get('theme-' + key, '-'):<10} {spec.title}{parent}")


def _version(entry_point: Any) -> str:
    try:
        return str(entry_point.dist.version) if entry_point.dist else "-"
    except PackageNotFoundError:
        return "-"


async def _merchant_plugin_states(platform: Any, slug: str) -> dict[str, str]:
    from portal.db.engine import fetch, system_transaction, tenant_transaction

    await platform.start()
    try:
        async with system_transaction():
            found = await fetch("SELECT * FROM portal_locate_merchant($1)", slug)
        if not found:
            raise click.ClickException(f"no merchant with slug {slug!r}")
        iso_id, merchant_id = found[0]["iso_id"], found[0]["merchant_id"]
        async with tenant_transaction(iso_id):
            rows = await fetch(
                "SELECT plugin_key, enabled, settings FROM portal_plugin_activation WHERE merchant_id = $1",
                merchant_id,
            )
    finally:
        await platform.stop()
    states: dict[str, str] = {}
    for row in rows:
        if not row["enabled"]:
            continue
        try:
            import json

            platform.registry.validate_settings(row["plugin_key"], json.loads(row["settings"]))
            states[row["plugin_key"]] = "on"
        except Exception as exc:
            states[row["plugin_key"]] = f"off (invalid settings: {exc})"
    return states


# --- access --------------------------------------------------------------------------------


async def _with_merchant(settings: Settings, slug: str, action: Callable[[Any, Any], Awaitable[R]]) -> R:
    """Run ``action(platform, tenant)`` in the tenant transaction of merchant ``slug``."""
    from portal.db.engine import fetch, system_transaction, tenant_transaction
    from portal.platform import Platform

    platform = Platform(settings)
    await platform.start()
    try:
        async with system_transaction():
            found = await fetch("SELECT * FROM portal_locate_merchant($1)", slug)
        if not found:
            raise click.ClickException(f"no merchant with slug {slug!r}")
        tenant = await platform.tenants.load_merchant(found[0]["iso_id"], found[0]["merchant_id"])
        if tenant is None:
            raise click.ClickException(f"merchant {slug!r} is suspended")
        async with tenant_transaction(tenant.merchant.iso_id):
            return await action(platform, tenant)
    finally:
        await platform.stop()


@main.group()
def links() -> None:
    """Signed portal links."""


@links.command("create")
@click.option("--merchant", "merchant_slug", required=True, help="Merchant slug.")
@click.option("--email", required=True, help="The customer's email address.")
@click.option("--purpose", default="portal", show_default=True, help="portal, or a purpose a plugin declares.")
@click.option("--expires-in", type=int, default=None, help="Seconds (default: the purpose's, 1 hour for portal).")
@click.option("--flow", default=None, help="A task to open: a flow's name, or NAME:ID (subscription_cancel:sub_…).")
@click.option("--return-url", default=None, help="An http(s) address the portal offers to go back to.")
@click.pass_context
@_fail_cleanly
def links_create(
    ctx: click.Context,
    merchant_slug: str,
    email: str,
    purpose: str,
    expires_in: int | None,
    flow: str | None,
    return_url: str | None,
) -> None:
    """Print a signed link that signs a customer into the merchant's portal."""
    from datetime import timedelta

    from portal.access.flows import FlowError, encode_flow
    from portal.access.links import issue_link
    from portal.db.engine import fetch
    from portal.tenancy.models import normalize_email

    settings = _settings(ctx, public_urls=True)

    async def action(platform: Any, tenant: Any) -> str:
        rows = await fetch(
            "SELECT id FROM portal_customer WHERE merchant_id = $1 AND email_normalized = $2",
            tenant.merchant.id,
            normalize_email(email),
        )
        if not rows:
            raise click.ClickException(f"merchant {merchant_slug!r} has no customer {email!r}")
        flow_value = None
        if flow:
            name, _, target = flow.partition(":")
            registered = platform.registry.link_flows.get(name)
            if registered is None or registered[0] not in tenant.enabled_plugins:
                raise click.ClickException(f"flow {name!r} is not available at {merchant_slug!r}")
            try:
                flow_value = encode_flow(registered[1], target or None)
            except FlowError as exc:
                raise click.ClickException(str(exc)) from exc
        if return_url is not None and not return_url.startswith(("https://", "http://")):
            raise click.ClickException("--return-url must be an http:// or https:// address")
        link = await issue_link(
            settings,
            tenant,
            rows[0]["id"],
            purpose=purpose,
            flow=flow_value,
            expires_in=timedelta(seconds=expires_in) if expires_in else None,
            source="operator",
            return_url=return_url,
        )
        return f"{link.url}\n(link {link.id}, expires {link.expires_at.isoformat()})"

    try:
        click.echo(_run(_with_merchant(settings, merchant_slug, action)))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group("signing-keys")
def signing_keys() -> None:
    """A merchant's link-signing keys (for minting links on the merchant's own backend)."""


@signing_keys.command("create")
@click.option("--merchant", "merchant_slug", required=True)
@click.option(
    "--retire-others-in", type=int, default=None, help="Hours until the merchant's other keys stop verifying."
)
@click.pass_context
@_fail_cleanly
def signing_keys_create(ctx: click.Context, merchant_slug: str, retire_others_in: int | None) -> None:
    """Create the merchant's new primary key and print its secret (shown only now)."""
    from datetime import timedelta

    from portal.access.keys import create_key

    settings = _settings(ctx)

    async def action(platform: Any, tenant: Any) -> tuple[str, str, str, str]:
        retire = timedelta(hours=retire_others_in) if retire_others_in is not None else None
        kid, secret = await create_key(tenant.merchant.iso_id, tenant.merchant.id, retire_others_after=retire)
        return kid, secret, tenant.merchant.iso_id, tenant.merchant.id

    kid, secret, iso_id, merchant_id = _run(_with_merchant(settings, merchant_slug, action))
    click.echo(f"kid:      {kid}\nsecret:   {secret}\niso:      {iso_id}\nmerchant: {merchant_id}")
    click.echo("Store the secret now; it is not shown again. Links also need the customer's id (API or tenant file).")


@signing_keys.command("list")
@click.option("--merchant", "merchant_slug", required=True)
@click.pass_context
@_fail_cleanly
def signing_keys_list(ctx: click.Context, merchant_slug: str) -> None:
    """List the merchant's keys (never their secrets)."""
    from portal.access.keys import list_keys

    settings = _settings(ctx)

    async def action(platform: Any, tenant: Any) -> list[Any]:
        return await list_keys(tenant.merchant.id)

    for key in _run(_with_merchant(settings, merchant_slug, action)):
        retire = key.retire_at.isoformat() if key.retire_at else "-"
        role = "primary" if key.is_primary else "       "
        click.echo(f"{key.kid}  {role}  created {key.created_at:%Y-%m-%d}  retires {retire}")


@signing_keys.command("retire")
@click.option("--merchant", "merchant_slug", required=True)
@click.argument("kid")
@click.pass_context
@_fail_cleanly
def signing_keys_retire(ctx: click.Context, merchant_slug: str, kid: str) -> None:
    """Stop a key verifying now."""
    from portal.access.keys import retire_key

    settings = _settings(ctx)

    async def action(platform: Any, tenant: Any) -> bool:
        return await retire_key(tenant.merchant.id, kid)

    if not _run(_with_merchant(settings, merchant_slug, action)):
        raise click.ClickException(f"merchant {merchant_slug!r} has no key {kid!r}")
    click.echo(f"retired {kid}")


@main.group("api-keys")
def api_keys() -> None:
    """Merchant (sk_) and ISO (isk_) API keys."""


@api_keys.command("create")
@click.option("--merchant", "merchant_slug", default=None, help="A merchant key for this merchant.")
@click.option("--iso", "iso_slug", default=None, help="An ISO key for this ISO.")
@click.option("--name", default="", help="What the key is for.")
@click.option("--scope", "scopes", multiple=True, help="Limit the key to these scopes (repeatable).")
@click.pass_context
@_fail_cleanly
def api_keys_create(
    ctx: click.Context, merchant_slug: str | None, iso_slug: str | None, name: str, scopes: tuple[str, ...]
) -> None:
    """Create an API key and print it once."""
    from portal.api.keys import ApiKeyError, create_api_key
    from portal.platform import Platform

    if (merchant_slug is None) == (iso_slug is None):
        raise click.UsageError("give exactly one of --merchant or --iso")
    settings = _settings(ctx)
    known = sorted(Platform(settings).registry.api_scopes)  # core's scopes and the plugins'
    chosen = scopes or tuple(known)

    async def action(iso_id: str, merchant_id: str | None) -> tuple[str, str]:
        return await create_api_key(iso_id, merchant_id, name=name, scopes=chosen, known=known)

    try:
        key_id, secret = _run(_with_iso_or_merchant(settings, merchant_slug, iso_slug, action))
    except ApiKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"id:     {key_id}\nkey:    {secret}\nscopes: {', '.join(sorted(chosen))}")
    click.echo("Store the key now; it is not shown again.")


# --- audit ---------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option("--merchant", "merchant_slug", default=None, help="Only this merchant (default: every merchant).")
@click.pass_context
@_fail_cleanly
def audit_verify(ctx: click.Context, merchant_slug: str | None) -> None:
    """Recompute every merchant's audit chain; exit 1 naming the first broken record."""
    from portal.db.engine import fetch, system_transaction, tenant_transaction
    from portal.events.verify import VerifyResult, verify_chain
    from portal.platform import Platform
    from portal.tasks.system import iso_ids

    settings = _settings(ctx)

    async def merchants() -> list[tuple[str, str, str]]:
        if merchant_slug is not None:
            async with system_transaction():
                found = await fetch("SELECT * FROM portal_locate_merchant($1)", merchant_slug)
            if not found:
                raise click.ClickException(f"no merchant with slug {merchant_slug!r}")
            return [(found[0]["iso_id"], found[0]["merchant_id"], merchant_slug)]
        listed: list[tuple[str, str, str]] = []
        for iso in await iso_ids(include_suspended=True):
            async with tenant_transaction(iso):
                rows = await fetch("SELECT id, slug FROM portal_merchant ORDER BY slug")
            listed.extend((iso, row["id"], row["slug"]) for row in rows)
        return listed

    async def go() -> VerifyResult | None:
        platform = Platform(settings)
        await platform.start()
        first_broken: VerifyResult | None = None
        try:
            for iso_id, merchant_id, slug in await merchants():
                async with tenant_transaction(iso_id):
                    result = await verify_chain(merchant_id)
                if result.broken is None:
                    click.echo(f"{slug}: ok, {result.records} record(s), head seq {result.head_seq} {result.head_hash}")
                else:
                    broken = result.broken
                    click.echo(f"{slug}: BROKEN at seq {broken.seq} ({broken.id}): {broken.problem}")
                    first_broken = first_broken or result
        finally:
            await platform.stop()
        return first_broken

    failed = _run(go())
    if failed is not None and failed.broken is not None:
        raise click.ClickException(
            f"audit chain of merchant {failed.merchant_id} is broken at seq {failed.broken.seq} "
            f"({failed.broken.id}): {failed.broken.problem}"
        )


async def _with_iso_or_merchant(
    settings: Settings,
    merchant_slug: str | None,
    iso_slug: str | None,
    action: Callable[[str, str | None], Awaitable[R]],
) -> R:
    """Run ``action(iso_id, merchant_id or None)`` in the tenant transaction of a merchant or an ISO."""
    from portal.db.engine import fetch, system_transaction, tenant_transaction
    from portal.platform import Platform

    if merchant_slug is not None:

        async def for_merchant(platform: Any, tenant: Any) -> R:
            return await action(tenant.merchant.iso_id, tenant.merchant.id)

        return await _with_merchant(settings, merchant_slug, for_merchant)
    platform = Platform(settings)
    await platform.start()
    try:
        async with system_transaction():
            rows = await fetch("SELECT portal_iso_id_for_slug($1) AS id", iso_slug)
        if not rows[0]["id"]:
            raise click.ClickException(f"no ISO with slug {iso_slug!r}")
        async with tenant_transaction(rows[0]["id"]):
            return await action(rows[0]["id"], None)
    finally:
        await platform.stop()


@api_keys.command("list")
@click.option("--merchant", "merchant_slug", default=None, help="The merchant's keys.")
@click.option("--iso", "iso_slug", default=None, help="The ISO's own keys.")
@click.pass_context
@_fail_cleanly
def api_keys_list(ctx: click.Context, merchant_slug: str | None, iso_slug: str | None) -> None:
    """List API keys (never the keys themselves: id, last four characters, scopes, state)."""
    from portal.db.engine import fetch, json_value

    if (merchant_slug is None) == (iso_slug is None):
        raise click.UsageError("give exactly one of --merchant or --iso")
    settings = _settings(ctx)

    async def action(iso_id: str, merchant_id: str | None) -> list[dict[str, Any]]:
        return await fetch(
            "SELECT id, kind, name, hint, scopes, created_at, last_used_at, revoked_at FROM portal_api_key "
            "WHERE merchant_id IS NOT DISTINCT FROM $1 ORDER BY created_at DESC",
            merchant_id,
        )

    for row in _run(_with_iso_or_merchant(settings, merchant_slug, iso_slug, action)):
        state = f"revoked {row['revoked_at']:%Y-%m-%d}" if row["revoked_at"] else "live"
        used = f"{row['last_used_at']:%Y-%m-%d}" if row["last_used_at"] else "never"
        scopes = ", ".join(json_value(row["scopes"]))
        click.echo(f"{row['id']}  …{row['hint']}  {state:<18} used {used:<10} {row['name'] or '-'}  [{scopes}]")


@api_keys.command("revoke")
@click.option("--merchant", "merchant_slug", default=None)
@click.option("--iso", "iso_slug", default=None)
@click.argument("key_id")
@click.pass_context
@_fail_cleanly
def api_keys_revoke(ctx: click.Context, merchant_slug: str | None, iso_slug: str | None, key_id: str) -> None:
    """Revoke an API key at once; requests with it answer 401 from then on."""
    from portal.api.keys import revoke_api_key
    from portal.db.engine import fetch

    if (merchant_slug is None) == (iso_slug is None):
        raise click.UsageError("give exactly one of --merchant or --iso")
    settings = _settings(ctx)

    async def action(iso_id: str, merchant_id: str | None) -> bool:
        owned = await fetch(
            "SELECT 1 FROM portal_api_key WHERE id = $1 AND merchant_id IS NOT DISTINCT FROM $2", key_id, merchant_id
        )
        return bool(owned) and await revoke_api_key(key_id)

    if not _run(_with_iso_or_merchant(settings, merchant_slug, iso_slug, action)):
        raise click.ClickException(f"no live API key {key_id!r} there")
    click.echo(f"revoked {key_id}")


# --- test clocks ---------------------------------------------------------------------------


@main.group()
def clock() -> None:
    """Test clocks of sandbox merchants: move time forward and run what falls due."""


@clock.command("advance")
@click.option("--merchant", "merchant_slug", required=True, help="Merchant slug (its gateway must be the sandbox).")
@click.argument("duration")
@click.pass_context
@_fail_cleanly
def clock_advance(ctx: click.Context, merchant_slug: str, duration: str) -> None:
    """Move the merchant's clock forward by DURATION (31d, 2w, 1d12h, 90m) and run what falls due.

    Renewals, scheduled cancellations, pause ends and charges run in order, as the worker would
    run them; their webhooks are queued for the worker (or the running demo) to deliver.
    """
    from portal.billing.advance import AdvanceReport, advance_clock, parse_duration
    from portal.billing.clock import merchant_now
    from portal.billing.errors import BillingError
    from portal.db.engine import fetch, system_transaction
    from portal.platform import Platform

    try:
        step = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="DURATION") from None
    settings = _settings(ctx)
    _logging(settings)

    async def go() -> AdvanceReport:
        platform = Platform(settings)
        await platform.start()
        try:
            async with system_transaction():
                found = await fetch("SELECT * FROM portal_locate_merchant($1)", merchant_slug)
            if not found:
                raise click.ClickException(f"no merchant with slug {merchant_slug!r}")
            tenant = await platform.tenants.load_merchant(found[0]["iso_id"], found[0]["merchant_id"])
            if tenant is None:
                raise click.ClickException(f"merchant {merchant_slug!r} is suspended")
            now = await merchant_now(tenant.merchant.id, iso_id=tenant.merchant.iso_id)
            try:
                return await advance_clock(platform, tenant, now + step)
            except BillingError as exc:
                raise click.ClickException(exc.message) from None
        finally:
            await platform.stop()

    report = _run(go())
    click.echo(f"{report.merchant}: clock {report.previous:%Y-%m-%d %H:%M} → {report.now:%Y-%m-%d %H:%M} UTC "
               f"({report.steps} steps, {report.tasks_run} tasks)")  # fmt: skip
    click.echo(f"  renewed {len(report.renewed)}, canceled {len(report.canceled)}, resumed {len(report.resumed)}; "
               f"invoices {len(report.invoices)}, paid {len(report.payments_succeeded)}, "
               f"payment failed {len(report.payments_failed)}; webhooks queued {report.webhooks_queued}")  # fmt: skip
    for event in report.events:
        click.echo(f"  {event.at:%Y-%m-%d %H:%M}  {event.type:<32} {event.target or ''}")


# --- processes -----------------------------------------------------------------------------


@main.command(beside_demo=False)
@click.option("--host", default=None, help="Interface to bind (default from PORTAL_HOST).")
@click.option("--port", type=int, default=None, help="Port (default from PORTAL_PORT).")
@click.option("--workers", type=int, default=None, help="Server processes (default PORTAL_WEB_WORKERS).")
@click.pass_context
@_fail_cleanly
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the web server (stateless; run several behind a proxy to scale).

    uvicorn picks uvloop and httptools, which the platform installs: of the servers measured
    (``bench/README.md``, "HTTP server") they serve a page with the least CPU.
    """
    import uvicorn

    settings = _settings(ctx, host=host, port=port, web_workers=workers)
    _logging(settings)
    uvicorn.run(
        "portal.web.asgi:create_asgi_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.web_workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=settings.log_level,
        log_config=None,
    )


@main.command()
@click.option("--ops-port", type=int, default=None, help="Operator listener port (default PORTAL_OPS_PORT; 0: any).")
@click.pass_context
@_fail_cleanly
def worker(ctx: click.Context, ops_port: int | None) -> None:
    """Run background work (webhook delivery, emails, sweeps) until stopped; SIGTERM stops gracefully."""
    from portal.platform import Platform
    from portal.tasks.worker import Worker

    settings = _settings(ctx, ops_port=ops_port)
    _logging(settings)

    async def go() -> None:
        platform = Platform(settings)
        await platform.start(worker=True)
        work = Worker(platform)
        listener = None
        try:
            if settings.ops_port is not None:
                from portal.ops import start_ops_listener

                listener = await start_ops_listener(
                    settings, port=settings.ops_port, health=work.health, ready=work.problems,
                    before_scrape=work.refresh_metrics,
                )  # fmt: skip
                click.echo(f"worker operator listener on http://{settings.ops_host}:{listener.port}/-/health")
            loop = asyncio.get_running_loop()

            def stop() -> None:
                click.echo("worker stopping")
                work.stop()

            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(stop_signal, stop)
            click.echo(f"worker ready ({work.id})")  # from here SIGTERM and SIGINT stop it gracefully
            await work.run()
            click.echo("worker stopped")
        finally:
            if listener is not None:
                await listener.stop()
            await platform.stop()

    _run(go())


@main.command(creates_database=True, beside_demo=False)
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option("--tenants", "tenants_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.pass_context
@_fail_cleanly
def demo(ctx: click.Context, host: str | None, port: int | None, tenants_file: Path | None) -> None:
    """Database, migrations, demo tenants, web server and worker in one process (Ctrl+C stops)."""
    from portal.demo import run_demo

    settings = _settings(ctx, host=host, port=port, demo=True)
    _logging(settings)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        _run(run_demo(settings, tenants_file or DEMO_TENANTS))


@main.group()
def themes() -> None:
    """Installed themes."""


@themes.command("check")
@click.argument("theme")
@click.pass_context
@_fail_cleanly
def themes_check(ctx: click.Context, theme: str) -> None:
    """List what THEME overrides and inherits, render every template in every language, check its contrast."""
    from portal.platform import Platform
    from portal.theming.check import check_theme, print_report
    from portal.theming.engine import ThemeError

    platform = Platform(_settings(ctx, database=False))
    try:
        report = check_theme(platform.themes, platform.catalogs, theme)
    except ThemeError as exc:
        raise click.ClickException(str(exc)) from exc
    print_report(report)
    if not report.ok:
        raise click.ClickException(f"theme {theme} has {len(report.problems)} problem(s)")


@main.group("i18n")
def i18n() -> None:
    """Translations: extract messages into each package's catalogs, and check them."""


register_i18n_commands(i18n)


@main.group("plugin")
def plugin() -> None:
    """Plugin authors' tools: a new plugin package, and a plugin's next migration."""


register_plugin_kit_commands(plugin)

if __name__ == "__main__":  # pragma: no cover
    main()
