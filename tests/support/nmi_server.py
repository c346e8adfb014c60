"""A local stand-in for NMI's Payment API and Query API, speaking their documented formats.

``POST /api/transact.php`` takes form fields and answers ``response=1|2|3&responsetext=...``;
``POST /api/query.php`` answers ``<nm_response>`` XML for ``report_type=customer_vault`` (with
``ver=2``: one ``<billing id=...>`` per billing id) and for transactions (by ``order_id``,
``transaction_id``). Tests register the payment tokens Collect.js would have produced
(:meth:`NmiServer.tokenize`); a card's number decides what a sale answers (``sale_code``).

Every request is recorded (:attr:`NmiServer.requests`), and faults can be scripted: answer late
(:meth:`NmiServer.delay`), never answer (:meth:`NmiServer.hang`), close the connection without an
answer (:meth:`NmiServer.drop`) or answer garbage (:meth:`NmiServer.garble`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qsl, quote

from babel.numbers import get_currency_precision, is_currency

Endpoint = Literal["transact", "query"]
FaultAction = Literal["delay", "hang", "drop", "garble"]

PATHS: dict[str, Endpoint] = {"/api/transact.php": "transact", "/api/query.php": "query"}

RESPONSE_TEXTS = {
    100: "SUCCESS",
    200: "Transaction was declined by processor",
    201: "Do not honor",
    202: "Insufficient funds",
    203: "Over limit",
    204: "Transaction not allowed",
    220: "Incorrect payment information",
    223: "Expired card",
    224: "Invalid expiration date",
    261: "Declined-Stop all recurring payments",
    262: "Declined-Stop this recurring program",
    263: "Declined-Update cardholder data available",
    264: "Declined-Retry in a few days",
    300: "Transaction was rejected by gateway",
    400: "Transaction error returned by processor",
    420: "Communication error",
    421: "Communication error with issuer",
    440: "Processor format error",
}
"""NMI's documented result codes: 1xx approved, 2xx declined, 3xx gateway and 4xx processor errors."""

VAULT_ID = re.compile(r"[A-Za-z0-9]{1,60}")


def response_of(code: int) -> int:
    """The ``response`` field for a result code: 1 approved, 2 declined, 3 error."""
    return 1 if code < 200 else 2 if code < 300 else 3


def brand_of(number: str) -> str:
    """The ``cc_type`` NMI reports for a card number."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number.startswith(("6011", "65")):
        return "discover"
    return ""


@dataclass
class StoredCard:
    """A card behind a payment token or a billing id."""

    number: str
    exp: str
    """MMYY."""
    sale_code: int = 100

    @property
    def masked(self) -> str:
        return self.number[0] + "x" * (len(self.number) - 5) + self.number[-4:]

    @property
    def expired(self) -> bool:
        month, year = int(self.exp[:2]), 2000 + int(self.exp[2:])
        now = datetime.now(UTC)
        return (year, month) < (now.year, now.month)


@dataclass
class Billing:
    """One billing id of a customer vault record."""

    id: str
    card: StoredCard
    priority: int
    first_name: str = ""
    last_name: str = ""
    email: str = ""


@dataclass
class Customer:
    """A customer vault record."""

    id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    billings: dict[str, Billing] = field(default_factory=dict)


@dataclass
class Transaction:
    """A processed sale, approved or not."""

    transaction_id: str
    order_id: str
    customer_vault_id: str
    billing_id: str
    amount: str
    currency: str
    response_code: int
    response_text: str
    authorization_code: str
    card: StoredCard
    date: datetime

    @property
    def approved(self) -> bool:
        return self.response_code == 100


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the server received it."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fields: Mapping[str, str]
    fault: FaultAction | None


@dataclass
class Fault:
    """A scripted misbehaviour for the next matching requests."""

    action: FaultAction
    endpoint: Endpoint | None
    match: Mapping[str, str]
    remaining: int | None
    seconds: float = 0.0
    processed: bool = True
    body: str = ""

    def matches(self, endpoint: Endpoint, fields: Mapping[str, str]) -> bool:
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        return all(fields.get(name) == value for name, value in self.match.items())


class NmiServer:
    """The fake gateway: ``await start()``, point an adapter at :attr:`url`, ``await stop()``."""

    def __init__(self, security_key: str = "nmi-test-security-key-0123456789") -> None:
        self.security_key = security_key
        self.tokens: dict[str, StoredCard] = {}
        self.used_tokens: set[str] = set()
        self.vault: dict[str, Customer] = {}
        self.transactions: list[Transaction] = []
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._ids = itertools.count(10_000_000_001)
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._stopping = asyncio.Event()
        self.port = 0

    # ---- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to give an adapter (``base_url``)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, host="127.0.0.1", port=0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every open connection (hanging and delayed ones too)."""
        self._stopping.set()
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections.values()):
            writer.transport.abort()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # ---- test setup and inspection ------------------------------------------------------------

    def tokenize(self, number: str = "4111111111111111", exp: str = "1030", *, sale_code: int = 100) -> str:
        """A single-use payment token for a card, as Collect.js would have produced.

        ``sale_code`` is the result code sales on this card get (100 approves).
        """
        token = "-".join(secrets.token_hex(size) for size in (4, 3, 3, 3, 6))
        self.tokens[token] = StoredCard(number=number, exp=exp, sale_code=sale_code)
        return token

    def add_customer(self, vault_id: str, *, billing_id: str = "b1", number: str = "4111111111111111") -> Customer:
        """A vault record created behind the portal's back (or left over from an earlier attempt)."""
        customer = Customer(id=vault_id)
        customer.billings[billing_id] = Billing(id=billing_id, card=StoredCard(number=number, exp="1030"), priority=1)
        self.vault[vault_id] = customer
        return customer

    @property
    def sales(self) -> list[Transaction]:
        """Every sale processed (approved or not)."""
        return list(self.transactions)

    @property
    def charges(self) -> list[Transaction]:
        """Approved sales: money actually taken."""
        return [transaction for transaction in self.transactions if transaction.approved]

    def requests_to(self, endpoint: Endpoint) -> list[RecordedRequest]:
        """Recorded requests to one API."""
        return [request for request in self.requests if PATHS.get(request.path) == endpoint]

    # ---- faults -------------------------------------------------------------------------------

    def delay(
        self,
        seconds: float,
        *,
        endpoint: Endpoint | None = None,
        match: Mapping[str, str] | None = None,
        times: int | None = 1,
    ) -> None:
        """Process the next matching requests at once but answer only after ``seconds``."""
        self.faults.append(Fault("delay", endpoint, match or {}, times, seconds=seconds))

    def hang(
        self,
        seconds: float = 30.0,
        *,
        endpoint: Endpoint | None = None,
        match: Mapping[str, str] | None = None,
        times: int | None = 1,
    ) -> None:
        """Never process the next matching requests; close their connections after ``seconds``."""
        self.faults.append(Fault("hang", endpoint, match or {}, times, seconds=seconds, processed=False))

    def drop(
        self,
        *,
        processed: bool = True,
        endpoint: Endpoint | None = None,
        match: Mapping[str, str] | None = None,
        times: int | None = 1,
    ) -> None:
        """Close the connection of the next matching requests without an answer (after processing them)."""
        self.faults.append(Fault("drop", endpoint, match or {}, times, processed=processed))

    def garble(
        self,
        body: str,
        *,
        processed: bool = True,
        endpoint: Endpoint | None = None,
        match: Mapping[str, str] | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next matching requests with ``body`` instead of the real answer."""
        self.faults.append(Fault("garble", endpoint, match or {}, times, processed=processed, body=body))

    def _take_fault(self, endpoint: Endpoint, fields: Mapping[str, str]) -> Fault | None:
        for fault in self.faults:
            if fault.matches(endpoint, fields):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    # ---- HTTP ---------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            while not self._stopping.is_set() and await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        request_line = await reader.readline()
        if not request_line:
            return False
        method, target, _version = request_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers: list[tuple[str, str]] = []
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip().lower(), value.strip()))
        length = int(dict(headers).get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        path, _, query = target.partition("?")
        fields = dict(parse_qsl(query, keep_blank_values=True))
        if body:
            fields.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        endpoint = PATHS.get(path)
        fault = self._take_fault(endpoint, fields) if endpoint is not None and method == "POST" else None
        self.requests.append(
            RecordedRequest(method, path, query, tuple(headers), body, fields, fault.action if fault else None)
        )
        if endpoint is None:
            return await self._write(writer, 404, "text/plain", "Not Found")
        if method != "POST":
            return await self._write(writer, 405, "text/plain", "Method Not Allowed")
        if fault is not None and fault.action == "hang":
            await self._pause(fault.seconds)
            return False
        if fault is not None and not fault.processed:
            answer = ""
        else:
            answer = self._transact(fields) if endpoint == "transact" else self._query(fields)
        if fault is not None and fault.action == "drop":
            return False
        if fault is not None and fault.action == "delay" and await self._pause(fault.seconds):
            return False
        if fault is not None and fault.action == "garble":
            answer = fault.body
        content_type = "text/html; charset=UTF-8" if endpoint == "transact" else "text/xml; charset=UTF-8"
        return await self._write(writer, 200, content_type, answer)

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``, or less when the server stops; True when it is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, status: int, content_type: str, text: str) -> bool:
        payload = text.encode("utf-8")
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}[status]
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + payload)
        await writer.drain()
        return True

    # ---- Payment API --------------------------------------------------------------------------

    @staticmethod
    def _answer(
        code: int,
        text: str | None = None,
        *,
        authcode: str = "",
        transactionid: str = "",
        orderid: str = "",
        kind: str = "",
        vault_id: str | None = None,
    ) -> str:
        pairs = [
            ("response", str(response_of(code))),
            ("responsetext", text if text is not None else RESPONSE_TEXTS.get(code, "")),
            ("authcode", authcode),
            ("transactionid", transactionid),
            ("avsresponse", ""),
            ("cvvresponse", ""),
            ("orderid", orderid),
            ("type", kind),
            ("response_code", str(code)),
        ]
        if vault_id is not None:
            pairs.append(("customer_vault_id", vault_id))
        return "&".join(f"{name}={quote(value, safe=' ')}" for name, value in pairs)

    def _transact(self, fields: Mapping[str, str]) -> str:
        if fields.get("security_key") != self.security_key:
            return self._answer(300, "Authentication Failed")
        action = fields.get("customer_vault")
        if action and fields.get("type"):
            return self._answer(300, "Vault actions and transactions are sent separately here")
        if action:
            handler = {
                "add_customer": self._add_customer,
                "update_customer": self._update_customer,
                "delete_customer": self._delete_customer,
                "add_billing": self._add_billing,
                "update_billing": self._update_billing,
                "delete_billing": self._delete_billing,
            }.get(action)
            return handler(fields) if handler else self._answer(300, "Invalid Customer Vault action")
        if fields.get("type") == "sale":
            return self._sale(fields)
        return self._answer(300, "Invalid Transaction Type")

    def _take_token(self, fields: Mapping[str, str]) -> StoredCard | str:
        token = fields.get("payment_token", "")
        if "ccnumber" in fields:
            return self._answer(300, "Card numbers are not accepted here: send a payment token")
        if not token or token in self.used_tokens or token not in self.tokens:
            return self._answer(300, "Invalid payment token")
        card = self.tokens[token]
        if card.expired:
            return self._answer(300, "Card expired")
        self.used_tokens.add(token)
        return card

    def _billing(self, fields: Mapping[str, str], card: StoredCard, billing_id: str, priority: int) -> Billing:
        return Billing(
            id=billing_id,
            card=card,
            priority=priority,
            first_name=fields.get("first_name", ""),
            last_name=fields.get("last_name", ""),
            email=fields.get("email", ""),
        )

    def _add_customer(self, fields: Mapping[str, str]) -> str:
        vault_id = fields.get("customer_vault_id") or str(next(self._ids))
        billing_id = fields.get("billing_id") or secrets.token_hex(6)
        if not VAULT_ID.fullmatch(vault_id) or not VAULT_ID.fullmatch(billing_id):
            return self._answer(300, "Invalid Customer Vault Id or Billing Id")
        if vault_id in self.vault:
            return self._answer(300, f"Duplicate Customer Vault Id REFID:{next(self._ids)}")
        card = self._take_token(fields)
        if isinstance(card, str):
            return card
        customer = Customer(
            id=vault_id,
            first_name=fields.get("first_name", ""),
            last_name=fields.get("last_name", ""),
            email=fields.get("email", ""),
        )
        customer.billings[billing_id] = self._billing(fields, card, billing_id, 1)
        self.vault[vault_id] = customer
        return self._answer(100, "Customer Added", vault_id=vault_id)

    def _update_customer(self, fields: Mapping[str, str]) -> str:
        customer = self.vault.get(fields.get("customer_vault_id", ""))
        if customer is None:
            return self._answer(300, "Invalid Customer Vault Id")
        for name in ("first_name", "last_name", "email"):
            if name in fields:
                setattr(customer, name, fields[name])
        return self._answer(100, "Customer Update Successful", vault_id=customer.id)

    def _delete_customer(self, fields: Mapping[str, str]) -> str:
        vault_id = fields.get("customer_vault_id", "")
        if self.vault.pop(vault_id, None) is None:
            return self._answer(300, "Invalid Customer Vault Id")
        return self._answer(100, "Customer Deleted", vault_id=vault_id)

    def _add_billing(self, fields: Mapping[str, str]) -> str:
        customer = self.vault.get(fields.get("customer_vault_id", ""))
        if customer is None:
            return self._answer(300, "Invalid Customer Vault Id")
        billing_id = fields.get("billing_id") or secrets.token_hex(6)
        if not VAULT_ID.fullmatch(billing_id):
            return self._answer(300, "Invalid Billing Id")
        if billing_id in customer.billings:
            return self._answer(300, "Duplicate Billing Id")
        card = self._take_token(fields)
        if isinstance(card, str):
            return card
        priority = max((billing.priority for billing in customer.billings.values()), default=0) + 1
        customer.billings[billing_id] = self._billing(fields, card, billing_id, priority)
        return self._answer(100, "Billing Information Added", vault_id=customer.id)

    def _update_billing(self, fields: Mapping[str, str]) -> str:
        customer = self.vault.get(fields.get("customer_vault_id", ""))
        if customer is None:
            return self._answer(300, "Invalid Customer Vault Id")
        billing = customer.billings.get(fields.get("billing_id", ""))
        if billing is None:
            return self._answer(300, "Invalid Billing Id")
        card = self._take_token(fields)
        if isinstance(card, str):
            return card
        billing.card = card
        return self._answer(100, "Billing Information Updated", vault_id=customer.id)

    def _delete_billing(self, fields: Mapping[str, str]) -> str:
        customer = self.vault.get(fields.get("customer_vault_id", ""))
        if customer is None:
            return self._answer(300, "Invalid Customer Vault Id")
        if customer.billings.pop(fields.get("billing_id", ""), None) is None:
            return self._answer(300, "Invalid Billing Id")
        return self._answer(100, "Billing Information Deleted", vault_id=customer.id)

    def _sale(self, fields: Mapping[str, str]) -> str:
        order_id = fields.get("orderid", "")
        customer = self.vault.get(fields.get("customer_vault_id", ""))
        if customer is None:
            return self._answer(300, "Invalid Customer Vault Id", orderid=order_id, kind="sale")
        billing_id = fields.get("billing_id") or min(customer.billings.values(), key=lambda b: b.priority).id
        billing = customer.billings.get(billing_id)
        if billing is None:
            return self._answer(300, "Invalid Billing Id", orderid=order_id, kind="sale")
        currency = fields.get("currency", "USD").upper()
        amount = fields.get("amount", "")
        digits = get_currency_precision(currency) if is_currency(currency) else -1
        shape = re.fullmatch(r"([0-9]+)(?:\.([0-9]+))?", amount)
        if digits < 0 or shape is None or len(shape.group(2) or "") > digits or float(amount) <= 0:
            return self._answer(300, "Invalid amount or currency", orderid=order_id, kind="sale")
        code = 223 if billing.card.expired else billing.card.sale_code
        transaction = Transaction(
            transaction_id=str(next(self._ids)),
            order_id=order_id,
            customer_vault_id=customer.id,
            billing_id=billing.id,
            amount=amount,
            currency=currency,
            response_code=code,
            response_text=RESPONSE_TEXTS.get(code, "Declined"),
            authorization_code=f"{secrets.randbelow(1_000_000):06d}" if code == 100 else "",
            card=billing.card,
            date=datetime.now(UTC),
        )
        self.transactions.append(transaction)
        return self._answer(
            code,
            transaction.response_text,
            authcode=transaction.authorization_code,
            transactionid=transaction.transaction_id,
            orderid=order_id,
            kind="sale",
            vault_id=customer.id,
        )

    # ---- Query API ----------------------------------------------------------------------------

    def _query(self, fields: Mapping[str, str]) -> str:
        root = ET.Element("nm_response")
        if fields.get("security_key") != self.security_key:
            ET.SubElement(root, "error_response").text = "Authentication Failed"
        elif fields.get("report_type") == "customer_vault":
            self._vault_report(root, fields)
        elif fields.get("report_type", "transaction") == "transaction":
            self._transaction_report(root, fields)
        else:
            ET.SubElement(root, "error_response").text = "Invalid report_type"
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")

    @staticmethod
    def _texts(parent: ET.Element, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            ET.SubElement(parent, name).text = value

    def _card_fields(self, card: StoredCard) -> dict[str, str]:
        return {
            "cc_number": card.masked,
            "cc_hash": hashlib.md5(card.number.encode(), usedforsecurity=False).hexdigest(),
            "cc_exp": card.exp,
            "cc_start_date": "",
            "cc_issue_number": "",
            "cc_bin": card.number[:6],
            "cc_type": brand_of(card.number),
        }

    def _vault_report(self, root: ET.Element, fields: Mapping[str, str]) -> None:
        wanted = fields.get("customer_vault_id")
        customers = [c for c in self.vault.values() if wanted is None or c.id == wanted]
        if not customers:
            return
        vault = ET.SubElement(root, "customer_vault")
        for customer in customers:
            element = ET.SubElement(vault, "customer", id=customer.id)
            names = {"first_name": customer.first_name, "last_name": customer.last_name, "email": customer.email}
            billings = sorted(customer.billings.values(), key=lambda b: b.priority)
            if fields.get("ver") == "2":
                self._texts(element, names)
                for billing in billings:
                    entry = ET.SubElement(element, "billing", id=billing.id)
                    self._texts(entry, {"first_name": billing.first_name, "last_name": billing.last_name})
                    self._texts(entry, {"email": billing.email, **self._card_fields(billing.card)})
                    self._texts(entry, {"priority": str(billing.priority)})
            else:  # the original format: the priority billing's details on the customer
                self._texts(element, names)
                if billings:
                    self._texts(element, self._card_fields(billings[0].card))
            self._texts(element, {"customer_vault_id": customer.id})

    def _transaction_report(self, root: ET.Element, fields: Mapping[str, str]) -> None:
        ids = set(filter(None, fields.get("transaction_id", "").split(",")))
        for transaction in self.transactions:
            if "order_id" in fields and transaction.order_id != fields["order_id"]:
                continue
            if ids and transaction.transaction_id not in ids:
                continue
            element = ET.SubElement(root, "transaction")
            self._texts(
                element,
                {
                    "transaction_id": transaction.transaction_id,
                    "partial_payment_id": "",
                    "partial_payment_balance": "",
                    "platform_id": "",
                    "transaction_type": "cc",
                    "condition": "pendingsettlement" if transaction.approved else "failed",
                    "order_id": transaction.order_id,
                    "authorization_code": transaction.authorization_code,
                    "ponumber": "",
                    "order_description": "",
                    **{
                        name: value
                        for name, value in self._card_fields(transaction.card).items()
                        if name in {"cc_number", "cc_hash", "cc_exp"}
                    },
                    "processor_id": "ccprocessora",
                    "currency": transaction.currency,
                    "cc_bin": transaction.card.number[:6],
                    "cc_type": brand_of(transaction.card.number),
                },
            )
            action = ET.SubElement(element, "action")
            self._texts(
                action,
                {
                    "amount": transaction.amount,
                    "action_type": "sale",
                    "date": transaction.date.strftime("%Y%m%d%H%M%S"),
                    "success": "1" if transaction.approved else "0",
                    "ip_address": "127.0.0.1",
                    "source": "api",
                    "api_method": "",
                    "username": "",
                    "response_text": transaction.response_text,
                    "batch_id": "0",
                    "processor_batch_id": "",
                    "response_code": str(transaction.response_code),
                    "processor_response_text": "",
                    "processor_response_code": "",
                },
            )
