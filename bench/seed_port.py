"""The seed's synchronous `create_order`, ported to Flask for the benchmark's baseline.

    SEED_DSN=postgresql://postgres@127.0.0.1:5432/db SEED_SCHEMA=seed \
    CATALOG_URL=http://127.0.0.1:8090 CART_URL=http://127.0.0.1:8090 \
    gunicorn -w 2 --threads 4 -b 127.0.0.1:8100 "bench.seed_port:app"

Same logic, same order of calls as the seed (shared/seed/order-management-seed.md):
GET the cart; GET each product to check the stock (400 on the first short
one); INSERT the order; for each item GET the product, PUT it back with the
quantity lowered, INSERT the item; COMMIT; PUT the cart's status 'Ordered'.
Module-level `requests` calls (a new connection per call, no timeout) and
psycopg2 with RealDictCursor, like the seed. The tables are created at start-up
with the seed's own statements, in their own schema (SEED_SCHEMA, default
`seed`) so they sit beside the service's `orders`/`order_items` in the same database.

Two deliberate differences, both in the seed's favour and neither changing its
logic: the seed shares one connection and one cursor among all requests (a
FastAPI `def` endpoint runs in a thread pool, so concurrent orders would
interleave on that cursor and commit each other's half-done work); here each
thread has its own connection. And the seed's `return {...}, 400` is a FastAPI
tuple that would be sent as a JSON list with status 200; here it is the
intended status. The seed's race stays: two orders of one product may both GET
the same quantity and both PUT their own result, losing one decrease — the
benchmark counts the units lost that way.
"""
from __future__ import annotations

import os
import threading

import psycopg2
import requests
from flask import Flask, jsonify
from psycopg2.extras import RealDictCursor

CATALOG_URL = os.environ.get("CATALOG_URL", "http://127.0.0.1:8090").rstrip("/")
CART_URL = os.environ.get("CART_URL", CATALOG_URL).rstrip("/")
SEED_DSN = os.environ.get("SEED_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SEED_SCHEMA = os.environ.get("SEED_SCHEMA", "seed")

CREATE_ORDERS_TABLE = '''
    CREATE TABLE IF NOT EXISTS orders(
        id SERIAL PRIMARY KEY,
        customer_id INT NOT NULL,
        status VARCHAR NOT NULL
    )
    '''

CREATE_ORDER_ITEMS_TABLE = '''
    CREATE TABLE IF NOT EXISTS order_items(
        id SERIAL PRIMARY KEY,
        product_id INT NOT NULL,
        quantity INT NOT NULL,
        order_id INT,
        FOREIGN KEY (order_id) REFERENCES orders (id)
    )
    '''


def connect():
    """A connection like the seed's (RealDictCursor), on the seed's own schema."""
    return psycopg2.connect(SEED_DSN, cursor_factory=RealDictCursor, options=f"-c search_path={SEED_SCHEMA}")


def create_tables() -> None:
    """The seed's start-up: create `orders` and `order_items` if they do not exist."""
    conn = psycopg2.connect(SEED_DSN)
    try:
        cur = conn.cursor()
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{SEED_SCHEMA}"')
        cur.execute(f'SET search_path TO "{SEED_SCHEMA}"')
        cur.execute(CREATE_ORDERS_TABLE)
        cur.execute(CREATE_ORDER_ITEMS_TABLE)
        conn.commit()
    finally:
        conn.close()


_local = threading.local()


def _db():
    """This thread's connection and cursor (the seed had one of each for the whole process)."""
    if getattr(_local, "conn", None) is None or _local.conn.closed:
        _local.conn = connect()
        _local.cur = _local.conn.cursor()
    return _local.conn, _local.cur


app = Flask(__name__)


@app.post("/orders/<int:customer_id>")
def create_order(customer_id: int):
    conn, cur = _db()
    # Retrieve the customer's shopping cart from the Shopping Cart Microservice
    response = requests.get(f"{CART_URL}/carts/{customer_id}")
    if response.status_code == 200:
        cart = response.json()

        # Confirm that sufficient inventory is available for each item in the cart
        for item in cart['items']:
            product = requests.get(f"{CATALOG_URL}/products/{item['product_id']}").json()
            if product['quantity'] < item['quantity']:
                return {"message": f"Not enough product in stock for product id {item['product_id']}"}, 400

        # If we reach here, it means we have enough inventory for all items in the cart.
        # Now, decrease the product quantity in the Product Catalog Service and create the order
        cur.execute("INSERT INTO orders (customer_id, status) VALUES (%s, 'Ordered') RETURNING id",
                    (customer_id,))
        order_id = cur.fetchone()['id']
        for item in cart['items']:
            product = requests.get(f"{CATALOG_URL}/products/{item['product_id']}").json()
            product['quantity'] -= item['quantity']
            requests.put(f"{CATALOG_URL}/products/{item['product_id']}", json=product)

            cur.execute("INSERT INTO order_items (product_id, quantity, order_id) VALUES (%s, %s, %s)",
                        (item['product_id'], item['quantity'], order_id))
        conn.commit()

        # Updating the order status in the Shopping Cart Microservice
        response = requests.put(f"{CART_URL}/carts/{customer_id}", json={"status": "Ordered"})
        if response.status_code != 200:
            return {"message": "Failed to update cart status"}, 500

        return {"message": "Order created successfully"}, 201

    return {"message": "Failed to retrieve the customer's shopping cart"}, 500


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


# The seed connected and created its tables when the module was loaded.
try:
    create_tables()
    print("Tables created successfully", flush=True)
except psycopg2.Error as e:
    print("An error occurred while creating the tables:", e, flush=True)
