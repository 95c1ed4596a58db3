"""When to try a job again: exponential backoff with jitter, bounded attempts."""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How many executions a job gets and how long to wait between them."""

    max_attempts: int = 6
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before execution `attempt + 1`: full jitter over an exponential window.

        A peer's Retry-After is honoured as a lower bound, still capped, so a
        countdown never reaches the broker's visibility timeout.
        """
        window = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        wait = random.uniform(window / 2, window)  # noqa: S311 - jitter, not security
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.cap)
