"""A fresh reference-peers app per test, served over real HTTP on loopback, with demo data, no faults
and no REFPEERS_* env leaking in."""
import json
import threading

import pytest
import requests
from aiohttp import web

from refpeers import create_app
from tests.refpeers.served import Served


class Answer:
    """An HTTP answer, read the way these tests read it."""

    def __init__(self, response: requests.Response):
        self.status_code = response.status_code
        self.headers = response.headers
        self.text = response.text
        self.mimetype = response.headers.get("Content-Type", "").partition(";")[0].strip()

    @property
    def json(self):
        return None if self.mimetype != "application/json" else json.loads(self.text)

    def get_data(self, as_text: bool = False):
        return self.text if as_text else self.text.encode()


class Client:
    """Requests to one served app; usable from several threads at once (a session per thread)."""

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if getattr(self._local, "session", None) is None:
            self._local.session = requests.Session()
        return self._local.session

    def open(self, method: str, path: str, *, json=None, data=None, content_type=None, headers=None,
             timeout: float = 10) -> Answer:
        headers = dict(headers or {})
        if content_type is not None:
            headers["Content-Type"] = content_type
        kwargs = {"json": json} if json is not None else {"data": data}
        return Answer(self._session().request(method, f"{self.url}{path}", headers=headers, timeout=timeout, **kwargs))

    def get(self, path, **kwargs):
        return self.open("GET", path, **kwargs)

    def put(self, path, **kwargs):
        return self.open("PUT", path, **kwargs)

    def post(self, path, **kwargs):
        return self.open("POST", path, **kwargs)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("REFPEERS_SEED", "REFPEERS_LATENCY_MS", "REFPEERS_ERROR_RATE", "REFPEERS_FAULT_SEED"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture()
def serve():
    """serve(app) -> a client of that app over HTTP; every server is stopped after the test."""
    served = []

    def start(app: web.Application) -> Client:
        served.append(Served(app))
        return Client(served[-1].url)

    yield start
    for server in served:
        server.close()


@pytest.fixture()
def app():
    return create_app("demo")


@pytest.fixture()
def client(app, serve):
    return serve(app)


@pytest.fixture()
def admin(client):
    """Small helpers over the admin endpoints."""

    class Admin:
        def faults(self, **settings):
            response = client.put("/admin/faults", json=settings)
            assert response.status_code == 200, response.json
            return response.json

        def state(self):
            return client.get("/admin/state").json

        def product(self, product_id):
            return self.state()["products"][str(product_id)]

        def cart(self, customer_id):
            return self.state()["carts"][str(customer_id)]

        def stats(self):
            return client.get("/admin/stats").json

        def reset(self, **body):
            response = client.post("/admin/reset", json=body)
            assert response.status_code == 200, response.json
            return response.json

    return Admin()
