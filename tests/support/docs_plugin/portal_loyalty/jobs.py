from datetime import timedelta

from portal.sdk import ScheduledJob, fetch, hookimpl, iso_ids, tenant_transaction


async def expire_points(platform) -> None:
    for iso_id in await iso_ids():
        async with tenant_transaction(iso_id):
            await fetch("UPDATE loyalty_account SET points = 0 WHERE last_activity < now() - interval '2 years'")


@hookimpl
def portal_scheduled_jobs() -> list[ScheduledJob]:
    return [ScheduledJob(name="loyalty.expire_points", every=timedelta(hours=24), run=expire_points)]
