"""Operator commands: `flask --app web migrate | seed-demo | mint-token | job-counts | stuck-jobs | redispatch |
replay-failed`."""
from __future__ import annotations

from datetime import timezone

import click
from flask import Flask, current_app
from sqlalchemy import func, or_, select

import migrations
from models.jobs import FAILED, KIND_PLACE, UNFINISHED, Job


def _database():
    """The app's database, checked and migrated as before serving (web.ready); only the commands
    that use it ask for it."""
    from web import ready

    ready(current_app)
    return current_app.extensions["database"]


@click.command("migrate")
def migrate():
    """Apply every pending migration (the same guarded upgrade as at start-up)."""
    migrations.upgrade(_database().engine)
    click.echo("schema is up to date")


@click.command("seed-demo")
@click.option("--peers-url", envvar="CATALOG_URL", required=True, help="the reference peers (default CATALOG_URL)")
def seed_demo(peers_url):
    """Reset the reference peers to the demo data: products 1-100 with 1,000 units, carts for customers 1-50."""
    import requests

    from refpeers import demo_data

    response = requests.post(f"{peers_url.rstrip('/')}/admin/reset", json=demo_data(), timeout=10)
    response.raise_for_status()
    click.echo(f"reference peers at {peers_url} seeded: {response.json()}")


@click.command("mint-token")
@click.option("--sub", "subject", required=True, help="customer id (or a service name with --admin)")
@click.option("--admin", is_flag=True, help="grant orders:admin (sees every customer)")
@click.option("--ttl", default=3600, show_default=True, help="seconds until it expires")
@click.option("--private-key", type=click.File(), help="RS256 private key file, when the API has JWT_PUBLIC_KEY")
def mint_token(subject, admin, ttl, private_key):
    """Print a bearer token for testing, signed like the API expects."""
    from web.auth import mint

    click.echo(mint(current_app.extensions["settings"], subject, admin, ttl,
                    private_key.read() if private_key else None))


@click.command("job-counts")
def job_counts():
    """Print how many jobs are in each status."""
    with _database().transaction() as session:
        for status, count in session.execute(select(Job.status, func.count()).group_by(Job.status).order_by(Job.status)):
            click.echo(f"{status:<11} {count}")


def _stuck(session, older_than: float):
    return session.scalars(
        select(Job).where(Job.status.in_(UNFINISHED),
                          Job.updated_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than))
        .order_by(Job.updated_at)
    ).all()


@click.command("stuck-jobs")
@click.option("--older-than", default=300.0, show_default=True, help="seconds without progress")
def stuck_jobs(older_than):
    """List unfinished jobs that have not moved for a while."""
    with _database().transaction() as session:
        for job in _stuck(session, older_than):
            click.echo(f"{job.id}  {job.status:<10} step={job.step} attempts={job.attempts} updated={job.updated_at:%F %T}")


@click.command("redispatch")
@click.option("--older-than", default=300.0, show_default=True, help="seconds without progress")
def redispatch(older_than):
    """Mark every stuck job due now and wake executions for them (safe: a running job is skipped)."""
    from tasks.dispatch import wake_another

    with _database().transaction() as session:
        stuck = _stuck(session, older_than)
        for job in stuck:
            job.next_run_at = func.now()
    sent = sum(wake_another(lane) for lane in {job.lane for job in stuck})
    click.echo(f"{len(stuck)} stuck job(s) due again; published {sent} wake-up(s)")


@click.command("replay-failed")
@click.option("--since", type=click.DateTime(), help="failed at or after this time (UTC)")
@click.option("--until", type=click.DateTime(), help="failed before this time (UTC)")
@click.option("--error-code", help="only jobs whose error (or the last error before giving up) has this code")
@click.option("--dry-run", is_flag=True, help="list the jobs, replay nothing")
def replay_failed(since, until, error_code, dry_run):
    """Replay failed order jobs in bulk, e.g. those that failed while a peer was down (admin's POST /jobs/{id}/retry)."""
    from tasks.dispatch import wake
    from placement.jobs import replay

    if since is None and until is None and error_code is None:
        raise click.UsageError("choose the jobs: --since, --until and/or --error-code")
    query = select(Job).where(Job.status == FAILED, Job.kind == KIND_PLACE)
    if since is not None:
        query = query.where(Job.updated_at >= since.replace(tzinfo=timezone.utc))
    if until is not None:
        query = query.where(Job.updated_at < until.replace(tzinfo=timezone.utc))
    if error_code is not None:
        query = query.where(or_(Job.error["code"].astext == error_code,
                                Job.error["details"]["last_error"].astext == error_code))
    with _database().transaction() as session:
        failed = session.scalars(query.order_by(Job.updated_at)).all()
        if dry_run:
            for job in failed:
                click.echo(f"{job.id}  failed {job.updated_at:%F %T}  {(job.error or {}).get('code')}")
            click.echo(f"{len(failed)} job(s) would be replayed")
            return
        replays = [replay(session, job) for job in failed]
    new = [result.job.id for result in replays if result.created]
    sent = int(wake()) if new else 0
    click.echo(f"replayed {len(new)} job(s) ({len(replays) - len(new)} already had a replay); "
               f"published {sent} wake-up(s)")


def init_app(app: Flask) -> None:
    """Register the commands on the app's CLI."""
    for command in (migrate, seed_demo, mint_token, job_counts, stuck_jobs, redispatch, replay_failed):
        app.cli.add_command(command)
