"""Prometheus metrics of the web app: request counts and latency, the pool, and ``/-/metrics``.

Requests are counted by Litestar's Prometheus middleware, labelled with the route template
(``/access/{token}``), never the raw path. ``/-/metrics`` on the web port answers 404 unless
``metrics_token`` is set, then only to ``Authorization: Bearer <token>``. With
``PROMETHEUS_MULTIPROC_DIR`` set (several server processes), a scrape collects every process's
values from that folder.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from litestar import Request, Response, get
from litestar._asgi.utils import wrap_in_exception_handler
from litestar.exceptions import NotFoundException
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from portal.db.engine import ENGINE
from portal.metrics import DB_POOL_IDLE, DB_POOL_IN_USE, DB_POOL_MAX, DB_POOL_SIZE
from portal.web.state import platform_of

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
NO_STORE = {"Cache-Control": "no-store"}


def multiprocess_mode() -> bool:
    """True when several processes share metric files (``PROMETHEUS_MULTIPROC_DIR`` is set)."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


def refresh_pool_metrics() -> None:
    """Read the application pool's size, idle and in-use connections into their gauges (0 without a pool)."""
    pool = ENGINE.pool
    size = pool.get_size() if pool is not None else 0
    idle = pool.get_idle_size() if pool is not None else 0
    DB_POOL_SIZE.set(size)
    DB_POOL_IDLE.set(idle)
    DB_POOL_IN_USE.set(size - idle)
    DB_POOL_MAX.set(pool.get_max_size() if pool is not None else 0)


def exposition() -> bytes:
    """Every metric in Prometheus's text format (all processes' in multiprocess mode)."""
    if not multiprocess_mode():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def bearer_matches(authorization: str | None, token: str) -> bool:
    """True when ``authorization`` is ``Bearer <token>`` (compared in constant time)."""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def metrics_answer(authorization: str | None, token: str | None) -> Response[bytes]:
    """The text format, or 401 when ``token`` is set and ``authorization`` does not present it."""
    if token is not None and not bearer_matches(authorization, token):
        return Response(
            b"unauthorized\n",
            status_code=401,
            media_type="text/plain; charset=utf-8",
            headers={"WWW-Authenticate": "Bearer", **NO_STORE},
        )
    refresh_pool_metrics()
    # the type as a header: as media_type, Litestar would add a second charset
    return Response(exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST, **NO_STORE})


@get("/-/metrics", name="metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus metrics of this process (of all server processes in multiprocess mode), behind the token."""
    token = platform_of(request).settings.metrics_token
    if token is None:
        raise NotFoundException()
    return metrics_answer(request.headers.get("authorization"), token)


class RequestMetricsMiddleware(PrometheusMiddleware):
    """Litestar's request metrics, counting errors raised by later middleware with their real status.

    Without the inner exception handler, a 404 or 503 raised by the tenant middleware would pass
    through uncounted as a 200 (the app's outer handler answers it after this middleware is done).
    """

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(wrap_in_exception_handler(app), config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request; in multiprocess mode also refresh this process's pool gauges."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            if multiprocess_mode():  # each process writes its own pool values; a scrape reads them all
                refresh_pool_metrics()


REQUEST_METRICS = PrometheusConfig(
    app_name="portal",
    prefix="portal_http",
    group_path=True,
    middleware_class=RequestMetricsMiddleware,
)
"""``portal_http_requests_total`` and ``portal_http_request_duration_seconds`` by method, route template, status."""
