"""Celery's configuration, built from the process's `Settings` (tasks.init_app applies it).

Delivery is at-least-once and the worker is built for it: late acks, redelivery
when a worker dies, one message prefetched at a time, JSON only. The broker is
Redis or RabbitMQ, chosen by CELERY_BROKER_URL alone:

* Redis: every wait (retry countdown, time limit) is shorter than the visibility
  timeout, so a waiting retry is never redelivered as a duplicate (settings.py checks this).
* RabbitMQ: a durable quorum queue (on disk, replicated in a cluster),
  publisher confirms (a publish returns only once the broker has the message),
  and a topic exchange, which Celery's native delayed delivery needs: a countdown
  waits in the broker's delay queues instead of unacked in a worker's memory.
"""
from __future__ import annotations

from settings import Settings
from tasks import transport


def from_settings(settings: Settings) -> dict:
    """Celery's settings (lower-case names) for `settings`."""
    config = {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        # A publish that cannot reach the broker gives up fast: the job is already in PostgreSQL
        # and the sweeper dispatches it once the broker is back.
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.2,
                                      "interval_max": 0.2},
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        # Peer calls are I/O: threads give many concurrent orders per process cheaply.
        "worker_pool": settings.worker_pool,
        "worker_concurrency": settings.worker_concurrency,
        "worker_send_task_events": True,
        # Flower learns of a task when a worker receives it; a task-sent event would be a second
        # message on every submission (PostgreSQL already shows queued jobs: /jobs, job-counts).
        "task_send_sent_event": False,
        "task_track_started": True,
        "include": ["tasks.orders", "tasks.webhooks"],
    }
    if settings.broker_is_redis:
        transport.use_for_redis_urls()  # kombu's, minus a client built per publish
        config["broker_transport_options"] = {
            "visibility_timeout": settings.visibility_timeout,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        }
    else:
        config.update({
            "broker_connection_timeout": 2,
            "broker_transport_options": {"confirm_publish": True},
            "task_default_queue_type": "quorum",
            "task_default_exchange_type": "topic",
            "worker_detect_quorum_queues": True,
            # When a cluster node stops, the worker reconnects to the next node of its failover list at
            # once, before the cluster has deleted its exclusive pidbox queue on the stopped node: that
            # declare fails with a channel error (405 RESOURCE_LOCKED), which without this ends the
            # worker instead of retrying the connection a moment later.
            "broker_channel_error_retry": True,
        })
    return config
