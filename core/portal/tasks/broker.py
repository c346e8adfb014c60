"""The taskiq broker: PostgreSQL by default (same database), or Redis, NATS or RabbitMQ by URL.

Broker messages only wake workers: the work itself is durable in PostgreSQL (tasks, webhook
deliveries, handler runs), so a lost message delays work by at most the poll interval. Every
broker keeps a bounded backlog (PostgreSQL none at all: NOTIFY; Redis a capped stream; NATS a
stream with a message and age limit; RabbitMQ a queue acknowledged as consumed).

Tasks are declared on taskiq's shared broker (``@async_shared_broker.task``) so plugins need no
broker at import time; :func:`create_broker` binds it to the configured one.
"""

from __future__ import annotations

from typing import Any

from taskiq import AsyncBroker, TaskiqMessage, TaskiqMiddleware, async_shared_broker

from portal.config import ConfigError, Settings
from portal.web.input_policy import check_json_value

QUEUE_CHANNEL = "portal_tasks"
"""The NOTIFY channel of the PostgreSQL broker."""
BACKLOG_LIMIT = 10_000
"""Most wake-up messages Redis and NATS keep (older ones are dropped: a wake-up is idempotent)."""


class TaskInputPolicy(TaskiqMiddleware):
    """The input policy for tasks: arguments that could never be stored are refused when queued.

    A task queued with a NUL in an email address would fail on every try in the worker; refused
    here, the request that queued it gets a 400 instead and nothing is queued.
    """

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        """Check every argument (text, numbers, nested lists and mappings) before it is queued."""
        arguments: dict[str, Any] = {
            f"{message.task_name} argument {index + 1}": value for index, value in enumerate(message.args)
        }
        arguments.update({f"{message.task_name} argument {name}": value for name, value in message.kwargs.items()})
        check_json_value(arguments)  # raises InputRefusedError (a 400 where a request queued it)
        return message


def create_broker(settings: Settings, app_dsn: str, *, make_default: bool = True) -> AsyncBroker:
    """Build the broker named by ``PORTAL_BROKER_URL`` (PostgreSQL when unset).

    With ``make_default`` the shared broker that tasks are declared on sends through it.
    """
    url = settings.broker_url
    scheme = (url or "postgresql://").split("://", 1)[0]
    broker: AsyncBroker
    try:
        if scheme in ("postgres", "postgresql"):
            from portal.tasks.pg_broker import PostgresWakeBroker

            broker = PostgresWakeBroker(url or app_dsn, QUEUE_CHANNEL)
        elif scheme in ("redis", "rediss"):
            from taskiq_redis import RedisStreamBroker

            broker = RedisStreamBroker(
                url=url or "",
                queue_name="portal_tasks",
                consumer_group_name="portal_workers",
                maxlen=BACKLOG_LIMIT,
                socket_timeout=10,
                socket_connect_timeout=5,
            )
        elif scheme in ("nats", "tls"):
            from nats.js.api import StreamConfig
            from taskiq_nats import PullBasedJetStreamBroker

            broker = PullBasedJetStreamBroker(
                servers=[url or ""],
                subject="portal.tasks",
                stream_name="portal_tasks",
                durable="portal_workers",
                stream_config=StreamConfig(max_msgs=BACKLOG_LIMIT, max_age=24 * 3600),
            )
        elif scheme in ("amqp", "amqps"):
            from taskiq_aio_pika import AioPikaBroker, Queue

            broker = AioPikaBroker(url=url or "", task_queues=[Queue(name="portal_tasks")])
        else:
            raise ConfigError(f"PORTAL_BROKER_URL: unsupported scheme {scheme!r} (postgresql, redis, nats, amqp)")
    except ImportError as exc:
        extra = {"redis": "redis", "rediss": "redis", "nats": "nats", "tls": "nats"}.get(scheme, "rabbitmq")
        raise ConfigError(f"PORTAL_BROKER_URL: the {scheme} broker needs `portal-core[{extra}]` ({exc})") from exc
    broker.add_middlewares(TaskInputPolicy())
    if make_default:
        async_shared_broker.default_broker(broker)
    return broker
