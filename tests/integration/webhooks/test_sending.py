"""The sender called directly (no Celery), against PostgreSQL and a real receiver: the lease
keeps two workers from sending one delivery at once."""
import json
import threading
import uuid

import pytest
from sqlalchemy import text

from models.webhooks import DELIVERED
from settings import Settings
from tasks.runtime import WorkerRuntime
from webhooks.sending import SKIPPED


@pytest.fixture()
def runtime(stack_env, empty_tables):
    runtime = WorkerRuntime(Settings.from_env(stack_env["env"]))
    yield runtime
    runtime.db.dispose()


def _owed(engine, url: str) -> uuid.UUID:
    delivery_id = uuid.uuid4()
    with engine.begin() as connection:
        job_id = connection.execute(text(
            "INSERT INTO jobs (id, customer_id, status, source, attempts, cart_status, next_run_at)"
            " VALUES (gen_random_uuid(), 1, 'completed', 'body', 1, 'not_needed', now()) RETURNING id")).scalar()
        connection.execute(text(
            "INSERT INTO webhook_deliveries (id, job_id, event, url, payload)"
            " VALUES (:id, :job, 'job.completed', :url, CAST(:payload AS jsonb))"),
            {"id": delivery_id, "job": job_id, "url": url,
             "payload": json.dumps({"id": str(delivery_id), "type": "job.completed", "data": {}})})
    return delivery_id


def test_two_sends_of_one_delivery_at_once_post_it_once(runtime, engine, receiver):
    receiver.delay = 0.5  # the first send is still waiting for the receiver when the second starts
    # (within the stack's WEBHOOK_TIMEOUT_SECONDS of 1)
    delivery_id = _owed(engine, receiver.url)
    results = []
    senders = [threading.Thread(target=lambda: results.append(runtime.webhooks.send(delivery_id).status))
               for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(10)

    assert sorted(results) == sorted([DELIVERED, SKIPPED])
    assert len(receiver.received) == 1
    assert runtime.webhooks.send(delivery_id).status == SKIPPED  # delivered: never sent again
    with engine.connect() as connection:
        attempts = connection.execute(text("SELECT count(*) FROM webhook_attempts WHERE delivery_id = :id"),
                                      {"id": delivery_id}).scalar()
    assert attempts == 1


def test_a_delivery_not_yet_due_is_left_for_its_own_wake_up(runtime, engine, receiver):
    delivery_id = _owed(engine, receiver.url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now() + interval '1 hour'"
                                " WHERE id = :id"), {"id": delivery_id})

    assert runtime.webhooks.send(delivery_id).status == SKIPPED
    assert receiver.received == []
