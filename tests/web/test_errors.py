"""Every error is one JSON shape: an unexpected exception a 500 without a traceback, and each client
error (400, 404, 405, 413, 415, 422) through the app as deployed."""
from flask import Flask

from web import errors


def test_an_unexpected_error_is_a_json_500():
    app = Flask(__name__)
    errors.init_app(app)

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret detail")

    response = app.test_client().get("/boom")

    assert response.status_code == 500
    assert response.get_json() == {"code": 500, "status": "Internal Server Error",
                                   "message": "Internal error; it has been logged"}
    assert b"secret detail" not in response.data


ITEM = [{"product_id": 1, "quantity": 1}]


def test_every_error_is_the_same_json_shape(api):
    cases = [
        api.get("/nowhere"),
        api.http.delete("/orders/1"),
        api.get("/orders/0"),
        api.get("/orders/2147483648"),
        api.post("/orders/1", data="{not json", headers={"Content-Type": "application/json"}),
        api.post("/orders/1", json={"items": [{"product_id": 1}]}),
        api.post("/orders/1", json={"items": []}),
        api.post("/orders/1", json={"items": ITEM, "extra": 1}),
        api.post("/orders/1", json=[1, 2]),
        api.post("/orders/1", data="items=1", headers={"Content-Type": "application/x-www-form-urlencoded"}),
        api.post("/orders/1", json={"items": [{"product_id": 1, "quantity": "1"}]}),
        api.post("/orders/1", data="x" * 70_000, headers={"Content-Type": "application/json"}),
    ]
    expected = [404, 405, 404, 404, 400, 422, 422, 422, 422, 415, 422, 413]
    assert [r.status_code for r in cases] == expected
    for response in cases:
        assert response.headers["Content-Type"] == "application/json"
        body = response.get_json()
        assert body["code"] == response.status_code and body["status"]


def test_inputs_the_fuzzer_found_are_clear_client_errors(api):
    mixed = api.post("/orders/1", json={"items": [{"product_id": 1, "quantity": 1}, 0, {"product_id": 1,
                                                                                         "quantity": 10_000}]})
    far_page = api.get("/orders", query_string={"page": 432131411967534592, "page_size": 43})
    odd_status = api.get("/orders", query_string={"status": "\x03\x10_K"})
    odd_key = api.submit(1, [{"product_id": 1, "quantity": 1}], key="has space")

    assert mixed.status_code == 422 and "1" in mixed.get_json()["errors"]["json"]["items"]
    assert far_page.status_code == 200 and far_page.get_json()["orders"] == []
    assert odd_status.status_code == 422
    assert odd_key.status_code == 422
