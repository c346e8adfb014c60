"""The link token codec and its verification: forgeries, tampering and time limits."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from security.conftest import GREENFIELD, NORTHWIND, PINNACLE, mint, tenant_at

from portal.access.links import LinkRefusedError, authenticate
from portal.access.tokens import Claims, TokenError, sign, verify
from portal.db.engine import tenant_transaction
from portal.ids import new_id

ids = st.builds(new_id, st.sampled_from(["iso", "mer", "cus"]))
claims_strategy = st.builds(
    Claims,
    iso=st.builds(new_id, st.just("iso")),
    merchant=st.builds(new_id, st.just("mer")),
    customer=st.builds(new_id, st.just("cus")),
    purpose=st.sampled_from(["portal", "update_payment", "switch"]),
    flow=st.one_of(st.none(), st.sampled_from(["payment_method_update", "invoice_pay"])),
    exp=st.integers(0, 2**40),
    iat=st.integers(0, 2**40),
    jti=st.text(string.ascii_letters + string.digits + "_-", min_size=8, max_size=64),
)
KID = new_id("lk")
SECRET = "lsk_property-test-secret"
ALPHABET = string.ascii_letters + string.digits + "_-."


@given(claims_strategy)
def test_round_trip(claims: Claims) -> None:
    assert verify(sign(claims, KID, SECRET), SECRET) == claims


@settings(max_examples=300)
@given(claims_strategy, st.data())
def test_no_single_character_mutation_is_accepted(claims: Claims, data: st.DataObject) -> None:
    token = sign(claims, KID, SECRET)
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from([c for c in ALPHABET if c != token[position]]))
    mutated = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(TokenError):
        verify(mutated, SECRET)


@given(claims_strategy, st.text(min_size=1, max_size=40))
def test_another_secret_never_verifies(claims: Claims, other: str) -> None:
    assume(other != SECRET)
    with pytest.raises(TokenError):
        verify(sign(claims, KID, SECRET), other)


def test_non_canonical_payloads_are_refused() -> None:
    import base64
    import hashlib
    import hmac

    payload = (
        base64.urlsafe_b64encode(
            b'{"merchant":"mer_01m890x55fevd0zf62q2tc7edd","iso":"iso_01m890x55ffckbrk8avw6m1h1d",'
            b'"customer":"cus_01m890x55fsjehz7pq21e4z4wt","purpose":"portal","flow":null,"exp":1,"iat":1,"jti":"abcdefgh"}'
        )
        .rstrip(b"=")
        .decode()
    )
    signed = f"pt1.{KID}.{payload}"
    mac = base64.urlsafe_b64encode(hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).digest())
    with pytest.raises(TokenError, match="canonical"):
        verify(f"{signed}.{mac.rstrip(b'=').decode()}", SECRET)


async def test_every_single_byte_changed_is_refused_by_the_portal(platform) -> None:
    tenant = await tenant_at(platform, GREENFIELD)
    token = await mint(platform, GREENFIELD)
    now = datetime.now(UTC)
    async with tenant_transaction(tenant.merchant.iso_id):
        assert (await authenticate(tenant, token, now)).merchant == tenant.merchant.id
        for position in range(len(token)):
            replacement = "A" if token[position] != "A" else "B"
            mutated = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(LinkRefusedError) as refused:
                await authenticate(tenant, mutated, now)
            assert refused.value.reason == "invalid", position


@pytest.mark.parametrize(
    ("changes", "reason", "status"),
    [
        ({"kid": new_id("lk")}, "invalid", 400),  # unknown key id
        ({"secret": "lsk_not-the-merchants-secret"}, "invalid", 400),  # wrong key
        ({"exp": 1_000_000_000, "iat": 999_999_000}, "expired", 410),
        ({"iat": 4_000_000_000, "exp": 4_000_000_600}, "not_yet_valid", 400),
        ({"exp": 4_000_000_000}, "invalid", 400),  # lives longer than a portal link may
    ],
    ids=["unknown-kid", "wrong-key", "expired", "not-yet-valid", "too-long"],
)
async def test_forged_or_stale_tokens_are_refused(platform, land, changes: dict, reason: str, status: int) -> None:
    token = await mint(platform, GREENFIELD, **changes)
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        with pytest.raises(LinkRefusedError) as refused:
            await authenticate(tenant, token, datetime.now(UTC))
    assert refused.value.reason == reason
    _, response = await land(GREENFIELD, token)
    assert response.status_code == status
    assert "__Host-portal_session" not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize("other_host", [PINNACLE, NORTHWIND], ids=["same-iso", "other-iso"])
async def test_a_token_works_only_on_its_own_merchants_host(platform, land, other_host: str) -> None:
    token = await mint(platform, GREENFIELD)
    _, response = await land(other_host, token)
    assert response.status_code == 400
    assert "__Host-portal_session" not in response.headers.get("set-cookie", "")
    _, response = await land(GREENFIELD, token)  # still unused, so it works at home
    assert response.status_code == 303


def test_access_logs_never_hold_a_token() -> None:
    import logging

    from portal.logs import FORMAT, SafeFormatter

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/access/pt1.lk_x.eyJhIjoxfQ.c2ln", "1.1", 303),
        None,
    )
    line = SafeFormatter(FORMAT).format(record)
    assert line.endswith('uvicorn.access: 127.0.0.1:5000 - "GET /access/… HTTP/1.1" 303')


async def test_a_link_signed_with_another_merchants_key_is_refused(platform, land) -> None:
    """A merchant's backend holds its own signing secret: it cannot mint links for another merchant."""
    from portal.access.keys import signing_key

    pinnacle = await tenant_at(platform, PINNACLE)
    async with tenant_transaction(pinnacle.merchant.iso_id):
        kid, secret = await signing_key(pinnacle.merchant.iso_id, pinnacle.merchant.id)
    token = await mint(platform, GREENFIELD, kid=kid, secret=secret)  # Greenfield's claims, Pinnacle's key
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        with pytest.raises(LinkRefusedError) as refused:
            await authenticate(tenant, token, datetime.now(UTC))
    assert refused.value.reason == "invalid"
    _, response = await land(GREENFIELD, token)
    assert response.status_code == 400
