"""Tables of the access layer: signing keys, issued links, API keys, rate-limit counters."""

from __future__ import annotations

from piccolo.columns import JSONB, Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.tenancy.tables import Customer, Iso, Merchant


class SigningKey(Table, tablename="portal_signing_key"):
    """A merchant's link-signing key. The primary one signs; the others verify until retired."""

    id = Varchar(length=40, primary_key=True)
    """The key id (``kid``) carried in tokens: ``lk_...``."""
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    merchant_id = ForeignKey(references=Merchant, null=False, index=True)
    secret = Varchar(length=80)
    is_primary = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    retire_at = Timestamptz(null=True, default=None)


class PortalLink(Table, tablename="portal_link"):
    """A link seen or issued: by our API, an operator, an email, or first used if minted offline."""

    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    merchant_id = ForeignKey(references=Merchant, null=False)
    jti = Varchar(length=64)
    customer_id = ForeignKey(references=Customer, null=True, default=None)
    purpose = Varchar(length=20, null=True, default=None)
    flow = Varchar(length=100, null=True, default=None)
    source = Varchar(length=16, default="merchant")
    return_url = Text(null=True, default=None)
    locale = Varchar(length=35, null=True, default=None)
    issued_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None)
    first_used_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)
    use_count = Integer(default=0)
    revoked_at = Timestamptz(null=True, default=None)
    fulfilled_at = Timestamptz(null=True, default=None)


class ApiKey(Table, tablename="portal_api_key"):
    """A merchant (``sk_``) or ISO (``isk_``) API key; only its SHA-256 is stored."""

    id = Varchar(length=40, primary_key=True)
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    merchant_id = ForeignKey(references=Merchant, null=True, default=None)
    kind = Varchar(length=8)
    name = Varchar(length=200, default="")
    secret_hash = Varchar(length=64, unique=True)
    hint = Varchar(length=12)
    scopes = JSONB(default="[]")
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class RateCounter(Table, tablename="portal_rate_counter"):
    """Hits in one fixed window for one bucket (for example sign-in emails per address)."""

    id = Varchar(length=200, primary_key=True)
    """``<bucket>@<window start, epoch seconds>``."""
    iso_id = ForeignKey(references=Iso, null=False, index=True)
    hits = Integer(default=0)
    expires_at = Timestamptz()


ACCESS_TABLES: tuple[type[Table], ...] = (SigningKey, PortalLink, ApiKey, RateCounter)
