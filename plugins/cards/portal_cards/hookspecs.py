"""Hooks the cards plugin adds, for other plugins to implement (see ``docs/plugin_hooks.md``)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pluggy
from litestar import Request

from portal.sdk import PROJECT_NAME, CustomerView, MerchantView, Tenant

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def portal_cards_card_required(merchant: MerchantView, customer_id: str) -> Awaitable[str | None] | None:
    """Why the customer must keep a card on file, such as "Your Monthly Bread Box subscription".

    Return a coroutine that yields the reason (a phrase naming what needs the card) or ``None``.
    It runs inside the merchant's tenant transaction, only for plugins on for the merchant. The
    cards plugin refuses to remove a customer's only card while any implementation gives a reason.
    The phrase is shown as given inside a sentence of the page, so write it in the request's
    language (``portal.sdk.gettext``; it starts the sentence, so capitalise it).
    """


@hookspec
def portal_cards_update_reason(merchant: MerchantView, customer_id: str) -> Awaitable[str | None] | None:
    """What the update-your-card page names as the failed charge, such as "$39.00 for Monthly Bread Box on May 5".

    Return a coroutine that yields the phrase or ``None``. It runs inside the merchant's tenant
    transaction, only for plugins on for the merchant; the page shows the first phrase given, as
    given, so write it in the request's language with money and dates for ``current_locale()``.
    """


@hookspec
def portal_cards_card_replaced(
    request: Request[Any, Any, Any], tenant: Tenant, customer: CustomerView, card_id: str, link_id: str | None
) -> Awaitable[str | None] | None:
    """The update flow made ``card_id`` the customer's default card; where should the customer go next?

    Return a coroutine that yields a path on the merchant's host (a page of the plugin saying
    what it did with the new card) or ``None``. It runs after the card's transaction committed,
    outside any transaction, only for plugins on for the merchant. While a plugin on for the
    merchant implements this hook, the cards plugin does not fulfil the update link ``link_id``
    when the card is saved: an implementation that yields a path fulfils it when its work is done;
    when every implementation yields ``None``, the cards plugin fulfils it and shows the card list.
    """
