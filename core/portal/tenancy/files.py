"""Declarative tenant files: validate a whole TOML file, then upsert it in one transaction.

Applying the same file twice changes nothing. What a file lists for a merchant is the truth for
that merchant: domains it does not list are removed and plugins it does not list are off.
ISOs, merchants and customers the file does not mention are left alone.
"""

from __future__ import annotations

import json
import tomllib
import zoneinfo
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import asyncpg
import babel
import msgspec

from portal.db.engine import fetch, plain_transaction
from portal.ids import new_id
from portal.payments.choice import validate_gateway
from portal.plugins.registry import PluginRegistry, SettingsError
from portal.tenancy.colours import adjustments
from portal.tenancy.models import normalize_email

SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
HOST = r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
URL = r"^https?://\S+$"

Slug = Annotated[str, msgspec.Meta(pattern=SLUG)]
Host = Annotated[str, msgspec.Meta(pattern=HOST)]
Email = Annotated[str, msgspec.Meta(pattern=EMAIL, max_length=254)]
Url = Annotated[str, msgspec.Meta(pattern=URL, max_length=2000)]
HttpsUrl = Annotated[str, msgspec.Meta(pattern=r"^https://\S+$", max_length=2000)]
LOGO_URL = r"^(?:https://\S+|/static/(?!.*\.\.)[A-Za-z0-9._~/-]+)$"
"""An https URL, or a file the portal serves: a site-relative ``/static/...`` path that never climbs out."""
LogoUrl = Annotated[str, msgspec.Meta(pattern=LOGO_URL, max_length=2000)]
Origin = Annotated[
    str, msgspec.Meta(pattern=r"^https://[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::[0-9]{1,5})?$", max_length=260)
]
Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class BrandSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[isos.merchants.brand]``: colours, logo and the links shown in the portal."""

    color: Color = "#2f5bea"
    accent: Color | None = None
    """A second brand colour (focus rings, highlights); the brand colour when absent."""
    logo_url: LogoUrl | None = None
    """Loaded by customers' browsers, so HTTPS only (the page's CSP blocks plain HTTP images), or a
    file the portal serves, as a site-relative ``/static/...`` path (a theme's static folder)."""
    support_email: Email | None = None
    terms_url: Url | None = None
    privacy_url: Url | None = None


class PluginSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[isos.merchants.plugins.<key>]``: on or off, and the plugin's settings."""

    enabled: bool = True
    settings: dict[str, Any] = {}


class GatewaySpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[isos.merchants.gateway]``: the payment gateway and its credentials and options."""

    key: str
    settings: dict[str, Any] = {}


class CustomerSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[isos.merchants.customers]]``: a customer, matched by normalised email."""

    email: Email
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    external_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class MerchantSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[isos.merchants]]``: a merchant, matched by slug."""

    slug: Slug
    name: Name
    status: Literal["active", "suspended"] = "active"
    timezone: str = "UTC"
    locale: str = "en"
    theme: Slug | None = None
    domains: list[Host] = []
    frame_ancestors: list[Origin] = []
    """HTTPS origins allowed to embed the portal in a frame; empty (the default): none."""
    brand: BrandSpec = msgspec.field(default_factory=BrandSpec)
    plugins: dict[str, PluginSpec] = {}
    gateway: GatewaySpec | None = None
    """No gateway: card features show that payments are not set up."""
    customers: list[CustomerSpec] = []


class IsoSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[isos]]``: an ISO, matched by slug."""

    slug: Slug
    name: Name
    status: Literal["active", "suspended"] = "active"
    theme: Slug = "base"
    merchants: list[MerchantSpec] = []


class TenantFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A whole tenant file."""

    isos: list[IsoSpec] = []


class TenantFileError(ValueError):
    """The file is invalid; ``problems`` lists every problem as ``<file>: <key>: <what>``."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class Change(msgspec.Struct, frozen=True):
    """One row created, updated or removed by an apply."""

    action: Literal["create", "update", "delete"]
    kind: str
    key: str
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line such as ``update merchant greenfield (brand_color)``."""
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.action} {self.kind} {self.key}{detail}"


def load_tenant_file(path: Path, registry: PluginRegistry, base_domain: str) -> TenantFile:
    """Parse and validate a tenant file completely; raise :class:`TenantFileError`."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TenantFileError([f"{path}: cannot read the file ({exc.strerror})"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise TenantFileError([f"{path}: not valid TOML: {exc}"]) from exc
    try:
        spec = msgspec.convert(raw, TenantFile, strict=True)
    except msgspec.ValidationError as exc:
        raise TenantFileError([f"{path}: {_key_of(exc)}"]) from exc
    problems = _check(spec, registry, base_domain)
    if problems:
        raise TenantFileError([f"{path}: {problem}" for problem in problems])
    return spec


def tenant_file_warnings(spec: TenantFile, source: str | Path) -> list[str]:
    """What is valid but applied differently from the file, as ``<file>: <key>: <what>`` lines.

    A brand or accent colour that text cannot be read on, or in, is shown adjusted (see
    :mod:`portal.tenancy.colours`); each such colour gets one line naming the merchant.
    """
    warnings: list[str] = []
    for i, iso in enumerate(spec.isos):
        for j, merchant in enumerate(iso.merchants):
            at = f"isos[{i}].merchants[{j}].brand"
            colours = [("color", "brand colour", merchant.brand.color)]
            if merchant.brand.accent is not None:
                colours.append(("accent", "accent colour", merchant.brand.accent))
            for key, label, value in colours:
                for note in adjustments(value):
                    warnings.append(f"{source}: {at}.{key}: merchant {merchant.slug!r}: {label} {note}")
    return warnings


def _key_of(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    if " - at `$." in message:
        detail, where = message.split(" - at `$.", 1)
        return f"{where.rstrip('`')}: {detail}"
    return message


def _check(spec: TenantFile, registry: PluginRegistry, base_domain: str) -> list[str]:
    problems: list[str] = []
    seen_isos: set[str] = set()
    seen_merchants: set[str] = set()
    seen_hosts: set[str] = set()
    bare_base = base_domain.split(":", 1)[0]
    for i, iso in enumerate(spec.isos):
        where = f"isos[{i}]"
        if iso.slug in seen_isos:
            problems.append(f"{where}.slug: ISO {iso.slug!r} appears twice")
        seen_isos.add(iso.slug)
        if iso.theme not in registry.themes:
            problems.append(f"{where}.theme: theme {iso.theme!r} is not installed")
        for j, merchant in enumerate(iso.merchants):
            at = f"{where}.merchants[{j}]"
            if merchant.slug in seen_merchants:
                problems.append(f"{at}.slug: merchant {merchant.slug!r} appears twice")
            seen_merchants.add(merchant.slug)
            if merchant.slug == "api":
                problems.append(f"{at}.slug: 'api' is reserved for the API host")
            if merchant.theme is not None and merchant.theme not in registry.themes:
                problems.append(f"{at}.theme: theme {merchant.theme!r} is not installed")
            try:
                zoneinfo.ZoneInfo(merchant.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                problems.append(f"{at}.timezone: unknown time zone {merchant.timezone!r}")
            try:
                babel.Locale.parse(merchant.locale.replace("-", "_"))
            except (ValueError, babel.UnknownLocaleError):
                problems.append(f"{at}.locale: unknown locale {merchant.locale!r}")
            for k, host in enumerate(merchant.domains):
                if host in seen_hosts:
                    problems.append(f"{at}.domains[{k}]: host {host!r} appears twice")
                if host == bare_base or host.endswith("." + bare_base):
                    problems.append(f"{at}.domains[{k}]: {host!r} is under the base domain; use the slug instead")
                seen_hosts.add(host)
            for key, plugin in merchant.plugins.items():
                if key not in registry.plugins:
                    problems.append(f"{at}.plugins.{key}: plugin {key!r} is not installed")
                    continue
                try:
                    registry.validate_settings(key, plugin.settings)
                except SettingsError as exc:
                    problems.append(f"{at}.plugins.{key}.settings: {exc}")
            if merchant.gateway is not None:
                try:
                    validate_gateway(registry, merchant.gateway.key, merchant.gateway.settings)
                except SettingsError as exc:
                    problems.append(f"{at}.gateway: {exc}")
            emails: set[str] = set()
            refs: set[str] = set()
            for k, customer in enumerate(merchant.customers):
                email = normalize_email(customer.email)
                if email in emails:
                    problems.append(f"{at}.customers[{k}].email: {customer.email!r} appears twice")
                emails.add(email)
                if customer.external_ref is not None:
                    if customer.external_ref in refs:
                        problems.append(f"{at}.customers[{k}].external_ref: appears twice")
                    refs.add(customer.external_ref)
    return problems


async def apply_tenant_file(
    spec: TenantFile, registry: PluginRegistry, *, dry_run: bool = False, source: str = "tenant file"
) -> list[Change]:
    """Upsert everything in ``spec`` in one transaction (rolled back on any error or dry run)."""
    changes: list[Change] = []
    async with plain_transaction() as transaction:
        problems = await _ownership_problems(spec)
        if problems:
            raise TenantFileError([f"{source}: {problem}" for problem in problems])
        domain_plans: list[_DomainPlan] = []
        try:
            for iso in spec.isos:
                domain_plans += await _apply_iso(iso, registry, changes)
            for plan in domain_plans:
                await _release_domains(plan, changes)
            for plan in domain_plans:
                await _claim_domains(plan, changes)
        except asyncpg.UniqueViolationError as exc:
            raise TenantFileError([f"{source}: conflicts with an existing record ({exc.constraint_name})"]) from exc
        if dry_run:
            await transaction.rollback()  # type: ignore[no-untyped-call]
    return changes


async def _ownership_problems(spec: TenantFile) -> list[str]:
    """Slugs and hosts in the file that belong to another ISO or to another ISO's merchant."""
    problems: list[str] = []
    for i, iso in enumerate(spec.isos):
        rows = await fetch("SELECT portal_iso_id_for_slug($1) AS id", iso.slug)
        iso_id = rows[0]["id"]
        for j, merchant in enumerate(iso.merchants):
            at = f"isos[{i}].merchants[{j}]"
            owner = await fetch("SELECT iso_id FROM portal_locate_merchant($1)", merchant.slug)
            if owner and owner[0]["iso_id"] != iso_id:
                problems.append(f"{at}.slug: merchant {merchant.slug!r} belongs to another ISO")
            for k, host in enumerate(merchant.domains):
                owner = await fetch("SELECT iso_id FROM portal_locate_domain($1)", host)
                if owner and owner[0]["iso_id"] != iso_id:
                    problems.append(f"{at}.domains[{k}]: {host!r} belongs to another ISO's merchant")
    return problems


async def _set_iso(iso_id: str) -> None:
    await fetch("SELECT set_config('portal.iso_id', $1, true)", iso_id)


class _DomainPlan(msgspec.Struct):
    iso_id: str
    merchant_id: str
    slug: str
    hosts: list[str]


async def _apply_iso(iso: IsoSpec, registry: PluginRegistry, changes: list[Change]) -> list[_DomainPlan]:
    rows = await fetch("SELECT portal_iso_id_for_slug($1) AS id", iso.slug)
    iso_id = rows[0]["id"] if rows and rows[0]["id"] else None
    wanted = {"name": iso.name, "status": iso.status, "default_theme": iso.theme}
    if iso_id is None:
        iso_id = new_id("iso")
        await _set_iso(iso_id)
        await fetch(
            "INSERT INTO portal_iso (id, slug, name, status, default_theme) VALUES ($1, $2, $3, $4, $5)",
            iso_id,
            iso.slug,
            iso.name,
            iso.status,
            iso.theme,
        )
        changes.append(Change("create", "iso", iso.slug))
    else:
        await _set_iso(iso_id)
        await _update("portal_iso", "id", iso_id, wanted, changes, "iso", iso.slug)
    plans = []
    for merchant in iso.merchants:
        merchant_id = await _apply_merchant(iso_id, iso, merchant, registry, changes)
        plans.append(_DomainPlan(iso_id, merchant_id, merchant.slug, list(merchant.domains)))
    return plans


JSON_COLUMNS = frozenset({"frame_ancestors", "gateway"})


def _same(current: Any, wanted: Any, column: str) -> bool:
    """Equal values; JSON columns compare parsed (PostgreSQL reorders object keys)."""
    if column in JSON_COLUMNS and isinstance(current, str) and isinstance(wanted, str):
        return bool(json.loads(current) == json.loads(wanted))
    return bool(current == wanted)


async def _update(
    table: str, key_column: str, key: str, wanted: dict[str, Any], changes: list[Change], kind: str, label: str
) -> None:
    columns = ", ".join(wanted)
    current = (await fetch(f"SELECT {columns} FROM {table} WHERE {key_column} = $1", key))[0]
    differing = [name for name, value in wanted.items() if not _same(current[name], value, name)]
    if not differing:
        return
    assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(differing))
    await fetch(
        f"UPDATE {table} SET {assignments}, updated_at = now() WHERE {key_column} = $1",
        key,
        *(wanted[name] for name in differing),
    )
    changes.append(Change("update", kind, label, tuple(differing)))


async def _apply_merchant(
    iso_id: str, iso: IsoSpec, merchant: MerchantSpec, registry: PluginRegistry, changes: list[Change]
) -> str:
    wanted = {
        "name": merchant.name,
        "status": merchant.status,
        "timezone": merchant.timezone,
        "default_locale": merchant.locale,
        "theme_key": merchant.theme or iso.theme,
        "brand_color": merchant.brand.color.lower(),
        "accent_color": merchant.brand.accent.lower() if merchant.brand.accent else None,
        "logo_url": merchant.brand.logo_url,
        "support_email": merchant.brand.support_email,
        "terms_url": merchant.brand.terms_url,
        "privacy_url": merchant.brand.privacy_url,
        "frame_ancestors": json.dumps(merchant.frame_ancestors),
        "gateway": json.dumps(msgspec.to_builtins(merchant.gateway), sort_keys=True) if merchant.gateway else None,
    }
    rows = await fetch("SELECT id FROM portal_merchant WHERE slug = $1", merchant.slug)
    if rows:
        merchant_id: str = rows[0]["id"]
        await _update("portal_merchant", "id", merchant_id, wanted, changes, "merchant", merchant.slug)
    else:
        merchant_id = new_id("mer")
        columns = ["id", "iso_id", "slug", *wanted]
        values = [merchant_id, iso_id, merchant.slug, *wanted.values()]
        placeholders = ", ".join(f"${i + 1}" for i in range(len(values)))
        await fetch(f"INSERT INTO portal_merchant ({', '.join(columns)}) VALUES ({placeholders})", *values)
        changes.append(Change("create", "merchant", merchant.slug))
    await _apply_plugins(iso_id, merchant_id, merchant, registry, changes)
    await _apply_customers(iso_id, merchant_id, merchant, changes)
    return merchant_id


async def _release_domains(plan: _DomainPlan, changes: list[Change]) -> None:
    """Remove the merchant's hosts the file no longer lists (before any host is claimed)."""
    await _set_iso(plan.iso_id)
    removed = await fetch(
        "DELETE FROM portal_merchant_domain WHERE merchant_id = $1 AND NOT (host = ANY($2::text[])) RETURNING host",
        plan.merchant_id,
        plan.hosts,
    )
    for row in sorted(removed, key=lambda r: r["host"]):
        changes.append(Change("delete", "domain", f"{plan.slug}:{row['host']}"))


async def _claim_domains(plan: _DomainPlan, changes: list[Change]) -> None:
    """Add the hosts the file lists; a host moving from a sibling merchant changes owner."""
    await _set_iso(plan.iso_id)
    for host in plan.hosts:
        rows = await fetch("SELECT merchant_id FROM portal_merchant_domain WHERE host = $1", host)
        if rows and rows[0]["merchant_id"] == plan.merchant_id:
            continue
        if rows:
            await fetch("UPDATE portal_merchant_domain SET merchant_id = $2 WHERE host = $1", host, plan.merchant_id)
            changes.append(Change("update", "domain", f"{plan.slug}:{host}", ("merchant",)))
            continue
        await fetch(
            "INSERT INTO portal_merchant_domain (id, iso_id, merchant_id, host) VALUES ($1, $2, $3, $4)",
            new_id("dom"),
            plan.iso_id,
            plan.merchant_id,
            host,
        )
        changes.append(Change("create", "domain", f"{plan.slug}:{host}"))


async def _apply_plugins(
    iso_id: str, merchant_id: str, merchant: MerchantSpec, registry: PluginRegistry, changes: list[Change]
) -> None:
    rows = await fetch(
        "SELECT plugin_key, enabled, settings FROM portal_plugin_activation WHERE merchant_id = $1", merchant_id
    )
    existing = {row["plugin_key"]: row for row in rows}
    for key in sorted(set(merchant.plugins) | set(existing)):
        spec = merchant.plugins.get(key)
        enabled = spec.enabled if spec else False
        settings = json.dumps(spec.settings if spec else json.loads(existing[key]["settings"]), sort_keys=True)
        label = f"{merchant.slug}:{key}"
        row = existing.get(key)
        if row is None:
            await fetch(
                "INSERT INTO portal_plugin_activation (id, iso_id, merchant_id, plugin_key, enabled, settings) "
                "VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
                new_id("act"),
                iso_id,
                merchant_id,
                key,
                enabled,
                settings,
            )
            changes.append(Change("create", "plugin", label, ("enabled",) if enabled else ("disabled",)))
            continue
        differing = []
        if row["enabled"] != enabled:
            differing.append("enabled")
        if json.loads(row["settings"]) != json.loads(settings):
            differing.append("settings")
        if differing:
            await fetch(
                "UPDATE portal_plugin_activation SET enabled = $3, settings = $4::jsonb, updated_at = now() "
                "WHERE merchant_id = $1 AND plugin_key = $2",
                merchant_id,
                key,
                enabled,
                settings,
            )
            changes.append(Change("update", "plugin", label, tuple(differing)))


async def _apply_customers(iso_id: str, merchant_id: str, merchant: MerchantSpec, changes: list[Change]) -> None:
    for customer in merchant.customers:
        email = normalize_email(customer.email)
        rows = await fetch(
            "SELECT id FROM portal_customer WHERE merchant_id = $1 AND email_normalized = $2", merchant_id, email
        )
        wanted = {"email": customer.email, "name": customer.name, "external_ref": customer.external_ref}
        label = f"{merchant.slug}:{email}"
        if rows:
            await _update("portal_customer", "id", rows[0]["id"], wanted, changes, "customer", label)
        else:
            await fetch(
                "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name, external_ref) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                new_id("cus"),
                iso_id,
                merchant_id,
                customer.email,
                email,
                customer.name,
                customer.external_ref,
            )
            changes.append(Change("create", "customer", label))
