"""Placement by a plain call, as `placement/context.py` promises: a migrated database of the module's
own on the test PostgreSQL (every table emptied before each test), the reference peers served by an
event loop in a thread of the test process (their data, faults and counters reset before each test),
and the worker's dependencies built from explicit `Settings`. No broker, no worker, no subprocess."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Callable, Iterator

import pytest
from sqlalchemy import func, select, text, update

from backoff import RetryPolicy
from devstack.stack import migrate
from models import Base
from models.db import Database
from models.inventory import PENDING, InventoryMove, StockWrite
from models.jobs import Job
from models.orders import Order
from peers import Carts, Catalog, PeerHttp
from placement.batch import Limits, place
from placement.context import PlacementContext
from placement.items import normalize
from refpeers import create_app
from settings import Settings
from tests.refpeers.served import PeersAdmin, Served

# How long an execution waits for products another holds before it gives up with `stock_busy`; the
# worker's (WorkerRuntime: three peer timeouts) would make a test of that wait seconds.
IMPATIENT_LOCK_TIMEOUT = "50ms"


@pytest.fixture(scope="module")
def served_peers():
    """The reference peers' app, on loopback, for the module (no REFPEERS_* defaults: none, explicitly)."""
    served = Served(create_app("demo", latency_ms=0, error_rate=0))
    yield served
    served.close()


@pytest.fixture(scope="module")
def settings(database_url, served_peers) -> Settings:
    """What a worker of this module's database and peers would read from its environment."""
    migrate(database_url)
    return Settings(database_url=database_url, broker_url="memory://",  # placement publishes nothing
                    catalog_url=served_peers.url, cart_url=served_peers.url, peer_timeout=5.0,
                    batch_size=32, dispatch_deadline=30.0, retry_backoff_base=0.5, retry_backoff_max=30.0,
                    retry_deadline=1800.0)


@pytest.fixture(scope="module")
def database(settings) -> Iterator[Database]:
    """The module's database as a worker holds it (AUTOCOMMIT connections, a lock timeout)."""
    database = Database(settings.database_url, pool_size=4, lock_timeout=settings.peer_timeout * 3)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def peer_clients(settings) -> Iterator[tuple[Catalog, Carts]]:
    catalog = Catalog(PeerHttp("catalog", settings.catalog_url, settings.peer_timeout, settings.peer_pool_size))
    carts = Carts(PeerHttp("cart", settings.cart_url, settings.peer_timeout, settings.peer_pool_size))
    yield catalog, carts
    catalog.http.close()
    carts.http.close()


@pytest.fixture()
def peers(served_peers) -> PeersAdmin:
    """The peers with the demo data (products 1-100 with 1000 each, carts of customers 1-50), no faults."""
    admin = PeersAdmin(served_peers.url)
    admin.reset()
    return admin


@pytest.fixture()
def empty_tables(database):
    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with database.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names}"))


class Placement:
    """Jobs as a submission leaves them (queued, due now), batches placed by a plain call, and what
    the database then holds."""

    def __init__(self, settings: Settings, database: Database, catalog: Catalog, carts: Carts):
        self.database, self.catalog, self.carts = database, catalog, carts
        self.limits = Limits(settings.batch_size, settings.dispatch_deadline)
        self.policy = RetryPolicy(base=settings.retry_backoff_base, cap=settings.retry_backoff_max,
                                  deadline=settings.retry_deadline)

    def submit(self, customer_id: int, items: list[dict] | None = None) -> uuid.UUID:
        """A job placing `items` (None: the customer's cart), as the API accepts it."""
        with self.database.transaction() as session:
            job = Job(customer_id=customer_id, source="body" if items is not None else "cart",
                      requested_items=normalize(items) if items is not None else None, cart_status="not_needed")
            session.add(job)
            session.flush()
            return job.id

    def cancel(self, order_id: int) -> uuid.UUID:
        """A job cancelling the order, as the API accepts it."""
        with self.database.transaction() as session:
            order = session.get(Order, order_id)
            job = Job(customer_id=order.customer_id, kind="cancel", cancels_order_id=order_id, source="body",
                      cart_status="not_needed")
            session.add(job)
            session.flush()
            return job.id

    def place(self, task_id: str | None = None, *, on_step: Callable[[str], None] | None = None,
              impatient: bool = False):
        """One execution: claim what is due and place it; the outcomes by job. `impatient`: it waits
        for a product another holds only briefly (IMPATIENT_LOCK_TIMEOUT)."""
        with self.context(on_step, impatient) as ctx:
            return place(ctx, task_id or str(uuid.uuid4()), self.limits, self.policy)

    @contextmanager
    def context(self, on_step=None, impatient: bool = False) -> Iterator[PlacementContext]:
        with self.database.connection() as connection:
            if impatient:
                connection.exec_driver_sql(f"SET lock_timeout = '{IMPATIENT_LOCK_TIMEOUT}'")
            ctx = PlacementContext(connection, self.catalog, self.carts)
            if on_step is not None:
                ctx.on_step = on_step
            try:
                yield ctx
            finally:
                if impatient:
                    connection.exec_driver_sql("RESET lock_timeout")

    def due_now(self, *job_ids: uuid.UUID) -> None:
        """Their retry time has come (what waiting out the backoff would do)."""
        with self.database.transaction() as session:
            session.execute(update(Job).where(Job.id.in_(job_ids)).values(next_run_at=func.now()))

    def get(self, job_id: uuid.UUID) -> Job:
        with self.database.transaction() as session:
            return session.get(Job, job_id)

    def order_of(self, job_id: uuid.UUID) -> Order | None:
        """The job's order with its items (loaded with it)."""
        with self.database.transaction() as session:
            return session.scalars(select(Order).where(Order.job_id == job_id)).one_or_none()

    def ordered(self, job_id: uuid.UUID) -> dict[int, int] | None:
        """The job's order as {product_id: quantity}; None without one."""
        order = self.order_of(job_id)
        return None if order is None else {item.product_id: item.quantity for item in order.items}

    def count(self, model, *where) -> int:
        with self.database.transaction() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where))

    def writes(self, product_id: int | None = None) -> list[StockWrite]:
        """The ledger's writes (of one product), in order."""
        query = select(StockWrite).order_by(StockWrite.id)
        if product_id is not None:
            query = query.where(StockWrite.product_id == product_id)
        with self.database.transaction() as session:
            return list(session.scalars(query))

    def moves(self, job_id: uuid.UUID) -> dict[tuple[int, str], tuple[int, str]]:
        """The job's moves: {(product_id, kind): (quantity, state)}."""
        with self.database.transaction() as session:
            return {(move.product_id, move.kind): (move.quantity, move.state) for move in
                    session.scalars(select(InventoryMove).where(InventoryMove.job_id == job_id))}

    def assert_settled(self) -> None:
        """The ledger holds no write, and no move, whose outcome is still unknown."""
        assert self.count(StockWrite, StockWrite.state == PENDING) == 0
        assert self.count(InventoryMove, InventoryMove.state == PENDING) == 0


@pytest.fixture()
def placement(settings, database, peer_clients, empty_tables, peers) -> Placement:
    return Placement(settings, database, *peer_clients)

