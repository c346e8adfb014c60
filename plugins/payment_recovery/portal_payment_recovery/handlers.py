"""Event handlers: the ledger's and core's events, for merchants where payment recovery is on.

Each queues one durable task in the event's transaction (deduplicated by the event's id, so a
handler run twice queues it once); the task does the work with the platform at hand.
"""

from __future__ import annotations

from portal.sdk import EventHandler, HandledEvent, queue_task
from portal_payment_recovery.tasks import link_opened, open_case, settle


async def on_payment_failed(event: HandledEvent) -> None:
    """``invoice.payment_failed``: open a case for the invoice (nothing when it has one)."""
    invoice, attempt = event.data["invoice"], event.data["attempt"]
    args = {
        "invoice": invoice["id"],
        "customer": invoice["customer"],
        "subscription": invoice.get("subscription"),
        "amount": invoice["amount_due"],
        "currency": invoice["currency"],
        "classification": event.data["classification"],
        "failed_at": attempt["attempted_at"],
    }
    await queue_task(open_case, args, merchant_id=event.merchant_id, dedupe_key=event.id)


async def on_invoice_settled(event: HandledEvent) -> None:
    """``invoice.paid`` or ``invoice.voided``: an invoice in recovery paid by other means, or voided, is closed."""
    await queue_task(
        settle, {"invoice": event.data["invoice"]["id"]}, merchant_id=event.merchant_id, dedupe_key=event.id
    )


async def on_session_started(event: HandledEvent) -> None:
    """``portal_session.started`` by an update link: ``recovery.link_opened`` when the link was one of ours."""
    if event.data.get("purpose") == "update_payment" and event.data.get("link"):
        await queue_task(link_opened, {"link": event.data["link"]}, merchant_id=event.merchant_id, dedupe_key=event.id)


EVENT_HANDLERS = [
    EventHandler(
        name="payment_recovery.payment_failed",
        event_types=frozenset({"invoice.payment_failed"}),
        handle=on_payment_failed,
    ),
    EventHandler(
        name="payment_recovery.invoice_paid", event_types=frozenset({"invoice.paid"}), handle=on_invoice_settled
    ),
    EventHandler(
        name="payment_recovery.invoice_voided", event_types=frozenset({"invoice.voided"}), handle=on_invoice_settled
    ),
    EventHandler(
        name="payment_recovery.link_opened",
        event_types=frozenset({"portal_session.started"}),
        handle=on_session_started,
    ),
]
