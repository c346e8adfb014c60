"""The example plugin's taskiq task."""

from taskiq import async_shared_broker


@async_shared_broker.task(task_name="example.count_notes")
async def count_notes(iso_id: str) -> int:
    from portal.db.engine import fetch, tenant_transaction

    async with tenant_transaction(iso_id):
        rows = await fetch("SELECT count(*) AS n FROM example_note")
    return int(rows[0]["n"])
