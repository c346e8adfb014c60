from datetime import timedelta

from portal.sdk import LinkPurpose, hookimpl


@hookimpl
def portal_link_purposes() -> list[LinkPurpose]:
    return [
        LinkPurpose(
            name="update_payment",
            title="Update your card",
            default_ttl=timedelta(days=7),
            max_ttl=timedelta(days=7),
            single_use=False,
            default_flow="payment_method_update",
        )
    ]
