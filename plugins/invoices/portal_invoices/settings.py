"""What a merchant lets customers do with their invoices."""

from __future__ import annotations

from typing import Annotated

import msgspec

Footer = Annotated[str, msgspec.Meta(max_length=500)]


class InvoicesSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[isos.merchants.plugins.invoices.settings]``."""

    allow_pay: bool = True
    """Customers may pay an open invoice in the portal."""
    allow_pay_with_new_card: bool = True
    """Customers may pay with a card they enter then (it is put on file), not only with a card on file."""
    show_void: bool = False
    """Void invoices are listed too (they are hidden otherwise)."""
    pdf_footer: Footer = ""
    """A line printed at the foot of every PDF (bank details, company registration, ...)."""
    allow_billing_details_update: bool = False
    """Customers may edit their billing name, address and tax id (shown on invoices and PDFs)."""
