"""What a merchant decides about switching."""

from __future__ import annotations

import msgspec

KEY = "merchant_switch"


class MerchantSwitchSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[isos.merchants.plugins.merchant_switch.settings]``."""

    end_session_on_switch: bool = False
    """Sign the customer out here when they switch to another merchant (they stay signed in by default)."""
