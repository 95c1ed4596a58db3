"""What a worker process builds once: database, peer clients, retry policies, the webhook sender.

Built lazily, and every pool in it through `process_local`, so each prefork
child (or the single process of the threads pool) gets its own after any fork.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import Callable, Iterator

import urllib3

from backoff import RetryPolicy
from models.db import Database
from peers import Carts, Catalog, PeerHttp
from placement.batch import Limits
from placement.context import PlacementContext
from process_local import ProcessLocal
from settings import Settings
from tasks import app_settings
from tasks.dispatch import enqueue_deliveries
from webhooks.sending import Sender


class WorkerRuntime:
    """The long-lived dependencies of order placement in one worker process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        catalog_url, cart_url = settings.require_peers()
        # Each running execution holds one connection; the sweeper and retention one each. A batch waits for
        # its products while another holds them through a few peer calls (each up to the peer timeout).
        self.db = Database(settings.database_url, pool_size=max(settings.db_pool_size, settings.worker_concurrency + 2),
                           lock_timeout=settings.peer_timeout * 3)
        self.catalog = Catalog(PeerHttp("catalog", catalog_url, settings.peer_timeout, settings.peer_pool_size))
        self.carts = Carts(PeerHttp("cart", cart_url, settings.peer_timeout, settings.peer_pool_size))
        self.limits = Limits(settings.batch_size, settings.dispatch_deadline)
        self.policy = RetryPolicy(base=settings.retry_backoff_base, cap=settings.retry_backoff_max,
                                  deadline=settings.retry_deadline)
        self.webhooks = Sender(self.db.transaction,
                               ProcessLocal(lambda: urllib3.PoolManager(maxsize=settings.worker_concurrency)),
                               settings.webhook_secret,
                               settings.webhook_allow_private, settings.webhook_timeout,
                               RetryPolicy(settings.webhook_max_attempts, settings.webhook_backoff_base,
                                           settings.webhook_backoff_max))

    def close_peers(self) -> None:
        """Close this process's peer sessions (at shutdown)."""
        self.catalog.http.close()
        self.carts.http.close()

    @contextmanager
    def placement(self, on_step: Callable[[str], None] | None = None) -> Iterator[PlacementContext]:
        """Dependencies for one execution: one connection, for its locks and its statements."""
        with self.db.connection() as connection:
            context = PlacementContext(connection, self.catalog, self.carts, announce=enqueue_deliveries)
            if on_step is not None:
                context.on_step = on_step
            yield context


@lru_cache(maxsize=1)
def get_runtime() -> WorkerRuntime:
    """This process's runtime."""
    return WorkerRuntime(app_settings())
