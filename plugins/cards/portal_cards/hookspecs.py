"""Hooks the cards plugin adds, for other plugins to implement (see ``docs/plugin_hooks.md``)."""

from __future__ import annotations

from collections.abc import Awaitable

import pluggy

from portal.sdk import PROJECT_NAME, MerchantView

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def portal_cards_card_required(merchant: MerchantView, customer_id: str) -> Awaitable[str | None] | None:
    """Why the customer must keep a card on file, such as "Your Monthly Bread Box subscription".

    Return a coroutine that yields the reason (a phrase naming what needs the card) or ``None``.
    It runs inside the merchant's tenant transaction, only for plugins on for the merchant. The
    cards plugin refuses to remove a customer's only card while any implementation gives a reason.
    """
