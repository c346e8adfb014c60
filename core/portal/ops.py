"""The operator listener: health, readiness and metrics of a worker (or the demo) on a port of its own.

It is a small Litestar app served by uvicorn inside the caller's event loop; it never installs
signal handlers (the caller's stay in charge). Meant for operators and Prometheus only: bind it
to an interface the public cannot reach. ``/-/metrics`` needs no token here, unless
``metrics_token`` is set, in which case it asks for the same bearer token as the web port.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, get

from portal.config import ENV_PREFIX, ConfigError, Settings
from portal.web.observability import NO_STORE, metrics_answer

log = logging.getLogger(__name__)

STOP_TIMEOUT = 5.0
"""Seconds :meth:`OpsListener.stop` lets requests in flight finish."""

Health = Callable[[], Awaitable[dict[str, Any]]]
Ready = Callable[[], Awaitable[list[str]]]
BeforeScrape = Callable[[], Awaitable[None]]


class OpsListenerError(ConfigError):
    """The operator listener cannot listen where it was told to (the port is taken, say)."""


class _Server(uvicorn.Server):
    """A uvicorn server that says when it accepts connections and leaves signals to its process."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.accepting = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start serving, then set :attr:`accepting`."""
        await super().startup(sockets=sockets)
        self.accepting.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install nothing: SIGTERM and SIGINT belong to the worker or the demo."""
        yield


def ops_app(settings: Settings, *, health: Health, ready: Ready, before_scrape: BeforeScrape | None = None) -> Litestar:
    """The listener's app: ``/-/health``, ``/-/ready`` and ``/-/metrics``, each answered ``no-store``."""

    @get("/-/health", name="ops_health")
    async def health_route() -> Response[dict[str, Any]]:
        return Response(await health(), headers=NO_STORE)

    @get("/-/ready", name="ops_ready")
    async def ready_route() -> Response[dict[str, Any]]:
        problems = await ready()
        if not problems:
            return Response({"status": "ready"}, headers=NO_STORE)
        return Response({"status": "unavailable", "problems": problems}, status_code=503, headers=NO_STORE)

    @get("/-/metrics", name="ops_metrics")
    async def metrics_route(request: Request[Any, Any, Any]) -> Response[bytes]:
        if before_scrape is not None:
            try:
                await before_scrape()
            except Exception:
                log.exception("refreshing metrics before a scrape failed; serving the last values")
        return metrics_answer(request.headers.get("authorization"), settings.metrics_token)

    return Litestar(
        route_handlers=[health_route, ready_route, metrics_route],
        openapi_config=None,
        debug=False,
        logging_config=None,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise OpsListenerError(
            f"the operator listener cannot listen on {host}:{port}: {reason}; "
            f"choose another port ({ENV_PREFIX}OPS_PORT, 0 for any free one) or interface ({ENV_PREFIX}OPS_HOST)"
        ) from exc
    return sock


class OpsListener:
    """A running operator listener; :attr:`port` is the port it is bound to."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], sock: socket.socket) -> None:
        self._server = server
        self._task = task
        self._socket = sock
        self.host: str = sock.getsockname()[0]
        self.port: int = sock.getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish (at most :data:`STOP_TIMEOUT` seconds)."""
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT)
        except TimeoutError:
            self._server.force_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
        finally:
            self._socket.close()


async def start_ops_listener(
    settings: Settings,
    *,
    port: int,
    health: Health,
    ready: Ready,
    before_scrape: BeforeScrape | None = None,
) -> OpsListener:
    """Serve the operator listener on ``settings.ops_host``:``port`` (0: any free port) in this loop.

    Returns once the socket is bound and the server accepts connections; raises
    :class:`OpsListenerError` when it cannot bind.
    """
    sock = _bind(settings.ops_host, port)
    app = ops_app(settings, health=health, ready=ready, before_scrape=before_scrape)
    # no log_config, no log_level: the process's logging (and the web server's, in the demo) stays as it is
    config = uvicorn.Config(app, lifespan="off", log_config=None)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="ops-listener")
    accepting = asyncio.create_task(server.accepting.wait())
    await asyncio.wait({accepting, task}, return_when=asyncio.FIRST_COMPLETED)
    accepting.cancel()
    if not server.started:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
        sock.close()
        raise OpsListenerError("the operator listener did not start (see the log above)")
    listener = OpsListener(server, task, sock)
    log.info("operator listener on http://%s:%s/-/metrics", settings.ops_host, listener.port)
    return listener
