"""Placing batches by a plain call, and reading what they left in the database: for the fast tests of
placement (tests/placement/conftest.py builds what it needs) and the live ones that kill an execution."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Callable, Iterator

from sqlalchemy import func, select, update

from backoff import RetryPolicy
from models.db import Database
from models.inventory import PENDING, InventoryMove, StockWrite
from models.jobs import SINGLES, Job
from models.orders import Order
from peers import Carts, Catalog
from placement.batch import Limits, place
from placement.context import PlacementContext
from placement.items import normalize

# How long an execution waits for products another holds before it gives up with `stock_busy`; the
# worker's (WorkerRuntime: three peer timeouts) would make a test of that wait seconds.
IMPATIENT_LOCK_TIMEOUT = "50ms"


class Placement:
    """Jobs as a submission leaves them (queued, due now), batches placed by a plain call, and what
    the database then holds."""

    def __init__(self, database: Database, catalog: Catalog, carts: Carts, limits: Limits, policy: RetryPolicy):
        self.database, self.catalog, self.carts = database, catalog, carts
        self.limits, self.policy = limits, policy

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
            return place(ctx, task_id or str(uuid.uuid4()), self.limits, self.policy, SINGLES)

    def place_while_due(self, on_step: Callable[[str], None] | None = None) -> dict:
        """Executions one after another until none finds a job due (a job giving back what it took
        before it ends is due again at once); the last outcome of each job."""
        outcomes = {}
        while placed := self.place(on_step=on_step):
            outcomes.update(placed)
        return outcomes

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


def stop_at(step_name: str, exc: BaseException) -> Callable[[str], None]:
    """An `on_step` hook raising `exc` as the execution reaches `step_name` (a fault at that point)."""
    def on_step(step: str) -> None:
        if step == step_name:
            raise exc
    return on_step
