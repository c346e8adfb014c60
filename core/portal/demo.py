"""``portal demo``: everything in one process, with signed links for the demo customers.

While it runs, the demo records where it serves in ``<data dir>/demo.json`` (see
:class:`DemoRecord`), so that other ``portal`` commands using the same data folder print links
that open it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import click
import msgspec

from portal.config import Settings
from portal.db.embedded import process_alive, process_started

if TYPE_CHECKING:
    from portal.ops import OpsListener
    from portal.platform import Platform
    from portal.tasks.worker import Worker
    from portal.tenancy.files import TenantFile

log = logging.getLogger(__name__)

RECORD_FILE = "demo.json"


class DemoRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Where a running ``portal demo`` serves, kept in its data folder while it runs."""

    pid: int
    started: float
    """Start time of the demo's process: a later process with the same pid is not the demo."""
    scheme: Literal["http", "https"]
    host: str
    """The interface the demo binds."""
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    base_domain: str
    data_dir: str
    database: str
    """``embedded``, or a fingerprint of the database URL the demo used."""

    @property
    def url(self) -> str:
        """The demo's address pattern, as the demo prints it."""
        return f"{self.scheme}://<merchant>.{self.base_domain}:{self.port}/"

    def running(self) -> bool:
        """True while the recorded demo process runs."""
        return process_alive(self.pid, self.started)

    def public_settings(self) -> dict[str, Any]:
        """The settings under which links open this demo."""
        return {"public_scheme": self.scheme, "public_port": self.port, "base_domain": self.base_domain}


def data_folder(settings: Settings) -> Path:
    """The settings' data folder, as an absolute path."""
    return Path(settings.data_dir).expanduser().resolve()


def record_path(settings: Settings) -> Path:
    """Where a demo using these settings keeps its record."""
    return data_folder(settings) / RECORD_FILE


def database_identity(settings: Settings) -> str:
    """What a demo record says about the database (never the URL itself, which may hold a password)."""
    if settings.database_url is None:
        return "embedded"
    return "url:" + hashlib.sha256(settings.database_url.encode()).hexdigest()[:16]


def read_record(settings: Settings) -> DemoRecord | None:
    """The demo record in the settings' data folder, if one is there and is about the same database."""
    try:
        record = msgspec.json.decode(record_path(settings).read_bytes(), type=DemoRecord)
    except (OSError, msgspec.DecodeError):
        return None
    return record if record.database == database_identity(settings) else None


def _write_record(settings: Settings) -> DemoRecord:
    pid = os.getpid()
    record = DemoRecord(
        pid=pid,
        started=process_started(pid) or 0.0,
        scheme="http",
        host=settings.host,
        port=settings.port,
        base_domain=settings.base_domain,
        data_dir=str(data_folder(settings)),
        database=database_identity(settings),
    )
    path = record_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{RECORD_FILE}.{pid}")
    scratch.write_bytes(msgspec.json.format(msgspec.json.encode(record)) + b"\n")
    scratch.replace(path)
    return record


def _remove_record(settings: Settings, record: DemoRecord) -> None:
    path = record_path(settings)
    with contextlib.suppress(OSError, msgspec.DecodeError):
        if msgspec.json.decode(path.read_bytes(), type=DemoRecord) == record:
            path.unlink()


async def demo_links(platform: Platform, spec: TenantFile) -> list[tuple[str, str, str]]:
    """(merchant, customer email, signed link) for every customer in the demo file."""
    from portal.access.links import issue_link
    from portal.db.engine import fetch, system_transaction, tenant_transaction

    links: list[tuple[str, str, str]] = []
    for iso in spec.isos:
        async with system_transaction():
            rows = await fetch("SELECT portal_iso_id_for_slug($1) AS id", iso.slug)
        iso_id = rows[0]["id"]
        async with tenant_transaction(iso_id):
            customers = await fetch(
                """
                SELECT m.id AS merchant_id, m.name, c.id, c.email FROM portal_customer c
                  JOIN portal_merchant m ON m.id = c.merchant_id
                 WHERE m.slug = ANY($1::text[]) ORDER BY m.slug, c.email
                """,
                [m.slug for m in iso.merchants],
            )
        for row in customers:
            tenant = await platform.tenants.load_merchant(iso_id, row["merchant_id"])
            if tenant is None:
                continue
            async with tenant_transaction(iso_id):
                link = await issue_link(platform.settings, tenant, row["id"], source="operator")
            links.append((f"{row['name']} ({iso.name})", row["email"], link.url))
    return links


async def start_demo_ops_listener(settings: Settings, platform: Platform, worker: Worker) -> OpsListener:
    """The demo's operator listener: on ``ops_port``, else the web port + 1 (any free port if that is taken).

    The demo is one process, so its ``/-/metrics`` shows the web server's and the worker's metrics.
    """
    from portal.ops import OpsListenerError, start_ops_listener

    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    async def start(port: int) -> OpsListener:
        return await start_ops_listener(
            settings, port=port, health=health, ready=platform.readiness, before_scrape=worker.refresh_metrics
        )

    if settings.ops_port is not None:
        return await start(settings.ops_port)
    try:
        return await start(settings.port + 1 if settings.port < 65535 else 0)
    except OpsListenerError as exc:
        log.warning("%s; the demo's operator listener takes any free port instead", exc)
        return await start(0)


def listener_url(host: str, port: int) -> str:
    """``http://host:port`` for a listener bound to ``host`` (loopback for the wildcard addresses)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (naming the wildcard, not binding it)
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Stopping:
    """SIGINT and SIGTERM stop the demo cleanly, whenever they come.

    While the web server runs, it handles both itself (and passes them on when it has shut
    down). Before that, the first signal abandons start-up; after it, the first is ignored (the
    demo is stopping already); any further signal cuts the clean-up short.
    """

    def __init__(self) -> None:
        self.server: Any = None
        self._task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        self._stopping = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self._task is not None and (self._stopping or self.server is None):
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._stopping = True
        if self.server is not None:
            self.server.should_exit = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Stopping]:
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def run_demo(settings: Settings, tenants_file: Path) -> None:
    """Migrate, apply the demo tenants, print links, then serve and work until interrupted."""
    running = read_record(settings)
    if running is not None and running.running() and running.pid != os.getpid():
        raise click.ClickException(
            f"another `portal demo` (pid {running.pid}) already serves {running.data_dir} at {running.url}; "
            "stop it first, or give this one another --data-dir"
        )
    with _Stopping().installed() as stopping:
        record = _write_record(settings)
        try:
            await _serve_demo(settings, tenants_file, stopping)
        finally:
            _remove_record(settings, record)


async def _serve_demo(settings: Settings, tenants_file: Path, stopping: _Stopping) -> None:
    import uvicorn

    from portal.billing.demo_data import apply_demo_billing
    from portal.mail import MailCatcher
    from portal.platform import Platform
    from portal.tasks.worker import Worker
    from portal.tenancy.files import apply_tenant_file, load_tenant_file
    from portal.web.app import create_app

    catcher = MailCatcher()
    smtp_port = await catcher.start()
    settings = msgspec.structs.replace(
        settings,
        public_scheme="http",
        public_port=settings.port,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_security="none",
        mail_from=f"portal@{settings.base_domain}",
        webhook_allow_private=True,  # the demo's webhook receivers run on this machine
    )
    platform = Platform(settings)
    platform.mail_catcher = catcher
    ops: OpsListener | None = None
    try:
        spec = load_tenant_file(tenants_file, platform.registry, settings.base_domain)
        await platform.migrate()
        await platform.start(worker=True)
        changes = await apply_tenant_file(spec, platform.registry, source=str(tenants_file))
        log.info("demo tenants: %s change(s)", len(changes))
        await apply_demo_billing(platform)  # the demo merchants' billing; once (left alone when they have some)
        links = await demo_links(platform, spec)
        worker = Worker(platform)
        ops = await start_demo_ops_listener(settings, platform, worker)
        click.echo(f"\nPortal demo on http://<merchant>.{settings.base_domain}:{settings.port}/\n")
        click.echo("Signed links (each works once; ask for a new one at /login, mail shows at /-/mail):\n")
        for merchant, email, url in links:
            click.echo(f"  {merchant:<48} {email}\n    {url}\n")
        click.echo(f"Caught mail: http://<any merchant>.{settings.base_domain}:{settings.port}/-/mail")
        click.echo(f"Metrics:     {listener_url(settings.ops_host, ops.port)}/-/metrics  Ctrl+C stops.\n")
        app = create_app(platform, manage_platform=False)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level,
                lifespan="on",
                log_config=None,
            )
        )
        stopping.server = server
        working = asyncio.create_task(worker.run())
        try:
            await server.serve()
        finally:
            worker.stop()
            await asyncio.gather(working, return_exceptions=True)
    finally:
        if ops is not None:
            await ops.stop()
        await platform.stop()
        await catcher.stop()
