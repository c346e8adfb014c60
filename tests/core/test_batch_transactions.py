"""``in_one_transaction``: many items' writes in one transaction, one by one when any of them fails."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from portal.db.batch import in_one_transaction
from portal.db.engine import fetch, tenant_transaction
from portal.ids import new_id
from portal.platform import Platform
from support.audit import new_merchant


async def test_items_share_a_transaction_and_a_failing_one_fails_alone(
    shared_tenants: Platform, tmp_path: Path
) -> None:
    tenant = await new_merchant(shared_tenants, tmp_path)
    merchant = tenant.merchant
    prepared: list[list[str]] = []

    async def prepare(items: Sequence[str]) -> None:
        prepared.append(list(items))

    async def add_customer(name: str) -> str:
        customer = new_id("cus")
        await fetch(
            "INSERT INTO portal_customer (id, iso_id, merchant_id, email, email_normalized, name) "
            "VALUES ($1, $2, $3, $4, $4, $5)",
            customer, merchant.iso_id, merchant.id, f"{customer}@example.com", name,
        )  # fmt: skip
        if name == "Broken":
            raise ValueError("this item breaks")
        return customer

    results = await in_one_transaction(merchant.iso_id, ["Ada", "Broken", "Grace"], add_customer, prepare=prepare)
    assert isinstance(results[1], ValueError)
    assert all(isinstance(result, str) for result in (results[0], results[2]))
    # First all three together (rolled back by the failure), then each alone.
    assert prepared == [["Ada", "Broken", "Grace"], ["Ada"], ["Broken"], ["Grace"]]
    async with tenant_transaction(merchant.iso_id):
        names = await fetch("SELECT name FROM portal_customer WHERE merchant_id = $1 ORDER BY name", merchant.id)
    assert [row["name"] for row in names] == ["Ada", "Grace"]  # nothing of the broken item, nothing twice


async def test_items_that_all_succeed_are_written_in_one_transaction(shared_tenants: Platform, tmp_path: Path) -> None:
    tenant = await new_merchant(shared_tenants, tmp_path)
    merchant = tenant.merchant
    transactions: set[int] = set()

    async def add(name: str) -> str:
        transactions.add((await fetch("SELECT txid_current() AS id"))[0]["id"])
        return name.upper()

    assert await in_one_transaction(merchant.iso_id, ["a", "b", "c"], add) == ["A", "B", "C"]
    assert len(transactions) == 1
    assert await in_one_transaction(merchant.iso_id, [], add) == []
