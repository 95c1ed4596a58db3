"""the `accepted` event is the job row itself

A job's first timeline event was a job_events row written with the job; it said nothing the job
row does not (when it was created, and from what: the cart or the body, the order it cancels, the
job it replays). The timeline now reads it from the job row, so a submission writes one row in one
table; the rows written before are dropped (downgrade writes them back from the job rows).

Revision ID: 7a3d5c2e9f10
Revises: 5d2f8a91c3e4
Create Date: 2026-12-01 23:30:00.000000
"""
from alembic import op

revision = '7a3d5c2e9f10'
down_revision = '5d2f8a91c3e4'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DELETE FROM job_events WHERE event = 'accepted'")


def downgrade():
    op.execute(
        "INSERT INTO job_events (job_id, at, event, status, attempt, detail)"
        " SELECT id, created_at, 'accepted', 'queued', 0, CASE"
        " WHEN cancels_order_id IS NOT NULL THEN jsonb_build_object('cancels_order_id', cancels_order_id)"
        " WHEN replay_of IS NOT NULL THEN jsonb_build_object('replay_of', replay_of::text)"
        " ELSE jsonb_build_object('source', source) END FROM jobs"
    )
