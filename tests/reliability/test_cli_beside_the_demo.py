"""Operator commands run beside a running ``portal demo`` print links that open that demo.

The demo runs as its own process on a fresh data folder; the commands are separate processes
with no ``PORTAL_*`` settings, started either from the folder the demo was started in (its
default data folder ``.portal``) or from anywhere with ``--data-dir``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from reliability.demo_process import Demo, clean_env, free_port, portal, stop_leftovers

GREENFIELD_JANE = ("--merchant", "greenfield", "--email", "jane@globalco.com")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A demo whose data folder is ``<workdir>/.portal``, the default for commands run in ``<workdir>``."""
    workdir = tmp_path_factory.mktemp("demo-workdir")
    data_dir = workdir / ".portal"
    running = Demo(data_dir, workdir / "demo.log")
    try:
        yield running
    finally:
        running.kill()
        stop_leftovers(data_dir)


def _link(output: str) -> str:
    match = re.match(r"(\S+/access/pt1\.[\w.-]+)\n\(link pl_\w{26}, expires ", output)
    assert match, output
    return match.group(1)


def test_links_from_the_demo_folder_open_the_demo(demo: Demo, tmp_path: Path) -> None:
    same_folder = portal("links", "create", *GREENFIELD_JANE, cwd=demo.data_dir.parent)
    assert same_folder.returncode == 0, same_folder.stderr
    elsewhere = portal("links", "create", *GREENFIELD_JANE, "--data-dir", str(demo.data_dir), cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stderr
    for result in (same_folder, elsewhere):
        link = _link(result.stdout)
        assert link.startswith(f"http://greenfield.portal.localhost:{demo.port}/access/pt1."), link
        opened = demo.get(link)
        assert opened.status_code == 303 and opened.headers["location"] == "/", opened.text
        assert opened.headers["set-cookie"].startswith("__Host-portal_session=")


def test_explicit_public_url_settings_win_over_the_demo(demo: Demo) -> None:
    env = clean_env(PORTAL_PUBLIC_SCHEME="https", PORTAL_PUBLIC_PORT="8443")
    result = portal("links", "create", *GREENFIELD_JANE, cwd=demo.data_dir.parent, env=env)
    assert result.returncode == 0, result.stderr
    assert _link(result.stdout).startswith("https://greenfield.portal.localhost:8443/access/pt1.")
    configured = demo.data_dir.parent / "portal.toml"
    configured.write_text('public_scheme = "https"\n', encoding="utf-8")
    try:
        result = portal("--config", str(configured), "links", "create", *GREENFIELD_JANE, cwd=demo.data_dir.parent)
    finally:
        configured.unlink()
    assert result.returncode == 0, result.stderr
    assert _link(result.stdout).startswith(f"https://greenfield.portal.localhost:{demo.port}/access/pt1.")


def test_operator_commands_take_the_demo_data_dir(demo: Demo, tmp_path: Path) -> None:
    where = ("--data-dir", str(demo.data_dir))
    created = portal("api-keys", "create", "--iso", "harbor", "--name", "beside the demo", *where, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    listed = portal("api-keys", "list", "--iso", "harbor", *where, cwd=tmp_path)
    assert listed.returncode == 0 and "beside the demo" in listed.stdout, listed.stderr
    plugins = portal("plugins", "list", "--merchant", "greenfield", *where, cwd=tmp_path)
    assert plugins.returncode == 0 and re.search(r"^plugin  cards .* on$", plugins.stdout, re.M), plugins.stderr
    audit = portal("audit", "verify", "--merchant", "greenfield", *where, cwd=tmp_path)
    assert audit.returncode == 0 and audit.stdout.startswith("greenfield: ok"), audit.stderr
    dry_run = portal("tenants", "apply", "tenants/demo.toml", "--dry-run", *where, cwd=Path(__file__).parents[2])
    assert dry_run.stdout == "0 change(s) (dry run, nothing written).\n", dry_run.stdout + dry_run.stderr
    assert not (tmp_path / ".portal").exists()


def test_a_second_demo_on_the_same_folder_is_refused(demo: Demo, tmp_path: Path) -> None:
    port = free_port()
    result = portal("demo", "--port", str(port), "--data-dir", str(demo.data_dir), cwd=Path(__file__).parents[2])
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"already serves {demo.data_dir}" in result.stderr and f":{demo.port}/" in result.stderr
    assert demo.process.poll() is None


def test_the_demo_prints_and_serves_its_metrics(demo: Demo) -> None:
    demo.wait_for_output("Metrics:")
    found = re.search(r"^Metrics: +(http://127\.0\.0\.1:(\d+)/-/metrics)", demo.output(), re.M)
    assert found, demo.output()
    assert int(found.group(2)) != demo.port
    assert demo.get(f"http://greenfield.portal.localhost:{demo.port}/-/health").status_code == 200
    scraped = httpx.get(found.group(1), timeout=10)
    assert scraped.status_code == 200 and scraped.headers["cache-control"] == "no-store"
    values = {
        (sample.name, sample.labels.get("path")): sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
    }
    assert values[("portal_http_requests_total", "/-/health")] >= 1  # the web server's requests, in one process
    assert values[("portal_db_pool_size", None)] >= 1
    ready = httpx.get(found.group(1).replace("/-/metrics", "/-/ready"), timeout=10)
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    assert demo.get(f"http://greenfield.portal.localhost:{demo.port}/-/metrics").status_code == 404  # no token set
