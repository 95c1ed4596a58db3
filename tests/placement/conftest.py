"""Placement by a plain call, as `placement/context.py` promises: a migrated database of the module's
own on the test PostgreSQL (every table emptied before each test), the reference peers served by an
event loop in a thread of the test process (their data, faults and counters reset before each test),
and the worker's dependencies built from explicit `Settings`. No broker, no worker, no subprocess."""
from __future__ import annotations

from typing import Iterator

import pytest

from backoff import RetryPolicy
from models.db import Database
from peers import Carts, Catalog, PeerHttp
from placement.batch import Limits
from refpeers import create_app
from settings import Settings
from tests.placement.harness import Placement
from tests.refpeers.served import PeersAdmin, Served


@pytest.fixture(scope="module")
def served_peers():
    """The reference peers' app, on loopback, for the module: the demo data and no faults, whatever
    REFPEERS_* says."""
    served = Served(create_app("demo", latency_ms=0, error_rate=0))
    yield served
    served.close()


@pytest.fixture(scope="module")
def settings(database_url, migrated, served_peers) -> Settings:
    """What a worker of this module's database and peers would read from its environment."""
    return Settings(database_url=database_url, broker_url="memory://",  # placement publishes nothing
                    catalog_url=served_peers.url, cart_url=served_peers.url)


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
def placement(settings, database, peer_clients, engine, peers) -> Placement:
    """What a test of placement drives, on emptied tables (`engine`) and fresh peers."""
    limits = Limits(settings.batch_size, settings.dispatch_deadline)
    policy = RetryPolicy(base=settings.retry_backoff_base, cap=settings.retry_backoff_max,
                         deadline=settings.retry_deadline)
    return Placement(database, *peer_clients, limits, policy)

