"""A batch whose execution is killed (SIGKILL) between its catalog writes and its commit: the one
placement behaviour that needs a process to die. The rest of placement is tested by plain calls in
tests/placement."""
import signal
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


_KILLED_BEFORE_COMMIT = """
import os, signal, sys
from placement import batch
from settings import get_settings
from tasks.runtime import WorkerRuntime

def die_before_saving(step):
    if step == "saving_order":  # the catalog writes are in; the orders are not saved
        os.kill(os.getpid(), signal.SIGKILL)

runtime = WorkerRuntime(get_settings())
with runtime.placement(on_step=die_before_saving) as ctx:
    batch.place(ctx, sys.argv[1], runtime.limits, runtime.policy, 'singles')
"""


def test_a_worker_killed_between_the_catalog_write_and_the_commit_takes_the_stock_once(jobs, peers, runtime,
                                                                                      stack_env):
    ids = [jobs.submit(c, [{"product_id": 70, "quantity": 3}]) for c in range(1, 4)]
    task_id = str(uuid.uuid4())

    died = subprocess.run([sys.executable, "-c", _KILLED_BEFORE_COMMIT, task_id], env=stack_env["env"], cwd=ROOT,
                          timeout=60)
    assert died.returncode == -signal.SIGKILL
    assert peers.product(70)["quantity"] == 1000 - 9  # taken, not yet recorded as orders
    assert {jobs.get(job_id).status for job_id in ids} == {"processing"}

    outcomes = jobs.place(task_id)  # the redelivered task: its jobs are free again at once

    assert {outcomes[job_id].status for job_id in ids} == {"completed"}
    assert peers.product(70)["quantity"] == 1000 - 9
    assert peers.stats()["writes"] == {"70": 1}
