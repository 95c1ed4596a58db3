"""Celery's Redis transport, with one change to kombu's channel: a worker survives a Redis restart.

On a lost connection celery 5.7.0's consumer calls `connection.collect()` and
then, new with celery PR #10242 (the fix of celery issue #9705),
`connection.close()`. When the first close of a channel stops early (its
pending BRPOP raises) and another channel's close raises before that one is
reached, `collect()` still drops the transport's `client` (kombu's
`Connection._do_close_transport`). The second close then restores the channel's
unacked messages through a new pool, whose parameters kombu reads from
`self.connection.client.hostname`: an AttributeError on None, which
`ignore_errors` (connection and channel errors only) lets through, and the
worker exits with "Unrecoverable error". A channel whose connection is gone
raises redis' ConnectionError here instead, the connection loss it is; celery
then reconnects as after any other. The messages it could not restore wait in
Redis' unacked set (or were lost with the broker) and come back by the
visibility timeout; the sweeper re-dispatches their jobs well before that. No
kombu release has a fix yet.

`celeryconfig` makes this the transport of `redis://` and `rediss://` URLs, so
the URL (which Flower's broker page reads) keeps its scheme.
"""
from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES, redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    """kombu's Redis channel, failing as a lost connection once its connection is closed."""

    def _connparams(self, asynchronous=False):
        # The only place kombu reads the broker's address; see the module's docstring.
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection is closed (Redis restarted or unreachable)")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel


def use_for_redis_urls() -> None:
    """Make this the transport of redis:// and rediss:// broker URLs in this process."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
