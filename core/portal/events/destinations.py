"""Where webhooks may go: one policy for saving an endpoint and for every delivery attempt.

A URL's host is read the way the operating system's resolver reads it, so that no other
spelling of an address slips past the check:

- IPv4 literals follow ``inet_aton``: decimal, hexadecimal and octal parts, one to four of them
  (``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` are all 127.0.0.1). A host whose last
  label is a number must be such a literal (no top-level domain is numeric).
- IPv6 literals lose their brackets and zone id; IPv4 carried inside them (IPv4-mapped,
  IPv4-compatible, NAT64 ``64:ff9b::/96``, 6to4, Teredo) is checked as well.
- Names are lower-cased, lose one trailing dot and are IDNA-encoded (UTS #46, as browsers do)
  before the ``localhost``/``.localhost``/``.local``/``.internal`` check.

An address is allowed when it is globally routable: ``is_global`` and not multicast, reserved or
unspecified. ``allow_private`` (``webhook_allow_private``, for tests and development) allows
loopback, private, link-local and other non-public addresses and local names; multicast never.

On delivery a name is resolved once (:func:`resolve_addresses`), every address it resolves to
must be allowed, and the request is sent to one of those addresses (:func:`pinned_request`) with
the name as ``Host`` and as the TLS server name, so nothing resolves it a second time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx
import idna  # httpx's own IDNA library: names are encoded as httpx encoded them before

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``resolve(host, port)``: the addresses of ``host``, as strings (DNS is the external service)."""

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
"""Names that mean this machine (``/etc/hosts`` conventions)."""
LOCAL_SUFFIXES = (".localhost", ".local", ".internal")
"""Loopback (RFC 6761), multicast DNS (RFC 6762) and cloud-internal names."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_PRIVATE_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.IPv4Network("10.0.0.0/8"), "private"),
    (ipaddress.IPv4Network("172.16.0.0/12"), "private"),
    (ipaddress.IPv4Network("192.168.0.0/16"), "private"),
    (ipaddress.IPv4Network("100.64.0.0/10"), "shared (carrier-grade NAT)"),
    (ipaddress.IPv6Network("fc00::/7"), "unique-local"),
)
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")
_TARGET_SAFE = "!$&'()*+,;=:@/?%[]"
"""Kept as written in a request target; anything else (spaces, non-ASCII) is percent-encoded."""


class DestinationRefusedError(ValueError):
    """A webhook destination the policy refuses.

    ``detail`` is the sentence the API answers with (422); ``str()`` is the delivery error
    recorded for an attempt (``destination refused: ...``).
    """

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(f"destination refused: {reason}")
        self.detail = detail
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Destination:
    """A webhook URL the policy accepted, as delivery connects to it."""

    scheme: str
    host: str
    """The normalised name (lower case, no trailing dot, IDNA), or the canonical address."""
    port: int
    target: str
    """Path and query, percent-encoded as sent in the request line (never empty; no fragment)."""
    address: Address | None
    """The address of a literal host; ``None`` for a name, which delivery resolves."""

    @property
    def default_port(self) -> bool:
        """Whether the port is the scheme's default (and so left out of ``Host``)."""
        return self.port == (443 if self.scheme == "https" else 80)

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the URL's host, with the port unless it is the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.default_port else f"{host}:{self.port}"


# --- classifying addresses --------------------------------------------------------------------


def _kind(address: Address) -> str | None:
    """What makes ``address`` not a public destination (``"loopback"``, ...); ``None`` when public."""
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"  # fec0::/10: deprecated, but still routed privately where used
    if address.is_multicast:
        return "multicast"
    for network, kind in _PRIVATE_NETWORKS:
        if address.version == network.version and address in network:
            return kind
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "non-public"
    return None


def _embedded(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address, bool] | None:
    """The IPv4 address inside ``address``: (how, address, whether a public one makes it allowed)."""
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped address of", address.ipv4_mapped, True
    if address in _NAT64:
        return "a NAT64 address of", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), True
    if address.sixtofour is not None:
        return "a 6to4 address of", address.sixtofour, True
    if address.teredo is not None:
        return "a Teredo address of", address.teredo[1], False
    if address in _IPV4_COMPATIBLE and not (address.is_loopback or address.is_unspecified):
        return "an IPv4-compatible address of", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), False
    return None


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


def address_problem(address: Address, *, allow_private: bool) -> tuple[str, str] | None:
    """Why ``address`` is refused: (kind, description); ``None`` when it is allowed.

    The description reads after "is": ``"a loopback address"``, ``"an IPv4-mapped address of
    127.0.0.1, a loopback address"``.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded(address)
        if embedded is not None:
            how, inner, carries = embedded
            kind = _kind(inner)
            if kind is not None and (kind == "multicast" or not allow_private):
                return kind, f"{how} {inner}, {_article(kind)} {kind} address"
            if kind is None and carries:
                return None  # a translation of a public IPv4 address
    kind = _kind(address)
    if kind is None or (allow_private and kind != "multicast"):
        return None
    return kind, f"{_article(kind)} {kind} address"


# --- reading hosts ----------------------------------------------------------------------------


def _invalid(host: str, why: str) -> DestinationRefusedError:
    return DestinationRefusedError(f"The url's host {host!r} is not {why}.", f"the host {host!r} is not {why}")


def parse_host(host: str) -> tuple[str, Address | None]:
    """``host`` (as ``urlsplit`` gives it) as the resolver reads it: (normalised host, address or ``None``).

    Raises :class:`DestinationRefusedError` for a host that is neither a valid name nor an address.
    """
    if ":" in host:  # only an IPv6 literal has colons in a URL's host
        try:
            address = ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise _invalid(host, "a valid IPv6 address") from None
        return str(address), address
    name = host.lower()
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except ValueError:  # idna.IDNAError is a UnicodeError
            raise _invalid(host, "a valid name") from None
    if name.endswith("."):
        name = name[:-1]
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _invalid(host, "a valid name or address")
    if _NUMBER.fullmatch(labels[-1]):
        try:  # inet_aton: what the system resolver makes of a numeric host
            ipv4 = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            raise _invalid(host, "a valid IPv4 address") from None
        return str(ipv4), ipv4
    return name, None


def _is_local_name(name: str) -> bool:
    return name in LOCAL_NAMES or name.endswith(LOCAL_SUFFIXES)


def check_url(url: str, *, allow_private: bool) -> Destination:
    """The :class:`Destination` of ``url``, or :class:`DestinationRefusedError` saying what is wrong.

    An absolute ``https`` URL (``http`` too when ``allow_private``) without credentials, whose host
    is a public address or a name that is not local. Names are not resolved here; delivery
    resolves them at every attempt (:func:`resolve_addresses`).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefusedError(f"The url is not valid: {exc}.", f"the url is not valid ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise DestinationRefusedError(
            "The url must be an absolute https:// URL.", f"{scheme or 'no'} scheme or no host"
        )
    if parts.username is not None or parts.password is not None:
        raise DestinationRefusedError("The url must not carry credentials.", "the url carries credentials")
    host, address = parse_host(parts.hostname)
    if address is not None:
        problem = address_problem(address, allow_private=allow_private)
        if problem is not None:
            kind, description = problem
            spelled = parts.hostname if str(address) == parts.hostname else f"{parts.hostname} ({address})"
            what = "multicast" if kind == "multicast" else "private"
            raise DestinationRefusedError(
                f"The url must not point at a {what} address: {spelled} is {description}.",
                f"{spelled} is {description}",
            )
    elif _is_local_name(host) and not allow_private:
        raise DestinationRefusedError(
            f"The url must not point at a private host: {host} is a local name.", f"{host} is a local name"
        )
    if scheme == "http" and not allow_private:
        raise DestinationRefusedError("The url must use https.", "plain http is not allowed")
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_TARGET_SAFE)
    return Destination(
        scheme=scheme,
        host=host,
        port=port if port is not None else (443 if scheme == "https" else 80),
        target=target,
        address=address,
    )


# --- delivering -------------------------------------------------------------------------------


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the operating system's resolver (``getaddrinfo``)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve_addresses(
    destination: Destination, *, allow_private: bool, resolve: Resolver = system_resolve
) -> list[Address]:
    """The addresses to connect to for ``destination``: resolved once, every one of them allowed.

    A literal host is its own address. A name is resolved with ``resolve`` (one call); when any
    address it resolves to is refused, so is the destination, since the connection could use any.
    """
    if destination.address is not None:
        return [destination.address]
    host = destination.host
    try:
        answers = await resolve(host, destination.port)
    except OSError as exc:
        raise DestinationRefusedError(
            f"The url's host {host} cannot be resolved.", f"cannot resolve {host} ({exc})"
        ) from exc
    addresses: list[Address] = []
    for answer in answers:
        try:
            address = ipaddress.ip_address(answer.split("%", 1)[0])
        except ValueError:
            raise DestinationRefusedError(
                f"The url's host {host} resolves to {answer!r}, which is not an address.",
                f"{host} resolves to {answer!r}, which is not an address",
            ) from None
        problem = address_problem(address, allow_private=allow_private)
        if problem is not None:
            kind, description = problem
            what = "multicast" if kind == "multicast" else "private"
            raise DestinationRefusedError(
                f"The url must not point at a {what} address: {host} resolves to {address}, {description}.",
                f"{host} resolves to a {what} address ({address} is {description})",
            )
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DestinationRefusedError(f"The url's host {host} has no address.", f"{host} has no address")
    return addresses


async def resolve_destination(
    url: str, *, allow_private: bool, resolve: Resolver = system_resolve
) -> tuple[Destination, list[Address]]:
    """``url`` checked as on save (:func:`check_url`), then its host resolved once (:func:`resolve_addresses`).

    What a delivery attempt connects to; :class:`DestinationRefusedError` when refused.
    """
    destination = check_url(url, allow_private=allow_private)
    return destination, await resolve_addresses(destination, allow_private=allow_private, resolve=resolve)


async def check_destination(
    url: str, *, allow_private: bool = False, resolve: Resolver = system_resolve
) -> list[Address]:
    """The addresses a delivery to ``url`` may connect to; :class:`DestinationRefusedError` when refused.

    The same policy as on save, then the host resolved once; every address must be allowed.
    """
    _, addresses = await resolve_destination(url, allow_private=allow_private, resolve=resolve)
    return addresses


def pinned_request(
    destination: Destination,
    address: Address,
    *,
    content: bytes,
    headers: dict[str, str],
    timeout: float,
) -> httpx.Request:
    """A ``POST`` to ``address`` for ``destination``: no lookup happens when it is sent.

    The URL carries the address; the ``Host`` header is the destination's host and, for a name
    over ``https``, the ``sni_hostname`` extension makes it the TLS server name, which is also the
    name the certificate is verified against (httpcore passes it to ``SSLContext.wrap_bio`` as
    ``server_hostname``).
    """
    url = httpx.URL(
        scheme=destination.scheme, host=str(address), port=destination.port, raw_path=destination.target.encode()
    )
    extensions: dict[str, object] = {"timeout": httpx.Timeout(timeout).as_dict()}
    if destination.address is None:
        extensions["sni_hostname"] = destination.host
    return httpx.Request(
        "POST", url, content=content, headers={**headers, "host": destination.host_header}, extensions=extensions
    )


__all__ = [
    "LOCAL_NAMES",
    "LOCAL_SUFFIXES",
    "Address",
    "Destination",
    "DestinationRefusedError",
    "Resolver",
    "address_problem",
    "check_destination",
    "check_url",
    "parse_host",
    "pinned_request",
    "resolve_addresses",
    "resolve_destination",
    "system_resolve",
]
