"""The operator commands, run as an operator would (`flask --app web ...`) against the live stack."""
import socket
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

    counts = flask(env, "job-counts")
    assert "completed   1" in counts and "queued      1" in counts
    assert str(stuck) in flask(env, "stuck-jobs", "--older-than", "600")
    assert str(done) not in flask(env, "stuck-jobs", "--older-than", "0")
    assert "1 stuck job(s) due again" in flask(env, "redispatch", "--older-than", "600")
    assert api.wait(str(stuck))["status"] == "completed"


def test_migrate_and_seed_demo(api, stack_env, peers):
    env = stack_env["env"]
    peers.reset(products=[{"id": 1, "quantity": 1}], carts=[])

    assert "up to date" in flask(env, "migrate")
    assert "seeded" in flask(env, "seed-demo")
    assert peers.product(100)["quantity"] == 1000 and peers.cart(50)["status"] == "Open"


def test_a_running_worker_answers_celery_inspect_ping(stack_env, worker):
    # Addressed to the worker, the command returns with its answer instead of at the end of its timeout.
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "tasks", "inspect", "ping", "--timeout", "5",
                             "--destination", f"worker1@{socket.gethostname()}"],
                            cwd=ROOT, env=stack_env["env"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "worker1@" in result.stdout and "pong" in result.stdout


def test_replay_failed_replays_a_window_or_an_error_code_once(api, stack_env, peers, engine, submitted_an_hour_ago):
    env = stack_env["env"]
    peers.faults(error_rate=1.0, scope="products")
    failed = [api.submit(53 + i, [{"product_id": 3, "quantity": 1}]).json()["job_id"] for i in range(2)]
    for job_id in failed:
        submitted_an_hour_ago(job_id)
    assert all(api.wait(job_id, timeout=60)["status"] == "failed" for job_id in failed)
    peers.faults(error_rate=0)
    with engine.begin() as connection:  # one of them failed yesterday
        connection.execute(text("UPDATE jobs SET updated_at = now() - interval '1 day' WHERE id = :id"),
                           {"id": failed[0]})

    unfiltered = subprocess.run([sys.executable, "-m", "flask", "--app", "web", "replay-failed"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
    assert unfiltered.returncode == 2 and "choose the jobs" in unfiltered.stderr
    assert "0 job(s) would be replayed" in flask(env, "replay-failed", "--error-code", "unknown_product", "--dry-run")
    listed = flask(env, "replay-failed", "--error-code", "peer_unavailable", "--dry-run")
    assert failed[0] in listed and failed[1] in listed and "2 job(s) would be replayed" in listed

    recent = flask(env, "replay-failed", "--since", "2000-01-01", "--error-code", "peer_unavailable",
                   "--until", "2999-01-01")
    assert "replayed 2 job(s)" in recent
    assert "replayed 0 job(s) (2 already had a replay)" in flask(env, "replay-failed", "--error-code",
                                                                  "retries_exhausted")
    with engine.begin() as connection:
        replays = connection.execute(text("SELECT id, replay_of FROM jobs WHERE replay_of IS NOT NULL")).all()
    assert sorted(str(row.replay_of) for row in replays) == sorted(failed)
    assert all(api.wait(str(row.id))["status"] == "completed" for row in replays)
    assert peers.product(3)["quantity"] == 1000 - 2
