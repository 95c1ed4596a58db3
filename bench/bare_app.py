"""The floor for the submission benchmark: the same route under the same gunicorn, doing nothing.

    gunicorn -w 2 --threads 4 -b 127.0.0.1:8000 "bench.bare_app:app"

One Flask route, `POST /orders/<customer_id>`, answering 202 with a body and a
Location header shaped like the real one, without touching PostgreSQL or the
broker. What the real endpoint reaches as a fraction of this is what its own
work (validation, the job insert and commit, the publish) costs.
"""
from __future__ import annotations

import uuid

from flask import Flask, jsonify

app = Flask(__name__)


@app.post("/orders/<int:customer_id>")
def submit(customer_id: int):
    job_id = str(uuid.uuid4())
    return jsonify(customer_id=customer_id, job_id=job_id, status="queued"), 202, {"Location": f"/jobs/{job_id}"}


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
