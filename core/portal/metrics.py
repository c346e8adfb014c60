"""The platform's Prometheus metrics, in one place so names and labels stay consistent.

Counters and gauges live in ``prometheus_client``'s default registry. HTTP request metrics come
from Litestar's Prometheus middleware (see :mod:`portal.web.observability`); the queue gauges are
refreshed from PostgreSQL just before a scrape (:func:`portal.tasks.jobs.refresh_queue_metrics`).
Every metric is named in ``docs/operations.md``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TASKS_QUEUED = Counter("portal_tasks_queued_total", "Durable tasks queued, by task name.", ["task"])
TASKS_RUNNING = Gauge("portal_tasks_running", "Tasks this process is running now, by task name.", ["task"])
TASKS_FINISHED = Counter(
    "portal_tasks_finished_total",
    "Task runs that ended, by task name and outcome (succeeded, retrying, failed, released).",
    ["task", "outcome"],
)
TASK_DURATION = Histogram("portal_task_duration_seconds", "Time one task run took, by task name.", ["task"])
TASKS_DUE = Gauge(
    "portal_tasks_due",
    "Work due now and not claimed, by kind (task, webhook, handler), read from PostgreSQL.",
    ["kind"],
)
OLDEST_DUE_TASK_AGE = Gauge(
    "portal_oldest_due_task_age_seconds",
    "How long the oldest due and unclaimed piece of work (task, webhook, handler) has waited; 0 when none.",
)
WEBHOOK_DELIVERIES = Counter(
    "portal_webhook_deliveries_total",
    "Webhook delivery attempts, by outcome (succeeded, retrying, failed, cancelled, released).",
    ["outcome"],
)
EMAILS = Counter("portal_emails_total", "Emails handed to the SMTP server, by outcome (sent, failed).", ["outcome"])
LINKS_REFUSED = Counter(
    "portal_access_links_refused_total",
    "Access links refused, by reason (expired, used, revoked, invalid).",
    ["reason"],
)
WORKER_UP = Gauge(
    "portal_worker_component_up", "1 when a worker component (database, broker) is reachable, else 0.", ["component"]
)
DB_POOL_SIZE = Gauge(
    "portal_db_pool_size",
    "Connections open in this process's application pool (idle and in use), read at scrape time.",
    multiprocess_mode="livesum",
)
DB_POOL_IDLE = Gauge(
    "portal_db_pool_idle", "Open connections of the application pool that no one holds.", multiprocess_mode="livesum"
)
DB_POOL_IN_USE = Gauge(
    "portal_db_pool_in_use",
    "Connections of the application pool held by a request or task right now.",
    multiprocess_mode="livesum",
)
DB_POOL_MAX = Gauge(
    "portal_db_pool_max_size",
    "Most connections the application pool may open (db_pool_max).",
    multiprocess_mode="livesum",
)
