"""``customer.switched_out`` and ``customer.switched_in``: one switch, recorded on each side.

Each is emitted in its own merchant's audit chain and webhooks. Neither carries anything of the
other merchant's customer: only the other merchant's public name and the switch's id, which
both sides share.
"""

from __future__ import annotations

import msgspec

from portal.sdk import EventType


class SwitchedOut(msgspec.Struct, frozen=True, kw_only=True):
    """The customer left this merchant's portal for another merchant's."""

    id: str
    """The switch (``msw_...``), the same in the other merchant's ``customer.switched_in``."""
    customer: str
    """This merchant's customer who switched."""
    to_merchant_name: str
    """The other merchant's public name."""


class SwitchedIn(msgspec.Struct, frozen=True, kw_only=True):
    """The customer arrived in this merchant's portal from another merchant's."""

    id: str
    """The switch (``msw_...``), the same in the other merchant's ``customer.switched_out``."""
    customer: str
    """This merchant's customer, now signed in here."""
    from_merchant_name: str
    """The other merchant's public name."""


EVENT_TYPES = [
    EventType(
        name="customer.switched_out",
        payload=SwitchedOut,
        description="The customer switched from this merchant's portal to another merchant's of the ISO.",
    ),
    EventType(
        name="customer.switched_in",
        payload=SwitchedIn,
        description="The customer switched into this merchant's portal from another merchant's of the ISO.",
    ),
]
