"""Celery's Redis transport without one per-message cost.

kombu builds a new redis-py client (`redis.Redis(connection_pool=...)`) for
every publish, and the constructor costs more CPU than the LPUSH it then sends:
about a tenth of a submission's CPU, and as much again for every event a worker
sends to Flower. This channel builds the client once per pool and reuses it.
Same pool, same commands, same behaviour. `celeryconfig` makes it the transport
of `redis://` and `rediss://` URLs, so the URL (which Flower's broker page reads)
keeps its scheme.
"""
from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES, redis


class Channel(redis.Channel):
    """A Redis channel that reuses its synchronous client while its connection pool lives."""

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool  # a new one after a fork or a disconnect: the client follows it
        client = self.__dict__.get("_reused_client")
        if client is None or client.connection_pool is not pool:
            client = self.__dict__["_reused_client"] = super()._create_client()
        return client


class Transport(redis.Transport):
    Channel = Channel


def use_for_redis_urls() -> None:
    """Make this the transport of redis:// and rediss:// broker URLs in this process."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
