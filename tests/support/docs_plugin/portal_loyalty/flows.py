from portal.sdk import LinkFlow, hookimpl


@hookimpl
def portal_link_flows() -> list[LinkFlow]:
    return [LinkFlow(name="loyalty_redeem", path="/loyalty/redeem", title="Redeem points")]
