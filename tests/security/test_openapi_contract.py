"""The OpenAPI document describes the API that is served, and schemathesis holds the API to it.

Schemathesis runs its stateless checks (examples, coverage and fuzzing phases) over every
operation of the document, against a live server, once with a merchant key and once with an ISO
key. A route added later is in the document, so it is covered without a new test.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from security.conftest import GREENFIELD, api_key, bearer, own_merchant, retire_webhooks

from portal.api.params import INT64_MAX
from portal.platform import Platform
from portal.testing import apply_tenants, customer_id
from support.browser import LivePortal, serving

API = "api.portal.localhost"
EVERY_CALL = {"400", "401", "403", "404", "422", "500", "503"}
PROBLEM_JSON = "application/problem+json"
SCHEMATHESIS_EXAMPLES = int(os.environ.get("PORTAL_SCHEMATHESIS_EXAMPLES", "25"))


CONTRACT = "t-contract-shop.portal.localhost"
TENANTS = own_merchant("t-contract", plugins=("cards", "payment_recovery"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(shared_tenants: Platform, tmp_path_factory) -> AsyncIterator[LivePortal]:
    """The API served live to schemathesis, for a merchant of its own; private destinations refused."""
    await apply_tenants(shared_tenants, TENANTS, tmp_path_factory.mktemp("contract"))
    try:
        async with serving(shared_tenants, webhook_allow_private=False) as live:
            yield live
    finally:
        await retire_webhooks(shared_tenants, CONTRACT)


@pytest_asyncio.fixture(loop_scope="session")
async def document(platform, portal_client) -> dict:
    response = await portal_client(API).get("/api/docs/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


async def test_every_operation_documents_its_problems_as_problem_json(document) -> None:
    found = list(operations(document))
    assert len(found) >= 15
    for path, method, operation in found:
        responses = operation["responses"]
        assert path.startswith("/api/v1/")
        assert set(responses) >= EVERY_CALL, (method, path, sorted(responses))
        if "requestBody" in operation:
            assert "413" in responses, (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == [PROBLEM_JSON], (method, path, status)
                schema = response["content"][PROBLEM_JSON]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}


async def test_conflicts_and_the_csv_export_are_described_as_served(document) -> None:
    paths = document["paths"]
    assert "409" in paths["/api/v1/customers"]["post"]["responses"]
    assert "409" in paths["/api/v1/customers/{customer_id}"]["patch"]["responses"]
    assert "409" in paths["/api/v1/webhook-deliveries/{delivery_id}/replay"]["post"]["responses"]
    csv = paths["/api/v1/audit-events.csv"]["get"]["responses"]["200"]["content"]
    assert list(csv) == ["text/csv"]
    assert csv["text/csv"]["schema"]["type"] == "string"


async def test_integer_parameters_fit_the_database(document) -> None:
    """Every integer parameter says its bounds, and they fit PostgreSQL's bigint."""
    checked = 0
    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]
            options = schema.get("oneOf", [schema])
            for option in options:
                if option.get("type") == "integer":
                    maximum = option.get("maximum", schema.get("maximum", INT64_MAX + 1))
                    assert maximum <= INT64_MAX, (method, path, parameter["name"], schema)
                    checked += 1
    assert checked >= 3, "the API's integer parameters (limit, starting_after) were not found"


async def test_time_fields_are_strict_rfc3339_with_a_zone(platform, portal_client, document) -> None:
    audit = {p["name"]: p["schema"] for p in document["paths"]["/api/v1/audit-events"]["get"]["parameters"]}
    for name in ("since", "until"):
        schema = next(option for option in audit[name].get("oneOf", [audit[name]]) if option.get("type") == "string")
        assert "pattern" in schema or "pattern" in audit[name], audit[name]
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    for query in ("until=0.5", "since=0", "since=2026-01-01T00:00:00", "since=2026-02-30T00:00:00Z"):
        response = await client.get(f"/api/v1/audit-events?{query}", headers=bearer(key))
        assert response.status_code == 400, (query, response.text)
    ok = await client.get(
        "/api/v1/audit-events?since=2026-01-01T00:00:00Z&until=2999-01-01T00:00:00%2B01:00", headers=bearer(key)
    )
    assert ok.status_code == 200
    for since in (0, 0.5, "2026-01-01T00:00:00", "yesterday"):
        replay = await client.post("/api/v1/webhook-deliveries/replay", json={"since": since}, headers=bearer(key))
        assert replay.status_code == 400, (since, replay.text)
        assert "since" in replay.json()["detail"]


async def test_options_allows_exactly_the_methods_served(platform, portal_client, document) -> None:
    client = portal_client(API)
    jane = await customer_id("t-greenfield", "jane@globalco.com")
    for path, methods in document["paths"].items():
        concrete = path.replace("{customer_id}", jane).replace("{", "x").replace("}", "")
        response = await client.options(concrete)
        assert response.status_code == 204, path
        allowed = {method.strip() for method in response.headers["allow"].split(",")}
        assert allowed == {method.upper() for method in methods} | {"OPTIONS"}, path


async def run_schemathesis(live: LivePortal, key: str, tmp_path: Path) -> tuple[int, str]:
    api_host = f"{API}:{live.port}"
    report = tmp_path / "schemathesis.txt"
    with report.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "schemathesis.cli", "run",
            f"http://127.0.0.1:{live.port}/api/docs/openapi.json",
            "--header", f"Host: {api_host}",
            "--header", f"Authorization: Bearer {key}",
            "--checks", "all",
            "--exclude-checks", "positive_data_acceptance,use_after_free,ensure_resource_availability",
            "--phases", "examples,coverage,fuzzing",
            "--mode", "all",
            "--max-examples", str(SCHEMATHESIS_EXAMPLES),
            "--seed", "20261204",
            "--generation-allow-x00", "true",
            "--request-timeout", "20",
            "--workers", "1",
            "--no-color",
            stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"},
        )  # fmt: skip
        code = await process.wait()
    return code, report.read_text()


@pytest.mark.parametrize("kind", ["merchant key", "iso key"])
async def test_schemathesis_finds_nothing(served, platform, kind, tmp_path) -> None:
    key = await api_key(platform, CONTRACT if kind == "merchant key" else None, iso_host=CONTRACT)
    code, output = await run_schemathesis(served, key, tmp_path)
    assert code == 0, output[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated is not None and int(generated.group(1)) > 100, output[-3000:]
    assert generated.group(1) == generated.group(2), output[-3000:]


async def test_every_write_documents_its_idempotency_key_and_the_409(document) -> None:
    writes = [(path, method, op) for path, method, op in operations(document) if method in ("post", "patch", "delete")]
    assert len(writes) >= 20, "the API's writes are found"
    for path, method, operation in writes:
        headers = [p for p in operation.get("parameters", []) if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        assert len(headers) == 1 and headers[0]["required"] is False, (method, path)
        assert "409" in operation["responses"], (method, path)
    reads = [op for path, method, op in operations(document) if method == "get"]
    assert all(not any(p["name"] == "Idempotency-Key" for p in op.get("parameters", [])) for op in reads), (
        "reads take no Idempotency-Key"
    )
