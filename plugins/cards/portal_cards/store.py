"""Cards on file, read from core's payment methods (``portal.payments.methods``).

Core owns the table, the default card and the vault operations; the plugin's pages read
through these two helpers. Callers may run inside the merchant's tenant transaction (it is
joined) or outside one.
"""

from __future__ import annotations

from portal.sdk import MerchantView, PaymentMethod, list_methods, removed_method

StoredCard = PaymentMethod
"""A card on file as core stores it: the vault reference and the displayable details."""


async def cards_on_file(merchant: MerchantView, customer_id: str) -> list[StoredCard]:
    """The customer's cards, default first, then newest first."""
    return await list_methods(merchant.iso_id, merchant.id, customer_id)


async def removed_card(merchant: MerchantView, customer_id: str, card_id: str) -> StoredCard | None:
    """A card of the customer that was taken off file."""
    return await removed_method(merchant.iso_id, merchant.id, customer_id, card_id)
