from portal.sdk import EventHandler, HandledEvent, fetch, hookimpl


async def award_points(event: HandledEvent) -> None:
    await fetch(
        "INSERT INTO loyalty_points (id, iso_id, customer_id, points) VALUES ($1, $2, $3, 10) "
        "ON CONFLICT (id) DO NOTHING",
        "pts_" + event.id,  # one award per event, however often the handler runs
        event.iso_id,
        event.customer_id,
    )


@hookimpl
def portal_event_handlers() -> list[EventHandler]:
    return [EventHandler(name="award_points", event_types=frozenset({"invoice.paid"}), handle=award_points)]
