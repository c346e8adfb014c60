from portal.sdk import ActivityDescription, ActivityEvent, ActivityFormat, ActivityLine, hookimpl


def points_earned(event: ActivityEvent, fmt: ActivityFormat) -> ActivityLine | None:
    points = event.data.get("points")
    if not points:
        return None
    return ActivityLine(text=f"{points} points earned")


@hookimpl
def portal_activity_descriptions() -> list[ActivityDescription]:
    return [ActivityDescription(event_type="loyalty.points_earned", describe=points_earned)]
