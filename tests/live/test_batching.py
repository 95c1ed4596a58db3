"""Under a burst, orders are placed in batches: far fewer executions (and broker messages) than orders."""
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import text

from devstack.tokens import token

ORDERS, CUSTOMERS = 1000, 50


def test_a_burst_of_a_thousand_orders_is_placed_by_far_fewer_executions(api, engine):
    sessions = {c: requests.Session() for c in range(1, CUSTOMERS + 1)}
    for customer, session in sessions.items():
        session.headers["Authorization"] = f"Bearer {token(customer, admin=False)}"

    def submit(n: int) -> int:
        customer = n % CUSTOMERS + 1
        response = sessions[customer].post(f"{api.url}/orders/{customer}", timeout=30,
                                           json={"items": [{"product_id": n % 100 + 1, "quantity": 1}]})
        return response.status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(submit, range(ORDERS)))
    assert statuses == [202] * ORDERS

    with engine.connect() as connection:
        for _ in range(600):
            done = connection.execute(text("SELECT count(*) FROM jobs WHERE status = 'completed'")).scalar()
            if done == ORDERS:
                break
            connection.execute(text("SELECT pg_sleep(0.1)"))
        executions = connection.execute(text("SELECT count(DISTINCT task_id) FROM jobs")).scalar()
        orders = connection.execute(text("SELECT count(*) FROM orders")).scalar()

    assert done == orders == ORDERS
    assert executions <= ORDERS // 4, f"{executions} executions placed {ORDERS} orders"
