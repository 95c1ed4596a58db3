"""notify when a job ends

A job that becomes completed, rejected, failed or cancelled sends NOTIFY job_ended with its id,
whoever changed it (the worker, a cancellation, an operator's SQL): the API wakes the requests
waiting for it (Prefer: wait=N, web/waits.py) without depending on the worker's code. PostgreSQL
delivers the notification when the change commits, and never for a change rolled back.

Revision ID: 3c5e1a7d9b20
Revises: b47c0e11a001
Create Date: 2026-12-01 15:20:00.000000
"""
from alembic import op

revision = '3c5e1a7d9b20'
down_revision = 'b47c0e11a001'
branch_labels = None
depends_on = None

# web/waits.py listens on this channel.
CHANNEL = "job_ended"
TERMINAL = "'completed', 'rejected', 'failed', 'cancelled'"


def upgrade():
    op.execute(f"""
        CREATE FUNCTION notify_job_ended() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', NEW.id::text);
            RETURN NULL;
        END
        $$
    """)
    op.execute(f"""
        CREATE TRIGGER jobs_notify_ended AFTER UPDATE ON jobs FOR EACH ROW
        WHEN (NEW.status IN ({TERMINAL}) AND OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION notify_job_ended()
    """)


def downgrade():
    op.execute("DROP TRIGGER jobs_notify_ended ON jobs")
    op.execute("DROP FUNCTION notify_job_ended()")
