"""Delivery in this process: outcomes, retries, signatures, refusals, replay and the poller."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import asyncpg
import msgspec
import pytest
from reliability.conftest import (
    HookMerchant,
    Receiver,
    Reply,
    Request,
    add_endpoint,
    attempts,
    deliveries,
    emit_events,
    make_due,
    payload_of,
    settled,
)
from standardwebhooks import Webhook

from portal.db.engine import tenant_transaction
from portal.events.delivery import MAX_ATTEMPTS, SCHEDULE, deliver_due, parse_retry_after
from portal.events.destinations import DestinationRefusedError, check_destination
from portal.events.replay import ReplayError, replay, replay_since
from portal.events.signing import new_secret, sign, signature_header
from portal.mail import MailCatcher
from portal.tasks.worker import run_worker


def script(*replies: Reply | float) -> Any:
    """Answer requests in order (a float sleeps that long, then answers 200); 200 after the last."""
    queue = list(replies)

    async def respond(_: Request) -> Reply:
        reply = queue.pop(0) if queue else (200, {}, b"ok")
        if isinstance(reply, float):
            await asyncio.sleep(reply)
            return 200, {}, b"late"
        return reply

    return respond


async def test_signing_matches_the_reference_package() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 32
    timestamp = int(time.time())
    body = '{"a":"ü"}'
    reference = Webhook(secret).sign("msg_1", datetime.fromtimestamp(timestamp, UTC), body)
    assert sign(secret, "msg_1", timestamp, body) == reference
    other = new_secret()
    assert (
        signature_header([secret, other], "msg_1", timestamp, body)
        == f"{reference} {sign(other, 'msg_1', timestamp, body)}"
    )
    assert len(SCHEDULE) == 9 and MAX_ATTEMPTS == 10
    assert SCHEDULE[0] == timedelta(seconds=5) and SCHEDULE[-1] == timedelta(hours=24)


async def test_success_delivers_the_exact_body_signed(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    [event_id] = await emit_events(merchant)
    assert await deliver_due(hooks, merchant.iso_id) >= 1
    [request] = receiver.requests
    [row] = await deliveries(owner, endpoint)
    assert request.verified and not receiver.failures
    assert request.method == "POST" and request.path == "/hook"
    assert request.body == row["payload"].encode()
    assert request.msg_id == row["id"] and row["id"].startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 10
    assert request.headers["webhook-signature"].startswith("v1,") and " " not in request.headers["webhook-signature"]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "portal-webhooks/1"
    body = payload_of(request)
    assert body["id"] == event_id and body["type"] == "customer.updated"
    assert body["data"]["object"]["name"] == "Customer Ünïcode 0"
    assert row["status"] == "succeeded" and row["attempts"] == 1 and row["delivered_at"] is not None
    [attempt] = await attempts(owner, row["id"])
    assert attempt["status_code"] == 200 and attempt["response_excerpt"] == "ok" and attempt["error"] is None


async def test_a_500_is_retried_and_then_succeeds(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    receiver.respond = script((500, {}, b"boom" * 1000))
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    await emit_events(merchant)
    started = datetime.now(UTC)
    await deliver_due(hooks, merchant.iso_id)
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "pending" and row["attempts"] == 1 and row["last_status"] == 500
    assert started + timedelta(seconds=4) <= row["next_attempt_at"] <= datetime.now(UTC) + timedelta(seconds=6)
    failing = await owner.fetchval("SELECT failing_since FROM portal_webhook_endpoint WHERE id = $1", endpoint)
    assert failing is not None
    assert await deliver_due(hooks, merchant.iso_id) == 0  # not due yet
    await make_due(owner, endpoint)
    await deliver_due(hooks, merchant.iso_id)
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "succeeded" and row["attempts"] == 2
    first, second = await attempts(owner, row["id"])
    assert first["status_code"] == 500 and len(first["response_excerpt"]) == 2048
    assert second["status_code"] == 200
    assert receiver.ids() == [row["id"], row["id"]] and all(r.verified for r in receiver.requests)
    assert await owner.fetchval("SELECT failing_since FROM portal_webhook_endpoint WHERE id = $1", endpoint) is None


async def test_a_timeout_is_recorded_and_retried(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    receiver.respond = script(3.0)
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    await emit_events(merchant)
    began = time.monotonic()
    await deliver_due(hooks, merchant.iso_id)
    assert time.monotonic() - began < 2.5
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "pending" and row["last_status"] is None and "timed out" in row["last_error"]
    [attempt] = await attempts(owner, row["id"])
    assert attempt["status_code"] is None and "timed out after 1 s" in attempt["error"]
    assert 900 <= attempt["latency_ms"] < 2500
    await make_due(owner, endpoint)
    await deliver_due(hooks, merchant.iso_id)
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "succeeded" and row["attempts"] == 2


async def test_odd_response_bodies_are_stored_safely(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    receiver.respond = script((200, {}, b"ok\x00\xff" + b"x" * 5000))
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    await emit_events(merchant)
    await deliver_due(hooks, merchant.iso_id)
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "succeeded"
    [attempt] = await attempts(owner, row["id"])
    assert attempt["response_excerpt"].startswith("ok\ufffd\ufffd") and len(attempt["response_excerpt"]) == 2048


async def test_410_disables_the_endpoint(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    receiver.respond = script((410, {}, b"gone"))
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    await emit_events(merchant)
    await deliver_due(hooks, merchant.iso_id)
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "cancelled" and row["last_status"] == 410
    enabled, reason = await owner.fetchrow(
        "SELECT enabled, disabled_reason FROM portal_webhook_endpoint WHERE id = $1", endpoint
    )
    assert enabled is False and "410" in reason
    await emit_events(merchant)  # a disabled endpoint gets nothing more
    assert len(await deliveries(owner, endpoint)) == 1
    with pytest.raises(ReplayError):
        await replay(hooks, merchant.iso_id, merchant.id, row["id"])


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_honoured(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection, status: int
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    header = "120" if status == 429 else format_datetime(later, usegmt=True)
    receiver.respond = script((status, {"retry-after": header}, b"slow down"))
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    await emit_events(merchant)
    answered = datetime.now(UTC)
    await deliver_due(hooks, merchant.iso_id)
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "pending" and row["last_status"] == status
    if status == 429:
        assert row["next_attempt_at"] >= answered + timedelta(seconds=120)
        assert row["next_attempt_at"] <= datetime.now(UTC) + timedelta(seconds=125)
    else:
        assert row["next_attempt_at"] >= later - timedelta(seconds=1)
    assert parse_retry_after("999999") == timedelta(seconds=999999)  # the cap applies when scheduling
    assert parse_retry_after("soon") is None


async def test_retry_after_is_capped_at_a_day(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    receiver.respond = script((429, {"retry-after": str(7 * 86400)}, b""))
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    await emit_events(merchant)
    await deliver_due(hooks, merchant.iso_id)
    [row] = await deliveries(owner, endpoint)
    assert row["next_attempt_at"] <= datetime.now(UTC) + timedelta(hours=24, seconds=5)
    assert row["next_attempt_at"] >= datetime.now(UTC) + timedelta(hours=23)


async def test_redirects_are_not_followed(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    receiver.respond = script((302, {"location": f"http://127.0.0.1:{receiver.port}/elsewhere"}, b""))
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    await emit_events(merchant)
    await deliver_due(hooks, merchant.iso_id)
    assert [r.path for r in receiver.requests] == ["/hook"]
    [row] = await deliveries(owner, endpoint)
    assert (
        row["status"] == "pending" and row["last_status"] == 302 and "redirects are not followed" in row["last_error"]
    )


async def test_private_destinations_are_refused_unless_allowed(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    strict = type(hooks)(hooks.platform, msgspec.structs.replace(hooks.settings, webhook_allow_private=False))
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    await emit_events(merchant)
    began = datetime.now(UTC)
    await deliver_due(strict, merchant.iso_id)
    assert receiver.requests == []
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["next_attempt_at"] >= began + timedelta(seconds=4)  # per schedule, no tight retry loop
    [attempt] = await attempts(owner, row["id"])
    assert (
        attempt["status_code"] is None and "destination refused" in attempt["error"] and "127.0.0.1" in attempt["error"]
    )
    for url in (
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost:9/",
        "http://192.168.0.10/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "ftp://example.com/",
    ):
        with pytest.raises(DestinationRefusedError):
            await check_destination(url)
    await check_destination("https://93.184.216.34/hook")  # a public literal needs no lookup
    await make_due(owner, endpoint)
    await deliver_due(hooks, merchant.iso_id)  # allowed: delivered
    assert len(receiver.requests) == 1 and receiver.requests[0].verified


async def test_a_rolled_back_transaction_sends_nothing(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    from portal.events.bus import SYSTEM, emit

    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with tenant_transaction(merchant.iso_id):
            event = await emit(
                merchant.merchant,
                "customer.updated",
                {
                    "id": "cus_rollback",
                    "merchant": merchant.id,
                    "email": "r@example.test",
                    "name": "R",
                    "external_ref": None,
                },
                actor=SYSTEM,
                enabled_plugins=frozenset(),
            )
            assert event.deliveries == 1
            raise Abort
    assert await deliveries(owner, endpoint) == []
    assert await owner.fetchval("SELECT count(*) FROM portal_audit_event WHERE id = $1", event.id) == 0
    # An event committed after it is delivered, and it alone: the rolled-back one was never queued.
    [committed] = await emit_events(merchant)
    await deliver_due(hooks, merchant.iso_id)
    assert [payload["id"] for payload in receiver.events()] == [committed] and not receiver.failures
    assert [(row["event_id"], row["status"]) for row in await deliveries(owner, endpoint)] == [(committed, "succeeded")]


async def test_dual_signatures_during_rotation(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    old, new = receiver.secrets[0], new_secret()
    receiver.secrets = [new, old]
    endpoint = await add_endpoint(merchant, receiver.url, new, previous_secret=old, previous_until_hours=24)
    await emit_events(merchant)
    await deliver_due(hooks, merchant.iso_id)
    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert receiver.verify_with(old, request) and receiver.verify_with(new, request)
    # Once the overlap ends only the current secret signs.
    await owner.execute(
        "UPDATE portal_webhook_endpoint SET previous_secret_until = now() - interval '1 second' WHERE id = $1", endpoint
    )
    await emit_events(merchant)
    await deliver_due(hooks, merchant.iso_id)
    latest = receiver.requests[-1]
    assert len(receiver.requests) == 2 and len(latest.headers["webhook-signature"].split(" ")) == 1
    assert receiver.verify_with(new, latest) and not receiver.verify_with(old, latest)


async def test_the_last_attempt_fails_the_message(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    receiver.respond = script((500, {}, b""))
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    await emit_events(merchant)
    await owner.execute(
        "UPDATE portal_webhook_delivery SET attempts = $2 WHERE endpoint_id = $1", endpoint, MAX_ATTEMPTS - 1
    )
    await deliver_due(hooks, merchant.iso_id)
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "failed" and row["attempts"] == MAX_ATTEMPTS and row["next_attempt_at"] is None


async def test_an_endpoint_failing_for_days_is_disabled_and_the_merchant_emailed(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection, portal_mail: MailCatcher
) -> None:
    receiver.respond = script((500, {}, b"boom"))  # the response body must not reach the email
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    await owner.execute(
        "UPDATE portal_webhook_endpoint SET failing_since = now() - interval '6 days' WHERE id = $1", endpoint
    )
    await emit_events(merchant)
    await deliver_due(hooks, merchant.iso_id)
    enabled, reason = await owner.fetchrow(
        "SELECT enabled, disabled_reason FROM portal_webhook_endpoint WHERE id = $1", endpoint
    )
    assert enabled is False and "failing for more than 5 days" in reason
    [row] = await deliveries(owner, endpoint)
    assert row["status"] == "cancelled"
    to = str(merchant.merchant.brand.support_email)
    mails = [m for m in portal_mail.messages if to in m.envelope_to]
    assert len(mails) == 1
    message = mails[0].message
    assert "webhook endpoint" in str(message["Subject"])
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert receiver.url in text and "failing for more than 5 days" in text
    assert "boom" not in text and receiver.secrets[0] not in text


async def test_replay_one_and_replay_since(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    await emit_events(merchant, 3)
    await deliver_due(hooks, merchant.iso_id)
    first = await deliveries(owner, endpoint)
    assert [row["status"] for row in first] == ["succeeded"] * 3
    again = await replay(hooks, merchant.iso_id, merchant.id, first[0]["id"])
    assert again.startswith("msg_") and again != first[0]["id"]
    await deliver_due(hooks, merchant.iso_id)
    assert receiver.requests[-1].msg_id == again
    assert receiver.requests[-1].body == first[0]["payload"].encode()
    assert len(await replay_since(hooks, merchant.iso_id, merchant.id, since)) == 3  # one per event, not per copy
    assert await replay_since(hooks, merchant.iso_id, merchant.id, since, endpoint_id="we_none") == []
    await deliver_due(hooks, merchant.iso_id)
    assert len(receiver.requests) == 3 + 1 + 3 and all(r.verified for r in receiver.requests)
    assert len(set(receiver.ids())) == 7
    with pytest.raises(ReplayError):
        await replay(hooks, merchant.iso_id, "mer_other", first[0]["id"])


async def test_the_poller_delivers_without_a_kick(
    hooks: Any, merchant: HookMerchant, receiver: Receiver, owner: asyncpg.Connection
) -> None:
    endpoint = await add_endpoint(merchant, receiver.url, receiver.secrets[0])
    poller = asyncio.create_task(run_worker(hooks, poll_interval=0.1))
    try:
        await emit_events(merchant, 5)
        await receiver.wait_for(lambda: len(receiver.requests) >= 5, 10, "the poller to deliver")
        # Settled in the database: none can be claimed, so none can be sent, again.
        rows = await settled(owner, endpoint, 5, 10)
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
    assert len(receiver.requests) == 5 and len(set(receiver.ids())) == 5
    assert {row["status"] for row in rows} == {"succeeded"} and {row["attempts"] for row in rows} == {1}
