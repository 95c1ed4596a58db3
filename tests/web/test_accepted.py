"""A 202 wakes an execution for a new job only once the answer is sent (the WSGI server closes it), so
the client never waits for the wake-up's round trips; a repeated submission wakes nothing."""
from web import accepted

ITEM = [{"product_id": 1, "quantity": 1}]


def test_a_new_job_is_woken_for_once_its_answer_is_closed_and_a_repeat_wakes_nothing(make_api, monkeypatch):
    woken = []
    monkeypatch.setattr(accepted, "wake", lambda: woken.append(True))
    api = make_api()

    with api.http.post("/orders/7", json={"items": ITEM}, headers={"Idempotency-Key": "k-1"}) as first:
        assert first.status_code == 202
        assert woken == []  # the answer is made; the wake-up waits for it to be sent
    with api.http.post("/orders/7", json={"items": ITEM}, headers={"Idempotency-Key": "k-1"}) as repeat:
        assert repeat.status_code == 202 and repeat.get_json()["job_id"] == first.get_json()["job_id"]

    assert woken == [True]
