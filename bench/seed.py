"""A realistic installation at scale, in a database of its own, for the page benchmarks.

Two ISOs of 100 merchants each (cards, subscriptions, invoices, merchant switch and payment
recovery on, sandbox gateway), made by applying a tenant file; each merchant's products and
prices made with the catalog; then ``--customers`` customers spread unevenly over the merchants
(the largest has about 4% of them), each with a card on file (a sandbox vault record), 1.2
subscriptions and 5 invoices on average (issued over two years: mostly paid, some open, past due,
void or uncollectible), past sign-ins (sessions, ended or expired), a payment attempt and a
sandbox sale for every paid invoice and a declined one for every past due invoice, and the audit
records production writes for all that (about 20 per customer), chained per merchant with
production's own ``chain_hash``. The volume goes in with ``COPY``; a few customers per merchant
are then made through the services (card vaulted at the sandbox, a subscription created and its
invoice paid, a one-off invoice), after the bulk history, so their events continue each
merchant's chain. About 3% of the customers use one email at up to five merchants of their ISO.

Probe customers at the largest merchant, recorded in the table ``bench_probe`` and printed: with
1, 12 and 500 invoices, and one whose email is at five merchants (for the switch page).

    uv run python bench/seed.py --database-url postgresql://postgres@127.0.0.1:5432/postgres \
        --name portal_bench_10k --customers 10000 --seed 1

While loading, the secondary indexes of the bulk tables are dropped and made again afterwards
(their definitions are read from ``pg_indexes`` first and checked back at the end), and the
loading connection runs with ``session_replication_role = replica``, which skips foreign-key
triggers for its own statements only (every row is written with existing keys). ``ANALYZE``
runs at the end; then the sizes of the tables and their indexes are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from cards_pages import host_of
from harness import BASE_DOMAIN, say

from portal.billing import catalog, charges, invoices, subscriptions
from portal.billing.events import InvoiceEvent, InvoicePaymentFailed, PaymentEvent, SubscriptionEvent
from portal.billing.models import Invoice, InvoiceLine, LineInput, PaymentAttempt, Subscription
from portal.config import Settings
from portal.db.engine import fetch, tenant_transaction, with_database
from portal.events import bus
from portal.events.bus import SYSTEM
from portal.events.chain import GENESIS, chain_hash
from portal.events.core_types import CustomerPayload, SessionPayload
from portal.events.verify import verify_chain
from portal.payments import methods
from portal.payments.sandbox import store
from portal.payments.sandbox.cards import check_card
from portal.platform import Platform
from portal.tenancy.files import apply_tenant_file, load_tenant_file
from portal.tenancy.models import CustomerView, Tenant
from portal_cards.events import PaymentMethodPayload

ISOS = ("harbor-scale", "summit-scale")
MERCHANTS_PER_ISO = 100
PLUGINS = ("cards", "subscriptions", "invoices", "merchant_switch", "payment_recovery")
SERVICE_CUSTOMERS = 2
"""Customers per merchant made through the services after the bulk history."""
CHUNK = 4000
"""Customers generated and copied at a time."""
HISTORY = timedelta(days=730)
PROBE_INVOICES = (1, 12, 500)
SWITCH_MERCHANTS = 5
"""Merchants of the first ISO where the switch probe's email is a customer."""
PRODUCTS = (
    ("Monthly Box", "month", 3900),
    ("Pro Plan", "month", 12900),
    ("Team Plan", "month", 48000),
    ("Annual Membership", "year", 29900),
)
CARDS = (("visa", "1111"), ("mastercard", "4444"), ("visa", "0002"), ("amex", "0005"))
"""Brand and last four digits of the sandbox's approving test cards."""
ACTIVITY_TARGET = 10
"""Audit records a customer gets at least: sign-ins fill up what the ledger's events leave."""
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]
"""Ten bits as two characters of ``portal.ids``' alphabet."""
_SHIFTS = range(120, -1, -10)

BULK_TABLES = (
    "portal_customer", "portal_payment_method", "portal_sandbox_vault", "portal_sandbox_billing",
    "portal_billing_subscription", "portal_billing_invoice", "portal_billing_invoice_line",
    "portal_billing_payment_attempt", "portal_sandbox_transaction", "portal_session", "portal_audit_event",
)  # fmt: skip
COLUMNS: dict[str, tuple[str, ...]] = {
    "portal_customer": (
        "id", "iso_id", "merchant_id", "email", "email_normalized", "name", "external_ref", "created_at",
        "updated_at", "locale",
    ),
    "portal_payment_method": (
        "id", "iso_id", "merchant_id", "customer_id", "gateway", "vault_id", "billing_id", "brand", "last4",
        "exp_month", "exp_year", "is_default", "created_at", "removed_at",
    ),
    "portal_sandbox_vault": ("iso_id", "merchant_id", "vault_id", "customer_id", "email", "name", "created_at"),
    "portal_sandbox_billing": (
        "iso_id", "merchant_id", "vault_id", "billing_id", "brand", "last4", "exp_month", "exp_year", "behaviour",
        "created_at", "updated_at",
    ),
    "portal_billing_subscription": (
        "id", "iso_id", "merchant_id", "customer_id", "price_id", "quantity", "status", "current_period_start",
        "current_period_end", "billing_anchor", "cancel_at_period_end", "canceled_at", "cancellation_reason",
        "cancellation_comment", "pause_reason", "paused_at", "resumes_at", "default_payment_method", "trial_end",
        "created_at", "updated_at",
    ),
    "portal_billing_invoice": (
        "id", "iso_id", "merchant_id", "customer_id", "subscription_id", "number", "status", "currency", "subtotal",
        "tax", "total", "amount_paid", "amount_due", "hosted", "issued_at", "due_at", "paid_at", "voided_at",
        "created_at", "updated_at",
    ),
    "portal_billing_invoice_line": (
        "id", "iso_id", "merchant_id", "invoice_id", "position", "description", "price_id", "quantity",
        "unit_amount", "amount", "period_start", "period_end", "proration",
    ),
    "portal_billing_payment_attempt": (
        "id", "iso_id", "merchant_id", "invoice_id", "attempt_number", "payment_method_id", "amount", "currency",
        "order_id", "outcome", "classification", "response_code", "response_text", "transaction_id",
        "attempted_at", "resolved_at",
    ),
    "portal_sandbox_transaction": (
        "id", "iso_id", "merchant_id", "order_id", "vault_id", "billing_id", "amount_minor", "currency", "outcome",
        "response_code", "response_text", "authorization_code", "created_at",
    ),
    "portal_session": (
        "id", "iso_id", "merchant_id", "customer_id", "created_at", "last_seen_at", "expires_at", "ended_at", "flow",
        "link_id", "locale", "return_url",
    ),
    "portal_audit_event": (
        "id", "iso_id", "merchant_id", "seq", "prev_hash", "hash", "type", "actor_type", "actor_id", "target_type",
        "target_id", "customer_id", "data", "before", "after", "ip", "user_agent", "request_id", "occurred_at",
    ),
}  # fmt: skip

PROBE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_probe (
    kind text PRIMARY KEY, merchant_slug text NOT NULL, host text NOT NULL, email text NOT NULL,
    customer_id text NOT NULL, invoices integer NOT NULL, merchants integer NOT NULL
)
"""


def merchant_slug(iso: int, n: int) -> str:
    """The slug of the ``n``-th merchant of the ``iso``-th ISO."""
    return f"{ISOS[iso].split('-')[0]}-m{n:03d}"


def probe_email(kind: str) -> str:
    """The email of a probe customer (``1``, ``12``, ``500``, ``switch``)."""
    return f"probe-{kind}@scale.example"


def tenant_file() -> str:
    """Both ISOs, their merchants with every plugin and the sandbox gateway, and the service customers."""
    parts: list[str] = []
    for iso, slug in enumerate(ISOS):
        parts.append(f'[[isos]]\nslug = "{slug}"\nname = "{slug.split("-")[0].title()} Payments"\n')
        for n in range(MERCHANTS_PER_ISO):
            merchant = merchant_slug(iso, n)
            parts.append(
                f'[[isos.merchants]]\nslug = "{merchant}"\nname = "{merchant.title()} Store"\n'
                'timezone = "America/New_York"\n[isos.merchants.gateway]\nkey = "sandbox"\n'
                + "".join(f"[isos.merchants.plugins.{plugin}]\n" for plugin in PLUGINS)
                + "".join(
                    f'[[isos.merchants.customers]]\nemail = "service{k}.{merchant}@scale.example"\nname = "Sam Lee"\n'
                    for k in range(SERVICE_CUSTOMERS)
                )
            )
    return "\n".join(parts)


def shares(customers: int, merchants: int) -> list[int]:
    """Customers per merchant, uneven (weights 1/sqrt(rank)), summing to ``customers``."""
    weights = [1 / (rank + 1) ** 0.5 for rank in range(merchants)]
    total = sum(weights)
    counts = [int(customers * w / total) for w in weights]
    for n in range(customers - sum(counts)):
        counts[n % merchants] += 1
    return counts


@dataclass
class Ids:
    """Ids in production's format (``portal.ids.new_id``): time of the thing, then seeded randomness."""

    rng: random.Random

    def __call__(self, prefix: str, at: datetime) -> str:
        """An id of ``prefix`` made at ``at``."""
        value = (int(at.timestamp() * 1000) << 80) | self.rng.getrandbits(80)
        return f"{prefix}_{''.join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])}"


@dataclass(frozen=True)
class MerchantInfo:
    """What generation needs of a merchant."""

    slug: str
    iso_id: str
    merchant_id: str
    prices: list[tuple[str, str, str, int]]
    """(price id, product name, interval, unit amount)."""


Event = tuple[datetime, str, str, str | None, str, Any, dict[str, Any] | None, dict[str, Any] | None]


@dataclass
class Chunk:
    """Rows of some customers of one merchant, by table, and their events (unchained)."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {t: [] for t in BULK_TABLES})
    events: list[Event] = field(default_factory=list)
    """(occurred_at, type, target type, target id, customer id, payload, before, after)."""
    invoices: list[list[Any]] = field(default_factory=list)
    """Invoice rows before numbering, with their events' payload builders."""


@dataclass
class Counter:
    """Per merchant: the next invoice number and the audit chain head."""

    number: int = 1001
    seq: int = 0
    head: str = GENESIS


@dataclass
class Customer:
    """One customer to generate."""

    email: str
    invoices: int
    shared: bool = False


def _invoice_count(rng: random.Random) -> int:
    """1 to 30 invoices, 5 on average."""
    return min(30, 1 + int(rng.expovariate(1 / 4.2)))


def _subscription_count(rng: random.Random) -> int:
    """0 to 3 subscriptions, 1.2 on average."""
    draw = rng.random()
    return 0 if draw < 0.10 else 1 if draw < 0.75 else 2 if draw < 0.95 else 3


def _amount(rng: random.Random) -> int:
    """An invoice amount in cents, $5 to $2,000, most under $200."""
    return int(round(500 * 400 ** (rng.random() ** 1.6), -1))


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _months(at: datetime, months: int) -> datetime:
    return at + timedelta(days=30.4375 * months)


class Generator:
    """Builds the rows and events of a merchant's customers, reproducibly from the seed."""

    def __init__(self, merchant: MerchantInfo, rng: random.Random, now: datetime) -> None:
        self.m = merchant
        self.rng = rng
        self.ids = Ids(rng)
        self.now = now

    def customer(self, chunk: Chunk, spec: Customer) -> str:
        """One customer with a card, subscriptions, invoices, payments and events; returns its id."""
        rng, m, ids, now = self.rng, self.m, self.ids, self.now
        since = now - HISTORY * rng.random() if spec.invoices <= 30 else now - HISTORY
        since = min(since, now - timedelta(days=2))
        cid = ids("cus", since)
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        chunk.rows["portal_customer"].append(
            (cid, m.iso_id, m.merchant_id, spec.email, spec.email.lower(), name, None, since, since, None)
        )
        created = CustomerPayload(id=cid, merchant=m.merchant_id, email=spec.email, name=name, external_ref=None)
        chunk.events.append((since, "customer.created", "customer", cid, cid, created, None, None))
        card_at = since + timedelta(minutes=rng.randint(1, 30))
        pm, vault = ids("pm", card_at), "sbx_" + ids("cv", card_at)
        brand, last4 = rng.choice(CARDS)
        exp_month, exp_year = rng.randint(1, 12), now.year + rng.randint(-1, 5)
        exp_year = max(exp_year, now.year) if rng.random() > 0.02 else now.year - 1
        chunk.rows["portal_payment_method"].append(
            (pm, m.iso_id, m.merchant_id, cid, "sandbox", vault, pm, brand, last4, exp_month, exp_year, True, card_at,
             None)
        )  # fmt: skip
        chunk.rows["portal_sandbox_vault"].append((m.iso_id, m.merchant_id, vault, cid, spec.email, name, card_at))
        chunk.rows["portal_sandbox_billing"].append(
            (m.iso_id, m.merchant_id, vault, pm, brand, last4, exp_month, exp_year, "approve", card_at, card_at)
        )
        chunk.events.append(
            (card_at, "payment_method.added", "payment_method", pm, cid,
             PaymentMethodPayload(id=pm, customer=cid, brand=brand, last4=last4, exp_month=exp_month,
                                  exp_year=exp_year, is_default=True, gateway="sandbox"), None, None)
        )  # fmt: skip
        made, events_before = 2, len(chunk.events)
        subs = [self.subscription(chunk, cid, since) for _ in range(_subscription_count(rng))]
        made += len(chunk.events) - events_before
        for at in sorted(since + (now - since) * rng.random() for _ in range(spec.invoices)):
            made += self.invoice(chunk, cid, pm, vault, at, rng.choice(subs) if subs and rng.random() < 0.6 else None)
        for _ in range(max(1, ACTIVITY_TARGET - made)):
            self.sign_in(chunk, cid, since + (now - since) * rng.random())
        return cid

    def sign_in(self, chunk: Chunk, cid: str, at: datetime) -> None:
        """A sign-in with a link at ``at``: its session (ended or expired by now) and its event."""
        rng, m = self.rng, self.m
        link = self.ids("lnk", at)
        seen = at + timedelta(minutes=rng.randint(1, 40))
        ended = seen if rng.random() < 0.3 else None
        chunk.rows["portal_session"].append(
            (f"{rng.getrandbits(256):064x}", m.iso_id, m.merchant_id, cid, at, seen, at + timedelta(hours=8), ended,
             None, link, None, None)
        )  # fmt: skip
        payload = SessionPayload(customer=cid, link=link, purpose="portal", flow=None)
        chunk.events.append((at, "portal_session.started", "customer", cid, cid, payload, None, None))

    def subscription(self, chunk: Chunk, cid: str, since: datetime) -> Subscription:
        """A subscription started after ``since``, in a status of a realistic mix."""
        rng, m, now = self.rng, self.m, self.now
        price, _, interval, _ = rng.choice(m.prices)
        started = since + (now - since) * rng.random() * 0.5
        step = 12 if interval == "year" else 1
        periods = 0
        while _months(started, step * (periods + 1)) <= now:
            periods += 1
        start = _months(started, step * periods)
        end = _months(started, step * (periods + 1))
        draw = rng.random()
        status = (
            "active" if draw < 0.82 else "trialing" if draw < 0.85 else "past_due" if draw < 0.89
            else "paused" if draw < 0.92 else "canceled"
        )  # fmt: skip
        sub = Subscription(
            id=self.ids("sub", started), merchant=m.merchant_id, customer=cid, price=price,
            quantity=1 if rng.random() < 0.9 else rng.randint(2, 5), status=status,  # type: ignore[arg-type]
            current_period_start=start, current_period_end=end, billing_anchor=started,
            cancel_at_period_end=status == "active" and rng.random() < 0.05,
            canceled_at=start if status == "canceled" else None,
            cancellation_reason="too_expensive" if status == "canceled" else None, cancellation_comment=None,
            pause_reason="travelling" if status == "paused" else None, paused_at=start if status == "paused" else None,
            resumes_at=end if status == "paused" else None, default_payment_method=None,
            trial_end=end if status == "trialing" else None, created_at=started,
        )  # fmt: skip
        chunk.rows["portal_billing_subscription"].append(
            (sub.id, m.iso_id, m.merchant_id, cid, price, sub.quantity, status, start, end, started,
             sub.cancel_at_period_end, sub.canceled_at, sub.cancellation_reason, None, sub.pause_reason,
             sub.paused_at, sub.resumes_at, None, sub.trial_end, started, start)
        )  # fmt: skip
        created = msgspec.structs.replace(
            sub, status="trialing" if status == "trialing" else "active", current_period_start=started,
            current_period_end=_months(started, step), canceled_at=None, cancellation_reason=None, pause_reason=None,
            paused_at=None, resumes_at=None, cancel_at_period_end=False,
        )  # fmt: skip
        chunk.events.append(
            (started, "subscription.created", "subscription", sub.id, cid,
             SubscriptionEvent(subscription=created, previous_status=None), None, None)
        )  # fmt: skip
        if status in ("paused", "canceled"):
            kind = "subscription.paused" if status == "paused" else "subscription.canceled"
            changed = SubscriptionEvent(subscription=sub, previous_status="active")
            chunk.events.append(
                (start, kind, "subscription", sub.id, cid, changed, {"status": "active"}, {"status": status})
            )
        return sub

    def invoice(self, chunk: Chunk, cid: str, pm: str, vault: str, at: datetime, sub: Subscription | None) -> int:
        """An invoice issued at ``at`` (numbered later, in issue order), its line and payment; its events' count."""
        rng, m, now, ids = self.rng, self.m, self.now, self.ids
        if sub is not None:
            price = next(p for p in m.prices if p[0] == sub.price)
            unit, description, price_id = price[3], f"{price[1]} (quantity {sub.quantity})", price[0]
            quantity = sub.quantity
            period = (at, _months(at, 12 if price[2] == "year" else 1))
        else:
            unit, description, price_id, quantity, period = _amount(rng), rng.choice(ONE_OFF), None, 1, (None, None)
        total = unit * quantity
        age = now - at
        draw = rng.random()
        if age < timedelta(days=30):
            status = "open" if draw < 0.35 else "paid"
        else:
            status = "paid" if draw < 0.86 else "open" if draw < 0.93 else "void" if draw < 0.97 else "uncollectible"
        due = at if sub is not None else at + timedelta(days=30)
        inv_id, line_id = ids("inv", at), ids("il", at)
        paid_at = at + timedelta(minutes=rng.randint(1, 60 * 24 * 10)) if status == "paid" else None
        if paid_at is not None and paid_at > now:
            paid_at = now - timedelta(minutes=1)
        voided_at = at + timedelta(days=rng.randint(1, 20)) if status == "void" else None
        chunk.rows["portal_billing_invoice_line"].append(
            (line_id, m.iso_id, m.merchant_id, inv_id, 0, description, price_id, quantity, unit, total, period[0],
             period[1], False)
        )  # fmt: skip
        line = InvoiceLine(
            id=line_id, description=description, quantity=quantity, unit_amount=unit, amount=total,
            period_start=period[0], period_end=period[1], proration=False,
        )  # fmt: skip
        attempt: PaymentAttempt | None = None
        if status == "paid" or (status == "open" and due < now):
            attempt_at = paid_at or due + timedelta(hours=1)
            approved = status == "paid"
            txn = "sbx_" + ids("txn", attempt_at)
            code, text = (100, "SUCCESS") if approved else (202, "Insufficient funds")
            attempt = PaymentAttempt(
                id=ids("pay", attempt_at), invoice=inv_id, payment_method=pm, amount=total, currency="USD",
                order_id=f"{inv_id}-1", outcome="approved" if approved else "declined",
                classification="approved" if approved else "retryable", response_code=code, response_text=text,
                transaction_id=txn, attempted_at=attempt_at,
            )  # fmt: skip
            chunk.rows["portal_billing_payment_attempt"].append(
                (attempt.id, m.iso_id, m.merchant_id, inv_id, 1, pm, total, "USD", attempt.order_id, attempt.outcome,
                 attempt.classification, code, text, txn, attempt_at, attempt_at)
            )  # fmt: skip
            chunk.rows["portal_sandbox_transaction"].append(
                (txn, m.iso_id, m.merchant_id, attempt.order_id, vault, pm, total, "USD", attempt.outcome, code, text,
                 f"{rng.randrange(1_000_000):06d}" if approved else None, attempt_at)
            )  # fmt: skip
        key = (inv_id, m.iso_id, m.merchant_id, cid, sub.id if sub else None)
        chunk.invoices.append([key, status, total, at, due, paid_at, voided_at, line, attempt])
        return 2 + (2 if attempt is not None else 0) + (1 if status in ("void", "uncollectible") else 0)

    def number_invoices(self, chunk: Chunk, counter: Counter) -> None:
        """Number the chunk's invoices in issue order, write their rows and their events."""
        chunk.invoices.sort(key=lambda item: item[3])
        for key, status, total, at, due, paid_at, voided_at, line, attempt in chunk.invoices:
            inv_id, iso_id, merchant_id, cid, sub_id = key
            number = f"INV-{counter.number}"
            counter.number += 1
            paid = total if status == "paid" else 0
            chunk.rows["portal_billing_invoice"].append(
                (inv_id, iso_id, merchant_id, cid, sub_id, number, status, "USD", total, 0, total, paid,
                 total - paid if status == "open" else 0 if status != "uncollectible" else total, sub_id is None,
                 at, due, paid_at, voided_at, at, paid_at or voided_at or at)
            )  # fmt: skip
            draft = Invoice(
                id=inv_id, merchant=merchant_id, customer=cid, number=None, status="draft", currency="USD",
                lines=[line], subtotal=total, tax=0, total=total, amount_paid=0, amount_due=total, issued_at=None,
                due_at=due, paid_at=None, subscription=sub_id, hosted=sub_id is None, created_at=at,
            )  # fmt: skip
            issued = msgspec.structs.replace(draft, number=number, status="open", issued_at=at)
            target = ("invoice", inv_id)
            chunk.events.append((at, "invoice.created", *target, cid, InvoiceEvent(invoice=draft), None, None))
            chunk.events.append((at, "invoice.finalized", *target, cid, InvoiceEvent(invoice=issued), None, None))
            if attempt is not None:
                event = PaymentEvent(attempt=attempt, invoice=inv_id, customer=cid, subscription=sub_id)
                kind = "payment.succeeded" if attempt.outcome == "approved" else "payment.failed"
                chunk.events.append((attempt.attempted_at, kind, *target, cid, event, None, None))
                if status == "paid":
                    done = msgspec.structs.replace(issued, status="paid", amount_paid=total, amount_due=0,
                                                   paid_at=paid_at)  # fmt: skip
                    chunk.events.append((attempt.attempted_at, "invoice.paid", *target, cid, InvoiceEvent(invoice=done),
                                         None, None))  # fmt: skip
                else:
                    failed = InvoicePaymentFailed(invoice=issued, attempt=attempt, classification="retryable")
                    chunk.events.append(
                        (attempt.attempted_at, "invoice.payment_failed", *target, cid, failed, None, None)
                    )
            if status in ("void", "uncollectible"):
                kind = "invoice.voided" if status == "void" else "invoice.marked_uncollectible"
                ended = msgspec.structs.replace(issued, status=status, amount_due=0 if status == "void" else total)
                chunk.events.append((voided_at or at, kind, *target, cid, InvoiceEvent(invoice=ended), None, None))
        chunk.invoices.clear()

    def chain(self, chunk: Chunk, counter: Counter) -> None:
        """The chunk's events as audit rows, in time order, continuing the merchant's chain."""
        m, ids = self.m, self.ids
        chunk.events.sort(key=lambda event: event[0])
        rows = chunk.rows["portal_audit_event"]
        for at, kind, target_type, target_id, cid, payload, before, after in chunk.events:
            counter.seq += 1
            record = {
                "id": ids("evt", at), "iso_id": m.iso_id, "merchant_id": m.merchant_id, "seq": counter.seq,
                "type": kind, "actor_type": "system", "actor_id": None, "target_type": target_type,
                "target_id": target_id, "customer_id": cid, "data": msgspec.to_builtins(payload), "before": before,
                "after": after, "ip": None, "user_agent": None, "request_id": None, "occurred_at": at,
            }  # fmt: skip
            digest = chain_hash(counter.head, record)
            rows.append(
                (record["id"], m.iso_id, m.merchant_id, counter.seq, counter.head, digest, kind, "system", None,
                 target_type, target_id, cid, _json(record["data"]), None if before is None else _json(before),
                 None if after is None else _json(after),
                 None, None, None, at)
            )  # fmt: skip
            counter.head = digest
        chunk.events.clear()


FIRST = ("Jane", "Omar", "Lena", "Ravi", "Mia", "Chen", "Ana", "Tom", "Aisha", "Luca", "Yuki", "Sam", "Nora", "Ivan")
LAST = ("Cooper", "Haddad", "Novak", "Iyer", "Okafor", "Li", "Silva", "Berg", "Khan", "Rossi", "Sato", "Reyes")
ONE_OFF = ("Catering order", "Office supplies", "Consulting hours", "Event tickets", "Repair service", "Gift cards")


def customers_of(merchant: int, iso_first: int, count: int, rng: random.Random) -> Iterator[Customer]:
    """The customers of the ``merchant``-th merchant overall (``iso_first``: index of its ISO's first merchant)."""
    group = (merchant - iso_first) // SWITCH_MERCHANTS
    if merchant == 0:
        for n in PROBE_INVOICES:
            yield Customer(probe_email(str(n)), n)
    if merchant - iso_first < SWITCH_MERCHANTS and iso_first == 0:
        yield Customer(probe_email("switch"), 6, shared=True)
    for j in range(count - (len(PROBE_INVOICES) if merchant == 0 else 0)):
        if j % 33 == 7:  # one email at up to five merchants of the ISO
            email = f"shared{j // 33}.g{iso_first}-{group}@scale.example"
        else:
            email = f"c{j}.m{merchant}@scale.example"
        yield Customer(email, _invoice_count(rng))


# --- loading --------------------------------------------------------------------------------------


class Progress:
    """Periodic lines: customers done, rows written, rows per second."""

    def __init__(self, customers: int) -> None:
        self.customers = customers
        self.started = time.monotonic()
        self.done = 0
        self.rows = 0
        self.last = 0.0

    def add(self, customers: int, rows: int) -> None:
        """Count a copied chunk; print a line at most every 5 seconds."""
        self.done += customers
        self.rows += rows
        now = time.monotonic()
        if now - self.last >= 5 or self.done >= self.customers:
            self.last = now
            elapsed = now - self.started
            share = self.done / self.customers
            eta = elapsed / share - elapsed if share else 0
            bar = "#" * int(share * 30)
            say(
                f"[{bar:<30}] {self.done:>9,}/{self.customers:,} customers  {self.rows:>12,} rows  "
                f"{self.rows / elapsed:>9,.0f} rows/s  {elapsed:>6.0f} s, about {eta:.0f} s left"
            )


async def copy_chunk(connection: asyncpg.Connection, chunk: Chunk) -> int:
    """COPY the chunk's rows, table by table; the number of rows."""
    written = 0
    for table in BULK_TABLES:
        rows = chunk.rows[table]
        if rows:
            await connection.copy_records_to_table(table, records=rows, columns=list(COLUMNS[table]))
            written += len(rows)
            rows.clear()
    return written


async def drop_secondary_indexes(connection: asyncpg.Connection) -> list[tuple[str, str]]:
    """Drop the bulk tables' indexes that back no constraint; their (name, definition) to make them again."""
    rows = await connection.fetch(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
         WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
         ORDER BY i.indexname
        """,
        list(BULK_TABLES),
    )
    for row in rows:
        await connection.execute(f'DROP INDEX "{row["indexname"]}"')
    return [(row["indexname"], row["indexdef"]) for row in rows]


async def restore_indexes(connection: asyncpg.Connection, indexes: list[tuple[str, str]]) -> None:
    """Make the dropped indexes again and check every one is back."""
    await connection.execute("SET maintenance_work_mem = '512MB'")
    for name, definition in indexes:
        started = time.monotonic()
        await connection.execute(definition)
        say(f"  index {name} made again in {time.monotonic() - started:.1f} s")
    back = await connection.fetchval(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname = ANY($1::text[])",
        [name for name, _ in indexes],
    )
    assert back == len(indexes), f"{back} of {len(indexes)} indexes restored"


async def merchant_infos(platform: Platform) -> list[tuple[MerchantInfo, Tenant]]:
    """Every merchant, in order, with its prices, made with the catalog (production code)."""
    found: list[tuple[MerchantInfo, Tenant]] = []
    for iso in range(len(ISOS)):
        for n in range(MERCHANTS_PER_ISO):
            slug = merchant_slug(iso, n)
            tenant = await platform.tenants.resolve(host_of(slug))
            assert tenant is not None, slug
            prices: list[tuple[str, str, str, int]] = []
            async with tenant_transaction(tenant.merchant.iso_id):
                for name, interval, amount in PRODUCTS:
                    product = await catalog.create_product(tenant, name=name, actor=SYSTEM)
                    price = await catalog.create_price(
                        tenant, product_id=product.id, currency="USD", unit_amount=amount,
                        interval=interval, actor=SYSTEM,  # type: ignore[arg-type]
                    )  # fmt: skip
                    prices.append((price.id, name, interval, amount))
            found.append((MerchantInfo(slug, tenant.merchant.iso_id, tenant.merchant.id, prices), tenant))
    return found


async def bulk(owner_dsn: str, merchants: list[MerchantInfo], total: int, seed: int, now: datetime) -> dict[str, str]:
    """The bulk history of every merchant; the probes' customer ids by kind."""
    counts = shares(total, len(merchants))
    connection = await asyncpg.connect(owner_dsn)
    probes: dict[str, str] = {}
    try:
        await connection.execute("SET session_replication_role = replica")
        heads = {  # the chains' heads so far (the catalog's events), read while the chain index is there
            row["merchant_id"]: row
            for row in await connection.fetch(
                "SELECT DISTINCT ON (merchant_id) merchant_id, seq, hash FROM portal_audit_event "
                "ORDER BY merchant_id, seq DESC"
            )
        }
        indexes = await drop_secondary_indexes(connection)
        say(f"dropped {len(indexes)} secondary indexes of the bulk tables for the load")
        progress = Progress(total)
        for index, merchant in enumerate(merchants):
            rng = random.Random(f"{seed}:{index}")  # noqa: S311 - reproducible data, not secrets
            generator = Generator(merchant, rng, now)
            head = heads.get(merchant.merchant_id)
            counter = Counter(seq=head["seq"], head=head["hash"]) if head else Counter()
            chunk, in_chunk = Chunk(), 0
            iso_first = 0 if index < MERCHANTS_PER_ISO else MERCHANTS_PER_ISO
            for spec in customers_of(index, iso_first, counts[index], rng):
                cid = generator.customer(chunk, spec)
                if spec.email.startswith("probe-"):
                    probes.setdefault(spec.email.split("@")[0].removeprefix("probe-"), cid)
                in_chunk += 1
                if in_chunk == CHUNK:
                    progress.add(in_chunk, await flush(connection, generator, chunk, counter))
                    chunk, in_chunk = Chunk(), 0
            if in_chunk:
                progress.add(in_chunk, await flush(connection, generator, chunk, counter))
            await connection.execute(
                "INSERT INTO portal_billing_invoice_counter (merchant_id, series, iso_id, next_number) "
                "VALUES ($1, 'invoice', $2, $3) ON CONFLICT (merchant_id, series) DO UPDATE SET next_number = $3",
                merchant.merchant_id, merchant.iso_id, counter.number,
            )  # fmt: skip
        started = time.monotonic()
        await restore_indexes(connection, indexes)
        say(f"restored {len(indexes)} indexes in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        await connection.execute("ANALYZE")  # the services below plan their queries on fresh statistics
        say(f"ANALYZE in {time.monotonic() - started:.0f} s")
    finally:
        await connection.close()
    return probes


async def flush(connection: asyncpg.Connection, generator: Generator, chunk: Chunk, counter: Counter) -> int:
    """Number, chain and copy a chunk."""
    generator.number_invoices(chunk, counter)
    generator.chain(chunk, counter)
    return await copy_chunk(connection, chunk)


async def through_services(platform: Platform, tenants: list[Tenant], now: datetime) -> int:
    """The service customers of each merchant: card, subscription (its invoice paid), one-off invoice."""
    made = 0
    for tenant in tenants:
        merchant = tenant.merchant
        async with tenant_transaction(merchant.iso_id):
            rows = await fetch(
                "SELECT id, merchant_id, email, name FROM portal_customer WHERE merchant_id = $1 "
                "AND email_normalized LIKE 'service%' ORDER BY email_normalized",
                merchant.id,
            )
            prices = await fetch("SELECT id FROM portal_billing_price WHERE merchant_id = $1 ORDER BY id", merchant.id)
        for row in rows:
            customer = CustomerView(id=row["id"], merchant_id=row["merchant_id"], email=row["email"], name=row["name"])
            details = check_card("4111111111111111", f"12/{(now.year + 3) % 100:02d}", "123", today=now.date(),
                                 cvv_required=False)  # fmt: skip
            async with tenant_transaction(merchant.iso_id):
                token = await store.insert_token(
                    merchant.iso_id, merchant.id, details, now=now, expires_at=now + timedelta(hours=1)
                )
            await methods.attach(platform.gateways, tenant, customer, token, make_default=True)
            async with tenant_transaction(merchant.iso_id):
                sub = await subscriptions.create(
                    tenant, customer_id=customer.id, price_id=prices[0]["id"], now=now, actor=SYSTEM
                )
                opened = await fetch(
                    "SELECT id FROM portal_billing_invoice WHERE merchant_id = $1 AND subscription_id = $2 "
                    "AND status = 'open'",
                    merchant.id,
                    sub.id,
                )
                line = LineInput(description="Catering order", unit_amount=4200)
                draft = await invoices.create(
                    tenant, customer_id=customer.id, currency="USD", lines=[line], due_at=now + timedelta(days=30),
                    now=now, actor=SYSTEM,
                )  # fmt: skip
                await invoices.finalize(tenant, draft.id, now=now, actor=SYSTEM)
            for invoice in opened:
                await charges.pay_invoice(platform, tenant, invoice["id"], now=now, actor=SYSTEM)
            made += 1
    return made


async def record_probes(owner_dsn: str, probes: dict[str, str], first_slug: str) -> None:
    """The probes in ``bench_probe``, for the page benchmarks, and printed."""
    connection = await asyncpg.connect(owner_dsn)
    try:
        await connection.execute(PROBE_TABLE)
        say("probe customers:")
        for kind, cid in sorted(probes.items()):
            invoices_count = 6 if kind == "switch" else int(kind)
            merchants = SWITCH_MERCHANTS if kind == "switch" else 1
            email = probe_email(kind)
            await connection.execute(
                "INSERT INTO bench_probe VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kind) DO UPDATE SET "
                "merchant_slug = $2, host = $3, email = $4, customer_id = $5, invoices = $6, merchants = $7",
                kind, first_slug, host_of(first_slug), email, cid, invoices_count, merchants,
            )  # fmt: skip
            say(f"  {kind:<7} {email:<28} {cid}  at {host_of(first_slug)} ({invoices_count} invoices)")
    finally:
        await connection.close()


async def report_sizes(owner_dsn: str) -> None:
    """Rows and sizes of every table of the installation, largest first."""
    connection = await asyncpg.connect(owner_dsn)
    try:
        rows = await connection.fetch(
            """
            SELECT c.relname AS name, c.reltuples::bigint AS rows, pg_total_relation_size(c.oid) AS total,
                   pg_relation_size(c.oid) AS heap, pg_indexes_size(c.oid) AS indexes
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r'
             ORDER BY pg_total_relation_size(c.oid) DESC
            """
        )
        database = await connection.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await connection.close()
    say(f"{'table':<32} {'rows':>12} {'total':>10} {'table':>10} {'indexes':>10}")
    for row in rows:
        if row["total"] > 64 * 1024:
            say(
                f"{row['name']:<32} {max(row['rows'], 0):>12,} {mb(row['total']):>10} {mb(row['heap']):>10} "
                f"{mb(row['indexes']):>10}"
            )
    say(f"database: {mb(database)}")


def mb(size: int) -> str:
    """A size in MB."""
    return f"{size / 1024 / 1024:,.0f} MB" if size >= 10 * 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


async def _no_kick() -> None:
    return None


async def run(server_dsn: str, name: str, customers: int, seed: int, replace: bool) -> None:
    """Create the database, migrate it, apply the tenants, load the history, report."""
    admin = await asyncpg.connect(server_dsn)
    try:
        if replace:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = with_database(server_dsn, name)
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.monotonic()
    platform = Platform(Settings(database_url=dsn, base_domain=BASE_DOMAIN))
    bus.kick_worker = _no_kick  # type: ignore[assignment]  # no worker runs here; its polling would deliver
    await platform.migrate()
    await platform.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "scale.toml"
            path.write_text(tenant_file(), encoding="utf-8")
            spec = load_tenant_file(path, platform.registry, BASE_DOMAIN)
            changes = await apply_tenant_file(spec, platform.registry, source=path.name)
        platform.tenants.invalidate()
        say(f"tenant file applied: {len(changes)} changes ({time.monotonic() - started:.0f} s)")
        found = await merchant_infos(platform)
        say(f"catalog: {len(PRODUCTS)} products and prices per merchant ({time.monotonic() - started:.0f} s)")
        loading = time.monotonic()
        probes = await bulk(dsn, [info for info, _ in found], customers, seed, now)
        say(f"bulk history loaded in {time.monotonic() - loading:.0f} s")
        serviced = time.monotonic()
        made = await through_services(platform, [tenant for _, tenant in found], now)
        say(f"{made} customers through the services in {time.monotonic() - serviced:.0f} s")
        for info, _ in (found[MERCHANTS_PER_ISO // 2], found[MERCHANTS_PER_ISO + MERCHANTS_PER_ISO // 2]):
            checked = time.monotonic()
            async with tenant_transaction(info.iso_id):
                result = await verify_chain(info.merchant_id)
            verdict = "intact" if result.ok else f"BROKEN at {result.broken}"
            say(f"audit chain of {info.slug}: {result.records:,} records, {verdict} "
                f"(verify_chain, {time.monotonic() - checked:.0f} s)")  # fmt: skip
    finally:
        await platform.stop()
    await record_probes(dsn, probes, found[0][0].slug)
    connection = await asyncpg.connect(dsn)
    try:
        analysed = time.monotonic()
        await connection.execute("ANALYZE")
        say(f"ANALYZE in {time.monotonic() - analysed:.0f} s")
    finally:
        await connection.close()
    say(f"seeded {name} with {customers:,} customers in {time.monotonic() - started:.0f} s")
    await report_sizes(dsn)


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--name", required=True, help="the database to create")
    parser.add_argument("--customers", type=int, choices=(10_000, 100_000, 1_000_000), required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--replace", action="store_true", help="drop the database first if it exists")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args.database_url, args.name, args.customers, args.seed, args.replace))


if __name__ == "__main__":
    main()
