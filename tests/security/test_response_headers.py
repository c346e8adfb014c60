"""Response headers: API answers are never cached, and pages turn off browser features they never use."""

from __future__ import annotations

from security.conftest import GREENFIELD, api_key, bearer

from portal.testing import customer_id

API = "api.portal.localhost"


async def test_answers_carrying_a_secret_or_a_link_are_not_stored(platform, portal_client) -> None:
    key = await api_key(platform, GREENFIELD)
    client = portal_client(API)
    endpoint = await client.post(
        "/api/v1/webhook-endpoints", json={"url": "https://hooks.example.com/ns"}, headers=bearer(key)
    )
    assert endpoint.status_code == 201 and endpoint.json()["secret"].startswith("whsec_")
    assert endpoint.headers["cache-control"] == "no-store"
    jane = await customer_id("t-greenfield", "jane@globalco.com")
    session = await client.post("/api/v1/portal-sessions", json={"customer": jane}, headers=bearer(key))
    assert session.status_code == 201 and "/access/" in session.json()["url"]
    assert session.headers["cache-control"] == "no-store"
    refused = await client.get("/api/v1/customers?email=x@y.z")
    assert refused.status_code == 401 and refused.headers["cache-control"] == "no-store"
    await client.delete(f"/api/v1/webhook-endpoints/{endpoint.json()['id']}", headers=bearer(key))


async def test_every_answer_turns_off_unused_browser_features(platform, portal_client) -> None:
    for host, path in ((GREENFIELD, "/login"), (API, "/api/v1/customers"), (GREENFIELD, "/nowhere")):
        response = await portal_client(host).get(path)
        policy = response.headers["permissions-policy"]
        features = dict(item.strip().split("=", 1) for item in policy.split(","))
        for feature in ("camera", "microphone", "geolocation", "usb", "browsing-topics"):
            assert features[feature] == "()", (path, feature)
        assert "payment" not in features
