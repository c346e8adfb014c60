"""The docs' fragments (a call shown inside a handler or a transaction), run with the context they assume."""

from __future__ import annotations

import ast
import inspect
from typing import Any

from docs_blocks import docs_block
from litestar import Request, Response, post
from portal_loyalty.tasks import grant_points

from portal.sdk import Form, LinkFlow, PluginInfo, fetch, hookimpl, new_id, tenant_transaction
from portal.tasks.durable import run_due_tasks
from portal.testing import MerchantFactory


async def run_block(code: str, namespace: dict[str, Any]) -> None:
    """Run a block whose top level awaits, as the body of a coroutine does."""
    result = eval(compile(code, "<docs>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT), namespace)
    if inspect.iscoroutine(result):
        await result


async def test_the_bonus_hook_is_called_for_the_merchants_plugins(portal_merchant: MerchantFactory) -> None:
    merchant = await portal_merchant(plugins=("loyalty", "loyalty_bonus"))
    customer = await merchant.customer()
    assert await customer.page("/loyalty/bonus") == "5"
    await merchant.disable("loyalty_bonus")  # its page goes, and the hook no longer reaches it
    assert (await customer.get("/loyalty/bonus")).status_code == 404


async def test_a_task_queued_in_the_transaction_runs(portal_merchant, portal_platform) -> None:
    merchant = await portal_merchant(plugins=("loyalty",))
    customer = await merchant.customer()
    async with tenant_transaction(merchant.iso_id):
        await fetch(
            "INSERT INTO loyalty_account (id, iso_id, merchant_id, customer_id, points, last_activity) "
            "VALUES ($1, $2, $3, $4, 0, now())",
            new_id("lya"), merchant.iso_id, merchant.merchant_id, customer.customer_id,
        )  # fmt: skip
    context = {
        "tenant_transaction": tenant_transaction,
        "merchant": (await merchant.tenant()).merchant,
        "customer_id": customer.customer_id,
        "grant_points": grant_points,
    }
    await run_block(docs_block("plugin_hooks.md", "test_a_task_queued_in_the_transaction_runs"), context)
    assert await run_due_tasks(portal_platform, merchant.iso_id, "docs-worker") == 1
    async with tenant_transaction(merchant.iso_id):
        rows = await fetch("SELECT points FROM loyalty_account WHERE customer_id = $1", customer.customer_id)
    assert rows == [{"points": 10}]


def test_the_invoice_flow_is_the_invoices_plugins(portal_platform) -> None:
    flow = eval(docs_block("plugin_hooks.md", "test_the_invoice_flow_is_the_invoices_plugins"), {"LinkFlow": LinkFlow})
    assert portal_platform.registry.link_flows["invoice_pay"] == ("invoices", flow)


def test_hookimpl_marks_an_implementation() -> None:
    namespace: dict[str, Any] = {"hookimpl": hookimpl, "PluginInfo": PluginInfo}
    exec(docs_block("sdk.md", "test_hookimpl_marks_an_implementation"), namespace)
    assert hasattr(namespace["portal_plugin_info"], "portal_impl")


def test_a_form_handler_is_declared_as_shown() -> None:
    namespace: dict[str, Any] = {"post": post, "Request": Request, "Response": Response, "Form": Form, "Any": Any}
    exec(docs_block("sdk.md", "test_a_form_handler_is_declared_as_shown"), namespace)
    handler = namespace["add_note"]
    assert (handler.name, handler.paths, handler.status_code) == ("notes_add", {"/notes"}, 303)


async def test_a_tenant_transaction_reads_the_isos_rows(portal_merchant: MerchantFactory) -> None:
    merchant = await portal_merchant(plugins=("notes",))
    customer = await merchant.customer()
    assert (await customer.post("/notes", {"body": "Call back"})).status_code == 303
    namespace = {"tenant_transaction": tenant_transaction, "fetch": fetch, "tenant": await merchant.tenant()}
    await run_block(docs_block("sdk.md", "test_a_tenant_transaction_reads_the_isos_rows"), namespace)
    assert [row["body"] for row in namespace["rows"]] == ["Call back"]
