"""Placement called directly (no Celery): a worker runtime on the live stack's PostgreSQL and peers."""
import uuid

import pytest

from models.jobs import Job
from placement.batch import place
from placement.items import normalize
from settings import Settings
from tasks.runtime import WorkerRuntime


@pytest.fixture()
def runtime(stack_env, empty_tables, peers):
    runtime = WorkerRuntime(Settings.from_env(stack_env["env"]))
    yield runtime
    runtime.close_peers()
    runtime.db.dispose()


class Jobs:
    """Jobs as a submission leaves them (queued, due now), and batches placed by a plain call."""

    def __init__(self, runtime: WorkerRuntime):
        self.runtime = runtime

    def submit(self, customer_id: int, items=None) -> uuid.UUID:
        with self.runtime.db.transaction() as session:
            job = Job(customer_id=customer_id, source="body" if items is not None else "cart",
                      requested_items=normalize(items) if items is not None else None, cart_status="not_needed")
            session.add(job)
            session.flush()
            return job.id

    def place(self, task_id: str | None = None):
        """One execution: claim what is due and place it; the outcomes by job."""
        with self.runtime.placement() as ctx:
            return place(ctx, task_id or str(uuid.uuid4()), self.runtime.limits, self.runtime.policy)

    def get(self, job_id: uuid.UUID) -> Job:
        with self.runtime.db.transaction() as session:
            return session.get(Job, job_id)


@pytest.fixture()
def jobs(runtime):
    return Jobs(runtime)
