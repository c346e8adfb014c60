"""The HTTP clients webhook delivery sends with: one per destination host name, per event loop.

A request goes to an address checked for its host (the URL carries the address, see
:func:`portal.events.destinations.pinned_request`), so the connection pool alone, which is keyed
by address, could hand a connection opened (and, over TLS, verified) for one name to a request
for another name at the same address; a client per name prevents that. No redirects are followed
and nothing (proxies, certificates) comes from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable

import httpx

CONCURRENCY = 16
"""Messages one :func:`portal.events.delivery.deliver_due` call sends at the same time, and the
keep-alive connections each host's client may hold (HTTP/1.1: one request per connection)."""
KEEP_CLIENTS = 4 * CONCURRENCY
"""Clients (one per destination host, each with its idle keep-alive connections) kept when not in use."""


class Connections:
    """HTTP clients for webhook requests, one per destination host name (see the module's docstring).

    The least recently used idle clients beyond :data:`KEEP_CLIENTS` are closed. ``transport``
    makes each client's transport instead (tests).
    """

    def __init__(self, transport: Callable[[], httpx.AsyncBaseTransport] | None = None) -> None:
        self._transport = transport
        self._tls: ssl.SSLContext | None = None
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._busy: Counter[str] = Counter()
        self.closed = False

    def _new(self) -> httpx.AsyncClient:
        if self._transport is not None:
            return httpx.AsyncClient(transport=self._transport(), follow_redirects=False, trust_env=False)
        if self._tls is None:
            self._tls = httpx.create_ssl_context(trust_env=False)  # reading the CA bundle once
        return httpx.AsyncClient(
            verify=self._tls,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY),
        )

    @contextlib.asynccontextmanager
    async def client(self, host: str) -> AsyncIterator[httpx.AsyncClient]:
        """The client of ``host`` (made on first use), kept open while the block runs."""
        client = self._clients.pop(host, None) or self._new()
        self._clients[host] = client  # most recently used last
        self._busy[host] += 1
        try:
            yield client
        finally:
            self._busy[host] -= 1
            if self._busy[host] <= 0:
                del self._busy[host]
            await self._trim()

    async def _trim(self) -> None:
        while len(self._clients) > KEEP_CLIENTS:
            idle = next((host for host in self._clients if host not in self._busy), None)
            if idle is None:
                return
            await self._clients.pop(idle).aclose()

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        """Close every client and its connections."""
        self.closed = True
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()


_CONNECTIONS: dict[int, Connections] = {}


def loop_connections() -> Connections:
    """The HTTP clients of this event loop (made on first use, again after :func:`close_clients`)."""
    key = id(asyncio.get_running_loop())
    connections = _CONNECTIONS.get(key)
    if connections is None or connections.closed:
        connections = _CONNECTIONS[key] = Connections()
    return connections


async def close_clients() -> None:
    """Close this event loop's HTTP clients (when the platform stops)."""
    connections = _CONNECTIONS.pop(id(asyncio.get_running_loop()), None)
    if connections is not None:
        await connections.aclose()
