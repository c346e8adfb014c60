import msgspec

from portal.sdk import EventType, hookimpl


class PointsEarned(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    points: int


@hookimpl
def portal_event_types() -> list[EventType]:
    return [
        EventType(
            name="loyalty.points_earned",
            payload=PointsEarned,
            description="A customer earned points.",
        )
    ]
