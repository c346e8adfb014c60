"""Piccolo tables of the tenancy model. Every table but ``portal_iso`` carries ``iso_id``.

Row-level security (see the core migrations) limits each to the ISO set for the transaction.
"""

from __future__ import annotations

from piccolo.columns import JSONB, Boolean, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Iso(Table, tablename="portal_iso"):
    """An ISO or multi-brand operator; the isolation boundary."""

    id = Varchar(length=40, primary_key=True)
    slug = Varchar(length=63, unique=True)
    name = Varchar(length=200)
    status = Varchar(length=16, default="active")
    default_theme = Varchar(length=63, default="base")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Merchant(Table, tablename="portal_merchant"):
    """A merchant of an ISO: brand, locale, theme and status."""

    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    slug = Varchar(length=63, unique=True)
    name = Varchar(length=200)
    status = Varchar(length=16, default="active")
    timezone = Varchar(length=64, default="UTC")
    default_locale = Varchar(length=35, default="en")
    theme_key = Varchar(length=63, default="base")
    brand_color = Varchar(length=7, default="#2f5bea")
    accent_color = Varchar(length=7, null=True, default=None)
    """Optional second brand colour; null: the brand colour serves as accent."""
    logo_url = Text(null=True, default=None)
    support_email = Varchar(length=254, null=True, default=None)
    terms_url = Text(null=True, default=None)
    privacy_url = Text(null=True, default=None)
    frame_ancestors = JSONB(default="[]")
    """Origins allowed to embed the portal in a frame; empty: nobody."""
    gateway = JSONB(null=True, default=None)
    """The payment gateway: ``{"key": ..., "settings": {...}}``; null: payments are not set up."""
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class MerchantDomain(Table, tablename="portal_merchant_domain"):
    """A custom host name answering for a merchant."""

    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    merchant_id = ForeignKey(references=Merchant, null=False, index=True)
    host = Varchar(length=253, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())


class Customer(Table, tablename="portal_customer"):
    """A merchant's customer. One person at three merchants is three rows."""

    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    merchant_id = ForeignKey(references=Merchant, null=False, index=True)
    email = Varchar(length=254)
    email_normalized = Varchar(length=254, index=True)
    name = Varchar(length=200, default="")
    external_ref = Varchar(length=200, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    locale = Varchar(length=35, null=True, default=None)
    """The language of the customer's last link or their own choice; emails are written in it."""


class PluginActivation(Table, tablename="portal_plugin_activation"):
    """Whether a plugin is on for a merchant, and its settings there."""

    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    merchant_id = ForeignKey(references=Merchant, null=False, index=True)
    plugin_key = Varchar(length=63)
    enabled = Boolean(default=True)
    settings = JSONB(default="{}")
    updated_at = Timestamptz(default=TimestamptzNow())


class PortalSession(Table, tablename="portal_session"):
    """A customer's server-side session on one merchant host; the cookie holds its secret."""

    id = Varchar(length=64, primary_key=True)
    """SHA-256 (hex) of the cookie value; the value itself is never stored."""
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    merchant_id = ForeignKey(references=Merchant, null=False)
    customer_id = ForeignKey(references=Customer, null=False, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    ended_at = Timestamptz(null=True, default=None)
    link_id = Varchar(length=40, null=True, default=None)
    """The link the session was opened with, if any."""
    flow = Varchar(length=100, null=True, default=None)
    return_url = Text(null=True, default=None)
    locale = Varchar(length=35, null=True, default=None)


TENANT_TABLES: tuple[type[Table], ...] = (
    Iso,
    Merchant,
    MerchantDomain,
    Customer,
    PluginActivation,
    PortalSession,
)
