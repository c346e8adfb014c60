"""``portal demo`` from a clean data folder: embedded PostgreSQL, demo tenants, branded pages."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parents[2]
LINK = re.compile(r"http://(?P<host>[a-z0-9-]+\.portal\.localhost:\d+)(?P<path>/access/pt1\.[A-Za-z0-9_.-]+)")
_cookies: dict[str, str] = {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """A running demo; yields its port and everything it printed before serving."""
    port = _free_port()
    data_dir = tmp_path_factory.mktemp("demo-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "demo", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                pytest.fail("demo exited early:\n" + "".join(output))
            output.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        else:
            pytest.fail("demo did not start within 60 s:\n" + "".join(output))
        yield port, "".join(output)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _get(port: int, host: str, path: str, cookie: str | None = None) -> httpx.Response:
    headers = {"Host": host}
    if cookie:
        headers["Cookie"] = cookie
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, follow_redirects=False, timeout=10)


def _sign_in(port: int, output: str, slug: str) -> str:
    """Open the slug's printed link once (links are single-use) and keep the session cookie."""
    if slug in _cookies:
        return _cookies[slug]
    match = next(m for m in LINK.finditer(output) if m.group("host").startswith(slug + "."))
    response = _get(port, match.group("host"), match.group("path"))
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-portal_session=") and "Secure" in cookie and "HttpOnly" in cookie
    _cookies[slug] = cookie.split(";", 1)[0]
    return _cookies[slug]


def test_demo_prints_a_link_for_every_demo_customer(demo: tuple[int, str]) -> None:
    _, output = demo
    hosts = [m.group("host").split(".")[0] for m in LINK.finditer(output)]
    assert sorted(hosts) == ["apex", "greenfield", "greenfield", "northwind", "pinnacle"]


def test_merchant_pages_carry_their_own_brand(demo: tuple[int, str]) -> None:
    port, output = demo
    pages = {}
    for slug in ("greenfield", "pinnacle"):
        cookie = _sign_in(port, output, slug)
        response = _get(port, f"{slug}.portal.localhost:{port}", "/", cookie)
        assert response.status_code == 200
        pages[slug] = response.text
    assert "--brand: #2e7d32" in pages["greenfield"] and "Greenfield Bakery" in pages["greenfield"]
    assert "--brand: #5b21b6" in pages["pinnacle"] and "Pinnacle SaaS Inc." in pages["pinnacle"]


def test_unknown_host_is_404_and_health_answers(demo: tuple[int, str]) -> None:
    port, _ = demo
    assert _get(port, f"unknown.portal.localhost:{port}", "/").status_code == 404
    assert _get(port, f"127.0.0.1:{port}", "/-/health").json() == {"status": "ok"}


def test_a_session_cookie_is_bound_to_its_merchant(demo: tuple[int, str]) -> None:
    port, output = demo
    cookie = _sign_in(port, output, "greenfield")
    response = _get(port, f"pinnacle.portal.localhost:{port}", "/", cookie)
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_email_sign_in_through_the_demo_mail_catcher(demo: tuple[int, str]) -> None:
    port, _ = demo
    host = f"apex.portal.localhost:{port}"
    form = _get(port, host, "/login")
    csrf_cookie = form.headers["set-cookie"].split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    sent = httpx.post(
        f"http://127.0.0.1:{port}/login",
        headers={"Host": host, "Cookie": csrf_cookie},
        data={"csrf_token": token, "email": "JANE@globalco.com"},
        timeout=10,
    )
    assert sent.status_code == 200 and "Check your email" in sent.text
    link = None
    for _ in range(100):
        inbox = _get(port, host, "/-/mail")
        if "Your sign-in link for Apex Auto Parts" in inbox.text:
            number = re.search(r'href="(/-/mail/\d+)"', inbox.text).group(1)  # type: ignore[union-attr]
            message = _get(port, host, number)
            link = re.search(r"http://apex\.portal\.localhost:\d+(/access/pt1\.[A-Za-z0-9_.-]+)", message.text)
            break
        time.sleep(0.1)
    assert link is not None, "no sign-in email arrived"
    landed = _get(port, host, link.group(1))
    assert landed.status_code == 303 and landed.headers["location"] == "/"
    assert _get(port, host, link.group(1)).status_code == 410  # single use


def test_jane_sees_her_two_subscriptions_at_greenfield(demo: tuple[int, str]) -> None:
    port, output = demo
    cookie = _sign_in(port, output, "greenfield")  # the first Greenfield link is Jane's
    host = f"greenfield.portal.localhost:{port}"
    listed = _get(port, host, "/subscriptions", cookie)
    assert listed.status_code == 200
    page = " ".join(re.sub(r"<[^>]+>", " ", listed.text).split())
    assert re.search(r"Monthly Bread Box Active .*\$39\.00 on [A-Z][a-z]{2} \d{1,2}, \d{4}", page), page
    assert re.search(r"Office Breakfast Plan Active .*\$2,890\.00 on [A-Z][a-z]{2} \d{1,2}, \d{4}", page), page
    overview = " ".join(re.sub(r"<[^>]+>", " ", _get(port, host, "/", cookie).text).split())
    assert "Subscriptions 2 active" in overview and "Next charge:" in overview
    feed = overview.split("Recent activity", 1)[1]
    lines = [
        r"Invoice INV-1117 issued \$3,420 · Due [A-Z][a-z]{2} \d{1,2}",
        r"Subscription Monthly Bread Box renewed \$39 · [A-Z][a-z]{2} \d{1,2}",
        r"Invoice INV-1115 paid \$1,240 · [A-Z][a-z]{2} \d{1,2}",
    ]
    assert re.match(" ".join(lines), feed.strip()), feed
