"""The NMI gateway: customer vault, card-on-file sales and Collect.js hosted fields.

Changes go to NMI's Payment API (form posts to ``/api/transact.php``); stored card details and
order lookups come from its Query API (``/api/query.php``, XML). The portal sends NMI only
Collect.js payment tokens and vault references, never card numbers, and the security key
travels in POST bodies only (never in a URL, a log line or an exception message).

A request that gets no answer is not sent again blindly: the adapter first asks the Query API
whether it arrived (the order id for a sale, the vault record for vault changes) and resends
only when it did not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, TypeVar
from urllib.parse import parse_qsl, urlsplit

import defusedxml.ElementTree as SafeXml
import httpx
import msgspec
from babel.numbers import get_currency_precision, is_currency
from defusedxml import DefusedXmlException

from portal.payments.gateway import (
    Card,
    GatewayDeclinedError,
    GatewayResponse,
    GatewayUnavailableError,
    HostedFields,
    Money,
    Outcome,
    VaultCustomer,
    VaultEntry,
)
from portal.plugin import PaymentGateway
from portal.tenancy.models import MerchantView

log = logging.getLogger(__name__)

R = TypeVar("R")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
"""Hosts that may be reached over plain http (local test servers only)."""

LOOKUP_MARGIN = timedelta(seconds=60)
"""How much older than the sale call a declined attempt found by order id may be (clock skew)."""

MAX_ORDER_ID = 200
"""The longest order id a sale takes (as the sandbox)."""

_OUTCOMES: dict[str, Outcome] = {"1": "approved", "2": "declined", "3": "error"}
_CODE = re.compile(r"[0-9]{1,4}")
_EXPIRY = re.compile(r"(0[1-9]|1[0-2])([0-9]{2})")
_LAST4 = re.compile(r"([0-9]{4})$")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_PATH = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*")
_BRANDS = {
    "visa": "visa",
    "mastercard": "mastercard",
    "master": "mastercard",
    "mc": "mastercard",
    "amex": "amex",
    "americanexpress": "amex",
    "discover": "discover",
    "diners": "diners",
    "dinersclub": "diners",
    "jcb": "jcb",
    "maestro": "maestro",
    "unionpay": "unionpay",
    "cup": "unionpay",
}

Key = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^\S+$")]


def _url_origin(name: str, value: str) -> str:
    """The origin of a settings URL, ``scheme://host[:port]``, built from its checked, lower-cased parts.

    The host must be a DNS name or an IP literal, so nothing else (a ``;``, a ``,``, a ``*``) can
    reach the Content-Security-Policy the origin goes into.

    Raises:
        ValueError: the URL is not an https URL of a valid host (plain http only for loopback),
            or it has credentials, a query, a fragment, a bad port or a bad path.
    """
    if not value.isascii() or any(char <= " " or char in "\x7f\\" for char in value):
        raise ValueError(f"{name} must be a plain ASCII URL without spaces, control characters or backslashes")
    parts = urlsplit(value)
    netloc = parts.netloc.lower()
    if "@" in netloc or "?" in value or "#" in value:
        raise ValueError(f"{name} must name a host, without credentials, query or fragment")
    colon = netloc.find(":", netloc.find("]") + 1 if netloc.startswith("[") else 0)
    host, port_text = (netloc[:colon], netloc[colon + 1 :]) if colon >= 0 else (netloc, None)
    port = None
    if port_text is not None:
        if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"{name} has an invalid port")
        port = int(port_text)
    host = _checked_host(name, host)
    if not (parts.scheme == "https" or (parts.scheme == "http" and host.strip("[]") in LOOPBACK_HOSTS)):
        raise ValueError(f"{name} must be an https URL (plain http only for 127.0.0.1, ::1 or localhost)")
    if not _PATH.fullmatch(parts.path):
        raise ValueError(f"{name} has an invalid path")
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default_port else "")


def _checked_host(name: str, host: str) -> str:
    """``host`` (lower case) as a DNS name, an IPv4 address or a bracketed IPv6 address."""
    problem = ValueError(f"{name} must name a valid host: a DNS name or an IP address")
    try:
        if host.startswith("["):
            if not re.fullmatch(r"\[[0-9a-f:.]+\]", host):
                raise problem
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        labels = host.split(".")
        if _NUMERIC_LABEL.fullmatch(labels[-1]):  # a browser would read it as an IPv4 address
            return str(ipaddress.IPv4Address(host))
    except ipaddress.AddressValueError:
        raise problem from None
    if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise problem
    return host


def _origin(url: str) -> str:
    return _url_origin("url", url)


class NmiSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A merchant's NMI credentials and connection options (``[isos.merchants.gateway]``)."""

    security_key: Key
    """Private API key (Merchant Portal, Settings > Security Keys): server side only."""
    tokenization_key: Key
    """Public Collect.js tokenization key: it can only create payment tokens."""
    base_url: str = "https://secure.nmi.com"
    """Where the Payment and Query APIs live (``/api/transact.php``, ``/api/query.php``)."""
    collect_js_url: str = "https://secure.nmi.com/token/Collect.js"
    timeout: Annotated[float, msgspec.Meta(gt=0, le=120)] = 20.0
    """Seconds to wait at each step of one request (connect, send, read)."""
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=5)] = 3
    """Sends (and lookups) of one request when NMI does not answer."""
    retry_delay: Annotated[float, msgspec.Meta(ge=0, le=30)] = 1.0
    """Seconds to wait before looking a request up after it got no answer."""

    def __post_init__(self) -> None:
        _url_origin("base_url", self.base_url)
        _url_origin("collect_js_url", self.collect_js_url)

    def __repr__(self) -> str:
        return (
            f"NmiSettings(security_key='***', tokenization_key={self.tokenization_key!r}, "
            f"base_url={self.base_url!r}, collect_js_url={self.collect_js_url!r}, timeout={self.timeout!r}, "
            f"max_attempts={self.max_attempts!r}, retry_delay={self.retry_delay!r})"
        )


def nmi_amount(amount: Money) -> str:
    """``amount`` as NMI's ``amount`` field: major units with the currency's decimals (JPY: none).

    Raises:
        ValueError: the currency is not an ISO 4217 code or the amount is not positive.
    """
    if not re.fullmatch(r"[A-Z]{3}", amount.currency) or not is_currency(amount.currency):
        raise ValueError(f"unknown currency {amount.currency!r}")
    if amount.minor_units <= 0:
        raise ValueError("a sale amount must be positive")
    digits = get_currency_precision(amount.currency)
    return f"{Decimal(amount.minor_units).scaleb(-digits):.{digits}f}"


def vault_reference(value: str) -> str:
    """A portal id as an NMI vault or billing id: its letters and digits (``cus_01jd`` -> ``cus01jd``)."""
    reference = re.sub(r"[^A-Za-z0-9]", "", value)
    if not reference:
        raise ValueError("a vault reference needs letters or digits")
    return reference


def parse_answer(body: str) -> tuple[GatewayResponse, str | None]:
    """A Payment API answer (``response=1&responsetext=...``) and the customer vault id it names.

    Raises:
        GatewayUnavailableError: the answer is not a readable Payment API response.
    """
    try:
        pairs = parse_qsl(body.strip(), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise GatewayUnavailableError("NMI answered something unreadable") from None
    fields = dict(pairs)
    outcome = _OUTCOMES.get(fields.get("response", ""))
    code = fields.get("response_code", "")
    if len(fields) != len(pairs) or outcome is None or not _CODE.fullmatch(code) or "responsetext" not in fields:
        raise GatewayUnavailableError("NMI answered something unreadable")
    response = GatewayResponse(
        outcome=outcome,
        response_code=int(code),
        response_text=fields["responsetext"],
        transaction_id=fields.get("transactionid") or None,
        authorization_code=fields.get("authcode") or None,
        order_id=fields.get("orderid") or None,
    )
    return response, fields.get("customer_vault_id") or None


def card_of(billing: ET.Element) -> Card:
    """The card of a Query API billing record (``cc_number`` masked, ``cc_exp`` MMYY, ``cc_type``).

    Raises:
        GatewayUnavailableError: the record does not describe a card.
    """
    number = (billing.findtext("cc_number") or "").strip()
    expiry = _EXPIRY.fullmatch((billing.findtext("cc_exp") or "").strip())
    last4 = _LAST4.search(number)
    if expiry is None or last4 is None:
        raise GatewayUnavailableError("NMI's vault record holds no readable card")
    return Card(
        brand=_brand(billing.findtext("cc_type"), billing.findtext("cc_bin") or number),
        last4=last4.group(1),
        exp_month=int(expiry.group(1)),
        exp_year=2000 + int(expiry.group(2)),
    )


def _brand(card_type: str | None, leading: str) -> str:
    named = _BRANDS.get(re.sub(r"[^a-z]", "", (card_type or "").lower()))
    if named:
        return named
    digits = re.match(r"[0-9]*", leading.strip())
    prefix = digits.group(0) if digits else ""

    def starts(low: int, high: int, width: int) -> bool:
        return len(prefix) >= width and low <= int(prefix[:width]) <= high

    if prefix.startswith("4"):
        return "visa"
    if starts(51, 55, 2) or starts(2221, 2720, 4):
        return "mastercard"
    if starts(34, 34, 2) or starts(37, 37, 2):
        return "amex"
    if prefix.startswith("6011") or starts(65, 65, 2) or starts(644, 649, 3):
        return "discover"
    if starts(3528, 3589, 4):
        return "jcb"
    if starts(300, 305, 3) or starts(36, 36, 2) or starts(38, 39, 2):
        return "diners"
    return "card"


def _sale_of(transaction: ET.Element, action: ET.Element) -> GatewayResponse:
    success = (action.findtext("success") or "").strip()
    code_text = (action.findtext("response_code") or "").strip()
    if success not in {"0", "1"} or (code_text and not _CODE.fullmatch(code_text)):
        raise GatewayUnavailableError("NMI's transaction record is unreadable")
    code = int(code_text) if code_text else (100 if success == "1" else 200)
    outcome: Outcome = "approved" if success == "1" else ("declined" if 200 <= code < 300 else "error")
    return GatewayResponse(
        outcome=outcome,
        response_code=code,
        response_text=action.findtext("response_text") or "",
        transaction_id=transaction.findtext("transaction_id") or None,
        authorization_code=transaction.findtext("authorization_code") or None,
        order_id=transaction.findtext("order_id") or None,
    )


def _action_date(action: ET.Element) -> datetime | None:
    try:
        return datetime.strptime((action.findtext("date") or "").strip(), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _gateway_error(text: str, order_id: str | None = None) -> GatewayResponse:
    """A request refused before sending, answered as NMI's gateway would (response 3, code 300)."""
    return GatewayResponse(outcome="error", response_code=300, response_text=text, order_id=order_id)


def _split_name(name: str) -> tuple[str, str]:
    parts = name.split(None, 1)
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "")


class _NoAnswerError(Exception):
    """No (readable) answer; ``delivered`` when the request may have reached NMI."""

    def __init__(self, reason: str, *, delivered: bool) -> None:
        super().__init__(reason)
        self.delivered = delivered


class _QueryRefusedError(Exception):
    """The Query API answered with an ``error_response`` (credentials, permissions, limits)."""


Billings = dict[str, ET.Element]


class NmiGateway:
    """One merchant's NMI connection: implements :class:`~portal.payments.gateway.PaymentGatewayAdapter`."""

    def __init__(self, settings: NmiSettings, merchant: MerchantView | None = None) -> None:
        self.key: str = "nmi"
        self.settings = settings
        self._label = merchant.slug if merchant is not None else "-"
        base = settings.base_url.rstrip("/")
        self._transact_url = f"{base}/api/transact.php"
        self._query_url = f"{base}/api/query.php"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,
            headers={"User-Agent": "portal-nmi"},
        )

    def hosted_fields(self, brand_color: str) -> HostedFields:
        """Collect.js inline fields; the page styles them (``brand_color`` is not sent to NMI)."""
        origins = [_origin(self.settings.collect_js_url)]
        api_origin = _origin(self.settings.base_url)
        if api_origin not in origins:
            origins.append(api_origin)
        return HostedFields(
            script_url=self.settings.collect_js_url,
            origins=tuple(origins),
            script_attributes={"data-tokenization-key": self.settings.tokenization_key, "data-variant": "inline"},
        )

    async def vault_add(
        self, *, payment_token: str, vault_id: str | None, billing_id: str, customer: VaultCustomer
    ) -> VaultEntry:
        """Store a tokenized card: ``add_customer`` when ``vault_id`` is None, else ``add_billing``.

        A new customer vault record is named after the portal customer (:func:`vault_reference`),
        so an answer lost on the way can be looked up. The record is read first: one that exists
        already gets the card with ``add_billing``. ``new_vault`` is True only when this call's
        ``add_customer`` created the record; when that cannot be known (the first read got no
        answer), it is False. The billing id is ``vault_reference(billing_id)``; the returned
        entry carries both ids as NMI holds them.
        """
        billing = vault_reference(billing_id)
        first_name, last_name = _split_name(customer.name)
        target = vault_id if vault_id is not None else vault_reference(customer.customer_id)
        fields = {
            "customer_vault": "add_billing",
            "customer_vault_id": target,
            "billing_id": billing,
            "payment_token": payment_token,
        }
        details = {"email": customer.email, "first_name": first_name, "last_name": last_name}
        fields.update({name: value for name, value in details.items() if value})
        if vault_id is not None:
            return await self._add(fields, target, billing, new_vault=False)
        try:
            before = await self._billings(target)
        except (_NoAnswerError, _QueryRefusedError, GatewayUnavailableError) as exc:
            log.warning("NMI vault record of %s unknown before add_customer (%s)", self._label, exc)
            absent = False  # unknown: whatever is found later may predate this call
        else:
            if before is not None and billing in before:  # an earlier call stored it: keep the token unspent
                return VaultEntry(vault_id=target, billing_id=billing, card=card_of(before[billing]))
            if before is not None:  # a record the portal does not know of: add the card to it
                return await self._add(fields, target, billing, new_vault=False)
            absent = True
        fields["customer_vault"] = "add_customer"
        looked_up = False

        async def find() -> ET.Element | None:
            nonlocal looked_up
            looked_up = True  # a send got no answer: it may have created the record
            return await self._billing_present(target, billing)

        result = await self._exactly_once(fields, find=find)
        if isinstance(result, ET.Element):  # a lost add_customer landed (or the card was there already)
            return VaultEntry(vault_id=target, billing_id=billing, card=card_of(result), new_vault=absent)
        response, answered_vault = result
        if response.approved:
            return await self._read_back(answered_vault or target, billing, new_vault=True)
        existing = await self._quietly(self._billings(target))
        if existing is None:
            raise GatewayDeclinedError(response)
        if billing in existing:  # stored by a send of this call that went unanswered, or by an earlier call
            created = absent and looked_up
            return VaultEntry(vault_id=target, billing_id=billing, card=card_of(existing[billing]), new_vault=created)
        fields["customer_vault"] = "add_billing"  # "Duplicate Customer Vault Id": created meanwhile, join it
        return await self._add(fields, target, billing, new_vault=False)

    async def _add(self, fields: dict[str, str], vault_id: str, billing: str, *, new_vault: bool) -> VaultEntry:
        """Add the card to an existing record (``add_billing``) and return the entry."""
        result = await self._exactly_once(fields, find=lambda: self._billing_present(vault_id, billing))
        if isinstance(result, ET.Element):
            return VaultEntry(vault_id=vault_id, billing_id=billing, card=card_of(result), new_vault=new_vault)
        response, answered_vault = result
        if not response.approved:
            raise GatewayDeclinedError(response)
        return await self._read_back(answered_vault or vault_id, billing, new_vault=new_vault)

    async def _read_back(self, vault_id: str, billing: str, *, new_vault: bool) -> VaultEntry:
        """The entry NMI accepted; a card that cannot be read is taken back out (the record too if new)."""
        try:
            card = await self._stored_card(vault_id, billing)
        except GatewayUnavailableError:
            await self._undo(vault_id, billing, whole_record=new_vault)
            raise
        return VaultEntry(vault_id=vault_id, billing_id=billing, card=card, new_vault=new_vault)

    async def vault_update(self, *, payment_token: str, vault_id: str, billing_id: str) -> VaultEntry:
        """Replace the card behind a billing id (``update_billing``)."""
        billing = vault_reference(billing_id)
        fields = {
            "customer_vault": "update_billing",
            "customer_vault_id": vault_id,
            "billing_id": billing,
            "payment_token": payment_token,
        }
        response, _ = await self._exactly_once(fields, find=None)
        if not response.approved:
            raise GatewayDeclinedError(response)
        return VaultEntry(vault_id=vault_id, billing_id=billing, card=await self._stored_card(vault_id, billing))

    async def vault_delete(self, *, vault_id: str, billing_id: str, last_in_vault: bool) -> None:
        """Forget one card (``delete_billing``), or the whole record (``delete_customer``).

        Deleting what is already gone succeeds: after a refusal or a lost answer the vault record
        is read, and a card (with ``last_in_vault``, a record) no longer there counts as deleted.
        A refusal raises :class:`GatewayDeclinedError` unless that read shows it gone.
        """
        billing = vault_reference(billing_id)
        if last_in_vault:
            fields = {"customer_vault": "delete_customer", "customer_vault_id": vault_id}
        else:
            fields = {"customer_vault": "delete_billing", "customer_vault_id": vault_id, "billing_id": billing}

        async def gone() -> bool | None:
            billings = await self._billings(vault_id)
            return True if billings is None or (not last_in_vault and billing not in billings) else None

        result = await self._exactly_once(fields, find=gone)
        if isinstance(result, bool):
            return
        response, _ = result
        if not response.approved and not await self._quietly(gone()):
            raise GatewayDeclinedError(response)

    async def sale(self, *, vault_id: str, billing_id: str, amount: Money, order_id: str) -> GatewayResponse:
        """Charge a stored card (``type=sale``) once per ``order_id``.

        An approved sale already on record for ``order_id`` is returned without charging again.
        When a send gets no answer the order id is looked up before anything is resent.

        A blank or over-long order id, a non-positive amount, an unknown currency or a billing id
        without letters or digits gets the gateway's error answer (``error``, code 300), as from
        the sandbox, and nothing is sent.

        Raises:
            GatewayUnavailableError: NMI could not be asked, or did not say what became of the sale.
        """
        if not order_id.strip() or len(order_id) > MAX_ORDER_ID:
            return _gateway_error("Invalid order id")
        if amount.minor_units <= 0:
            return _gateway_error("Invalid amount", order_id)
        try:
            sent_amount = nmi_amount(amount)
        except ValueError:
            return _gateway_error("Invalid currency", order_id)
        try:
            billing = vault_reference(billing_id)
        except ValueError:
            return _gateway_error("Invalid Billing Id", order_id)
        fields = {
            "type": "sale",
            "customer_vault_id": vault_id,
            "billing_id": billing,
            "amount": sent_amount,
            "currency": amount.currency,
            "orderid": order_id,
        }
        started = datetime.now(UTC) - LOOKUP_MARGIN
        try:
            earlier = await self._find_sale(order_id, since=None)
        except _NoAnswerError as exc:
            raise GatewayUnavailableError(f"NMI did not answer the lookup of order {order_id} ({exc})") from None
        except _QueryRefusedError as exc:  # the sale itself will say whether the key works
            log.warning("NMI refused the lookup of order %s for %s: %s", order_id, self._label, exc)
            earlier = None
        if earlier is not None:
            log.info("NMI order %s for %s was already charged: %s", order_id, self._label, earlier.transaction_id)
            return earlier
        result = await self._exactly_once(fields, find=lambda: self._find_sale(order_id, since=started))
        return result if isinstance(result, GatewayResponse) else result[0]

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    # ---- requests ---------------------------------------------------------------------------

    async def _exactly_once(
        self, fields: dict[str, str], *, find: Callable[[], Awaitable[R | None]] | None
    ) -> tuple[GatewayResponse, str | None] | R:
        """Send ``fields`` until NMI answers; after a lost answer, ``find`` says whether it landed.

        Without ``find`` (a change that cannot be looked up) a lost answer is final.
        """
        operation = fields.get("customer_vault") or fields.get("type", "request")
        attempts = self.settings.max_attempts
        uncertain: _NoAnswerError | None = None
        for attempt in range(1, attempts + 1):
            if uncertain is not None and find is None:
                break
            if attempt > 1:
                await asyncio.sleep(self.settings.retry_delay)
            if uncertain is not None and find is not None:
                try:
                    found = await find()
                except _NoAnswerError as exc:
                    log.warning("NMI %s lookup for %s got no answer (%s)", operation, self._label, exc)
                    continue
                except _QueryRefusedError as exc:
                    raise GatewayUnavailableError(f"NMI {operation}: outcome unknown, lookup refused ({exc})") from None
                if found is not None:
                    log.info("NMI %s for %s had arrived: found by lookup", operation, self._label)
                    return found
                uncertain = None
            try:
                body = await self._post(self._transact_url, fields)
                response, vault = parse_answer(body.decode("utf-8", errors="replace"))
            except _NoAnswerError as exc:
                log.warning(
                    "NMI %s for %s: no answer, attempt %d of %d (%s)", operation, self._label, attempt, attempts, exc
                )
                uncertain = exc if exc.delivered else None
                continue
            except GatewayUnavailableError as exc:
                log.warning("NMI %s for %s: %s, attempt %d of %d", operation, self._label, exc, attempt, attempts)
                uncertain = _NoAnswerError(str(exc), delivered=True)
                continue
            log.debug(
                "NMI %s for %s: response %s, code %d", operation, self._label, response.outcome, response.response_code
            )
            return response, vault
        if uncertain is not None and find is not None:
            found = await self._quietly(find())
            if found is not None:
                return found
        raise GatewayUnavailableError(f"NMI did not answer the {operation} request")

    async def _post(self, url: str, fields: dict[str, str]) -> bytes:
        try:
            response = await self._client.post(url, data={"security_key": self.settings.security_key, **fields})
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _NoAnswerError(type(exc).__name__, delivered=False) from None
        except httpx.TransportError as exc:
            raise _NoAnswerError(type(exc).__name__, delivered=True) from None
        if response.status_code != 200:
            raise _NoAnswerError(f"HTTP {response.status_code}", delivered=True)
        return response.content

    async def _query(self, fields: dict[str, str]) -> ET.Element:
        """A Query API report; raises :class:`_NoAnswerError`, :class:`_QueryRefusedError` or unreadable."""
        body = await self._post(self._query_url, fields)
        try:
            root = SafeXml.fromstring(body, forbid_dtd=True)
        except (ET.ParseError, DefusedXmlException):
            raise GatewayUnavailableError("NMI's Query API answered something unreadable") from None
        if root.tag != "nm_response":
            raise GatewayUnavailableError("NMI's Query API answered something unreadable")
        error = root.find("error_response")
        if error is not None:
            raise _QueryRefusedError((error.text or "error").strip())
        return root

    async def _billings(self, vault_id: str) -> Billings | None:
        """The vault record's billing entries by billing id; None when there is no such record."""
        root = await self._query({"report_type": "customer_vault", "customer_vault_id": vault_id, "ver": "2"})
        for customer in root.iterfind("customer_vault/customer"):
            if (customer.get("id") or customer.findtext("customer_vault_id")) == vault_id:
                return {entry.get("id", ""): entry for entry in customer.iterfind("billing") if entry.get("id")}
        return None

    async def _billing_present(self, vault_id: str, billing_id: str) -> ET.Element | None:
        billings = await self._billings(vault_id)
        return billings.get(billing_id) if billings is not None else None

    async def _stored_card(self, vault_id: str, billing_id: str) -> Card:
        """The card NMI stored, read back with bounded retries (the vault answer has no card)."""
        problem = "no answer"
        for attempt in range(self.settings.max_attempts):
            if attempt:
                await asyncio.sleep(self.settings.retry_delay)
            try:
                billing = await self._billing_present(vault_id, billing_id)
            except (_NoAnswerError, _QueryRefusedError) as exc:
                problem = str(exc)
                continue
            if billing is None:
                raise GatewayUnavailableError("NMI's vault does not show the card it accepted")
            return card_of(billing)
        raise GatewayUnavailableError(f"NMI's stored card could not be read ({problem})")

    async def _undo(self, vault_id: str, billing_id: str, *, whole_record: bool) -> None:
        """Best effort: take back a card whose details could not be read, so the vault keeps no stray card."""
        fields = {
            "customer_vault": "delete_customer" if whole_record else "delete_billing",
            "customer_vault_id": vault_id,
        }
        if not whole_record:
            fields["billing_id"] = billing_id
        try:
            response, _ = parse_answer((await self._post(self._transact_url, fields)).decode("utf-8", errors="replace"))
        except (_NoAnswerError, GatewayUnavailableError) as exc:
            log.warning("NMI %s for %s after a failed read: %s", fields["customer_vault"], self._label, exc)
            return
        if not response.approved:
            log.warning("NMI refused %s for %s: %s", fields["customer_vault"], self._label, response.response_code)

    async def _find_sale(self, order_id: str, *, since: datetime | None) -> GatewayResponse | None:
        """The sale for ``order_id``: an approved one, else (with ``since``) the latest attempt since then."""
        root = await self._query({"order_id": order_id})
        latest: tuple[datetime, GatewayResponse] | None = None
        for transaction in root.iterfind("transaction"):
            if (transaction.findtext("order_id") or "") != order_id:
                continue
            for action in transaction.iterfind("action"):
                if (action.findtext("action_type") or "").strip() != "sale":
                    continue
                response = _sale_of(transaction, action)
                if response.approved:
                    return response
                when = _action_date(action)
                if since is not None and when is not None and when >= since and (latest is None or when >= latest[0]):
                    latest = (when, response)
        return latest[1] if latest is not None else None

    async def _quietly(self, lookup: Awaitable[R | None]) -> R | None:
        """A lookup whose failure only means "don't know" (None)."""
        try:
            return await lookup
        except (_NoAnswerError, _QueryRefusedError, GatewayUnavailableError):
            return None


def _build(settings: NmiSettings, merchant: MerchantView) -> NmiGateway:
    return NmiGateway(settings, merchant)


NMI_GATEWAY = PaymentGateway(key="nmi", title="NMI", factory=_build, settings=NmiSettings)
"""The NMI gateway as the ``portal_payment_gateways`` hook returns it."""
