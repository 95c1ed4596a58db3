"""The operator commands, run as an operator would (`flask --app web ...`) against the live stack."""
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]


def flask(env, *args):
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "web", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_counts_stuck_jobs_and_redispatch(api, stack_env, engine):
    env = stack_env["env"]
    done = api.submit(51, [{"product_id": 1, "quantity": 1}]).json()["job_id"]
    api.wait(done)
    with engine.begin() as connection:  # a job whose wake-up was lost long ago
        stuck = connection.execute(text(
            "INSERT INTO jobs (id, customer_id, status, source, requested_items, attempts, cart_status,"
            " next_run_at, created_at, updated_at) VALUES (gen_random_uuid(), 52, 'queued', 'body',"
            " CAST(:items AS jsonb), 0, 'not_needed', now() + interval '1 hour',"
            " now() - interval '1 hour', now() - interval '1 hour') RETURNING id"),
            {"items": '[{"product_id": 2, "quantity": 1}]'}).scalar()

    assert "completed   1" in flask(env, "job-counts") and "queued      1" in flask(env, "job-counts")
    assert str(stuck) in flask(env, "stuck-jobs", "--older-than", "600")
    assert str(done) not in flask(env, "stuck-jobs", "--older-than", "0")
    assert "re-dispatched 1 of 1" in flask(env, "redispatch", "--older-than", "600")
    assert api.wait(str(stuck))["status"] == "completed"


def test_migrate_and_seed_demo(api, stack_env, peers):
    env = stack_env["env"]
    peers.reset(products=[{"id": 1, "quantity": 1}], carts=[])

    assert "up to date" in flask(env, "migrate")
    assert "seeded" in flask(env, "seed-demo")
    assert peers.product(100)["quantity"] == 1000 and peers.cart(50)["status"] == "Open"


def test_a_running_worker_answers_celery_inspect_ping(stack_env, worker):
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "tasks", "inspect", "ping", "--timeout", "5"],
                            cwd=ROOT, env=stack_env["env"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "worker1@" in result.stdout and "pong" in result.stdout
