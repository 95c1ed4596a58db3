"""The signature on every webhook: HMAC-SHA256 over the timestamp and the exact body.

Header `X-Order-Signature: t=<unix seconds>,v1=<hex digest>` where the digest
is HMAC-SHA256(WEBHOOK_SECRET, "<t>." + body). A receiver recomputes it over
the raw body it got, compares in constant time and rejects an old `t`, so a
captured request cannot be replayed later (README, 'Webhooks').
"""
from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Order-Signature"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
