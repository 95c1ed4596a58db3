"""When to try again: exponential backoff with full jitter, bounded by a count or by a deadline.

Shared by order jobs (bounded by time: a flaky peer must not cost a customer
their order) and webhook deliveries (bounded by a count of tries).
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait between tries, and when to stop: after `max_attempts` tries, or once
    `deadline` seconds have passed since the work was submitted (None: no such bound)."""

    max_attempts: int | None = None
    base: float = 0.5
    cap: float = 30.0
    deadline: float | None = None

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before try `attempt + 1`: full jitter over an exponential window.

        A peer's Retry-After is honoured as a lower bound, still capped, so a
        countdown never reaches the broker's visibility timeout.
        """
        window = min(self.cap, self.base * 2 ** min(max(0, attempt - 1), 62))
        wait = random.uniform(window / 2, window)  # noqa: S311 - jitter, not security
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.cap)

    def exhausted(self, attempts: int, age: float) -> bool:
        """Whether work tried `attempts` times and submitted `age` seconds ago gets no more tries."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        return self.deadline is not None and age >= self.deadline
