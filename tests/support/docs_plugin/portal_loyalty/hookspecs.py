# portal_loyalty/hookspecs.py
import pluggy

from portal.sdk import PROJECT_NAME

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def loyalty_bonus_points(merchant_id: str, customer_id: str) -> int | None:
    """Points to add on top of a customer's balance."""
