"""A chore every worker runs on a timer in a thread of its own (the sweeper, retention); each
chore takes an advisory lock, so one worker at a time does it."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from observability import tracing

log = logging.getLogger(__name__)


class Every(threading.Thread):
    """Runs `chore` every `interval` seconds until stopped."""

    def __init__(self, name: str, interval: float, chore: Callable[[], object]):
        super().__init__(name=name, daemon=True)
        self.interval, self.chore = interval, chore
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with tracing.untraced():
                    self.chore()
            except Exception:  # an outage must not kill the loop; the next tick tries again
                log.exception("%s failed", self.name)

    def stop(self) -> None:
        self._stop.set()
