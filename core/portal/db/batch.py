"""Many items' writes in one tenant transaction, falling back to one transaction each when one fails."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from portal.db.engine import tenant_transaction

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


async def in_one_transaction(
    iso_id: str,
    items: Sequence[Item],
    work: Callable[[Item], Awaitable[Result]],
    *,
    prepare: Callable[[Sequence[Item]], Awaitable[None]] | None = None,
) -> list[Result | Exception]:
    """Do ``work`` for every item in one tenant transaction of ``iso_id``; each item's result, in order.

    A shared transaction saves a transaction's statements (and its outcome's bookkeeping) per
    item. When any item's work raises, the shared transaction is rolled back and every item is
    done again in a transaction of its own, so only the failing item fails: its result is the
    exception. ``prepare`` runs first in each transaction with the items it covers; take every
    row lock there, in the order every writer takes them (subscriptions, then invoices, then the
    audit chain through ``emit``), so that a transaction holding the audit lock for one item never
    waits for another item's row.

    ``work`` should return an expected refusal (one that wrote nothing) as its result rather than
    raise it: a raise makes the whole batch run again one by one.
    """
    if not items:
        return []
    try:
        async with tenant_transaction(iso_id):
            if prepare is not None:
                await prepare(items)
            return [await work(item) for item in items]
    except Exception as exc:
        if len(items) == 1:
            return [exc]
        log.info("a batch of %s failed (%s: %s); doing its items one by one", len(items), type(exc).__name__, exc)
    results: list[Result | Exception] = []
    for item in items:
        try:
            async with tenant_transaction(iso_id):
                if prepare is not None:
                    await prepare([item])
                results.append(await work(item))
        except Exception as exc:
            results.append(exc)
    return results
