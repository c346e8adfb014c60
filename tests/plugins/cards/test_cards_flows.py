"""The update-after-a-failed-charge flow, merchant settings, a missing gateway and the CSP."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from plugins.cards.conftest import (
    EXPIRED,
    GREENFIELD,
    MASTERCARD,
    VISA,
    Shopper,
    cards_of,
    events_of,
    tenant_at,
    vault_cards,
)

import support.card_required_plugin as card_required
from portal.access.links import issue_link
from portal.db.engine import fetch, tenant_transaction
from portal.testing import apply_tenants, sign_in


def _card(response) -> str:
    assert response.status_code == 303, response.text
    return re.search(r"card=(pm_[0-9a-z]+)", response.headers["location"]).group(1)  # type: ignore[union-attr]


async def test_an_update_payment_link_replaces_the_default_card_and_closes(platform, shopper, portal_client) -> None:
    jane = await shopper()
    old = _card(await jane.add(VISA))
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        link = await issue_link(platform.settings, tenant, jane.id, purpose="update_payment")
    assert (link.expires_at - datetime.now(UTC)).days == 6  # seven days, less the seconds elapsed

    browser = portal_client(GREENFIELD)
    landing = await browser.get(f"/access/{link.token}")
    assert landing.status_code == 303 and landing.headers["location"] == "/payment-methods/update"
    page = await browser.get("/payment-methods/update")
    assert page.status_code == 200 and "Update your card" in page.text and "to charge from now on" in page.text

    updater = Shopper(browser, jane.id)
    token = await updater.tokenize(MASTERCARD)
    response = await browser.post(
        "/payment-methods/update",
        data={"csrf_token": await updater.csrf("/payment-methods/update"), "payment_token": token},
    )
    new = _card(response)
    assert response.headers["location"] == f"/payment-methods?done=updated&card={new}"
    done = await browser.get(response.headers["location"])
    assert "Mastercard ending in 4444 is now your default card. Thank you for updating it." in done.text

    rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
    assert rows[new]["is_default"] and not rows[old]["is_default"]
    last = (await events_of(platform, GREENFIELD, jane.id))[-1]
    assert last["data"] == {"id": new, "customer": jane.id, "previous": old, "reason": "replaced"}

    reopened = await portal_client(GREENFIELD).get(f"/access/{link.token}")
    assert reopened.status_code == 410 and "The task it was for is done" in reopened.text


async def test_a_refused_update_keeps_the_link_open(platform, shopper, portal_client) -> None:
    jane = await shopper()
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        link = await issue_link(platform.settings, tenant, jane.id, purpose="update_payment")
    browser = portal_client(GREENFIELD)
    await browser.get(f"/access/{link.token}")
    updater = Shopper(browser, jane.id)
    response = await browser.post(
        "/payment-methods/update",
        data={
            "csrf_token": await updater.csrf("/payment-methods/update"),
            "payment_token": await updater.tokenize(EXPIRED),
        },
    )
    page = await updater.follow(response, "/payment-methods/update?error=card_expired")
    assert "Card not updated:</strong> This card has expired" in page.text and "data-tokenization-key" in page.text
    again = await portal_client(GREENFIELD).get(f"/access/{link.token}")
    assert again.status_code == 303  # not fulfilled: the customer can still come back


def _merchant_toml(slug: str, *, gateway: str, cards: str, brand: str = "") -> str:
    return f"""
[[isos]]
slug = "{slug}-iso"
name = "Settings ISO"

[[isos.merchants]]
slug = "{slug}"
name = "Settings Shop"
{brand}
{gateway}
[isos.merchants.plugins.cards]
{cards}
[[isos.merchants.customers]]
email = "jane@globalco.com"
name = "Jane Cooper"
"""


async def _signed_in(platform, portal_client, slug: str):
    client = portal_client(f"{slug}.portal.localhost")
    tenant = await tenant_at(platform, f"{slug}.portal.localhost")
    customer = await sign_in(platform, client, "jane@globalco.com")
    assert tenant.merchant.slug == slug
    return Shopper(client, customer)


async def _at_the_limit(platform, portal_client, tmp_path, cards: str, brand: str = "") -> tuple[Shopper, str, str]:
    """Jane at a new sandbox merchant with ``cards`` settings, holding as many cards as allowed (one).

    Returns her session, her card's id and the merchant's host."""
    slug = f"t-limits-{secrets.token_hex(3)}"
    gateway = '[isos.merchants.gateway]\nkey = "sandbox"'
    await apply_tenants(platform, _merchant_toml(slug, gateway=gateway, cards=cards, brand=brand), tmp_path)
    jane = await _signed_in(platform, portal_client, slug)
    return jane, _card(await jane.add(VISA)), f"{slug}.portal.localhost"


async def test_merchant_settings_limit_cards_and_removal(platform, portal_client, tmp_path) -> None:
    jane, card, host = await _at_the_limit(
        platform,
        portal_client,
        tmp_path,
        cards="settings = { max_cards = 1, allow_remove = false }",
        brand='[isos.merchants.brand]\nsupport_email = "help@settings-shop.test"',
    )
    listing = await jane.client.get("/payment-methods")
    assert '/remove"' not in listing.text and 'href="/payment-methods/new"' not in listing.text
    assert "Add a card" not in listing.text
    # nothing the customer cannot do is offered: removing is off, so the merchant is the way
    assert "Remove one" not in listing.text
    assert (
        "You have as many cards on file as allowed (1). "
        "To add another, please contact Settings Shop at help@settings-shop.test." in listing.text
    )

    # the add page is not offered at the limit: it sends the customer to the list, saying why
    page = await jane.follow(await jane.client.get("/payment-methods/new"), "/payment-methods?error=limit")
    assert 'role="alert"' in page.text and "data-tokenization-key" not in page.text
    assert (
        "You can keep up to 1 card on file. To add another, please contact Settings Shop at help@settings-shop.test."
        in page.text
    )
    assert "Remove one" not in page.text

    # a card submitted anyway (a form left open in another tab) is refused the same way, and not vaulted
    form = {
        "csrf_token": await jane.csrf(),
        "payment_token": await jane.tokenize(MASTERCARD, form="/payment-methods/update"),
    }
    refused = await jane.client.post("/payment-methods", data=form)
    assert refused.status_code == 303 and refused.headers["location"] == "/payment-methods?error=limit"
    removal = await jane.post(f"/payment-methods/{card}/remove")
    assert removal.status_code == 403 and "Removing cards is not available here." in removal.text
    rows = await cards_of(platform, host, jane.id)
    assert [r["id"] for r in rows] == [card]
    assert len(await vault_cards(platform, host, rows[0]["vault_id"])) == 1


async def test_at_the_limit_without_a_support_address_the_merchant_is_named(platform, portal_client, tmp_path) -> None:
    jane, _, _ = await _at_the_limit(
        platform, portal_client, tmp_path, cards="settings = { max_cards = 1, allow_remove = false }"
    )
    page = await jane.follow(await jane.client.get("/payment-methods/new"), "/payment-methods?error=limit")
    assert "You can keep up to 1 card on file. To add another, please contact Settings Shop." in page.text
    assert page.text.count("please contact Settings Shop") == 1  # the note below does not repeat the alert


async def test_at_the_limit_with_removal_allowed_the_page_says_remove_one(platform, portal_client, tmp_path) -> None:
    jane, card, _ = await _at_the_limit(platform, portal_client, tmp_path, cards="settings = { max_cards = 1 }")
    listing = await jane.client.get("/payment-methods")
    assert (
        'href="/payment-methods/new"' not in listing.text and f'href="/payment-methods/{card}/remove"' in listing.text
    )
    assert "You have as many cards on file as allowed (1). Remove one to add another." in listing.text
    page = await jane.follow(await jane.client.get("/payment-methods/new"), "/payment-methods?error=limit")
    assert "You can keep up to 1 card on file. Remove one to add another." in page.text
    assert "please contact" not in page.text

    assert (await jane.post(f"/payment-methods/{card}/remove")).status_code == 303  # room again: the form is back
    form = await jane.client.get("/payment-methods/new")
    assert form.status_code == 200 and "data-tokenization-key" in form.text
    listing = await jane.client.get("/payment-methods?error=limit")  # an old error that no longer applies
    assert 'role="alert"' not in listing.text and 'href="/payment-methods/new"' in listing.text


async def test_without_a_gateway_the_pages_say_payments_are_not_set_up(platform, portal_client, tmp_path) -> None:
    slug = f"t-nogateway-{secrets.token_hex(3)}"
    await apply_tenants(platform, _merchant_toml(slug, gateway="", cards=""), tmp_path)
    jane = await _signed_in(platform, portal_client, slug)
    listing = await jane.client.get("/payment-methods")
    assert listing.status_code == 200 and "card payments are not set up" in listing.text
    form = await jane.client.get("/payment-methods/new")
    assert form.status_code == 503 and "Card payments are not set up for this merchant yet" in form.text
    assert "data-tokenization-key" not in form.text
    submitted = await jane.post("/payment-methods", payment_token="sbx_tok_x")
    assert submitted.status_code == 503


async def test_the_card_form_allows_only_the_gateways_script_origin(platform, portal_client, tmp_path) -> None:
    slug = f"t-nmi-{secrets.token_hex(3)}"
    gateway = (
        '[isos.merchants.gateway]\nkey = "nmi"\n'
        'settings = { security_key = "sk-test-123", tokenization_key = "tok-abc-123" }'
    )
    await apply_tenants(platform, _merchant_toml(slug, gateway=gateway, cards=""), tmp_path)
    jane = await _signed_in(platform, portal_client, slug)
    form = await jane.client.get("/payment-methods/new")
    assert form.status_code == 200
    policy = form.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)  # type: ignore[union-attr]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == f"'self' 'nonce-{nonce}' https://secure.nmi.com"
    assert directives["frame-src"] == "'self' https://secure.nmi.com"
    assert directives["connect-src"] == "'self' https://secure.nmi.com"
    assert re.search(
        rf'<script src="https://secure.nmi.com/token/Collect.js" nonce="{nonce}" data-tokenization-key="tok-abc-123"',
        form.text,
    )
    assert "sk-test-123" not in form.text  # the security key never reaches a page
    assert "Test mode:" not in form.text
    listing = await jane.client.get("/payment-methods")
    assert "secure.nmi.com" not in listing.headers["content-security-policy"]


async def test_the_sandbox_form_needs_no_outside_origin(platform, shopper) -> None:
    jane = await shopper()
    form = await jane.client.get("/payment-methods/new")
    directives = dict(part.strip().split(" ", 1) for part in form.headers["content-security-policy"].split(";"))
    assert re.fullmatch(r"'self' 'nonce-[^']+'", directives["script-src"])
    assert directives["connect-src"] == directives["frame-src"] == "'self'"
    assert 'src="/sandbox-gateway/collect.js"' in form.text
    assert "Test mode:" in form.text and "no real charges" in form.text


async def test_a_card_expiring_this_month_is_flagged(platform, shopper) -> None:
    jane = await shopper()
    now = datetime.now(UTC)
    await jane.add(VISA, exp=f"{now.month:02d} / {now.year % 100:02d}")
    listing = await jane.client.get("/payment-methods")
    assert "Expires soon</span>" in listing.text and "Expiring soon:" in listing.text
    overview = await jane.client.get("/")
    assert "Expiring soon:" in overview.text


async def test_customers_of_one_merchant_have_separate_vaults(platform, shopper) -> None:
    jane = await shopper()
    sam = await shopper(name="Sam")
    await jane.add(VISA)
    await sam.add(VISA)
    mine = (await cards_of(platform, GREENFIELD, jane.id))[0]
    theirs = (await cards_of(platform, GREENFIELD, sam.id))[0]
    assert mine["vault_id"] != theirs["vault_id"]


async def test_a_card_that_has_since_expired_cannot_become_the_default(platform, shopper) -> None:
    jane = await shopper()
    first = _card(await jane.add(VISA))
    old = _card(await jane.add(MASTERCARD))
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):  # time passes: the card's expiry is behind us
        await fetch("UPDATE portal_payment_method SET exp_month = 1, exp_year = 2020 WHERE id = $1", old)
    listing = await jane.client.get("/payment-methods")
    assert (
        "Expired</span>" in listing.text and "Mastercard ending in 4444 expired at the end of 01/2020" in listing.text
    )
    assert f'action="/payment-methods/{old}/default"' not in listing.text
    response = await jane.post(f"/payment-methods/{old}/default")
    page = await jane.follow(response, f"/payment-methods?error=expired_default&card={old}")
    assert "Mastercard ending in 4444 has expired, so it cannot be your default card. Add a new card instead." in (
        page.text
    )
    rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
    assert rows[first]["is_default"] and not rows[old]["is_default"]


async def test_removing_the_default_never_promotes_an_expired_card(platform, shopper) -> None:
    jane = await shopper()
    first = _card(await jane.add(VISA))
    old = _card(await jane.add(MASTERCARD))
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        await fetch("UPDATE portal_payment_method SET exp_month = 1, exp_year = 2020 WHERE id = $1", old)
    assert (await jane.post(f"/payment-methods/{first}/remove")).status_code == 303
    rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
    assert not rows[old]["is_default"] and rows[old]["removed_at"] is None
    last = (await events_of(platform, GREENFIELD, jane.id))[-1]
    assert last["data"] == {"id": None, "customer": jane.id, "previous": first, "reason": "removed"}


async def test_at_the_card_limit_an_update_replaces_the_failing_card(platform, portal_client, tmp_path) -> None:
    slug = f"t-one-card-{secrets.token_hex(3)}"
    toml = _merchant_toml(
        slug, gateway='[isos.merchants.gateway]\nkey = "sandbox"', cards="settings = { max_cards = 1 }"
    )
    await apply_tenants(platform, toml, tmp_path)
    host = f"{slug}.portal.localhost"
    jane = await _signed_in(platform, portal_client, slug)
    old = _card(await jane.add(VISA))
    card_required.SUBSCRIBED[jane.id] = "Monthly Bread Box"
    try:
        removal = await jane.post(f"/payment-methods/{old}/remove")
        page = await jane.follow(removal, f"/payment-methods/{old}/remove?error=card_required")
        assert "You can replace it with another card instead." in page.text
        assert 'href="/payment-methods/update">Replace this card</a>' in page.text

        update = await jane.client.get("/payment-methods/update")
        assert "replaces your current default card" in update.text
        response = await jane.client.post(
            "/payment-methods/update",
            data={
                "csrf_token": await jane.csrf("/payment-methods/update"),
                "payment_token": await jane.tokenize(MASTERCARD, form="/payment-methods/update"),
            },
        )
        new = _card(response)
    finally:
        card_required.SUBSCRIBED.pop(jane.id, None)
    rows = {r["id"]: r for r in await cards_of(platform, host, jane.id)}
    assert rows[new]["is_default"] and rows[new]["removed_at"] is None
    assert rows[old]["removed_at"] is not None
    events = await events_of(platform, host, jane.id)
    assert [e["type"] for e in events[-3:]] == [
        "payment_method.added",
        "payment_method.default_changed",
        "payment_method.removed",
    ]
    assert events[-2]["data"]["reason"] == "replaced" and events[-1]["data"]["id"] == old


async def _update_link_session(platform, portal_client, customer_id: str) -> tuple[Shopper, str]:
    """A browser that opened an ``update_payment`` link for the customer, and the link's token."""
    tenant = await tenant_at(platform, GREENFIELD)
    async with tenant_transaction(tenant.merchant.iso_id):
        link = await issue_link(platform.settings, tenant, customer_id, purpose="update_payment")
    browser = portal_client(GREENFIELD)
    assert (await browser.get(f"/access/{link.token}")).status_code == 303
    return Shopper(browser, customer_id), link.token


async def _submit_update(updater: Shopper, number: str):
    token = await updater.tokenize(number, form="/payment-methods/update")
    csrf = await updater.csrf("/payment-methods/update")
    return await updater.client.post("/payment-methods/update", data={"csrf_token": csrf, "payment_token": token})


async def test_an_update_with_a_card_already_on_file_makes_it_the_default(platform, shopper, portal_client) -> None:
    jane = await shopper()
    visa = _card(await jane.add(VISA))
    mastercard = _card(await jane.add(MASTERCARD))
    updater, token = await _update_link_session(platform, portal_client, jane.id)
    response = await _submit_update(updater, MASTERCARD)
    page = await updater.follow(response, f"/payment-methods?done=updated&card={mastercard}")
    assert "Mastercard ending in 4444 is now your default card. Thank you for updating it." in page.text

    rows = {r["id"]: r for r in await cards_of(platform, GREENFIELD, jane.id)}
    assert set(rows) == {visa, mastercard}  # no twin
    assert rows[mastercard]["is_default"] and not rows[visa]["is_default"]
    assert len(await vault_cards(platform, GREENFIELD, rows[visa]["vault_id"])) == 2
    events = await events_of(platform, GREENFIELD, jane.id)
    assert [e["type"] for e in events].count("payment_method.added") == 2
    assert events[-1]["data"] == {"id": mastercard, "customer": jane.id, "previous": visa, "reason": "replaced"}
    reopened = await portal_client(GREENFIELD).get(f"/access/{token}")
    assert reopened.status_code == 410  # the link did its job


async def test_an_update_with_the_default_card_itself_changes_nothing(platform, shopper, portal_client) -> None:
    jane = await shopper()
    visa = _card(await jane.add(VISA))
    updater, token = await _update_link_session(platform, portal_client, jane.id)
    response = await _submit_update(updater, VISA)
    page = await updater.follow(response, "/payment-methods/update?error=already_default")
    assert "That card is already your default card, so nothing changed. Please enter a different card." in page.text
    assert "data-tokenization-key" in page.text

    rows = await cards_of(platform, GREENFIELD, jane.id)
    assert [(r["id"], r["is_default"], r["removed_at"]) for r in rows] == [(visa, True, None)]
    assert len(await vault_cards(platform, GREENFIELD, rows[0]["vault_id"])) == 1
    assert len(await events_of(platform, GREENFIELD, jane.id)) == 2  # the first card's own two
    again = await portal_client(GREENFIELD).get(f"/access/{token}")
    assert again.status_code == 303  # still open: the card still needs updating


async def test_plugins_name_the_failed_charge_and_may_take_over_after_an_update(
    platform, shopper, portal_client
) -> None:
    jane = await shopper()
    await jane.add(VISA)
    card_required.FAILED[jane.id] = "$5.00 for Test Box on May 5"
    card_required.AFTER_UPDATE[jane.id] = "/elsewhere?done=1"
    try:
        updater, token = await _update_link_session(platform, portal_client, jane.id)
        page = await updater.client.get("/payment-methods/update")
        assert "Payment not received:</strong> $5.00 for Test Box on May 5." in page.text
        response = await _submit_update(updater, MASTERCARD)
        assert (response.status_code, response.headers["location"]) == (303, "/elsewhere?done=1")
        assert [call[0] for call in card_required.REPLACED if call[0] == jane.id] == [jane.id]
        reopened = await portal_client(GREENFIELD).get(f"/access/{token}")
        assert reopened.status_code == 303  # the plugin that took over fulfils the link when its work is done

        card_required.AFTER_UPDATE.pop(jane.id)
        response = await _submit_update(updater, VISA)
        assert response.headers["location"].startswith("/payment-methods?done=updated")
        assert (await portal_client(GREENFIELD).get(f"/access/{token}")).status_code == 410  # no one took it: closed
    finally:
        card_required.FAILED.pop(jane.id, None)
        card_required.AFTER_UPDATE.pop(jane.id, None)
