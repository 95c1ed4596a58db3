"""`/imports`: many orders in one request, all or nothing, each line an ordinary job; the import polled like
a job (counts, a page of lines, ETag, Prefer: wait). And `POST /customers/{customer_id}/orders`, the
single order's own path beside the seed's."""
import json
import threading

from sqlalchemy import event, text

from devstack import tokens

ITEM = [{"product_id": 1, "quantity": 1}]
CALLBACK = "http://127.0.0.1:9/hook"


def _count(engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608 - the tests' own names


def _statements(app, contains: str) -> list[str]:
    """The statements the app runs from now on that contain `contains` (a live list)."""
    seen = []

    def note(_connection, _cursor, statement, *_):
        if contains in statement:
            seen.append(statement)

    event.listen(app.extensions["database"].engine, "before_cursor_execute", note)
    return seen


def test_an_import_is_one_statement_and_answers_each_lines_job(api, engine):
    inserts = _statements(api.app, "INSERT INTO jobs")
    lines = [{"customer_id": 4, "items": ITEM}, {"customer_id": 5}, {"customer_id": 4, "items": ITEM,
                                                                      "callback_url": CALLBACK}]

    answer = api.post("/imports", json={"orders": lines})

    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()
    assert answer.headers["Location"] == f"/imports/{body['import_id']}"
    assert body["lines"] == 3 and len(inserts) == 1
    assert [(j["line"], j["customer_id"], j["status"], j["created"]) for j in body["jobs"]] == [
        (0, 4, "queued", True), (1, 5, "queued", True), (2, 4, "queued", True)]
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT import_line, source, requested_items, callback_url, next_run_at FROM jobs"
            " WHERE import_id = :id ORDER BY import_line"), {"id": body["import_id"]}).all()
    assert [(r.import_line, r.source, r.requested_items, r.callback_url) for r in rows] == [
        (0, "body", ITEM, None), (1, "cart", None, None), (2, "body", ITEM, CALLBACK)]
    assert rows[0].next_run_at < rows[1].next_run_at < rows[2].next_run_at  # in line order, a step apart


def test_each_line_is_an_ordinary_job(api):
    first, second = api.post("/imports", json={"orders": [{"customer_id": 4}, {"customer_id": 4}]}).get_json()["jobs"]

    job = api.get(f"/jobs/{first['job_id']}")
    cancelled = api.post(f"/jobs/{second['job_id']}/cancel")

    assert job.status_code == 200 and job.get_json()["status"] == "queued"
    events = api.get(f"/jobs/{first['job_id']}/events").get_json()["events"]
    assert [(e["event"], e["detail"]) for e in events] == [("accepted", {"source": "cart"})]
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"


def test_one_bad_line_refuses_the_import_naming_each_bad_line(api, engine):
    lines = [{"customer_id": 4, "items": ITEM},
             {"customer_id": 4, "items": [{"product_id": 1, "quantity": 0}]},
             {"items": ITEM},
             {"customer_id": 4},
             {"customer_id": 4, "idempotency_key": "with space"},
             {"customer_id": 4, "callback_url": "ftp://example.com/x"}]

    answer = api.post("/imports", json={"orders": lines})

    assert answer.status_code == 422
    bad = answer.get_json()["errors"]["json"]["orders"]
    assert set(bad) == {"1", "2", "4", "5"}
    assert "items" in bad["1"] and "customer_id" in bad["2"] and "idempotency_key" in bad["4"]
    assert "callback_url" in bad["5"]
    assert _count(engine, "jobs") == _count(engine, "imports") == 0


def test_the_lines_and_bytes_of_an_import_are_limited(make_api, engine):
    api = make_api(MAX_IMPORT_LINES="3", MAX_IMPORT_BYTES="1024")

    too_many = api.post("/imports", json={"orders": [{"customer_id": 4}] * 4})
    too_big = api.post("/imports", json={"orders": [{"customer_id": 4, "items": ITEM * 40}]})
    empty = api.post("/imports", json={"orders": []})
    not_json = api.post("/imports", data="customer_id=4", content_type="application/x-www-form-urlencoded")
    at_the_limit = api.post("/imports", json={"orders": [{"customer_id": 4}] * 3})

    assert too_many.status_code == empty.status_code == 422
    assert too_big.status_code == 413 and not_json.status_code == 415
    assert at_the_limit.status_code == 202
    assert _count(engine, "jobs") == 3


def test_a_seen_idempotency_key_answers_its_job_and_another_order_under_it_is_a_conflict(api, engine):
    single = api.post("/customers/4/orders", json={"items": ITEM}, headers={"Idempotency-Key": "k-1"}).get_json()
    lines = [{"customer_id": 4, "items": ITEM, "idempotency_key": "k-1"}, {"customer_id": 4, "idempotency_key": "k-2"},
             {"customer_id": 4, "idempotency_key": "k-2"}]

    first = api.post("/imports", json={"orders": lines}).get_json()["jobs"]
    again = api.post("/imports", json={"orders": lines}).get_json()["jobs"]
    jobs_before = _count(engine, "jobs")
    conflict = api.post("/imports", json={"orders": [
        {"customer_id": 4}, {"customer_id": 4, "idempotency_key": "k-2", "items": ITEM},
        {"customer_id": 5, "idempotency_key": "k-1", "items": ITEM}, {"customer_id": 4, "idempotency_key": "k-3"}]})

    assert (first[0]["job_id"], first[0]["created"]) == (single["job_id"], False)
    assert first[1]["created"] and (first[2]["job_id"], first[2]["created"]) == (first[1]["job_id"], False)
    assert [j["job_id"] for j in again] == [j["job_id"] for j in first] and not any(j["created"] for j in again)
    assert conflict.status_code == 409
    assert set(conflict.get_json()["errors"]["json"]["orders"]) == {"1", "2"}
    assert _count(engine, "jobs") == jobs_before  # nothing of the conflicting import was accepted
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM jobs WHERE idempotency_key = 'k-3'")) == 0


def test_a_customer_imports_and_sees_only_its_own_orders(api, engine):
    alice, bob = api.as_(tokens.token(101, admin=False)), api.as_(tokens.token(102, admin=False))

    mixed = alice.post("/imports", json={"orders": [{"customer_id": 101}, {"customer_id": 102}, {"customer_id": 103}]})
    own = alice.post("/imports", json={"orders": [{"customer_id": 101}, {"customer_id": 101}]}).get_json()
    by_admin = api.post("/imports", json={"orders": [{"customer_id": 101}, {"customer_id": 102}]}).get_json()

    assert mixed.status_code == 403 and set(mixed.get_json()["errors"]["json"]["orders"]) == {"1", "2"}
    assert _count(engine, "jobs") == 4  # the two of `own` and the two of `by_admin`
    assert alice.get(f"/imports/{own['import_id']}").get_json()["customer_id"] == 101
    assert bob.get(f"/imports/{own['import_id']}").status_code == 404
    assert alice.get(f"/imports/{by_admin['import_id']}").status_code == 404  # several customers' lines: admins only
    assert api.get(f"/imports/{by_admin['import_id']}").get_json()["customer_id"] is None
    assert api.get("/imports/not-a-uuid").status_code == api.get(f"/imports/{own['jobs'][0]['job_id']}").status_code == 404


def test_an_import_counts_its_jobs_pages_its_lines_and_answers_304_until_one_changes(api, jobs):
    created = api.post("/imports", json={"orders": [{"customer_id": c} for c in (1, 2, 3, 4, 5)]}).get_json()
    path = f"/imports/{created['import_id']}"

    first = api.get(path, query_string={"page": 2, "page_size": 2})
    tag = first.headers["ETag"]
    unchanged = api.get(path, query_string={"page": 2, "page_size": 2}, headers={"If-None-Match": tag})
    jobs.set_status(created["jobs"][0]["job_id"], "completed")
    changed = api.get(path, query_string={"page": 2, "page_size": 2}, headers={"If-None-Match": tag})

    body = first.get_json()
    assert first.status_code == 200 and body["lines"] == 5 and not body["done"]
    assert body["counts"] == {"queued": 5, "processing": 0, "retrying": 0, "completed": 0, "rejected": 0,
                              "failed": 0, "cancelled": 0}
    assert [(j["line"], j["customer_id"], j["status"]) for j in body["jobs"]] == [(2, 3, "queued"), (3, 4, "queued")]
    assert json.loads(first.headers["X-Pagination"])["total"] == 5 and first.headers["Retry-After"] == "1"
    assert unchanged.status_code == 304 and unchanged.data == b"" and unchanged.headers["ETag"] == tag
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert changed.get_json()["counts"]["completed"] == 1


def test_waiting_for_an_import_holds_the_request_until_every_line_ended(api, jobs):
    created = api.post("/imports", json={"orders": [{"customer_id": 4}] * 3}).get_json()
    path = f"/imports/{created['import_id']}"
    held = {}
    waiter = threading.Thread(target=lambda: held.update(answer=api.as_(tokens.token()).get(
        path, headers={"Prefer": "wait=30"})))
    waiter.start()
    for line in created["jobs"]:
        jobs.set_status(line["job_id"], "completed")
    waiter.join(timeout=25)

    assert not waiter.is_alive()  # woken by the ends, well before its 30 seconds
    answer = held["answer"]
    assert answer.headers["Preference-Applied"] == "wait=30" and "Retry-After" not in answer.headers
    assert answer.get_json()["done"] and answer.get_json()["counts"]["completed"] == 3


def test_single_orders_have_a_path_of_their_own_and_the_seeds_still_works(api):
    own = api.post("/customers/4/orders", json={"items": ITEM})
    seed = api.submit(4, ITEM)
    cart = api.post("/customers/4/orders")

    assert own.status_code == seed.status_code == cart.status_code == 202
    assert own.headers["Location"] == f"/jobs/{own.get_json()['job_id']}"
    assert api.post("/customers/4/orders", data="x", content_type="text/plain").status_code == 415
    assert api.as_(tokens.token(5, admin=False)).post("/customers/4/orders").status_code == 403
    paths = api.get("/openapi.json").get_json()["paths"]
    assert paths["/orders/{id}"]["post"]["deprecated"] is True
    assert "deprecated" not in paths["/customers/{customer_id}/orders"]["post"]
    assert paths["/imports"]["post"]["responses"]["202"]["links"]["import"]["parameters"] == {
        "import_id": "$response.body#/import_id"}
