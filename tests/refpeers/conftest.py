"""A fresh reference-peers app per test, with demo data, no faults and no REFPEERS_* env leaking in."""
import pytest

from refpeers import create_app


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("REFPEERS_SEED", "REFPEERS_LATENCY_MS", "REFPEERS_ERROR_RATE", "REFPEERS_FAULT_SEED"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture()
def app():
    return create_app("demo")


@pytest.fixture()
def client(app):
    return app.test_client()


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
