"""How a peer call can go wrong, sorted by what the caller should do about it."""
from __future__ import annotations


class PeerError(Exception):
    """Base for every peer failure; `code` is what ends up on the job."""

    code = "peer_error"

    def __init__(self, message: str, *, peer: str, status: int | None = None):
        super().__init__(message)
        self.peer = peer
        self.status = status

    def details(self) -> dict:
        """What a support engineer needs to see on the job."""
        return {"peer": self.peer, "status": self.status}


class TransientPeerError(PeerError):
    """Worth retrying: connection refused or broken, timeout, 5xx, 429. A write that ends so may have
    been applied all the same; the caller's protocol must allow for it (placement/inventory.py)."""

    code = "peer_unavailable"

    def __init__(self, message: str, *, peer: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, peer=peer, status=status)
        self.retry_after = retry_after


class PreconditionFailed(PeerError):
    """A conditional write refused because the resource changed since it was read."""

    code = "peer_conflict"


class NotFound(PeerError):
    """The peer does not know the resource."""

    code = "not_found"


class BadPeerResponse(PeerError):
    """The peer answered something that breaks its contract, or that the service cannot hold;
    retrying will not help. `about` names what was wrong (e.g. the product and the value)."""

    code = "bad_peer_response"

    def __init__(self, message: str, *, peer: str, status: int | None = None, about: dict | None = None):
        super().__init__(message, peer=peer, status=status)
        self.about = about or {}

    def details(self) -> dict:
        return {**super().details(), **self.about}
