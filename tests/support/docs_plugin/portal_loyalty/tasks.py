# portal_loyalty/tasks.py
from portal.sdk import TaskRun, durable_task, fetch, tenant_transaction


@durable_task("loyalty.grant_points")
async def grant_points(task: TaskRun) -> None:
    async with tenant_transaction(task.iso_id):
        await fetch(
            "UPDATE loyalty_account SET points = points + $2 WHERE customer_id = $1",
            task.args["customer_id"],
            task.args["points"],
        )
