from pathlib import Path

import msgspec

from portal.sdk import PluginInfo, hookimpl

HERE = Path(__file__).resolve().parent


class LoyaltySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    program_name: str = "Rewards"
    points_per_dollar: int = 1


@hookimpl
def portal_plugin_info() -> PluginInfo:
    return PluginInfo(
        key="loyalty",
        title="Loyalty points",
        description="Shows customers their points balance.",
        settings=LoyaltySettings,
        templates=HERE / "templates",
    )
