"""What a worker process builds once: database, peer clients, retry policies, the webhook sender.

Built lazily, so each prefork child (or the single process of the threads
pool) gets its own pools after any fork.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache, partial
from typing import Callable, Iterator

import urllib3

from models.db import Database, execute_alone, transaction_on
from peers import Carts, Catalog, PeerHttp
from placement.context import PlacementContext
from placement.locks import Locks
from placement.retry import RetryPolicy
from settings import Settings, get_settings
from tasks.dispatch import enqueue_deliveries
from webhooks.sending import Sender


class WorkerRuntime:
    """The long-lived dependencies of order placement in one worker process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        catalog_url, cart_url = settings.require_peers()
        # Each running task holds one connection; the sweeper takes two (its locks, its transactions).
        self.db = Database(settings.database_url,
                           pool_size=max(settings.db_pool_size, settings.worker_concurrency + 2))
        self.catalog = Catalog(PeerHttp("catalog", catalog_url, settings.peer_timeout, settings.peer_pool_size))
        self.carts = Carts(PeerHttp("cart", cart_url, settings.peer_timeout, settings.peer_pool_size))
        self.policy = RetryPolicy(settings.max_attempts, settings.retry_backoff_base, settings.retry_backoff_max)
        self.webhooks = Sender(self.db.transaction, urllib3.PoolManager(maxsize=settings.worker_concurrency),
                               settings.webhook_secret,
                               settings.webhook_allow_private, settings.webhook_timeout,
                               RetryPolicy(settings.webhook_max_attempts, settings.webhook_backoff_base,
                                           settings.webhook_backoff_max))

    @contextmanager
    def placement(self, on_step: Callable[[str], None] | None = None) -> Iterator[PlacementContext]:
        """Dependencies for one execution: one connection, for its locks and its short transactions."""
        with self.db.engine.connect() as connection, \
                Locks.on(connection, wait_seconds=self.settings.peer_timeout * 2) as locks:
            context = PlacementContext(partial(transaction_on, connection), partial(execute_alone, connection),
                                       self.catalog, self.carts, locks, announce=enqueue_deliveries)
            if on_step is not None:
                context.on_step = on_step
            yield context


@lru_cache(maxsize=1)
def get_runtime() -> WorkerRuntime:
    """This process's runtime."""
    return WorkerRuntime(get_settings())
